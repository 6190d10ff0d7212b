from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from licenses.models import App, License, LicenseType


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


class _ExpiryDateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


def expiry_end_of_day(day: date) -> datetime:
    """An expiry date means the license works through that whole day (UTC)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


class LicenseFieldsForm(forms.Form):
    customer_name = forms.CharField(
        label="Customer name", max_length=200, error_messages={"required": "Enter the customer's name."}
    )
    customer_email = forms.CharField(
        label="Customer email",
        required=False,
        max_length=254,
        widget=forms.EmailInput,
        help_text="Who to contact about this license; it appears in the license file.",
    )
    type = forms.ChoiceField(label="Type", choices=LicenseType.choices, initial=LicenseType.PAID)
    expires_at = forms.DateField(
        label="Expires on",
        required=False,
        widget=_ExpiryDateInput(),
        help_text="The license works through this day (UTC). Leave blank for no expiry.",
    )


class LicenseCreateForm(LicenseFieldsForm):
    app = forms.ModelChoiceField(
        label="App",
        queryset=App.objects.none(),
        to_field_name="slug",
        error_messages={"required": "Choose the app this license is for."},
    )
    expires_in_days = forms.IntegerField(
        label="Or expires in (days)",
        required=False,
        min_value=1,
        max_value=36500,
        help_text="Instead of a date: the license ends this many days from now.",
    )
    field_order = ["app", "customer_name", "customer_email", "type", "expires_at", "expires_in_days"]

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app"].queryset = App.objects.filter(team=team)
        self.fields["customer_name"].widget.attrs["autofocus"] = True

    def clean(self):
        data = super().clean()
        day, days = data.get("expires_at"), data.get("expires_in_days")
        if day and days:
            self.add_error("expires_in_days", "Give an expiry date or a number of days, not both.")
        return data

    def expiry(self) -> datetime | None:
        """The moment the license stops working, from whichever of the two fields was used."""
        if self.cleaned_data.get("expires_in_days"):
            return timezone.now() + timedelta(days=self.cleaned_data["expires_in_days"])
        if self.cleaned_data.get("expires_at"):
            return expiry_end_of_day(self.cleaned_data["expires_at"])
        return None


class LicenseEditForm(LicenseFieldsForm):
    def __init__(self, *args, license: License, **kwargs):
        self.license = license
        initial = {
            "customer_name": license.customer_name,
            "customer_email": license.customer_email,
            "type": license.type,
            "expires_at": license.expires_at.astimezone(UTC).date() if license.expires_at else None,
        }
        super().__init__(*args, initial=initial, **kwargs)

    def clean_expires_at(self):
        day = self.cleaned_data.get("expires_at")
        if day and day != self.initial["expires_at"] and expiry_end_of_day(day) <= timezone.now():
            raise forms.ValidationError(
                "Choose today or a later day. To end the customer's access now, revoke the license."
            )
        return day

    def changes(self) -> dict:
        """Only the fields that changed; an unchanged expiry day keeps its exact time."""
        changes = {}
        for name in ("customer_name", "customer_email", "type"):
            if self.cleaned_data[name] != self.initial[name]:
                changes[name] = self.cleaned_data[name]
        day = self.cleaned_data.get("expires_at")
        if day != self.initial["expires_at"]:
            changes["expires_at"] = expiry_end_of_day(day) if day else None
        return changes


class RepositoryRulesForm(forms.Form):
    repository_rules = forms.CharField(
        label="Allowed repositories",
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "class": "rules",
                "spellcheck": "false",
                "placeholder": "quay.io/acme/api\nquay.io/acme/tools/*",
            }
        ),
        help_text="One per line: host/repository for exactly that repository, or host/prefix/* for everything "
        "below it. Write an upstream port as host__port (registry.local__5000/team/app). Empty: no restriction.",
    )

    def rules(self) -> list[str]:
        return self.cleaned_data["repository_rules"].splitlines()
