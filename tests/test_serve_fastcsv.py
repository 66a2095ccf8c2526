"""bench/serve/fastcsv.py against csv.reader: on any text it either declines (None) or gives
exactly csv.reader's records, and it declines nothing csv.writer wrote without a blank line."""

from __future__ import annotations

import csv
import io
import random

import pytest

from bench.serve.fastcsv import split_columns


def _reader(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _as_records(split) -> list[list[str]]:
    header, columns, breaks = split
    records = [header, *map(list, zip(*columns))] if columns and columns[0] else [header]
    assert breaks == any("\n" in cell for record in records for cell in record)
    return records


CELLS = ("", "a", "1.5", " ", "a,b", 'q"q', '"', '""', "x\ny", ",", "\n", '{"k": "v", "n": 1}',
         "end,", '",', ',"', "tab\there", "é€")


def _writer_text(rng: random.Random, width: int, rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"c{i}" for i in range(width)])
    writer.writerows([rng.choice(CELLS) for _ in range(width)] for _ in range(rows))
    return out.getvalue()


def test_what_csv_writer_writes_splits_as_csv_reader_reads_it():
    rng = random.Random(1)
    taken = 0
    for _ in range(300):
        text = _writer_text(rng, rng.randint(1, 6), rng.randint(1, 8))
        split = split_columns(text, 100)
        if split is not None:
            taken += 1
            assert _as_records(split) == _reader(text)
        else:
            assert "\n\n" in text or any(not r or r == [""] for r in _reader(text)[1:])
    assert taken > 200


@pytest.mark.parametrize("text", [
    'a,b\n1,2', 'a,b\n1,"2"\n', 'a,b\n"x""y",2\n', 'a,b\n"",""\n', 'a,b\n"""",2\n',
    'a,"b,c"\n"1\n2",3\n', '"a"\n"b"\n',
])
def test_quoted_cells_split_like_csv_reader(text):
    split = split_columns(text, 100)
    assert split is not None and _as_records(split) == _reader(text)


@pytest.mark.parametrize("text", [
    'a,b\n1,x"y\n',  # a quote inside an unquoted cell: literal for csv.reader
    'a,b\n1,"x"y\n',  # text after a closing quote
    'a,b\n1,"open\n',  # never closed
    'a,b\n1,2\n\n3,4\n',  # a blank line
    '\na,b\n1,2\n',  # a blank first line
    'a,b\n1,2,3\n',  # ragged
    'a,b\r\n1,2\r\n',  # CR line ends
    'a,b\n1,2\n3,4\n',  # more records than allowed (2)
])
def test_anything_else_is_left_to_csv_reader(text):
    assert split_columns(text, 1) is None


def test_a_cell_over_csv_field_limit_is_left_to_csv_reader():
    limit = csv.field_size_limit()
    assert split_columns("a,b\n" + "x" * (limit + 1) + ",1\n", 10) is None
    assert split_columns("a,b\n" + "x" * (limit - 10) + ",1\n", 10) is not None


def test_random_texts_never_split_otherwise_than_csv_reader():
    """Texts made of CSV's special characters at random: declined or split identically."""
    rng = random.Random(7)
    alphabet = ['"', ",", "\n", "a", "b", " ", '""']
    taken = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        split = split_columns(text, 1000)
        if split is not None:
            taken += 1
            assert _as_records(split) == _reader(text), repr(text)
    assert taken > 50
