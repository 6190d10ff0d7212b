"""Apps: create, rename, delete."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.access import Actor
from licenses.models import App
from licenses.validators import validate_app_slug


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": "Enter a name for the app."})
    if len(name) > 100:
        raise ValidationError({"name": "An app name has at most 100 characters."})
    return name


def app_slug_suggest(name: str) -> str:
    return slugify(name)[:63].strip("-")


def app_create(*, actor: Actor, name: str, slug: str = "") -> App:
    """A new app of the actor's team; the slug defaults from the name and is unique portal-wide."""
    errors: dict[str, list[str]] = {}
    try:
        name = _clean_name(name)
    except ValidationError as e:
        errors.update(e.message_dict)
    slug = (slug or "").strip() or app_slug_suggest(name or "")
    try:
        validate_app_slug(slug)
        if App.objects.filter(slug=slug).exists():
            raise ValidationError(f"The slug “{slug}” is taken; choose another.")
    except ValidationError as e:
        errors["slug"] = e.messages
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            return App.objects.create(team=actor.team, name=name, slug=slug, created_by=actor.user)
    except IntegrityError:
        raise ValidationError({"slug": [f"The slug “{slug}” is taken; choose another."]}) from None


def app_update(*, app: App, name: str) -> App:
    app.name = _clean_name(name)
    app.save(update_fields=["name"])
    return app


def app_delete(*, app: App) -> None:
    app.delete()
