"""What one decode step reads from memory: the weight bytes of a model folder, from its ONNX graph.

Decode is memory-bound: every generated token reads every weight matrix once (all layers and the
output head, at their stored precision with their scales and zero points), one row of the
embedding table, and the KV cache so far. Dividing the machine's read bandwidth by these bytes
gives the decode speed a perfect implementation would reach (docs/roofline.md).

The graph is read with the `onnx` package (the `convert` extra) without its external data: only
the initializers' shapes and dtypes are needed, never the weights. The build step stores the
result in the manifest (`manifest_entries`), so running a model needs no `onnx`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

# Bits per element of each ONNX tensor type (TensorProto.DataType names); packed sub-byte types
# (INT4, UINT4, FLOAT4E2M1) take half a byte.
_BITS = {"FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32,
         "INT64": 64, "BOOL": 8, "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64,
         "COMPLEX64": 64, "COMPLEX128": 128, "BFLOAT16": 16, "FLOAT8E4M3FN": 8,
         "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8, "UINT4": 4, "INT4": 4,
         "FLOAT4E2M1": 4}
# Ops whose constant inputs are weight matrices read whole every step (weights, quantized
# blocks, scales, zero points, biases).
MATRIX_OPS = frozenset({"MatMul", "Gemm", "FusedMatMul", "MatMulNBits", "MatMulBnb4",
                        "MatMulFpQ4", "MatMulInteger", "MatMulIntegerToFloat",
                        "DynamicQuantizeMatMul", "QLinearMatMul"})
# Embedding lookups: op -> (data input, other constant inputs of the same table); a lookup reads
# one row of the table per token.
EMBEDDING_OPS = {"Gather": (0, ()), "GatherBlockQuantized": (0, (2, 3))}
# Ops between an initializer and its user that change only its layout or type.
_PASS_THROUGH = frozenset({"Transpose", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze",
                           "Flatten"})

# Manifest keys written by `edgebench models build` (bench/models/build.py).
MANIFEST_KEYS = ("weight_bytes_per_token", "embedding_row_bytes", "kv_bytes_per_context_token")


@dataclass(frozen=True)
class WeightFootprint:
    """Bytes one decode step reads besides activations, from a model folder's graph."""

    weight_bytes_per_token: int  # every matrix (layers + head) + one row of each embedding table
    embedding_row_bytes: int  # the embedding part: one row per table (tied to the head or not)
    kv_bytes_per_context_token: int | None  # layers x 2 x kv_heads x head_size x dtype bytes
    # constants counted nowhere (norm weights, rotary tables): None when read from a manifest
    unclassified_bytes: int | None = None

    @property
    def matrix_bytes(self) -> int:
        return self.weight_bytes_per_token - self.embedding_row_bytes

    def bytes_per_token(self, mean_context_tokens: float) -> int | None:
        """Weights plus the KV cache at the mean context of the decode steps; None when the
        KV cache's size is unknown (a graph without past inputs)."""
        if self.kv_bytes_per_context_token is None:
            return None
        return round(self.weight_bytes_per_token
                     + self.kv_bytes_per_context_token * max(mean_context_tokens, 0.0))

    def manifest_entries(self) -> dict[str, int]:
        entries = {"weight_bytes_per_token": self.weight_bytes_per_token,
                   "embedding_row_bytes": self.embedding_row_bytes}
        if self.kv_bytes_per_context_token is not None:
            entries["kv_bytes_per_context_token"] = self.kv_bytes_per_context_token
        return entries

    @staticmethod
    def from_manifest(manifest: dict[str, Any]) -> "WeightFootprint | None":
        """The footprint a build stored, or None when this manifest predates it or is odd."""
        values = {k: manifest.get(k) for k in MANIFEST_KEYS}
        if not all(isinstance(values[k], int) and not isinstance(values[k], bool)
                   and values[k] >= 0 for k in MANIFEST_KEYS[:2]):
            return None
        kv = values["kv_bytes_per_context_token"]
        return WeightFootprint(values["weight_bytes_per_token"], values["embedding_row_bytes"],
                               kv if isinstance(kv, int) and kv > 0 else None)


def mean_decode_context(n_prompt: int, n_generated: int) -> float:
    """Mean tokens in context over a test's decode steps: the prompt plus half the generation."""
    return n_prompt + n_generated / 2


