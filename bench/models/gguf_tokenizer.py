"""Tokenizer files (tokenizer.json, tokenizer_config.json, chat_template.jinja) from a GGUF's
metadata alone, so the `gguf` variant needs neither torch nor transformers.

The files follow transformers 5's GGUF loader (`integrations/gguf/gguf_tokenizer_mapping.py`)
decision for decision, so `tokenizers` and onnxruntime-genai tokenize as they do on the folder
`edgebench models build` converts: byte-level BPE (`tokenizer.ggml.model = gpt2`) with the split
regex `tokenizer.ggml.pre` names, and Gemma's SentencePiece vocabulary (`llama` on a Gemma
architecture) with merges rebuilt from the token order. Other tokenizer types are refused.
The arrays are read by gguf_model.read_header with the standard library: `gguf.GGUFReader`
makes a numpy array of every string and took 10 s on a 49k vocabulary.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.errors import EdgebenchError

_TOKENS, _TYPES = "tokenizer.ggml.tokens", "tokenizer.ggml.token_type"
_MERGES = "tokenizer.ggml.merges"
ARRAYS = frozenset({_TOKENS, _TYPES, _MERGES})  # what the tokenizer files are made of: in full
_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp's token types
# tokenizer.ggml.pre -> the split regex transformers puts before byte-level; other values keep
# GPT-2's own regex (ByteLevel with use_regex), as transformers does.
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN35 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
           r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
           r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
           r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
          r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
          r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_SPLITS = {
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                     "midm-2.0", "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe"), _LLAMA3),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"), _QWEN2),
    **dict.fromkeys(("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"), _GPT4O),
    "tekken": _TEKKEN, "qwen35": _QWEN35,
}
_GEMMA_ARCHS = ("gemma", "gemma2", "gemma3")
# general.architecture -> the class AutoTokenizer picks (its name goes into tokenizer_config.json,
# where transformers and onnxruntime-extensions read it); others are TokenizersBackend.
_TOKENIZER_CLASS = {**dict.fromkeys(("qwen2", "qwen2moe", "qwen3", "qwen3moe"), "Qwen2Tokenizer"),
                    **dict.fromkeys(_GEMMA_ARCHS, "GemmaTokenizer"),
                    "gpt2": "GPT2Tokenizer", "starcoder2": "GPT2Tokenizer"}
# The special tokens each transformers class defaults to (added as special when in the vocabulary).
_CLASS_DEFAULTS = {"gpt2": ("<|endoftext|>",),
                   "gemma": ("<unk>", "<bos>", "<eos>", "<pad>", "<mask>")}
_NAMED = (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
          ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id"))


def read_metadata(path: Path, arrays: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every metadata value of the GGUF at `path`; arrays in full for the keys in `arrays`, as
    their length otherwise (gguf_model.read_header's rule)."""
    from bench.models.gguf_model import read_header

    return read_header(Path(path), arrays).metadata


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the byte-level alphabet)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def write_tokenizer_files(gguf: Path, out_dir: Path,
                          meta: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Writes tokenizer.json, tokenizer_config.json and (when the GGUF has one)
    chat_template.jinja into `out_dir`; returns the names written. `meta`: the GGUF's
    metadata with ARRAYS in full, when the caller read the header already."""
    meta = meta if meta is not None else read_metadata(Path(gguf), ARRAYS)
    tokenizer, config = tokenizer_files(meta)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.json").write_text(
        json.dumps(tokenizer, ensure_ascii=False, check_circular=False), encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n",
                                                   encoding="utf-8")
    names = ["tokenizer.json", "tokenizer_config.json"]
    template = meta.get("tokenizer.chat_template")
    if isinstance(template, str) and template:
        (out_dir / "chat_template.jinja").write_text(template, encoding="utf-8")
        names.append("chat_template.jinja")
    return tuple(names)


def tokenizer_files(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tokenizer.json, tokenizer_config.json) as dicts, from metadata read with full arrays."""
    kind, arch = meta.get("tokenizer.ggml.model"), str(meta.get("general.architecture", ""))
    tokens = meta.get(_TOKENS)
    if not isinstance(tokens, list) or not tokens:
        raise EdgebenchError("the GGUF has no tokenizer.ggml.tokens, so the gguf variant has no "
                             "tokenizer; build the int4 variant instead (convert extra)")
    if kind == "gpt2":
        family, body = "gpt2", _byte_level(meta, tokens)
    elif kind == "llama" and arch in _GEMMA_ARCHS:
        family, body = "gemma", _gemma(tokens)
    else:
        raise EdgebenchError(f"the gguf variant cannot write a tokenizer of type {kind!r} "
                             f"(architecture {arch!r}); build the int4 variant instead (it "
                             "needs the convert extra)")
    names = {name: _token(tokens, meta.get(f"tokenizer.ggml.{key}")) for name, key in _NAMED}
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", family == "gemma"))
    add_eos = bool(meta.get("tokenizer.ggml.add_eos_token", False))
    vocab = body["model"]["vocab"]
    defaults = [t for t in _CLASS_DEFAULTS[family] if t in vocab]
    added = _added_tokens(meta, tokens, vocab, byte_level=family == "gpt2", defaults=defaults,
                          named=[t for t in names.values() if t is not None])
    bos = (names["bos_token"], vocab.get(names["bos_token"])) if add_bos else (None, None)
    eos = (names["eos_token"], vocab.get(names["eos_token"])) if add_eos else (None, None)
    tokenizer = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                 "normalizer": body["normalizer"], "pre_tokenizer": body["pre_tokenizer"],
                 "post_processor": _post_processor(bos, eos), "decoder": body["decoder"],
                 "model": body["model"]}
    config = {"backend": "tokenizers", **names, "tokenizer_class": _TOKENIZER_CLASS.get(
        arch, "TokenizersBackend")}
    if family == "gemma" and "<mask>" in vocab:
        config["mask_token"] = "<mask>"
    # No add_bos_token, as transformers saves none: onnxruntime-genai's tokenizer then adds no
    # BOS on any variant (the folders built through transformers behave the same), while
    # `tokenizers` adds it through the post-processor where add_special_tokens=True.
    context = meta.get(f"{arch}.context_length")
    config["model_max_length"] = int(context) if isinstance(context, int) else int(1e30)
    return tokenizer, dict(sorted(config.items()))


