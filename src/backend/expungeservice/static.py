"""Serving the frontend's production build (src/frontend/build) from RS_STATIC_DIR."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, current_app, jsonify, send_from_directory


def _missing_build(static_dir: Path) -> tuple[Response, int]:
    return (
        jsonify(
            error="frontend build not found",
            static_dir=str(static_dir),
            hint="build the frontend (cargo xtask frontend-build) or use the dev server",
        ),
        404,
    )


def serve_frontend(path: str = "") -> Response | tuple[Response, int]:
    static_dir: Path = current_app.config["RS_STATIC_DIR"]
    if path.startswith("api/") or path == "api":
        return jsonify(error="no such API endpoint"), 404
    if not (static_dir / "index.html").is_file():
        return _missing_build(static_dir)
    if path and (static_dir / path).is_file():
        return send_from_directory(static_dir, path)
    # Client-side routes (and the root) get the single-page app.
    return send_from_directory(static_dir, "index.html")


def register_static(app: Flask) -> None:
    app.add_url_rule("/", "frontend", serve_frontend)
    app.add_url_rule("/<path:path>", "frontend_path", serve_frontend)
