"""Where the ort backend's buffers live and what type they have, decided once per model.

The KV cache and the logits buffer are allocated in the memory of the execution provider's
device (CUDA memory for the CUDA EP), so a decode step never moves the cache through host memory;
only the greedy selection reads the last position's logits back. The choices are small pure
functions so they are tested without a GPU (docs/backends.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from bench.errors import EdgebenchError

# edgebench EP name -> OrtValue device type of the memory that EP computes in. EPs missing here
# take host memory at their boundary (OpenVINO, QNN, CoreML, XNNPACK, NNAPI, Azure) and copy
# what they need themselves; ROCm/MIGraphX and WebGPU are left there until they can be tested.
DEVICE_MEMORY = {
    "cuda": "cuda",
    "tensorrt": "cuda",
    "dml": "dml",
}

# ONNX element type as onnxruntime's NodeArg.type spells it -> numpy dtype name
_NUMPY_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
}

# What to install for an EP the installed onnxruntime lacks or cannot start. One line each.
_INSTALL = {
    "cuda": "onnxruntime-gpu with its CUDA and cuDNN libraries (pip uninstall onnxruntime; "
            "pip install 'onnxruntime-gpu[cuda,cudnn]'; an NVIDIA driver must be present)",
    "tensorrt": "onnxruntime-gpu plus the NVIDIA TensorRT libraries it was built against "
                "(pip uninstall onnxruntime; pip install onnxruntime-gpu tensorrt)",
    "dml": "onnxruntime-directml on Windows (pip uninstall onnxruntime; "
           "pip install onnxruntime-directml)",
    "openvino": "onnxruntime-openvino (pip uninstall onnxruntime; "
                "pip install onnxruntime-openvino)",
    "qnn": "onnxruntime-qnn on a Qualcomm device (pip install onnxruntime-qnn)",
    "migraphx": "onnxruntime-migraphx with AMD ROCm (pip install onnxruntime-migraphx)",
    "rocm": "an onnxruntime build with ROCm (recent releases offer MIGraphX instead: "
            "onnxruntime-migraphx)",
    "coreml": "the standard onnxruntime wheel on macOS (pip install onnxruntime)",
}


def device_type(ep: str) -> str:
    """OrtValue device type ('cpu', 'cuda', 'dml') for the buffers an EP should compute in."""
    return DEVICE_MEMORY.get(ep, "cpu")


def install_hint(ep: str) -> str:
    """The package (and command) that brings an EP, for one-line errors."""
    return _INSTALL.get(ep, f"an onnxruntime package that ships the {ep} execution provider")


def numpy_dtype(onnx_type: str, what: str) -> Any:
    """numpy dtype for an element type from the session's metadata ('tensor(float16)')."""
    import numpy as np

    name = _NUMPY_DTYPES.get(onnx_type)
    if name is None:
        raise EdgebenchError(
            f"the model declares {what} as {onnx_type}; the ort backend handles "
            f"{', '.join(_NUMPY_DTYPES)} (use --backend ort-genai for this model)")
    return np.dtype(name)


def last_position_only(shape: Sequence[Any]) -> bool:
    """Whether a logits output of this declared shape holds only the last position.

    Models built with a pruned LM head (edgebench's default) declare [batch, 1, vocab]; their
    prefill writes into the one preallocated step buffer. [batch, sequence, vocab] needs a
    buffer as long as the prompt.
    """
    return len(shape) == 3 and shape[1] == 1


@dataclass(frozen=True)
class Buffer:
    """One preallocated tensor: the OrtValue bound to the session, and a host view if any.

    `host` shares memory with `value` when the buffer lives in host memory (read it directly,
    no copy); it is None for device memory, which is read back with value.numpy().
    """

    value: Any  # onnxruntime.OrtValue
    host: Any  # numpy.ndarray | None


def allocate(shape: Sequence[int], dtype: Any, device: str, device_id: int = 0, *,
             host_view: bool = True) -> Buffer:
    """A zeroed tensor in `device` memory ('cpu', 'cuda', 'dml'), for IO binding.

    On 'cpu' it is a numpy array read without a copy; host_view=False gives onnxruntime-owned
    memory read back like a device's instead, which runs the GPU path on any machine (tests).
    """
    import numpy as np
    import onnxruntime as ort

    zeros = np.zeros(tuple(shape), dtype=dtype)
    if device == "cpu" and host_view:
        return Buffer(ort.OrtValue.ortvalue_from_numpy(zeros), zeros)
    try:
        value = ort.OrtValue.ortvalue_from_shape_and_type(tuple(shape), zeros.dtype.type,
                                                          device, device_id)
        value.update_inplace(zeros)  # device memory starts undefined; the host path starts at 0
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise EdgebenchError(f"onnxruntime could not allocate {device}:{device_id} memory for "
                             f"the KV cache and logits: {reason}") from None
    return Buffer(value, None)
