"""The report's column-wise reader (bench/report/columnar.py) against the strict reader: the same
files give the same report, and a file DuckDB cannot read under the schema's rules goes to the
strict reader, whose error (or migrated rows) the report then has."""

from __future__ import annotations

import csv
import io
import random
import statistics
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.report import columnar
from bench.report.build import build_report
from bench.report.columnar import table_from_files, table_from_rows
from bench.report.data import build_report_data
from bench.results.load import load_results
from bench.results.schema import COLUMNS_BY_VERSION
from bench.results.writer import format_rows_csv
from tests.report_rows import sample_rows
from tests.rowfactory import make_row

ODD_TEXT = 'a "quoted", comma\nand a newline; =1+2'


def _write(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_rows_csv(rows))
    return path


def _edit_cell(path: Path, line: int, column: str, text: str) -> None:
    """Sets one cell (line 1 is the header) and writes the file back as the writer does."""
    records = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    records[line - 1][records[0].index(column)] = text
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(records)
    path.write_text(buf.getvalue())


def _strict_reader_refused(monkeypatch) -> None:
    def refuse(path):
        raise AssertionError(f"{path} went to the strict reader; the DuckDB scan should read it")
    monkeypatch.setattr(columnar.read, "read_rows", refuse)


@pytest.fixture
def files(tmp_path) -> list[Path]:
    rows = sample_rows(reps=3)
    odd = [make_row(run_id="o" * 32, config_id="odd", rep=1, warnings=ODD_TEXT,
                    cloud_provider="Amazon EC2", virtualized=True, energy_basis="TDP x time",
                    energy_method="estimate:tdp", decode_j_per_tok=0.5, decode_j_per_tok_low=0.2,
                    decode_j_per_tok_high=0.9, on_battery=False, cpu_cores_logical=None)]
    return [_write(tmp_path / "a" / "run.csv", rows),
            _write(tmp_path / "b" / "odd.csv", odd + rows[:7])]  # 7 repetitions twice


def test_scan_gives_the_report_the_strict_reader_gives(files, monkeypatch):
    _strict_reader_refused(monkeypatch)
    table = table_from_files(files)
    monkeypatch.undo()
    rows = load_results(files)
    assert (table.n_rows, table.duplicates_dropped) == (len(rows), 7)
    assert build_report_data(table) == build_report_data(rows)


def test_first_copy_of_a_repetition_wins(tmp_path):
    first = _write(tmp_path / "1.csv", [make_row(rep=1, decode_tok_s=10.0), make_row(rep=2)])
    second = _write(tmp_path / "2.csv", [make_row(rep=1, decode_tok_s=99.0)])
    data = build_report_data(table_from_files([first, second]))
    (test,) = data.tests
    assert test.reps == 2 and test.decode_tok_s_min == 10.0
    assert data == build_report_data(load_results([first, second]))


@pytest.mark.parametrize("column,text", [
    ("decode_tok_s", "fast"), ("decode_tok_s", "inf"), ("decode_tok_s", "nan"),
    ("decode_tok_s", "+-7"),  # DuckDB's cast reads -7; Python's float() refuses it
    ("rep", "1.5"), ("rep", "1e3"), ("peak_rss_bytes", "0x10"), ("threads", ""),
    ("virtualized", "yes"), ("schema_version", "9"),
])
def test_a_cell_the_strict_reader_refuses_stops_the_report_with_its_error(tmp_path, column, text):
    path = _write(tmp_path / "r.csv", sample_rows(reps=2))
    _edit_cell(path, 3, column, text)
    with pytest.raises(EdgebenchError) as strict:
        load_results([path])
    with pytest.raises(EdgebenchError) as report:
        build_report([path], tmp_path / "site")
    assert str(report.value) == str(strict.value) and "line 3" in str(report.value)
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("column,text,value", [("rep", "+2", 2), ("threads", " 4", 4),
                                               ("decode_tok_s", "1_000.5", 1000.5)])
def test_a_cell_only_python_reads_goes_through_the_strict_reader(tmp_path, column, text, value):
    path = _write(tmp_path / "r.csv", [make_row(rep=1), make_row(rep=2, decode_tok_s=1.0)])
    _edit_cell(path, 3, column, text)
    rows = load_results([path])
    assert getattr(rows[1], column) == value
    assert build_report_data(table_from_files([path])) == build_report_data(rows)


