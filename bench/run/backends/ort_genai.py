"""onnxruntime-genai's Generator: the reference runtime whose loop we must match."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from bench.run.backends.base import BackendVersions
from bench.errors import EdgebenchError

# edgebench EP names -> the provider names onnxruntime-genai's config accepts
_GENAI_PROVIDERS = {"cuda": "cuda", "dml": "dml", "qnn": "qnn", "openvino": "OpenVINO",
                    "webgpu": "WebGPU", "coreml": "CoreML", "nvtensorrtrtx": "NvTensorRtRtx"}


class OrtGenaiBackend:
    name = "ort-genai"

    def __init__(self) -> None:
        self._og: Any = None
        self._model: Any = None
        self._generator: Any = None
        self._ep = "cpu"
        self._threads = 0

    def load(self, model_dir: Path, *, ep: str, threads: int) -> None:
        import onnxruntime_genai as og

        self._og = og
        self._ep, self._threads = ep, threads
        config = og.Config(str(model_dir))
        # Thread count is a session option only reachable through a config overlay.
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        if ep != "cpu":
            provider = _GENAI_PROVIDERS.get(ep)
            if provider is None:
                raise EdgebenchError(
                    f"execution provider {ep!r} is not supported by the ort-genai backend "
                    f"(it knows cpu, {', '.join(sorted(_GENAI_PROVIDERS))}); use --backend ort")
            config.clear_providers()
            config.append_provider(provider)
        try:
            self._model = og.Model(config)
        except Exception as exc:  # onnxruntime-genai raises plain RuntimeError
            raise EdgebenchError(
                f"onnxruntime-genai could not load {model_dir} with EP {ep}: "
                f"{str(exc).splitlines()[0]}") from None

    def begin(self, max_length: int, *, ignore_eos: bool = True) -> None:
        og = self._og
        self._generator = None  # free the previous generator's KV cache first
        params = og.GeneratorParams(self._model)
        # min_length = max_length masks EOS: benchmarks generate a fixed length (like llama-bench).
        params.set_search_options(max_length=max_length,
                                  min_length=max_length if ignore_eos else 0, do_sample=False)
        self._generator = og.Generator(self._model, params)

    def prefill(self, prompt_ids: Sequence[int]) -> None:
        import numpy as np

        self._generator.append_tokens(np.asarray(prompt_ids, dtype=np.int32))

    def next_token(self) -> int:
        self._generator.generate_next_token()
        return int(self._generator.get_next_tokens()[0])

    def close(self) -> None:
        self._generator = None
        self._model = None

    def versions(self) -> BackendVersions:
        import onnxruntime_genai as og

        try:
            import onnxruntime as ort
            ort_version = ort.__version__
        except ImportError:  # genai bundles its own onnxruntime
            ort_version = "bundled"
        return BackendVersions(og.__version__, ort_version, og.__version__)

    def ep_options(self) -> dict[str, str]:
        return {"intra_op_num_threads": str(self._threads), "inter_op_num_threads": "1"}
