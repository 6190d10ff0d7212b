"""Form helpers every app's pages share."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.forms import Form


def apply_errors(form: Form, error: ValidationError) -> None:
    """Put a service's errors on the form fields they name (or on the form as a whole)."""
    if hasattr(error, "error_dict"):
        for field, messages_ in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages_)
    else:
        form.add_error(None, error.messages)
