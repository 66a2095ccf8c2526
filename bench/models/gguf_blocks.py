"""GGUF quantized blocks -> MatMulNBits weights, losslessly (pure numpy).

The `gguf` variant runs the GGUF's own weights: each block type becomes MatMulNBits codes,
scales and zero points that dequantize to exactly what llama.cpp's reference dequantizes
(`gguf.quants.dequantize`; the tests compare bit for bit). A weight is
    w = scale * (q - zero_point) + block_min        (block_min only for affine types)
per block of `block_size` elements along K. Symmetric types need no block_min. Affine types
(w = d*q + m) must not use float zero points (correct but ~130x slower in ONNX Runtime): they
run as MatMulNBits(x; q, scale, zp=0) + BlockSum(x) @ block_min.T, where BlockSum sums x over
each block (see gguf_onnx.py). ONNX Runtime's CPU kernels have 2, 4 and 8 bits, so 5- and 6-bit
codes are widened to 8 bits (same values; `widened_from` records it for the manifest).

| GGUF  | bits | block_size | zero point | block_min | note                                  |
|-------|------|------------|------------|-----------|---------------------------------------|
| Q4_0  | 4    | 32         | 8          | -         | repacked nibbles, exact               |
| Q4_1  | 4    | 32         | 0          | m         | affine                                |
| Q5_0  | 8    | 32         | 16         | -         | widened from 5 bits                   |
| Q8_0  | 8    | 32         | 128        | -         | int8 + 128                            |
| Q4_K  | 4    | 32         | 0          | -dmin*m   | affine; 8 sub-blocks of a 256 block   |
| Q5_K  | 8    | 32         | 0          | -dmin*m   | affine; widened from 5 bits           |
| Q6_K  | 8    | 16         | 32         | -         | 16 sub-blocks, scale d*sc (int8 sc)   |

Scales are the float32 products the reference computes (d, or d*sc for K-quants), so the
reconstruction repeats its rounding exactly. GGUF stores a [N, K] weight row-major with rows of
K (its shape lists K first), which is MatMulNBits's B layout: one output row per weight row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from bench.errors import EdgebenchError
from bench.models import nbits_pack

if TYPE_CHECKING:
    import numpy as np

QK_K = 256
FLOAT_TYPES = {"F32": 4, "F16": 2, "BF16": 2}


@dataclass(frozen=True)
class NBitsWeight:
    """One [N, K] weight as MatMulNBits inputs (and the affine correction where needed).

    b: uint8 [N, K/block_size, block_size*bits/8]; scales: float32 [N, K/block_size];
    zero_points: packed uint8 [N, ceil(K/block_size*bits/8)], or None when every block uses
    the op's default 2^(bits-1); zero_point: the one integer zero point all blocks share;
    block_min: float32 [N, K/block_size] added per block (y += BlockSum(x) @ block_min.T), or
    None for symmetric types; widened_from: the GGUF code width when bits were widened."""

    source_type: str
    bits: int
    block_size: int
    b: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray | None
    zero_point: int
    block_min: np.ndarray | None
    widened_from: str | None

    @property
    def n(self) -> int:
        return int(self.b.shape[0])

    @property
    def k(self) -> int:
        return int(self.b.shape[1]) * self.block_size

    @property
    def n_blocks(self) -> int:
        return int(self.b.shape[1])


@dataclass(frozen=True)
class _Layout:
    elems: int  # elements per GGUF block
    type_size: int  # bytes per GGUF block
    bits: int
    block_size: int  # MatMulNBits block (a GGUF sub-block)
    zero_point: int
    widened_from: str | None
    # blocks uint8 [B, type_size] -> (codes [B, elems], scale [B, subs], block_min or None)
    unpack: Callable


def _f16(raw: np.ndarray) -> np.ndarray:
    """Little-endian fp16 bytes [B, 2] -> float32 [B, 1], as the reference widens them."""
    import numpy as np

    return np.ascontiguousarray(raw).view(np.float16).astype(np.float32)


def _nibbles_split(qs: np.ndarray, width: int) -> np.ndarray:
    """ggml's nibble order: each run of `width` bytes holds `width` elements in its low
    nibbles, then the next `width` in its high nibbles. [B, m*width] -> [B, 2*m*width]."""
    import numpy as np

    b = qs.shape[0]
    qs = qs.reshape(b, -1, 1, width) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    return (qs & np.uint8(0x0F)).reshape(b, -1)


def _bits_of(qh: np.ndarray, n_bits: int, step: int, mask: int) -> np.ndarray:
    """High bits: [B, m, width] bytes -> [B, m, n_bits, width] fields `step` bits apart."""
    import numpy as np

    shifts = np.arange(0, n_bits * step, step, dtype=np.uint8).reshape(1, 1, n_bits, 1)
    return (qh[:, :, None, :] >> shifts) & np.uint8(mask)


def _q4_0(blocks: np.ndarray):
    return _nibbles_split(blocks[:, 2:], 16), _f16(blocks[:, :2]), None


def _q4_1(blocks: np.ndarray):
    return _nibbles_split(blocks[:, 4:], 16), _f16(blocks[:, :2]), _f16(blocks[:, 2:4])


def _q5_0(blocks: np.ndarray):
    import numpy as np

    qh = np.ascontiguousarray(blocks[:, 2:6]).view("<u4")  # bit j: the high bit of element j
    high = ((qh >> np.arange(32, dtype=np.uint32).reshape(1, 32)) & np.uint32(1)).astype(np.uint8)
    return _nibbles_split(blocks[:, 6:], 16) | (high << np.uint8(4)), _f16(blocks[:, :2]), None


def _q8_0(blocks: np.ndarray):
    import numpy as np

    return blocks[:, 2:] ^ np.uint8(0x80), _f16(blocks[:, :2]), None  # int8 + 128 as uint8


def _k_scale_min(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K's 12 bytes -> eight 6-bit scales and eight 6-bit mins (ggml get_scale_min_k4)."""
    import numpy as np

    p = packed.reshape(-1, 3, 4)
    d, m, md = p[:, 0], p[:, 1], p[:, 2]
    sc = np.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.astype(np.float32), mn.astype(np.float32)


