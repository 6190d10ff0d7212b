"""The start-up warm-up: every template compiled into the cached loader, every view imported."""

from __future__ import annotations

from django.template import engines
from django.urls import clear_url_caches, get_resolver

from portal.warmup import warm_up


def _cached_names() -> set[str]:
    engine = engines["django"].engine
    cached = next(loader for loader in engine.template_loaders if hasattr(loader, "get_template_cache"))
    return set(cached.get_template_cache)


def test_warm_up_compiles_every_template_and_imports_every_view(settings, tmp_path):
    settings.REGISTRY_TOKEN_KEY_FILE = str(tmp_path / "registry-token.key")
    engines["django"].engine.template_loaders[0].reset()
    clear_url_caches()
    warm_up()
    cached = _cached_names()
    assert {"base.html", "registries/image_list.html", "licenses/license_form.html"} <= cached
    assert "url_patterns" in get_resolver().__dict__, "the URLconf (and so every view) is loaded"
    assert (tmp_path / "registry-token.key").exists(), "the token key is loaded (made on first use)"


def test_a_template_that_does_not_compile_is_logged_and_the_rest_still_load(settings, tmp_path, caplog):
    (tmp_path / "broken.html").write_text("{% if %}")
    (tmp_path / "fine.html").write_text("fine")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    settings.REGISTRY_TOKEN_KEY_FILE = str(tmp_path / "registry-token.key")
    warm_up()
    assert "fine.html" in _cached_names()
    assert any("broken.html does not compile" in r.getMessage() for r in caplog.records)
