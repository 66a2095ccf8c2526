"""A GGUF file as a runnable model (the llamacpp backend): its provenance and what rows need.

The record is a `ModelRecord` (rows are built from its fields). The GGUF header is read here
with a small parser instead of the `gguf` package: `gguf.GGUFReader` turns every vocabulary
string into a numpy array and took 10 s on a 49k-token vocabulary; this reads the keys, array
lengths and tensor infos (milliseconds), the arrays a caller names in full (the tokenizer's),
and needs nothing beyond the standard library, so the llamacpp extra stays one package.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import paths
from bench.errors import EdgebenchError
from bench.models.folder import ModelRecord, sha256_file, variant_dir
from bench.models.footprint import WeightFootprint

VARIANT = "gguf"  # the variant name of a recipe's original GGUF
KV_CACHE_ELEMENT_BYTES = 2  # llama.cpp's default KV cache type is f16 (llama-bench's too)
_ARRAY_VALUES_KEPT = 4096  # numeric arrays longer than this (token types, scores) are skipped
_U64 = struct.Struct("<Q")

# GGUF value types -> struct format (8 string, 9 array handled apart)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}


@dataclass(frozen=True)
class GgufHeader:
    """What edgebench reads from a GGUF: metadata (long arrays as their length) and each
    tensor's name, shape and data bytes."""

    metadata: dict[str, Any]
    tensors: tuple[tuple[str, tuple[int, ...], int], ...]  # (name, dims, data bytes)
    # per tensor, in the order of `tensors`: its ggml type id and its data's offset in the file
    types: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()


@dataclass(frozen=True)
class GgufModel(ModelRecord):
    """A checked GGUF; `path` is the .gguf file itself and model_sha256 its sha256."""

    logits: str = "last"  # the backend computes only the last position's logits
    runtime: str = "gguf"


class _Cursor:
    def __init__(self, buf: Any) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.take("<Q")
        self.pos += n
        return bytes(self.buf[self.pos - n:self.pos]).decode("utf-8", "replace")

    def strings(self, count: int) -> list[str]:
        """`count` strings in a row, strictly UTF-8 (a vocabulary: 262k tokens in ~0.2 s)."""
        unpack, buf, pos, values = _U64.unpack_from, self.buf, self.pos, []
        for _ in range(count):
            n = unpack(buf, pos)[0]
            values.append(buf[pos + 8:pos + 8 + n].decode("utf-8"))
            pos += 8 + n
        self.pos = pos
        return values

    def skip_string(self) -> None:
        n = self.take("<Q")  # read before adding: `pos += take()` would use the old pos
        self.pos += n

    def value(self, kind: int, full: bool = False) -> Any:
        """One metadata value; an array as its length when it holds strings or is long,
        unless `full`."""
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == 8:
            return self.string()
        if kind != 9:
            raise ValueError(f"unknown GGUF value type {kind}")
        elem, count = self.take("<I"), self.take("<Q")
        if full and elem == 8:
            return self.strings(count)
        if full and elem in _SCALARS:
            fmt = f"<{count}{_SCALARS[elem][1:]}"
            values = list(struct.unpack_from(fmt, self.buf, self.pos))
            self.pos += struct.calcsize(fmt)
            return values
        if elem == 8 or count > _ARRAY_VALUES_KEPT:  # keep only the length
            for _ in range(count):
                if elem == 8:
                    self.skip_string()
                elif elem in _SCALARS:
                    self.pos += struct.calcsize(_SCALARS[elem])
                else:
                    self.value(elem)
            return count
        return [self.value(elem) for _ in range(count)]


def read_header(path: Path, arrays: frozenset[str] | set[str] = frozenset()) -> GgufHeader:
    """Parses the header of `path`, the arrays under the keys in `arrays` in full (a
    tokenizer's vocabulary); a file that is not a GGUF is a one-line error."""
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _parse(mm, path.stat().st_size, arrays)
    except (OSError, ValueError, struct.error, IndexError) as exc:
        raise EdgebenchError(f"{path} is not a readable GGUF file ({exc}); pass a .gguf "
                             "model file") from None


