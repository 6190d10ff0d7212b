"""Custom domains as the Host header meets them: rows made here directly (the admin UI and the
DNS check are another suite's), the allowed-hosts object the settings build, fresh addresses."""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Callable

import pytest
from django.test import Client

import portal.settings as configured
from accounts import domains
from accounts.models import CustomDomain, DomainKind, DomainStatus
from portal.hosts import AllowedHosts

_run = secrets.token_hex(2)
_addresses = itertools.count(1)


def address() -> str:
    """A client address of its own per call and run: rate-limit counters live a minute in Redis."""
    return f"2001:db8:{_run}:d0::{next(_addresses):x}"


def basic(license_id: str) -> str:
    return "Basic " + base64.b64encode(f"{license_id}:{license_id}".encode()).decode()


def client(host: str | None = None, **extra: str) -> Client:
    """A client of its own address, asking for `host` (Django's test host when None)."""
    defaults = {"REMOTE_ADDR": address(), **extra}
    if host:
        defaults["HTTP_HOST"] = host
    return Client(**defaults)


@pytest.fixture(autouse=True)
def allowed_hosts(settings):
    """The ALLOWED_HOSTS object portal/settings.py built (the test runner swapped in a plain
    copy of its patterns), with the test client's host added as the runner does."""
    assert isinstance(configured.ALLOWED_HOSTS, AllowedHosts)
    settings.ALLOWED_HOSTS = AllowedHosts([*configured.ALLOWED_HOSTS.configured(), "testserver"])
    domains.forget()
    yield settings.ALLOWED_HOSTS
    domains.forget()


@pytest.fixture
def make_domain(db) -> Callable[..., CustomDomain]:
    """`make_domain(team, "proxy.acme.test", kind=..., status=...)`: a row, seen at once."""

    def make(team, domain: str, *, kind: str = DomainKind.PROXY, status: str = DomainStatus.VERIFIED) -> CustomDomain:
        row = CustomDomain.objects.create(
            team=team, domain=domain, kind=kind, status=status, challenge=secrets.token_hex(16)
        )
        domains.forget()
        return row

    return make


def set_status(row: CustomDomain, status: str) -> None:
    CustomDomain.objects.filter(pk=row.pk).update(status=status)
    domains.forget()
