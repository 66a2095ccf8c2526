"""The table `edgebench quality` prints: measured quality per model x variant, the publisher's
figure beside the measured one, and the wall time each measure took."""

from __future__ import annotations

from typing import Callable, Sequence

from bench.quality.summary import QualitySummary

# (model_id, benchmark) -> "0.616 (Qwen2.5-Coder-0.5B-Instruct, 0-shot)" or None
Published = Callable[[str, str], str | None]


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(summaries: Sequence[QualitySummary], published: Published) -> str:
    """Markdown. A partial measure (--limit) is starred and explained under the table."""
    corpora = list(dict.fromkeys(c.dataset for s in summaries for c in s.corpora))
    header = ["model", "variant"]
    for d in corpora:
        header += [f"{d} bits/byte", f"{d} top-1 / KL vs ref"]
    header += ["HumanEval pass@1", "published", "wall s (bpb+agree / HumanEval)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    any_partial = False
    for s in summaries:
        cells = [s.model_id, s.variant]
        for d in corpora:
            c = s.corpus(d)
            star = "*" if c is not None and c.partial else ""
            any_partial |= bool(star)
            if c is None:
                cells += ["not measured", "not measured"]
                continue
            cells.append(_num(c.bits_per_byte, 4) + star)
            if c.top1_agreement is None:
                cells.append("reference" if c.bits_per_byte is not None and
                             _is_reference(s, summaries, d) else "-")
            else:
                cells.append(f"{100 * c.top1_agreement:.1f}% / {c.mean_kl_nats:.4f}{star}")
        tasks = []
        for t in s.tasks:
            star = "*" if t.partial else ""
            any_partial |= t.partial
            tasks.append(f"{100 * t.pass_at_1:.1f}% ({t.n_passed}/{t.n_problems}, "
                         f"{t.prompt_format}){star}")
        cells.append("; ".join(tasks) or "not measured")
        cells.append(published(s.model_id, "humaneval") or "none recorded")
        corpus_s = sum(c.wall_s for c in s.corpora)
        task_s = sum(t.wall_s for t in s.tasks)
        cells.append(f"{corpus_s:.0f} / {task_s:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    if any_partial:
        lines.append("\n* partial: --limit scored only the first windows or problems; not "
                     "comparable with a full run.")
    return "\n".join(lines)


def _is_reference(s: QualitySummary, summaries: Sequence[QualitySummary], dataset: str) -> bool:
    """True when another variant of the same model was compared against this one."""
    return any(o.model_id == s.model_id and (c := o.corpus(dataset)) is not None
               and c.reference_variant == s.variant for o in summaries)
