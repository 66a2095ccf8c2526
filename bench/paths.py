"""Where edgebench finds its data and keeps built models.

The recipes (models/) and hardware profiles (hardware_profiles/) live at the repository's top
level; a built wheel carries a copy under bench/_data/ (setup.py copies them at build time), so
`pip install edgebench` works without a checkout. A checkout's own folders win, so edits there
take effect without reinstalling.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout; site-packages when installed
PACKAGED_DATA = Path(__file__).resolve().parent / "_data"  # filled only in a built wheel


def in_checkout() -> bool:
    """True when bench/ sits in an edgebench source tree (also an editable install)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "hardware_profiles").is_dir()


def data_dir(name: str) -> Path:
    """A top-level data folder: the checkout's, else the copy packaged into the wheel."""
    return (REPO_ROOT if in_checkout() else PACKAGED_DATA) / name


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
    """Recipes (models/*.toml); EDGEBENCH_RECIPES_DIR points elsewhere."""
    override = os.environ.get("EDGEBENCH_RECIPES_DIR")
    return Path(override).expanduser() if override else data_dir("models")


def profiles_dir() -> Path:
    """Hardware profiles (hardware_profiles/**.toml); EDGEBENCH_PROFILES_DIR points elsewhere."""
    override = os.environ.get("EDGEBENCH_PROFILES_DIR")
    return Path(override).expanduser() if override else data_dir("hardware_profiles")
