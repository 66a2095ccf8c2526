"""GGUF blocks -> MatMulNBits: bit-exact weights against gguf's reference dequantization, and
ONNX Runtime's output within fp32 rounding of x @ W.T.

Tolerance of (b): for every output element, |y - y_exact| <= 2 * (K + 4) * u * (|x| @ |W|.T)
with u = 2^-24 and |W| = |scale * (q - zp)| + |block_min|: the worst-case bound of summing K
fp32 products in any order (plus the dequantization's own roundings), doubled. It holds for any
kernel and thread count, and a wrong code, nibble, scale or zero point breaks it by orders of
magnitude (observed: at most ~2e-3 of the bound; a Q6_K zero point off by one: 280x the bound).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.errors import EdgebenchError
from bench.models import gguf_blocks, nbits_pack

gguf = pytest.importorskip("gguf", reason="gguf (the convert extra) is the reference")
onnx = pytest.importorskip("onnx", reason="onnx (the convert extra) builds the test graphs")

from bench.models import gguf_onnx  # noqa: E402  (needs onnx)
from tests.gguf_factory import K_QUANTS, LEGACY, random_tensor  # noqa: E402

T = gguf.GGMLQuantizationType
ALL = LEGACY + K_QUANTS
EXPECTED = {  # bits, block_size, zero point, affine, widened
    # every type at MatMulNBits' default zero point 2^(bits-1): no zero-point input (8-bit codes
    # shifted; 4-bit affine blocks fold the shift into the minimum where that is exact)
    "Q4_0": (4, 32, 8, False, False),
    "Q4_1": (4, 32, 8, True, False),
    "Q5_0": (8, 32, 128, False, True),
    "Q8_0": (8, 32, 128, False, False),
    "Q4_K": (4, 32, 8, True, False),
    "Q5_K": (8, 32, 128, True, True),
    "Q6_K": (8, 16, 128, False, True),
}
U = 2.0 ** -24


def _weight(name: str, n: int = 40, k: int = 512, seed: int = 0):
    raw = random_tensor(name, n, k, seed)
    return raw, gguf_blocks.to_nbits(raw, name, (n, k))


@pytest.mark.parametrize("name", ALL)
def test_weights_are_bit_exact(name):
    raw, w = _weight(name)
    ref = gguf.quants.dequantize(raw, T[name])
    mine = gguf_blocks.dequantize(w)
    assert mine.dtype == np.float32 and mine.shape == ref.shape == (40, 512)
    assert np.array_equal(mine.view(np.uint32), ref.astype(np.float32).view(np.uint32))


def _run(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _abs_weight(w) -> np.ndarray:
    q = nbits_pack.unpack_codes(w.b, w.bits).reshape(w.n, w.n_blocks, w.block_size)
    mag = np.abs(w.scales[..., None].astype(np.float64) * (q.astype(np.float64) - w.zero_point))
    if w.block_min is not None:
        mag = mag + np.abs(w.block_min[..., None].astype(np.float64))
    return mag.reshape(w.n, w.k)


def _check_matmul(w, x: np.ndarray, y: np.ndarray) -> None:
    ref = gguf_blocks.dequantize(w).astype(np.float64)
    flat_x = x.reshape(-1, w.k).astype(np.float64)
    exact = flat_x @ ref.T
    bound = 2 * (w.k + 4) * U * (np.abs(flat_x) @ _abs_weight(w).T)
    err = np.abs(y.reshape(exact.shape).astype(np.float64) - exact)
    assert np.all(err <= bound), f"worst error / bound = {(err / bound).max():.3g}"


@pytest.mark.parametrize("name", ALL)
def test_onnxruntime_matches_dequantized_matmul(name):
    _, w = _weight(name, seed=1)
    x = np.random.default_rng(2).standard_normal((3, w.k)).astype(np.float32)
    y = _run(gguf_onnx.linear_model(w, accuracy_level=0), x)
    assert y.shape == (3, w.n)
    _check_matmul(w, x, y)


def test_odd_block_count_pads_packed_zero_points():
    """Q4_1 with K=96 whose first block's m + 8d is not exact in float32 (d = 1, m = 2^-24):
    the shift cannot be folded, so three 4-bit zero points (0) per row, the last byte half
    used, and the weights still bit-exact."""
    raw = random_tensor("Q4_1", 24, 96, seed=3).copy()
    raw[0, 0:2] = np.array([1.0], dtype=np.float16).view(np.uint8)
    raw[0, 2:4] = np.array([2.0 ** -24], dtype=np.float16).view(np.uint8)
    w = gguf_blocks.to_nbits(raw, "Q4_1", (24, 96))
    assert w.zero_point == 0 and w.zero_points.shape == (24, 2)
    assert np.array_equal(gguf_blocks.dequantize(w), gguf.quants.dequantize(raw, T.Q4_1))
    x = np.random.default_rng(4).standard_normal((2, 96)).astype(np.float32)
    _check_matmul(w, x, _run(gguf_onnx.linear_model(w), x))


def test_decomposition_takes_batch_and_sequence_axes():
    _, w = _weight("Q4_K", n=16, k=256, seed=5)
    part = gguf_onnx.linear_nodes(w, "x", "y", "l0/", x_rank=3)
    h, f32 = onnx.helper, onnx.TensorProto.FLOAT
    graph = h.make_graph(part.nodes, "g", [h.make_tensor_value_info("x", f32, [2, 3, 256])],
                         [h.make_tensor_value_info("y", f32, [2, 3, 16])],
                         initializer=part.initializers)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", gguf_onnx.OPSET),
                                               h.make_opsetid(gguf_onnx.MS_DOMAIN, 1)])
    model.ir_version = 10
    x = np.random.default_rng(6).standard_normal((2, 3, 256)).astype(np.float32)
    y = _run(model, x)
    assert y.shape == (2, 3, 16)
    _check_matmul(w, x, y)
    assert all(i.name.startswith("l0/") for i in part.initializers)


@pytest.mark.parametrize("name", ALL)
def test_bits_block_size_and_zero_points(name):
    bits, block_size, zp, affine, widened = EXPECTED[name]
    _, w = _weight(name)
    assert (w.bits, w.block_size, w.zero_point) == (bits, block_size, zp)
    assert w.b.dtype == np.uint8 and w.b.shape == (40, 512 // block_size, block_size * bits // 8)
    assert w.scales.dtype == np.float32 and w.scales.shape == (40, 512 // block_size)
    assert (w.widened_from is not None) == widened
    default = 1 << (bits - 1)
    if zp == default:
        assert w.zero_points is None  # the op's default 2^(bits-1)
    else:
        unpacked = nbits_pack.unpack_zero_points(w.zero_points, bits, w.n_blocks)
        assert np.all(unpacked == zp)
    assert (w.block_min is not None) == affine
    node = gguf_onnx.linear_model(w).graph.node[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert (node.op_type, attrs["bits"], attrs["block_size"]) == ("MatMulNBits", bits, block_size)
    assert attrs["accuracy_level"] == 0


@pytest.mark.parametrize("name", [n for n, e in EXPECTED.items() if e[3]])
def test_affine_types_never_use_float_zero_points(name):
    _, w = _weight(name)
    assert w.zero_points is None and w.block_min is not None  # the shift is in the minimum
    model = gguf_onnx.linear_model(w)
    mm = next(n for n in model.graph.node if n.op_type == "MatMulNBits")
    assert len(mm.input) == 3  # no zero points at all, so none in float
    assert {n.op_type for n in model.graph.node} == {"MatMulNBits", "MatMul", "Gemm"}  # 2-D x


@pytest.mark.parametrize("name", ["F32", "F16", "BF16"])
def test_float_types_pass_through(name):
    data = np.random.default_rng(7).standard_normal((6, 64)).astype(np.float32)
    if name == "BF16":
        raw = (data.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    else:
        raw = gguf.quants.quantize(data, T[name]).view(np.uint8)
    assert not gguf_blocks.is_quantized(T[name])
    out = gguf_blocks.float_weight(raw, name, (6, 64))
    assert np.array_equal(out, gguf.quants.dequantize(raw, T[name]).reshape(6, 64))
    with pytest.raises(EdgebenchError, match="not quantized"):
        gguf_blocks.to_nbits(raw, name, (6, 64))


def test_errors_are_one_line():
    raw, _ = _weight("Q8_0")
    with pytest.raises(EdgebenchError, match="damaged"):
        gguf_blocks.to_nbits(raw[:, :-1], "Q8_0", (40, 512))
    with pytest.raises(EdgebenchError, match="no lossless mapping"):
        gguf_blocks.to_nbits(raw, T.Q2_K, (40, 512))
    with pytest.raises(EdgebenchError, match="is quantized"):
        gguf_blocks.float_weight(raw, "Q8_0", (40, 512))


@pytest.mark.parametrize("bits", [4, 8])
def test_packing_round_trips_low_nibble_first(bits):
    rng = np.random.default_rng(8)
    q = rng.integers(0, 1 << bits, (5, 64), dtype=np.uint8)
    b = nbits_pack.pack_codes(q, bits, 32)
    assert b.shape == (5, 2, 32 * bits // 8)
    assert np.array_equal(nbits_pack.unpack_codes(b, bits), q)
    if bits == 4:
        assert b[0, 0, 0] == q[0, 0] | (q[0, 1] << 4)
    zp = rng.integers(0, 1 << bits, (5, 3), dtype=np.uint8)
    packed = nbits_pack.pack_zero_points(zp, bits)
    assert packed.shape == (5, 2 if bits == 4 else 3)
    assert np.array_equal(nbits_pack.unpack_zero_points(packed, bits, 3), zp)
