"""What each registry provider is, in one place: its endpoint (default and normalised form), the
secrets it takes and how they are checked, whether it mints short-lived tokens, and the fields
of its section on the add/edit form.

A new provider is a Provider choice and an entry in RULES here, plus its client in clients/;
services, forms and models read these rules and name no provider themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from django.core.exceptions import ValidationError
from django.db import models
from django.views.decorators.debug import sensitive_variables

from portal import ocispec
from registries.clients import ecr, gcr


class Provider(models.TextChoices):
    DOCKERHUB = "dockerhub", "Docker Hub"
    ECR = "ecr", "Amazon ECR"
    GCR = "gcr", "Google Container Registry"
    GAR = "gar", "Google Artifact Registry"
    GHCR = "ghcr", "GitHub Container Registry"
    QUAY = "quay", "Quay.io"
    OTHER = "other", "Other OCI registry"


GHCR_HOST = "ghcr.io"
QUAY_HOST = "quay.io"
MAX_SECRET_LENGTH = 64 * 1024

# (scheme "" or "http://", address: lower case host[:port][/prefix], region) -> (endpoint, region)
EndpointRule = Callable[[str, str, str], tuple[str, str]]
# (username, the secrets given) -> (username to store, secret to store or None to keep the stored one)
CredentialsRule = Callable[[str, dict[str, str]], tuple[str, dict | None]]


class Token(Protocol):
    username: str
    password: str
    expires_at: datetime


@dataclass(frozen=True)
class Minting:
    """How a provider turns the stored secret into a short-lived registry token."""

    mint: Callable[[str, dict, str], Token]  # (username, secret, region)
    refresh_margin: timedelta  # mint again this long before the token expires


@dataclass(frozen=True)
class Spec:
    """One field of a provider's form section: `name` is the service's keyword argument."""

    name: str
    label: str
    help: str = ""
    required: bool = False
    secret: bool = False
    kind: str = "text"  # text | password | textarea | file
    advanced: bool = False
    placeholder: str = ""
    autocomplete: str = "off"
    initial: str = ""


@dataclass(frozen=True)
class Rules:
    intro: str  # one line on the form
    fields: tuple[Spec, ...]
    secrets: tuple[str, ...]  # the secret inputs it takes; a refused login names the first
    clean_credentials: CredentialsRule
    clean_endpoint: EndpointRule
    default_endpoint: str = ""  # used when the vendor leaves the endpoint blank; else it is required
    default_name: str = ""  # else the name comes from the endpoint (name_for_endpoint)
    minting: Minting | None = None
    username_from_secret: bool = False  # the key names the account; no user name is typed
    # The documents' advice on which credential to create, and a one-line example, under the intro.
    advice: str = ""
    example: str = ""


# --- endpoints ---------------------------------------------------------------------------


def _as_given(scheme: str, address: str, region: str) -> tuple[str, str]:
    return scheme + address, region


def _dockerhub_endpoint(scheme: str, address: str, region: str) -> tuple[str, str]:
    if address not in ocispec.DOCKER_HUB_HOSTS:
        raise ValidationError({"endpoint": f"Docker Hub's endpoint is {ocispec.DOCKER_HUB}."})
    return ocispec.DOCKER_HUB, region


def _ecr_endpoint(scheme: str, address: str, region: str) -> tuple[str, str]:
    try:
        parsed = ecr.parse_ecr_endpoint(address, region or None)
    except ecr.EcrInputError as e:
        raise ValidationError({e.field if e.field in ("endpoint", "region") else "endpoint": e.message}) from None
    return parsed.host, parsed.region


def _google_endpoint(provider: str) -> EndpointRule:
    def clean(scheme: str, address: str, region: str) -> tuple[str, str]:
        try:
            gcr.parse_google_endpoint(provider, address)
        except gcr.GcrInputError as e:
            raise ValidationError({"endpoint": e.message}) from None
        return scheme + address, region

    return clean


def _on_host(host: str, message: str) -> EndpointRule:
    def clean(scheme: str, address: str, region: str) -> tuple[str, str]:
        if address.split("/")[0] != host:
            raise ValidationError({"endpoint": message})
        return scheme + address, region

    return clean


# --- credentials ---------------------------------------------------------------------------


@sensitive_variables("given", "value")
def _ecr_credentials(username: str, given: dict[str, str]) -> tuple[str, dict | None]:
    try:
        ecr.validate_access_key_id(username)
    except ecr.EcrInputError as e:
        raise ValidationError({"username": e.message}) from None
    value = given.get("secret_access_key")
    if not value:
        return username, None
    try:
        ecr.validate_secret_access_key(value)
    except ecr.EcrInputError as e:
        raise ValidationError({"secret_access_key": e.message}) from None
    return username, {"secret_access_key": value}


@sensitive_variables("given", "info")
def _google_credentials(username: str, given: dict[str, str]) -> tuple[str, dict | None]:
    """A service-account key (its account is the user name) or, where accepted, an access token."""
    if given.get("service_account_key"):
        try:
            info = gcr.parse_service_account_key(given["service_account_key"])
        except gcr.GcrInputError as e:
            raise ValidationError({"service_account_key": e.message}) from None
        return info["client_email"], {"service_account_key": json.dumps(info)}
    if given.get("token"):  # only Artifact Registry takes one (see its `secrets`)
        return gcr.REGISTRY_USERNAME, {"password": given["token"]}
    return username, None


@sensitive_variables("given", "value")
def _password_credentials(username: str, given: dict[str, str]) -> tuple[str, dict | None]:
    if not username:
        raise ValidationError({"username": "Enter the user name for this registry."})
    value = given.get("password") or given.get("token")
    if given.get("password") and given.get("token"):
        raise ValidationError({"token": "Give a password or a token, not both."})
    return username, ({"password": value} if value else None)


# --- minting -------------------------------------------------------------------------------


@sensitive_variables("secret")
def _mint_ecr(username: str, secret: dict, region: str) -> Token:
    return ecr.mint_ecr_token(username, secret["secret_access_key"], region)


@sensitive_variables("secret")
def _mint_google(username: str, secret: dict, region: str) -> Token:
    return gcr.mint_gcr_token(json.loads(secret["service_account_key"]))


# ECR tokens live 12 h, Google's 1 h.
ECR_MINTING = Minting(_mint_ecr, refresh_margin=timedelta(hours=2))
GOOGLE_MINTING = Minting(_mint_google, refresh_margin=timedelta(minutes=15))


# --- form fields ---------------------------------------------------------------------------


def _endpoint_field(help_: str, placeholder: str, *, required: bool = True, advanced: bool = False) -> Spec:
    initial = "" if required else placeholder  # a provider's own endpoint is filled in
    return Spec(
        "endpoint", "Endpoint", help_, required=required, advanced=advanced, placeholder=placeholder, initial=initial
    )


def _key_fields(*, gar: bool) -> tuple[Spec, ...]:
    alternative = " Or give an access token below instead." if gar else ""
    return (
        Spec(
            "service_account_key",
            "Service-account JSON key",
            "Paste the whole JSON key file, or upload it below. The portal mints short-lived access tokens "
            f"from it.{alternative}",
            secret=True,
            kind="textarea",
        ),
        Spec("service_account_key_file", "…or upload the key file", "A .json key file, at most 64 KiB.", kind="file"),
    )


# In the order of the add form's "Other Registry" tab (Docker Hub has a tab of its own).
RULES: dict[str, Rules] = {
    Provider.DOCKERHUB: Rules(
        intro="Images on hub.docker.com. Official images are found under library/.",
        fields=(
            Spec("username", "Docker Hub username", required=True, autocomplete="username"),
            Spec(
                "password",
                "Password or access token",
                "A personal access token (Account settings → Personal access tokens) is best: it can be read-only "
                "and revoked on its own.",
                required=True,
                secret=True,
                kind="password",
            ),
            _endpoint_field(
                f"Leave as {ocispec.DOCKER_HUB} unless you use a Docker Hub mirror on your own network.",
                ocispec.DOCKER_HUB,
                required=False,
                advanced=True,
            ),
        ),
        secrets=("password", "token"),
        clean_credentials=_password_credentials,
        clean_endpoint=_dockerhub_endpoint,
        default_endpoint=ocispec.DOCKER_HUB,
        default_name="dockerhub",  # a Docker Hub mirror on another host is still "dockerhub"
        advice="Use a dedicated read-only account with a personal access token of “Read-only” scope.",
        example="Endpoint index.docker.io, username acme-pull, its read-only access token.",
    ),
    Provider.OTHER: Rules(
        intro="Any registry that speaks the OCI Distribution API with a username and password: "
        "Harbor, Artifactory, Nexus, GitLab, a self-hosted Quay or Distribution.",
        fields=(
            _endpoint_field(
                "host[:port][/path-prefix], e.g. registry.example.com or registry.example.com/team. "
                "Write http://… only for a plain-HTTP registry where this portal allows it.",
                "registry.example.com",
            ),
            Spec("username", "Username", required=True, autocomplete="username"),
            Spec("password", "Password or token", required=True, secret=True, kind="password"),
        ),
        secrets=("password", "token"),
        clean_credentials=_password_credentials,
        clean_endpoint=_as_given,
        advice="Use a dedicated read-only account.",
        example="Endpoint registry.example.com, username pull-bot, its password or token.",
    ),
    Provider.ECR: Rules(
        intro="Amazon Elastic Container Registry, with an IAM access key.",
        fields=(
            _endpoint_field("<account>.dkr.ecr.<region>.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Spec(
                "username",
                "Access key ID",
                "The IAM access key ID (AKIA…); the user needs ecr:GetAuthorizationToken and pull permissions.",
                required=True,
                placeholder="AKIA…",
            ),
            Spec(
                "secret_access_key",
                "Secret access key",
                "The portal mints 12-hour ECR tokens with it and renews them itself.",
                required=True,
                secret=True,
                kind="password",
            ),
            Spec(
                "region",
                "Region",
                "Only when the endpoint is not of the form <account>.dkr.ecr.<region>.amazonaws.com, e.g. us-east-1.",
                advanced=True,
            ),
        ),
        secrets=("secret_access_key",),
        clean_credentials=_ecr_credentials,
        clean_endpoint=_ecr_endpoint,
        minting=ECR_MINTING,
        advice="Give an IAM user’s access key; the user needs the AmazonEC2ContainerRegistryReadOnly managed policy, "
        "or a narrower one allowing ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer.",
        example="Endpoint 123456789012.dkr.ecr.us-east-1.amazonaws.com, access key ID AKIA…, its secret access key.",
    ),
    Provider.GCR: Rules(
        intro="Google Container Registry, with a service account's JSON key.",
        fields=(
            _endpoint_field(
                "gcr.io, us.gcr.io, eu.gcr.io or asia.gcr.io, optionally with /<project>.", "gcr.io/my-project"
            ),
            *_key_fields(gar=False),
        ),
        secrets=("service_account_key",),
        clean_credentials=_google_credentials,
        clean_endpoint=_google_endpoint("gcr"),
        minting=GOOGLE_MINTING,
        username_from_secret=True,
        advice="Use a service account with the Storage Object Viewer role; create its JSON key with "
        "“ADD KEY” → “Create new key” → JSON.",
        example="Endpoint gcr.io with the downloaded JSON key file.",
    ),
    Provider.GAR: Rules(
        intro="Google Artifact Registry, with a service account's JSON key or an access token.",
        fields=(
            _endpoint_field(
                "<location>-docker.pkg.dev, optionally with /<project>/<repository>.", "us-central1-docker.pkg.dev"
            ),
            *_key_fields(gar=True),
            Spec(
                "token",
                "Access token",
                "Instead of a key: the output of “gcloud auth print-access-token”. It expires within an hour, "
                "so a key is better.",
                secret=True,
                kind="password",
            ),
        ),
        secrets=("service_account_key", "token"),
        clean_credentials=_google_credentials,
        clean_endpoint=_google_endpoint("gar"),
        minting=GOOGLE_MINTING,
        username_from_secret=True,
        advice="Use a service account with the Artifact Registry Reader role; create its JSON key with "
        "“ADD KEY” → “Create new key” → JSON.",
        example="Endpoint us-docker.pkg.dev with the downloaded JSON key file.",
    ),
    Provider.GHCR: Rules(
        intro=f"{GHCR_HOST}, with a GitHub username and personal access token.",
        fields=(
            Spec("username", "GitHub username", required=True, autocomplete="username"),
            Spec(
                "token",
                "Personal access token",
                "A classic token with the read:packages scope.",
                required=True,
                secret=True,
                kind="password",
            ),
            _endpoint_field(f"Leave as {GHCR_HOST}.", GHCR_HOST, required=False, advanced=True),
        ),
        secrets=("token", "password"),
        clean_credentials=_password_credentials,
        clean_endpoint=_on_host(GHCR_HOST, f"GitHub Container Registry's endpoint is {GHCR_HOST}."),
        default_endpoint=GHCR_HOST,
        advice="Use a personal access token (classic) with the read:packages scope.",
        example="Username acme-bot with a classic token that has only read:packages.",
    ),
    Provider.QUAY: Rules(
        intro=f"{QUAY_HOST}, with a user or robot account.",
        fields=(
            Spec(
                "username",
                "Username",
                "Your Quay user, or a robot account such as acme+deploy.",
                required=True,
                autocomplete="username",
            ),
            Spec(
                "password",
                "Password or token",
                "The robot account's token, or your encrypted password from Quay's account settings.",
                required=True,
                secret=True,
                kind="password",
            ),
            _endpoint_field(
                f"Leave as {QUAY_HOST}; a self-hosted Quay is an “Other OCI registry”.",
                QUAY_HOST,
                required=False,
                advanced=True,
            ),
        ),
        secrets=("password", "token"),
        clean_credentials=_password_credentials,
        clean_endpoint=_on_host(QUAY_HOST, f"Quay's endpoint is {QUAY_HOST}; use “other” for a self-hosted Quay."),
        default_endpoint=QUAY_HOST,
        advice="Use a robot account with read permission on your repositories.",
        example="Username acme+pull with the robot account’s token.",
    ),
}

# Every secret input any provider takes; none is ever returned.
SECRET_INPUTS = tuple(dict.fromkeys(name for rules in RULES.values() for name in rules.secrets))
# The providers whose tokens the beat job renews.
MINTING_PROVIDERS = tuple(p for p, rules in RULES.items() if rules.minting is not None)


def rules(provider: str) -> Rules:
    """The rules of a provider; KeyError for one that is not a Provider."""
    return RULES[provider]


def mints_tokens(provider: str, username: str) -> bool:
    """Whether the portal mints tokens from the stored secret: ECR always, Google unless the
    vendor gave an access token to use as it is (stored under Google's token user name)."""
    minting = provider in RULES and RULES[provider].minting is not None
    return minting and username != gcr.REGISTRY_USERNAME


# --- the name a registry gets when the vendor gives none -----------------------------------
# Releases refer to registries by name in `images:`, so a derived name should read like what a
# vendor would have typed: `local-5101`, `quay-acme`, `ecr-us-east-1`, not `127-0-0-1-5101`.
# Only new registries are named this way; a stored name never changes.

_LOOPBACK_HOSTS = frozenset({"localhost", "[::1]"})
_GAR_HOST_RE = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev$")
_GCR_HOST_RE = re.compile(r"^(?:(?P<region>[a-z]+)\.)?gcr\.io$")
# Hosts whose first label says all: quay.io -> quay, ghcr.io -> ghcr.
_SHORT_HOSTS = {QUAY_HOST: "quay", GHCR_HOST: "ghcr", **{host: "dockerhub" for host in ocispec.DOCKER_HUB_HOSTS}}


def _host_label(host: str) -> str:
    """The readable stem for a host (no port): a well-known registry's short name, or the host."""
    if host in _LOOPBACK_HOSTS or host.startswith("127."):
        return "local"
    if host in _SHORT_HOSTS:
        return _SHORT_HOSTS[host]
    if match := ecr.ENDPOINT_RE.fullmatch(host):
        return f"ecr-{match['region']}"
    if match := _GAR_HOST_RE.fullmatch(host):
        return f"gar-{match['location']}"
    if match := _GCR_HOST_RE.fullmatch(host):
        return f"gcr-{match['region']}" if match["region"] else "gcr"
    return host.strip("[]")


def name_for_endpoint(endpoint: str) -> str:
    """A registry name read off its endpoint (lowercase letters, digits, hyphens; at most 63).

    `127.0.0.1:5101` -> `local-5101`, `quay.io/acme` -> `quay-acme`, `ghcr.io/acme/tools` ->
    `ghcr-acme-tools`, `index.docker.io` -> `dockerhub`, `<account>.dkr.ecr.us-east-1.amazonaws.com`
    -> `ecr-us-east-1`, `europe-docker.pkg.dev/proj/repo` -> `gar-europe-proj-repo`,
    `registry.example.com` -> `registry-example-com`."""
    address = endpoint.strip().lower().removeprefix("http://").removeprefix("https://").strip("/")
    authority, _, path = address.partition("/")
    if authority.startswith("["):  # an IPv6 literal: the port follows the closing bracket
        host, _, port = authority.partition("]")
        host, port = host + "]", port.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    parts = [_host_label(host), port, *path.split("/")]
    name = re.sub(r"[^a-z0-9]+", "-", "-".join(p for p in parts if p)).strip("-")
    return name[:63].rstrip("-") or "registry"


# --- recognising a cloud registry typed into the "Other" tab -------------------------------
# Vendors follow their cloud's own docs, which say to log in with a Basic user/password: for
# Google `_json_key` (or `_json_file`) and the JSON key, for ECR the IAM access key. Stored as
# Basic, the key would go upstream on every pull (Google) or stop working (ECR wants a token
# minted with the key), so such credentials are saved as the cloud's provider instead.

JSON_KEY_USERNAMES = frozenset({"_json_key", "_json_file"})
# AKIA… (a user's key) or ASIA… (temporary: the ECR rules refuse it with their own message).
ACCESS_KEY_SHAPE_RE = re.compile(r"^A[KS]IA[A-Z0-9]{16}$")
RECOGNISED_NOTES = {
    Provider.GCR: "the portal exchanges the key for short-lived tokens.",
    Provider.GAR: "the portal exchanges the key for short-lived tokens.",
    Provider.ECR: "the portal mints and refreshes 12-hour tokens with this access key.",
}


@dataclass(frozen=True)
class Recognised:
    """Credentials typed as a Basic login, as the provider they belong to."""

    provider: str
    username: str
    secrets: dict[str, str] = field(repr=False)
    given_as: dict[str, str]  # the provider's secret field -> the field the vendor typed it in

    def as_given(self, error: ValidationError) -> ValidationError:
        """The provider's errors on the fields the vendor filled in (password, not secret_access_key)."""
        if not hasattr(error, "error_dict"):
            return error
        return ValidationError({self.given_as.get(name, name): problems for name, problems in error.error_dict.items()})


def recognised_note(provider: str) -> str:
    """What the page says after saving an "Other" registry as `provider`."""
    return f"Saved as {Provider(provider).label}: {RECOGNISED_NOTES[provider]}"


@sensitive_variables("secrets", "value", "info")
def recognise(endpoint: str, username: str, secrets: dict[str, str]) -> Recognised | None:
    """The cloud provider that Basic credentials for `endpoint` really are, or None (a plain login).

    `_json_key`/`_json_file` with a service-account key is Google (Artifact Registry on *.pkg.dev,
    else Container Registry); an AWS access key for an ECR host is ECR. A `_json_key` login whose
    password is no usable key is refused on the password field, naming the key's problem."""
    given = [name for name in ("password", "token") if secrets.get(name)]
    if len(given) != 1:
        return None  # nothing to recognise, or both (the Basic rules name that)
    field_given, value = given[0], secrets[given[0]]
    username = (username or "").strip()
    address = (endpoint or "").strip().lower().removeprefix("https://")
    host = address.split("/")[0]
    if username in JSON_KEY_USERNAMES:
        try:
            gcr.parse_service_account_key(value)
        except gcr.GcrInputError as e:
            raise ValidationError(
                {
                    field_given: f"With the user name {username} the password must be a service-account JSON key: "
                    f"{e.message}"
                }
            ) from None
        provider = Provider.GAR if host.endswith(".pkg.dev") else Provider.GCR
        return Recognised(provider, "", {"service_account_key": value}, {"service_account_key": field_given})
    if ecr.ENDPOINT_RE.fullmatch(host) and ACCESS_KEY_SHAPE_RE.fullmatch(username):
        return Recognised(Provider.ECR, username, {"secret_access_key": value}, {"secret_access_key": field_given})
    return None
