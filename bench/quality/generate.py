"""Greedy generation that stops on text: the HumanEval prompts and the loop over a backend.

The run stage's backends generate a fixed number of tokens for timing; here a generation ends
at the model's end-of-sequence token, at a stop string, or when the caller's predicate says the
answer is complete (the chat format: the first fenced code block has closed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bench.errors import EdgebenchError
from bench.quality.humaneval import (MAX_NEW_TOKENS, PROMPT_FORMATS, STOP_SEQUENCES, Problem,
                                     chat_messages, fenced_block_closed)
from bench.run.backends.base import Backend

STOP_REASONS = ("stop", "eos", "max_tokens")


@dataclass(frozen=True)
class Generation:
    text: str  # the decoded new tokens, cut before a stop string
    prompt_tokens: int
    generated_tokens: int  # next_token calls: the EOS token and the one completing a stop count
    output_bytes: int  # UTF-8 bytes of `text`
    stop_reason: str  # one of STOP_REASONS
    gen_s: float  # begin + prefill + decode loop, detokenizing included


@dataclass(frozen=True)
class FormatSettings:
    """How one prompt format ends a generation."""

    stop: tuple[str, ...]
    stop_when: Callable[[str], bool] | None
    max_new_tokens: int = MAX_NEW_TOKENS


def format_settings(prompt_format: str) -> FormatSettings:
    if prompt_format == "completion":
        return FormatSettings(stop=STOP_SEQUENCES, stop_when=None)
    if prompt_format == "chat":
        return FormatSettings(stop=(), stop_when=fenced_block_closed)
    raise EdgebenchError(f"unknown HumanEval prompt format {prompt_format!r}; "
                         f"known: {', '.join(PROMPT_FORMATS)}")


def completion_prompt_ids(tokenizer: Any, problem: Problem) -> list[int]:
    """The raw problem text, tokenized with the tokenizer's own special tokens.

    Not genai_config's bos_token_id: for SmolLM2 that is <|im_start|> and for Qwen2.5
    <|endoftext|>, which Hugging Face never prepends; a tokenizer that wants a BOS (Llama's)
    adds it through its post-processor, which add_special_tokens=True applies.
    """
    return list(tokenizer.encode(problem.prompt, add_special_tokens=True).ids)


def chat_prompt_ids(template: Any, tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """A compiled chat template (bench.run.prompts.compile_chat) rendered over `messages` with
    the generation prompt, then tokenized without adding special tokens (the template holds
    them), like bench.run.prompts.chat_ids does for system + user."""
    text = template.render(messages=messages, add_generation_prompt=True)
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def problem_prompt_ids(problem: Problem, prompt_format: str, tokenizer: Any,
                       template: Any = None) -> list[int]:
    """The prompt for one problem in one format; `template` is needed for chat."""
    format_settings(prompt_format)  # validates the name
    if prompt_format == "completion":
        return completion_prompt_ids(tokenizer, problem)
    if template is None:
        raise EdgebenchError("the chat prompt format needs the model's chat template; use "
                             "the completion prompt format for a base model")
    return chat_prompt_ids(template, tokenizer, chat_messages(problem))


def _stop_index(text: str, stop: Sequence[str]) -> int:
    found = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return min(found) if found else -1


def generate(backend: Backend, tokenizer: Any, prompt_ids: Sequence[int], *,
             max_new_tokens: int, stop: tuple[str, ...] = (), eos_ids: Sequence[int] = (),
             stop_when: Callable[[str], bool] | None = None,
             clock: Callable[[], float] = time.perf_counter) -> Generation:
    """Greedy decoding on a loaded backend until EOS, a stop string or `max_new_tokens`.

    `eos_ids`: the model's end tokens (ModelFolder.eos_token_ids, from genai_config.json); the
    backend is begun with ignore_eos=False so it may pick them. After every token all generated
    ids are decoded again (at most 512: cheap, and no partial UTF-8 to track); the text is cut
    before the first stop string, or kept whole when `stop_when(text)` ends the generation.
    """
    if not prompt_ids:
        raise EdgebenchError("generation needs a prompt of at least one token")
    if max_new_tokens < 1:
        raise EdgebenchError(f"max_new_tokens must be at least 1, not {max_new_tokens}")
    eos = set(eos_ids)
    ids: list[int] = []
    text, reason, generated = "", "max_tokens", 0
    start_s = clock()
    backend.begin(len(prompt_ids) + max_new_tokens, ignore_eos=False)
    backend.prefill(prompt_ids)
    while generated < max_new_tokens:
        token = backend.next_token()
        generated += 1
        if token in eos:
            reason = "eos"
            break
        ids.append(token)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        cut = _stop_index(text, stop)
        if cut >= 0:
            text, reason = text[:cut], "stop"
            break
        if stop_when is not None and stop_when(text):
            reason = "stop"
            break
    gen_s = clock() - start_s
    return Generation(text=text, prompt_tokens=len(prompt_ids), generated_tokens=generated,
                      output_bytes=len(text.encode("utf-8")), stop_reason=reason, gen_s=gen_s)
