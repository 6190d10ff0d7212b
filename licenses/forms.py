from __future__ import annotations

from django import forms


class AppForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autofocus": True}))
    slug = forms.CharField(
        max_length=200,
        required=False,
        help_text="Appears in image paths like proxy/<slug>/…; lowercase letters, digits, hyphens. "
        "Leave blank to derive it from the name. It cannot change later.",
    )


class AppRenameForm(forms.Form):
    name = forms.CharField(max_length=200)
