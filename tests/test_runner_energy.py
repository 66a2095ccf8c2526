"""The runner's energy windows with the real RAPL reading code on a fake powercap tree whose
counters advance at a known power, and with the labelled TDP estimate."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fake_backend import fake_fingerprint
from bench.energy.meters.estimate import EstimateMeter
from bench.energy.meters.rapl import RaplMeter, read_sysfs
from bench.models.folder import open_model_folder
from bench.energy.windows import EnergySetup
from bench.run.runner import Runner
from bench.run.plan import RunPlan, Shape, Target

pytestmark = pytest.mark.slow

PACKAGE_W = 10.0
DRAM_W = 2.0


def powercap_tree(root: Path) -> Path:
    for zone, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")):
        d = root / zone
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text("0\n")
        (d / "max_energy_range_uj").write_text("262143328850\n")
    return root


def constant_power_reader(path: Path) -> str:
    """energy_uj as a CPU at constant power would count it: W x monotonic seconds."""
    if path.name == "energy_uj":
        watts = DRAM_W if path.parent.name.endswith(":0:0") else PACKAGE_W
        return f"{int(watts * time.monotonic() * 1e6)}\n"
    return read_sysfs(path)


def _run(built_models, energy: EnergySetup) -> list:
    folder = open_model_folder(built_models["int4"], verify_hashes=False)
    plan = RunPlan(targets=(Target(folder, "ort", "cpu", 2),),
                   shapes=(Shape.pg(64, 32),), reps=2, warmup=0)
    fp = fake_fingerprint()
    return Runner(plan, fp, None, energy=energy).run()


def test_rapl_rows_are_measured_joules_per_window(built_models, tmp_path):
    meter = RaplMeter(powercap_tree(tmp_path), reader=constant_power_reader)
    meter.start()
    rows = _run(built_models, EnergySetup(meter, idle_power_w=4.0))
    for r in rows:
        assert r.energy_method == "rapl" and r.energy_scope == "cpu_package+dram"
        assert r.sampling_interval_s is None  # a counter, read only at window edges
        total_w = PACKAGE_W + DRAM_W
        assert r.prefill_avg_power_w == pytest.approx(total_w, rel=0.05)
        assert r.decode_avg_power_w == pytest.approx(total_w, rel=0.05)
        # decode window = first to last token, so J/token = W / decode tok/s
        assert r.decode_j_per_tok == pytest.approx(total_w / r.decode_tok_s, rel=0.05)
        assert r.prefill_j_per_tok == pytest.approx(r.prefill_energy_j / r.n_prompt)
        assert r.decode_energy_net_j == pytest.approx(r.decode_energy_j * (total_w - 4.0) / total_w,
                                                      rel=0.05)
        assert r.energy_warning is None or "shorter than" in r.energy_warning


def test_estimate_rows_say_estimate(built_models):
    meter = EstimateMeter(1.0, 5.0, "test-profile")
    meter.start()
    rows = _run(built_models, EnergySetup(meter, idle_power_w=None))
    for r in rows:
        assert r.energy_method == "estimate:tdp"
        assert r.prefill_energy_net_j is None  # no idle baseline: net left empty
        # the model can never exceed TDP nor fall below idle
        assert 1.0 - 1e-6 <= r.decode_avg_power_w <= 5.0 + 1e-6
