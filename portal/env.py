"""Tiny typed readers for environment settings; a bad value stops start-up with a clear reason."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (for secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {e.strerror}") from e
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not value >= minimum:  # also refuses nan
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, not {raw!r}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str, default: str = "") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a CIDR network") from None
    return networks


def env_ports(name: str) -> list[tuple[int, int]] | None:
    """`443,5000,8000-8999` as inclusive (first, last) ranges; None when unset or blank (any port)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    ranges = []
    for item in env_list(name):
        first, dash, last = item.partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a port or a range like 8000-8999") from None
        if not 1 <= low <= high <= 65535:
            raise ImproperlyConfigured(f"{name}: {item!r} must be ports from 1 to 65535, the lower first")
        ranges.append((low, high))
    return ranges


def nameserver_address(entry: str) -> tuple[str, int]:
    """A name server as `ip`, `ip:port`, a bare IPv6 address or `[ipv6]:port` → (address, port).
    Only addresses: a name server named by a host name would need a resolver to be found.
    ValueError says what is wrong with `entry`."""
    text, port_text = entry.strip(), ""
    if text.startswith("["):
        text, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 address with a port is written [addr]:port")
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            raise ValueError("a port is missing after the colon")
    elif text.count(":") == 1:
        text, port_text = text.split(":")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{port_text!r} is not a port from 1 to 65535")
    return str(address), int(port_text or 53)


def env_nameservers(name: str) -> list[str]:
    """A comma-separated list of `ip[:port]` (IPv6 with a port: `[addr]:port`), checked now so a
    typo stops start-up instead of every DNS lookup."""
    entries = env_list(name)
    for entry in entries:
        try:
            nameserver_address(entry)
        except ValueError as e:
            raise ImproperlyConfigured(
                f"{name}: {entry!r} is not ip[:port] ({e}); IPv6 with a port: [addr]:port"
            ) from None
    return entries


EMAIL_SCHEMES = {
    "smtp": {},
    "smtp+tls": {"EMAIL_USE_TLS": True},
    "smtps": {"EMAIL_USE_SSL": True},
}


def email_settings(url: str) -> dict[str, object]:
    """Django's e-mail settings from one URL: smtp://user:password@host:587 (STARTTLS with
    smtp+tls://, implicit TLS with smtps://), console:// (mails go to the log), or "" for none.
    The user name and password are percent-decoded, so they may contain @ or :."""
    if not url:
        return {"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
    parts = urlsplit(url)
    if parts.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parts.scheme not in EMAIL_SCHEMES or not parts.hostname:
        raise ImproperlyConfigured(
            f"EMAIL_URL: use smtp://user:password@host:587, smtp+tls://, smtps:// or console://, not {parts.scheme}://"
        )
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        **EMAIL_SCHEMES[parts.scheme],
    }
