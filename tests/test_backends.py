"""Both backends on the real model: same greedy tokens, and the weights answer correctly."""

import pytest

from bench.run import prompts
from bench.run.backends.ort import OrtBackend, check_ep
from bench.run.backends.ort_genai import OrtGenaiBackend
from bench.errors import EdgebenchError
from bench.run.timing import generate_timed

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"


EOS = frozenset({2})


def _generate(backend_cls, folder, ids, n, stop_ids=None):
    backend = backend_cls()
    backend.load(folder, ep="cpu", threads=2)
    try:
        return list(generate_timed(backend, ids, n, stop_ids).tokens)
    finally:
        backend.close()


def _question_ids(folder):
    tok = prompts.load_tokenizer(folder)
    return tok, prompts.chat_ids(prompts.compile_chat(folder), tok, "You are a helpful assistant.",
                                 QUESTION)


# gguf is gguf-exact's weights at int8 activations: on this prompt fp32 itself is nearly tied
# between "The" (24.14) and "La" (24.05), and gguf tips into French (test_gguf_variant.py checks
# its logits against gguf-exact's instead)
@pytest.mark.parametrize("variant", ["gguf-exact", "int4", "int8", "fp32"])
def test_the_real_model_answers_paris_in_every_variant(built_models, variant):
    folder = built_models[variant]
    tok, ids = _question_ids(folder)
    for backend_cls in (OrtGenaiBackend, OrtBackend):
        out = _generate(backend_cls, folder, ids, 24, EOS)
        text = tok.decode(out, skip_special_tokens=True)
        assert "Paris" in text, f"{backend_cls.name} {variant}: {text!r}"


@pytest.mark.parametrize("variant", ["gguf", "int4", "fp32"])
def test_both_backends_produce_the_same_greedy_tokens(built_models, variant):
    folder = built_models[variant]
    _, chat = _question_ids(folder)
    synthetic = prompts.synthetic_ids(200, 49152, 1, seed=3)
    for ids in (chat, synthetic):
        # 48 tokens with EOS masked: exercises the KV cache well past the prompt
        assert _generate(OrtGenaiBackend, folder, ids, 48) == _generate(OrtBackend, folder, ids, 48)


@pytest.mark.parametrize("backend_cls", [OrtGenaiBackend, OrtBackend])
def test_eos_is_masked_for_fixed_length_benchmarks(built_models, backend_cls):
    folder = built_models["fp32"]  # answers "The capital of France is Paris." then EOS
    _, ids = _question_ids(folder)
    stopped = _generate(backend_cls, folder, ids, 64, EOS)
    fixed = _generate(backend_cls, folder, ids, 64)
    assert stopped[-1] == 2 and len(stopped) < 64
    assert 2 not in fixed and len(fixed) == 64
    assert fixed[:len(stopped) - 1] == stopped[:-1]


def test_unknown_ep_lists_what_exists():
    with pytest.raises(EdgebenchError, match="unknown execution provider 'tpu'.*offers: .*cpu"):
        check_ep("tpu")


def test_known_ep_missing_from_this_build():
    with pytest.raises(EdgebenchError, match="'cuda' is not in this onnxruntime build"):
        check_ep("cuda")


def test_genai_backend_rejects_an_ep_it_cannot_use(built_models):
    with pytest.raises(EdgebenchError, match="not supported by the ort-genai backend"):
        OrtGenaiBackend().load(built_models["int4"], ep="xnnpack", threads=1)


def test_genai_failing_to_create_a_session_is_one_line(built_models):
    # cuda is a provider genai knows, but this machine has no CUDA: session creation fails
    with pytest.raises(EdgebenchError, match="could not load") as info:
        OrtGenaiBackend().load(built_models["int4"], ep="cuda", threads=1)
    assert "\n" not in str(info.value)
