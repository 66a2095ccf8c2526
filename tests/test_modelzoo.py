import json
from pathlib import Path

import pytest

from bench.models import build as modelzoo, folder as folders, sources
from bench.errors import EdgebenchError

slow = pytest.mark.slow
MODEL = "smollm2-135m-instruct"


@slow
def test_manifest_records_provenance(built_models, default_recipe):
    manifest = json.loads((built_models["int4"] / "manifest.json").read_text())
    assert manifest["source_sha256"] == default_recipe.source.sha256
    assert manifest["builder"].startswith("onnxruntime-genai ")
    assert manifest["builder_options"] == {"block_size": "32", "accuracy_level": "4",
                                           "prune_lm_head": "true"}
    assert manifest["logits"] == "last"
    assert manifest["sha256"]["model.onnx"] == folders.sha256_file(built_models["int4"] / "model.onnx")
    for name, size in manifest["files"].items():
        assert (built_models["int4"] / name).stat().st_size == size


@slow
def test_variants_differ_in_size_as_their_precision_says(built_models):
    sizes = {v: folders.folder_size_bytes(p) for v, p in built_models.items()}
    assert sizes["int4"] < sizes["int8"] < sizes["fp32"]


@slow
def test_open_model_folder_reads_provenance(built_models):
    folder = folders.open_model_folder(built_models["int8"])
    assert (folder.model_id, folder.variant, folder.precision) == ("smollm2-135m-instruct", "int8", "int8")
    assert folder.context_length == 8192 and folder.vocab_size == 49152
    assert folder.logits == "last"


@slow
def test_missing_file_is_reported(int4_copy):
    (int4_copy / "tokenizer.json").unlink()
    with pytest.raises(EdgebenchError, match="missing tokenizer.json"):
        folders.open_model_folder(int4_copy)


