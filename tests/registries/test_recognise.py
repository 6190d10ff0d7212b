"""A cloud's login typed into the "Other Registry" tab, as the clouds' docs tell vendors to: Google's
`_json_key`/`_json_file` with a JSON key, an ECR host with an AWS access key. The service saves them
as the cloud's provider, which mints short-lived tokens (loopback Google token endpoint, moto)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from registries import providers, services
from registries.models import CheckStatus, ExternalRegistry, RegistryTest

pytestmark = pytest.mark.django_db

URL = "/api/v1/external-registries/"
ECR_ENDPOINT = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _other(endpoint: str, username: str, password: str, **extra) -> dict:
    return {"provider": "other", "endpoint": endpoint, "username": username, "password": password, **extra}


def _run_test(registry, image: str) -> RegistryTest:
    test = RegistryTest.objects.create(registry=registry, image=image, requested_by="test")
    return services.registry_test_run(test.pk)


def _broken_key(key) -> str:
    """The key with its private_key replaced by something that is no RSA key."""
    return json.dumps(
        {**key.info, "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n"}
    )


@pytest.mark.slow
def test_a_json_key_login_typed_as_other_is_saved_as_gcr_and_pulls_an_image(
    admin_api, service_account_key, google_token_endpoint, gcr_token_registry
):
    key = service_account_key()
    response = admin_api.post(URL, _other(gcr_token_registry.endpoint, "_json_key", key.text), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["provider"], body["username"]) == ("gcr", key.client_email)
    registry = ExternalRegistry.objects.get()
    assert json.loads(services.registry_secret(registry)["service_account_key"]) == key.info
    test = _run_test(registry, "acme/v2s2:1.0.0")
    assert test.status == CheckStatus.SUCCEEDED, test.message
    assert all(r.claims is not None for r in google_token_endpoint.requests)  # minted with the key's signature
    assert key.secret_marker not in json.dumps(body)


def test_json_file_on_an_artifact_registry_host_is_saved_as_gar(admin_api, service_account_key):
    key = service_account_key()
    data = _other("europe-docker.pkg.dev/acme/images", "_json_file", key.text, skip_validation=True)
    response = admin_api.post(URL, data, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["provider"], response.json()["username"]) == ("gar", key.client_email)


def test_a_json_key_login_with_a_broken_private_key_names_the_key_and_stores_nothing(admin_api, service_account_key):
    key = service_account_key()
    broken = _broken_key(key)
    # Even unchecked upstream, a `_json_key` password that is no usable key is not saved as a login.
    response = admin_api.post(URL, _other("gcr.io", "_json_key", broken, skip_validation=True), format="json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["password"]
    assert message == (
        "With the user name _json_key the password must be a service-account JSON key: "
        'Field "private_key" is not a PEM-encoded, unencrypted RSA private key.'
    )
    assert "not-a-key" not in response.content.decode() and key.client_email not in response.content.decode()
    assert ExternalRegistry.objects.count() == 0


@pytest.mark.slow
def test_a_json_key_the_token_endpoint_refuses_is_named_on_the_password_field(
    admin_api, service_account_key, google_token_endpoint, gcr_token_registry
):
    key = service_account_key(register=False)  # the token endpoint does not know this account
    response = admin_api.post(URL, _other(gcr_token_registry.endpoint, "_json_key", key.text), format="json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["password"]
    assert message.startswith("Google rejected the service-account key (invalid_grant)")
    assert ExternalRegistry.objects.count() == 0


@pytest.mark.slow
def test_an_ecr_host_with_an_access_key_typed_as_other_is_saved_as_ecr_and_mints_with_moto(admin_api, ecr_iam_keys):
    key_id, secret = ecr_iam_keys
    # Nothing listens at the real ECR host here: saved unchecked, then a token is minted through moto.
    response = admin_api.post(URL, _other(ECR_ENDPOINT, key_id, secret, skip_validation=True), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["provider"], body["username"], body["region"]) == ("ecr", key_id, "us-east-1")
    registry = ExternalRegistry.objects.get()
    assert services.registry_secret(registry) == {"secret_access_key": secret}
    credentials = services.registry_credentials(registry)
    assert credentials.username == "AWS" and credentials.password
    registry.refresh_from_db()
    assert registry.minted_token and registry.minted_token_expires_at


@pytest.mark.slow
def test_an_ecr_secret_aws_refuses_is_named_on_the_password_field_and_nothing_stored(admin_api, ecr_iam_keys):
    key_id, secret = ecr_iam_keys
    wrong = secret[:-4] + "XXXX"
    response = admin_api.post(URL, _other(ECR_ENDPOINT, key_id, wrong), format="json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["password"]
    assert message.startswith("AWS rejected the access key") and wrong not in message
    assert ExternalRegistry.objects.count() == 0


def test_an_other_registry_edited_with_a_json_key_becomes_gcr(admin_api, actor, service_account_key):
    registry = services.registry_create(
        actor=actor, provider="other", endpoint="gcr.io", username="someone", password="p4ssword",
        skip_validation=True,
    )  # fmt: skip
    key = service_account_key()
    data = {"username": "_json_key", "password": key.text, "skip_validation": True}
    response = admin_api.patch(f"{URL}{registry.pk}/", data, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["provider"], response.json()["username"]) == ("gcr", key.client_email)
    registry.refresh_from_db()
    assert json.loads(services.registry_secret(registry)["service_account_key"]) == key.info


@pytest.mark.parametrize(
    ("endpoint", "username", "provider"),
    [
        (ECR_ENDPOINT, "AKIAIOSFODNN7EXAMPLE", "ecr"),
        ("https://123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/", "AKIAIOSFODNN7EXAMPLE", "ecr"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "AKIAIOSFODNN7EXAMPLE", "ecr"),
        (ECR_ENDPOINT, "ASIAIOSFODNN7EXAMPLE", "ecr"),  # so that ECR's rules say temporary keys will not do
        (ECR_ENDPOINT, "AWS", None),  # a 12-hour token pasted as a password stays a plain login
        ("registry.example.com", "AKIAIOSFODNN7EXAMPLE", None),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", "AKIAIOSFODNN7EXAMPLE", None),
    ],
)
def test_which_logins_are_recognised_as_ecr(endpoint, username, provider):
    recognised = providers.recognise(endpoint, username, {"password": "x" * 40})
    assert (recognised.provider if recognised else None) == provider


def test_a_plain_login_stays_other(admin_api):
    data = _other("registry.example.com", "robot", "s3cret-pass", skip_validation=True)
    response = admin_api.post(URL, data, format="json")
    assert response.status_code == 201 and response.json()["provider"] == "other"
    assert services.registry_secret(ExternalRegistry.objects.get()) == {"password": "s3cret-pass"}


# --- the page ---------------------------------------------------------------------------


def test_the_other_tab_says_it_saved_a_json_key_as_gcr(admin_client, service_account_key):
    key = service_account_key()
    data = {
        "provider": "other",
        "other_endpoint": "gcr.io/acme",
        "other_username": "_json_key",
        "other_password": json.dumps(key.info),  # a password input drops the file's line breaks
        "skip_validation": "on",
    }
    response = admin_client.post(reverse("registries:create"), data, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert "Saved as Google Container Registry: the portal exchanges the key for short-lived tokens." in shown
    assert ExternalRegistry.objects.get().provider == "gcr"


def test_the_other_tab_puts_a_broken_key_on_the_password_field(admin_client, service_account_key):
    key = service_account_key()
    data = {
        "provider": "other",
        "other_endpoint": "gcr.io",
        "other_username": "_json_file",
        "other_password": _broken_key(key),
        "skip_validation": "on",
    }
    body = admin_client.post(reverse("registries:create"), data).content.decode()
    error = body.split('id="reg_other_password_error"', 1)[1].split("</div>", 1)[0]
    assert "Field &quot;private_key&quot; is not a PEM-encoded" in error
    assert "not-a-key" not in body
    assert ExternalRegistry.objects.count() == 0


def test_a_temporary_aws_key_typed_as_other_is_refused_by_name(admin_api):
    data = _other(
        ECR_ENDPOINT, "ASIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", skip_validation=True
    )
    response = admin_api.post(URL, data, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["username"] == [
        "Temporary (ASIA…) keys are not supported; use an IAM user's access key."
    ]
    assert ExternalRegistry.objects.count() == 0
