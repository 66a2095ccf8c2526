"""llama-bench import, with samples written exactly as llama-bench's csv/json/jsonl printers do."""

from __future__ import annotations

import argparse
import json

import pytest

from bench.errors import EdgebenchError
from bench.cli import importers as import_cli
from bench.results.importers.llama_bench import (SOURCE, import_llama_bench, llama_test_name, model_id_of, quant_of, write_import)
from bench.results.schema import REQUIRED
from bench.results.read import read_rows
from bench.results.validate import check_rows

# tools/llama-bench/llama-bench.cpp test::get_fields() at the version anchors.md cites
FIELDS = ("build_commit build_number cpu_info gpu_info backends model_filename model_type "
          "model_size model_n_params n_batch n_ubatch n_threads cpu_mask cpu_strict poll type_k "
          "type_v n_gpu_layers n_cpu_moe split_mode main_gpu no_kv_offload flash_attn devices "
          "tensor_split tensor_buft_overrides use_mmap embeddings no_op_offload no_host n_prompt "
          "n_gen n_depth test_time avg_ns stddev_ns avg_ts stddev_ts").split()
INT = {"build_number", "n_batch", "n_ubatch", "n_threads", "poll", "model_size", "model_n_params",
       "n_gpu_layers", "main_gpu", "n_prompt", "n_gen", "n_depth", "avg_ns", "stddev_ns",
       "no_op_offload", "n_cpu_moe", "flash_attn"}
BOOL = {"no_kv_offload", "cpu_strict", "use_mmap", "embeddings", "no_host"}
FLOAT = {"avg_ts", "stddev_ts"}
MODEL_PATH = "/home/alice/models/SmolLM2-135M-Instruct-Q4_0.gguf"


def _mean(xs):
    return sum(xs) / len(xs)


def _stdev(xs):
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


def _test(n_prompt: int, n_gen: int, samples_ns: list[int], when: str):
    """(values as test::get_values() prints them, samples_ns, samples_ts)."""
    ts = [1e9 * (n_prompt + n_gen) / t for t in samples_ns]
    values = {
        "build_commit": "3f4fc97f", "build_number": "6385", "cpu_info": "AMD EPYC 7B13",
        "gpu_info": "", "backends": "CPU", "model_filename": MODEL_PATH,
        "model_type": "llama ?B Q4_0", "model_size": "91706880", "model_n_params": "134515008",
        "n_batch": "2048", "n_ubatch": "512", "n_threads": "2", "cpu_mask": "0x0",
        "cpu_strict": "0", "poll": "50", "type_k": "f16", "type_v": "f16",
        "n_gpu_layers": "99", "n_cpu_moe": "0", "split_mode": "layer", "main_gpu": "0",
        "no_kv_offload": "0", "flash_attn": "0", "devices": "auto", "tensor_split": "0.00",
        "tensor_buft_overrides": "none", "use_mmap": "1", "embeddings": "0",
        "no_op_offload": "0", "no_host": "0", "n_prompt": str(n_prompt), "n_gen": str(n_gen),
        "n_depth": "0", "test_time": when, "avg_ns": str(int(_mean(samples_ns))),
        "stddev_ns": str(int(_stdev(samples_ns))), "avg_ts": f"{_mean(ts):.6f}",
        "stddev_ts": f"{_stdev(ts):.6f}",
    }
    return values, samples_ns, ts


TESTS = [
    _test(512, 0, [2178000000, 2190000000, 2169000000, 2201000000, 2185000000],
          "2026-11-22T05:10:00Z"),
    _test(0, 128, [2512000000, 2498000000, 2530000000, 2505000000, 2520000000],
          "2026-11-22T05:10:12Z"),
    _test(512, 128, [4701000000, 4690000000, 4722000000], "2026-11-22T05:10:25Z"),
]


def _json_value(field: str, value: str) -> str:
    if field in INT or field in FLOAT:
        return value
    if field in BOOL:
        return "false" if value == "0" else "true"
    return json.dumps(value)


