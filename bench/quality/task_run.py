"""HumanEval pass@1, greedy: per variant, generate each problem's completion with the benchmark
build, run it in the sandbox, and write one row per problem as soon as it is scored."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.quality import humaneval
from bench.quality.generate import format_settings, generate, problem_prompt_ids
from bench.quality.rows import QualityRun, make_row, utc_now
from bench.results.quality import QualityRow


def choose_format(requested: str, has_template: bool) -> str:
    """auto: chat for a model with a chat template (instruct), completion for a base model."""
    if requested == "auto":
        return "chat" if has_template else "completion"
    return requested


def eos_ids(folder: Any, tokenizer: Any) -> tuple[int, ...]:
    """genai_config's EOS ids plus the tokenizer's own eos_token: Qwen's config lists only
    <|im_end|>, yet a completion-format prompt ends with <|endoftext|>."""
    ids = list(folder.eos_token_ids)
    config = Path(folder.path) / "tokenizer_config.json"
    try:
        token = json.loads(config.read_text()).get("eos_token")
    except (OSError, ValueError):
        token = None
    token = token.get("content") if isinstance(token, dict) else token
    if isinstance(token, str) and (found := tokenizer.token_to_id(token)) is not None:
        ids.append(int(found))
    return tuple(dict.fromkeys(ids))


def run_humaneval(plan: Any, run: QualityRun, recipe: Any, sandbox: Any, bar: Any,
                  keep: Callable[[Sequence[QualityRow]], None], say: Callable[[str], None]
                  ) -> None:
    from bench.models.folder import open_built_variant
    from bench.run.backends import make_backend
    from bench.run.prompts import chat_unavailable, compile_chat, load_tokenizer

    every = humaneval.load_problems()
    problems = every[:plan.limit] if plan.limit else every
    partial = len(problems) < len(every)
    sha = humaneval.dataset_sha256()
    for variant in plan.variants or recipe.variants:
        folder = open_built_variant(recipe.id, variant)
        tokenizer = load_tokenizer(folder.path)
        has_template = chat_unavailable(folder.path) is None
        prompt_format = choose_format(plan.prompt_format, has_template)
        template = compile_chat(folder.path) if prompt_format == "chat" else None
        settings = format_settings(prompt_format)
        stops = eos_ids(folder, tokenizer)
        backend = make_backend(plan.backend)
        backend.load(folder.path, ep=plan.ep, threads=plan.threads)
        task = bar.add_task(f"{recipe.id} {variant}: HumanEval ({prompt_format})",
                            total=len(problems))
        passed = 0
        try:
            for problem in problems:
                started, t0 = utc_now(), time.perf_counter()
                ids = problem_prompt_ids(problem, prompt_format, tokenizer, template)
                gen = generate(backend, tokenizer, ids, max_new_tokens=settings.max_new_tokens,
                               stop=settings.stop, eos_ids=stops, stop_when=settings.stop_when)
                code = humaneval.extract_code(problem, gen.text, prompt_format)
                outcome = sandbox.run(humaneval.program(problem, code))
                passed += outcome.passed
                keep([make_row(
                    run, folder, measure="humaneval", dataset="humaneval", dataset_sha256=sha,
                    item=problem.task_id, started_utc=started,
                    wall_s=time.perf_counter() - t0, partial=partial,
                    prompt_format=prompt_format, passed=outcome.passed,
                    sandbox_status=outcome.status, sandbox_detail=outcome.detail[:200] or None,
                    isolation=sandbox.isolation, prompt_tokens=gen.prompt_tokens,
                    generated_tokens=gen.generated_tokens, output_bytes=gen.output_bytes,
                    stop_reason=gen.stop_reason, gen_s=gen.gen_s)])
                bar.update(task, advance=1, description=f"{recipe.id} {variant}: HumanEval "
                                                        f"({prompt_format}) {passed} passed")
        finally:
            backend.close()
