from __future__ import annotations

from pathlib import Path

import pytest

from expungeservice import create_app
from expungeservice.settings import DEFAULT_STATIC_DIR, DEFAULT_VERSION_FILE


def test_factory_reads_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIER", "staging")
    monkeypatch.setenv("RS_STATIC_DIR", str(tmp_path / "static"))
    monkeypatch.setenv("RS_VERSION_FILE", str(tmp_path / "v.json"))
    app = create_app()
    assert app.config["TIER"] == "staging"
    assert app.config["RS_STATIC_DIR"] == tmp_path / "static"
    assert app.config["RS_VERSION_FILE"] == tmp_path / "v.json"


def test_factory_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TIER", "RS_STATIC_DIR", "RS_VERSION_FILE"):
        monkeypatch.delenv(name, raising=False)
    app = create_app()
    assert app.config["TIER"] == "dev"
    assert app.config["RS_STATIC_DIR"] == Path(DEFAULT_STATIC_DIR)
    assert app.config["RS_VERSION_FILE"] == Path(DEFAULT_VERSION_FILE)


def test_factory_rejects_unknown_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIER", "prod")
    with pytest.raises(ValueError, match="TIER"):
        create_app()


def test_overrides_replace_config() -> None:
    app = create_app({"TESTING": True, "TIER": "production"})
    assert app.testing
    assert app.config["TIER"] == "production"


def test_wsgi_module_exposes_app() -> None:
    from expungeservice.wsgi import app

    assert app.name == "expungeservice"