@slow
def test_truncated_weights_are_reported(int4_copy):
    data = int4_copy / "model.onnx.data"
    with open(data, "r+b") as fh:
        fh.truncate(data.stat().st_size // 2)
    with pytest.raises(EdgebenchError, match="wrong size"):
        folders.open_model_folder(int4_copy)


@slow
def test_corrupt_weights_are_reported(int4_copy):
    data = int4_copy / "model.onnx.data"
    with open(data, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00" * 64)
    with pytest.raises(EdgebenchError, match="does not match the sha256"):
        folders.open_model_folder(int4_copy)


def test_an_interrupted_step_leaves_no_folder_that_looks_finished(tmp_path):
    final = tmp_path / "variant"
    with pytest.raises(KeyboardInterrupt):
        with sources.staging(final) as tmp:
            (tmp / "model.onnx").write_text("half")
            raise KeyboardInterrupt
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []  # the partial folder was cleaned up too


@slow
def test_build_skips_finished_variants(built_models, default_recipe):
    before = (built_models["int4"] / "manifest.json").stat().st_mtime_ns
    steps = []
    modelzoo.build(default_recipe, ["int4"], steps.append)
    assert steps == []
    assert (built_models["int4"] / "manifest.json").stat().st_mtime_ns == before


def test_replacing_a_folder_leaves_only_the_new_one(tmp_path):
    final = tmp_path / "variant"
    final.mkdir()
    (final / "old.onnx").write_text("old")
    with sources.staging(final) as tmp:
        (tmp / "new.onnx").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.onnx"]
    assert list(tmp_path.iterdir()) == [final]  # neither the staging nor the old folder is left


# The LM head: benchmark builds compute the last position's logits only, quality scoring needs
# every position, and the choice is part of the cache key.

def _write_manifest(path: Path, **fields) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps({"model_id": MODEL, **fields}))


def test_the_head_is_part_of_the_cache_key(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    assert folders.variant_dir(MODEL, "int4") == tmp_path / "models" / MODEL / "int4"
    assert (folders.variant_dir(MODEL, "int4", logits="all")
            == tmp_path / "models" / MODEL / "int4+all-logits")
    _write_manifest(folders.variant_dir(MODEL, "int4"), variant="int4", logits="last")
    assert folders.is_built(MODEL, "int4")
    assert not folders.is_built(MODEL, "int4", logits="all")
    with pytest.raises(EdgebenchError, match="logits must be one of last, all"):
        folders.variant_dir(MODEL, "int4", logits="first")


def test_a_manifest_without_the_head_is_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    _write_manifest(folders.variant_dir(MODEL, "int4"), variant="int4")  # an older edgebench's
    assert folders.build_state(MODEL, "int4") == "stale"
    assert not folders.is_built(MODEL, "int4")
    with pytest.raises(EdgebenchError, match="older edgebench.*'edgebench models build "
                                             f"{MODEL} --variant int4'"):
        folders.open_built_variant(MODEL, "int4")


def test_build_rebuilds_stale_and_missing_folders_only(tmp_path, monkeypatch, default_recipe):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    _write_manifest(folders.variant_dir(MODEL, "int4"), variant="int4")
    _write_manifest(folders.variant_dir(MODEL, "int8"), variant="int8", logits="last")
    calls = []
    monkeypatch.setattr(modelzoo, "fetch_gguf", lambda *a, **k: tmp_path / "x.gguf")
    monkeypatch.setattr(modelzoo, "build_hf", lambda *a: tmp_path / "hf")
    monkeypatch.setattr(modelzoo, "build_variant",
                        lambda recipe, v, *a, logits: calls.append((v.name, logits)))
    out = modelzoo.build(default_recipe, ["int4", "int8", "fp32"], print)
    assert calls == [("int4", "last"), ("fp32", "last")]
    assert out == [folders.variant_dir(MODEL, v) for v in ("int4", "int8", "fp32")]
    calls.clear()
    out = modelzoo.build(default_recipe, ["int8"], print, logits="all")
    assert calls == [("int8", "all")] and out == [tmp_path / "models" / MODEL / "int8+all-logits"]


def test_models_list_shows_the_head_and_stale_builds(tmp_path, monkeypatch):
    from tests.conftest import run_cli

    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    _write_manifest(folders.variant_dir(MODEL, "int4"), variant="int4")
    _write_manifest(folders.variant_dir(MODEL, "int8", logits="all"), variant="int8", logits="all")
    done = run_cli("models", "list")
    assert done.returncode == 0, done.stderr
    rows = {tuple(c.strip() for c in line.split("|")[2:5]): line.split("|")[5].strip()
            for line in done.stdout.splitlines() if line.startswith(f"| {MODEL} ")}
    assert rows == {("gguf", "gguf (accuracy_level=4)", "last"): "no",
                    ("gguf-exact", "gguf (accuracy_level=0)", "last"): "no",
                    ("int4", "int4 (block_size=32,accuracy_level=4)", "last"): "stale: rebuild",
                    ("int8", "int8", "last"): "no", ("int8", "int8", "all"): "yes",
                    ("fp32", "fp32", "last"): "no"}


def _prefill_logits(folder: Path, n_tokens: int = 5):
    """The logits output of a plain onnxruntime prefill of n tokens on an empty cache."""
    import numpy as np
    import onnxruntime as ort

    decoder = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
    names = decoder["inputs"]
    session = ort.InferenceSession(str(folder / decoder["filename"]),
                                   providers=["CPUExecutionProvider"])
    empty = np.zeros((1, decoder["num_key_value_heads"], 0, decoder["head_size"]), np.float32)
    feed = {names["input_ids"]: np.arange(100, 100 + n_tokens, dtype=np.int64).reshape(1, -1),
            names["attention_mask"]: np.ones((1, n_tokens), dtype=np.int64)}
    for i in range(decoder["num_hidden_layers"]):
        feed[names["past_key_names"] % i] = feed[names["past_value_names"] % i] = empty
    return session.run([decoder["outputs"]["logits"]], feed)[0]


@slow
@pytest.mark.parametrize("variant", ["int4", "int8", "fp32"])
def test_benchmark_builds_compute_the_last_position_only(built_models, variant):
    assert _prefill_logits(built_models[variant]).shape == (1, 1, 49152)


@slow
def test_full_logits_build_lands_in_its_own_folder(built_models, built_full_logits):
    import numpy as np

    assert built_full_logits.name == "int4+all-logits"
    assert built_full_logits.parent == built_models["int4"].parent
    manifest = json.loads((built_full_logits / "manifest.json").read_text())
    assert manifest["logits"] == "all" and manifest["builder_options"]["prune_lm_head"] == "false"
    pruned = json.loads((built_models["int4"] / "manifest.json").read_text())
    assert manifest["sha256"]["model.onnx.data"] == pruned["sha256"]["model.onnx.data"]
    opened = folders.open_model_folder(built_full_logits)
    assert (opened.variant, opened.logits) == ("int4", "all")
    full, last = _prefill_logits(built_full_logits), _prefill_logits(built_models["int4"])
    assert full.shape == (1, 5, 49152)
    np.testing.assert_allclose(full[0, -1], last[0, 0], rtol=0, atol=1e-3)  # the same weights


@slow
def test_a_folder_whose_manifest_lacks_the_head_still_opens(int4_copy):
    manifest = json.loads((int4_copy / "manifest.json").read_text())
    del manifest["logits"]
    (int4_copy / "manifest.json").write_text(json.dumps(manifest))
    assert folders.open_model_folder(int4_copy).logits == "unknown"
