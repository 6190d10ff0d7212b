"""Debian's Chromium driven by Playwright (never `playwright install`: it downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium():
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while
    it lives, which would break asyncio.run() in the tests that come after."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh does it as root)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_context_args() -> dict:
    """How the page's browser context is made; a module overrides it to be, say, a phone."""
    return {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def page(chromium, live_server, csp_violations, browser_context_args):
    context = chromium.new_context(base_url=live_server.url, **browser_context_args)
    page = context.new_page()
    page.set_default_timeout(10_000)
    # Chromium reports what the Content-Security-Policy blocked on the console; any of it
    # means a script, handler or style of ours no longer runs.
    page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    assert csp_violations == [], csp_violations


@pytest.fixture
def csp_violations() -> list[str]:
    return []


@pytest.fixture
def screenshot(page):
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
