from __future__ import annotations

from django import forms

from accounts.models import Role, TokenAccess


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


class TokenForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What it is for, e.g. “CI pipeline”.")


class ServiceAccountForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="e.g. “release-bot”.")
    access = forms.ChoiceField(choices=TokenAccess.choices, initial=TokenAccess.READ_ONLY)


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)
    email = forms.CharField(max_length=254, required=False, help_text="Optional: only this address may accept.")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
        error_messages={"required": "Enter your current password."},
    )
    new_password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password, not all digits.",
        error_messages={"required": "Enter a new password."},
    )
    new_password_again = forms.CharField(
        strip=False,
        label="New password again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": "Type the new password again."},
    )
