"""An external meter's log attached after the run, with the meter's clock running behind, and
the scope the log or --scope says the meter measured (refused when neither says)."""

from datetime import datetime, timezone

import pytest

from bench.errors import EdgebenchError
from bench.results.writer import ResultWriter
from bench.results.read import read_rows
from tests.conftest import run_cli
from tests.rowfactory import make_row


def _results(tmp_path):
    path = tmp_path / "r.csv"
    with ResultWriter(path) as w:
        w.write(make_row(started_utc="2026-11-22T05:00:00.000Z", ttft_s=2.0,
                         finished_utc="2026-11-22T05:00:10.000Z", n_prompt=512,
                         n_generated=129, n_gen_requested=129))
    return path


def _log(tmp_path, offset_s: float, scope_line: str | None = "# scope: wall_ac"):
    """6 W before 05:00:02 and 9 W after, logged every 0.5 s by a meter `offset_s` behind."""
    start = datetime(2026, 11, 22, 5, 0, 0, tzinfo=timezone.utc).timestamp()
    lines = ([scope_line] if scope_line else []) + ["timestamp,power_w"]
    t = start - 5
    while t <= start + 15:
        lines.append(f"{t - offset_s:.1f},{6.0 if t < start + 2 else 9.0}")
        t += 0.5
    path = tmp_path / "meter.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_attach_integrates_each_window_with_the_clock_offset(tmp_path):
    out = tmp_path / "with_energy.csv"
    done = run_cli("energy", "attach", str(_results(tmp_path)), "--power-log",
                   str(_log(tmp_path, 30.0)), "--clock-offset", "30", "-o", str(out))
    assert done.returncode == 0, done.stderr
    (row,) = read_rows(out)
    assert row.energy_method == "external" and row.energy_scope == "wall_ac"
    # prefill 05:00:00-05:00:02: 1.5 s at 6 W, then the last 0.5 s ramps 6 -> 9 W (7.5 W mean)
    assert row.prefill_energy_j == pytest.approx(6.0 * 1.5 + 7.5 * 0.5)
    # decode 05:00:02-05:00:10 at 9 W
    assert row.decode_energy_j == pytest.approx(9.0 * 8.0)
    assert row.prefill_j_per_tok == pytest.approx(row.prefill_energy_j / 512)
    assert row.decode_j_per_tok == pytest.approx(row.decode_energy_j / 128)
    assert row.prefill_energy_net_j is None  # no idle baseline in a log attached afterwards


def test_a_log_that_misses_the_run_is_one_line(tmp_path):
    out = tmp_path / "with_energy.csv"
    done = run_cli("energy", "attach", str(_results(tmp_path)), "--power-log",
                   str(_log(tmp_path, 3600.0)), "-o", str(out))
    assert done.returncode == 2 and "fix the clock offset" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_attach_never_overwrites(tmp_path):
    results = _results(tmp_path)
    from bench.energy.attach import attach_file
    with pytest.raises(EdgebenchError, match="immutable"):
        attach_file(results, _log(tmp_path, 0), 0.0, results)


def test_scope_comes_from_the_log(tmp_path):
    out = tmp_path / "with_energy.csv"
    log = _log(tmp_path, 0.0, "# Scope: system_dc (USB-C meter between charger and board)")
    done = run_cli("energy", "attach", str(_results(tmp_path)), "--power-log", str(log), "-o", str(out))
    assert done.returncode == 0, done.stderr
    (row,) = read_rows(out)
    assert (row.energy_method, row.energy_scope) == ("external", "system_dc")


def test_scope_comes_from_the_option(tmp_path):
    out = tmp_path / "with_energy.csv"
    done = run_cli("energy", "attach", str(_results(tmp_path)), "--power-log",
                   str(_log(tmp_path, 0.0, None)), "--scope", "system_dc", "-o", str(out))
    assert done.returncode == 0, done.stderr
    (row,) = read_rows(out)
    assert row.energy_scope == "system_dc"


def test_unknown_scope_is_refused_in_one_line(tmp_path):
    out = tmp_path / "with_energy.csv"
    done = run_cli("energy", "attach", str(_results(tmp_path)), "--power-log",
                   str(_log(tmp_path, 0.0, None)), "-o", str(out))
    assert done.returncode == 2 and "--scope wall_ac" in done.stderr and "system_dc" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("scope_line, option, match", [
    ("# scope: wall_ac", "system_dc", "says '# scope: wall_ac' but --scope system_dc"),
    (None, "dc", "--scope: scope 'dc' is not one of wall_ac, system_dc"),
    ("# scope: wall", None, "line 1: scope 'wall' is not one of"),
])
def test_contradicting_or_unknown_scope_names_are_refused(tmp_path, scope_line, option, match):
    from bench.energy.attach import attach_file
    out = tmp_path / "with_energy.csv"
    with pytest.raises(EdgebenchError, match=match):
        attach_file(_results(tmp_path), _log(tmp_path, 0.0, scope_line), 0.0, out, option)
    assert not out.exists()
