"""Bits per byte and agreement with a reference variant, over sliding windows of a corpus.

Windows follow the Hugging Face perplexity recipe: `context` tokens per forward pass, advanced by
`stride`; each token is scored once, the first window scores all of its tokens after the first,
later ones only their last `stride` (so every scored token after the first window sees at least
context - stride tokens of context). The corpus's first token has nothing to be predicted from
and is not scored; its bytes are not counted. Bytes are the UTF-8 bytes of the text the scored
tokens cover, from the tokenizer's offsets, which makes the result tokenizer-independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

CONTEXT_TOKENS = 1024
STRIDE_TOKENS = 512


@dataclass(frozen=True)
class Window:
    begin: int  # first token fed
    end: int  # one past the last token fed
    first_target: int  # first token whose log-prob is scored (begin < first_target < end)


def windows(n_tokens: int, context: int = CONTEXT_TOKENS,
            stride: int = STRIDE_TOKENS) -> list[Window]:
    if not 0 < stride < context:  # the token at a window's start is never one of its targets
        raise ValueError("the stride must be at least 1 and shorter than the context")
    result, scored_to = [], 1  # token 0 is never a target
    for begin in range(0, max(n_tokens - 1, 0), stride):
        end = min(begin + context, n_tokens)
        if end <= scored_to:
            break
        result.append(Window(begin, end, max(scored_to, begin + 1)))
        scored_to = end
        if end == n_tokens:
            break
    return result


@dataclass(frozen=True)
class Tokenized:
    ids: list[int]
    byte_starts: list[int]  # UTF-8 byte offset where each token's text begins
    byte_ends: list[int]

    def n_bytes(self, first: int, end: int) -> int:
        """Bytes covered by tokens first..end-1 (contiguous, so no gap is lost or doubled)."""
        return self.byte_ends[end - 1] - self.byte_starts[first]


def tokenize(tokenizer: Any, text: str) -> Tokenized:
    """Token ids with byte offsets; no special tokens, so every model sees the same text."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    char_to_byte = _char_to_byte(text)
    starts = [char_to_byte[a] for a, _ in encoding.offsets]
    ends = [char_to_byte[b] for _, b in encoding.offsets]
    for i in range(1, len(ends)):  # overlapping offsets (byte-fallback pieces) stay monotonic
        ends[i] = max(ends[i], ends[i - 1])
    return Tokenized(list(encoding.ids), starts, ends)


def _char_to_byte(text: str) -> list[int]:
    offsets, total = [], 0
    for ch in text:
        offsets.append(total)
        total += len(ch.encode("utf-8"))
    offsets.append(total)
    return offsets


@dataclass
class Tally:
    """Running sums for one variant on one corpus."""

    nll_nats: float = 0.0
    n_tokens: int = 0
    wall_s: float = 0.0


@dataclass
class AgreementTally:
    same_top1: int = 0
    kl_nats: float = 0.0
    n_positions: int = 0
    wall_s: float = 0.0


def target_logprobs(np: Any, logprobs: Any, ids: Sequence[int], window: Window) -> Any:
    """Rows of the window's log-probs that predict its scored targets, and the targets' ids."""
    rows = logprobs[window.first_target - window.begin - 1:window.end - window.begin - 1]
    targets = np.asarray(ids[window.first_target:window.end], dtype=np.int64)
    return rows, targets


def add_nll(np: Any, tally: Tally, rows: Any, targets: Any) -> None:
    tally.nll_nats += float(-rows[np.arange(len(targets)), targets].astype(np.float64).sum())
    tally.n_tokens += len(targets)


def add_agreement(np: Any, tally: AgreementTally, ref_rows: Any, rows: Any,
                  chunk_rows: int = 64) -> None:
    """Top-1 agreement and KL(reference || variant), a few rows at a time (vocab-wide)."""
    tally.same_top1 += int((ref_rows.argmax(axis=1) == rows.argmax(axis=1)).sum())
    for start in range(0, len(rows), chunk_rows):
        ref = ref_rows[start:start + chunk_rows].astype(np.float64)
        var = rows[start:start + chunk_rows].astype(np.float64)
        kl = (np.exp(ref) * (ref - var)).sum(axis=1)
        tally.kl_nats += float(np.maximum(kl, 0.0).sum())  # rounding can dip just below 0
    tally.n_positions += len(rows)


@dataclass
class CorpusRun:
    """What scoring one corpus produced for every variant: the rows are made from this."""

    n_windows: int = 0
    first_target: int = 1
    end: int = 1
    tallies: dict[str, Tally] = field(default_factory=dict)
    agreement: dict[str, AgreementTally] = field(default_factory=dict)
