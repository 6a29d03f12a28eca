"""Configuration from environment variables: the only way the app is configured.

The database connection uses libpq's own variables (PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD), read by psycopg itself; see :mod:`expungeservice.db`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TIERS = ("dev", "staging", "production")
DEFAULT_STATIC_DIR = "/src/frontend/build"
DEFAULT_VERSION_FILE = "/src/backend/version.json"


@dataclass(frozen=True)
class Settings:
    tier: str
    static_dir: Path
    version_file: Path
    # The deployed container's own name, set by the deploy (RS_RELEASE): every response names
    # it, so that a deploy can tell which container answered through the proxy.
    release: str

    @classmethod
    def from_env(cls) -> Settings:
        tier = os.environ.get("TIER", "dev")
        if tier not in TIERS:
            raise ValueError(f"TIER must be one of {', '.join(TIERS)}, not {tier!r}")
        return cls(
            tier=tier,
            static_dir=Path(os.environ.get("RS_STATIC_DIR", DEFAULT_STATIC_DIR)),
            version_file=Path(os.environ.get("RS_VERSION_FILE", DEFAULT_VERSION_FILE)),
            release=os.environ.get("RS_RELEASE", ""),
        )
