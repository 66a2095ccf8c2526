"""Quality next to speed and energy: cells for the performance table and the quality section.

Quality rows (`edgebench quality`, docs/quality.md) are joined to result rows on
(model_id, variant). A variant without quality rows reads "quality not measured" in every
quality cell, never blank and never 0, so an unmeasured variant cannot pass for an equal one.
A cell from a run cut short by --limit says "partial": it is not comparable with a full run.
"""

from __future__ import annotations

from typing import Sequence

from bench.quality.summary import CorpusScore, QualitySummary, TaskScore

QUALITY_NOT_MEASURED = "quality not measured"
NOT_MEASURED = "not measured"  # this variant has quality rows, but not for this measure
PARTIAL = "partial: --limit"
QUALITY_NOTE = (
    "Quality columns come from `edgebench quality` CSVs, joined on model and variant. Bits per "
    "byte: lower is better (tokenizer-independent). Top-1 agreement / KL: the same tokens "
    "scored by the reference variant (100% and 0 nats = identical predictions). HumanEval "
    "pass@1: greedy, one sample per problem. \"partial: --limit\" marks a dataset cut short, not "
    "comparable with a full run; \"quality not measured\" means no quality rows for this model "
    "and variant.")


def _bpb_corpora(summaries: Sequence[QualitySummary]) -> list[str]:
    return list(dict.fromkeys(c.dataset for s in summaries for c in s.corpora
                              if c.bits_per_byte is not None))


def _agreement_corpora(summaries: Sequence[QualitySummary]) -> list[str]:
    return list(dict.fromkeys(c.dataset for s in summaries for c in s.corpora
                              if c.top1_agreement is not None))


def _has_tasks(summaries: Sequence[QualitySummary]) -> bool:
    return any(s.tasks for s in summaries)


def quality_header(summaries: Sequence[QualitySummary]) -> tuple[str, ...]:
    """The quality columns of the performance table; one "quality" column when none was
    measured at all, so the table still says so for every variant."""
    header = ([f"bits/byte {d}" for d in _bpb_corpora(summaries)]
              + [f"top-1 / KL {d}" for d in _agreement_corpora(summaries)]
              + (["HumanEval pass@1"] if _has_tasks(summaries) else []))
    return tuple(header) or ("quality",)


def _partial(text: str, partial: bool) -> str:
    """A figure from a run cut short says so in its own cell."""
    return f"{text} ({PARTIAL})" if partial else text


def bpb_text(score: CorpusScore | None) -> str:
    if score is None or score.bits_per_byte is None:
        return NOT_MEASURED
    return _partial(f"{score.bits_per_byte:.3f}", score.partial)


def agreement_text(score: CorpusScore | None, is_reference: bool = False) -> str:
    if score is None or score.top1_agreement is None or score.mean_kl_nats is None:
        return "reference variant" if is_reference else NOT_MEASURED
    text = (f"{score.top1_agreement:.1%} top-1, KL {score.mean_kl_nats:.3g} nats"
            + (f" vs {score.reference_variant}" if score.reference_variant else ""))
    return _partial(text, score.partial)


def task_text(task: TaskScore) -> str:
    partial = f"; {PARTIAL}" if task.partial else ""
    return (f"{task.pass_at_1:.1%} ({task.n_passed}/{task.n_problems} problems, "
            f"{task.prompt_format}{partial})")


def _references(summaries: Sequence[QualitySummary]) -> set[tuple[str, str]]:
    """(model, variant) pairs that other variants were compared against."""
    return {(s.model_id, c.reference_variant) for s in summaries for c in s.corpora
            if c.reference_variant}


class QualityCells:
    """The quality cells of every (model, variant), computed once per report."""

    def __init__(self, summaries: Sequence[QualitySummary]) -> None:
        self.header = quality_header(summaries)
        self._by_key = {(s.model_id, s.variant): s for s in summaries}
        self._bpb = _bpb_corpora(summaries)
        self._agree = _agreement_corpora(summaries)
        self._tasks = _has_tasks(summaries)
        self._refs = _references(summaries)

    def __call__(self, model_id: str, variant: str) -> tuple[str, ...]:
        s = self._by_key.get((model_id, variant))
        if s is None:
            return (QUALITY_NOT_MEASURED,) * len(self.header)
        ref = (model_id, variant) in self._refs
        cells = ([bpb_text(s.corpus(d)) for d in self._bpb]
                 + [agreement_text(s.corpus(d), ref) for d in self._agree])
        if self._tasks:
            cells.append("; ".join(task_text(t) for t in s.tasks) or NOT_MEASURED)
        return tuple(cells)


QUALITY_SECTION_HEADER = ("model", "variant", "dataset", "bits/byte", "top-1 agreement",
                          "KL nats", "vs variant", "pass@1", "passed/problems", "prompt format",
                          "isolation", "partial", "speed rows")
QUALITY_SECTION_INTRO = (
    "Every model and variant with quality rows, one line per corpus and per HumanEval prompt "
    "format, whether or not these inputs hold speed rows for it. Bits per byte and agreement "
    "come from sliding windows over a fixed corpus; pass@1 is the share of HumanEval problems "
    "whose greedy completion passed its tests in the sandbox (see docs/quality.md).")
NO_QUALITY_NOTE = ("No quality rows in these inputs: run `edgebench quality` and pass its CSV "
                   "to `edgebench report` beside the results CSVs.")


def quality_section_rows(summaries: Sequence[QualitySummary],
                         with_speed: set[tuple[str, str]]) -> tuple[tuple[str, ...], ...]:
    rows: list[tuple[str, ...]] = []
    for s in summaries:
        speed = "measured" if (s.model_id, s.variant) in with_speed else "none in these inputs"
        for c in s.corpora:
            rows.append((
                s.model_id, s.variant, c.dataset,
                "n/a" if c.bits_per_byte is None else f"{c.bits_per_byte:.3f}",
                "n/a" if c.top1_agreement is None else f"{c.top1_agreement:.1%}",
                "n/a" if c.mean_kl_nats is None else f"{c.mean_kl_nats:.3g}",
                c.reference_variant or "n/a", "n/a", "n/a", "n/a", "n/a",
                PARTIAL if c.partial else "no", speed))
        for t in s.tasks:
            rows.append((
                s.model_id, s.variant, "humaneval", "n/a", "n/a", "n/a", "n/a",
                f"{t.pass_at_1:.1%}", f"{t.n_passed}/{t.n_problems}", t.prompt_format,
                t.isolation, PARTIAL if t.partial else "no", speed))
    return tuple(rows)


def quality_count(summaries: Sequence[QualitySummary]) -> str:
    """", quality of N model variants" for the report's first line; empty without quality."""
    n = len(summaries)
    return f", quality of {n} model variant{'s' if n != 1 else ''}" if n else ""