def as_csv(tests) -> str:  # csv_printer
    lines = [",".join(FIELDS)]
    for values, _, _ in tests:
        lines.append(",".join('"' + values[f].replace('"', '""') + '"' for f in FIELDS))
    return "\n".join(lines) + "\n"


def _join(xs) -> str:  # llama-bench join() through a stringstream: 6 significant digits
    return ", ".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in xs)


def as_json(tests) -> str:  # json_printer
    parts = []
    for values, ns, ts in tests:
        body = "".join(f'    "{f}": {_json_value(f, values[f])},\n' for f in FIELDS)
        parts.append("  {\n" + body + f"    \"samples_ns\": [ {_join(ns)} ],\n"
                     f"    \"samples_ts\": [ {_join(ts)} ]\n  }}")
    return "[\n" + ",\n".join(parts) + "\n]\n"


def as_jsonl(tests) -> str:  # jsonl_printer
    lines = []
    for values, ns, ts in tests:
        body = "".join(f'"{f}": {_json_value(f, values[f])}, ' for f in FIELDS)
        lines.append("{" + body + f"\"samples_ns\": [ {_join(ns)} ],"
                     f"\"samples_ts\": [ {_join(ts)} ]}}")
    return "\n".join(lines) + "\n"


@pytest.fixture()
def files(tmp_path):
    out = {}
    for kind, text in (("csv", as_csv(TESTS)), ("json", as_json(TESTS)),
                       ("jsonl", as_jsonl(TESTS))):
        path = tmp_path / f"llama-bench.{kind}"
        path.write_text(text)
        out[kind] = path
    return out


def test_json_gives_one_row_per_repetition(files):
    rows = import_llama_bench(files["json"])
    assert [(r.test, r.rep) for r in rows] == (
        [("pp512", i) for i in range(1, 6)] + [("tg128", i) for i in range(1, 6)]
        + [("pp512+tg128", i) for i in range(1, 4)])
    pp, tg, pg = rows[0], rows[5], rows[10]
    assert pp.prefill_tok_s == pytest.approx(TESTS[0][2][0], rel=1e-5)
    assert pp.prefill_s == pytest.approx(2.178) and pp.decode_tok_s is None
    assert [r.decode_tok_s for r in rows[5:10]] == pytest.approx(TESTS[1][2], rel=1e-5)
    assert tg.decode_s == pytest.approx(2.512) and tg.prefill_tok_s is None
    assert pg.prefill_tok_s is None and pg.decode_tok_s is None
    assert "neither a prefill nor a decode rate" in pg.warnings
    assert pp.source == SOURCE and pp.backend == "llama.cpp"
    assert pp.backend_version == "3f4fc97f (6385)"
    assert pp.ep == "cpu" and pp.threads == 2
    assert pp.model_id == "SmolLM2-135M-Instruct-Q4_0"
    assert pp.variant == "Q4_0" and pp.precision == "llama ?B Q4_0"
    assert pp.model_size_bytes == 91706880
    assert (pp.n_prompt, pp.n_gen_requested, pp.n_generated) == (512, 0, 0)
    assert (tg.n_prompt, tg.n_gen_requested, tg.n_generated) == (0, 128, 128)
    assert pp.cpu_model == "AMD EPYC 7B13"
    assert pp.started_utc == pp.finished_utc == "2026-11-22T05:10:00Z"
    assert pp.config_id == "SmolLM2-135M-Instruct-Q4_0/Q4_0/llama.cpp/cpu/t2/pp512"
    assert json.loads(pp.ep_options)["n_gpu_layers"] == 99


