"""One self-contained HTML page: tables and interactive plotly charts, plotly.js inlined once.

The page must open from a file or the upload server with no network, so nothing is fetched.
Every string from a CSV is untrusted: it is HTML-escaped in tables and escaped again for plotly,
whose labels accept a subset of HTML. Estimates are drawn hatched, dashed or with open markers,
measurements solid, and every estimate trace says so in the legend.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from bench.cost import model as cost
from bench.cost.options import PricingOptions
from bench.quality.summary import QualitySummary
from bench.report.cost_quality_verdict import INTRO, NO_HUMANEVAL, cost_quality
from bench.report.cost_quality_chart import cost_quality_figure
from bench.report.data import (ReportData, build_report_data, daily_cost_usd, has_dedicated_line, is_estimate)
from bench.report.quality import NOT_MEASURED, QUALITY_NOT_MEASURED, quality_count
from bench.report.tables import Table, all_tables, context_line
from bench.results.schema import ResultRow

if TYPE_CHECKING:
    import plotly.graph_objects as go

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_ESTIMATE_PATTERN = "/"
_URL = re.compile(r"https?://[^\s;)]+")
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1400px;
padding:0 24px 48px;color:#1d1d1f}
h1{margin:24px 0 4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta,.intro,.note{color:#555}.key{background:#f6f7f9;border:1px solid #e3e5e8;border-radius:6px;padding:8px 12px}
.scroll{overflow-x:auto;max-height:640px;overflow-y:auto;border:1px solid #e3e5e8;border-radius:6px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
td.text{white-space:normal;min-width:8em;text-align:left}
th{position:sticky;top:0;background:#f6f7f9;z-index:1}th.text{text-align:left}th:first-child,td:first-child{text-align:left}
td.text{text-align:left}td.est{font-style:italic;background:repeating-linear-gradient(135deg,#fff,#fff 4px,#fff4e0 4px,#fff4e0 8px)}
.chart{margin:12px 0 28px}ul.assumptions{font-size:13px}ul.assumptions li{margin:2px 0}ul.assumptions li.detail{margin-left:24px;color:#444}
nav a{margin-right:14px}ul.verdicts li{margin:4px 0}td.nq{color:#777;font-style:italic}
"""


