"""Reading /metrics in the tests: the series' values from the Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-token-7d1e0c4b"  # noqa: S105 (a test value)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (sample name, its labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value in a scrape, 0 when the series has not been counted yet."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)
