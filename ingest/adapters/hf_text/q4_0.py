"""ggml's Q4_0 quantisation: blocks of 32 weights as one float16 scale + 32 four-bit integers.

One block is 18 bytes: `d` (float16, little-endian), then 16 bytes `qs`; byte j holds weight j in
its low nibble and weight j + 16 in its high nibble, and w = d * (q - 8) with q in 0..15. So a
block represents the values d * {-8, ..., 7}. Rows of a weight matrix are whole blocks (the
input width is a multiple of 32).

Why numpy and not the package's C engine: dequantising once into float32 is a few vectorised
lines, runs on any Python, and makes the weights usable by transformers' own forward.
"""

from __future__ import annotations

import numpy as np

from actstore.errors import UnknownModelError

BLOCK = 32
BLOCK_BYTES = 2 + BLOCK // 2
_BLOCK_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])


def q4_0_nbytes(n_values: int) -> int:
    """Bytes that `n_values` weights take in Q4_0 (n_values must be a multiple of 32)."""
    return n_values // BLOCK * BLOCK_BYTES


def dequantise_q4_0(data: bytes | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 bytes -> float32 array of `shape` (row-major; the last axis is blocked)."""
    n = int(np.prod(shape, dtype=np.int64))
    if n % BLOCK:
        raise UnknownModelError(f"A Q4_0 tensor of shape {tuple(shape)} is not a whole number of "
                                f"{BLOCK}-value blocks; the file is corrupt.")
    raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) \
        else np.asarray(data, dtype=np.uint8).ravel()
    if raw.size != q4_0_nbytes(n):
        raise UnknownModelError(f"A Q4_0 tensor of shape {tuple(shape)} needs {q4_0_nbytes(n)} "
                                f"bytes, found {raw.size}; the file is corrupt.")
    blocks = raw.view(_BLOCK_DTYPE)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8           # weights 0..15 of each block
    high = (blocks["qs"] >> 4).astype(np.int8) - 8            # weights 16..31
    q = np.concatenate([low, high], axis=1).astype(np.float32)
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(shape)
