"""Shared fixtures. The real default model is built once per session into the user cache
(or EDGEBENCH_CACHE_DIR), so the first run pays ~1 minute and later runs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.models import build as modelzoo, recipes
from bench import paths

DEFAULT_MODEL = "smollm2-135m-instruct"
VARIANTS = ("gguf", "gguf-exact", "int4", "int8", "fp32")


@pytest.fixture(scope="session")
def default_recipe() -> recipes.Recipe:
    return recipes.get_recipe(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def built_models(default_recipe) -> dict[str, Path]:
    """Every variant of the default model, built from the real GGUF weights."""
    folders = modelzoo.build(default_recipe, list(VARIANTS), lambda msg: print(msg, file=sys.stderr))
    return dict(zip(VARIANTS, folders))


@pytest.fixture(scope="session")
def built_full_logits(default_recipe) -> Path:
    """The int4 variant built with logits at every position (the quality-scoring build)."""
    [folder] = modelzoo.build(default_recipe, ["int4"], lambda msg: print(msg, file=sys.stderr),
                              logits="all")
    return folder


@pytest.fixture(scope="session")
def built_scoring_models(default_recipe, built_full_logits) -> dict[str, Path]:
    """Every variant of the default model with logits at every position (quality scoring)."""
    folders = modelzoo.build(default_recipe, list(VARIANTS),
                             lambda msg: print(msg, file=sys.stderr), logits="all")
    return dict(zip(VARIANTS, folders))


@pytest.fixture()
def int4_copy(built_models, tmp_path) -> Path:
    """A private copy of the int4 folder that a test may damage."""
    dst = tmp_path / "int4"
    shutil.copytree(built_models["int4"], dst)
    return dst


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600,
            machine_root: Path | None = None) -> subprocess.CompletedProcess:
    """The CLI as a user runs it: a separate process, output captured; `machine_root` makes it
    read a fake machine's /proc and /sys (tests/fake_machines.py) instead of the host's."""
    env = dict(os.environ)
    env.setdefault("EDGEBENCH_CACHE_DIR", str(paths.cache_dir()))
    if machine_root is not None:
        env["EDGEBENCH_MACHINE_ROOT"] = str(machine_root)
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)


# ------------------------------------------------------------------ databases for the service
@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (tests/pg_server.py), stopped and deleted
    at the end. Skipped where PostgreSQL is not installed, except under CI=true: a failure."""
    from tests.pg_server import PgUnavailable, skip_or_fail, start_postgres

    try:
        server = start_postgres()
    except PgUnavailable as exc:
        skip_or_fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """The throwaway server's maintenance database (postgres), as a SQLAlchemy URL."""
    return postgres_server.admin_url


@pytest.fixture(params=["sqlite", "postgresql"])
def service_db_url(request, tmp_path):
    """A fresh, empty database URL per test, once on each engine: a SQLite file in tmp_path,
    or a new database on the session's PostgreSQL server (dropped after the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)
