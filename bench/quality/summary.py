"""Quality rows folded into one summary per model x variant: what the table, the report and the
cost stage show. Pure functions over rows, so every consumer reads the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from bench.results.quality import QualityRow


@dataclass(frozen=True)
class CorpusScore:
    dataset: str
    bits_per_byte: float | None
    top1_agreement: float | None
    mean_kl_nats: float | None
    reference_variant: str | None
    partial: bool
    wall_s: float


@dataclass(frozen=True)
class TaskScore:
    """HumanEval pass@1 (greedy: one sample, so pass@1 is the pass rate)."""

    prompt_format: str
    n_problems: int
    n_passed: int
    partial: bool
    isolation: str
    prompt_tokens: int  # summed over problems, for pricing a solved task
    generated_tokens: int
    output_bytes: int
    wall_s: float

    @property
    def pass_at_1(self) -> float:
        return self.n_passed / self.n_problems


@dataclass(frozen=True)
class QualitySummary:
    model_id: str
    variant: str
    corpora: tuple[CorpusScore, ...]
    tasks: tuple[TaskScore, ...]

    def corpus(self, dataset: str) -> CorpusScore | None:
        return next((c for c in self.corpora if c.dataset == dataset), None)


def summarize(rows: Iterable[QualityRow]) -> list[QualitySummary]:
    """One summary per (model, variant), in first-seen order. When a file holds a measure twice
    (two runs appended), the later run's rows win, so a re-run replaces rather than mixes."""
    rows = list(rows)
    latest: dict[tuple[str, str, str, str, str | None], str] = {}
    for r in rows:  # the run that measured each (model, variant, measure, dataset, format) last
        latest[(r.model_id, r.variant, r.measure, r.dataset, r.prompt_format)] = r.run_id
    kept = [r for r in rows
            if latest[(r.model_id, r.variant, r.measure, r.dataset, r.prompt_format)] == r.run_id]
    keys: list[tuple[str, str]] = []
    for r in kept:
        if (r.model_id, r.variant) not in keys:
            keys.append((r.model_id, r.variant))
    return [_summary(m, v, [r for r in kept if (r.model_id, r.variant) == (m, v)])
            for m, v in keys]


def _summary(model_id: str, variant: str, rows: list[QualityRow]) -> QualitySummary:
    corpora: dict[str, dict] = {}
    for r in rows:
        if r.measure == "bits_per_byte":
            corpora.setdefault(r.dataset, {}).update(
                bits_per_byte=r.bits_per_byte, partial=r.partial, bpb_wall_s=r.wall_s)
        elif r.measure == "agreement":
            corpora.setdefault(r.dataset, {}).update(
                top1_agreement=r.top1_agreement, mean_kl_nats=r.mean_kl_nats,
                reference_variant=r.reference_variant, agree_partial=r.partial,
                agree_wall_s=r.wall_s)
    scores = tuple(CorpusScore(
        dataset=d, bits_per_byte=c.get("bits_per_byte"), top1_agreement=c.get("top1_agreement"),
        mean_kl_nats=c.get("mean_kl_nats"), reference_variant=c.get("reference_variant"),
        partial=bool(c.get("partial") or c.get("agree_partial")),
        wall_s=(c.get("bpb_wall_s") or 0.0) + (c.get("agree_wall_s") or 0.0))
        for d, c in corpora.items())
    tasks = []
    for fmt in dict.fromkeys(r.prompt_format for r in rows if r.measure == "humaneval"):
        problems = [r for r in rows if r.measure == "humaneval" and r.prompt_format == fmt]
        tasks.append(TaskScore(
            prompt_format=str(fmt), n_problems=len(problems),
            n_passed=sum(1 for r in problems if r.passed),
            partial=any(r.partial for r in problems),
            isolation="; ".join(sorted({str(r.isolation) for r in problems})),
            prompt_tokens=sum(r.prompt_tokens or 0 for r in problems),
            generated_tokens=sum(r.generated_tokens or 0 for r in problems),
            output_bytes=sum(r.output_bytes or 0 for r in problems),
            wall_s=sum(r.wall_s for r in problems)))
    return QualitySummary(model_id, variant, scores, tuple(tasks))