def _parse(buf: Any, file_size: int, arrays: frozenset[str] | set[str]) -> GgufHeader:
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("no GGUF magic")
    cur = _Cursor(buf)
    cur.pos = 4
    version, n_tensors, n_kv = cur.take("<I"), cur.take("<Q"), cur.take("<Q")
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        metadata[key] = cur.value(cur.take("<I"), key in arrays)
    infos = []
    for _ in range(n_tensors):
        name = cur.string()
        dims = tuple(cur.take("<Q") for _ in range(cur.take("<I")))
        kind = cur.take("<I")  # ggml type
        infos.append((name, dims, cur.take("<Q"), kind))
    align = int(metadata.get("general.alignment", 32))
    data_start = -(-cur.pos // align) * align
    # A tensor's bytes: up to the next tensor's offset (alignment padding, under `align` bytes
    # per tensor, included), the last one up to the end of the file.
    ends = sorted({off for _, _, off, _ in infos} | {file_size - data_start})
    nxt = {a: b for a, b in zip(ends, ends[1:])}
    tensors = tuple((name, dims, nxt[off] - off) for name, dims, off, _ in infos)
    return GgufHeader(metadata, tensors, tuple(kind for *_, kind in infos),
                      tuple(data_start + off for _, _, off, _ in infos))


def _count(value: Any) -> int:
    return value if isinstance(value, int) else len(value) if isinstance(value, list) else 0


def _per_layer_sum(value: Any, layers: int) -> int:
    return sum(int(v) for v in value) if isinstance(value, list) else int(value) * layers


def footprint(header: GgufHeader) -> WeightFootprint | None:
    """Bytes one decode step reads (docs/roofline.md): every matrix (2-D and up, the output
    head included; a tied head reads the whole embedding table) plus one embedding row, and the
    f16 KV cache per context token. None when the layout is not the usual llama.cpp one."""
    meta = header.metadata
    arch = meta.get("general.architecture")
    by_name = {name: (dims, size) for name, dims, size in header.tensors}
    if "token_embd.weight" not in by_name or not arch:
        return None
    embd_dims, embd_bytes = by_name["token_embd.weight"]
    row = -(-embd_bytes // max(embd_dims[-1], 1))  # ggml dims: [n_embd, n_vocab]
    matrices = sum(size for name, (dims, size) in by_name.items()
                   if len(dims) >= 2 and sum(d > 1 for d in dims) >= 2
                   and name != "token_embd.weight")
    if "output.weight" not in by_name:  # tied head: the table is the head's matrix too
        matrices += embd_bytes
    return WeightFootprint(matrices + row, row, _kv_bytes(meta, arch))


def _kv_bytes(meta: dict[str, Any], arch: str) -> int | None:
    try:
        layers = int(meta[f"{arch}.block_count"])
        heads = meta[f"{arch}.attention.head_count"]
        head_dim = int(meta[f"{arch}.embedding_length"]) // int(
            heads if isinstance(heads, int) else max(heads))
        k_len = int(meta.get(f"{arch}.attention.key_length", head_dim))
        v_len = int(meta.get(f"{arch}.attention.value_length", head_dim))
        kv_heads = _per_layer_sum(meta.get(f"{arch}.attention.head_count_kv", heads), layers)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return kv_heads * (k_len + v_len) * KV_CACHE_ELEMENT_BYTES or None


def _quant_label(meta: dict[str, Any]) -> str | None:
    """general.file_type as llama.cpp names it (15 -> Q4_K_M), when the `gguf` package knows."""
    ftype = meta.get("general.file_type")
    if ftype is None:
        return None
    try:
        from gguf import LlamaFileType

        return LlamaFileType(int(ftype)).name.removeprefix("MOSTLY_")
    except (ImportError, ValueError):
        return f"file_type {ftype}"


def _record(path: Path, header: GgufHeader, *, model_id: str, variant: str, sha256: str,
            source_sha256: str | None, quant: str | None,
            tokenizer_dir: Path | None) -> GgufModel:
    meta = header.metadata
    arch = meta.get("general.architecture", "")
    eos = [meta.get(k) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                 "tokenizer.ggml.eom_token_id")]
    vocab = _count(meta.get("tokenizer.ggml.tokens", 0)) or int(meta.get(f"{arch}.vocab_size", 0))
    return GgufModel(
        path=path, model_id=model_id, variant=variant, precision=quant or "unknown",
        model_sha256=sha256, source_sha256=source_sha256, size_bytes=path.stat().st_size,
        context_length=int(meta.get(f"{arch}.context_length", 0)), vocab_size=vocab,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_ids=tuple(dict.fromkeys(int(e) for e in eos if e is not None)),
        source_quant=quant, footprint=footprint(header), tokenizer_dir=tokenizer_dir)


def open_recipe_gguf(recipe_id: str) -> GgufModel:
    """The recipe's original GGUF from the cache, verified against the recipe's sha256 (through
    the cache's size-and-mtime marker: a 1 GB file is hashed once, not on every open)."""
    from bench.models import sources
    from bench.models.recipes import get_recipe

    recipe = get_recipe(recipe_id)
    if recipe.source is None:
        raise EdgebenchError(f"{recipe_id} has synthetic weights: there is no GGUF to run with "
                             "the llamacpp backend; use --backend ort")
    path, why = sources._from_cache(recipe, lambda _msg: None)
    if path is None:
        raise EdgebenchError(f"the GGUF of {recipe_id} is not in the cache ({why}); run "
                             f"'edgebench models build {recipe_id}' (it fetches and verifies "
                             "the GGUF) or pass --gguf PATH to it")
    # the tokenizer files: the Hugging Face folder, else any built variant's (the same files)
    folders = (paths.cache_dir() / "hf" / recipe_id,
               *(variant_dir(recipe_id, v) for v in recipe.variants))
    tokenizer = next((f for f in folders if (f / "tokenizer.json").is_file()), None)
    return _record(path, read_header(path), model_id=recipe_id, variant=VARIANT,
                   sha256=recipe.source.sha256, source_sha256=recipe.source.sha256,
                   quant=recipe.source.quantization, tokenizer_dir=tokenizer)


def open_gguf_path(path: Path) -> GgufModel:
    """Any GGUF file: model_id from its general.name (else the file name), hashed once here."""
    path = Path(path)
    if not path.is_file():
        raise EdgebenchError(f"GGUF {path} does not exist or is not a file; pass the path of "
                             "a .gguf model file")
    header = read_header(path)
    name = header.metadata.get("general.name")
    sibling = path.parent if (path.parent / "tokenizer.json").is_file() else None
    return _record(path, header, model_id=str(name).strip() if name else path.stem,
                   variant=VARIANT, sha256=sha256_file(path), source_sha256=None,
                   quant=_quant_label(header.metadata), tokenizer_dir=sibling)
