from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from expungeservice import db

from .conftest import FakeConnection


@pytest.mark.usefixtures("unreachable_db")
def test_health_is_503_when_database_is_down(client: FlaskClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    assert body["database"] != "ok"
    assert "OperationalError" in body["database"]
    assert body["commit"] == "dev"


def test_health_is_200_when_database_answers(app: Flask, client: FlaskClient) -> None:
    app.config["DB_CONNECT"] = FakeConnection
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "commit": "dev"}


def test_health_reports_commit_from_version_file(app: Flask, client: FlaskClient) -> None:
    app.config["DB_CONNECT"] = FakeConnection
    version_file: Path = app.config["RS_VERSION_FILE"]
    version_file.write_text(json.dumps({"commit": "abc123"}), encoding="utf-8")
    assert client.get("/api/health").get_json()["commit"] == "abc123"


def test_a_deployed_release_names_itself_in_every_response(app: Flask, client: FlaskClient) -> None:
    app.config["DB_CONNECT"] = FakeConnection
    release = "recordsponge-staging-20261128t120000z"
    app.config["RS_RELEASE"] = release
    health = client.get("/api/health")
    assert health.get_json()["release"] == release
    assert client.get("/api/version").get_json() == {"commit": "dev", "release": release}
    assert health.headers["X-RecordSponge-Release"] == release
    assert client.get("/").headers["X-RecordSponge-Release"] == release


def test_version_without_version_file(client: FlaskClient) -> None:
    response = client.get("/api/version")
    assert response.status_code == 200
    assert response.get_json() == {"commit": "dev"}


def test_version_with_version_file(app: Flask, client: FlaskClient) -> None:
    info = {"commit": "0123abcd", "commit_time": "2024-01-02T03:04:05Z"}
    version_file: Path = app.config["RS_VERSION_FILE"]
    version_file.write_text(json.dumps(info), encoding="utf-8")
    response = client.get("/api/version")
    assert response.status_code == 200
    assert response.get_json() == info


def test_version_with_broken_version_file(app: Flask, client: FlaskClient) -> None:
    version_file: Path = app.config["RS_VERSION_FILE"]
    version_file.write_text("not json", encoding="utf-8")
    response = client.get("/api/version")
    assert response.status_code == 500
    assert "version file" in response.get_json()["error"]


def test_users_from_database(app: Flask, client: FlaskClient) -> None:
    app.config["DB_CONNECT"] = FakeConnection
    response = client.get("/api/users")
    assert response.status_code == 200
    assert response.get_json() == {
        "users": [{"id": 1, "email": "admin@example.com", "name": "Dev Admin", "admin": True}]
    }


@pytest.mark.usefixtures("unreachable_db")
def test_users_is_503_when_database_is_down(client: FlaskClient) -> None:
    response = client.get("/api/users")
    assert response.status_code == 503
    assert "database unavailable" in response.get_json()["error"]


def test_unknown_api_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.get_json() == {"error": "no such API endpoint"}


def _database_answers() -> bool:
    if not os.environ.get("PGHOST"):
        return False
    app = Flask("probe")
    with app.app_context():
        return db.check() is None


@pytest.mark.skipif(not _database_answers(), reason="no database reachable through PG* env vars")
def test_real_database_health_and_seed(client: FlaskClient) -> None:
    """Runs in the dev stack (PGHOST=postgres) once `cargo xtask initdb` has run."""
    response = client.get("/api/health")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["database"] == "ok"
    users = client.get("/api/users")
    assert users.status_code == 200, users.get_json()
    emails = {user["email"] for user in users.get_json()["users"]}
    assert {"admin@example.com", "user@example.com"} <= emails
