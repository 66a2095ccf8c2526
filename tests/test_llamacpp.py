"""The llamacpp backend on the default recipe's own GGUF: the same greedy tokens as the ort
backend on the fp32 build of those weights, fixed-length generation, one-batch prefill, threads
and settings in ep_options, one-line errors."""

import sys

import pytest

from bench.errors import EdgebenchError
from bench.models import sources
from bench.models.gguf_model import open_recipe_gguf
from bench.run import prompts
from bench.run.backends.ort import OrtBackend
from bench.run.timing import generate_timed

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
from bench.run.backends.llamacpp import LlamaCppBackend  # noqa: E402  (needs llama_cpp)

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"
EOS = frozenset({2})
# llama.cpp computes Q4_1 x Q8_1 dot products, onnxruntime fp32 ones: on random prompts the greedy
# tokens part after a few steps, the short chat answer agrees whole.
AGREE_TOKENS = 8


@pytest.fixture(scope="module")
def gguf(default_recipe):
    """The recipe's GGUF, fetched and verified into the cache like `models build` does."""
    sources.fetch_gguf(default_recipe, lambda msg: print(msg, file=sys.stderr))
    return open_recipe_gguf(default_recipe.id)


def _backend(model, threads=2):
    backend = LlamaCppBackend()
    backend.load(model.path, ep="cpu", threads=threads)
    return backend


def _generate(backend, ids, n, stop_ids=None):
    return list(generate_timed(backend, ids, n, stop_ids).tokens)


def _chat_ids(folder):
    tok = prompts.load_tokenizer(folder)
    return tok, prompts.chat_ids(prompts.compile_chat(folder), tok,
                                 "You are a helpful assistant.", QUESTION)


def test_greedy_tokens_match_ort_on_the_fp32_build_of_the_same_weights(gguf, built_models):
    folder = built_models["fp32"]
    tok, ids = _chat_ids(folder)
    ort = OrtBackend()
    ort.load(folder, ep="cpu", threads=2)
    try:
        expected = _generate(ort, ids, 24, EOS)
    finally:
        ort.close()
    backend = _backend(gguf)
    try:
        got = _generate(backend, ids, 24, EOS)
    finally:
        backend.close()
    # the whole answer, EOS included ("The capital of France is Paris."): 8 tokens
    assert len(got) >= AGREE_TOKENS and got[-1] == 2
    assert got == expected, (tok.decode(got), tok.decode(expected))
    assert "Paris" in tok.decode(got, skip_special_tokens=True)


def test_exactly_n_tokens_when_eos_is_ignored_and_a_reset_between_generations(gguf,
                                                                              built_models):
    _, ids = _chat_ids(built_models["fp32"])
    backend = _backend(gguf)
    try:
        stopped = _generate(backend, ids, 64, EOS)
        fixed = _generate(backend, ids, 64)
        again = _generate(backend, ids, 64)  # same context size: only the memory is cleared
        backend.begin(300)  # a new context of another size, then the same generation
        other = _generate(backend, ids, 64)
    finally:
        backend.close()
    assert stopped[-1] == 2 and len(stopped) < 64
    assert len(fixed) == 64 and 2 not in fixed
    assert fixed[:len(stopped) - 1] == stopped[:-1]
    assert again == fixed == other


def test_a_512_token_prompt_is_one_batch_and_threads_are_recorded(gguf):
    ids = prompts.synthetic_ids(512, gguf.vocab_size, gguf.bos_token_id, seed=5)
    backend = _backend(gguf, threads=1)
    try:
        backend.begin(512 + 4)
        backend.prefill(ids)
        tokens = [backend.next_token() for _ in range(4)]
        opts = backend.ep_options()
    finally:
        backend.close()
    assert len(tokens) == 4
    assert int(opts["n_batch"]) >= 512 and int(opts["n_ubatch"]) >= 512
    assert int(opts["n_ctx"]) >= 516
    assert (opts["n_threads"], opts["n_threads_batch"]) == ("1", "1")
    assert opts["flash_attn"] == "auto" and opts["type_k"] == opts["type_v"] == "f16"
    assert opts["system_info"]  # the build's instruction sets, from llama_print_system_info
    assert backend.versions().backend_version == llama_cpp.__version__
    assert backend.versions().onnxruntime_version is None


def test_a_prompt_longer_than_the_context_is_a_one_line_error(gguf):
    backend = _backend(gguf)
    try:
        backend.begin(8)
        with pytest.raises(EdgebenchError) as exc:
            backend.prefill(list(range(10, 40)))
    finally:
        backend.close()
    assert "\n" not in str(exc.value)


def test_a_missing_gguf_and_a_gpu_ep_are_one_line_errors(tmp_path, gguf):
    with pytest.raises(EdgebenchError, match="does not exist") as missing:
        LlamaCppBackend().load(tmp_path / "missing.gguf", ep="cpu", threads=2)
    with pytest.raises(EdgebenchError, match="CPU") as gpu:
        LlamaCppBackend().load(gguf.path, ep="cuda", threads=2)
    for exc in (missing, gpu):
        assert "\n" not in str(exc.value)
