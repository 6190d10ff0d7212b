"""The add/edit registry form: one section of fields per provider; only the chosen one counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Team
from licenses.models import App
from registries.models import ExternalRegistry
from registries.providers import MAX_SECRET_LENGTH, RULES, Provider, Spec

# The "Other Registry" tab's provider select, in the providers' order; Docker Hub has a tab of its own.
OTHER_TAB_PROVIDERS = tuple(Provider(p) for p in RULES if p != Provider.DOCKERHUB)
KEEP_SECRET = "Leave blank to keep the stored one; enter it again if you change the endpoint's host."


class SecretTextarea(forms.Textarea):
    """A textarea that, like PasswordInput(render_value=False), never renders what was typed."""

    def format_value(self, value: Any) -> None:
        return None


def field_name(provider: str, spec_name: str) -> str:
    return f"{provider}_{spec_name}"


def _make_field(spec: Spec, *, editing: bool) -> forms.Field:
    attrs = {"autocomplete": "new-password" if spec.secret else spec.autocomplete}
    if spec.placeholder:
        attrs["placeholder"] = spec.placeholder
    help_text = spec.help
    if spec.secret and editing:
        help_text = f"{help_text} {KEEP_SECRET}".strip()
    required = spec.required and not (spec.secret and editing)
    what = spec.label if spec.label.startswith(("Docker", "GitHub")) else spec.label[0].lower() + spec.label[1:]
    messages = {"required": f"Enter the {what}."}
    if spec.kind == "file":
        upload = forms.FileField(
            label=spec.label,
            required=False,
            help_text=help_text,
            widget=forms.FileInput(attrs={"accept": ".json,application/json"}),
        )
        upload.hide_optional = True
        return upload
    if spec.kind == "password":
        widget: forms.Widget = forms.PasswordInput(render_value=False, attrs=attrs)
    elif spec.kind == "textarea":
        widget = SecretTextarea(attrs={**attrs, "rows": 4, "spellcheck": "false", "class": "mono"})
    else:
        widget = forms.TextInput(attrs={**attrs, "spellcheck": "false"})
    field = forms.CharField(
        label=spec.label,
        initial=spec.initial or None,
        required=required,
        help_text=help_text,
        widget=widget,
        strip=not spec.secret,
        max_length=MAX_SECRET_LENGTH if spec.secret else 300,
        error_messages=messages,
    )
    # A key (pasted or uploaded) or a GAR token: one of them is needed, neither is "optional".
    field.hide_optional = spec.kind == "textarea" or (spec.name == "token" and not spec.required)
    return field


@dataclass
class Section:
    """The fields of one provider, for the template."""

    provider: str
    label: str
    intro: str
    advice: str
    example: str
    fields: list[forms.BoundField]
    advanced: list[forms.BoundField]
    selected: bool

    @property
    def advanced_open(self) -> bool:
        """Show the advanced fields when one has an error or differs from its default."""
        return any(bf.errors or (bf.value() or "") != (bf.field.initial or "") for bf in self.advanced)


class RegistryForm(forms.Form):
    """Add (one tab's providers) or edit (the registry's provider) an external registry.

    Every provider's fields are present, prefixed `<provider>_`; only the chosen provider's
    fields are read, so what another (hidden) section holds can never reach the service.
    """

    provider = forms.ChoiceField(label="Provider")
    name = forms.CharField(
        label="Name",
        required=False,
        max_length=100,
        help_text="The registry's reference name: releases name it in images: as source: <name>. "
        "Lowercase letters, digits and hyphens; leave blank to derive it from the endpoint (quay.io/acme becomes quay-acme).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    apps = forms.ModelMultipleChoiceField(
        label="Apps",
        queryset=App.objects.none(),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Which apps' customers may pull from it. Tick none to serve all of your team's apps.",
    )
    realm_host = forms.CharField(
        label="Token realm host",
        required=False,
        max_length=300,
        help_text="Only when the registry's token service lives on another host that is not a known provider's, "
        "e.g. auth.example.com. Credentials are sent to no other realm.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    skip_validation = forms.BooleanField(
        label="Skip validation",
        required=False,
        help_text="Save without logging in to the registry first; run a test later.",
    )

    def __init__(
        self,
        data: Any = None,
        files: Any = None,
        *,
        team: Team,
        providers: tuple[str, ...],
        registry: ExternalRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        self.registry = registry
        self.providers = (registry.provider,) if registry else tuple(providers)
        if registry is not None:
            kwargs.setdefault("initial", self._initial_from(registry))
        super().__init__(data, files, **kwargs)
        editing = registry is not None
        self.fields["provider"].choices = [(p, Provider(p).label) for p in self.providers]
        if len(self.providers) == 1:
            self.fields["provider"].widget = forms.HiddenInput()
            self.fields["provider"].initial = self.providers[0]
        self.fields["apps"].queryset = App.objects.filter(team=team).order_by("name")
        if editing:
            self.fields[
                "skip_validation"
            ].help_text = "Save a new secret or endpoint without logging in to the registry first."
        for provider in self.providers:
            for spec in RULES[provider].fields:
                self.fields[field_name(provider, spec.name)] = _make_field(spec, editing=editing)
        if editing and RULES[registry.provider].username_from_secret and registry.mints_tokens:
            key_field = self.fields[field_name(registry.provider, "service_account_key")]
            key_field.help_text += f" The stored key is for {registry.username}."
        if self.is_bound:
            # Only the chosen provider's fields are required; the others are ignored.
            chosen = self.data.get(self.add_prefix("provider"))
            for provider in self.providers:
                if provider != chosen:
                    for spec in RULES[provider].fields:
                        field = self.fields[field_name(provider, spec.name)]
                        field.hide_optional = field.hide_optional or field.required  # still shown as required
                        field.required = False
        self.key_from_file = False

    @staticmethod
    def _initial_from(registry: ExternalRegistry) -> dict[str, Any]:
        p = registry.provider
        initial: dict[str, Any] = {
            "provider": p,
            "name": registry.name,
            "realm_host": registry.realm_host,
            "apps": [] if registry.all_apps else [a.slug for a in registry.apps.all()],
            field_name(p, "endpoint"): registry.endpoint,
            field_name(p, "region"): registry.region,
        }
        if not RULES[p].username_from_secret:
            initial[field_name(p, "username")] = registry.username
        return initial

    @property
    def selected_provider(self) -> str:
        if self.is_bound:
            value = self.data.get(self.add_prefix("provider"))
            if value in self.providers:
                return value
        return self.initial.get("provider") or self.fields["provider"].initial or self.providers[0]

    def sections(self) -> list[Section]:
        selected = self.selected_provider
        sections = []
        for provider in self.providers:
            rules = RULES[provider]
            specs = rules.fields
            sections.append(
                Section(
                    provider=provider,
                    label=Provider(provider).label,
                    intro=rules.intro,
                    advice=rules.advice,
                    example=rules.example,
                    fields=[self[field_name(provider, s.name)] for s in specs if not s.advanced],
                    advanced=[self[field_name(provider, s.name)] for s in specs if s.advanced],
                    selected=provider == selected,
                )
            )
        return sections

    @property
    def advanced_open(self) -> bool:
        """The one "Advanced" disclosure opens when a field in it has an error or a value of its own."""
        chosen = next((s for s in self.sections() if s.selected), None)
        if chosen is not None and chosen.advanced_open:
            return True
        return any(self[name].errors or self[name].value() for name in ("apps", "realm_host", "skip_validation"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        provider = cleaned.get("provider")
        if field_name(provider, "service_account_key_file") in self.fields:  # a provider that takes a key file
            upload = cleaned.get(field_name(provider, "service_account_key_file"))
            pasted = cleaned.get(field_name(provider, "service_account_key"))
            if upload and pasted:
                self.add_error(
                    field_name(provider, "service_account_key_file"), "Paste the key or upload it, not both."
                )
            elif upload:
                if upload.size > MAX_SECRET_LENGTH:
                    self.add_error(field_name(provider, "service_account_key_file"), "The file is larger than 64 KiB.")
                else:
                    try:
                        cleaned[field_name(provider, "service_account_key")] = upload.read().decode("utf-8")
                        self.key_from_file = True
                    except UnicodeDecodeError:
                        self.add_error(
                            field_name(provider, "service_account_key_file"), "The file is not a JSON key (not text)."
                        )
        return cleaned

    def values(self) -> dict[str, Any]:
        """The chosen provider's values, named as the service expects them."""
        provider = self.cleaned_data["provider"]
        values = {
            spec.name: self.cleaned_data.get(field_name(provider, spec.name)) or ""
            for spec in RULES[provider].fields
            if spec.kind != "file"
        }
        values.update(
            name=self.cleaned_data["name"],
            realm_host=self.cleaned_data["realm_host"],
            apps=[app.slug for app in self.cleaned_data["apps"]],
        )
        return values

    def create_kwargs(self) -> dict[str, Any]:
        return {
            **self.values(),
            "provider": self.cleaned_data["provider"],
            "skip_validation": self.cleaned_data["skip_validation"],
        }

    def update_kwargs(self) -> dict[str, Any]:
        return {**self.values(), "skip_validation": self.cleaned_data["skip_validation"]}

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's errors on the fields they name: a provider field, or a common one."""
        provider = self.selected_provider
        if not hasattr(error, "error_dict"):
            self.add_error(None, error.messages)
            return
        for name, problems in error.message_dict.items():
            target = field_name(provider, name)
            if name == "service_account_key" and self.key_from_file:
                target = field_name(provider, "service_account_key_file")
            if target not in self.fields:
                target = name if name in self.fields else None
            self.add_error(target, problems)


class RegistryTestForm(forms.Form):
    image = forms.CharField(
        label="Image",
        max_length=500,
        error_messages={"required": "Enter an image to test with, e.g. acme/api:1.0.0."},
    )
