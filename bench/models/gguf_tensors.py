"""A GGUF's tensors by name, memory-mapped, as MatMulNBits weights or float arrays.

Reads the file with `numpy.memmap` at the offsets the stdlib header parser found
(gguf_model.read_header), so building the `gguf` variant needs neither the `gguf` package nor
torch. The ggml type ids are the file format's (ggml.h `enum ggml_type`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import EdgebenchError
from bench.models import gguf_blocks
from bench.models.gguf_model import GgufHeader

if TYPE_CHECKING:
    import numpy as np

# ggml type id -> name, for the types edgebench reads (their block sizes: gguf_blocks)
GGML_TYPES: dict[int, str] = {0: "F32", 1: "F16", 30: "BF16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0",
                              8: "Q8_0", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type_name: str  # "Q4_K", "F32", ... or "ggml type N" when edgebench cannot read it
    dims: tuple[int, ...]  # ggml order: dims[0] is the row length (K)
    offset: int  # of its data in the file


class GgufTensors:
    """Lazily read tensors of one GGUF; `nbits(name)` and `floats(name)` copy out of the map."""

    def __init__(self, path: Path, header: GgufHeader) -> None:
        import numpy as np

        self.path = path
        self.infos: dict[str, TensorInfo] = {}
        for (name, dims, _size), kind, offset in zip(header.tensors, header.types,
                                                     header.offsets):
            type_name = GGML_TYPES.get(kind, f"ggml type {kind}")
            self.infos[name] = TensorInfo(name, type_name, dims, offset)
        self._map = np.memmap(path, dtype=np.uint8, mode="r")

    def __contains__(self, name: str) -> bool:
        return name in self.infos

    def info(self, name: str) -> TensorInfo:
        try:
            return self.infos[name]
        except KeyError:
            raise EdgebenchError(f"{self.path.name} has no tensor {name}: it is not a complete "
                                 "model of its architecture; fetch it again") from None

    def _raw(self, info: TensorInfo) -> np.ndarray:
        layout = gguf_blocks.LAYOUTS.get(info.type_name)
        if layout is None and info.type_name not in gguf_blocks.FLOAT_TYPES:
            raise EdgebenchError(
                f"{info.name} in {self.path.name} is of {info.type_name}, which the gguf "
                f"variant cannot carry losslessly (it reads {', '.join(gguf_blocks.LAYOUTS)}, "
                f"{', '.join(gguf_blocks.FLOAT_TYPES)}); use the int4 variant")
        count = math.prod(int(d) for d in info.dims)
        nbytes = (count // layout.elems * layout.type_size if layout is not None
                  else count * gguf_blocks.FLOAT_TYPES[info.type_name])
        if info.offset + nbytes > self._map.size:
            raise EdgebenchError(f"{self.path.name} ends inside tensor {info.name}: the file is "
                                 "truncated; fetch it again")
        return self._map[info.offset:info.offset + nbytes]

    def _shape(self, info: TensorInfo) -> tuple[int, int]:
        return math.prod(int(d) for d in info.dims[1:]), int(info.dims[0])

    def is_quantized(self, name: str) -> bool:
        return gguf_blocks.is_quantized(self.info(name).type_name)

    def nbits(self, name: str) -> gguf_blocks.NBitsWeight:
        """A quantized [N, K] matrix as MatMulNBits weights (bit-exact, gguf_blocks)."""
        info = self.info(name)
        return gguf_blocks.to_nbits(self._raw(info), info.type_name, self._shape(info))

    def floats(self, name: str) -> np.ndarray:
        """An unquantized tensor as float32: 1-D tensors flat, matrices [N, K]."""
        info = self.info(name)
        if len(info.dims) == 1:
            return gguf_blocks.float_weight(self._raw(info), info.type_name,
                                            (1, int(info.dims[0])))[0]
        return gguf_blocks.float_weight(self._raw(info), info.type_name, self._shape(info))
