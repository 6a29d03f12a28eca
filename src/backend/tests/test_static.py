from __future__ import annotations

import shutil
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient


def test_root_serves_index(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert b"<div id=root>" in response.data
    assert response.mimetype == "text/html"


def test_assets_are_served(client: FlaskClient) -> None:
    response = client.get("/assets/app.js")
    assert response.status_code == 200
    assert response.data == b"console.log('hi')"


def test_client_side_routes_get_index(client: FlaskClient) -> None:
    response = client.get("/some/client/route")
    assert response.status_code == 200
    assert b"<div id=root>" in response.data


def test_path_traversal_is_not_served(client: FlaskClient, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    response = client.get("/../secret.txt")
    assert b"secret" not in response.data


def test_missing_build_is_clear_json_404(app: Flask, client: FlaskClient) -> None:
    static_dir: Path = app.config["RS_STATIC_DIR"]
    shutil.rmtree(static_dir)
    response = client.get("/")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "frontend build not found"
    assert body["static_dir"] == str(static_dir)


def test_empty_build_dir_is_missing_build(app: Flask, client: FlaskClient) -> None:
    static_dir: Path = app.config["RS_STATIC_DIR"]
    shutil.rmtree(static_dir)
    static_dir.mkdir()
    assert client.get("/anything").status_code == 404
