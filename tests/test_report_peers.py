"""The report's 'Runtimes side by side' table: one line per runtime and variant of a model,
the best of each column starred, estimates labelled, absent when only one ran."""

from __future__ import annotations

from bench.report.data import build_report_data
from bench.report.markdown import markdown_text
from bench.report.tables import peers_table
from tests.report_rows import DEVICES, sample_rows


def _table(rows):
    return peers_table(build_report_data(rows))


def test_best_of_each_column_is_starred_and_energy_names_its_method():
    table = _table(sample_rows(reps=3, devices=DEVICES[:1]))  # AMD EPYC, estimate:tdp
    assert table is not None and table.key == "peers"
    by_variant = {row[3]: dict(zip(table.header, row)) for row in table.rows}
    assert set(by_variant) == {"int4", "int8", "fp32"}
    int4, fp32 = by_variant["int4"], by_variant["fp32"]
    # int4 decodes fastest, uses the least memory and energy; fp32 stars nowhere
    for column in ("prefill tok/s", "decode tok/s", "peak RSS MiB", "J/decode tok"):
        assert "★" in int4[column], column
        assert "★" not in fp32[column], column
    assert all("(estimate:tdp)" in r["J/decode tok"] for r in by_variant.values())
    assert any("estimate" in note for note in table.notes)
    assert sum("★" in r["decode tok/s"] for r in by_variant.values()) == 1


def test_one_configuration_per_model_gives_no_table():
    rows = sample_rows(reps=2, devices=DEVICES[:1], variants={"int4": 1.0})
    assert _table(rows) is None
    assert "Runtimes side by side" not in markdown_text(build_report_data(rows))


def test_measured_energy_carries_no_estimate_note_and_the_section_is_in_the_markdown():
    rows = sample_rows(reps=2, devices=DEVICES[2:3])  # Apple M2, measured
    table = _table(rows)
    assert table is not None and not any("estimate" in n for n in table.notes)
    assert "## Runtimes side by side" in markdown_text(build_report_data(rows))
