"""Scoring the shipped corpora: bits per byte for every variant, agreement against the reference.

All variants of one model are loaded together and score the same window back to back, so the
reference's log-probs are held for one window only (a vocabulary-wide array per position) and
the variants see exactly the same tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bench.quality import scoring
from bench.quality.rows import QualityRun, make_row, utc_now
from bench.results.quality import QualityRow, bits_per_byte


@dataclass(frozen=True)
class Scorer:
    """One loaded variant: its folder (provenance) and its backend (with a `score` call)."""

    folder: Any
    backend: Any


@dataclass(frozen=True)
class CorpusText:
    id: str
    sha256: str
    text: str


def plan_windows(tokenized: scoring.Tokenized, limit: int | None) -> tuple[list[scoring.Window],
                                                                            bool]:
    """The windows to score and whether --limit cut them short (then the rows say partial)."""
    every = scoring.windows(len(tokenized.ids))
    if limit is None or limit >= len(every):
        return every, False
    return every[:limit], True


def score_corpus(run: QualityRun, corpus: CorpusText, scorers: dict[str, Scorer],
                 reference: str | None, tokenizer: Any, *, limit: int | None,
                 agreement: bool, advance: Callable[[], None]) -> list[QualityRow]:
    """Rows for one corpus: a bits-per-byte row per variant, an agreement row per variant other
    than the reference. Nothing is returned for an interrupted corpus: its sums are partial."""
    import numpy as np

    tokenized = scoring.tokenize(tokenizer, corpus.text)
    todo, partial = plan_windows(tokenized, limit)
    order = sorted(scorers, key=lambda name: name != reference)  # the reference first
    tallies = {name: scoring.Tally() for name in order}
    agree = {name: scoring.AgreementTally() for name in order if name != reference}
    started = utc_now()
    for window in todo:
        ids = tokenized.ids[window.begin:window.end]
        ref_rows = None
        for name in order:
            t0 = time.perf_counter()
            logprobs = scorers[name].backend.score(ids)
            rows, targets = scoring.target_logprobs(np, logprobs, tokenized.ids, window)
            scoring.add_nll(np, tallies[name], rows, targets)
            tallies[name].wall_s += time.perf_counter() - t0
            if name == reference:
                ref_rows = rows
            elif agreement and ref_rows is not None:
                t1 = time.perf_counter()
                scoring.add_agreement(np, agree[name], ref_rows, rows)
                agree[name].wall_s += time.perf_counter() - t1
        advance()
    n_bytes = tokenized.n_bytes(todo[0].first_target, todo[-1].end) if todo else 0
    out = []
    for name in order:
        tally, folder = tallies[name], scorers[name].folder
        common = dict(dataset=corpus.id, dataset_sha256=corpus.sha256, started_utc=started,
                      partial=partial, context_tokens=scoring.CONTEXT_TOKENS,
                      stride_tokens=scoring.STRIDE_TOKENS, n_windows=len(todo),
                      n_tokens=tally.n_tokens, n_bytes=n_bytes)
        out.append(make_row(run, folder, measure="bits_per_byte", wall_s=tally.wall_s,
                            nll_nats=tally.nll_nats,
                            bits_per_byte=bits_per_byte(tally.nll_nats, n_bytes), **common))
        if agreement and name in agree and agree[name].n_positions:
            a = agree[name]
            out.append(make_row(
                run, folder, measure="agreement", wall_s=a.wall_s,
                reference_variant=reference,
                reference_model_sha256=scorers[str(reference)].folder.model_sha256,
                top1_agreement=a.same_top1 / a.n_positions,
                mean_kl_nats=a.kl_nats / a.n_positions, **common))
    return out


def count_windows(tokenizer: Any, corpora: Sequence[CorpusText], limit: int | None) -> int:
    """For the progress bar's total (tokenizing twice costs well under a second per corpus)."""
    return sum(len(plan_windows(scoring.tokenize(tokenizer, c.text), limit)[0]) for c in corpora)
