"""Registry traffic bypasses Django's middleware; everything else keeps it."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_registry_paths_skip_the_middleware_and_pages_keep_it(portal_server):
    v2 = httpx.get(f"{portal_server.url}/v2/")
    assert v2.status_code == 401 and v2.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert "X-Frame-Options" not in v2.headers  # XFrameOptionsMiddleware did not run
    page = httpx.get(f"{portal_server.url}/login/")
    assert page.status_code == 200 and page.headers["X-Frame-Options"] == "DENY"
    assert httpx.get(f"{portal_server.url}/v2", follow_redirects=False).status_code == 301  # APPEND_SLASH


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_pages_carry_the_portal_policy_and_registry_answers_a_sandbox(portal_server):
    """Security headers on the real ASGI stack: the pages' CSP (django-csp), frame and referrer
    policies; every registry answer gets its sandbox from portal/asgi.py, without middleware."""
    for path in ("/login/", "/.well-known/jwks.json", "/no-such-page/"):
        response = httpx.get(f"{portal_server.url}{path}")
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, (path, policy)
        assert "unsafe" not in policy, (path, policy)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    docs = _directives(httpx.get(f"{portal_server.url}/api/v1/docs/").headers["Content-Security-Policy"])
    assert docs["style-src"] == "'self' 'unsafe-inline'" and docs["script-src"] == "'self'"
    for method, path in (
        ("GET", "/v2/"),
        ("GET", "/v2/token"),
        ("POST", "/hooks/registry"),
        ("GET", "/v2/x/tags/list"),
    ):
        response = httpx.request(method, f"{portal_server.url}{path}")
        assert response.status_code in (401, 404), (path, response.status_code)
        assert response.headers.get_list("Content-Security-Policy") == ["default-src 'none'; sandbox"]
        assert response.headers.get_list("X-Content-Type-Options") == ["nosniff"]
