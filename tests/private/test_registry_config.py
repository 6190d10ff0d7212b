"""`manage.py registry_config`: the Distribution config the private registry runs with."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from portal import registry_tokens


@pytest.fixture
def write(tmp_path, monkeypatch):
    for name in ("REGISTRY_STORAGE_DRIVER", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"):
        monkeypatch.delenv(name, raising=False)

    def write(*args: str) -> dict:
        path = tmp_path / "config.yml"
        call_command("registry_config", "--output", str(path), *args)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the notification secret
        return yaml.safe_load(path.read_text())

    return write


def test_token_auth_points_at_this_portal_with_its_service_issuer_and_certificate(write):
    config = write("--portal-url", "https://portal.example.com/")
    token = config["auth"]["token"]
    assert token["realm"] == "https://portal.example.com/v2/token"
    assert token["service"] == settings.REGISTRY_SERVICE == "portal-registry"
    assert token["issuer"] == settings.REGISTRY_TOKEN_ISSUER
    bundle = Path(token["rootcertbundle"])
    assert bundle.read_bytes() == registry_tokens.signing_key().certificate_pem
    assert set(config["auth"]) == {"token"}  # no htpasswd, no silly auth


def test_notifications_go_to_the_webhook_with_the_shared_secret_and_health_checks_are_on(write):
    config = write("--portal-url", "http://127.0.0.1:8123")
    [endpoint] = config["notifications"]["endpoints"]
    assert endpoint["url"] == "http://127.0.0.1:8123/hooks/registry"
    assert endpoint["headers"] == {"Authorization": [f"Bearer {settings.REGISTRY_NOTIFY_SECRET}"]}
    assert config["health"]["storagedriver"]["enabled"] is True
    assert config["log"]["level"] == "warn"  # at info Distribution logs the endpoint's headers


def test_defaults_filesystem_storage_under_var_registry_listening_on_loopback_5000(write):
    config = write()
    assert config["storage"] == {
        "filesystem": {"rootdirectory": str(Path(settings.VAR_DIR) / "registry" / "data")},
        "delete": {"enabled": True},
    }
    assert config["http"]["addr"] == "127.0.0.1:5000"
    assert config["auth"]["token"]["realm"] == f"{settings.PORTAL_URL}/v2/token"


def test_s3_storage_from_the_environment(write, monkeypatch):
    monkeypatch.setenv("REGISTRY_STORAGE_DRIVER", "s3")
    monkeypatch.setenv("REGISTRY_STORAGE_S3_BUCKET", "acme-images")
    monkeypatch.setenv("REGISTRY_STORAGE_S3_REGION", "eu-central-1")
    config = write("--addr", "0.0.0.0:5001")
    assert config["storage"] == {"s3": {"bucket": "acme-images", "region": "eu-central-1"}, "delete": {"enabled": True}}
    assert config["http"]["addr"] == "0.0.0.0:5001"


def test_a_storage_driver_without_its_settings_is_refused(write, monkeypatch):
    monkeypatch.setenv("REGISTRY_STORAGE_DRIVER", "gcs")
    with pytest.raises(CommandError, match="REGISTRY_STORAGE_GCS_"):
        write()
