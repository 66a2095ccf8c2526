"""Tokenizer files from a GGUF's metadata: the reader, byte-level and Gemma vocabularies on tiny
files written by the `gguf` package, the same JSON as transformers' GGUF loader (when it is
installed), and, on the default model, transformers' folder and onnxruntime-genai's tokenizer."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.models import gguf_tokenizer as gt
from bench.quality.corpora import CORPORA_DIR

gguf = pytest.importorskip("gguf", reason="the gguf package (convert extra) writes the test files")
np = pytest.importorskip("numpy")
from tokenizers import Tokenizer  # noqa: E402  (a base dependency)

BYTES = list(gt.bytes_to_unicode().values())  # ids 0..255: the byte-level alphabet
WORDS = ["he", "ll", "hell", "hello", "Ġw", "Ġwo", "12", "<|endoftext|>", "<s>", "</s>",
         "<tool>", "<ctl x>", "日本", "<pad>"]
# 1 normal, 3 control, 4 user-defined; "<ctl x>" is a control token outside the byte alphabet
# (a llama.cpp mislabel, skipped), "日本" a user-defined one not in the vocabulary as spelled.
WORD_TYPES = [1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 4, 3, 4, 4]
MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o", "1 2"]
ID = {w: len(BYTES) + i for i, w in enumerate(WORDS)}
B = {c: i for i, c in enumerate(BYTES)}
PIECES = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "[mm]", "<start_of_turn>",
          *(f"<0x{b:02X}>" for b in range(256)),
          "▁", "h", "e", "l", "o", "w", "he", "ll", "hell", "hello", "▁w", "▁wo", "  ", "\n"]
PIECE_TYPES = [3, 3, 3, 3, 3, 4, 4, *[6] * 256, *[1] * 12, 4, 4]


def _write(path: Path, arch: str, model: str, tokens: list[str], types: list[int], *,
           merges: list[str] | None = None, pre: str | None = None,
           ids: dict[str, int] | None = None, add_bos: bool | None = None,
           template: str | None = None) -> Path:
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model(model)
    if pre:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores([0.0] * len(tokens))
    if merges is not None:
        w.add_token_merges(merges)
    for name, value in (ids or {}).items():
        getattr(w, f"add_{name}_token_id")(value)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    if template:
        w.add_chat_template(template)
    w.add_tensor("token_embd.weight", np.zeros((len(tokens), 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _byte_level(tmp_path: Path, pre: str = "smollm", **kw) -> Path:
    kw.setdefault("ids", {"bos": ID["<s>"], "eos": ID["</s>"], "pad": ID["<pad>"]})
    return _write(tmp_path / "b.gguf", "llama", "gpt2", BYTES + WORDS, [1] * 256 + WORD_TYPES,
                  merges=MERGES, pre=pre, **kw)


def _gemma(tmp_path: Path, **kw) -> Path:
    return _write(tmp_path / "g.gguf", "gemma3", "llama", PIECES, PIECE_TYPES,
                  ids={"bos": 2, "eos": 1, "unk": 3, "pad": 0}, **kw)


def _tokenizer(gguf_path: Path, out: Path) -> Tokenizer:
    gt.write_tokenizer_files(gguf_path, out)
    return Tokenizer.from_file(str(out / "tokenizer.json"))


def test_reader_returns_the_requested_arrays_in_full_and_others_as_lengths(tmp_path):
    path = _byte_level(tmp_path, template="{{ x }}")
    full = gt.read_metadata(path, {"tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                                   "tokenizer.ggml.token_type"})
    assert full["tokenizer.ggml.tokens"] == BYTES + WORDS
    assert full["tokenizer.ggml.merges"] == MERGES
    assert full["tokenizer.ggml.token_type"] == [1] * 256 + WORD_TYPES
    assert full["tokenizer.ggml.bos_token_id"] == ID["<s>"]
    assert full["tokenizer.chat_template"] == "{{ x }}"
    assert full["llama.context_length"] == 64
    short = gt.read_metadata(path)
    assert short["tokenizer.ggml.tokens"] == len(BYTES + WORDS)
    assert short["tokenizer.ggml.merges"] == len(MERGES)


def test_byte_level_applies_the_merges_and_keeps_control_tokens_whole(tmp_path):
    tok = _tokenizer(_byte_level(tmp_path), tmp_path / "out")
    assert tok.encode("hello world").ids == [ID["hello"], ID["Ġwo"], B["r"], B["l"], B["d"]]
    assert tok.encode("<s>hi</s>").ids == [ID["<s>"], B["h"], B["i"], ID["</s>"]]
    text = "naïve café 😀\n\tx"  # bytes outside ASCII go through the byte alphabet
    assert tok.decode(tok.encode(text).ids) == text
    assert tok.encode("<tool>").ids == [ID["<tool>"]]  # user-defined: whole, but not special
    assert tok.decode([ID["<s>"], ID["<tool>"], B["x"]], skip_special_tokens=True) == "<tool>x"
    assert len(tok.encode("<ctl x>").ids) > 1  # the mislabelled control token is not added
    assert tok.get_vocab_size() == len(BYTES + WORDS)  # nothing past the model's vocabulary


def test_the_pre_tokenizer_regex_follows_tokenizer_ggml_pre(tmp_path):
    gpt2 = _tokenizer(_byte_level(tmp_path), tmp_path / "gpt2")
    qwen = _tokenizer(_byte_level(tmp_path, pre="qwen2"), tmp_path / "qwen")
    assert gpt2.encode("12").ids == [ID["12"]]  # GPT-2's regex keeps a digit run together
    assert qwen.encode("12").ids == [B["1"], B["2"]]  # Qwen's splits every digit


def test_bos_is_added_where_the_file_says_and_by_default_for_sentencepiece(tmp_path):
    on = _tokenizer(_byte_level(tmp_path, add_bos=True), tmp_path / "on")
    off = _tokenizer(_byte_level(tmp_path, add_bos=False), tmp_path / "off")
    assert on.encode("he").ids == [ID["<s>"], ID["he"]]
    assert on.encode("he", add_special_tokens=False).ids == [ID["he"]]
    assert off.encode("he").ids == [ID["he"]]
    gemma = _tokenizer(_gemma(tmp_path), tmp_path / "gemma")  # no add_bos_token key
    assert gemma.encode("hello").ids[0] == 2


def test_gemma_merges_are_rebuilt_in_token_order_and_spaces_respelled(tmp_path):
    vocab = {"a": 0, "b": 1, "ab": 2, "abb": 3, "bb": 4}
    # token order first (ab before abb), then the longer left piece (ab|b before a|bb)
    assert gt.merges_from_vocab(vocab) == [["a", "b"], ["ab", "b"], ["a", "bb"], ["b", "b"]]
    tok = _tokenizer(_gemma(tmp_path), tmp_path / "out")
    ids = {p: i for i, p in enumerate(PIECES)}
    assert tok.encode("hello wo", add_special_tokens=False).ids == [
        ids["hello"], ids["▁wo"]]
    assert tok.token_to_id("▁▁") == ids["  "]  # a token of spaces, stored as spaces
    assert tok.encode("é", add_special_tokens=False).ids == [ids["<0xC3>"], ids["<0xA9>"]]
    assert tok.decode(tok.encode("hello  wé\n").ids, skip_special_tokens=True) == "hello  wé\n"


def test_config_names_the_special_tokens_class_and_context(tmp_path):
    names = gt.write_tokenizer_files(_byte_level(tmp_path, template="{{ m }}"), tmp_path / "b")
    assert names == ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
    assert (tmp_path / "b" / "chat_template.jinja").read_text() == "{{ m }}"
    config = json.loads((tmp_path / "b" / "tokenizer_config.json").read_text())
    assert config == {"backend": "tokenizers", "bos_token": "<s>", "eos_token": "</s>",
                      "model_max_length": 64, "pad_token": "<pad>",
                      "tokenizer_class": "TokenizersBackend", "unk_token": None}
    names = gt.write_tokenizer_files(_gemma(tmp_path), tmp_path / "g")
    assert names == ("tokenizer.json", "tokenizer_config.json")  # no template: a base model
    config = json.loads((tmp_path / "g" / "tokenizer_config.json").read_text())
    assert (config["tokenizer_class"], config["mask_token"], config["unk_token"]) == (
        "GemmaTokenizer", "<mask>", "<unk>")


@pytest.mark.parametrize("arch,model", [("llama", "llama"), ("bert", "bert"), ("t5", "t5")])
def test_other_tokenizer_types_are_refused_in_one_line(tmp_path, arch, model):
    path = _write(tmp_path / "x.gguf", arch, model, ["<unk>", "a"], [2, 1])
    with pytest.raises(EdgebenchError, match="int4 variant") as exc:
        gt.write_tokenizer_files(path, tmp_path / "out")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_gguf_is_a_one_line_error(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a gguf file at all, just text" * 4)
    with pytest.raises(EdgebenchError, match="not a readable GGUF") as exc:
        gt.write_tokenizer_files(bad, tmp_path / "out")
    assert "\n" not in str(exc.value)


def _transformers_folder(gguf_path: Path, out: Path) -> Path:
    transformers = pytest.importorskip("transformers", reason="the convert extra builds the "
                                       "reference tokenizer")
    tok = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent),
                                                     gguf_file=gguf_path.name)
    tok.save_pretrained(str(out))
    return out


def _same_files(gguf_path: Path, mine: Path, ref: Path) -> None:
    gt.write_tokenizer_files(gguf_path, mine)
    assert json.loads((mine / "tokenizer.json").read_text()) == json.loads(
        (ref / "tokenizer.json").read_text())
    ours = json.loads((mine / "tokenizer_config.json").read_text())
    theirs = json.loads((ref / "tokenizer_config.json").read_text())
    for key in ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token",
                "tokenizer_class", "add_bos_token", "add_eos_token"):
        assert ours.get(key) == theirs.get(key), key
    for name in ("chat_template.jinja",):
        assert (mine / name).is_file() == (ref / name).is_file()
        if (ref / name).is_file():
            assert (mine / name).read_text() == (ref / name).read_text()


@pytest.mark.parametrize("kind", ["smollm", "qwen2-add-bos", "gemma"])
def test_the_json_is_transformers_own_on_tiny_vocabularies(tmp_path, kind):
    if kind == "gemma":
        path = _gemma(tmp_path)
    else:
        pre = "qwen2" if kind.startswith("qwen2") else "smollm"
        path = _byte_level(tmp_path, pre=pre, add_bos=kind.endswith("add-bos"),
                           template="{{ messages }}")
    ref = _transformers_folder(path, tmp_path / "ref")
    _same_files(path, tmp_path / "mine", ref)


def _corpus_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(CORPORA_DIR.glob("*.txt"))]


@pytest.fixture(scope="module")
def default_gguf(default_recipe) -> Path:
    """The default model's GGUF, fetched and verified into the cache like `models build`."""
    from bench.models import sources
    from bench.models.gguf_model import open_recipe_gguf

    sources.fetch_gguf(default_recipe, lambda msg: print(msg, file=sys.stderr))
    return open_recipe_gguf(default_recipe.id).path


