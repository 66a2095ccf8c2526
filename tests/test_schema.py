import pytest

from bench.errors import EdgebenchError
from bench.results.schema import COLUMNS, SCHEMA_VERSION
from bench.results.writer import ResultWriter, format_rows_csv
from bench.results.read import read_rows
from tests.rowfactory import make_row


def test_rows_round_trip_with_types(tmp_path):
    path = tmp_path / "r.csv"
    rows = [make_row(rep=1), make_row(rep=2, on_battery=True, decode_tok_s=None, decode_s=None)]
    with ResultWriter(path) as w:
        for r in rows:
            w.write(r)
    assert read_rows(path) == rows


def test_each_row_is_on_disk_before_the_next_is_measured(tmp_path):
    path = tmp_path / "r.csv"
    w = ResultWriter(path)
    w.write(make_row(rep=1))
    # not closed: another reader must already see the row (it was flushed and fsynced)
    assert [r.rep for r in read_rows(path)] == [1]
    w.close()


def test_appending_keeps_earlier_rows(tmp_path):
    path = tmp_path / "r.csv"
    with ResultWriter(path) as w:
        w.write(make_row(rep=1))
    with ResultWriter(path) as w:
        w.write(make_row(rep=2))
    assert [r.rep for r in read_rows(path)] == [1, 2]
    assert path.read_text().count("schema_version") == 1


def test_refuses_to_append_to_a_foreign_csv(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(EdgebenchError, match="header differs"):
        ResultWriter(path)
    assert path.read_text() == "a,b\n1,2\n"


def test_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(EdgebenchError, match="does not exist"):
        ResultWriter(tmp_path / "nope" / "r.csv")


def test_non_finite_numbers_are_never_written():
    with pytest.raises(ValueError):
        format_rows_csv([make_row(decode_tok_s=float("nan"))])


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("schema_version", "schema_versio"), "missing columns schema_version"),
    (lambda t: t[:-40] + "\n", "cells for"),
    (lambda t: t.replace(",128,128,", ",lots,128,"), "not a valid int"),
    (lambda t: t.replace(",200.0,", ",inf,", 1), "not a valid float"),
    (lambda t: t.replace(f"\n{SCHEMA_VERSION},", f"\n{SCHEMA_VERSION + 1},", 1),
     f"schema v{SCHEMA_VERSION + 1} was written by a newer edgebench"),
])
def test_malformed_files_fail_with_the_line(tmp_path, mutate, message):
    path = tmp_path / "r.csv"
    path.write_text(mutate(format_rows_csv([make_row()])))
    with pytest.raises(EdgebenchError, match=message):
        read_rows(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(",".join(COLUMNS).encode() + b"\n\xff\xfe\n")
    with pytest.raises(EdgebenchError, match="not UTF-8"):
        read_rows(path)


def test_empty_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("")
    with pytest.raises(EdgebenchError, match="empty"):
        read_rows(path)
