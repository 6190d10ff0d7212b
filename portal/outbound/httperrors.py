"""httpx's exceptions as RegistryError categories, in our own words (the library's are dropped)."""

from __future__ import annotations

import ssl

import httpx

from .errors import ErrorCategory, RegistryError


def _has_cause(exc: BaseException, kind: type[BaseException]) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def where(url: httpx.URL) -> str:
    """host[:port] as a vendor typed it: 127.0.0.1:5102, not 127.0.0.1 (which registry on that host?)."""
    return url.netloc.decode("ascii")


def as_registry_error(exc: httpx.HTTPError, host: str = "") -> RegistryError:
    """Map an httpx exception to a category. The text is ours; the library's is dropped."""
    where = f" {host}" if host else ""
    if isinstance(exc, httpx.TimeoutException):
        return RegistryError(f"timed out talking to{where or ' the registry'}", ErrorCategory.TIMEOUT)
    if _has_cause(exc, ssl.SSLCertVerificationError):
        return RegistryError(f"TLS certificate of{where or ' the server'} is not valid", ErrorCategory.TLS)
    if _has_cause(exc, ssl.SSLError):
        return RegistryError(f"TLS handshake with{where or ' the server'} failed", ErrorCategory.TLS)
    if isinstance(exc, httpx.ConnectError):
        return RegistryError(f"could not connect to{where or ' the server'}", ErrorCategory.CONNECT)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return RegistryError(f"{host or 'the server'} sent an invalid HTTP response", ErrorCategory.INVALID_RESPONSE)
    if isinstance(exc, httpx.NetworkError):
        return RegistryError(f"the connection to{where or ' the server'} broke", ErrorCategory.CONNECT)
    return RegistryError(f"request to{where or ' the server'} failed", ErrorCategory.CONNECT)
