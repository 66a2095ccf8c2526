"""Plain onnxruntime.InferenceSession with edgebench's own greedy loop and KV-cache management.

This is the backend that reaches every execution provider the installed onnxruntime offers.
Speed comes from IO binding: one KV buffer per layer, preallocated for the whole generation,
bound as both past and present (GroupQueryAttention writes the new entries in place), so no
token ever copies the cache. Feeding present outputs back as new inputs instead copies the
whole cache every step and costs 20-35% (DESIGN.md, known pitfalls). The buffers live in the
EP's device memory and take the model's declared element types (ort_device.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from bench.run.backends import ort_device
from bench.run.backends.base import BackendVersions
from bench.errors import EdgebenchError

# edgebench EP names -> onnxruntime provider names
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
    "azure": "AzureExecutionProvider",
}


def available_eps() -> list[str]:
    """edgebench names of the EPs this onnxruntime build offers."""
    import onnxruntime as ort

    reverse = {v: k for k, v in PROVIDERS.items()}
    return [reverse.get(p, p) for p in ort.get_available_providers()]


def check_ep(ep: str) -> str:
    """Maps an edgebench EP name to the provider name, or says exactly what is available."""
    provider = PROVIDERS.get(ep)
    offered = available_eps()
    if provider is None:
        raise EdgebenchError(
            f"unknown execution provider {ep!r}; known: {', '.join(PROVIDERS)} "
            f"(this onnxruntime offers: {', '.join(offered)})")
    if ep not in offered:
        raise EdgebenchError(
            f"execution provider {ep!r} is not in this onnxruntime build (it offers "
            f"{', '.join(offered)}); install {ort_device.install_hint(ep)}")
    return provider


class OrtBackend:
    name = "ort"

    def __init__(self) -> None:
        self._session: Any = None
        self._threads = 0
        self._ep = "cpu"
        self._device, self._device_id = "cpu", 0

    def load(self, model_dir: Path, *, ep: str, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort

        self._np, self._ort = np, ort
        provider = check_ep(ep)
        self._ep, self._threads = ep, threads
        genai = json.loads((model_dir / "genai_config.json").read_text())["model"]
        decoder = genai["decoder"]
        self._layers = int(decoder["num_hidden_layers"])
        self._kv_heads = int(decoder["num_key_value_heads"])
        self._head_size = int(decoder["head_size"])
        names_in, names_out = decoder["inputs"], decoder["outputs"]
        self._past_k = [names_in["past_key_names"] % i for i in range(self._layers)]
        self._past_v = [names_in["past_value_names"] % i for i in range(self._layers)]
        self._present_k = [names_out["present_key_names"] % i for i in range(self._layers)]
        self._present_v = [names_out["present_value_names"] % i for i in range(self._layers)]
        self._input_ids_name = names_in["input_ids"]
        self._mask_name = names_in["attention_mask"]
        self._logits_name = names_out["logits"]
        eos = genai.get("eos_token_id", [])
        self._eos_ids = [eos] if isinstance(eos, int) else list(eos)
        self._vocab = int(genai["vocab_size"])

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(model_dir / decoder["filename"]), sess_options=options, providers=[provider])
        except Exception as exc:
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            hint = "" if ep == "cpu" else f"; EP {ep} needs {ort_device.install_hint(ep)}"
            raise EdgebenchError(f"onnxruntime could not create a session for {model_dir} on "
                                 f"EP {ep}: {reason}{hint}") from None
        used = self._session.get_providers()[0]
        if used != provider:  # the EP's libraries failed to load: onnxruntime logs and goes on
            raise EdgebenchError(
                f"EP {ep} was requested but onnxruntime fell back to {used}; EP {ep} needs "
                f"{ort_device.install_hint(ep)}")
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        for name, declared in ((self._past_k[0], inputs), (self._logits_name, outputs)):
            if name not in declared:
                raise EdgebenchError(f"{model_dir / decoder['filename']} has no {name!r}, which "
                                     "its genai_config.json names; rebuild the model folder")
        logits = outputs[self._logits_name]
        self._kv_dtype = ort_device.numpy_dtype(inputs[self._past_k[0]].type, "its KV cache")
        self._logits_dtype = ort_device.numpy_dtype(logits.type, "its logits")
        self._last_only = ort_device.last_position_only(logits.shape)
        self._device = ort_device.device_type(ep)

    def begin(self, max_length: int, *, ignore_eos: bool = True) -> None:
        np = self._np
        self._max_length = max_length
        self._ignore_eos = ignore_eos
        # free the previous generation's cache before allocating the next (device memory)
        self._binding, self._kv, self._kv_values = None, [], []
        shape = (1, self._kv_heads, max_length, self._head_size)
        where = (self._device, self._device_id)
        self._kv = [ort_device.allocate(shape, self._kv_dtype, *where)
                    for _ in range(2 * self._layers)]
        self._kv_values = [b.value for b in self._kv]
        self._mask = np.ones((1, max_length), dtype=np.int64)
        self._step_ids = np.zeros((1, 1), dtype=np.int64)
        step = ort_device.allocate((1, 1, self._vocab), self._logits_dtype, *where)
        # host view of the step logits, or None when they live on the device (read back by copy)
        self._step_logits, self._step_logits_value = step.host, step.value
        self._length = 0
        self._pending: int | None = None
        self._logits = None
        binding = self._session.io_binding()
        for i in range(self._layers):
            k, v = self._kv_values[2 * i], self._kv_values[2 * i + 1]
            binding.bind_ortvalue_input(self._past_k[i], k)
            binding.bind_ortvalue_input(self._past_v[i], v)
            binding.bind_ortvalue_output(self._present_k[i], k)
            binding.bind_ortvalue_output(self._present_v[i], v)
        # bound last: get_outputs() follows binding order, so the prefill's logits are [-1]
        binding.bind_ortvalue_output(self._logits_name, self._step_logits_value)
        self._binding = binding

    def _run(self, ids: Any, whole_prompt: bool = False) -> Any:
        """One forward pass over `ids` appended at the current length; returns last logits.

        The logits come back in host memory: the step buffer's host view, or a copy from device
        memory of the one position it holds. `whole_prompt`: they went to a buffer ORT allocated
        for every prompt position (a model without a pruned LM head), which is copied whole.
        """
        n = ids.shape[1]
        total = self._length + n
        if total > self._max_length:
            raise EdgebenchError(
                f"generation reached {total} tokens, past the {self._max_length} reserved")
        b = self._binding
        b.bind_cpu_input(self._input_ids_name, ids)
        b.bind_cpu_input(self._mask_name, self._mask[:, :total])
        self._session.run_with_iobinding(b)
        self._length = total
        if whole_prompt:  # on a device, numpy() copies every prompt position back
            return b.get_outputs()[-1].numpy()[0, -1]  # logits are bound last
        host = self._step_logits
        return host[0, -1] if host is not None else self._step_logits_value.numpy()[0, -1]

    def prefill(self, prompt_ids: Sequence[int]) -> None:
        np = self._np
        ids = np.asarray(prompt_ids, dtype=np.int64).reshape(1, -1)
        whole_prompt = ids.shape[1] > 1 and not self._last_only
        if whole_prompt:
            self._binding.bind_output(self._logits_name, self._device, self._device_id)
        self._logits = self._run(ids, whole_prompt)
        if whole_prompt:  # every later step writes into the one preallocated buffer
            self._binding.bind_ortvalue_output(self._logits_name, self._step_logits_value)
        self._pending = None

    def _select(self, logits: Any) -> int:
        if self._ignore_eos and self._eos_ids:
            # in place on host logits: the step buffer, or a copy read back from the device;
            # either is rewritten before it is read again
            logits[self._eos_ids] = -self._np.inf
        return int(logits.argmax())

    def next_token(self) -> int:
        if self._pending is not None:
            self._step_ids[0, 0] = self._pending
            self._logits = self._run(self._step_ids)
        token = self._select(self._logits)
        self._pending = token
        return token

    def score(self, token_ids: Sequence[int]) -> Any:
        """Log-probabilities at every position, (n, vocab) float32, for one forward pass over
        `token_ids` from an empty cache: row i is the distribution of token i + 1. Needs a
        folder whose LM head computes every position (`models build --logits all`)."""
        np = self._np
        if self._last_only:
            raise EdgebenchError(
                "this model folder computes logits for the last position only (a benchmark "
                "build); scoring needs 'edgebench models build MODEL --variant V --logits all'")
        ids = np.asarray(token_ids, dtype=np.int64).reshape(1, -1)
        self.begin(ids.shape[1])
        b = self._binding
        b.bind_output(self._logits_name, self._device, self._device_id)
        b.bind_cpu_input(self._input_ids_name, ids)
        b.bind_cpu_input(self._mask_name, self._mask[:, :ids.shape[1]])
        self._session.run_with_iobinding(b)
        logits = np.asarray(b.get_outputs()[-1].numpy()[0], dtype=np.float32)
        self._binding, self._kv, self._kv_values = None, [], []
        return log_softmax_rows(np, logits)

    def close(self) -> None:
        self._binding = None
        self._session = None
        self._kv = []
        self._kv_values = []

    def versions(self) -> BackendVersions:
        import onnxruntime as ort

        try:
            import onnxruntime_genai as og
            genai_version: str | None = og.__version__
        except ImportError:
            genai_version = None
        return BackendVersions(ort.__version__, ort.__version__, genai_version)

    def ep_options(self) -> dict[str, str]:
        return {"intra_op_num_threads": str(self._threads), "inter_op_num_threads": "1",
                "graph_optimization_level": "ORT_ENABLE_ALL", "io_binding": "shared_kv_buffer",
                "buffer_device": self._device}


def log_softmax_rows(np: Any, logits: Any, chunk_rows: int = 64) -> Any:
    """In place, a few rows at a time: a full-vocabulary float64 copy of 1024 positions would
    be over a gigabyte for a 150k-token vocabulary."""
    for start in range(0, logits.shape[0], chunk_rows):
        block = logits[start:start + chunk_rows].astype(np.float64)
        block -= block.max(axis=1, keepdims=True)
        block -= np.log(np.exp(block).sum(axis=1, keepdims=True))
        logits[start:start + chunk_rows] = block
    return logits
