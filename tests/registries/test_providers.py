"""The provider rules are complete: a provider added to the choices without its rules fails here,
not on the first page that shows its form."""

from __future__ import annotations

from registries.providers import RULES, SECRET_INPUTS, Provider


def test_every_provider_has_rules_with_a_form_section_and_a_secret():
    assert set(RULES) == set(Provider.values)
    for provider, rules in RULES.items():
        names = {spec.name for spec in rules.fields}
        assert "endpoint" in names, provider
        assert set(rules.secrets) & names, f"{provider}: no form field for any secret it takes"
        assert set(rules.secrets) <= set(SECRET_INPUTS)


def test_a_provider_with_a_default_endpoint_offers_it_on_the_form():
    for provider, rules in RULES.items():
        endpoint = next(spec for spec in rules.fields if spec.name == "endpoint")
        assert endpoint.initial == rules.default_endpoint, provider
        assert endpoint.required == (not rules.default_endpoint), provider
