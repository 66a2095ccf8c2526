"""Valid QualityRows, written with the real ResultWriter, for report and upload tests."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from bench.results.quality import (KIND, QUALITY_COLUMNS, QUALITY_SCHEMA_VERSION, QualityRow,
                                   bits_per_byte)
from bench.results.writer import ResultWriter

MODEL = "smollm2-135m-instruct"  # the model of tests/rowfactory.make_row

_BASE = dict(
    quality_schema_version=QUALITY_SCHEMA_VERSION, run_id="q" * 32, measure="bits_per_byte",
    dataset="prose-en", dataset_sha256="d" * 64, item=None,
    started_utc="2026-11-27T10:00:00.000Z", finished_utc="2026-11-27T10:03:00.000Z",
    wall_s=180.0, edgebench_version="0.1.0", git_commit=None, model_id=MODEL, variant="int4",
    precision="int4-b32-acc4", weights="real", model_sha256="a" * 64,
    model_source_sha256="b" * 64, source_quant=None, backend="ort", backend_version="1.31.1",
    ep="cpu", threads=2, host_fingerprint="f" * 16, cpu_model="AMD EPYC", partial=False,
)


def corpus_row(variant: str = "int4", dataset: str = "prose-en", nll_nats: float = 40_000.0,
               n_bytes: int = 60_000, **overrides) -> QualityRow:
    """A bits-per-byte row: bits_per_byte follows from the NLL and the bytes, as measured."""
    row = QualityRow(**{**_BASE, "variant": variant, "dataset": dataset},
                     context_tokens=512, stride_tokens=256, n_windows=58, n_tokens=14_800,
                     n_bytes=n_bytes, nll_nats=nll_nats,
                     bits_per_byte=bits_per_byte(nll_nats, n_bytes))
    return dataclasses.replace(row, **overrides)


def agreement_row(variant: str = "int4", dataset: str = "prose-en", top1: float = 0.93,
                  kl_nats: float = 0.041, reference: str = "fp32", **overrides) -> QualityRow:
    row = QualityRow(**{**_BASE, "variant": variant, "dataset": dataset, "measure": "agreement"},
                     context_tokens=512, stride_tokens=256, n_windows=58, n_tokens=14_800,
                     reference_variant=reference, reference_model_sha256="c" * 64,
                     top1_agreement=top1, mean_kl_nats=kl_nats)
    return dataclasses.replace(row, **overrides)


def humaneval_row(index: int, passed: bool, variant: str = "int4",
                  prompt_format: str = "completion", **overrides) -> QualityRow:
    row = QualityRow(**{**_BASE, "variant": variant, "dataset": "humaneval",
                        "measure": "humaneval", "item": f"HumanEval/{index}", "wall_s": 4.5},
                     prompt_format=prompt_format, passed=passed,
                     sandbox_status="passed" if passed else "failed",
                     sandbox_detail=None if passed else "AssertionError",
                     isolation="subprocess, no network, rlimits", prompt_tokens=130,
                     generated_tokens=90, output_bytes=310, stop_reason="stop", gen_s=3.9)
    return dataclasses.replace(row, **overrides)


def write_quality_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with ResultWriter(path, columns=QUALITY_COLUMNS, kind=KIND) as writer:
        for row in rows:
            writer.write(row)
    return path


def expected_bpb(nll_nats: float = 40_000.0, n_bytes: int = 60_000) -> str:
    """The figure the report prints for corpus_row's defaults."""
    return f"{nll_nats / math.log(2) / n_bytes:.3f}"
