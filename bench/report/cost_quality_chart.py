"""The cost-quality chart (plotly) of one report/cost_quality.View: local points and offers,
the Pareto front as a step line, the estimates as open markers. Layout is left to html.py."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from bench.report.cost_quality import LOCAL, MODEL_CARD, OFFER, Point, View

if TYPE_CHECKING:
    import plotly.graph_objects as go

PARETO = "Pareto front (nothing cheaper is at least as good)"
_COLORS = {LOCAL: "#2a9d8f", OFFER: "#e76f51"}


def _e(text: object) -> str:
    """CSV text is untrusted: plotly labels accept a subset of HTML."""
    return html.escape(str(text), quote=True)


def _trace_name(kind: str, estimate: bool, quality: str) -> str:
    if kind == OFFER:
        return "cloud offer (list price, published pass@1)"
    name = "local (measured pass@1)" if quality != MODEL_CARD else \
        "local (pass@1 of the model card: this variant not measured)"
    return name + (" ESTIMATE: estimated energy or typical rent" if estimate else "")


def cost_quality_figure(view: View) -> "go.Figure":
    import plotly.graph_objects as go

    fig = go.Figure()
    groups: dict[tuple[str, bool, str], list[Point]] = {}
    for p in view.points:
        groups.setdefault((p.kind, p.estimate, p.quality), []).append(p)
    money = "$%{x:.4g}" + (" per 1000 solved" if view.x_unit.startswith("$ per") else "/Mtok")
    for (kind, est, quality), pts in sorted(groups.items()):
        hollow = est or quality == MODEL_CARD
        symbol = ("circle" if kind == LOCAL else "square") + ("-open" if hollow else "")
        fig.add_scatter(
            x=[p.x for p in pts], y=[p.y for p in pts], mode="markers",
            name=_e(_trace_name(kind, est, quality)), text=[_e(p.label) for p in pts],
            customdata=[_e(p.basis) for p in pts],
            marker=dict(symbol=symbol, size=11, color=_COLORS[kind], line=dict(width=2)),
            hovertemplate="%{text}<br>" + money + ", pass@1 %{y:.1%}<br>%{customdata}"
                          "<extra></extra>")
    if view.front:
        fig.add_scatter(x=[p.x for p in view.front], y=[p.y for p in view.front],
                        mode="lines", line=dict(shape="hv", color="#444", dash="dot", width=1.5),
                        name=PARETO, hoverinfo="skip")
    else:
        fig.add_annotation(text="no point with both a price and a HumanEval pass@1",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(type="log", title=view.x_title)
    fig.update_yaxes(title="HumanEval pass@1", tickformat=".0%", range=[-0.03, 1.03])
    return fig
