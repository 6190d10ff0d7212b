"""Amazon ECR: endpoint and key validation, and minting the 12 h registry token with boto3."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.views.decorators.debug import sensitive_variables

from portal.outbound.errors import ErrorCategory, RegistryError

# Strict on purpose: the region becomes part of the AWS API host name.
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
ACCOUNT_RE = re.compile(r"^\d{12}$")
# Reference: https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html (and the -fips hosts:
# https://docs.aws.amazon.com/general/latest/gr/ecr.html)
ENDPOINT_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
# Long-term IAM user keys; ASIA… keys are temporary and need a session token we do not store.
# Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-prefixes
ACCESS_KEY_ID_RE = re.compile(r"^AKIA[A-Z0-9]{16}$")
SECRET_ACCESS_KEY_RE = re.compile(r"^[A-Za-z0-9/+]{40}$")

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15
# A token that claims to be (nearly) expired on arrival is clock skew or a fake (moto says
# 2015): use it for the request in hand and mint again after this long, instead of looping.
SHORT_LIFETIME = timedelta(minutes=5)
MAX_LIFETIME = timedelta(hours=12)

# Error codes that mean "these keys are wrong" (real ECR sends the first two, moto the last two).
_BAD_KEY_CODES = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredTokenException",
    "AuthFailure",
    "MissingAuthenticationToken",
}
_FORBIDDEN_CODES = {"AccessDeniedException", "AccessDenied"}
_THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException"}
_XML_CODE_RE = re.compile(r"<Code>([A-Za-z]+)</Code>")


class EcrInputError(ValueError):
    """A value a vendor typed is not usable; `field` names it, the message never repeats it."""

    def __init__(self, message: str, field: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


@dataclass(frozen=True)
class EcrEndpoint:
    host: str
    region: str
    account_id: str | None  # None when the endpoint is not the standard ECR host form


@dataclass(frozen=True)
class EcrToken:
    username: str
    password: str = field(repr=False)
    expires_at: datetime  # when to mint again (clamped, see SHORT_LIFETIME)
    claimed_expires_at: datetime  # what AWS said, for display and diagnosis


def validate_region(region: str) -> str:
    if not isinstance(region, str) or not REGION_RE.fullmatch(region):
        raise EcrInputError("Region must look like us-east-1.", "region", "invalid_region")
    return region


def parse_ecr_endpoint(endpoint: str, region: str | None = None) -> EcrEndpoint:
    """Split `<account>.dkr.ecr.<region>.amazonaws.com`; other hosts need an explicit region."""
    host = (endpoint or "").strip().lower()
    host = host.removeprefix("https://").rstrip("/")
    if not host:
        raise EcrInputError("Endpoint is required.", "endpoint", "required")
    if region:
        region = validate_region(region)
    match = ENDPOINT_RE.fullmatch(host)
    if match:
        parsed = validate_region(match["region"])
        if region and region != parsed:
            raise EcrInputError("Region does not match the region in the endpoint.", "region", "region_mismatch")
        return EcrEndpoint(host=host, region=parsed, account_id=match["account"])
    if ".dkr.ecr." in host or host.endswith(".amazonaws.com"):
        raise EcrInputError(
            "Endpoint must look like 123456789012.dkr.ecr.us-east-1.amazonaws.com.",
            "endpoint",
            "invalid_endpoint",
        )
    if not region:
        raise EcrInputError(
            "Region is required when the endpoint is not <account>.dkr.ecr.<region>.amazonaws.com.",
            "region",
            "required",
        )
    return EcrEndpoint(host=host, region=region, account_id=None)


def validate_access_key_id(access_key_id: str) -> str:
    value = (access_key_id or "").strip()
    if value.startswith("ASIA"):
        raise EcrInputError(
            "Temporary (ASIA…) keys are not supported; use an IAM user's access key.",
            "access_key_id",
            "temporary_access_key",
        )
    if not ACCESS_KEY_ID_RE.fullmatch(value):
        raise EcrInputError(
            "Access key ID must be 20 characters starting with AKIA.",
            "access_key_id",
            "invalid_access_key_id",
        )
    return value


@sensitive_variables()
def validate_secret_access_key(secret_access_key: str) -> str:
    if not isinstance(secret_access_key, str) or not SECRET_ACCESS_KEY_RE.fullmatch(secret_access_key):
        raise EcrInputError(
            "Secret access key must be 40 characters (letters, digits, / and +).",
            "secret_access_key",
            "invalid_secret_access_key",
        )
    return secret_access_key


@sensitive_variables()
def mint_ecr_token(
    access_key_id: str,
    secret_access_key: str,
    region: str,
    registry_id: str | None = None,
) -> EcrToken:
    """Exchange IAM keys for a registry password (user `AWS`) valid for about 12 hours."""
    # Imported here: only ECR registries need boto3, and it is slow to import.
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
        SSLError,
    )
    from botocore.parsers import ResponseParserError

    validate_region(region)
    if registry_id is not None and not ACCOUNT_RE.fullmatch(registry_id):
        raise EcrInputError("Registry ID must be a 12-digit account ID.", "registry_id", "invalid_registry_id")

    # A session of our own: the default one is shared, not thread-safe, and would fall back
    # to the worker's own AWS credentials. The API host comes from the region (or from
    # AWS_ENDPOINT_URL_ECR, which boto3 honours, for moto in tests), never from vendor input.
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    # One attempt: the refresh task owns retries and backoff, so a dead endpoint fails fast.
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    client = session.client("ecr", config=config)
    kwargs = {"registryIds": [registry_id]} if registry_id else {}
    try:
        # Reference: https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html
        response = client.get_authorization_token(**kwargs)
    except ClientError as e:
        raise _client_error(e) from None
    except (ConnectTimeoutError, ReadTimeoutError) as e:
        raise RegistryError(f"Timed out talking to the ECR API ({type(e).__name__}).", ErrorCategory.TIMEOUT) from None
    except SSLError:
        raise RegistryError("TLS handshake with the ECR API failed.", ErrorCategory.TLS) from None
    except (EndpointConnectionError, ConnectionClosedError):
        raise RegistryError("Could not connect to the ECR API.", ErrorCategory.CONNECT) from None
    except ResponseParserError:
        raise RegistryError("The ECR API sent an unreadable answer.", ErrorCategory.INVALID_RESPONSE) from None
    except BotoCoreError as e:
        raise RegistryError(f"ECR API call failed ({type(e).__name__}).", ErrorCategory.UPSTREAM_ERROR) from None
    finally:
        client.close()
    return _token_from_response(response)


@sensitive_variables()
def _token_from_response(response: dict) -> EcrToken:
    try:
        data = response["authorizationData"][0]
        decoded = base64.b64decode(data["authorizationToken"], validate=True).decode()
        claimed = data["expiresAt"]
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error):
        raise RegistryError("ECR returned an unreadable authorization token.", ErrorCategory.INVALID_RESPONSE) from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise RegistryError("ECR returned an unreadable authorization token.", ErrorCategory.INVALID_RESPONSE)
    # proxyEndpoint is ignored on purpose: the registry address is the stored endpoint.
    now = datetime.now(UTC)
    claimed = claimed.astimezone(UTC) if claimed.tzinfo else claimed.replace(tzinfo=UTC)
    expires_at = min(max(claimed, now + SHORT_LIFETIME), now + MAX_LIFETIME)
    return EcrToken(username=username, password=password, expires_at=expires_at, claimed_expires_at=claimed)


def _client_error(error: Exception) -> RegistryError:
    """Turn a botocore ClientError into a RegistryError that names the AWS code, not the body."""
    info = error.response.get("Error", {})  # type: ignore[attr-defined]
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")  # type: ignore[attr-defined]
    code = str(info.get("Code", ""))
    if not code or code.isdigit():
        # moto answers JSON-protocol calls with an XML error body, which boto cannot parse.
        match = _XML_CODE_RE.search(str(info.get("Message", "")))
        code = match[1] if match else ""
    label = code or f"HTTP {status}"
    if code in _BAD_KEY_CODES or (not code and status == 401):
        message, category = "AWS rejected the access key", ErrorCategory.UNAUTHORIZED
    elif code in _FORBIDDEN_CODES or (not code and status == 403):
        message, category = "The access key may not call ecr:GetAuthorizationToken", ErrorCategory.FORBIDDEN
    elif code in _THROTTLE_CODES or status == 429:
        message, category = "The ECR API is rate limiting", ErrorCategory.RATE_LIMITED
    else:
        message, category = "The ECR API returned an error", ErrorCategory.UPSTREAM_ERROR
    return RegistryError(f"{message} ({label}).", category, status_code=status)
