"""The decode roofline: the bandwidth measurement's arithmetic and cache, the weight footprint of
the real default model folders against the config, and the columns in old and new files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.models import footprint
from bench.models.folder import MANIFEST, open_model_folder
from bench.models.footprint import WeightFootprint, mean_decode_context, weight_bytes_per_token
from bench.results import validate
from bench.results.load import load_results
from bench.results.schema import ADDED_IN_V2, COLUMNS_BY_VERSION, SCHEMA_VERSION
from bench.results.writer import format_rows_csv
from bench.run import roofline
from bench.run.roofline import Bandwidth
from tests.rowfactory import make_row

MIB = 2**20


class StepClock:
    """perf_counter stand-in returning the given instants in turn."""

    def __init__(self, instants: list[float]) -> None:
        self.instants = list(instants)

    def __call__(self) -> float:
        return self.instants.pop(0)


# -- bandwidth: arithmetic, buffer size, cache -------------------------------------------------
def test_rate_is_bytes_over_the_median_pass():
    assert roofline.median_rate_bytes_s(1000, [0.1, 0.5, 0.2]) == pytest.approx(1000 / 0.2)
    assert roofline.median_rate_bytes_s(10, [2.0, 3.0]) == pytest.approx(10 / 2.5)
    for bad in ([], [0.1, 0.0], [-1.0]):
        with pytest.raises(ValueError):
            roofline.median_rate_bytes_s(1000, bad)


def test_measure_times_each_pass_on_the_given_clock():
    # two clock reads per timed pass (start, last join); the untimed pass reads none
    clock = StepClock([0, .1, 1, 1.3, 2, 2.2,          # 1 thread: .1 .3 .2 -> median .2
                       10, 10.5, 11, 11.4, 12, 12.6])  # 2 threads: .5 .4 .6 -> median .5
    found = roofline.measure([1, 2], size_bytes=MIB, passes=3, clock=clock, method="test")
    assert not clock.instants
    assert found[1].bytes_s == pytest.approx(MIB / 0.2)
    assert found[2].bytes_s == pytest.approx(MIB / 0.5)
    assert (found[2].threads, found[2].buffer_bytes, found[2].passes, found[2].method) == (
        2, MIB, 3, "test")


def test_measure_on_the_real_clock_reads_something():
    found = roofline.measure([1, 2], size_bytes=4 * MIB, passes=2)
    assert all(b.bytes_s > 0 for b in found.values()) and set(found) == {1, 2}
    assert "numpy max" in found[1].method


def test_the_child_process_measures_and_reports_its_failures(tmp_path):
    found = roofline.measure_in_child([1, 2], size_bytes=4 * MIB, method="m", passes=2)
    assert set(found) == {1, 2} and all(b.bytes_s > 0 and b.method == "m" for b in found.values())
    with pytest.raises(RuntimeError, match="number sections must be larger than 0"):
        roofline.measure_in_child([0], size_bytes=MIB, method="m")  # numpy refuses 0 slices
    said: list[str] = []
    assert roofline.bandwidths([0], "h", path=tmp_path / "b.json", size_bytes=MIB,
                               report=said.append) == {}
    assert "not measured (" in said[-1] and not (tmp_path / "b.json").exists()


def test_buffer_is_a_gib_or_eight_llcs_within_a_quarter_of_free_memory():
    gib = 2**30
    assert roofline.buffer_bytes(None, 64 * gib) == gib
    assert roofline.buffer_bytes(32 * MIB, 64 * gib) == gib
    assert roofline.buffer_bytes(260 * MIB, 64 * gib) == 8 * 260 * MIB
    assert roofline.buffer_bytes(260 * MIB, 4 * gib) == gib  # a quarter of what is free
    assert roofline.buffer_bytes(None, 100 * MIB) == roofline.MIN_BUFFER_BYTES


def _cache_level(root: Path, index: int, level: int, kind: str, size: str) -> None:
    d = root / f"sys/devices/system/cpu/cpu0/cache/index{index}"
    d.mkdir(parents=True)
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


def test_last_level_cache_is_the_highest_data_level(tmp_path):
    assert roofline.last_level_cache_bytes(tmp_path) is None
    _cache_level(tmp_path, 0, 1, "Data", "32K")
    _cache_level(tmp_path, 1, 1, "Instruction", "64K")
    _cache_level(tmp_path, 2, 2, "Unified", "1024K")
    assert roofline.last_level_cache_bytes(tmp_path) == 1024 * 1024
    _cache_level(tmp_path, 3, 3, "Unified", "32768K")
    assert roofline.last_level_cache_bytes(tmp_path) == 32 * MIB


class FakeMeasure:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, threads, *, size_bytes, method):
        self.calls.append(list(threads))
        return {n: Bandwidth(n, 1e9 * n, size_bytes, 5, "2026-01-01T00:00:00Z", method)
                for n in threads}


def test_bandwidth_is_cached_per_host_and_thread_count(tmp_path):
    path = tmp_path / "cache" / "bandwidth.json"
    measure, said = FakeMeasure(), []
    kw = dict(path=path, measure_fn=measure, size_bytes=MIB, report=said.append)
    assert roofline.bandwidths([2, 1], "host-a", **kw) == {1: 1e9, 2: 2e9}
    assert measure.calls == [[1, 2]]
    assert any("measuring" in s and "numpy max" in s for s in said)  # the method, when measured
    assert roofline.bandwidths([1, 2], "host-a", **kw) == {1: 1e9, 2: 2e9}
    assert measure.calls == [[1, 2]]  # both from the cache
    assert roofline.bandwidths([2, 4], "host-a", **kw) == {2: 2e9, 4: 4e9}
    assert measure.calls[-1] == [4]  # only the new thread count
    roofline.bandwidths([1], "host-b", **kw)
    assert measure.calls[-1] == [1]  # another machine is measured for itself
    roofline.bandwidths([1, 2], "host-a", remeasure=True, **kw)
    assert measure.calls[-1] == [1, 2]
    keys = set(json.loads(path.read_text()))
    assert keys == {"host-a/t1", "host-a/t2", "host-a/t4", "host-b/t1"}


def test_a_damaged_cache_is_measured_again(tmp_path):
    path = tmp_path / "bandwidth.json"
    path.write_text("{not json")
    measure = FakeMeasure()
    assert roofline.bandwidths([1], "h", path=path, measure_fn=measure, size_bytes=MIB) == {1: 1e9}
    path.write_text(json.dumps({"h/t1": {"threads": 1, "bytes_s": -5}}))
    roofline.bandwidths([1], "h", path=path, measure_fn=measure, size_bytes=MIB)
    assert measure.calls == [[1], [1]]
    assert roofline.load_cached(path, "h", 1).bytes_s == 1e9


def test_no_memory_for_the_buffer_leaves_the_columns_empty(tmp_path):
    def fails(threads, *, size_bytes, method):
        raise MemoryError

    said: list[str] = []
    assert roofline.bandwidths([1], "h", path=tmp_path / "b.json", measure_fn=fails,
                               size_bytes=MIB, report=said.append) == {}
    assert "not measured" in said[-1]


def test_only_host_memory_eps_have_this_roofline():
    assert roofline.applies("cpu") and not roofline.applies("cuda")


# -- footprint ------------------------------------------------------------------------------
def test_bytes_per_token_adds_the_kv_cache_at_the_mean_context():
    fp = WeightFootprint(weight_bytes_per_token=1000, embedding_row_bytes=10,
                         kv_bytes_per_context_token=8)
    assert fp.matrix_bytes == 990
    assert mean_decode_context(512, 128) == 576
    assert fp.bytes_per_token(mean_decode_context(1, 128)) == 1000 + 8 * 65
    assert WeightFootprint(1000, 10, None).bytes_per_token(65) is None


def test_footprint_round_trips_through_the_manifest():
    fp = WeightFootprint(84050280, 360, 46080, unclassified_bytes=7)
    back = WeightFootprint.from_manifest({"other": 1, **fp.manifest_entries()})
    assert back == WeightFootprint(84050280, 360, 46080)
    assert set(fp.manifest_entries()) == set(footprint.MANIFEST_KEYS)
    for odd in ({}, {"weight_bytes_per_token": "big", "embedding_row_bytes": 1},
                {"weight_bytes_per_token": -1, "embedding_row_bytes": 1},
                {"weight_bytes_per_token": True, "embedding_row_bytes": 1}):
        assert WeightFootprint.from_manifest(odd) is None


def _stub_folder(path: Path, manifest: dict) -> Path:
    path.mkdir(parents=True)
    (path / "genai_config.json").write_text(json.dumps({"model": {"vocab_size": 10}}))
    (path / "model.onnx").write_bytes(b"not a graph")
    (path / "tokenizer.json").write_text("{}")
    (path / MANIFEST).write_text(json.dumps(manifest))
    return path


def test_folder_reads_weights_source_quant_and_footprint_from_its_manifest(tmp_path):
    folder = open_model_folder(_stub_folder(tmp_path / "a", {
        "weights": "synthetic", "source_quant": "none (synthetic)",
        "weight_bytes_per_token": 5000, "embedding_row_bytes": 50,
        "kv_bytes_per_context_token": 16}))
    assert folder.weights == "synthetic" and folder.source_quant == "none (synthetic)"
    assert folder.footprint == WeightFootprint(5000, 50, 16)
    # an older manifest: real weights, unknown source; a graph onnx cannot parse gives no footprint
    old = open_model_folder(_stub_folder(tmp_path / "b", {"precision": "int4"}))
    assert (old.weights, old.source_quant, old.footprint) == ("real", None, None)


# SmolLM2-135M (models/smollm2-135m-instruct.toml): hidden 576, 30 layers, intermediate 1536,
# vocab 49152, 9 heads and 3 KV heads of 64; tied embeddings; builds use blocks of 32 with one
# float32 scale per block and no zero points.
H, LAYERS, INTER, VOCAB, HEAD, KV_HEADS = 576, 30, 1536, 49152, 64, 3
QKV = (9 + 2 * KV_HEADS) * HEAD
PARAMS = LAYERS * (H * QKV + H * H + 3 * H * INTER) + H * VOCAB  # layers + LM head
KV_PER_TOKEN = LAYERS * 2 * KV_HEADS * HEAD * 4  # float32 cache
EXPECTED = {  # (matrix bytes, embedding row bytes)
    "int4": (PARAMS // 2 + PARAMS // 32 * 4, H // 2 + H // 32 * 4),  # tied: a row of the Q4 head
    "int8": (PARAMS + PARAMS // 32 * 4, H * 4),  # a float32 embedding table of its own
    "fp32": (PARAMS * 4, H * 4),  # the head's transpose is the table
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_footprint_of_the_default_model_matches_its_config(built_models, variant):
    fp = weight_bytes_per_token(built_models[variant])
    matrices, row = EXPECTED[variant]
    assert (fp.matrix_bytes, fp.embedding_row_bytes) == (matrices, row)
    assert fp.weight_bytes_per_token == matrices + row
    assert fp.kv_bytes_per_context_token == KV_PER_TOKEN
    # what is counted nowhere is small: norm weights and the rotary tables
    assert 0 < fp.unclassified_bytes < 0.03 * matrices


@pytest.mark.slow
def test_a_folder_without_the_manifest_keys_reads_its_graph(int4_copy):
    manifest = json.loads((int4_copy / MANIFEST).read_text())
    for key in footprint.MANIFEST_KEYS:
        manifest.pop(key, None)
    (int4_copy / MANIFEST).write_text(json.dumps(manifest))
    folder = open_model_folder(int4_copy, verify_hashes=False)
    assert folder.footprint.weight_bytes_per_token == sum(EXPECTED["int4"])
    assert folder.weights == "real"


# -- the columns in files ------------------------------------------------------------------
def test_new_columns_are_part_of_v2_and_empty_after_migrating_v1(tmp_path):
    new = ("weights", "source_quant", "bytes_per_token", "mem_bandwidth_bytes_s",
           "decode_roofline_frac")
    assert set(new) <= set(ADDED_IN_V2) and not set(new) & set(COLUMNS_BY_VERSION[1])
    full = make_row(weights="real", source_quant="Q4_K_M", bytes_per_token=84_000_000,
                    mem_bandwidth_bytes_s=1.2e10, decode_roofline_frac=0.8)
    path = tmp_path / "v1.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS_BY_VERSION[1], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for cells in csv.DictReader(format_rows_csv([full]).splitlines()):
            writer.writerow({**cells, "schema_version": "1"})
    (row,) = load_results([path])
    assert row.schema_version == SCHEMA_VERSION
    assert all(getattr(row, c) is None for c in new)
    v2 = tmp_path / "v2.csv"
    v2.write_text(format_rows_csv([full]))
    (back,) = load_results([v2])
    assert (back.weights, back.source_quant, back.bytes_per_token, back.decode_roofline_frac) == (
        "real", "Q4_K_M", 84_000_000, 0.8)


@pytest.mark.parametrize("column, value", [("decode_roofline_frac", 6.0),
                                           ("decode_roofline_frac", -0.1),
                                           ("bytes_per_token", 0),
                                           ("mem_bandwidth_bytes_s", 12.0),
                                           ("weights", "imaginary")])
def test_implausible_roofline_values_are_flagged(column, value):
    assert not validate.plausibility_errors([make_row(decode_roofline_frac=0.9,
                                                      bytes_per_token=10**8,
                                                      mem_bandwidth_bytes_s=2e10)])
    errors = validate.plausibility_errors([make_row(**{column: value})])
    assert [e.column for e in errors] == [column]
