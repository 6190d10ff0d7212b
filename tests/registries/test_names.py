"""A registry saved without a name gets one that reads like its endpoint (releases name it in `images:`)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from registries import services
from registries.providers import name_for_endpoint

NATURAL_NAMES = {
    "127.0.0.1:5101": "local-5101",
    "http://127.0.0.1:35007": "local-35007",
    "localhost:5000": "local-5000",
    "[::1]:5000": "local-5000",
    "localhost": "local",
    "quay.io": "quay",
    "quay.io/acme": "quay-acme",
    "ghcr.io": "ghcr",
    "ghcr.io/acme/tools": "ghcr-acme-tools",
    "index.docker.io": "dockerhub",
    "docker.io": "dockerhub",
    "registry.example.com": "registry-example-com",
    "registry.example.com:5000/team": "registry-example-com-5000-team",
    "10.1.2.3:5000": "10-1-2-3-5000",
    "[fd00::7]:5000": "fd00-7-5000",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-us-east-1",
    "123456789012.dkr.ecr.eu-west-2.amazonaws.com/team": "ecr-eu-west-2-team",
    "gcr.io": "gcr",
    "gcr.io/project": "gcr-project",
    "eu.gcr.io/project": "gcr-eu-project",
    "europe-docker.pkg.dev/proj/repo": "gar-europe-proj-repo",
    "us-central1-docker.pkg.dev/acme/images": "gar-us-central1-acme-images",
    "registry.example.com/my_team/x.y": "registry-example-com-my-team-x-y",
}


@pytest.mark.parametrize(("endpoint", "name"), NATURAL_NAMES.items())
def test_a_name_derived_from_an_endpoint_reads_naturally(endpoint, name):
    assert name_for_endpoint(endpoint) == name
    assert services.NAME_RE.match(name)


def test_a_derived_name_from_a_very_long_endpoint_is_cut_to_63_without_a_trailing_hyphen():
    name = name_for_endpoint("registry.example.com/" + "a" * 50 + "/" + "b" * 20)
    assert len(name) <= 63 and services.NAME_RE.match(name)


@pytest.mark.django_db
def test_a_second_registry_with_the_same_natural_name_gets_a_suffix(actor):
    first = services.registry_create(
        actor=actor, provider="other", endpoint="localhost:5000", username="u", password="p", skip_validation=True
    )
    second = services.registry_create(
        actor=actor, provider="other", endpoint="127.0.0.1:5000", username="u", password="p", skip_validation=True
    )
    third = services.registry_create(
        actor=actor, provider="other", endpoint="[::1]:5000", username="u", password="p", skip_validation=True
    )
    assert (first.name, second.name, third.name) == ("local-5000", "local-5000-2", "local-5000-3")


@pytest.mark.django_db
def test_another_teams_registry_does_not_take_the_natural_name(actor, outsider_actor):
    services.registry_create(
        actor=outsider_actor, provider="other", endpoint="quay.io/acme", username="u", password="p",
        skip_validation=True,
    )  # fmt: skip
    mine = services.registry_create(
        actor=actor, provider="other", endpoint="quay.io/acme", username="u", password="p", skip_validation=True
    )
    assert mine.name == "quay-acme"


@pytest.mark.django_db
def test_a_name_given_by_the_vendor_that_is_taken_is_refused_not_suffixed(actor):
    services.registry_create(
        actor=actor, provider="other", endpoint="localhost:5000", username="u", password="p", skip_validation=True
    )
    with pytest.raises(ValidationError) as e:
        services.registry_create(
            actor=actor, provider="other", endpoint="localhost:5001", name="local-5000", username="u", password="p",
            skip_validation=True,
        )  # fmt: skip
    assert "already has a registry named" in e.value.message_dict["name"][0]


@pytest.mark.django_db
def test_editing_a_registry_with_a_blank_name_keeps_its_name(actor):
    registry = services.registry_create(
        actor=actor, provider="other", endpoint="localhost:5000", name="mirror", username="u", password="p",
        skip_validation=True,
    )  # fmt: skip
    registry = services.registry_update(actor=actor, registry=registry, name="", endpoint="localhost:5000")
    assert registry.name == "mirror"
