"""The torch backend (transformers eager on the HF folder) and its model record.

CPU tests run the real default model and compare with the ort backend on the fp32 ONNX build;
the CUDA test runs only where torch sees a GPU. The record's hashing and footprint are checked
on a hand-written safetensors file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.models import hf_model
from bench.run import prompts
from bench.run.timing import generate_timed

torch = pytest.importorskip("torch", reason="the torch backend needs torch (the convert extra)")
pytest.importorskip("transformers", reason="the torch backend needs transformers")

from bench.run.backends import torch_hf  # noqa: E402  (needs torch)
from bench.run.backends.ort import OrtBackend  # noqa: E402

EOS = frozenset({2})


@pytest.fixture(scope="module")
def hf_record(built_models, default_recipe) -> hf_model.HfModel:
    """The default model's HF folder (built_models builds it unless every variant existed)."""
    if not (hf_model.hf_dir(default_recipe.id) / "config.json").is_file():
        from bench.models.build import build_hf
        from bench.models.sources import fetch_gguf

        def say(msg: str) -> None:
            print(msg, file=sys.stderr)

        build_hf(default_recipe, fetch_gguf(default_recipe, say), say)
    return hf_model.open_recipe_hf(default_recipe.id, "fp32")


def _generate(backend, folder, ids, n, stop_ids=None, **load):
    backend.load(folder, ep="cpu", threads=2, **load)
    try:
        return list(generate_timed(backend, ids, n, stop_ids).tokens)
    finally:
        backend.close()


def _chat_ids(folder: Path) -> list[int]:
    tok = prompts.load_tokenizer(folder)
    return prompts.chat_ids(prompts.compile_chat(folder), tok, "You are a helpful assistant.",
                            "What is the capital of France?")


@pytest.mark.slow
def test_torch_fp32_greedy_tokens_equal_ort_fp32(hf_record, built_models):
    ids = _chat_ids(hf_record.tokenizer_dir)
    assert ids == _chat_ids(built_models["fp32"])  # same tokenizer, same prompt
    ours = _generate(torch_hf.TorchBackend(), hf_record.path, ids, 32)
    theirs = _generate(OrtBackend(), built_models["fp32"], ids, 32)
    assert ours == theirs
    text = prompts.load_tokenizer(hf_record.path).decode(ours, skip_special_tokens=True)
    assert "Paris" in text


@pytest.mark.slow
def test_ignore_eos_generates_exactly_n_tokens(hf_record):
    ids = _chat_ids(hf_record.path)  # the model answers briefly, then EOS
    stopped = _generate(torch_hf.TorchBackend(), hf_record.path, ids, 64, EOS)
    fixed = _generate(torch_hf.TorchBackend(), hf_record.path, ids, 64)
    assert stopped[-1] == 2 and len(stopped) < 64
    assert len(fixed) == 64 and 2 not in fixed
    assert fixed[:len(stopped) - 1] == stopped[:-1]


@pytest.mark.slow
def test_generation_past_the_reserved_length_is_one_line(hf_record):
    backend = torch_hf.TorchBackend()
    backend.load(hf_record.path, ep="cpu", threads=2)
    backend.begin(4)
    with pytest.raises(EdgebenchError, match="past the 4 reserved"):
        backend.prefill([1, 2, 3, 4, 5])
    backend.close()


@pytest.mark.slow
def test_bf16_runs_or_is_refused_in_one_line(hf_record):
    native = torch_hf.cpu_bf16_native()
    backend = torch_hf.TorchBackend()
    if native is False:
        with pytest.raises(EdgebenchError) as err:
            backend.load(hf_record.path, ep="cpu", threads=2, variant="bf16")
        assert "\n" not in str(err.value) and "bf16" in str(err.value)
        assert "fp32" in str(err.value)
        return
    tokens = _generate(backend, hf_record.path, [1, 504, 3458, 282], 8, variant="bf16")
    assert len(tokens) == 8
    backend.load(hf_record.path, ep="cpu", threads=2, variant="bf16")
    assert backend.ep_options()["dtype"] == "bfloat16"
    assert backend.ep_options()["bf16"] == ("native" if native else "unknown")


def test_cpu_bf16_detection_reads_flags_and_features():
    x86 = [{"flags": "fpu avx2 avx512f avx512_bf16"}, {"flags": "fpu avx2 avx512f avx512_bf16"}]
    assert torch_hf.cpu_bf16_native(x86) is True
    assert torch_hf.cpu_bf16_native([{"flags": "fpu avx2 amx_bf16 amx_tile"}]) is True
    assert torch_hf.cpu_bf16_native([{"flags": "fpu avx2 avx512f"}]) is False
    assert torch_hf.cpu_bf16_native([{"Features": "fp asimd bf16 i8mm"}]) is True
    assert torch_hf.cpu_bf16_native([{"Features": "fp asimd"}]) is False
    assert torch_hf.cpu_bf16_native([]) is None  # nothing to read: allowed, labelled unknown


def test_check_bf16_refuses_only_a_cpu_known_to_lack_it():
    with pytest.raises(EdgebenchError, match="no native bf16.*fp32 variant"):
        torch_hf.check_bf16("cpu", torch, False)
    assert torch_hf.check_bf16("cpu", torch, True) == "native"
    assert torch_hf.check_bf16("cpu", torch, None) == "unknown"


def test_ep_cuda_without_cuda_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EdgebenchError) as err:
        torch_hf.TorchBackend().load(tmp_path, ep="cuda", threads=1)
    message = str(err.value)
    assert "\n" not in message and message.startswith("torch sees no CUDA device")
    assert "--ep cpu" in message


