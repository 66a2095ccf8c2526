"""The GGUF record: header parsing checked against files written by the `gguf` package (the
reference writer), the decode footprint, and the one-line errors."""

from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.models import gguf_model

gguf = pytest.importorskip("gguf", reason="the gguf package (convert extra) writes the test files")
np = pytest.importorskip("numpy")

VOCAB, EMBD, HEADS, KV_HEADS, LAYERS = 10, 8, 2, 1, 2


def _write(path: Path, *, tied: bool, name: str | None = "Tiny Llama") -> Path:
    w = gguf.GGUFWriter(str(path), "llama")
    if name:
        w.add_name(name)
    w.add_block_count(LAYERS)
    w.add_context_length(128)
    w.add_embedding_length(EMBD)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_0))
    w.add_token_list([f"t{i}" for i in range(VOCAB)])
    w.add_token_scores([0.0] * VOCAB)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_eot_token_id(3)
    w.add_tensor("token_embd.weight", np.zeros((VOCAB, EMBD), np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((EMBD, EMBD), np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.zeros((EMBD,), np.float32))
    if not tied:
        w.add_tensor("output.weight", np.zeros((VOCAB, EMBD), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_header_reads_metadata_and_tensor_sizes(tmp_path):
    header = gguf_model.read_header(_write(tmp_path / "m.gguf", tied=False))
    meta = header.metadata
    assert meta["general.architecture"] == "llama"
    assert meta["llama.block_count"] == LAYERS
    assert meta["tokenizer.ggml.tokens"] == VOCAB  # long string arrays are kept as a length
    assert meta["tokenizer.ggml.eot_token_id"] == 3
    sizes = {name: (dims, size) for name, dims, size in header.tensors}
    assert sizes["token_embd.weight"][0] == (EMBD, VOCAB)  # ggml order: [n_embd, n_vocab]
    # each size is the data bytes, at most the alignment padding (32) above the exact size
    for name, exact in [("token_embd.weight", VOCAB * EMBD * 4),
                        ("blk.0.attn_q.weight", EMBD * EMBD * 4),
                        ("blk.0.attn_norm.weight", EMBD * 4), ("output.weight", VOCAB * EMBD * 2)]:
        assert exact <= sizes[name][1] < exact + 32, name


def test_footprint_counts_matrices_one_embedding_row_and_the_kv_cache(tmp_path):
    fp = gguf_model.footprint(gguf_model.read_header(_write(tmp_path / "m.gguf", tied=False)))
    row = VOCAB * EMBD * 4 // VOCAB
    assert fp.embedding_row_bytes == row
    assert fp.weight_bytes_per_token == EMBD * EMBD * 4 + VOCAB * EMBD * 2 + row
    head_dim = EMBD // HEADS
    assert fp.kv_bytes_per_context_token == LAYERS * KV_HEADS * 2 * head_dim * 2  # f16 K and V


def test_a_tied_head_reads_the_whole_embedding_table(tmp_path):
    fp = gguf_model.footprint(gguf_model.read_header(_write(tmp_path / "m.gguf", tied=True)))
    table = VOCAB * EMBD * 4
    assert fp.weight_bytes_per_token == EMBD * EMBD * 4 + table + table // VOCAB


def test_open_gguf_path_builds_the_record(tmp_path):
    path = _write(tmp_path / "tiny.gguf", tied=False)
    m = gguf_model.open_gguf_path(path)
    assert (m.model_id, m.variant, m.runtime, m.precision) == ("Tiny Llama", "gguf", "gguf",
                                                               "Q4_0")
    assert (m.context_length, m.vocab_size, m.bos_token_id) == (128, VOCAB, 1)
    assert m.eos_token_ids == (2, 3)
    assert m.model_sha256 == gguf_model.sha256_file(path) and m.source_sha256 is None
    assert m.size_bytes == path.stat().st_size and m.tokenizer_dir is None
    unnamed = gguf_model.open_gguf_path(_write(tmp_path / "plain.gguf", tied=True, name=None))
    assert unnamed.model_id == "plain"


def test_missing_or_foreign_files_are_one_line_errors(tmp_path):
    with pytest.raises(EdgebenchError, match="does not exist") as missing:
        gguf_model.open_gguf_path(tmp_path / "nope.gguf")
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf at all")
    with pytest.raises(EdgebenchError, match="not a readable GGUF") as foreign:
        gguf_model.open_gguf_path(not_gguf)
    for exc in (missing, foreign):
        assert "\n" not in str(exc.value)


def test_a_recipe_gguf_not_in_the_cache_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    with pytest.raises(EdgebenchError, match="models build smollm2-135m-instruct") as exc:
        gguf_model.open_recipe_gguf("smollm2-135m-instruct")
    assert "\n" not in str(exc.value)


@pytest.mark.slow
def test_the_recipe_gguf_record_carries_the_pinned_identity(default_recipe, monkeypatch):
    import sys

    from bench.models import sources

    sources.fetch_gguf(default_recipe, lambda msg: print(msg, file=sys.stderr))
    calls = []
    monkeypatch.setattr(gguf_model, "sha256_file", lambda p: calls.append(p) or "x")
    monkeypatch.setattr(sources, "_verify", lambda *a: calls.append(a))
    m = gguf_model.open_recipe_gguf(default_recipe.id)
    assert not calls  # verified through the cache marker, not hashed again
    assert m.model_sha256 == m.source_sha256 == default_recipe.source.sha256
    assert (m.variant, m.precision, m.source_quant) == ("gguf", "Q4_1", "Q4_1")
    assert (m.vocab_size, m.context_length, m.bos_token_id, m.eos_token_ids) == (
        49152, 8192, 1, (2,))
    # 30 layers x 3 KV heads x (64 + 64) x 2 bytes; the tied head reads the Q8_0 table
    assert m.footprint.kv_bytes_per_context_token == 30 * 3 * 128 * 2
    assert m.footprint.matrix_bytes < m.size_bytes < 1.1 * m.footprint.weight_bytes_per_token
