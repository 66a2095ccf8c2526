"""One linear layer from an NBitsWeight as ONNX nodes: MatMulNBits, plus the affine term.

Affine GGUF types (w = scale*q + block_min) run as
    y = MatMulNBits(x; q, scale, zp) + (BlockSum(x) @ block_min.T)
where BlockSum reshapes x [..., K] into [..., K/block_size, block_size] and sums the last axis.
The extra MatMul reads block_min (float32 [K/block_size, N]): 1/block_size of a float weight.
Float zero points would fold the same term into MatMulNBits but are ~130x slower on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

    from bench.models.gguf_blocks import NBitsWeight

MS_DOMAIN = "com.microsoft"
OPSET = 21


@dataclass(frozen=True)
class LinearNodes:
    """Nodes and initializers of one linear layer, to splice into a larger graph."""

    nodes: list
    initializers: list


def linear_nodes(w: NBitsWeight, x: str, y: str, prefix: str, *,
                 accuracy_level: int = 0) -> LinearNodes:
    """x [..., K] -> y [..., N]; every name this adds starts with `prefix`."""
    import numpy as np
    from onnx import helper, numpy_helper

    def init(name: str, value) -> str:
        inits.append(numpy_helper.from_array(value, f"{prefix}{name}"))
        return f"{prefix}{name}"

    inits: list = []
    inputs = [x, init("B", w.b), init("scales", w.scales.reshape(-1))]
    if w.zero_points is not None:
        inputs.append(init("zero_points", w.zero_points.reshape(-1)))
    mm_out = y if w.block_min is None else f"{prefix}y_q"
    nodes = [helper.make_node(
        "MatMulNBits", inputs, [mm_out], name=f"{prefix}MatMulNBits", domain=MS_DOMAIN,
        K=w.k, N=w.n, bits=w.bits, block_size=w.block_size, accuracy_level=accuracy_level)]
    if w.block_min is not None:
        p = prefix
        shape = init("block_shape", np.array([-1, w.n_blocks, w.block_size], dtype=np.int64))
        axes = init("sum_axes", np.array([-1], dtype=np.int64))
        mins_t = init("block_min_t", np.ascontiguousarray(w.block_min.T, dtype=np.float32))
        nodes += [
            helper.make_node("Reshape", [x, shape], [f"{p}x_blocks"], name=f"{p}BlockReshape"),
            helper.make_node("ReduceSum", [f"{p}x_blocks", axes], [f"{p}block_sum"],
                             name=f"{p}BlockSum", keepdims=0),
            helper.make_node("MatMul", [f"{p}block_sum", mins_t], [f"{p}min_term_2d"],
                             name=f"{p}MinMatMul"),
            helper.make_node("Shape", [mm_out], [f"{p}y_shape"], name=f"{p}OutShape"),
            helper.make_node("Reshape", [f"{p}min_term_2d", f"{p}y_shape"], [f"{p}min_term"],
                             name=f"{p}MinReshape"),
            helper.make_node("Add", [mm_out, f"{p}min_term"], [y], name=f"{p}AddMin"),
        ]
    return LinearNodes(nodes, inits)


def linear_model(w: NBitsWeight, *, accuracy_level: int = 0) -> onnx.ModelProto:
    """A model with input x [M, K] float32 and output y [M, N]: one GGUF linear layer."""
    import onnx
    from onnx import TensorProto, helper

    part = linear_nodes(w, "x", "y", "linear/", accuracy_level=accuracy_level)
    graph = helper.make_graph(
        part.nodes, "gguf_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["M", w.k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", w.n])],
        initializer=part.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid(MS_DOMAIN, 1)])
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)
    return model
