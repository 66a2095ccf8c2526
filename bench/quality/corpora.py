"""The text corpora shipped for bits-per-byte scoring (bench/quality/corpora/corpora.toml).

Each corpus is a file inside the package, pinned by sha256 and size, with its licence and the
registry package it was taken from (docs/corpora.md). The file is checked on every read: a score
on a silently changed text would not compare with scores published before. Parsing is strict:
an unknown or missing key is a one-line error naming the file and key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import EdgebenchError
from bench.models.recipes import take_table
from bench.toml_load import load_toml

CORPORA_DIR = Path(__file__).resolve().parent / "corpora"
KINDS = ("prose", "code")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_KEYS: dict[str, type] = {
    "id": str, "file": str, "kind": str, "title": str, "licence": str, "licence_note": str,
    "licence_file": str, "retrieved": dt.date, "sha256": str, "size_bytes": int, "source": dict}
_OPTIONAL = ("licence_file",)
_SOURCE_KEYS: dict[str, type] = {
    "package": str, "version": str, "registry": str, "url": str, "archive": str,
    "archive_sha256": str, "path": str, "note": str}
_SOURCE_OPTIONAL = ("note",)


@dataclass(frozen=True)
class Corpus:
    """One shipped text: what it is, its licence, and the bytes it must have."""

    id: str
    kind: str  # "prose" | "code"
    title: str
    licence: str  # an SPDX id, or "public-domain"
    path: Path
    sha256: str
    size_bytes: int
    source_url: str  # the registry page of the package it was taken from
    licence_file: Path | None = None  # the licence text shipped beside it, where one is required


def _plain_file(name: str, where: str, key: str, root: Path) -> Path:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise EdgebenchError(f"{where}: {key!r} must be a plain file name in {root}")
    return root / name


def _corpus(table: Any, where: str, root: Path) -> Corpus:
    f = take_table(table, _KEYS, where, _OPTIONAL)
    src = take_table(f["source"], _SOURCE_KEYS, f"{where} [corpus.source]", _SOURCE_OPTIONAL)
    if not _ID.fullmatch(f["id"]):
        raise EdgebenchError(f"{where}: 'id' must be lowercase letters, digits and dashes")
    if f["kind"] not in KINDS:
        raise EdgebenchError(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
    for key, value in (("sha256", f["sha256"]), ("source.archive_sha256", src["archive_sha256"])):
        if not _SHA256.fullmatch(value):
            raise EdgebenchError(f"{where}: {key!r} must be 64 lowercase hex digits")
    if f["size_bytes"] <= 0:
        raise EdgebenchError(f"{where}: 'size_bytes' must be positive")
    if not src["url"].startswith("https://"):
        raise EdgebenchError(f"{where} [corpus.source]: 'url' must be an https URL")
    if not f["licence"].strip() or not f["licence_note"].strip():
        raise EdgebenchError(f"{where}: 'licence' and 'licence_note' must not be empty")
    licence_file = None
    if "licence_file" in f:
        licence_file = _plain_file(f["licence_file"], where, "licence_file", root)
    return Corpus(id=f["id"], kind=f["kind"], title=f["title"], licence=f["licence"],
                  path=_plain_file(f["file"], where, "file", root), sha256=f["sha256"],
                  size_bytes=f["size_bytes"], source_url=src["url"], licence_file=licence_file)


def load_corpora(root: Path | None = None) -> tuple[Corpus, ...]:
    """Every corpus listed in ROOT/corpora.toml (the packaged folder unless a test passes one)."""
    root = root or CORPORA_DIR
    path = root / "corpora.toml"
    data = load_toml(path)
    unknown = sorted(set(data) - {"corpus"})
    if unknown:
        raise EdgebenchError(f"{path}: unknown key {unknown[0]!r} (allowed: [[corpus]])")
    tables = data.get("corpus")
    if not isinstance(tables, list) or not tables:
        raise EdgebenchError(f"{path}: needs at least one [[corpus]] table")
    corpora = tuple(_corpus(t, f"{path} [[corpus]] {i}", root) for i, t in enumerate(tables, 1))
    ids = [c.id for c in corpora]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise EdgebenchError(f"{path}: corpus id {dupes[0]!r} appears twice")
    return corpora


def get_corpus(corpus_id: str, root: Path | None = None) -> Corpus:
    corpora = load_corpora(root)
    for corpus in corpora:
        if corpus.id == corpus_id:
            return corpus
    raise EdgebenchError(f"unknown corpus {corpus_id!r}; corpora: "
                         f"{', '.join(c.id for c in corpora)}")


def read_text(corpus: Corpus) -> str:
    """The corpus's text, after checking its size and sha256 against the recorded ones."""
    corrupt = (f"corpus {corpus.id}: {corpus.path} is corrupt ({{}}); reinstall edgebench "
               "(pip install --force-reinstall edgebench) or restore the file from git")
    try:
        data = corpus.path.read_bytes()
    except FileNotFoundError:
        raise EdgebenchError(corrupt.format("missing")) from None
    if len(data) != corpus.size_bytes:
        raise EdgebenchError(corrupt.format(f"{len(data)} bytes, expected {corpus.size_bytes}"))
    digest = hashlib.sha256(data).hexdigest()
    if digest != corpus.sha256:
        raise EdgebenchError(corrupt.format(f"sha256 {digest[:12]}..., expected "
                                            f"{corpus.sha256[:12]}..."))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:  # only if corpora.toml itself pins a non-UTF-8 file
        raise EdgebenchError(corrupt.format(f"not UTF-8: {exc.reason}")) from None
