"""edgebench report on synthetic rows: loading, migration hook, medians, escaping, labels."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from bench.results import migrate
from bench.errors import EdgebenchError
from bench.cli.report import register
from bench.cost.options import PricingOptions
from bench.report.build import build_report
from bench.report.markdown import render_markdown
from bench.results.load import load_results
from bench.report.html import render_html
from bench.report.data import build_report_data
from bench.results.schema import COLUMNS, COLUMNS_BY_VERSION, SCHEMA_VERSION
from bench.results.writer import format_rows_csv
from tests.report_rows import HOSTILE_CPU, sample_rows
from tests.rowfactory import make_row


def write_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_rows_csv(rows))
    return path


def test_medians_per_device_configuration_and_test():
    rows = [make_row(rep=i, config_id="a", decode_tok_s=d, itl_p90_s=itl, peak_rss_bytes=rss,
                     energy_method="estimate:tdp", decode_j_per_tok=j)
            for i, (d, itl, rss, j) in enumerate([(10.0, 0.1, 100, 0.5), (30.0, 0.3, 300, 0.1),
                                                 (20.0, 0.2, 200, 0.3)], start=1)]
    rows.append(make_row(rep=1, config_id="b", threads=4, decode_tok_s=99.0))  # another configuration
    data = build_report_data(rows)
    by_threads = {t.threads: t for t in data.tests}
    t = by_threads[2]
    assert (t.reps, t.decode_tok_s, t.itl_p90_s, t.peak_rss_bytes) == (3, 20.0, 0.2, 200.0)
    assert (t.decode_tok_s_min, t.decode_tok_s_max, t.decode_j_per_tok) == (10.0, 30.0, 0.3)
    assert t.energy == "estimate:tdp"
    assert t.prefill_tok_s is None  # tg128: a 1-token prompt says nothing about prefill
    assert by_threads[4].decode_tok_s == 99.0 and by_threads[4].reps == 1
    assert (data.n_rows, data.n_devices, data.n_configurations) == (4, 1, 2)


def test_same_cpu_on_two_hosts_stays_two_devices():
    rows = [make_row(host_fingerprint="1" * 16, config_id="x"), make_row(host_fingerprint="2" * 16, config_id="y")]
    data = build_report_data(rows)
    assert sorted(t.device for t in data.tests) == ["AMD EPYC [11111111]", "AMD EPYC [22222222]"]


def test_duplicate_rows_across_files_are_counted_once(tmp_path):
    rows = sample_rows(reps=2)
    write_csv(tmp_path / "a" / "run.csv", rows)
    write_csv(tmp_path / "b" / "copy.csv", rows[:10])  # the same repetitions uploaded twice
    write_csv(tmp_path / "b" / "more.csv", [make_row(run_id="other", config_id="z")])
    loaded = load_results([tmp_path])
    assert len(loaded) == len(rows) + 1
    summary = build_report([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    assert (summary.files, summary.rows, summary.duplicates_dropped) == (3, len(rows) + 1, 10)
    assert (tmp_path / "out" / "index.html").is_file() and (tmp_path / "out" / "summary.md").is_file()


def test_migration_hook_upgrades_an_old_file(tmp_path, monkeypatch):
    """A fake v0 (no `source` column) proves the reader runs MIGRATIONS; v0 never existed."""
    v0_columns = tuple(c for c in COLUMNS_BY_VERSION[1] if c != "source")
    current = format_rows_csv([make_row(rep=1), make_row(rep=2)]).splitlines()
    reader = csv.DictReader(current)
    path = tmp_path / "old.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, v0_columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in reader:
            writer.writerow({**row, "schema_version": "0"})
    monkeypatch.setitem(COLUMNS_BY_VERSION, 0, v0_columns)
    with pytest.raises(EdgebenchError, match=r"old\.csv line 2: no migration from schema v0 to v1"):
        load_results([path])

    def v0_to_v1(cells: dict[str, str]) -> dict[str, str]:
        return {**cells, "source": "edgebench run"}

    monkeypatch.setitem(migrate.MIGRATIONS, 0, v0_to_v1)
    rows = load_results([path])
    assert [(r.schema_version, r.source, r.rep) for r in rows] == [
        (SCHEMA_VERSION, "edgebench run", 1), (SCHEMA_VERSION, "edgebench run", 2)]


def test_v1_files_load_with_the_v2_columns_empty(tmp_path):
    """Files written before schema v2 (the committed reports/results, older uploaders)."""
    v2 = format_rows_csv([make_row(rep=1, virtualized=True, energy_basis="x")]).splitlines()
    path = tmp_path / "v1.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS_BY_VERSION[1], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for row in csv.DictReader(v2):
            writer.writerow({**row, "schema_version": "1"})
    (row,) = load_results([path])
    assert row.schema_version == SCHEMA_VERSION == 3
    assert row.virtualized is None and row.energy_basis is None and row.decode_j_per_tok_low is None
    assert row.cloud_provider is None
    assert row.rep == 1 and row.model_id == make_row().model_id
    committed = sorted((Path(__file__).parents[1] / "reports" / "results").glob("*.csv"))
    assert committed and all(r.schema_version == 3 for r in load_results(committed))


def test_v2_files_load_with_no_cloud_provider(tmp_path):
    """v3 adds cloud_provider: a v2 row's VM is of unknown kind, never a guessed cloud."""
    v3 = format_rows_csv([make_row(rep=1, virtualized=True, cloud_provider="Amazon EC2")])
    path = tmp_path / "v2.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS_BY_VERSION[2], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for row in csv.DictReader(v3.splitlines()):
            writer.writerow({**row, "schema_version": "2"})
    (row,) = load_results([path])
    assert row.schema_version == 3 and row.virtualized is True and row.cloud_provider is None


