"""One `edgebench quality` session: which folders to load, the writer, a progress bar, and the
measures run in order. Every row is on disk (fsync) before the next measurement starts, so
Ctrl-C keeps what was finished."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.errors import EdgebenchError
from bench.results.quality import KIND, QUALITY_COLUMNS, QualityRow
from bench.results.writer import ResultWriter

MEASURE_NAMES = ("bpb", "agreement", "humaneval")
REFERENCE_VARIANT = "fp32"


@dataclass(frozen=True)
class QualityPlan:
    model_ids: tuple[str, ...]
    variants: tuple[str, ...] | None  # None: every variant of each recipe
    measures: tuple[str, ...]
    corpus_ids: tuple[str, ...] | None  # None: every shipped corpus
    limit: int | None
    prompt_format: str  # auto, completion or chat
    backend: str
    ep: str
    threads: int
    unsafe_no_isolation: bool


def check_plan(plan: QualityPlan) -> list[Any]:
    """The recipes, refusing what cannot be measured before anything is loaded."""
    from bench.models import recipes

    unknown = [m for m in plan.measures if m not in MEASURE_NAMES]
    if unknown:
        raise EdgebenchError(f"unknown measure {unknown[0]!r}; choose from "
                             f"{', '.join(MEASURE_NAMES)}")
    chosen = []
    for model_id in plan.model_ids:
        recipe = recipes.get_recipe(model_id)
        if recipe.weights == "synthetic":
            raise EdgebenchError(
                f"{model_id} has synthetic (random) weights: its quality would measure noise. "
                "Quality needs a recipe with weights = \"real\"; its speed and energy runs "
                "remain valid")
        missing = [v for v in plan.variants or () if v not in recipe.variants]
        if missing:
            raise EdgebenchError(f"{model_id} has no variant {missing[0]!r}; it has "
                                 f"{', '.join(recipe.variants)}")
        chosen.append(recipe)
    return chosen


def scored_variants(recipe: Any, plan: QualityPlan) -> tuple[list[str], str | None]:
    """Variants to score on the corpora, and the reference (added when agreement needs it)."""
    variants = list(plan.variants or recipe.variants)
    reference = REFERENCE_VARIANT if REFERENCE_VARIANT in recipe.variants else None
    if "agreement" in plan.measures and reference is not None and reference not in variants:
        variants.append(reference)
    return variants, reference


def run_quality(plan: QualityPlan, run: Any, output: Path, console: Any,
                say: Callable[[str], None]) -> list[QualityRow]:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    recipes = check_plan(plan)
    sandbox = None
    if "humaneval" in plan.measures:  # refuse before loading a model, not after scoring
        from bench.quality.sandbox import Sandbox

        sandbox = Sandbox(isolated=not plan.unsafe_no_isolation)
        if plan.unsafe_no_isolation:
            say(f"warning: generated code runs WITHOUT OS isolation ({sandbox.isolation}); "
                "every HumanEval row records it")
    rows: list[QualityRow] = []
    with ResultWriter(output, QUALITY_COLUMNS, KIND) as writer, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True) as bar:
        def keep(new: Sequence[QualityRow]) -> None:
            for row in new:
                writer.write(row)
                rows.append(row)

        for recipe in recipes:
            if {"bpb", "agreement"} & set(plan.measures):
                _corpora(plan, run, recipe, bar, keep)
            if sandbox is not None:
                from bench.quality.task_run import run_humaneval

                run_humaneval(plan, run, recipe, sandbox, bar, keep, say)
    return rows


def _corpora(plan: QualityPlan, run: Any, recipe: Any, bar: Any,
             keep: Callable[[Sequence[QualityRow]], None]) -> None:
    from bench.models.folder import open_built_variant
    from bench.quality import corpora
    from bench.quality.corpus_run import CorpusText, Scorer, count_windows, score_corpus
    from bench.run.backends import make_backend
    from bench.run.prompts import load_tokenizer

    variants, reference = scored_variants(recipe, plan)
    folders = {v: open_built_variant(recipe.id, v, logits="all") for v in variants}
    texts = [CorpusText(c.id, c.sha256, corpora.read_text(c)) for c in
             (corpora.load_corpora() if plan.corpus_ids is None
              else [corpora.get_corpus(i) for i in plan.corpus_ids])]
    scorers: dict[str, Scorer] = {}
    try:
        for v, folder in folders.items():
            backend = make_backend(plan.backend)
            if not hasattr(backend, "score"):
                raise EdgebenchError(f"backend {plan.backend} has no scoring call; bits per "
                                     "byte and agreement need --backend ort")
            backend.load(folder.path, ep=plan.ep, threads=plan.threads)
            scorers[v] = Scorer(folder, backend)
        tokenizer = load_tokenizer(next(iter(folders.values())).path)
        task = bar.add_task(f"{recipe.id}: scoring corpora",
                            total=count_windows(tokenizer, texts, plan.limit))
        for text in texts:
            bar.update(task, description=f"{recipe.id} {'/'.join(scorers)}: {text.id}")
            keep(score_corpus(run, text, scorers, reference, tokenizer, limit=plan.limit,
                              agreement="agreement" in plan.measures,
                              advance=lambda: bar.advance(task)))
    finally:
        for scorer in scorers.values():
            scorer.backend.close()
