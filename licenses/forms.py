from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from licenses.models import App, Channel, License, LicenseType


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
    channel = forms.ChoiceField(
        label="Channel",
        required=False,  # a client that does not send it gets stable, as before channels
        initial="stable",
        help_text="Which releases the customer gets: those promoted to this channel of the app (default stable).",
    )
    field_order = ["app", "customer_name", "customer_email", "type", "channel", "expires_at", "expires_in_days"]

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app"].queryset = App.objects.filter(team=team)
        self.fields["customer_name"].widget.attrs["autofocus"] = True
        # Names of every app's channels: the app is chosen on the same form, and a channel the
        # chosen app lacks is refused by the service with the names it has.
        names = Channel.objects.filter(app__team=team).values_list("name", flat=True).order_by("pk")
        self.fields["channel"].choices = [(n, n) for n in dict.fromkeys(names)] or [("stable", "stable")]

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
            "channel": license.channel.name,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["channel"] = forms.ChoiceField(
            label="Channel",
            required=False,  # not sent: unchanged
            choices=[(n, n) for n in license.app.channels.values_list("name", flat=True)],
            help_text="Which releases the customer gets: those promoted to this channel. "
            "Moving the license changes what it may pull at once.",
        )
        self.order_fields(["customer_name", "customer_email", "type", "channel", "expires_at"])

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
        for name in ("customer_name", "customer_email", "type", "channel"):
            if name == "channel" and not self.cleaned_data[name]:
                continue
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
        "below it. Write an upstream port as host__port (registry.local__5000/team/app). These add to what the "
        "releases of a license's channel list; empty: only those.",
    )

    def rules(self) -> list[str]:
        return self.cleaned_data["repository_rules"].splitlines()


class AirgapPlatformsForm(forms.Form):
    airgap_platforms = forms.CharField(
        label="Air-gap platforms",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "linux/amd64 linux/arm64", "spellcheck": "false"}),
        help_text="The platforms an air-gap bundle keeps of each multi-arch image, os/arch or os/arch/variant, "
        "separated by spaces or commas. Empty: every platform.",
    )

    def platforms(self) -> list[str]:
        return self.cleaned_data["airgap_platforms"].replace(",", " ").split()


# --- releases and channels ------------------------------------------------------------------


class FolderInput(forms.FileInput):
    """A folder picker: every file below the chosen folder is sent (`webkitdirectory`)."""

    allow_multiple_selected = True


class FolderField(forms.FileField):
    widget = FolderInput

    def clean(self, data, initial=None):
        one = super().clean
        if isinstance(data, list | tuple):
            return [one(item, initial) for item in data]
        return [one(data, initial)] if data else []


class ReleaseUploadForm(forms.Form):
    """A release's files (a folder or a .tar.gz), its label and notes, and where to promote it.
    The files are read in the view (licenses.release_files), which knows the folder's paths."""

    files = FolderField(
        label="Folder",
        required=False,
        widget=FolderInput(attrs={"webkitdirectory": True, "multiple": True, "data-release-folder": True}),
        help_text="The folder with the app's settings file (images:, additionalNamespaces) and its Kubernetes "
        "manifests; only .yaml and .yml files are read, subfolders included.",
    )
    archive = forms.FileField(
        label="Or a .tar.gz",
        required=False,
        widget=forms.FileInput(attrs={"accept": ".tar.gz,.tgz,.tar,application/gzip,application/x-tar"}),
        help_text="The same files packed: tar -czf release.tar.gz -C my-release .",
    )
    version = forms.CharField(
        label="Version",
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "1.4.2"}),
        help_text="A label for people; releases are numbered 1, 2, … on their own.",
    )
    notes = forms.CharField(
        label="Release notes", required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )
    promote_to = forms.ChoiceField(
        label="Promote to",
        required=False,
        help_text="Licenses on this channel get the release as soon as its images resolve. You can promote later.",
    )

    def __init__(self, *args, app: App, **kwargs):
        super().__init__(*args, **kwargs)
        names = app.channels.values_list("name", flat=True)
        self.fields["promote_to"].choices = [("", "Do not promote yet"), *((n, n) for n in names)]


class PromoteForm(forms.Form):
    channel = forms.ChoiceField(label="Channel")

    def __init__(self, *args, app: App, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [(n, n) for n in app.channels.values_list("name", flat=True)]


class ChannelForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": "lts-2026", "spellcheck": "false"}),
        help_text="Lowercase letters, digits and hyphens.",
    )
    airgap = forms.BooleanField(
        label="Air gap",
        required=False,
        help_text="Each release promoted to this channel gets its air-gap bundle built, for customers "
        "without internet access.",
    )


class ChannelEditForm(forms.Form):
    airgap = forms.BooleanField(
        label="Air gap",
        required=False,
        help_text="Each release promoted to this channel gets its air-gap bundle built.",
    )