def _k_affine(blocks: np.ndarray):
    d, dmin = _f16(blocks[:, 0:2]), _f16(blocks[:, 2:4])
    sc, mn = _k_scale_min(blocks[:, 4:16])
    return d * sc, -(dmin * mn)  # w = (d*sc)*q - dmin*m; the reference rounds the same way


def _q4_k(blocks: np.ndarray):
    scale, block_min = _k_affine(blocks)
    return _nibbles_split(blocks[:, 16:144], 32), scale, block_min


def _q5_k(blocks: np.ndarray):
    import numpy as np

    scale, block_min = _k_affine(blocks)
    b = blocks.shape[0]
    low = _nibbles_split(blocks[:, 48:176], 32)
    high = _bits_of(blocks[:, 16:48].reshape(b, 1, 32), 8, 1, 1).reshape(b, QK_K)
    return low | (high << np.uint8(4)), scale, block_min


def _q6_k(blocks: np.ndarray):
    import numpy as np

    b = blocks.shape[0]
    low = _nibbles_split(blocks[:, 0:128], 64)  # two halves of 128: 64 low, then 64 high nibbles
    high = _bits_of(blocks[:, 128:192].reshape(b, 2, 32), 4, 2, 3).reshape(b, QK_K)
    sc = np.ascontiguousarray(blocks[:, 192:208]).view(np.int8).astype(np.float32)
    return low | (high << np.uint8(4)), _f16(blocks[:, 208:210]) * sc, None


LAYOUTS: dict[str, _Layout] = {
    "Q4_0": _Layout(32, 18, 4, 32, 8, None, _q4_0),
    "Q4_1": _Layout(32, 20, 4, 32, 0, None, _q4_1),
    "Q5_0": _Layout(32, 22, 8, 32, 16, "Q5_0 (5-bit)", _q5_0),
    "Q8_0": _Layout(32, 34, 8, 32, 128, None, _q8_0),
    "Q4_K": _Layout(QK_K, 144, 4, 32, 0, None, _q4_k),
    "Q5_K": _Layout(QK_K, 176, 8, 32, 0, "Q5_K (5-bit)", _q5_k),
    "Q6_K": _Layout(QK_K, 210, 8, 16, 32, "Q6_K (6-bit)", _q6_k),
}


def type_name(qtype: object) -> str:
    """A GGUF type given as a name ("Q4_K"), a gguf.GGMLQuantizationType or its name."""
    return str(getattr(qtype, "name", qtype)).upper()


def is_quantized(qtype: object) -> bool:
    """False for the float types a GGUF keeps unquantized (norms, sometimes embeddings)."""
    return type_name(qtype) not in FLOAT_TYPES


def _raw_rows(raw: np.ndarray, shape: tuple[int, int], row_bytes: int, name: str) -> np.ndarray:
    import numpy as np

    n, k = shape
    flat = np.ascontiguousarray(raw).reshape(-1).view(np.uint8)
    if flat.size != n * row_bytes:
        raise EdgebenchError(f"{name} tensor of shape [{n}, {k}] needs {n * row_bytes} bytes, got "
                             f"{flat.size}: the GGUF is damaged; fetch it again")
    return flat.reshape(n, row_bytes)


