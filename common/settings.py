"""The project's own settings, which live in endpoints.yml beside Rasa's.

Rasa ignores sections it doesn't know (``clinic``, ``clinic_notifications``);
each value can be overridden by an environment variable, named where it is used.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Dict

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent


def endpoints_path() -> Path:
    return Path(os.environ.get("ENDPOINTS_FILE") or PROJECT_DIR / "endpoints.yml")


@lru_cache(maxsize=None)
def endpoints_section(name: str) -> Dict[str, str]:
    """A section of endpoints.yml as strings; empty when the file or section is missing."""
    try:
        with open(endpoints_path(), encoding="utf-8") as handle:
            section = (yaml.safe_load(handle) or {}).get(name) or {}
    except FileNotFoundError:
        section = {}
    return {key: str(value) for key, value in section.items() if value is not None}
