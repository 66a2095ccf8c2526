"""ONNX Runtime's MatMulNBits packing (com.microsoft contrib op), in numpy.

B is uint8 [N, n_blocks, blob_size] with blob_size = block_size * bits / 8: the codes of one
output row run along K and are packed low bits first (bits=4: element 2i in the low nibble of
byte i, element 2i+1 in the high nibble). Scales are one float per block ([N, n_blocks]; the
op also takes them flattened). uint8 zero points are packed the same way per row: [N,
ceil(n_blocks * bits / 8)], so a 4-bit row with an odd block count ends in a half-used byte.
Without zero points the op uses 2^(bits-1). Only bits 4 and 8 are used here: ONNX Runtime's CPU
kernels cover 2, 4 and 8, and GGUF's 5- and 6-bit codes are widened to 8 bits instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

BITS = (4, 8)


def _check_bits(bits: int) -> None:
    if bits not in BITS:
        raise ValueError(f"bits={bits}: only 4 and 8 are packed here")


def pack_codes(q: np.ndarray, bits: int, block_size: int) -> np.ndarray:
    """Codes uint8 [N, K] (each < 2^bits) -> B uint8 [N, K / block_size, blob_size]."""
    import numpy as np

    _check_bits(bits)
    n, k = q.shape
    if k % block_size:
        raise ValueError(f"K={k} is not a multiple of block_size={block_size}")
    q = np.ascontiguousarray(q, dtype=np.uint8)
    if bits == 4:
        q = q[:, 0::2] | (q[:, 1::2] << np.uint8(4))
    return q.reshape(n, k // block_size, block_size * bits // 8)


def unpack_codes(b: np.ndarray, bits: int) -> np.ndarray:
    """B uint8 [N, n_blocks, blob_size] -> codes uint8 [N, K]."""
    import numpy as np

    _check_bits(bits)
    n = b.shape[0]
    flat = b.reshape(n, -1)
    if bits == 8:
        return flat.copy()
    out = np.empty((n, flat.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = flat & np.uint8(0x0F)
    out[:, 1::2] = flat >> np.uint8(4)
    return out


def pack_zero_points(zp: np.ndarray, bits: int) -> np.ndarray:
    """Zero points uint8 [N, n_blocks] -> uint8 [N, ceil(n_blocks * bits / 8)] (per row padded)."""
    import numpy as np

    _check_bits(bits)
    zp = np.ascontiguousarray(zp, dtype=np.uint8)
    if bits == 8:
        return zp.copy()
    n, nb = zp.shape
    if nb % 2:
        zp = np.concatenate([zp, np.zeros((n, 1), dtype=np.uint8)], axis=1)
    return zp[:, 0::2] | (zp[:, 1::2] << np.uint8(4))


def unpack_zero_points(packed: np.ndarray, bits: int, n_blocks: int) -> np.ndarray:
    """Inverse of pack_zero_points: uint8 [N, n_blocks]."""
    import numpy as np

    _check_bits(bits)
    if bits == 8:
        return packed[:, :n_blocks].copy()
    out = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = packed & np.uint8(0x0F)
    out[:, 1::2] = packed >> np.uint8(4)
    return out[:, :n_blocks]
