"""Prompt token ids: synthetic ones for pp/tg shapes, chat-templated ones for the chat shape."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from bench.errors import EdgebenchError


def load_tokenizer(model_dir: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    except Exception as exc:
        raise EdgebenchError(f"{model_dir / 'tokenizer.json'} cannot be read ({exc}); "
                             "rebuild the model") from None


def chat_template(model_dir: Path) -> str:
    jinja = model_dir / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text()
    config = model_dir / "tokenizer_config.json"
    if config.exists():
        template = json.loads(config.read_text()).get("chat_template")
        if isinstance(template, str):
            return template
    raise EdgebenchError(f"{model_dir} has no chat template (chat_template.jinja or "
                         "tokenizer_config.json); the chat shape needs one")


def chat_unavailable(model_dir: Path) -> str | None:
    """Why the chat shape cannot run on this folder (no tokenizer or chat template), or None."""
    if not (model_dir / "tokenizer.json").exists():
        return "the model has no tokenizer (synthetic weights)"
    try:
        chat_template(model_dir)
    except EdgebenchError:
        return "the model has no chat template (a base model)"
    return None


def compile_chat(model_dir: Path) -> Any:
    """The model's own chat template, compiled once (at load, outside any timed region) in a
    sandbox: templates are data, not code."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(chat_template(model_dir))


def chat_ids(template: Any, tokenizer: Any, system: str, user: str) -> list[int]:
    """Renders a compiled template and tokenizes: what `tokenize_s` times."""
    text = template.render(messages=[{"role": "system", "content": system},
                                     {"role": "user", "content": user}],
                           add_generation_prompt=True)
    # The template already holds the special tokens; adding more would change the prompt.
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def synthetic_ids(n: int, vocab_size: int, bos_token_id: int | None, seed: int = 0) -> list[int]:
    """Random tokens after BOS, like llama-bench since PR #6069: representative compute,
    reproducible (seeded), and no dependence on a text corpus."""
    rng = random.Random(seed)
    first = [] if bos_token_id is None else [bos_token_id]
    low = 256 if vocab_size > 1024 else 0  # skip the special and byte tokens at the start
    return (first + [rng.randrange(low, vocab_size) for _ in range(n)])[:n]