def tensor_bytes(dims: Any, data_type: int) -> int:
    """Stored bytes of a tensor of this shape and ONNX element type (packed sub-byte types)."""
    from onnx import TensorProto

    bits = _BITS.get(TensorProto.DataType.Name(data_type))
    if bits is None:
        return 0  # strings and undefined: no weights
    return math.ceil(math.prod(int(d) for d in dims) * bits / 8)


def weight_bytes_per_token(model_dir: Path) -> WeightFootprint:
    """Reads `model_dir/model.onnx` (the genai_config's decoder file) without its weights."""
    import onnx
    from onnx import helper

    genai = _genai_decoder(model_dir)
    graph = onnx.load(str(model_dir / genai.get("filename", "model.onnx")),
                      load_external_data=False).graph
    tensors = {t.name: (tuple(t.dims), t.data_type) for t in graph.initializer}
    for node in (n for n in graph.node if n.op_type == "Constant"):  # tensors too
        for attr in (a for a in node.attribute if a.name == "value"):
            tensors[node.output[0]] = (tuple(attr.t.dims), attr.t.data_type)
    producer = {out: node for node in graph.node for out in node.output}

    def sources(name: str, axis: int | None = 0) -> Iterator[tuple[str, int | None]]:
        """The initializers behind a value, and where its `axis` lies in each (None: lost)."""
        while name not in tensors:
            node = producer.get(name)
            if node is None or not node.input:
                return
            if node.op_type == "DequantizeLinear":
                for x in node.input:
                    yield from sources(x, axis)
                return
            if node.op_type not in _PASS_THROUGH:
                return
            if node.op_type == "Transpose":
                perm = next((list(helper.get_attribute_value(a)) for a in node.attribute
                             if a.name == "perm"), None)
                axis = perm[axis] if perm and axis is not None else None
            elif node.op_type not in ("Cast", "Identity"):
                axis = 0 if axis == 0 else None  # reshapes keep the leading (row) axis only
            name = node.input[0]
        yield name, axis

    matrices: set[str] = set()
    tables: set[str] = set()
    row_bytes = 0.0
    for node in graph.node:
        if node.op_type in MATRIX_OPS:
            for x in node.input:
                matrices.update(n for n, _ in sources(x))
        elif node.op_type in EMBEDDING_OPS and node.input:
            data_index, others = EMBEDDING_OPS[node.op_type]
            data = [n for n, _ in sources(node.input[data_index])]
            if not data or len(tensors[data[0]][0]) < 2:
                continue  # a shape lookup, not an embedding table
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            name, axis = next(sources(node.input[data_index],
                                      int(attrs.get("gather_axis", attrs.get("axis", 0)))))
            dims = tensors[name][0]
            rows = dims[axis] if axis is not None and axis < len(dims) else max(dims)
            parts = [name] + [n for i in others if i < len(node.input) and node.input[i]
                              for n, _ in sources(node.input[i])]
            tables.update(parts)
            row_bytes += sum(tensor_bytes(*tensors[p]) for p in parts) / max(int(rows), 1)
    matrix_bytes = sum(tensor_bytes(*tensors[n]) for n in matrices)
    unclassified = sum(tensor_bytes(*v) for n, v in tensors.items()
                       if n not in matrices and n not in tables)
    row = math.ceil(row_bytes)
    return WeightFootprint(matrix_bytes + row, row, _kv_bytes(genai, graph), unclassified)


def manifest_entries(model_dir: Path) -> dict[str, int]:
    """What `edgebench models build` adds to the manifest (needs `onnx`, the convert extra)."""
    return weight_bytes_per_token(model_dir).manifest_entries()


def _genai_decoder(model_dir: Path) -> dict[str, Any]:
    try:
        decoder = json.loads((model_dir / "genai_config.json").read_text())["model"]["decoder"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return decoder if isinstance(decoder, dict) else {}


def _kv_bytes(decoder: dict[str, Any], graph: Any) -> int | None:
    """layers x 2 (key, value) x kv_heads x head_size x the past inputs' element bytes."""
    try:
        layers = int(decoder["num_hidden_layers"])
        kv_heads = int(decoder["num_key_value_heads"])
        head_size = int(decoder["head_size"])
        past = decoder["inputs"]["past_key_names"] % 0
    except (KeyError, TypeError, ValueError):
        return None
    inputs = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    if past not in inputs:
        return None
    element = tensor_bytes((1,), inputs[past])
    return layers * 2 * kv_heads * head_size * element or None
