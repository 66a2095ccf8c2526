import json

import pytest

from bench.models import build as modelzoo, folder as folders, sources
from bench.errors import EdgebenchError

pytestmark = pytest.mark.slow


def test_manifest_records_provenance(built_models, default_recipe):
    manifest = json.loads((built_models["int4"] / "manifest.json").read_text())
    assert manifest["source_sha256"] == default_recipe.source.sha256
    assert manifest["builder"].startswith("onnxruntime-genai ")
    assert manifest["builder_options"] == {"block_size": "32", "accuracy_level": "4"}
    assert manifest["sha256"]["model.onnx"] == folders.sha256_file(built_models["int4"] / "model.onnx")
    for name, size in manifest["files"].items():
        assert (built_models["int4"] / name).stat().st_size == size


def test_variants_differ_in_size_as_their_precision_says(built_models):
    sizes = {v: folders.folder_size_bytes(p) for v, p in built_models.items()}
    assert sizes["int4"] < sizes["int8"] < sizes["fp32"]


def test_open_model_folder_reads_provenance(built_models):
    folder = folders.open_model_folder(built_models["int8"])
    assert (folder.model_id, folder.variant, folder.precision) == ("smollm2-135m-instruct", "int8", "int8")
    assert folder.context_length == 8192 and folder.vocab_size == 49152


def test_missing_file_is_reported(int4_copy):
    (int4_copy / "tokenizer.json").unlink()
    with pytest.raises(EdgebenchError, match="missing tokenizer.json"):
        folders.open_model_folder(int4_copy)


def test_truncated_weights_are_reported(int4_copy):
    data = int4_copy / "model.onnx.data"
    with open(data, "r+b") as fh:
        fh.truncate(data.stat().st_size // 2)
    with pytest.raises(EdgebenchError, match="wrong size"):
        folders.open_model_folder(int4_copy)


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


def test_build_skips_finished_variants(built_models, default_recipe):
    before = (built_models["int4"] / "manifest.json").stat().st_mtime_ns
    steps = []
    modelzoo.build(default_recipe, ["int4"], steps.append)
    assert steps == []
    assert (built_models["int4"] / "manifest.json").stat().st_mtime_ns == before
