"""Building the report from 100,000 rows (pytest-benchmark; disabled by default via addopts, so
the default suite runs it once as a smoke test). Measure with:
`pytest tests/test_report_perf.py --benchmark-enable`. No timed assertions: these hosts are noisy."""

from __future__ import annotations

import pytest

from bench.report.build import build_report
from bench.results.writer import format_rows_csv
from tests.report_rows import DEVICES, sample_rows

N_ROWS = 100_000


@pytest.fixture(scope="module")
def big_csvs(tmp_path_factory):
    """100,000 rows: 4 devices x 3 variants x 3 tests x 2,778 reps in 10 run files."""
    reps = -(-N_ROWS // (len(DEVICES) * 3 * 3 * 10))
    root = tmp_path_factory.mktemp("big")
    total = 0
    for run in range(10):
        rows = sample_rows(reps=reps, run_id=f"{run:032d}")
        total += len(rows)
        (root / f"run{run}.csv").write_text(format_rows_csv(rows))
    assert total >= N_ROWS
    return root, total


def test_report_from_100k_rows(benchmark, big_csvs, tmp_path):
    root, total = big_csvs
    summary = benchmark.pedantic(build_report, args=([root], tmp_path / "site"), rounds=1, iterations=1)
    assert summary.rows == total and summary.devices == len(DEVICES)
    assert (tmp_path / "site" / "index.html").stat().st_size < 20 * 2**20
