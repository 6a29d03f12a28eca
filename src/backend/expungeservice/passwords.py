"""Password hashes as stored in users.hashed_password (werkzeug's format)."""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def password_matches(hashed: str, password: str) -> bool:
    return check_password_hash(hashed, password)
