"""`edgebench run` end to end on the real default model, as a user runs it."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from bench.models.folder import folder_size_bytes
from bench.results.schema import COLUMNS, REQUIRED
from bench.results.read import read_rows
from tests.fake_machines import intel_xeon_vm
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SMALL = ["--variant", "int4", "-p", "64", "-n", "16", "--chat-tokens", "16", "--reps", "2",
         "--threads", "2", "--idle-s", "0.3"]


def _single_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_run_end_to_end_both_backends_fill_every_column(built_models, tmp_path):
    out = tmp_path / "results.csv"
    # the estimate is asked for by name with a named profile, so the test holds on any machine
    done = run_cli("run", *SMALL, "--backend", "ort-genai,ort", "--energy", "estimate",
                   "--device-profile", "amd-epyc-vm-2vcpu", "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert len(rows) == 2 * 3 * 2  # backends x (pp64, tg16, chat) x reps
    assert {(r.backend, r.test) for r in rows} == {
        (b, t) for b in ("ort-genai", "ort") for t in ("pp64", "tg16", "chat")}
    manifest = json.loads((built_models["int4"] / "manifest.json").read_text())
    with open(out, newline="") as fh:
        raw = list(csv.DictReader(fh))
    for cells, r in zip(raw, rows):
        for col in REQUIRED:
            assert cells[col] != "", col
        assert r.model_sha256 == manifest["sha256"]["model.onnx"]
        assert r.model_source_sha256 == manifest["source_sha256"]
        assert r.model_size_bytes == folder_size_bytes(built_models["int4"])
        assert r.precision == "int4-b32-acc4" and r.threads == 2 and r.ep == "cpu"
        assert r.n_generated == r.n_gen_requested
        assert 0 < r.prefill_s < r.ttft_s
        assert r.prefill_tok_s == pytest.approx(r.n_prompt / r.prefill_s)
        assert r.load_s > 0 and r.peak_rss_bytes > 50 * 2**20
        assert json.loads(r.ep_options)["intra_op_num_threads"] == "2"
        start = datetime.fromisoformat(r.started_utc.replace("Z", "+00:00"))
        end = datetime.fromisoformat(r.finished_utc.replace("Z", "+00:00"))
        assert start <= end
        assert r.cpu_model and r.cpu_cores_logical >= 1 and r.ram_bytes > 2**30
        assert "cpu" in r.available_eps.split(";")
        # the profile's labelled estimate (never a silent fallback)
        assert r.energy_method == "estimate:tdp" and r.energy_scope == "cpu_package"
        assert r.idle_power_w > 0 and r.prefill_energy_j > 0 and r.prefill_j_per_tok > 0
        assert r.prefill_j_per_tok_low < r.prefill_j_per_tok < r.prefill_j_per_tok_high
        assert "amd-epyc-vm-2vcpu" in r.energy_basis
        if r.n_generated > 1:
            assert r.decode_j_per_tok == pytest.approx(r.decode_energy_j / (r.n_generated - 1))
        if r.n_generated > 1:
            samples = [float(x) for x in r.itl_samples_s.split()]
            assert len(samples) == r.n_generated - 1
            assert r.decode_tok_s == pytest.approx((r.n_generated - 1) / sum(samples), rel=1e-3)
            assert min(samples) <= r.itl_p50_s <= r.itl_p90_s <= r.itl_p99_s <= max(samples)
        else:
            assert r.decode_tok_s is None and r.itl_samples_s is None
    assert len({r.run_id for r in rows}) == 1
    assert rows[0].n_prompt == 64 and [r for r in rows if r.test == "chat"][0].tokenize_s > 0
    # the summary table: one line per configuration
    table = [line for line in done.stdout.splitlines() if line.startswith("| smollm2")]
    assert len(table) == 6 and all("(estimate:tdp, cpu_package)" in line for line in table)
    assert "ENERGY IS AN ESTIMATE" in done.stderr and "--power-log" in done.stderr
    assert "edgebench compare" in done.stdout  # the run ends with the short cost verdict
    assert len(done.stdout.splitlines()) < 60
    compared = run_cli("compare", str(out), "--region", "eu-average", "--mix", "chat",
                       "--device-profile", "amd-epyc-vm-2vcpu")
    assert compared.returncode == 0, compared.stderr
    assert "ESTIMATE" in compared.stdout and "break-even" in compared.stdout


def test_energy_none_and_sustained(built_models, tmp_path):
    out = tmp_path / "r.csv"
    done = run_cli("run", "--backend", "ort", "--no-chat", "-p", "8", "-n", "8", "--threads", "2",
                   "--energy", "none", "--sustained", "3", "--no-verdict", "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert len(rows) == 2 * 3 and {r.energy_method for r in rows} == {"none"}
    assert all(r.decode_j_per_tok is None for r in rows)
    assert "sustained load" in done.stdout and "over 3 reps" in done.stdout


def test_meters_lists_every_source_with_a_reason():
    done = run_cli("meters", "--device-profile", "amd-epyc-vm-2vcpu")
    assert done.returncode == 0, done.stderr
    for source in ("rapl", "nvml", "apple", "battery", "external", "estimate:tdp"):
        assert f"| {source} |" in done.stdout
    assert "ESTIMATE, not a measurement" in done.stdout


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_stdout_formats(built_models, tmp_path, fmt):
    done = run_cli("run", *SMALL, "--backend", "ort", "--no-chat", "-n", "4", "-p", "8",
                   "--reps", "1", "--format", fmt, "-o", str(tmp_path / "r.csv"))
    assert done.returncode == 0, done.stderr
    if fmt == "json":
        data = json.loads(done.stdout)
        assert {d["test"] for d in data} == {"pp8", "tg4"}
    else:
        header = done.stdout.splitlines()[0]
        assert header.split(",") == list(COLUMNS)


def test_model_path_runs_a_copied_folder(int4_copy, tmp_path):
    out = tmp_path / "r.csv"
    done = run_cli("run", "--model-path", str(int4_copy), "--backend", "ort", "--no-chat",
                   "-p", "8", "-n", "4", "--reps", "1", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert {r.variant for r in read_rows(out)} == {"int4"}


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--variant", "int3"], "no variant 'int3'"),
    (["--backend", "llama-vulkan"], "unknown backend 'llama-vulkan'"),
    (["--backend", "llamacpp", "--variant", "int4"],
     "has no variant 'int4' that --backend llamacpp can run"),
    (["--ep", "tpu"], "unknown execution provider 'tpu'"),
    (["--ep", "cuda"], "'cuda' is not in this onnxruntime build"),
    (["-p", "0"], "0 must be at least 1"),
    (["-n", "-5"], "-5 must be at least 1"),
    (["--threads", "two"], "'two' is not a whole number"),
    (["-p", "9000"], "needs 9001 tokens but smollm2-135m-instruct has a context of 8192"),
    (["-o", "/nonexistent-dir/r.csv"], "directory /nonexistent-dir does not exist"),
    (["--energy", "joulemeter"], "unknown energy method 'joulemeter'"),
    (["--energy", "rapl"], "RAPL"),
    (["--device-profile", "nope"], "unknown device profile 'nope'"),
    (["--sustained", "3", "--reps", "2"], "drop --reps/--cooldown or drop --sustained"),
])
def test_bad_input_is_one_clear_line(built_models, tmp_path, args, message):
    # on a fake VM without RAPL, so "--energy rapl" fails the same way on any host
    machine = intel_xeon_vm(tmp_path / "machine")
    out = tmp_path / "out"
    out.mkdir()
    line = _single_error_line(run_cli("run", *args, cwd=out, machine_root=machine))
    assert message in line
    assert list(out.iterdir()) == []  # no results file left behind


def test_a_machine_matching_no_profile_gets_a_class_estimate_and_a_verdict(built_models, tmp_path):
    """The issue's acceptance run: a CPU in no profile, no RAPL, the default shapes."""
    out = tmp_path / "r.csv"
    done = run_cli("run", "--reps", "1", "--idle-s", "0.2", "-o", str(out),
                   machine_root=intel_xeon_vm(tmp_path / "machine"))
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert {r.test for r in rows} == {"pp512", "tg128", "chat"}
    for r in rows:
        assert r.energy_method == "estimate:class" and r.virtualized is True
        assert r.cpu_model == "Intel(R) Xeon(R) Processor" and "x86-server" in r.energy_basis
        assert r.prefill_j_per_tok_low < r.prefill_j_per_tok < r.prefill_j_per_tok_high
        if r.n_generated > 1:
            assert r.decode_j_per_tok_low < r.decode_j_per_tok < r.decode_j_per_tok_high
    lines = done.stdout.splitlines()
    assert len(lines) < 60, done.stdout
    verdict = [x for x in lines if x.startswith("- smollm2")]
    assert verdict and all("local $" in x and "unknown" not in x for x in verdict)
    # a Google VM: priced by the typical rent for its vCPUs, labelled, and not asked about
    assert all("by rent ESTIMATE" in x for x in verdict)
    assert "Google Compute Engine" in done.stdout and "to price it exactly" not in done.stdout
    assert "edgebench compare" in done.stdout
    assert "ENERGY IS AN ESTIMATE (estimate:class" in done.stderr


