"""Quality beside speed and energy in `edgebench report`: results and quality CSVs in any order,
joined on (model_id, variant); an unmeasured variant says so in every quality cell."""

from __future__ import annotations

import argparse
from html.parser import HTMLParser

import pytest

from bench.cli.report import register
from bench.errors import EdgebenchError
from bench.report.build import build_report
from bench.report.quality import PARTIAL, QUALITY_NOT_MEASURED
from bench.results.writer import format_rows_csv
from tests.quality_rowfactory import (MODEL, agreement_row, corpus_row, expected_bpb,
                                      humaneval_row, write_quality_csv)
from tests.report_rows import DEVICES, sample_rows

OTHER_MODEL = "qwen2.5-0.5b-instruct"  # quality rows, but no speed rows in the inputs


class _Tables(HTMLParser):
    """{data-table key: (header cells, body rows)} of the report page, as the reader sees text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, tuple[list[str], list[list[str]]]] = {}
        self._key: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "data-table" in attrs:
            self._key = attrs["data-table"]
            self.tables[self._key] = ([], [])
        elif self._key and tag == "thead":
            self._in_head = True
        elif self._key and tag == "tr":
            self._row = []
        elif self._key and tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if not self._key:
            return
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            header, body = self.tables[self._key]
            (header.extend if self._in_head else body.append)(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._key = None


def html_tables(page: str) -> dict[str, list[dict[str, str]]]:
    parser = _Tables()
    parser.feed(page)
    return {k: [dict(zip(h, r)) for r in rows] for k, (h, rows) in parser.tables.items()}


def md_table(md: str, title: str) -> list[dict[str, str]]:
    lines = md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    split = lambda ln: [c.strip() for c in ln.strip("|").split(" | ")]  # noqa: E731
    header = split(table[0])
    return [dict(zip(header, split(ln))) for ln in table[2:]]


def quality_rows():
    """int4: both corpora, agreement vs fp32, HumanEval cut short by --limit; fp32: the reference
    (bits per byte only); int8: nothing; another model: quality without speed rows."""
    return [
        corpus_row("int4", "prose-en"), corpus_row("int4", "code-py", nll_nats=30_000.0),
        agreement_row("int4", "prose-en"), agreement_row("int4", "code-py", top1=0.9),
        *[humaneval_row(i, passed=i != 2, partial=True) for i in range(3)],
        corpus_row("fp32", "prose-en", nll_nats=38_000.0),
        corpus_row("fp32", "code-py", nll_nats=29_000.0),
        corpus_row("int4", "prose-en", model_id=OTHER_MODEL, nll_nats=45_000.0),
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(page, markdown, summary) from one quality CSV given before one results CSV."""
    tmp = tmp_path_factory.mktemp("quality-report")
    quality = write_quality_csv(tmp / "quality.csv", quality_rows())
    results = tmp / "results.csv"
    results.write_text(format_rows_csv(sample_rows(reps=2, devices=DEVICES[:2])))
    summary = build_report([quality, results], tmp / "site")
    return (summary.html_path.read_text(), summary.markdown_path.read_text(), summary)


def _perf_rows(table: list[dict[str, str]], variant: str) -> list[dict[str, str]]:
    rows = [r for r in table if r["configuration"] == variant]
    assert rows, f"no performance rows for {variant}"
    return rows


def test_measured_variant_shows_its_bits_per_byte(report):
    page, md, summary = report
    assert (summary.quality_rows, summary.quality_variants) == (len(quality_rows()), 3)
    perf = html_tables(page)["performance"]
    for row in _perf_rows(perf, "int4"):
        assert row["bits/byte prose-en"] == expected_bpb()
        assert row["bits/byte code-py"] == expected_bpb(30_000.0)
        assert row["top-1 / KL prose-en"] == "93.0% top-1, KL 0.041 nats vs fp32"
        assert row["top-1 / KL code-py"].startswith("90.0% top-1")
    for row in _perf_rows(perf, "fp32"):
        assert row["bits/byte prose-en"] == expected_bpb(38_000.0)
        assert row["top-1 / KL prose-en"] == "reference variant"
        assert row["HumanEval pass@1"] == "not measured"
    md_perf = md_table(md, "Measured performance")
    assert {r["bits/byte prose-en"] for r in md_perf if r["configuration"] == "int4"} == {
        expected_bpb()}


def test_unmeasured_variant_is_never_blank_or_zero(report):
    page, md, _ = report
    quality_columns = [c for c in html_tables(page)["performance"][0]
                       if c.startswith(("bits/byte", "top-1", "HumanEval"))]
    assert len(quality_columns) == 5
    for table in (html_tables(page)["performance"], md_table(md, "Measured performance")):
        for row in _perf_rows(table, "int8"):
            assert [row[c] for c in quality_columns] == [QUALITY_NOT_MEASURED] * 5
    assert 'class="nq"' in page  # drawn muted, unlike a figure


