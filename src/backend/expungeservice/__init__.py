"""RecordSponge's backend: a Flask application built by :func:`create_app`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response

from .api import api
from .settings import Settings
from .static import register_static


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    Settings come from the environment (see :class:`Settings`); ``overrides`` replaces
    entries of ``app.config`` (tests use it, e.g. ``{"DB_CONNECT": fake_connect}``).
    """
    app = Flask(__name__, static_folder=None)
    settings = Settings.from_env()
    app.config.update(
        TIER=settings.tier,
        RS_STATIC_DIR=settings.static_dir,
        RS_VERSION_FILE=settings.version_file,
        RS_RELEASE=settings.release,
        DB_CONNECT=None,
    )
    if overrides:
        app.config.update(overrides)
    app.register_blueprint(api)
    register_static(app)

    @app.after_request
    def name_the_release(response: Response) -> Response:
        if app.config["RS_RELEASE"]:
            response.headers["X-RecordSponge-Release"] = app.config["RS_RELEASE"]
        return response

    return app
