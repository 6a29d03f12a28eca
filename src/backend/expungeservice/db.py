"""Database access with psycopg 3.

Connections are configured entirely by libpq's environment variables (PGHOST, PGPORT,
PGDATABASE, PGUSER, PGPASSWORD); in the dev stack config/env/dev.env sets them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, TypedDict

import psycopg
from flask import current_app
from psycopg.rows import dict_row


class Connection(Protocol):
    """The part of :class:`psycopg.Connection` the app uses (tests substitute fakes)."""

    def execute(self, query: Any, params: Any = None) -> Any: ...

    def close(self) -> None: ...


Connect = Callable[[], Connection]


def connect_from_env() -> Connection:
    timeout = int(os.environ.get("RS_DB_CONNECT_TIMEOUT", "3"))
    conn: psycopg.Connection[dict[str, Any]] = psycopg.connect(
        connect_timeout=timeout, row_factory=dict_row, autocommit=True
    )
    return conn


def connect() -> Connection:
    """Open a connection with the app's configured factory (``DB_CONNECT``) or libpq's env."""
    factory: Connect | None = current_app.config.get("DB_CONNECT")
    return (factory or connect_from_env)()


def check() -> str | None:
    """Run ``SELECT 1``; return None when the database answers, else the reason it does not."""
    try:
        conn = connect()
        try:
            row = conn.execute("SELECT 1 AS ok").fetchone()
        finally:
            conn.close()
    except Exception as error:  # any failure makes the service unhealthy
        return f"{type(error).__name__}: {str(error).strip() or 'no detail'}"
    if not row or row["ok"] != 1:
        return f"unexpected answer to SELECT 1: {row!r}"
    return None


class User(TypedDict):
    id: int
    email: str
    name: str
    admin: bool


def list_users() -> list[User]:
    conn = connect()
    try:
        rows = conn.execute(
            "SELECT user_id, email, name, admin FROM users ORDER BY user_id"
        ).fetchall()
    finally:
        conn.close()
    return [
        User(id=row["user_id"], email=row["email"], name=row["name"], admin=row["admin"])
        for row in rows
    ]
