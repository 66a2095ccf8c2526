"""Project contracts: the README's two commands, CI running the second, a fast --help."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    assert text.index("```bash") < 40  # right under the title
    setup_and_run, setup_and_test = _readme_commands()
    assert "edgebench run" in setup_and_run and "models build smollm2-135m-instruct" in setup_and_run
    assert "pytest" in setup_and_test


def test_ci_runs_the_readme_test_command_and_fails_on_no_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()
    assert '"$rc" -eq 5' in ci


def test_torch_is_pinned_wherever_the_project_installs_it():
    pyproject = (ROOT / "pyproject.toml").read_text()
    torch_lines = [line.strip() for line in pyproject.splitlines() if '"torch' in line]
    assert torch_lines and all('"torch==' in line for line in torch_lines)


def test_help_imports_no_heavy_module():
    code = ("import sys, bench.cli; bench.cli.build_parser().format_help(); "
            "heavy = {'torch', 'onnxruntime', 'onnxruntime_genai', 'transformers', 'numpy', "
            "'pandas', 'duckdb', 'plotly', 'sqlalchemy'} & set(sys.modules); "
            "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
