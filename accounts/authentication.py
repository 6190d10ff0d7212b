"""`Authorization: Bearer <token>` for the REST API."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.services import TokenExpired, token_authenticate


class ServiceAccountUser:
    """Stands in for request.user when a service account calls; it has no person behind it."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    pk = None
    id = None

    def __init__(self, name: str) -> None:
        self.email = ""
        self.name = name

    def __str__(self) -> str:
        return f"service account {self.name}"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        secret = secret.strip()
        if not secret or " " in secret:
            raise exceptions.AuthenticationFailed("Malformed Authorization header; send: Bearer <token>.")
        try:
            actor = token_authenticate(secret)
        except TokenExpired as e:
            raise exceptions.AuthenticationFailed(f"{e}.") from None
        if actor is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        request._request.actor = actor
        user = actor.user or ServiceAccountUser(actor.token.name)
        return user, actor.token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer token in the OpenAPI schema."""

    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A user or service-account API token."}
