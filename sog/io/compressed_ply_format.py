"""The shape of the PlayCanvas/SuperSplat ``.compressed.ply`` in one place, shared by the reader
(`sog.io.compressed_ply`) and the writer (`sog.io.compressed_ply_writer`).

* element ``chunk``, one row per 256 Gaussians (the last one partial): float32 bounds ``min_x .. max_z`` of the
  positions, ``min_scale_x .. max_scale_z`` of the log-scales and (optional, all or none) ``min_r .. max_b`` of the
  colours ``0.5 + SH_C0 · sh0``;
* element ``vertex``: four uint32 words per Gaussian: ``packed_position`` and ``packed_scale`` (11-10-11 bits, x in
  the highest bits, each a fraction of its chunk's range), ``packed_rotation`` (2 bits: index of the largest
  component in w, x, y, z order, then the other three in that order, 10 bits each, ``c · √2 / 2 + 0.5``; the largest
  is positive and derived), ``packed_color`` (8-8-8-8: r, g, b as fractions of the chunk's colour range, then
  ``sigmoid(opacity)``);
* element ``sh`` (optional): uint8 ``f_rest_0 .. f_rest_{3K-1}``, channel-major as in a 3DGS PLY, each
  ``sh / 8 + 0.5`` in 256 steps (0 and 255 decode to the ends of [-4, 4]).
"""

from __future__ import annotations

import numpy as np

CHUNK = 256
PACKED = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
MAX_SH_DEGREE = 3

#: chunk properties every compressed PLY has; the colour range (min_r .. max_b) is all there or all absent
CHUNK_BOUNDS = tuple(f"{end}_{prefix}{axis}" for prefix in ("", "scale_") for end in ("min", "max")
                     for axis in "xyz")
CHUNK_COLOURS = tuple(f"{end}_{c}" for end in ("min", "max") for c in "rgb")

_NORM = np.sqrt(2) * 0.5  # the stored rotation components lie in [-√2/2, √2/2]


def unorm(value: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """The ``bits``-bit field at ``shift`` of uint32 words, as a fraction in [0, 1]."""
    return ((value >> np.uint32(shift)) & np.uint32((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)


def quantise_unorm(t: np.ndarray, bits: int) -> np.ndarray:
    """Fractions ``t`` (clamped to [0, 1]) -> the nearest of the 2^bits codes, as uint32."""
    return np.rint(np.clip(t, 0, 1) * ((1 << bits) - 1)).astype(np.uint32)


def fraction(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Where ``values`` lie between ``lo`` and ``hi`` (0 where the range is empty)."""
    span = hi - lo
    return np.where(span > 0, (values - lo) / np.where(span > 0, span, 1), 0.0)


def lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1 - t) + hi * t


def pack_111011(t: np.ndarray) -> np.ndarray:
    """(N, 3) fractions -> (N,) uint32 11-10-11 words (x highest)."""
    return (quantise_unorm(t[:, 0], 11) << np.uint32(21)) | (quantise_unorm(t[:, 1], 10) << np.uint32(11)) \
        | quantise_unorm(t[:, 2], 11)


def unpack_111011(words: np.ndarray) -> np.ndarray:
    """(N,) uint32 11-10-11 words -> (N, 3) fractions."""
    return np.stack([unorm(words, 21, 11), unorm(words, 11, 10), unorm(words, 0, 11)], 1)


def pack_rotations(quats: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz (any non-zero norm) -> (N,) uint32 2+10-10-10 smallest-three words."""
    q = np.asarray(quats, np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    n = len(q)
    largest = np.argmax(np.abs(q), 1)
    q = q * np.where(q[np.arange(n), largest] < 0, -1.0, 1.0)[:, None]
    word = largest.astype(np.uint32)
    for j in range(4):
        code = quantise_unorm(q[:, j] * _NORM + 0.5, 10)
        word = np.where(largest != j, (word << np.uint32(10)) | code, word)
    return word.astype(np.uint32)


def unpack_rotations(words: np.ndarray) -> np.ndarray:
    """(N,) uint32 smallest-three words -> (N, 4) wxyz unit quaternions."""
    n = len(words)
    abc = np.stack([(unorm(words, s, 10) - 0.5) / _NORM for s in (20, 10, 0)], 1)
    largest = (words >> np.uint32(30)).astype(np.int64)
    m = np.sqrt(np.clip(1 - (abc ** 2).sum(1), 0, None))
    quats = np.empty((n, 4))
    for which in range(4):
        sel = largest == which
        others = [i for i in range(4) if i != which]
        quats[np.ix_(sel, others)] = abc[sel]
        quats[sel, which] = m[sel]
    return quats


def pack_colour(rgb_t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(N, 3) colour fractions of the chunk range and (N,) alpha in [0, 1] -> (N,) uint32 8-8-8-8 words."""
    q = [quantise_unorm(rgb_t[:, i], 8) for i in range(3)] + [quantise_unorm(alpha, 8)]
    return (q[0] << np.uint32(24)) | (q[1] << np.uint32(16)) | (q[2] << np.uint32(8)) | q[3]


def unpack_colour(words: np.ndarray) -> np.ndarray:
    """(N,) uint32 -> (N, 4) fractions: r, g, b of the chunk's colour range (or of [0, 1]) and alpha."""
    return np.stack([unorm(words, s, 8) for s in (24, 16, 8, 0)], 1)


def quantise_sh(sh: np.ndarray) -> np.ndarray:
    """SH values -> uint8 codes of ``sh / 8 + 0.5`` in 256 steps (values beyond [-4, 4] clamp to 0 or 255)."""
    return np.clip(np.floor((np.asarray(sh, np.float64) / 8 + 0.5) * 256), 0, 255).astype(np.uint8)


def dequantise_sh(codes: np.ndarray) -> np.ndarray:
    """uint8 codes -> SH values: the middle of each step, the end codes at the ends (-4 and 4)."""
    raw = np.asarray(codes, np.float64)
    unit = np.where(raw == 0, 0.0, np.where(raw == 255, 1.0, (raw + 0.5) / 256))
    return (unit - 0.5) * 8
