"""Copies the top-level data folders into the wheel as bench/_data/ (see bench/paths.py).

The folders stay at the repository's top level, where people edit them; a symlink inside the
package would break on Windows checkouts and in sdists. All metadata is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("models", "hardware_profiles")  # read by bench.paths.data_dir


def _data_files() -> list[tuple[Path, Path]]:
    """(source, path relative to bench/_data) for every data file; dotfiles are left out."""
    out = []
    for name in DATA_FOLDERS:
        for src in sorted((ROOT / name).rglob("*")):
            rel = src.relative_to(ROOT)
            if src.is_file() and not any(part.startswith((".", "__")) for part in rel.parts):
                out.append((src, rel))
    return out


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's folders directly
            return
        missing = [name for name in DATA_FOLDERS if not (ROOT / name).is_dir()]
        if missing:
            raise SystemExit(f"setup.py: data folder(s) {', '.join(missing)} missing; "
                             "build from a full checkout or sdist")
        for src, rel in _data_files():
            dst = Path(self.build_lib) / "bench" / "_data" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        data = [str(Path(self.build_lib) / "bench" / "_data" / rel) for _, rel in _data_files()]
        return super().get_outputs(include_bytecode) + ([] if self.editable_mode else data)


setup(cmdclass={"build_py": BuildPyWithData})
