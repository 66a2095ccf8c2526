"""External power-meter CSV logs: watts and cumulative Wh forms, clock offset, malformed files,
and the scope the log (`# scope:`) or the user says the meter measured."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.errors import EdgebenchError
from bench.energy.meters.external import (ExternalLogMeter, energy_between, load_power_log, open_meter, probe_external, resolve_scope)

T0 = 1_767_000_000.0  # unix seconds


def test_watts_log_with_clock_offset(tmp_path):
    # A USB-C meter whose clock runs 2.5 s behind this machine: machine time = log time + 2.5.
    rows = ["timestamp,voltage_v,current_a,power_w"] + [f"{T0 + i:.1f},5.1,0.9,{4.0 + (i >= 5) * 2.0}" for i in range(11)]
    path = tmp_path / "usbc.csv"
    path.write_text("\n".join(rows) + "\n")
    log = load_power_log(path, clock_offset_s=2.5)
    assert log.kind == "power" and log.median_interval_s == pytest.approx(1.0)
    # the log's 4 W -> 6 W step (log t 4..5) is machine t 6.5..7.5
    assert energy_between(log, T0 + 2.5, T0 + 6.5) == pytest.approx(16.0)
    assert energy_between(log, T0 + 3.0, T0 + 3.5) == pytest.approx(2.0)  # interpolated at both edges
    # half-way up the 4 -> 6 W ramp between samples: exact integral of the linear segment
    assert energy_between(log, T0 + 6.5, T0 + 7.0) == pytest.approx(0.5 * (4.0 + 5.0) * 0.5)
    assert energy_between(log, T0 + 2.5, T0 + 12.5) == pytest.approx(4 * 4 + 5 + 5 * 6)
    with pytest.raises(EdgebenchError, match="clock offset"):
        energy_between(log, T0, T0 + 3)  # before the log starts on this machine's clock


def test_cumulative_wh_log_with_iso_timestamps_semicolons(tmp_path):
    def iso(s):
        return datetime.fromtimestamp(T0 + s, tz=timezone.utc).isoformat().replace("+00:00", "Z")

    rows = ["Time;Power (W);Energy (Wh)"] + [f"{iso(10 * i)};36.0;{1.000 + 0.1 * i:.3f}" for i in range(7)]
    path = tmp_path / "plug.csv"
    path.write_text("# smart plug export\n" + "\n".join(rows) + "\n")
    log = load_power_log(path, clock_offset_s=-1.0)
    assert log.kind == "energy"  # cumulative energy preferred over the power column
    # 0.1 Wh per 10 s = 36 W; machine time = log time - 1 s
    assert energy_between(log, T0 - 1 + 5, T0 - 1 + 35) == pytest.approx(36.0 * 30, rel=1e-9)
    assert energy_between(path, T0 + 10, T0 + 20) == pytest.approx(360.0)  # a path works too (offset 0)


def test_kwh_and_milliseconds(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text("unix,energy_kwh\n" + "\n".join(f"{int((T0 + i) * 1000)},{0.5 + i * 1e-5:.5f}" for i in range(3)) + "\n")
    assert energy_between(load_power_log(path), T0, T0 + 2) == pytest.approx(72.0)


@pytest.mark.parametrize(
    "content, match",
    [
        ("timestamp,power_w\n1767000000,4.0\n1767000001,oops\n", r"bad\.csv line 3: cannot parse"),
        ("timestamp,power_w\n1767000000,4.0\n1766999999,4.0\n", r"bad\.csv line 3: timestamp does not increase"),
        ("timestamp,volts\n1767000000,5\n1767000001,5\n", r"bad\.csv line 1: no power \(W, mW\) or cumulative energy"),
        ("when,power_w\n1,2\n", r"bad\.csv line 1: no timestamp column"),
        ("timestamp,wh\n1767000000,2.0\n1767000001,1.0\n", r"bad\.csv line 3: cumulative energy went down"),
        ("timestamp,power_w\n1767000000,4.0\n", r"fewer than 2 data rows"),
        ("", r"bad\.csv is empty"),
    ],
)
def test_malformed_logs_name_file_and_line(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(EdgebenchError, match=match):
        load_power_log(path)
    assert not probe_external(path).available


def test_live_log_meter_and_probe(tmp_path):
    path = tmp_path / "live.csv"
    path.write_text("timestamp,power_w\n" + "\n".join(f"{T0 + i},{10.0}" for i in range(5)) + "\n")
    wall = [T0 + 1.0]
    meter = ExternalLogMeter(path, scope="system_dc", wall_clock=lambda: wall[0], clock=lambda: wall[0] - T0)
    assert meter.update_period_s == 1.0 and (meter.method, meter.scope) == ("external", "system_dc")
    meter.start()
    a = meter.read()
    wall[0] = T0 + 3.5
    b = meter.read()
    assert b.total_j - a.total_j == pytest.approx(25.0)
    wall[0] = T0 + 60
    with pytest.raises(EdgebenchError, match="covers"):
        meter.read()
    assert probe_external(None).detail.startswith("no power log given")
    probe = probe_external(path)  # the log is usable; only the scope is missing
    assert probe.available and probe.scope == "unknown" and "--scope wall_ac" in probe.detail
    assert probe_external(path, scope="wall_ac").scope == "wall_ac"


def _log(tmp_path: Path, head: str = "") -> Path:
    path = tmp_path / "m.csv"
    path.write_text(head + "timestamp,power_w\n" + "\n".join(f"{T0 + i},{5.0}" for i in range(4)) + "\n")
    return path


def test_scope_line_in_the_log(tmp_path):
    assert load_power_log(_log(tmp_path, "# meter: FNIRSI FNB58\n# scope: system_dc\n")).scope == "system_dc"
    assert load_power_log(_log(tmp_path, "#SCOPE=Wall_AC ; Shelly plug\n")).scope == "wall_ac"
    assert load_power_log(_log(tmp_path, "# scope of this test: phone idle\n")).scope is None
    assert load_power_log(_log(tmp_path)).scope is None
    with pytest.raises(EdgebenchError, match=r"m\.csv line 2: second scope 'system_dc' contradicts 'wall_ac'"):
        load_power_log(_log(tmp_path, "# scope: wall_ac\n# scope: system_dc\n"))
    with pytest.raises(EdgebenchError, match=r"m\.csv line 1: scope 'dc' is not one of"):
        load_power_log(_log(tmp_path, "# scope: dc\n"))


def test_resolve_scope_agrees_or_refuses(tmp_path):
    said = load_power_log(_log(tmp_path, "# scope: system_dc\n"))
    assert resolve_scope(said, None) == "system_dc" and resolve_scope(said, " System_DC ") == "system_dc"
    with pytest.raises(EdgebenchError, match="says '# scope: system_dc' but --scope wall_ac"):
        resolve_scope(said, "wall_ac")
    silent = load_power_log(_log(tmp_path))
    assert resolve_scope(silent, "wall_ac") == "wall_ac"
    with pytest.raises(EdgebenchError) as refused:
        resolve_scope(silent, None)
    assert "does not say what the meter measured" in str(refused.value) and "\n" not in str(refused.value)


def test_live_meter_reports_the_same_scope(tmp_path):
    def ctx(path, scope=None):
        return SimpleNamespace(power_log=path, clock_offset_s=0.0, power_log_scope=scope)

    assert open_meter(ctx(_log(tmp_path, "# scope: system_dc\n"))).scope == "system_dc"
    assert open_meter(ctx(_log(tmp_path), "wall_ac")).scope == "wall_ac"
    with pytest.raises(EdgebenchError, match="--scope wall_ac"):
        open_meter(ctx(_log(tmp_path)))
    with pytest.raises(EdgebenchError, match="--scope wall_ac"):
        ExternalLogMeter(_log(tmp_path))
