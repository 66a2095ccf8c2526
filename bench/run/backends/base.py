"""The small protocol every runtime implements, so the runner times all of them the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence


@dataclass(frozen=True)
class BackendVersions:
    backend_version: str
    onnxruntime_version: str | None  # None for runtimes that are not onnxruntime
    onnxruntime_genai_version: str | None


class Backend(Protocol):
    """Greedy, fixed-length generation split into the steps the runner times.

    `prefill` runs the forward pass over the prompt. The first `next_token` only selects the
    greedy token from the prompt's logits (so prefill + first next_token = TTFT); every later
    call runs one forward pass for the previous token and then selects, which is exactly what
    onnxruntime-genai's generate_next_token does.
    """

    name: str

    def load(self, model_dir: Path, *, ep: str, threads: int) -> None: ...

    def begin(self, max_length: int, *, ignore_eos: bool = True) -> None: ...

    def prefill(self, prompt_ids: Sequence[int]) -> None: ...

    def next_token(self) -> int: ...

    def close(self) -> None: ...

    def versions(self) -> BackendVersions: ...

    def ep_options(self) -> dict[str, str]: ...


class Scorer(Protocol):
    """The scoring call of the backends that can (quality stage): token ids in, log-probs at
    every position out, (n, vocab) float32, row i predicting token i + 1."""

    def score(self, token_ids: Sequence[int]) -> Any: ...
