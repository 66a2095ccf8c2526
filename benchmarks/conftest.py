"""Benchmarks reuse the test suite's model fixtures (the default model, built once)."""

from tests.conftest import built_models, default_recipe  # noqa: F401  (pytest fixtures)
