"""The ort backend's device-agnostic buffers: where they live, their types, the EP errors.

No machine here has a GPU build of onnxruntime, so the GPU path runs on the CPU: buffers in
onnxruntime-owned memory with no host view (host_view=False) are read back exactly like CUDA
memory. A toy fp16 decoder (built with onnx.helper) checks dtypes and the loop in seconds; the
real model checks tokens against onnxruntime-genai.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from bench.errors import EdgebenchError
from bench.run.backends import ort_device
from bench.run.backends.ort import PROVIDERS, OrtBackend, check_ep
from bench.run.timing import generate_timed

VOCAB = 8
EOS = 5
LAYERS = 2


def _toy_folder(path, *, last_only: bool, dtype: str = "float16"):
    """A decoder whose greedy next token is (last token + 1) % VOCAB, runner-up + 2.

    KV outputs are the inputs (Identity), which is enough to bind them in place; logits are
    [batch, 1, vocab] with last_only (a pruned LM head) or [batch, sequence, vocab].
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    elem = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT}[dtype]
    table = np.zeros((VOCAB, VOCAB), dtype=dtype)
    for i in range(VOCAB):
        table[i, (i + 1) % VOCAB], table[i, (i + 2) % VOCAB] = 2, 1
    inits = [numpy_helper.from_array(table, "table"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "last")]
    nodes, inputs, outputs = [], [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
    ], []
    for i in range(LAYERS):
        for kind in ("key", "value"):
            past, present = f"past_key_values.{i}.{kind}", f"present.{i}.{kind}"
            inputs.append(helper.make_tensor_value_info(past, elem, ["batch", 1, "past", 2]))
            outputs.append(helper.make_tensor_value_info(present, elem, ["batch", 1, "total", 2]))
            nodes.append(helper.make_node("Identity", [past], [present]))
    if last_only:
        nodes.append(helper.make_node("Gather", ["input_ids", "last"], ["last_id"], axis=1))
        nodes.append(helper.make_node("Gather", ["table", "last_id"], ["logits"]))
        logits_shape = ["batch", 1, VOCAB]
    else:
        nodes.append(helper.make_node("Gather", ["table", "input_ids"], ["logits"]))
        logits_shape = ["batch", "seq", VOCAB]
    outputs.insert(0, helper.make_tensor_value_info("logits", elem, logits_shape))
    graph = helper.make_graph(nodes, "toy", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path / "model.onnx"))
    (path / "genai_config.json").write_text(json.dumps({"model": {
        "eos_token_id": EOS, "vocab_size": VOCAB,
        "decoder": {"filename": "model.onnx", "num_hidden_layers": LAYERS,
                    "num_key_value_heads": 1, "head_size": 2,
                    "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                               "past_key_names": "past_key_values.%d.key",
                               "past_value_names": "past_key_values.%d.value"},
                    "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                                "present_value_names": "present.%d.value"}}}}))
    return path


def _tokens(folder, ids, n, stop_ids=None):
    backend = OrtBackend()
    backend.load(folder, ep="cpu", threads=1)
    try:
        return list(generate_timed(backend, ids, n, stop_ids).tokens), backend
    finally:
        backend.close()


@pytest.fixture()
def device_memory(monkeypatch):
    """Every ort buffer in onnxruntime-owned memory without a host view: the GPU code path."""
    calls = []
    real = ort_device.allocate

    def alloc(shape, dtype, device, device_id=0, **_):
        buf = real(shape, dtype, device, device_id, host_view=False)
        calls.append((tuple(shape), np.dtype(dtype), device, buf))
        return buf

    monkeypatch.setattr(ort_device, "allocate", alloc)
    return calls


@pytest.fixture()
def recorded(monkeypatch):
    """The real allocation, recorded."""
    calls = []
    real = ort_device.allocate

    def alloc(shape, dtype, device, device_id=0, **kw):
        calls.append((tuple(shape), np.dtype(dtype), device))
        buf = real(shape, dtype, device, device_id, **kw)
        calls[-1] += (buf,)
        return buf

    monkeypatch.setattr(ort_device, "allocate", alloc)
    return calls


@pytest.mark.parametrize("ep,device", [
    ("cpu", "cpu"), ("cuda", "cuda"), ("tensorrt", "cuda"), ("dml", "dml"),
    ("openvino", "cpu"), ("qnn", "cpu"), ("coreml", "cpu"), ("xnnpack", "cpu"),
])
def test_each_ep_gets_the_memory_it_computes_in(ep, device):
    assert ort_device.device_type(ep) == device


def test_every_device_type_is_one_onnxruntime_can_allocate_for():
    for ep in PROVIDERS:
        ort.OrtDevice.make(ort_device.device_type(ep), 0)  # raises on an unknown device type


@pytest.mark.parametrize("onnx_type,dtype", [
    ("tensor(float)", np.float32), ("tensor(float16)", np.float16), ("tensor(double)", np.float64),
])
def test_element_types_map_to_numpy(onnx_type, dtype):
    assert ort_device.numpy_dtype(onnx_type, "its logits") == np.dtype(dtype)


def test_an_element_type_without_numpy_support_is_one_line():
    with pytest.raises(EdgebenchError, match=r"logits as tensor\(bfloat16\).*ort-genai") as info:
        ort_device.numpy_dtype("tensor(bfloat16)", "its logits")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("shape,last", [
    (["batch_size", 1, 49152], True), (["batch_size", "sequence_length", 49152], False),
    ([1, 7, 8], False), (["batch_size", 49152], False),
])
def test_a_pruned_lm_head_is_recognised_by_its_declared_shape(shape, last):
    assert ort_device.last_position_only(shape) is last


@pytest.mark.parametrize("ep,package", [("cuda", "onnxruntime-gpu"), ("tensorrt", "tensorrt"),
                                        ("dml", "onnxruntime-directml")])
def test_a_missing_gpu_ep_says_what_to_install_in_one_line(monkeypatch, ep, package):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(EdgebenchError, match=f"'{ep}' is not in this onnxruntime build") as info:
        check_ep(ep)
    assert package in str(info.value) and "\n" not in str(info.value)


def test_host_buffers_share_memory_with_their_ortvalue():
    buf = ort_device.allocate((1, 2, 3), np.float16, "cpu")
    assert buf.host.dtype == np.float16 and not buf.host.any()
    assert buf.value.data_type() == "tensor(float16)"
    buf.host[0, 1, 2] = 5
    assert buf.value.numpy()[0, 1, 2] == 5


def test_device_owned_buffers_are_zeroed_and_have_no_host_view():
    buf = ort_device.allocate((1, 2, 3), np.float16, "cpu", host_view=False)
    assert buf.host is None
    assert buf.value.data_type() == "tensor(float16)" and buf.value.shape() == [1, 2, 3]
    assert not buf.value.numpy().any()


def test_allocating_on_a_device_this_build_lacks_is_one_line():
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime can allocate CUDA memory")
    with pytest.raises(EdgebenchError, match="could not allocate cuda:0 memory") as info:
        ort_device.allocate((1, 4), np.float16, "cuda")
    assert "\n" not in str(info.value)


# counting from the last prompt token; EOS (5) masked, so 4 is followed by the runner-up, 6
COUNTING = [3, 4, 6, 7, 0, 1, 2, 3, 4, 6]


@pytest.mark.parametrize("last_only", [True, False])
@pytest.mark.parametrize("memory", ["host", "device"])
def test_fp16_model_gets_fp16_buffers_and_counts(tmp_path, request, recorded, last_only, memory):
    device = request.getfixturevalue("device_memory") if memory == "device" else None
    folder = _toy_folder(tmp_path, last_only=last_only)
    tokens, backend = _tokens(folder, [0, 1, 2], len(COUNTING))
    assert tokens == COUNTING
    if device is not None:
        assert len(device) == 2 * LAYERS + 1 and all(c[3].host is None for c in device)
    if memory == "host":
        kv, logits = recorded[:-1], recorded[-1]
        assert [c[:3] for c in kv] == [((1, 1, 13, 2), np.dtype(np.float16), "cpu")] * 2 * LAYERS
        assert logits[:3] == ((1, 1, VOCAB), np.dtype(np.float16), "cpu")
        assert all(c[3].host is not None for c in recorded)
    assert backend.ep_options()["buffer_device"] == "cpu"


def test_eos_ends_generation_when_not_masked_on_the_device_path(tmp_path, device_memory):
    folder = _toy_folder(tmp_path, last_only=True)
    assert _tokens(folder, [0, 1, 2], 10, frozenset({EOS}))[0] == [3, 4, 5]


def test_fp32_model_gets_fp32_buffers(tmp_path, recorded):
    folder = _toy_folder(tmp_path, last_only=True, dtype="float32")
    assert _tokens(folder, [2], 3)[0] == [3, 4, 6]
    assert {c[1] for c in recorded} == {np.dtype(np.float32)}


def _pretend_cuda_is_offered(monkeypatch):
    offered = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: offered)


def test_a_listed_gpu_ep_that_falls_back_to_cpu_says_what_to_install(tmp_path, monkeypatch):
    folder = _toy_folder(tmp_path, last_only=True)
    _pretend_cuda_is_offered(monkeypatch)

    class FellBack:  # what onnxruntime does when the CUDA libraries fail to load
        def __init__(self, *args, **kwargs):
            pass

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", FellBack)
    with pytest.raises(EdgebenchError, match="fell back to CPUExecutionProvider.*onnxruntime-gpu"
                       ) as info:
        OrtBackend().load(folder, ep="cuda", threads=1)
    assert "\n" not in str(info.value)


def test_a_listed_gpu_ep_that_cannot_create_a_session_says_what_to_install(tmp_path,
                                                                             monkeypatch):
    folder = _toy_folder(tmp_path, last_only=True)
    _pretend_cuda_is_offered(monkeypatch)

    def fail(*args, **kwargs):
        raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected\n  at line 2")

    monkeypatch.setattr(ort, "InferenceSession", fail)
    with pytest.raises(EdgebenchError, match="no CUDA-capable device.*cuda needs onnxruntime-gpu"
                       ) as info:
        OrtBackend().load(folder, ep="cuda", threads=1)
    assert "\n" not in str(info.value) and "line 2" not in str(info.value)


def _genai_tokens(folder, ids, n):
    """The reference: onnxruntime-genai's own loop on the same folder."""
    from bench.run.backends.ort_genai import OrtGenaiBackend

    reference = OrtGenaiBackend()
    reference.load(folder, ep="cpu", threads=2)
    try:
        return list(generate_timed(reference, ids, n).tokens)
    finally:
        reference.close()


@pytest.mark.slow
def test_real_model_cpu_buffers_come_from_the_helper_and_match_genai(built_models, recorded):
    from bench.run import prompts

    folder = built_models["int4"]
    ids = prompts.synthetic_ids(200, 49152, 1, seed=3)
    tokens, _ = _tokens(folder, ids, 48)
    kv = [c[:3] for c in recorded[:-1]]
    assert kv == [((1, 3, 248, 64), np.dtype(np.float32), "cpu")] * 60
    assert recorded[-1][:3] == ((1, 1, 49152), np.dtype(np.float32), "cpu")
    assert tokens == _genai_tokens(folder, ids, 48)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["int4", "fp32"])
def test_real_model_on_the_device_path_gives_the_host_path_tokens(built_models, monkeypatch,
                                                                  variant):
    from bench.run import prompts

    folder = built_models[variant]
    for ids in (prompts.synthetic_ids(17, 49152, 1, seed=7),
                prompts.synthetic_ids(200, 49152, 1, seed=3)):
        host, _ = _tokens(folder, ids, 48)
        with monkeypatch.context() as m:
            buffers = []
            real = ort_device.allocate

            def alloc(*args, **kwargs):
                buffers.append(real(*args, **kwargs, host_view=False))
                return buffers[-1]

            m.setattr(ort_device, "allocate", alloc)
            device, _ = _tokens(folder, ids, 48)
        assert len(buffers) == 61 and all(b.host is None for b in buffers)
        assert device == host == _genai_tokens(folder, ids, 48)


def test_a_config_naming_an_output_the_model_lacks_is_one_line(tmp_path):
    folder = _toy_folder(tmp_path, last_only=True)
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"]["outputs"]["logits"] = "lm_logits"
    (folder / "genai_config.json").write_text(json.dumps(config))
    with pytest.raises(EdgebenchError, match="has no 'lm_logits'.*rebuild") as info:
        OrtBackend().load(folder, ep="cpu", threads=1)
    assert "\n" not in str(info.value)
