"""Where edgebench keeps built models: the user cache, overridable for CI and tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """EDGEBENCH_CACHE_DIR wins so tests and shared boxes can point elsewhere."""
    override = os.environ.get("EDGEBENCH_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("edgebench"))


def models_dir() -> Path:
    return cache_dir() / "models"


def recipes_dir() -> Path:
    """Recipes ship in the repository's models/ folder."""
    override = os.environ.get("EDGEBENCH_RECIPES_DIR")
    return Path(override) if override else REPO_ROOT / "models"


def profiles_dir() -> Path:
    override = os.environ.get("EDGEBENCH_PROFILES_DIR")
    return Path(override) if override else REPO_ROOT / "hardware_profiles"