def test_honest_empties(files):
    for row in import_llama_bench(files["json"]):
        assert row.energy_method == "none"
        assert all(getattr(row, c) is None for c in (
            "prefill_energy_j", "decode_energy_j", "decode_j_per_tok", "idle_power_w",
            "load_s", "ttft_s", "itl_p50_s", "peak_rss_bytes", "ram_bytes", "on_battery",
            "model_sha256", "os_release", "cpu_temp_c_before", "onnxruntime_version"))
        for column in ("cpu_arch", "os_name", "host_fingerprint"):
            assert getattr(row, column) == "unknown"
        assert all(getattr(row, c) not in (None, "") for c in REQUIRED)
        assert "llama-bench.json" in row.warnings
        assert "/home/alice" not in repr(row)  # file name only, never the path


def test_csv_gives_one_mean_row_per_test(files):
    rows = import_llama_bench(files["csv"])
    assert [(r.test, r.rep) for r in rows] == [("pp512", 1), ("tg128", 1), ("pp512+tg128", 1)]
    pp, tg, _ = rows
    assert pp.prefill_tok_s == pytest.approx(float(TESTS[0][0]["avg_ts"]))
    assert tg.decode_tok_s == pytest.approx(float(TESTS[1][0]["avg_ts"]))
    stddev = float(TESTS[0][0]["stddev_ts"])
    assert (f"llama-bench CSV holds only the mean of N repetitions (N not recorded; "
            f"stddev {stddev:.2f} t/s)") in pp.warnings
    assert "llama-bench.csv" in pp.warnings and "/home/alice" not in repr(rows)
    # CSV and JSON describe the same configurations
    json_rows = import_llama_bench(files["json"])
    assert {r.config_id for r in rows} == {r.config_id for r in json_rows}
    assert {r.ep_options for r in rows} == {r.ep_options for r in json_rows}


def test_csv_with_a_duplicated_column_is_refused_not_last_value_wins(files, tmp_path):
    lines = files["csv"].read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    col = header.index("avg_ts")
    path = tmp_path / "dup.csv"
    path.write_text("\n".join([",".join(header + ["avg_ts"])]
                              + [line + ",999999" for line in lines[1:]]) + "\n")
    assert first[col]  # the real value the duplicate would have overwritten
    with pytest.raises(EdgebenchError, match="column 'avg_ts' appears more than once"):
        import_llama_bench(path)


def test_jsonl_matches_json(files):
    a, b = import_llama_bench(files["json"]), import_llama_bench(files["jsonl"])
    assert [(r.config_id, r.rep, r.prefill_tok_s, r.decode_tok_s) for r in a] == \
           [(r.config_id, r.rep, r.prefill_tok_s, r.decode_tok_s) for r in b]


def test_run_id_is_a_content_hash(files, tmp_path):
    first = import_llama_bench(files["json"])
    copy = tmp_path / "copy.json"
    copy.write_bytes(files["json"].read_bytes())
    assert {r.run_id for r in import_llama_bench(copy)} == {r.run_id for r in first}
    assert len({r.run_id for r in first}) == 1
    assert {r.run_id for r in import_llama_bench(files["csv"])} != {r.run_id for r in first}


def test_written_rows_round_trip_and_reimport_is_a_no_op(files, tmp_path):
    out = tmp_path / "imported.csv"
    rows = import_llama_bench(files["json"])
    assert write_import(files["json"], out).written == len(rows)
    assert read_rows(out) == rows
    again = write_import(files["json"], out)
    assert (again.written, again.skipped) == (0, len(rows))
    assert write_import(files["csv"], out).written == 3
    assert len(read_rows(out)) == len(rows) + 3


def test_imported_rows_pass_upload_validation(files):
    for kind in ("csv", "json", "jsonl"):
        assert check_rows(import_llama_bench(files[kind])) == []


def test_same_test_with_other_settings_gets_its_own_config(tmp_path):
    a = _test(512, 0, [2178000000, 2190000000], "2026-11-22T05:10:00Z")
    b = _test(512, 0, [2278000000, 2290000000], "2026-11-22T05:11:00Z")
    b[0]["n_batch"] = "256"
    path = tmp_path / "sweep.jsonl"
    path.write_text(as_jsonl([a, b]))
    ids = [r.config_id for r in import_llama_bench(path)]
    assert len(set(ids)) == 2 and ids[0].endswith("/pp512")