def test_newer_schema_asks_for_an_upgrade(tmp_path):
    path = write_csv(tmp_path / "new.csv", [make_row(schema_version=SCHEMA_VERSION + 1)])
    with pytest.raises(EdgebenchError, match=rf"new\.csv line 2: schema v{SCHEMA_VERSION + 1} was written by a newer edgebench"):
        load_results([path])


def test_malformed_csv_is_one_line_naming_the_file(tmp_path):
    good = format_rows_csv([make_row()])
    path = tmp_path / "broken.csv"
    path.write_text(good + "only,three,cells\n")
    with pytest.raises(EdgebenchError) as err:
        load_results([path])
    assert str(path) in str(err.value) and "\n" not in str(err.value) and "line 3" in str(err.value)


def test_empty_directory_and_missing_path_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgebenchError, match=r"empty holds no \*\.csv results files"):
        load_results([tmp_path / "empty"])
    with pytest.raises(EdgebenchError, match="does not exist"):
        load_results([tmp_path / "nope.csv"])
    (tmp_path / "header-only.csv").write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(EdgebenchError, match="hold no rows"):
        build_report([tmp_path / "header-only.csv"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(sample_rows())


def test_hostile_cpu_model_is_text_everywhere(page):
    assert HOSTILE_CPU not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # plotly labels get the escaped text too (plotly decodes entities for display only)
    assert '"&lt;script&gt;alert(1)&lt;\\u002fscript&gt;"' in page
    md = render_markdown(sample_rows(reps=2))
    assert HOSTILE_CPU not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md


def test_estimates_are_labelled_and_drawn_differently(page):
    # every energy figure carries its method; estimates say so in tables and legends
    assert re.search(r"\d J \(estimate:tdp\)", page)
    assert re.search(r"\d J \(measured: apple\)", page)
    assert '"name":"ESTIMATE estimate:tdp"' in page
    assert '"pattern":{"shape":"\\u002f"}' in page  # hatched estimate bars (JSON escapes /)
    # the EPYC VM's profile states a rent: its daily cost is that rent, not an energy estimate
    assert "rent for the busy time (rented at $0.0864" in page
    owned = render_html(sample_rows(reps=2), PricingOptions(owned=True))
    assert '"dash":"dash"' not in page and '"dash":"dash"' in owned  # dashed estimate cost lines
    assert 'class="text est"' in page or 'class="est"' in page
    # the hostile device has energy_method none: no joule figure is invented for it
    perf = page.split('data-table="performance"')[1].split("</table>")[0]
    hostile_rows = [r for r in perf.split("<tr>") if "&lt;script&gt;" in r and "tg128" in r]
    assert hostile_rows and all(" J (" not in r and "not measured" in r for r in hostile_rows)


def test_page_states_defaults_and_sources(page):
    assert "us-average" in page and "1,000,000 tok/day" in page and "3 input : 1 output" in page
    assert 'id="assumptions"' in page and "retrieved 2026" in page
    assert page.count('class="plotly-graph-div"') == 6  # 5 + cost against quality ($/Mtok)


def test_page_is_self_contained(page):
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert page.count("<script type=\"text/javascript\">") == 1  # plotly.js inlined once


def test_empty_rows_render_a_page_for_the_upload_server():
    page = render_html([])
    assert "No results yet" in page and "plotly-graph-div" not in page


def test_markdown_has_the_same_tables():
    md = render_markdown(sample_rows(reps=2))
    for title in ("## Measured performance", "## Local cost per 1M tokens", "## Cloud offers compared",
                  "## Break-even against each offer", "## Assumptions and sources"):
        assert title in md
    assert "| Apple M2 | int4 | tg128 | 2 |" in md


def test_register_adds_the_report_command(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="edgebench")
    register(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    src = write_csv(tmp_path / "r.csv", sample_rows(reps=2))
    args = parser.parse_args(["report", str(src), "-o", str(tmp_path / "site")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "index.html" in out and "rows" in out and "4 devices" in out


def test_daily_cost_lines_are_what_plotly_writes():
    """chart_daily_cost writes the local lines as plain JSON (no plotly object per line):
    each must be what plotly itself writes for that scatter trace, valid and key for key."""
    import plotly.graph_objects as go

    from bench.report.html import chart_daily_cost

    figure = chart_daily_cost(build_report_data(sample_rows()))
    assert isinstance(figure, dict)
    local = [t for t in figure["data"] if not t["name"].startswith("cloud: ")]
    assert local
    for trace in local:
        written = go.Scatter(**{k: v for k, v in trace.items() if k != "type"}).to_plotly_json()
        assert written == trace
