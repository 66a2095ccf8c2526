"""Bits per byte and agreement: the window arithmetic, the byte accounting and the formulas,
then the real scoring call on the default model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.errors import EdgebenchError
from bench.quality import scoring
from bench.results.quality import bits_per_byte


@pytest.mark.parametrize("n,context,stride", [(1, 8, 4), (2, 8, 4), (8, 8, 4), (9, 8, 4),
                                              (100, 8, 4), (100, 8, 7), (37, 10, 3)])
def test_every_token_after_the_first_is_scored_exactly_once(n, context, stride):
    ws = scoring.windows(n, context, stride)
    targets = [t for w in ws for t in range(w.first_target, w.end)]
    assert targets == list(range(1, n))
    for w in ws:
        assert w.end - w.begin <= context and w.begin < w.first_target <= w.end
    for w in ws[1:]:  # later windows give every target at least context - stride of context
        assert w.first_target - w.begin >= min(context - stride, w.first_target)


def test_bad_stride_is_refused():
    with pytest.raises(ValueError):
        scoring.windows(10, 4, 4)


class _Encoding:
    def __init__(self, ids, offsets):
        self.ids, self.offsets = ids, offsets


class _CharTokenizer:
    """One token per character: offsets are exact, so bytes are easy to check by hand."""

    def encode(self, text, add_special_tokens=False):
        return _Encoding([ord(c) for c in text], [(i, i + 1) for i in range(len(text))])


def test_bytes_follow_utf8_not_characters():
    text = "aé€😀b"  # 1 + 2 + 3 + 4 + 1 bytes
    tok = scoring.tokenize(_CharTokenizer(), text)
    assert tok.n_bytes(0, len(tok.ids)) == len(text.encode()) == 11
    assert tok.n_bytes(1, len(tok.ids)) == 10  # the unscored first token's byte is left out


def test_bits_per_byte_formula():
    assert bits_per_byte(math.log(2) * 16, 8) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        bits_per_byte(1.0, 0)


def _logsoftmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=1, keepdims=True))).astype(np.float32)


def test_agreement_and_kl_against_a_hand_computation():
    rng = np.random.default_rng(0)
    ref = _logsoftmax(rng.normal(size=(70, 11)))
    same, other = scoring.AgreementTally(), scoring.AgreementTally()
    scoring.add_agreement(np, same, ref, ref.copy(), chunk_rows=16)
    assert same.same_top1 == 70 and same.kl_nats == pytest.approx(0.0, abs=1e-6)
    var = _logsoftmax(rng.normal(size=(70, 11)))
    scoring.add_agreement(np, other, ref, var, chunk_rows=16)
    p, q = np.exp(ref.astype(np.float64)), np.exp(var.astype(np.float64))
    expected = float((p * (np.log(p) - np.log(q))).sum())
    assert other.kl_nats == pytest.approx(expected, rel=1e-4)
    assert other.same_top1 == int((ref.argmax(1) == var.argmax(1)).sum()) < 70


def test_nll_picks_each_targets_log_prob():
    logprobs = _logsoftmax(np.arange(12, dtype=np.float64).reshape(4, 3))
    ids = [0, 2, 1, 0, 2]
    window = scoring.Window(begin=0, end=5, first_target=1)
    rows, targets = scoring.target_logprobs(np, np.vstack([logprobs, logprobs[:1]]), ids, window)
    tally = scoring.Tally()
    scoring.add_nll(np, tally, rows, targets)
    expected = -sum(float(logprobs[i % 4][t]) for i, t in enumerate(ids[1:]))
    assert tally.n_tokens == 4 and tally.nll_nats == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_score_is_a_distribution_and_agrees_with_greedy_generation(built_full_logits):
    from bench.run.backends import make_backend

    backend = make_backend("ort")
    backend.load(built_full_logits, ep="cpu", threads=1)
    prompt = [1, 9690, 314, 253, 1345, 28, 339, 2016, 314]
    logprobs = backend.score(prompt)
    assert logprobs.shape[0] == len(prompt)
    assert np.allclose(np.exp(logprobs.astype(np.float64)).sum(axis=1), 1.0, atol=1e-4)
    backend.begin(len(prompt) + 2)
    backend.prefill(prompt)
    assert backend.next_token() == int(logprobs[-1].argmax())
    backend.close()


@pytest.mark.slow
def test_a_benchmark_build_refuses_to_score(built_models):
    from bench.run.backends import make_backend

    backend = make_backend("ort")
    backend.load(built_models["int4"], ep="cpu", threads=1)
    with pytest.raises(EdgebenchError, match="--logits all"):
        backend.score([1, 2, 3])