def test_gpu_backend_and_depth(tmp_path):
    values, ns, ts = _test(512, 0, [1000000000], "2026-11-22T05:10:00Z")
    values.update(backends="CUDA", gpu_info="NVIDIA GeForce RTX 4090", n_depth="4096",
                  model_type="qwen2 1.5B Q4_K - Medium",
                  model_filename="C:\\Users\\bob\\qwen2-1_5b-instruct-q4_k_m.gguf")
    path = tmp_path / "gpu.json"
    path.write_text(as_json([(values, ns, ts)]))
    (row,) = import_llama_bench(path)
    assert row.ep == "cuda" and row.accelerators == "NVIDIA GeForce RTX 4090"
    assert row.test == "pp512 @ d4096" and row.variant == "Q4_K_M"
    assert row.model_id == "qwen2-1_5b-instruct-q4_k_m"


@pytest.mark.parametrize("model_type, quant", [
    ("llama 1B Q4_0", "Q4_0"), ("qwen2 1.5B Q4_K - Medium", "Q4_K_M"),
    ("llama 7B Q3_K - Large", "Q3_K_L"), ("llama 8B IQ2_XXS - 2.0625 bpw", "IQ2_XXS"),
    ("llama ?B all F32", "F32"), ("gemma3 1B BF16", "BF16"), ("llama 1B Q4_1 (guessed)", "Q4_1"),
    ("weird", "unknown"),
])
def test_quant_of(model_type, quant):
    assert quant_of(model_type) == quant


def test_names():
    assert llama_test_name(512, 0, 0) == "pp512"
    assert llama_test_name(0, 128, 0) == "tg128"
    assert llama_test_name(512, 128, 0) == "pp512+tg128"
    assert model_id_of("/a/b/Model.GGUF") == "Model"


def _error(path) -> str:
    with pytest.raises(EdgebenchError) as exc:
        import_llama_bench(path)
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_malformed_inputs_name_file_and_place(tmp_path, files):
    truncated = tmp_path / "cut.json"
    truncated.write_text(files["json"].read_text()[:1500])
    message = _error(truncated)
    assert message.startswith("cut.json line ") and "not valid JSON" in message

    bad_csv = tmp_path / "bad.csv"
    lines = files["csv"].read_text().splitlines()
    lines[2] = lines[2].replace('"2"', '"two"', 1)  # n_threads of the second test
    bad_csv.write_text("\n".join(lines) + "\n")
    assert _error(bad_csv) == "bad.csv line 3: field n_threads has 'two', expected a whole number"

    short = tmp_path / "short.csv"
    short.write_text("\n".join([lines[0], lines[1][: len(lines[1]) // 2]]) + "\n")
    assert _error(short).startswith("short.csv line 2: ")

    missing = tmp_path / "missing.json"
    items = json.loads(files["json"].read_text())
    del items[1]["avg_ts"]
    missing.write_text(json.dumps(items))
    assert _error(missing).startswith("missing.json record 2: field avg_ts is missing")

    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text(files["jsonl"].read_text() + "{oops\n")
    assert _error(jsonl).startswith("bad.jsonl line 4: not valid JSON")

    md = tmp_path / "out.md"
    md.write_text("| model | size | params | backend | threads | test | t/s |\n")
    assert "rerun llama-bench with -o json" in _error(md)
    assert "does not exist" in _error(tmp_path / "nope.json")


def test_import_command(files, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    import_cli.register(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    out = tmp_path / "out.csv"
    args = parser.parse_args(["import", "llama-bench", str(files["json"]), "-o", str(out)])
    assert args.func(args) == 0
    assert "13 rows written" in capsys.readouterr().out
    assert len(read_rows(out)) == 13