def to_nbits(raw: np.ndarray, qtype: object, shape: tuple[int, int]) -> NBitsWeight:
    """A GGUF tensor's bytes of type `qtype` and its [N, K] shape -> MatMulNBits weights."""
    import numpy as np

    name = type_name(qtype)
    lay = LAYOUTS.get(name)
    if lay is None:
        kind = ("is not quantized: use float_weight" if name in FLOAT_TYPES
                else "has no lossless mapping")
        raise EdgebenchError(f"GGUF type {name} {kind}; supported: {', '.join(LAYOUTS)}")
    n, k = (int(s) for s in shape)
    if k % lay.elems:
        raise EdgebenchError(f"{name} rows of {k} are not whole {lay.elems}-element blocks: "
                             "the GGUF is damaged; fetch it again")
    rows = _raw_rows(raw, (n, k), k // lay.elems * lay.type_size, name)
    codes, scale, block_min = lay.unpack(rows.reshape(-1, lay.type_size))
    nb = k // lay.block_size
    scales = np.ascontiguousarray(scale, dtype=np.float32).reshape(n, nb)
    if block_min is not None:
        block_min = np.ascontiguousarray(block_min, dtype=np.float32).reshape(n, nb)
    codes, zero_point, block_min = _to_default_zero_point(
        codes.reshape(n, k), lay.bits, lay.zero_point, scales, block_min)
    zero_points = None if zero_point == 1 << (lay.bits - 1) else nbits_pack.pack_zero_points(
        np.full((n, nb), zero_point, dtype=np.uint8), lay.bits)
    b = nbits_pack.pack_codes(codes, lay.bits, lay.block_size)
    return NBitsWeight(name, lay.bits, lay.block_size, b, scales, zero_points, zero_point,
                       block_min, lay.widened_from)


def _to_default_zero_point(codes: np.ndarray, bits: int, zero_point: int, scales: np.ndarray,
                           block_min: np.ndarray | None):
    """Without a zero-point input MatMulNBits reads fewer bytes and takes its faster symmetric
    path, which assumes 2^(bits-1). 8-bit codes move there exactly (q + 128 - zp stays in
    0..255 for every GGUF type's range). 4-bit affine blocks cannot move their codes; they fold
    the shift into the block minimum instead, (m + 8d), where that sum is exact in float32 for
    every block, so each weight still rounds once, like llama.cpp's d*q + m."""
    import numpy as np

    default = 1 << (bits - 1)
    if zero_point == default:
        return codes, zero_point, block_min
    if bits == 8:
        return (codes.astype(np.int16) + (default - zero_point)).astype(np.uint8), default, \
            block_min
    if block_min is None or zero_point != 0:
        return codes, zero_point, block_min
    shifted = block_min + np.float32(default) * scales
    exact = (shifted.astype(np.float64) == block_min.astype(np.float64)
             + float(default) * scales.astype(np.float64))
    if not exact.all():
        return codes, zero_point, block_min
    return codes, default, shifted.astype(np.float32)


def float_weight(raw: np.ndarray, qtype: object, shape: tuple[int, int]) -> np.ndarray:
    """An unquantized GGUF tensor (F32, F16, BF16) as float32 [N, K], unchanged in value."""
    import numpy as np

    name = type_name(qtype)
    if name not in FLOAT_TYPES:
        raise EdgebenchError(f"GGUF type {name} is quantized: use to_nbits")
    n, k = (int(s) for s in shape)
    rows = _raw_rows(raw, (n, k), k * FLOAT_TYPES[name], name)
    if name == "F32":
        return rows.view("<f4").copy()
    if name == "F16":
        return rows.view("<f2").astype(np.float32)
    return (rows.view("<u2").astype(np.uint32) << np.uint32(16)).view(np.float32)


def dequantize(w: NBitsWeight) -> np.ndarray:
    """The float32 [N, K] weight that `w` stands for: what MatMulNBits (+ the affine term)
    multiplies by, rounded like llama.cpp's reference dequantization."""
    import numpy as np

    q = nbits_pack.unpack_codes(w.b, w.bits).reshape(w.n, w.n_blocks, w.block_size)
    if w.zero_points is None:
        zp = np.full((w.n, w.n_blocks), 1 << (w.bits - 1), dtype=np.uint8)
    else:
        zp = nbits_pack.unpack_zero_points(w.zero_points, w.bits, w.n_blocks)
    centred = (q.astype(np.int16) - zp[..., None].astype(np.int16)).astype(np.float32)
    out = w.scales[..., None] * centred
    if w.block_min is not None:
        out = out + w.block_min[..., None]
    return out.reshape(w.n, w.k)
