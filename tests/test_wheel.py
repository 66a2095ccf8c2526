"""A board with onnxruntime only: the built wheel, installed with its base requirements into a
fresh venv, runs the ort backend on a model folder built elsewhere and finds its packaged data."""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from bench import paths
from bench.run import backends

ROOT = Path(__file__).resolve().parent.parent
DATA_FOLDERS = ("models", "hardware_profiles")
HEAVY = ("torch", "transformers", "onnxruntime_genai")  # none may come with the base install
SOURCE = ("bench", *DATA_FOLDERS, "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{cmd[:4]}...\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _data_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for name in DATA_FOLDERS
            for p in (root / name).rglob("*") if p.is_file() and "__pycache__" not in p.parts}


# --- default_backends and the data folders, without building anything -------------------------

def test_default_backends_follow_whether_onnxruntime_genai_is_installed(monkeypatch):
    real = importlib.util.find_spec

    def faked(spec):
        return lambda name, *a: spec if name == "onnxruntime_genai" else real(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", faked(None))
    assert backends.default_backends() == ("ort",)
    monkeypatch.setattr(importlib.util, "find_spec", faked(object()))  # any spec: installed
    assert backends.default_backends() == ("ort-genai", "ort")
    assert set(backends.default_backends()) <= set(backends.BACKENDS)


def test_default_backends_does_not_import_the_runtime():
    code = ("import sys; from bench.run.backends import default_backends; default_backends(); "
            "sys.exit('onnxruntime_genai' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_checkout_reads_its_top_level_folders(monkeypatch):
    monkeypatch.delenv("EDGEBENCH_RECIPES_DIR", raising=False)
    monkeypatch.delenv("EDGEBENCH_PROFILES_DIR", raising=False)
    assert paths.in_checkout() and paths.REPO_ROOT == ROOT
    assert paths.recipes_dir() == ROOT / "models"
    assert paths.profiles_dir() == ROOT / "hardware_profiles"


def test_an_install_reads_the_packaged_copy_and_overrides_still_win(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)  # site-packages: no pyproject, no folders
    monkeypatch.delenv("EDGEBENCH_RECIPES_DIR", raising=False)
    monkeypatch.delenv("EDGEBENCH_PROFILES_DIR", raising=False)
    assert not paths.in_checkout()
    assert paths.recipes_dir() == paths.PACKAGED_DATA / "models"
    assert paths.profiles_dir() == paths.PACKAGED_DATA / "hardware_profiles"
    monkeypatch.setenv("EDGEBENCH_RECIPES_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("EDGEBENCH_PROFILES_DIR", str(tmp_path / "p"))
    assert (paths.recipes_dir(), paths.profiles_dir()) == (tmp_path / "r", tmp_path / "p")


# --- the wheel in a fresh venv -----------------------------------------------------------------

def _isolation() -> list[str]:
    """Builds with this venv's setuptools when it can make wheels itself (>= 70.1; Python 3.12+
    venvs have none), else lets pip fetch one into an isolated build environment."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return []
    major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return ["--no-build-isolation"] if major_minor >= (70, 1) else []


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Iterator[Path]:
    """The wheel built from a copy of the source (the checkout's build/ stays untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for name in SOURCE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_data"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *_isolation(),
          "-w", str(work / "dist"), str(src)], timeout=300)
    (built,) = (work / "dist").glob("edgebench-*.whl")
    yield built
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def base_venv(wheel, tmp_path_factory) -> Iterator[Path]:
    """A fresh venv holding the wheel and its base requirements only (no extras)."""
    venv = tmp_path_factory.mktemp("base-venv") / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], timeout=600)
    yield venv
    shutil.rmtree(venv.parent, ignore_errors=True)


def _base_env(tmp_path: Path) -> dict[str, str]:
    """No overrides and no checkout on the path: the venv must find everything in itself."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "EDGEBENCH_RECIPES_DIR", "EDGEBENCH_PROFILES_DIR",
                        "VIRTUAL_ENV")}
    env["EDGEBENCH_CACHE_DIR"] = str(tmp_path / "cache")
    return env


@pytest.mark.slow
def test_the_wheel_carries_every_data_file(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    packaged = {n.removeprefix("bench/_data/") for n in names if n.startswith("bench/_data/")}
    assert packaged == _data_files(ROOT)
    assert not any(n.startswith(DATA_FOLDERS) for n in names)  # no stray top-level packages


@pytest.mark.slow
def test_base_install_runs_the_ort_backend_with_packaged_data(base_venv, built_models, tmp_path):
    py, cli = base_venv / "bin" / "python", base_venv / "bin" / "edgebench"
    env = _base_env(tmp_path)
    probe = ("import importlib.util as u, bench, bench.paths as p; "
             "from bench.run.backends import default_backends as d; "
             f"print([m for m in {HEAVY!r} if u.find_spec(m)], d(), p.in_checkout(), "
             "bench.__file__.startswith(sys.prefix))")
    done = _run([str(py), "-c", "import sys; " + probe], timeout=60, cwd=tmp_path, env=env)
    assert done.stdout.split() == ["[]", "('ort',)", "False", "True"]

    profiles = _run([str(cli), "profiles", "list"], timeout=60, cwd=tmp_path, env=env).stdout
    assert "raspberry-pi-5" in profiles and "amd-epyc-vm-2vcpu" in profiles
    recipes = _run([str(cli), "models", "list"], timeout=60, cwd=tmp_path, env=env).stdout
    assert "smollm2-135m-instruct" in recipes

    out = tmp_path / "base.csv"
    _run([str(cli), "run", "--model-path", str(built_models["int4"]), "--backend", "ort",
          "--no-chat", "-p", "8", "-n", "4", "--reps", "1", "--warmup", "0", "--threads", "1",
          "--energy", "none", "--idle-s", "0", "--no-verdict", "-o", str(out)],
         timeout=300, cwd=tmp_path, env=env)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["test"] for r in rows) == ["pp8", "tg4"]
    assert {r["backend"] for r in rows} == {"ort"}