@pytest.mark.slow
def test_the_default_model_tokenizes_like_transformers_folder(default_gguf, tmp_path):
    ref = _transformers_folder(default_gguf, tmp_path / "ref")
    _same_files(default_gguf, tmp_path / "mine", ref)
    ours = Tokenizer.from_file(str(tmp_path / "mine" / "tokenizer.json"))
    theirs = Tokenizer.from_file(str(ref / "tokenizer.json"))
    for text in _corpus_texts():
        ids = ours.encode(text, add_special_tokens=False).ids
        assert ids == theirs.encode(text, add_special_tokens=False).ids
        assert ours.decode(ids) == theirs.decode(ids) == text


def _genai_folder(built: Path, tokenizer_dir: Path, dst: Path) -> Path:
    """The built model's graph and config with the tokenizer files of `tokenizer_dir`."""
    dst.mkdir()
    for name in ("genai_config.json", "model.onnx", "model.onnx.data"):
        try:
            os.symlink(built / name, dst / name)
        except OSError:  # no symlinks (Windows without the privilege)
            shutil.copy(built / name, dst / name)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, dst / name)
    return dst


@pytest.mark.slow
def test_onnxruntime_genai_tokenizes_the_written_files_like_the_built_folder(
        built_models, default_gguf, tmp_path):
    og = pytest.importorskip("onnxruntime_genai")
    from bench.run import prompts

    built = built_models["int4"]
    gt.write_tokenizer_files(default_gguf, tmp_path / "tok")
    ours = og.Tokenizer(og.Model(str(_genai_folder(built, tmp_path / "tok", tmp_path / "a"))))
    theirs = og.Tokenizer(og.Model(str(_genai_folder(built, built, tmp_path / "b"))))
    chat = prompts.compile_chat(tmp_path / "tok").render(
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Café, naïve: 東京 😀?\n\n  x\t= 1"}],
        add_generation_prompt=True)
    reference = Tokenizer.from_file(str(built / "tokenizer.json"))
    for text in [*_corpus_texts(), chat]:
        ids = list(ours.encode(text))
        assert ids == list(theirs.encode(text))
        assert ids == reference.encode(text, add_special_tokens=False).ids
        assert ours.decode(ids) == theirs.decode(ids)
