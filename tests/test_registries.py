"""Backends and meters are looked up by name and imported only then."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from bench.energy.meters import METERS, METHODS, open_meter
from bench.errors import EdgebenchError
from bench.run.backends import BACKENDS, BackendEntry, make_backend


def test_importing_the_registries_loads_no_runtime():
    code = ("import sys, bench.run.backends, bench.energy.meters, bench.cli;"
            "bench.cli.build_parser().format_help();"
            "heavy = {'onnxruntime', 'onnxruntime_genai', 'torch', 'pandas', 'fastapi', 'numpy',"
            " 'duckdb', 'plotly', 'sqlalchemy', 'pynvml', 'bench.run.backends.ort',"
            " 'bench.energy.meters.nvml'} & set(sys.modules);"
            "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_registered_backend_and_meter_resolves():
    for name, entry in BACKENDS.items():
        module, _, attr = entry.target.partition(":")
        assert hasattr(importlib.import_module(module), attr), name
    for name, module in METERS.items():
        mod = importlib.import_module(module)
        assert callable(mod.probe) and callable(mod.open_meter), name
        assert name in METHODS


def test_unknown_names_are_one_line_with_the_choices():
    with pytest.raises(EdgebenchError, match="unknown backend 'nope'; available: ort-genai, ort"):
        make_backend("nope")
    with pytest.raises(EdgebenchError, match="unknown energy method 'nope'"):
        open_meter("nope")


def test_a_backend_whose_runtime_is_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(BACKENDS, "missing", BackendEntry(
        "bench.run.backends.ort:OrtBackend", ("edgebench_no_such_runtime",), "pip install it"))
    with pytest.raises(EdgebenchError, match="backend missing needs edgebench_no_such_runtime: "
                                             "pip install it"):
        make_backend("missing")
