"""Backends by name, imported only when asked for (so `edgebench --help` loads no runtime).

Adding a backend is one module in this folder plus one line in BACKENDS. The value names the
class as "module:Class" and, optionally, the packages it needs with the hint shown when one is
missing.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Sequence

from bench.errors import EdgebenchError
from bench.run.backends.base import Backend


@dataclass(frozen=True)
class BackendEntry:
    target: str  # "bench.run.backends.ort:OrtBackend"
    needs: tuple[str, ...] = ()  # modules that must import
    hint: str = ""  # what to do when one does not
    # which model records it runs (ModelFolder "onnx", a GGUF file "gguf", a Hugging Face
    # folder "hf"), and which variant names of those (None: all); the plan skips other pairs
    runtime: str = "onnx"
    variants: tuple[str, ...] | None = None
    why_not: str = ""  # the one-line reason printed for a skipped pair


BACKENDS: dict[str, BackendEntry] = {
    "ort-genai": BackendEntry("bench.run.backends.ort_genai:OrtGenaiBackend",
                              ("onnxruntime_genai",),
                              "pip install onnxruntime-genai, or use --backend ort",
                              why_not="runs the ONNX variants (int4, int8, fp32)"),
    "ort": BackendEntry("bench.run.backends.ort:OrtBackend", ("onnxruntime",),
                        "pip install onnxruntime",
                        why_not="runs the ONNX variants (int4, int8, fp32)"),
    "llamacpp": BackendEntry("bench.run.backends.llamacpp:LlamaCppBackend", ("llama_cpp",),
                             "pip install 'edgebench[llamacpp]' (compiles llama.cpp: "
                             "docs/backends.md gives the build flags)", runtime="gguf",
                             variants=("gguf",),
                             why_not="runs the recipe's original GGUF (variant gguf)"),
    "torch": BackendEntry("bench.run.backends.torch_hf:TorchBackend", ("torch", "transformers"),
                          "pip install 'edgebench[convert]' (torch + transformers; a CUDA "
                          "build of torch for --ep cuda)", runtime="hf",
                          variants=("fp32", "bf16"),
                          why_not="runs fp32 or bf16 of the Hugging Face folder"),
}


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def default_backends() -> tuple[str, ...]:
    """ort-genai and ort where onnxruntime-genai is installed, else ort: the base install (no
    genai extra) must run by default. find_spec looks without importing the runtime."""
    if importlib.util.find_spec("onnxruntime_genai") is not None:
        return ("ort-genai", "ort")
    return ("ort",)


def check_backend_names(names: Sequence[str]) -> None:
    """Fails before anything is measured on a name no backend has."""
    for name in names:
        if name not in BACKENDS:
            raise EdgebenchError(f"unknown backend {name!r}; available: "
                                 f"{', '.join(BACKENDS)}")


def entry(name: str) -> BackendEntry:
    check_backend_names([name])
    return BACKENDS[name]


def make_backend(name: str) -> Backend:
    """A fresh, unloaded backend instance; one line of help when its runtime is missing."""
    check_backend_names([name])
    entry = BACKENDS[name]
    module_name, _, attr = entry.target.partition(":")
    try:
        for needed in entry.needs:
            importlib.import_module(needed)
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EdgebenchError(f"backend {name} needs {exc.name or 'a missing package'}: "
                             f"{entry.hint}") from None
    return getattr(module, attr)()
