from __future__ import annotations

import re
from pathlib import Path

import pytest

from expungeservice.passwords import hash_password, password_matches

SEED_SQL = Path(__file__).resolve().parents[3] / "config" / "postgres" / "seed.sql"
# Dev-only seed passwords, documented in config/postgres/README.md.
SEED_PASSWORDS = {
    "admin@example.com": "admin-dev-password",
    "user@example.com": "user-dev-password",
}


def test_hash_roundtrip() -> None:
    hashed = hash_password("s3cret")
    assert hashed != "s3cret"
    assert password_matches(hashed, "s3cret")
    assert not password_matches(hashed, "wrong")


@pytest.mark.skipif(not SEED_SQL.is_file(), reason="config/postgres/seed.sql not visible here")
def test_seed_hashes_match_documented_passwords() -> None:
    text = SEED_SQL.read_text(encoding="utf-8")
    rows = re.findall(r"\('([^']+@[^']+)',\s*'[^']*',\s*(?:true|false),\s*'([^']+)'\)", text)
    assert {email for email, _ in rows} == set(SEED_PASSWORDS)
    for email, hashed in rows:
        assert password_matches(hashed, SEED_PASSWORDS[email]), email
