"""One TOML reader so every data file fails the same way: one line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import EdgebenchError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise EdgebenchError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise EdgebenchError(f"{path} is not valid TOML: {exc}") from None
