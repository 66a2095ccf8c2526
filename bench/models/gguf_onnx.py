"""One linear layer from an NBitsWeight as ONNX nodes: MatMulNBits, plus the affine term.

Affine GGUF types (w = scale*q + block_min) run as
    y = MatMulNBits(x; q, scale, zp) + (BlockSum(x) @ block_min.T)
where BlockSum reshapes x [..., K] into [..., K/block_size, block_size] and sums the last axis
(one BlockSum serves every matrix that reads the same x with the same block size).
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


@dataclass(frozen=True)
class WeightNames:
    """Initializer names of one NBitsWeight, registered once and shared by every user (a tied
    head and its embedding lookup read the same bytes). scales [N, nb]; zero_points [N, zp
    bytes] or None; block_min_t [nb, N] or None."""

    b: str
    scales: str
    zero_points: str | None
    block_min_t: str | None


def weight_initializers(w: NBitsWeight, prefix: str) -> tuple[WeightNames, list]:
    """The initializers of `w` (names start with `prefix`)."""
    import numpy as np
    from onnx import numpy_helper

    inits: list = []

    def init(name: str, value) -> str:
        inits.append(numpy_helper.from_array(value, f"{prefix}{name}"))
        return f"{prefix}{name}"

    names = WeightNames(
        b=init("B", w.b), scales=init("scales", w.scales),
        zero_points=None if w.zero_points is None else init("zero_points", w.zero_points),
        block_min_t=None if w.block_min is None else init(
            "block_min_t", np.ascontiguousarray(w.block_min.T, dtype=np.float32)))
    return names, inits


def block_indicator(k: int, block_size: int):
    """S [K, K/block_size] of 0/1: x @ S sums x over each block (one MatMul, no reshape)."""
    import numpy as np

    return np.kron(np.eye(k // block_size, dtype=np.float32),
                   np.ones((block_size, 1), dtype=np.float32))


def matmul_nodes(w: NBitsWeight, names: WeightNames, x: str, y: str, prefix: str, *,
                 accuracy_level: int = 0, x_rank: int = 2, block_sum: str | None = None,
                 indicator: str | None = None) -> LinearNodes:
    """x [..., K] (rank `x_rank`) -> y [..., N] reading the registered weight `names`.

    The affine term: for a 2-D x, BlockSum = x @ S (S the block indicator, `indicator` names a
    shared one) and one Gemm adds BlockSum @ block_min_t to the MatMulNBits output; for higher
    ranks, Reshape to [..., n_blocks, block_size], ReduceSum, MatMul and Add. `block_sum` names a
    BlockSum of the same x and block size computed earlier (q/k/v and gate/up share one); else
    this call computes it as `{prefix}block_sum`. Few ops matter: at M=1 each costs about as
    much as reading 60 kB."""
    import numpy as np
    from onnx import helper, numpy_helper

    p = prefix
    inputs = [x, names.b, names.scales] + ([names.zero_points] if names.zero_points else [])
    mm_out = y if names.block_min_t is None else f"{p}y_q"
    nodes = [helper.make_node(
        "MatMulNBits", inputs, [mm_out], name=f"{p}MatMulNBits", domain=MS_DOMAIN,
        K=w.k, N=w.n, bits=w.bits, block_size=w.block_size, accuracy_level=accuracy_level)]
    inits: list = []
    if names.block_min_t is None:
        return LinearNodes(nodes, inits)
    if block_sum is None:
        block_sum = f"{p}block_sum"
        if x_rank == 2:
            if indicator is None:
                indicator = f"{p}block_indicator"
                inits.append(numpy_helper.from_array(block_indicator(w.k, w.block_size),
                                                     indicator))
            nodes.append(helper.make_node("MatMul", [x, indicator], [block_sum],
                                          name=f"{p}BlockSum"))
        else:
            shape = [0] * (x_rank - 1) + [w.n_blocks, w.block_size]
            inits += [numpy_helper.from_array(np.array(shape, np.int64), f"{p}block_shape"),
                      numpy_helper.from_array(np.array([-1], np.int64), f"{p}sum_axes")]
            nodes += [
                helper.make_node("Reshape", [x, f"{p}block_shape"], [f"{p}x_blocks"],
                                 name=f"{p}BlockReshape"),
                helper.make_node("ReduceSum", [f"{p}x_blocks", f"{p}sum_axes"], [block_sum],
                                 name=f"{p}BlockSum", keepdims=0)]
    if x_rank == 2:
        nodes.append(helper.make_node("Gemm", [block_sum, names.block_min_t, mm_out], [y],
                                      name=f"{p}MinGemm"))
    else:
        nodes += [
            helper.make_node("MatMul", [block_sum, names.block_min_t], [f"{p}min_term"],
                             name=f"{p}MinMatMul"),
            helper.make_node("Add", [mm_out, f"{p}min_term"], [y], name=f"{p}AddMin")]
    return LinearNodes(nodes, inits)


def linear_nodes(w: NBitsWeight, x: str, y: str, prefix: str, *,
                 accuracy_level: int = 0, x_rank: int = 2) -> LinearNodes:
    """x [..., K] -> y [..., N]; every name this adds starts with `prefix`."""
    names, inits = weight_initializers(w, prefix)
    part = matmul_nodes(w, names, x, y, prefix, accuracy_level=accuracy_level, x_rank=x_rank)
    return LinearNodes(part.nodes, inits + part.initializers)


def concat_n(weights: list[NBitsWeight]) -> NBitsWeight | None:
    """Weights sharing K and layout stacked along N (one MatMulNBits for q, k and v), or None
    when their layouts differ (then each runs alone)."""
    import numpy as np
    from dataclasses import replace

    first = weights[0]
    same = all((w.k, w.bits, w.block_size, w.zero_point, w.block_min is None)
               == (first.k, first.bits, first.block_size, first.zero_point,
                   first.block_min is None) for w in weights)
    if not same:
        return None
    cat = lambda xs: None if xs[0] is None else np.concatenate(xs, axis=0)  # noqa: E731
    return replace(first, source_type="+".join(dict.fromkeys(w.source_type for w in weights)),
                   b=cat([w.b for w in weights]), scales=cat([w.scales for w in weights]),
                   zero_points=cat([w.zero_points for w in weights]),
                   block_min=cat([w.block_min for w in weights]))


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