def test_corrupt_model_folder(int4_copy, tmp_path):
    (int4_copy / "model.onnx.data").write_bytes(b"garbage")
    line = _single_error_line(run_cli("run", "--model-path", str(int4_copy), "-o",
                                      str(tmp_path / "r.csv")))
    assert "wrong size" in line and "--force" in line
    assert not (tmp_path / "r.csv").exists()


def test_existing_results_are_never_damaged(built_models, tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("not,our,header\n1,2,3\n")
    line = _single_error_line(run_cli("run", *SMALL, "-o", str(out)))
    assert "header differs" in line
    assert out.read_text() == "not,our,header\n1,2,3\n"


def test_ctrl_c_keeps_finished_rows_and_exits_non_zero(built_models, tmp_path):
    out = tmp_path / "r.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", "--variant", "int4", "--backend", "ort",
         "--no-chat", "-p", "16", "-n", "64", "--reps", "200", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 4:  # header + 3 rows
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    kept = read_rows(out)  # every line parses: nothing half-written
    assert len(kept) >= 3
    assert f"{len(kept)} finished repetitions kept" in stderr


def test_model_all_names_what_it_does_not_run(tmp_path, monkeypatch):
    """`--model all` says which recipes are not built and which lack the variant, and with
    nothing built fails in one line."""
    from bench.cli.run import _ladder
    from bench.errors import EdgebenchError
    from bench.models import recipes

    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    said: list[str] = []
    with pytest.raises(EdgebenchError, match="found no built model"):
        _ladder(["gguf"], said.append)
    with_gguf = [r.id for r in recipes.list_recipes() if "gguf" in r.variants]
    without = [r.id for r in recipes.list_recipes() if "gguf" not in r.variants]
    assert with_gguf and without  # real recipes have it, synthetic ones do not
    assert len(said) == 2
    assert all(f"{m} --variant gguf" in said[0] for m in with_gguf)
    assert all(f"{m} (gguf)" in said[1] for m in without)
