"""Quality rows from what was measured, with the provenance every row carries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bench import __version__
from bench.results.quality import QUALITY_SCHEMA_VERSION, QualityRow


@dataclass(frozen=True)
class QualityRun:
    """One `edgebench quality` invocation: where and with what it measured."""

    run_id: str
    git_commit: str | None
    host_fingerprint: str
    cpu_model: str
    backend: str
    backend_version: str
    ep: str
    threads: int

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def make_row(run: QualityRun, folder: Any, *, measure: str, dataset: str, dataset_sha256: str,
             started_utc: str, wall_s: float, partial: bool, **measured: Any) -> QualityRow:
    """`folder` is the bench.models.folder.ModelFolder that was scored or generated with."""
    return QualityRow(
        quality_schema_version=QUALITY_SCHEMA_VERSION, run_id=run.run_id, measure=measure,
        dataset=dataset, dataset_sha256=dataset_sha256, started_utc=started_utc,
        finished_utc=utc_now(), wall_s=wall_s, edgebench_version=__version__,
        git_commit=run.git_commit, model_id=folder.model_id, variant=_base_variant(folder),
        precision=folder.precision, weights=folder.weights, model_sha256=folder.model_sha256,
        model_source_sha256=folder.source_sha256, source_quant=folder.source_quant,
        backend=run.backend, backend_version=run.backend_version, ep=run.ep,
        threads=run.threads, host_fingerprint=run.host_fingerprint, cpu_model=run.cpu_model,
        partial=partial, **measured)


def _base_variant(folder: Any) -> str:
    """`int4`, not `int4+all-logits`: a full-logits build holds the same weights, and the
    report joins quality to speed on the variant name."""
    return str(folder.variant).split("+", 1)[0]
