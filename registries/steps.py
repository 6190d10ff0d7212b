"""The connection test's steps, named once: the pages show these labels and the API returns them
with every step (so the CLI prints the same words); and which failures are the registry's
credentials' and which are one image's."""

from __future__ import annotations

from typing import Any

# (name, label) in the order a test runs them; the names are the client's (oci.check.StepName).
STEPS: tuple[tuple[str, str], ...] = (
    ("ping", "Reach /v2/"),
    ("auth", "Log in"),
    ("manifest", "Fetch the manifest"),
    ("blob", "Check a layer"),
)
LABELS = dict(STEPS)

# Steps that decide the registry's credential health: can we reach it and log in.
CREDENTIAL_STEPS = frozenset({"ping", "auth"})
# A later step that fails like this means the registry went away, not that the image is missing.
UNREACHABLE = frozenset({"dns", "connect", "timeout", "tls", "blocked", "insecure_not_allowed"})


def step_label(name: str) -> str:
    return LABELS.get(name, name)


def labelled_steps(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A stored result's steps, each with its label."""
    steps = (result or {}).get("steps") or []
    return [{**s, "label": step_label(s.get("name", ""))} for s in steps if isinstance(s, dict)]


def failed_step(result: dict[str, Any] | None) -> str | None:
    return next((s.get("name") for s in labelled_steps(result) if s.get("outcome") == "failed"), None)


def is_image_finding(category: str, result: dict[str, Any] | None) -> bool:
    """A failed test whose credentials worked (ping and login passed) and whose registry still
    answered: "acme/api:9.9.9 not found" is about the image, not the registry."""
    return failed_step(result) in ("manifest", "blob") and category not in UNREACHABLE
