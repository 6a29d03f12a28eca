"""The JSON API under /api."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify

from . import db
from .version import read_version

api = Blueprint("api", __name__, url_prefix="/api")


def _version() -> dict[str, object]:
    """version.json's fields, and the release (the deployed container) when the deploy named it."""
    path: Path = current_app.config["RS_VERSION_FILE"]
    info = read_version(path)
    if current_app.config["RS_RELEASE"]:
        info["release"] = current_app.config["RS_RELEASE"]
    return info


@api.get("/health")
def health() -> tuple[Response, int]:
    """200 only when the database answers ``SELECT 1``; 503 with the reason otherwise."""
    try:
        commit = _version().get("commit", "dev")
    except (OSError, ValueError) as error:
        commit = f"unknown ({error})"
    name = current_app.config["RS_RELEASE"]
    release = {"release": name} if name else {}
    problem = db.check()
    if problem is None:
        return jsonify(status="ok", database="ok", commit=commit, **release), 200
    current_app.logger.warning("health check failed: %s", problem)
    return jsonify(status="error", database=problem, commit=commit, **release), 503


@api.get("/version")
def version() -> tuple[Response, int]:
    try:
        return jsonify(_version()), 200
    except (OSError, ValueError) as error:
        return jsonify(error=f"cannot read version file: {error}"), 500


@api.get("/users")
def users() -> tuple[Response, int]:
    """The seeded users (no password hashes): proves the database holds the app's data."""
    try:
        found = db.list_users()
    except Exception as error:
        current_app.logger.warning("listing users failed: %s", error)
        return jsonify(error=f"database unavailable: {type(error).__name__}: {error}"), 503
    return jsonify(users=found), 200


@api.errorhandler(404)
def api_not_found(_error: Exception) -> tuple[Response, int]:
    return jsonify(error="no such API endpoint"), 404


@api.errorhandler(405)
def api_method_not_allowed(_error: Exception) -> tuple[Response, int]:
    return jsonify(error="method not allowed"), 405