@pytest.mark.parametrize("damage", ["short row", "not utf-8", "crlf", "blank header", "v2 file"])
def test_malformed_or_older_files_read_as_the_strict_reader_reads_them(tmp_path, damage):
    path = _write(tmp_path / "r.csv", sample_rows(reps=2))
    text = path.read_text()
    if damage == "short row":
        path.write_text(text + "only,three,cells\n")
    elif damage == "not utf-8":
        path.write_bytes(text.encode() + b"\xff\xfe\n")
    elif damage == "crlf":
        path.write_text(text.replace("\n", "\r\n"))
    elif damage == "blank header":
        path.write_text("\n" + text)
    else:
        records = list(csv.DictReader(io.StringIO(text, newline="")))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, COLUMNS_BY_VERSION[2], extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "schema_version": "2"} for r in records)
        path.write_text(buf.getvalue())
    try:
        rows = load_results([path])
    except EdgebenchError as exc:
        with pytest.raises(EdgebenchError) as report:
            table_from_files([path])
        assert str(report.value) == str(exc)
    else:
        assert build_report_data(table_from_files([path])) == build_report_data(rows)


def test_medians_are_those_of_statistics_median():
    """DuckDB's median of an even count must be the mean of the middle two, bit for bit, so the
    report prices exactly as `edgebench compare` (bench/cost/scenarios.py) does."""
    rng = random.Random(15)
    rows, expected = [], {}
    for config in range(60):
        values = [rng.uniform(0, 1000) * 10 ** rng.randint(-6, 6) for _ in range(rng.choice((2, 4, 5)))]
        expected[f"{config + 1}t"] = statistics.median(values)
        rows += [make_row(config_id=f"c{config}", rep=i + 1, threads=config + 1, decode_tok_s=v)
                 for i, v in enumerate(values)]
    data = build_report_data(table_from_rows(rows))
    assert {t.config.split()[-1]: t.decode_tok_s for t in data.tests} == expected


def test_configurations_are_those_compare_groups(files):
    """The priced configurations come from DuckDB; `edgebench compare` groups rows in Python
    (bench.cost.scenarios.group_configurations): both must give the same scenarios, in the
    same order, with the same fields taken from the first row."""
    from bench.cost.scenarios import group_configurations
    from bench.report.aggregate import configurations, test_groups

    rows = load_results(files)
    assert configurations(test_groups(table_from_rows(rows))) == group_configurations(rows)


def test_a_file_name_duckdb_would_glob_is_read_as_named(tmp_path):
    """DuckDB expands *, ? and [...] in paths: `run*.csv` must not pull in `runX.csv`."""
    starred = _write(tmp_path / "run*.csv", [make_row(rep=1)])
    _write(tmp_path / "runX.csv", [make_row(rep=2), make_row(rep=3)])
    table = table_from_files([starred])
    assert table.n_rows == 1


@pytest.mark.parametrize("mix", ["usual", "core counts differ", "some prompts 1 token"])
def test_both_median_paths_agree(mix):
    """medians_by_test takes the medians from the per-configuration groups, and queries them
    apart when groups collide on its key or mix 1-token prompts: both give Python's medians
    (prefill over prompts longer than 1 token), and the same table where both apply."""
    from bench.report import aggregate

    rows = []
    for rep in range(1, 6):
        extra = {"usual": {"n_prompt": 512},
                 "core counts differ": {"n_prompt": 512, "cpu_cores_logical": 2 + rep % 2},
                 "some prompts 1 token": {"n_prompt": 1 if rep == 5 else 512}}[mix]
        rows += [make_row(config_id=f"c{t}", test=f"pp{t}", rep=rep, threads=t,
                          prefill_tok_s=100.0 * t + rep ** 2, decode_tok_s=50.0 + rep, **extra)
                 for t in (1, 2)]
    table = table_from_rows(rows)
    labels = aggregate.table_device_labels(table)
    name, _ = aggregate.config_namer(table)
    groups = aggregate.test_groups(table)
    keys = [g.key for g in groups]
    assert (len(set(keys)) < len(keys) or any(0 < g.tiny < g.reps for g in groups)) == (
        mix != "usual")  # the path each mix takes
    stats = aggregate.medians_by_test(table, groups, labels, name)
    expected = {(t, f"pp{t}"): (
        statistics.median(r.prefill_tok_s for r in rows if r.threads == t and r.n_prompt > 1),
        statistics.median(r.decode_tok_s for r in rows if r.threads == t)) for t in (1, 2)}
    assert {(s.threads, s.test): (s.prefill_tok_s, s.decode_tok_s) for s in stats} == expected
    if mix == "usual":
        assert stats == aggregate._medians_query(table, labels, name)
