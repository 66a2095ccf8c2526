"""Speed benchmarks (pytest-benchmark). In the default suite they run once as a smoke test;
`pytest tests/test_bench_speed.py --benchmark-enable` measures, e.g. to check that the `ort`
loop stays within 10% of onnxruntime-genai. No timed assertions: these hosts are noisy."""

import pytest

from bench.run import prompts
from bench.run.backends.ort import OrtBackend
from bench.run.backends.ort_genai import OrtGenaiBackend
from bench.run.timing import generate_timed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[OrtGenaiBackend, OrtBackend], ids=["ort-genai", "ort"])
def loaded(request, built_models):
    backend = request.param()
    backend.load(built_models["int4"], ep="cpu", threads=2)
    yield backend
    backend.close()


def test_decode_tg64(benchmark, loaded):
    benchmark.group = "int4 tg64 decode"
    timing = benchmark(generate_timed, loaded, [1], 64)
    assert len(timing.tokens) == 64


def test_prefill_pp256(benchmark, loaded):
    benchmark.group = "int4 pp256 prefill"
    ids = prompts.synthetic_ids(256, 49152, 1)
    timing = benchmark(generate_timed, loaded, ids, 1)
    assert timing.prefill_s > 0 and len(timing.tokens) == 1
