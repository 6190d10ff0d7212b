"""Shared DRF pieces: pagination, the JSON error shape, and the v1 router."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.crypto import DecryptionError
from portal.queue import QueueUnavailable


class TeamScopedMixin:
    """Objects are looked up only inside the caller's team, so another team's are a 404."""

    queryset: QuerySet
    team_field = "team"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no actor
            return self.queryset.none()
        return self.queryset.filter(**{self.team_field: self.request.actor.team})


class JSONParser(parsers.JSONParser):
    """DRF's, but a body nested too deeply for Python's json is a 400 like any other that does
    not parse (json raises RecursionError there, which DRF let through as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _first_message(errors) -> str:
    """A one-line summary naming the first field and its reason, for CLIs and logs."""
    if isinstance(errors, dict):
        for field, value in errors.items():
            message = _first_message(value)
            return message if field in ("non_field_errors", "__all__") else f"{field}: {message}"
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def exception_handler(exc, context):
    """Every API error is JSON: a stable `code`, a one-line `message`, and `errors` per field."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, DecryptionError):
        return Response(
            {"code": "credential_corrupt", "message": f"Stored credentials cannot be read: {exc}. Enter them again."},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        # Raised while DRF parses the body; Django alone would answer with an HTML page.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        return Response(
            {"code": "too_large", "message": f"The request body is too large: at most {limit:g} MiB."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, TooManyFilesSent):  # a release uploaded as a folder of too many parts
        return Response(
            {
                "code": "too_many_files",
                "message": f"Too many files in one request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES}.",
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, QueueUnavailable):
        return Response(
            {"code": "queue_unavailable", "message": str(exc)},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"code": "invalid", "message": _first_message(errors), "errors": errors}
    else:
        code = getattr(exc, "default_code", "error")
        detail = getattr(exc, "detail", str(exc))
        response.data = {"code": getattr(detail, "code", None) or code, "message": str(detail)}
    return response
