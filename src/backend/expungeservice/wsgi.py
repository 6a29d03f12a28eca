"""WSGI entry point for gunicorn: ``gunicorn expungeservice.wsgi:app``."""

from . import create_app

app = create_app()
