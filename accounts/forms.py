from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from accounts.models import DomainKind, Role, TokenAccess


class SignupForm(forms.Form):
    email = forms.CharField(
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        error_messages={"required": "Enter an email address."},
    )
    name = forms.CharField(max_length=150, required=False, label="Your name")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password, not all digits.",
        error_messages={"required": "Enter a password."},
    )
    team_name = forms.CharField(
        max_length=200,
        label="Team (your company)",
        help_text="You become its admin.",
        error_messages={"required": "Enter a team name."},
    )


class InviteSignupForm(forms.Form):
    """Sign-up through an invite link: the team comes from the invite."""

    email = forms.CharField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    name = forms.CharField(max_length=150, required=False, label="Your name")
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class TeamForm(forms.Form):
    name = forms.CharField(max_length=200, label="Team name")


EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class _TokenExpiryForm(forms.Form):
    expires_in = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        label="Expires",
        help_text="After that it is refused; create a new one.",
    )

    def token_kwargs(self) -> dict:
        """The cleaned data as token_create takes it: an expiry time instead of a number of days."""
        data = dict(self.cleaned_data)
        days = data.pop("expires_in", None)
        expires_at: datetime | None = timezone.now() + timedelta(days=days) if days else None
        return {**data, "expires_at": expires_at}


class TokenForm(_TokenExpiryForm):
    name = forms.CharField(max_length=200, help_text="What it is for, e.g. “CI pipeline”.")
    field_order = ["name", "expires_in"]


class ServiceAccountForm(_TokenExpiryForm):
    name = forms.CharField(max_length=200, help_text="e.g. “release-bot”.")
    access = forms.ChoiceField(choices=TokenAccess.choices, initial=TokenAccess.READ_ONLY)
    field_order = ["name", "access", "expires_in"]


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)
    email = forms.CharField(max_length=254, required=False, help_text="Optional: only this address may accept.")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class PasswordResetForm(forms.Form):
    new_password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
        help_text="At least 10 characters; not a common password, not all digits.",
        error_messages={"required": "Enter a new password."},
    )
    new_password_again = forms.CharField(
        strip=False,
        label="New password again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": "Type the new password again."},
    )


class PasswordChangeForm(PasswordResetForm):
    """The reset form with the current password first (it takes the focus)."""

    field_order = ["current_password", "new_password", "new_password_again"]

    current_password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
        error_messages={"required": "Enter your current password."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password"].widget.attrs.pop("autofocus", None)


class DomainForm(forms.Form):
    """Adding a custom domain; the service validates the name (a host name of yours, no URL)."""

    domain = forms.CharField(
        max_length=300,
        label="Domain",
        help_text="A host name of yours, e.g. proxy.vendor.com.",
        widget=forms.TextInput(attrs={"placeholder": "proxy.vendor.com", "spellcheck": "false", "autocomplete": "off"}),
        error_messages={"required": "Enter a host name, like proxy.vendor.com."},
    )
    kind = forms.ChoiceField(
        choices=[(DomainKind.PROXY, "Proxy"), (DomainKind.REGISTRY, "Registry")],
        initial=DomainKind.PROXY,
        label="For",
        help_text="Proxy: pulls, tokens, downloads. Registry: your private registry.",
    )