def test_unknown_ep_and_variant_are_one_line(tmp_path):
    with pytest.raises(EdgebenchError, match="--ep cpu or --ep cuda, not 'dml'"):
        torch_hf.TorchBackend().load(tmp_path, ep="dml", threads=1)
    with pytest.raises(EdgebenchError, match="fp32 or bf16, not 'int4'"):
        torch_hf.TorchBackend().load(tmp_path, ep="cpu", threads=1, variant="int4")
    with pytest.raises(EdgebenchError, match="no config.json"):
        torch_hf.TorchBackend().load(tmp_path, ep="cpu", threads=1)


def test_device_selection():
    assert torch_hf.DEVICES == {"cpu": "cpu", "cuda": "cuda:0"}
    assert torch_hf.torch_device("cpu", torch) == "cpu"


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="torch sees no CUDA device (CPU build or no NVIDIA GPU here)")
def test_cuda_tokens_equal_cpu_and_memory_is_reported(hf_record):
    ids = _chat_ids(hf_record.path)
    cpu = _generate(torch_hf.TorchBackend(), hf_record.path, ids, 16)
    backend = torch_hf.TorchBackend()
    backend.load(hf_record.path, ep="cuda", threads=2)
    try:
        gpu = list(generate_timed(backend, ids, 16).tokens)
        assert backend.ep_options()["device"] == "cuda:0" and backend.ep_options()["gpu_name"]
        assert backend.peak_device_memory_bytes() > hf_record.footprint.matrix_bytes
    finally:
        backend.close()
    assert gpu == cpu


# -- the model record --------------------------------------------------------------------------

def _write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    """A valid safetensors file of zeros with these (dtype, shape)s."""
    sizes = {"F32": 4, "BF16": 2, "I64": 8}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def _toy_folder(root: Path, *, tied: bool = True) -> Path:
    config = {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64,
              "tie_word_embeddings": tied, "eos_token_id": 2, "bos_token_id": 1}
    (root / "config.json").write_text(json.dumps(config))
    (root / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 3]}))
    tensors = {"model.embed_tokens.weight": ("F32", [10, 4]),
               "model.layers.0.mlp.up_proj.weight": ("F32", [8, 4]),
               "model.norm.weight": ("F32", [4])}
    if not tied:
        tensors["lm_head.weight"] = ("F32", [10, 4])
    _write_safetensors(root / "model.safetensors", tensors)
    return root


def test_footprint_counts_matrices_tied_head_and_one_embedding_row(tmp_path):
    record = hf_model.open_hf_folder(_toy_folder(tmp_path), "fp32")
    fp = record.footprint
    # up_proj 8x4 + the tied head (the 10x4 table) + one row of 4, fp32
    assert (fp.weight_bytes_per_token, fp.embedding_row_bytes) == ((32 + 40 + 4) * 4, 16)
    assert fp.kv_bytes_per_context_token == 2 * 2 * 1 * 2 * 4  # layers x k,v x heads x dim
    bf16 = hf_model.open_hf_folder(tmp_path, "bf16").footprint
    assert bf16.weight_bytes_per_token == fp.weight_bytes_per_token // 2
    assert (record.eos_token_ids, record.bos_token_id, record.context_length) == ((2, 3), 1, 64)
    assert record.runtime == "hf" and record.tokenizer_dir is None  # no tokenizer.json here


def test_footprint_counts_an_untied_head_once(tmp_path):
    fp = hf_model.open_hf_folder(_toy_folder(tmp_path, tied=False), "fp32").footprint
    assert fp.weight_bytes_per_token == (32 + 40 + 4) * 4


def test_weights_sha256_is_cached_by_size_and_mtime(tmp_path):
    folder = _toy_folder(tmp_path)
    weights = folder / "model.safetensors"
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert hf_model.open_hf_folder(folder, "fp32").model_sha256 == expected
    cache_file = folder / hf_model.DIGEST_CACHE
    cache = json.loads(cache_file.read_text())
    assert cache["model.safetensors"]["sha256"] == expected
    cache["model.safetensors"]["sha256"] = "f" * 64  # a cached value is trusted while unchanged
    cache_file.write_text(json.dumps(cache))
    assert hf_model.open_hf_folder(folder, "fp32").model_sha256 == "f" * 64
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert hf_model.open_hf_folder(folder, "fp32").model_sha256 == expected  # rehashed
    # the digest cache is not part of the model's size
    assert hf_model.open_hf_folder(folder, "fp32").size_bytes == sum(
        p.stat().st_size for p in folder.iterdir() if p.name != hf_model.DIGEST_CACHE)


def test_shards_hash_to_their_name_digest_lines(tmp_path):
    folder = _toy_folder(tmp_path)
    _write_safetensors(folder / "model-2.safetensors", {"extra.weight": ("F32", [2, 2])})
    files = hf_model.safetensors_files(folder)
    lines = "".join(f"{f.name} {hashlib.sha256(f.read_bytes()).hexdigest()}\n" for f in files)
    assert hf_model.weights_sha256(files) == hashlib.sha256(lines.encode()).hexdigest()


def test_missing_hf_folder_says_to_build(monkeypatch, tmp_path, default_recipe):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    with pytest.raises(EdgebenchError) as err:
        hf_model.open_recipe_hf(default_recipe.id, "fp32")
    assert "\n" not in str(err.value)
    assert f"edgebench models build {default_recipe.id}" in str(err.value)
    with pytest.raises(EdgebenchError, match="fp32 or bf16"):
        hf_model.open_recipe_hf(default_recipe.id, "int4")


def test_a_folder_without_weights_or_with_a_corrupt_header_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EdgebenchError, match="no .safetensors weights"):
        hf_model.open_hf_folder(tmp_path, "fp32")
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(EdgebenchError, match="not a readable safetensors"):
        hf_model.safetensors_header(tmp_path / "model.safetensors")