def test_partial_rows_are_marked(report):
    page, md, _ = report
    for row in _perf_rows(html_tables(page)["performance"], "int4"):
        assert row["HumanEval pass@1"] == f"66.7% (2/3 problems, completion; {PARTIAL})"
        assert PARTIAL not in row["bits/byte prose-en"]  # the corpus ran in full
    section = html_tables(page)["quality"]
    humaneval = [r for r in section if r["dataset"] == "humaneval"]
    assert [(r["pass@1"], r["passed/problems"], r["prompt format"], r["partial"]) for r in humaneval] == [
        ("66.7%", "2/3", "completion", PARTIAL)]
    assert {r["partial"] for r in section if r["dataset"] != "humaneval"} == {"no"}
    md_section = md_table(md, "Quality per model and variant")
    assert [r["partial"] for r in md_section if r["dataset"] == "humaneval"] == [PARTIAL]


def test_quality_section_lists_every_summary(report):
    page, md, _ = report
    for section in (html_tables(page)["quality"], md_table(md, "Quality per model and variant")):
        pairs = {(r["model"], r["variant"], r["speed rows"]) for r in section}
        assert pairs == {(MODEL, "int4", "measured"), (MODEL, "fp32", "measured"),
                         (OTHER_MODEL, "int4", "none in these inputs")}
        assert len(section) == 2 + 1 + 2 + 1  # int4: 2 corpora + humaneval; fp32: 2; other: 1
    assert 'href="#quality"' in page and "quality of 3 model variants" in page


def test_no_quality_inputs_say_not_measured_everywhere(tmp_path):
    results = tmp_path / "results.csv"
    results.write_text(format_rows_csv(sample_rows(reps=1, devices=DEVICES[:1])))
    summary = build_report([results], tmp_path / "site")
    tables = html_tables(summary.html_path.read_text())
    assert tables["performance"] and {r["quality"] for r in tables["performance"]} == {
        QUALITY_NOT_MEASURED}
    assert tables["quality"] == []
    assert "No quality rows in these inputs" in summary.markdown_path.read_text()


def test_quality_only_inputs_and_hostile_names(tmp_path):
    evil = "<img src=x onerror=alert(1)>"
    path = write_quality_csv(tmp_path / "q" / "only.csv", [corpus_row(evil, "prose-en")])
    summary = build_report([tmp_path / "q"], tmp_path / "site")
    page = summary.html_path.read_text()
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "only quality rows" in page
    assert [r["variant"] for r in html_tables(page)["quality"]] == [evil]
    assert (summary.rows, summary.quality_rows) == (0, 1) and path.is_file()


def test_a_copied_quality_file_counts_once(tmp_path):
    rows = [humaneval_row(i, passed=True) for i in range(4)]
    write_quality_csv(tmp_path / "a" / "q.csv", rows)
    write_quality_csv(tmp_path / "b" / "copy.csv", rows[:2])
    summary = build_report([tmp_path / "a", tmp_path / "b"], tmp_path / "site")
    assert (summary.quality_rows, summary.duplicates_dropped) == (4, 2)
    section = html_tables(summary.html_path.read_text())["quality"]
    assert [r["passed/problems"] for r in section] == ["4/4"]


def test_malformed_quality_csv_is_the_readers_one_line_error(tmp_path):
    results = tmp_path / "results.csv"
    results.write_text(format_rows_csv(sample_rows(reps=1, devices=DEVICES[:1])))
    bad = write_quality_csv(tmp_path / "quality.csv", [corpus_row(), corpus_row("int8")])
    lines = bad.read_text().splitlines()
    lines[2] = lines[2].replace(",bits_per_byte,", ",perplexity,", 1)
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(EdgebenchError) as err:
        build_report([results, bad], tmp_path / "site")
    message = str(err.value)
    assert str(bad) in message and "line 3" in message and "perplexity" in message
    assert "\n" not in message
    assert not (tmp_path / "site").exists()


def test_report_command_counts_quality_rows(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="edgebench")
    register(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    results = tmp_path / "r.csv"
    results.write_text(format_rows_csv(sample_rows(reps=1, devices=DEVICES[:1])))
    quality = write_quality_csv(tmp_path / "q.csv", quality_rows())
    args = parser.parse_args(["report", str(results), str(quality), "-o", str(tmp_path / "s")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"{len(quality_rows())} quality rows for 3 model variants" in out
    assert "from 2 files" in out
