from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask import Flask
from flask.testing import FlaskClient

from expungeservice import create_app


class FakeResult:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def fetchone(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[dict[str, Any]]:
        return self.rows


class FakeConnection:
    """Answers the app's queries without a database."""

    users: ClassVar[list[dict[str, Any]]] = [
        {"user_id": 1, "email": "admin@example.com", "name": "Dev Admin", "admin": True},
    ]

    def execute(self, query: Any, params: Any = None) -> FakeResult:
        if "SELECT 1" in str(query):
            return FakeResult([{"ok": 1}])
        return FakeResult(self.users)

    def close(self) -> None:
        pass


@pytest.fixture
def tmp_static(tmp_path: Path) -> Path:
    static = tmp_path / "build"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><div id=root></div>", encoding="utf-8")
    (static / "assets" / "app.js").write_text("console.log('hi')", encoding="utf-8")
    return static


@pytest.fixture
def app(tmp_path: Path, tmp_static: Path) -> Iterator[Flask]:
    yield create_app(
        {
            "TESTING": True,
            "RS_STATIC_DIR": tmp_static,
            "RS_VERSION_FILE": tmp_path / "version.json",
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def unreachable_db(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point libpq at a closed local port: connecting fails at once."""
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", "1")
    monkeypatch.setenv("RS_DB_CONNECT_TIMEOUT", "2")
