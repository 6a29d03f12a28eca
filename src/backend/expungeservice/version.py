"""The deployed build's identity, from version.json (written into the deployable image)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEV_VERSION: dict[str, Any] = {"commit": "dev"}


def read_version(path: Path) -> dict[str, Any]:
    """Return version.json's object (commit, commit_time); {"commit": "dev"} without it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return dict(DEV_VERSION)
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data
