"""Benchmarks reuse the test suite's fixtures: the default model (built once), the throwaway
PostgreSQL server and a fresh database per engine."""

from tests.conftest import (built_models, default_recipe, postgres_server,  # noqa: F401
                            service_db_url)  # (pytest fixtures)