def _token(tokens: list[str], index: Any) -> str | None:
    return tokens[index] if isinstance(index, int) and 0 <= index < len(tokens) else None


def _byte_level(meta: dict[str, Any], tokens: list[str]) -> dict[str, Any]:
    """GPT2Tokenizer on the file's vocabulary and merges, with the split regex of its `pre`."""
    spelling = bytes_to_unicode()
    foreign = re.compile("[^" + re.escape("".join(spelling.values())) + "]").search
    vocab = {"".join(spelling[b] for b in t.encode("utf-8")) if foreign(t) else t: i
             for i, t in enumerate(tokens)}
    merges = meta.get(_MERGES)
    if not isinstance(merges, list):
        raise EdgebenchError("the GGUF's byte-level tokenizer has no tokenizer.ggml.merges; "
                             "build the int4 variant (convert extra) instead")
    split = _SPLITS.get(meta.get("tokenizer.ggml.pre"))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": split is None}
    pre = byte_level if split is None else {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": False},
        byte_level]}
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
             "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
             "ignore_merges": False, "vocab": vocab,
             "merges": [m.split(" ") for m in merges]}
    return {"normalizer": None, "pre_tokenizer": pre, "model": model,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True}}


def _gemma(tokens: list[str]) -> dict[str, Any]:
    """GemmaTokenizer: BPE with byte fallback, spaces as '▁'. A token of spaces is stored as
    real spaces, respelled as '▁'s; the file has no merges, so they are rebuilt from the
    vocabulary, best first in the order tokens appear (Gemma's scores do not follow it)."""
    respelled = ["\u2581" * len(t) if " " in t and not t.strip() else t for t in tokens]
    vocab = {t: i for i, t in enumerate(respelled)}
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>",
             "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
             "byte_fallback": True, "ignore_merges": False, "vocab": vocab,
             "merges": merges_from_vocab(vocab)}
    return {"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
            "pre_tokenizer": {"type": "Split", "pattern": {"String": " "},
                              "behavior": "MergedWithPrevious", "invert": False},
            "model": model,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]}}


def merges_from_vocab(vocab: dict[str, int]) -> list[list[str]]:
    """transformers' `generate_merges` with each token scored by minus its id (Gemma's case):
    every split of a token into two vocabulary pieces, tokens in id order, the longer left
    piece first. The scores are distinct, so its stable sort reduces to this order."""
    merges = []
    for token, _ in sorted(vocab.items(), key=lambda item: item[1]):
        for i in range(len(token) - 1, 0, -1):
            left, right = token[:i], token[i:]
            if left in vocab and right in vocab:
                merges.append([left, right])
    return merges


def _added_tokens(meta: dict[str, Any], tokens: list[str], vocab: dict[str, int], *,
                  byte_level: bool, defaults: list[str], named: list[str]
                  ) -> list[dict[str, Any]]:
    """Control tokens as special (in a byte-level vocabulary only those spelled in the byte
    alphabet, as transformers skips llama.cpp's mislabels), user-defined ones as plain added
    tokens, and the named special tokens; all matched whole, never normalized."""
    types = meta.get(_TYPES)
    types = types if isinstance(types, list) else []
    spelled = set(bytes_to_unicode().values()) if byte_level else None
    added: dict[str, bool] = {}  # content -> special; the first addition of a token wins
    for token in defaults:  # the class's defaults, added when it is built
        added.setdefault(token, True)
    for token, kind in zip(tokens, types):
        if kind == _CONTROL and (spelled is None or set(token) <= spelled):
            added.setdefault(token, True)
    for token, kind in zip(tokens, types):
        if kind == _USER_DEFINED and token in vocab:
            added.setdefault(token, False)
    for token in named:  # the file's bos/eos/unk/pad, added last by the tokenizer's init
        added.setdefault(token, True)
    # Tokens outside the vocabulary (a named token the file lacks) would get ids past the
    # model's embedding table; transformers appends them, here they are left out.
    rows = [(vocab[t], t, special) for t, special in added.items() if t in vocab]
    return [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": special} for i, t, special in sorted(rows)]


def _post_processor(bos: tuple[str | None, int | None],
                    eos: tuple[str | None, int | None]) -> dict[str, Any]:
    """transformers' TemplateProcessing: BOS and EOS around each sequence where the file adds
    them (tokenizer.ggml.add_bos_token; a SentencePiece vocabulary adds BOS when it is unset)."""
    def seq(name: str, type_id: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"Sequence": {"id": name, "type_id": type_id}}]
        if bos[1] is not None:
            out.insert(0, {"SpecialToken": {"id": bos[0], "type_id": type_id}})
        if eos[1] is not None:
            out.append({"SpecialToken": {"id": eos[0], "type_id": type_id}})
        return out

    special = {t: {"id": t, "ids": [i], "tokens": [t]} for t, i in (bos, eos) if i is not None}
    return {"type": "TemplateProcessing", "single": seq("A", 0),
            "pair": seq("A", 0) + seq("B", 1), "special_tokens": special}
