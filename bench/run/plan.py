"""What to run: test shapes, loaded-model targets and the sweep plan (the cross product).

The plan says what; the runner (run/runner.py) says how. Keeping them apart lets tests build a
plan by hand and lets `edgebench run` build one from its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from bench.errors import EdgebenchError

if TYPE_CHECKING:
    from pathlib import Path

    from bench.models.folder import ModelRecord

DEFAULT_CHAT_SYSTEM = "You are a helpful assistant."
DEFAULT_CHAT_PROMPT = "Explain why the sky is blue."


@dataclass(frozen=True)
class Shape:
    """One test: `pp512` (prompt only), `tg128` (generation after BOS), `pp512+tg128`, `chat`."""

    name: str
    n_prompt: int | None  # None: the chat prompt, whose length the tokenizer decides
    n_gen: int

    @staticmethod
    def pp(n: int) -> "Shape":
        return Shape(f"pp{n}", n, 1)  # one generated token so TTFT is measured too

    @staticmethod
    def tg(n: int) -> "Shape":
        return Shape(f"tg{n}", 1, n)

    @staticmethod
    def pg(p: int, g: int) -> "Shape":
        return Shape(f"pp{p}+tg{g}", p, g)

    @staticmethod
    def chat(n_gen: int) -> "Shape":
        return Shape("chat", None, n_gen)


@dataclass(frozen=True)
class Target:
    """A loaded-model point of the sweep: everything but the shape.

    `chat` is the (system, prompt) conversation of this model's recipe (None: the plan's);
    `no_chat` says why the chat shape cannot run on this model (no chat template or tokenizer),
    and the runner skips it with that reason instead of faking it.
    """

    model: ModelRecord  # an ONNX folder, a GGUF or a Hugging Face folder
    backend: str
    ep: str
    threads: int
    chat: tuple[str, str] | None = None
    no_chat: str | None = None


@dataclass(frozen=True)
class RunPlan:
    targets: tuple[Target, ...]
    shapes: tuple[Shape, ...]
    reps: int = 5
    warmup: int = 1
    cooldown_s: float = 0.0
    interleave: bool = False
    chat_system: str = DEFAULT_CHAT_SYSTEM
    chat_prompt: str = DEFAULT_CHAT_PROMPT
    skipped_pairs: tuple[str, ...] = ()  # (model, backend) pairs a backend cannot run, why

    def runs(self, target: Target) -> tuple[Shape, ...]:
        """The shapes this target runs: the chat shape only where the model has a chat."""
        return tuple(s for s in self.shapes if s.n_prompt is not None or target.no_chat is None)

    @property
    def total_runs(self) -> int:
        return sum(len(self.runs(t)) for t in self.targets) * (self.reps + self.warmup)

    def skipped(self) -> list[str]:
        """One line per (model, backend) pair and (model, shape) the plan leaves out, why."""
        if not any(s.n_prompt is None for s in self.shapes):
            return list(self.skipped_pairs)
        seen = {}
        for t in self.targets:
            if t.no_chat:
                seen[f"{t.model.model_id}/{t.model.variant}"] = t.no_chat
        return list(self.skipped_pairs) + [f"chat shape skipped on {name}: {why}"
                                           for name, why in seen.items()]


def config_id(target: Target, shape: Shape) -> str:
    return "/".join([target.model.model_id, target.model.variant, target.backend, target.ep,
                     f"t{target.threads}", shape.name])


def make_shapes(prompt_tokens: Sequence[int], gen_tokens: Sequence[int],
                pairs: Sequence[tuple[int, int]], chat_tokens: int | None) -> list[Shape]:
    """llama-bench's ppN and tgN, combined ppP+tgG, and the chat shape (None: no chat)."""
    shapes = [Shape.pp(n) for n in prompt_tokens]
    shapes += [Shape.tg(n) for n in gen_tokens]
    shapes += [Shape.pg(p, g) for p, g in pairs]
    if chat_tokens is not None:
        shapes.append(Shape.chat(chat_tokens))
    if not shapes:
        raise EdgebenchError("no test selected: give --prompt-tokens, --gen-tokens, --pg or "
                             "--chat")
    return shapes


def make_plan(folders: Sequence[ModelRecord], shapes: Sequence[Shape], *, backends: Sequence[str],
              eps: Sequence[str], threads: Sequence[int], reps: int, warmup: int,
              cooldown_s: float, interleave: bool) -> RunPlan:
    """The cross product folders × backends × EPs × threads, checked against each context."""
    longest = max((s.n_prompt or 0) + s.n_gen for s in shapes)
    for folder in folders:
        if folder.context_length and longest > folder.context_length:
            raise EdgebenchError(
                f"a test needs {longest} tokens but {folder.model_id} has a context of "
                f"{folder.context_length}; lower --prompt-tokens/--gen-tokens")
    chats = {f.path: _chat(f) for f in folders}
    pairs, skipped = runnable_pairs(folders, backends)
    if not pairs:
        raise EdgebenchError("no backend in --backend runs any model given: "
                             + "; ".join(skipped))
    targets = tuple(Target(f, b, ep, t, *chats[f.path]) for f, b in pairs
                    for ep in eps for t in threads)
    return RunPlan(targets=targets, shapes=tuple(shapes), reps=reps, warmup=warmup,
                   cooldown_s=cooldown_s, interleave=interleave, skipped_pairs=tuple(skipped))


def runnable_pairs(folders: Sequence[ModelRecord], backends: Sequence[str]
                   ) -> tuple[list[tuple[ModelRecord, str]], list[str]]:
    """(model, backend) pairs a backend can run, and one line per other pair: a sweep such as
    --backend ort,llamacpp --variant gguf,int4 runs through instead of failing."""
    from bench.run.backends import entry

    def runs(f: ModelRecord, b: str) -> bool:
        e = entry(b)
        return e.runtime == f.runtime and (
            e.variants is None or f.variant in e.variants)

    groups: dict[tuple[str, str], list[ModelRecord]] = {}
    for f in folders:  # one (model, variant) may have an ONNX, a GGUF and a HF record
        groups.setdefault((f.model_id, f.variant), []).append(f)
    pairs, skipped = [], []
    for (model_id, variant), records in groups.items():
        for b in backends:
            matching = [f for f in records if runs(f, b)]
            pairs += [(f, b) for f in matching]
            if not matching:
                skipped.append(f"{model_id}/{variant} skipped on {b}: {b} {entry(b).why_not}")
    return pairs, skipped


def _chat(folder: ModelRecord) -> tuple[tuple[str, str] | None, str | None]:
    """The recipe's conversation and, where the chat shape cannot run, why."""
    from bench import paths
    from bench.models import recipes
    from bench.run.prompts import chat_unavailable

    tokenizer_dir = tokenizer_folder(folder)
    if tokenizer_dir is None:
        return None, ("no tokenizer folder beside the GGUF (edgebench models build "
                      f"{folder.model_id} makes one)")
    why = chat_unavailable(tokenizer_dir)
    if (paths.recipes_dir() / f"{folder.model_id}.toml").exists():
        recipe = recipes.get_recipe(folder.model_id)
        if not recipe.has_chat:
            return None, why or f"recipe {recipe.id} has no chat conversation"
        return (recipe.chat_system, recipe.chat_prompt), why
    return None, why


def tokenizer_folder(model: ModelRecord) -> Path | None:
    """Where a model's tokenizer.json and chat template are: the ONNX or Hugging Face folder
    itself, or the `tokenizer_dir` a GGUF record names (None when it has none)."""
    if model.runtime == "gguf":
        return model.tokenizer_dir
    return model.path