def _e(text: object) -> str:
    """Escapes CSV text for HTML and for plotly's label mini-HTML alike."""
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------- tables
def _table_html(t: Table) -> str:
    text_cols = t.text_columns
    head = "".join(("<th class='text'>" if i in text_cols else "<th>") + f"{_e(h)}</th>"
                   for i, h in enumerate(t.header))
    body = []
    for row in t.rows:
        cells = []
        for i, c in enumerate(row):
            cls = ["text"] if i in text_cols or len(c) > 40 else []
            if "estimate" in c:
                cls.append("est")
            if c in (QUALITY_NOT_MEASURED, NOT_MEASURED):
                cls.append("nq")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{_e(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<li>{_e(n)}</li>" for n in t.notes)
    return (f'<section id="{t.key}"><h2>{_e(t.title)}</h2><p class="intro">{_e(t.intro)}</p>'
            f'<div class="scroll"><table class="data" data-table="{t.key}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>'
            + (f'<ul class="note">{notes}</ul>' if notes else "") + "</section>")


def _assumption_item(line: str) -> str:
    """One assumption line, escaped, its source URLs as links; indented lines are details."""
    out, pos = [], 0
    for m in _URL.finditer(line):
        out += [_e(line[pos:m.start()]), f'<a href="{_e(m.group(0))}" rel="noopener noreferrer">{_e(m.group(0))}</a>']
        pos = m.end()
    out.append(_e(line[pos:]))
    cls = ' class="detail"' if line.startswith("  ") else ""
    return f"<li{cls}>{''.join(out).strip()}</li>"


# ---------------------------------------------------------------- charts
def _empty(fig: "go.Figure", message: str) -> "go.Figure":
    fig.add_annotation(text=_e(message), showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _layout(fig: "go.Figure", title: str, height: int = 460, **kw: object) -> "go.Figure":
    fig.update_layout(title=title, template="plotly_white", height=height,
                      margin=dict(l=60, r=20, t=60, b=60), legend=dict(font=dict(size=11)), **kw)
    return fig


def chart_decode(data: ReportData) -> "go.Figure":
    """Decode tok/s by device (outer axis) and configuration/test (inner), coloured by variant."""
    import plotly.graph_objects as go

    fig = go.Figure()
    tests = [t for t in data.tests if t.decode_tok_s is not None]
    for variant in sorted({t.variant for t in tests}):
        sel = [t for t in tests if t.variant == variant]
        fig.add_bar(
            name=_e(f"{variant} (measured)"), x=[[_e(t.device) for t in sel], [_e(f"{t.setup} {t.test}".strip()) for t in sel]],
            y=[t.decode_tok_s for t in sel],
            error_y=dict(type="data", symmetric=False, array=[t.decode_tok_s_max - t.decode_tok_s for t in sel],
                         arrayminus=[t.decode_tok_s - t.decode_tok_s_min for t in sel]),
            hovertemplate="%{x}<br>median %{y:.1f} tok/s (bar: min-max over reps)<extra></extra>")
    if not tests:
        _empty(fig, "no decode measurements")
    return _layout(fig, "Decode throughput by device and variant (measured median, whiskers min-max)",
                   yaxis_title="decode tok/s", legend_title="variant", barmode="group")


def chart_energy(data: ReportData) -> "go.Figure":
    """Decode J/token per device; estimates hatched and named so."""
    import plotly.graph_objects as go

    fig = go.Figure()
    tests = [t for t in data.tests if t.decode_j_per_tok is not None]
    for label in sorted({t.energy for t in tests}):
        sel = [t for t in tests if t.energy == label]
        est = is_estimate(label)
        fig.add_bar(
            name=_e(("ESTIMATE " if est else "") + label),
            x=[[_e(t.device) for t in sel], [_e(f"{t.config} {t.test}") for t in sel]],
            y=[t.decode_j_per_tok for t in sel],
            marker=dict(pattern=dict(shape=_ESTIMATE_PATTERN if est else ""), opacity=0.6 if est else 1.0),
            hovertemplate="%{x}<br>%{y:.3g} J per decode token (" + _e(label) + ")<extra></extra>")
    if not tests:
        _empty(fig, "no energy per token in these results (energy_method none)")
    return _layout(fig, "Energy per generated token by device (hatched = estimate, solid = measured)",
                   yaxis_title="J per decode token", legend_title="energy method", barmode="group")


def chart_usd_per_mtok(data: ReportData) -> "go.Figure":
    """Local marginal (rent or electricity, as the machine is paid for) and dedicated $/Mtok of
    every priced scenario beside each cloud offer."""
    import plotly.graph_objects as go

    fig = go.Figure()
    groups: dict[tuple[str, bool], tuple[list[str], list[float]]] = {}
    for ps in data.priced:
        values = [(f"marginal, {ps.local.basis}", ps.local.usd_per_mtok, ps.local_is_estimate)]
        if not ps.rented:
            values.append(("dedicated", ps.cost.dedicated_usd_per_mtok, is_estimate(ps.energy)))
        for kind, value, est in values:
            if value is not None and value > 0:
                ys, xs = groups.setdefault((kind, est), ([], []))
                ys.append(_e(f"{ps.label} — {kind}"))
                xs.append(value)
    colors = {"marginal, electricity": "#2a9d8f", "marginal, rent": "#8a5cb8", "dedicated": "#3a5ba0"}
    for (kind, est), (ys, xs) in sorted(groups.items()):
        what = "rent" if kind.endswith("rent") else "energy"
        fig.add_bar(name=f"local {kind} " + (f"(ESTIMATE: {what} estimated)" if est else
                                             "(measured energy)" if what == "energy" else "(stated rent)"),
                    orientation="h", y=ys, x=xs, marker=dict(color=colors[kind], opacity=0.6 if est else 1.0,
                                                             pattern=dict(shape=_ESTIMATE_PATTERN if est else "")),
                    hovertemplate="%{y}<br>$%{x:.3g}/Mtok<extra></extra>")
    offers = data.ctx.offers
    fig.add_bar(name="cloud offer (list price)", orientation="h", marker=dict(color="#e76f51"),
                y=[_e(f"cloud: {o.id} ({o.tier})") for o in offers],
                x=[data.ctx.offer_costs[o.id].blended_usd_per_mtok for o in offers],
                hovertemplate="%{y}<br>$%{x:.3g}/Mtok<extra></extra>")
    n = sum(len(v[0]) for v in groups.values()) + len(offers)
    return _layout(fig, f"$ per 1M tokens (mix {_e(data.ctx.mix.id)}, {_e(data.ctx.grid.id)}, "
                        f"dedicated at {data.ctx.usage_tok_per_day:,.0f} tok/day) against cloud offers",
                   height=max(420, 160 + 22 * n), xaxis=dict(type="log", title="USD per 1M tokens (log)"),
                   yaxis=dict(autorange="reversed", automargin=True), barmode="overlay")


def chart_daily_cost(data: ReportData) -> "go.Figure | dict":
    """Total $/day against daily volume: each device's line vs each offer's line (break-even = crossing).

    With thousands of configurations, building a plotly object per line costs seconds: the local
    lines go into the figure's JSON as plain traces, exactly as plotly itself writes them."""
    import plotly.graph_objects as go

    ctx = data.ctx
    usage = [10 ** (3 + i / 10) for i in range(71)]  # 1e3 .. 1e10 tok/day, log-spaced
    fig = go.Figure()
    lines: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for ps in data.priced:
        if (ps.device, ps.config) in seen:  # one line per configuration: its first scenario
            continue
        seen.add((ps.device, ps.config))
        ys = [daily_cost_usd(ps, ctx, u) for u in usage]
        if all(y is None for y in ys):
            continue
        dedicated = has_dedicated_line(ps)
        est = is_estimate(ps.energy) if dedicated else ps.local_is_estimate
        kind = ("dedicated" if dedicated else "rent for the busy time" if ps.rented
                else "marginal only (no device price)")
        basis = ps.local.ownership.label if ps.rented else ps.energy
        # the keys in the order plotly writes a validated scatter trace
        lines.append({"connectgaps": False,
                      "hovertemplate": "%{x:,.0f} tok/day: $%{y:.3g}/day<extra></extra>",
                      "line": {"dash": "dash" if est else "solid", "width": 2}, "mode": "lines",
                      "name": _e(f"{ps.label} — {kind}" + (f" (ESTIMATE: {basis})" if est else f" ({basis})")),
                      "x": usage, "y": ys, "type": "scatter"})
    for o in ctx.offers:
        price = ctx.offer_costs[o.id].blended_usd_per_mtok
        fig.add_scatter(x=usage, y=[price * u / cost.TOK_PER_MTOK for u in usage], mode="lines",
                        name=_e(f"cloud: {o.id} (list price)"), line=dict(width=1.5, color="#999"),
                        hovertemplate=_e(o.id) + "<br>%{x:,.0f} tok/day: $%{y:.3g}/day<extra></extra>")
    fig.add_vline(x=ctx.usage_tok_per_day, line=dict(color="#444", dash="dot"),
                  annotation_text=f"stated usage {ctx.usage_tok_per_day:,.0f} tok/day")
    if not lines:
        fig.add_annotation(text="no local line: no energy per token in these results", showarrow=False,
                           xref="paper", yref="paper", x=0.02, y=0.98, xanchor="left")
    _layout(fig, "Total cost per day against daily token volume: a local line crossing an offer's "
                 "line is the break-even (first scenario of each configuration; lines end at one "
                 "device's capacity)",
            height=560, xaxis=dict(type="log", title="tokens per day (log)"),
            yaxis=dict(type="log", title="USD per day (log)"))
    if not lines:
        return fig
    figure = fig.to_dict()
    figure["data"] = lines + figure["data"]
    return figure


def chart_repetitions(data: ReportData) -> "go.Figure":
    """Decode tok/s repetition by repetition: a falling line is a device throttling."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in data.series:
        fig.add_scatter(x=list(s.reps), y=list(s.decode_tok_s), mode="lines+markers", name=_e(s.label),
                        hovertemplate="rep %{x}: %{y:.1f} tok/s<extra></extra>")
    if not data.series:
        _empty(fig, "no decode measurements")
    shown = (f" ({len(data.series)} longest of {data.series_total} series)"
             if data.series_total > len(data.series) else "")
    return _layout(fig, "Decode throughput across repetitions (measured; a downward slope means throttling)" + shown,
                   height=500, xaxis=dict(title="repetition", dtick=1 if all(len(s.reps) <= 30 for s in data.series) else None),
                   yaxis_title="decode tok/s")


CHARTS = (("decode", chart_decode), ("energy", chart_energy), ("usd-per-mtok", chart_usd_per_mtok),
          ("daily-cost", chart_daily_cost), ("repetitions", chart_repetitions))


def _chart_div(key: str, fig: "go.Figure | dict") -> str:
    """A figure, or its JSON as a dict already complete (see chart_daily_cost)."""
    import plotly.io as pio

    return ('<div class="chart">'
            + pio.to_html(fig, full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG,
                          div_id=f"chart-{key}", validate=not isinstance(fig, dict))
            + "</div>")


def cost_quality_html(data: ReportData) -> str:
    """The verdict sentences, then one chart per view with what it could not draw under it."""
    cq = cost_quality(data)
    items = "".join(f"<li>{_e(v.text)}</li>" for v in cq.verdicts) or f"<li>{_e(NO_HUMANEVAL)}</li>"
    out = [f'<section id="cost-quality"><h2>Cost against quality</h2><p class="intro">{_e(INTRO)}</p>'
           f'<ul class="verdicts">{items}</ul>']
    for view in cq.views:
        fig = _layout(cost_quality_figure(view), _e(view.title), height=520)
        out += [_chart_div(f"cq-{view.key}", fig), f'<p class="note">{_e(view.note)}</p>']
        if view.unknown:
            out.append('<ul class="note">' + "".join(f"<li>{_e(u)}</li>" for u in view.unknown)
                       + "</ul>")
    return "".join(out) + "</section>"


# ---------------------------------------------------------------- page
def render_data_html(data: ReportData) -> str:
    """The page for already aggregated data (render_html is the entry point from rows)."""
    import plotly.offline

    tables = {t.key: t for t in all_tables(data)}
    charts = {key: _chart_div(key, fn(data)) for key, fn in CHARTS} if data.n_rows else {}
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if data.n_rows:
        body = [
            '<nav><a href="#performance">performance</a>'
            + ('<a href="#peers">runtimes</a>' if "peers" in tables else "")
            + '<a href="#quality">quality</a>'
            '<a href="#local-cost">local cost</a>'
            '<a href="#offers">cloud offers</a><a href="#break-even">break-even</a>'
            '<a href="#cost-quality">cost against quality</a>'
            '<a href="#repetitions">repetitions</a><a href="#assumptions">assumptions</a></nav>',
            f'<p class="key">{_e(context_line(data))} {_e(data.common)}</p>',
            '<p class="key"><b>How to read:</b> throughput, latency and memory are measured medians over '
            'repetitions. Energy and everything derived from it (dollars, carbon, break-even) carries '
            'its method; <b>estimates</b> (method <code>estimate:…</code>, e.g. TDP x time) are drawn '
            '<b>hatched</b>, with <b>dashed lines</b> and an "ESTIMATE" legend entry, and shaded in '
            'tables; measurements are solid.</p>',
            _table_html(tables["performance"]), charts["decode"], charts["energy"],
            *([_table_html(tables["peers"])] if "peers" in tables else []),
            _table_html(tables["quality"]),
            _table_html(tables["local-cost"]), _table_html(tables["offers"]), charts["usd-per-mtok"],
            charts["daily-cost"], _table_html(tables["break-even"]), cost_quality_html(data),
            '<section id="repetitions"><h2>Repetitions and throttling</h2>' + charts["repetitions"] + "</section>",
        ]
    elif data.quality:
        body = ['<p class="key">No speed or energy rows in these inputs, only quality rows.</p>',
                _table_html(tables["quality"])]
    else:
        body = ['<p class="key">No results yet: upload a results CSV or run '
                '<code>edgebench report CSV_OR_DIR -o OUT_DIR</code> on some.</p>']
    body.append('<section id="assumptions"><h2>Assumptions and sources</h2><ul class="assumptions">'
                + "".join(_assumption_item(line) for line in data.assumptions) + "</ul></section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>edgebench report</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head><body>'
        f'<h1>edgebench report</h1><p class="meta">{data.n_rows:,} rows, {data.n_devices} devices, '
        f"{data.n_configurations} configurations{_e(quality_count(data.quality))}; generated {generated}.</p>"
        + "\n".join(body) + "</body></html>\n"
    )


def render_html(
    rows: Sequence[ResultRow],
    options: PricingOptions = PricingOptions(), *, profiles_root: Path | None = None,
    quality: Sequence[QualitySummary] = ()) -> str:
    """The whole report page for `rows` (empty rows: a page saying there are no results yet)."""
    return render_data_html(build_report_data(rows, options, profiles_root=profiles_root,
                                              quality=quality))
