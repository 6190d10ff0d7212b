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
