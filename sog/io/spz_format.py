"""The shape of Niantic's ``.spz`` in one place: header, block order and each attribute's quantise/dequantise pair,
shared by the reader (`sog.io.spz`) and the writer (`sog.io.spz_writer`).

Layout facts (from the public format description; independent code):

* v2/v3: the whole file is one gzip stream; inside, a 16-byte header then the attribute blocks.
* v4: a 32-byte plain header, a table of contents (16 bytes per stream: compressed and raw size, u64 each) at the
  offset in bytes 16..19, then one zstd stream per attribute.
* header: magic ``NGSP`` (u32 0x5053474e), version u32, count u32, SH degree u8, fractional bits u8, flags u8
  (bit 0: antialiased), and in v4 the stream count u8.
* blocks, in order: positions (3 × signed 24-bit fixed point with ``fractional bits``), alphas (u8 sigmoid),
  colours (u8, ``sh0 = (c/255 - 0.5) / 0.15``), scales (u8, ``log s = c/16 - 10``), rotations (v2: 3 bytes xyz,
  w derived; v3+: 32-bit smallest-three, 2-bit index of the largest + three 10-bit sign/magnitude values), SH (u8,
  ``(c - 128) / 128``, coefficient-major with colour innermost).

SPZ stores scenes in the RUB (OpenGL) frame, PLY files in RDF: a 180° turn about x (y and z negated in positions,
quaternions and the odd SH basis functions) takes one to the other, and is its own inverse (`turn_x180`).
"""

from __future__ import annotations

import os
import struct

import numpy as np

MAGIC = 0x5053474E
HEADER = "<IIIBBBB"  #: magic, version, count, SH degree, fractional bits, flags, reserved (16 bytes)
COLOR_SCALE = 0.15
POSITION_BITS = 24   #: signed fixed point per coordinate
MAX_FRACTIONAL_BITS = 30
MAX_SH_DEGREE = 3    #: what sog writes (v3 holds degree 0..3)

#: Sign of each higher SH coefficient (bands 1..3, 3DGS order) under the turn y -> -y, z -> -z.
RUB_TO_RDF_SH = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], np.float64)


def turn_x180(means: np.ndarray, quats: np.ndarray, shN: np.ndarray):
    """The 180° turn about x between PLY's RDF and SPZ's (and glTF's) RUB frame: means (N, 3), quats (N, 4) wxyz,
    shN (N, K, 3) -> the same three, turned (the turn is its own inverse)."""
    k = shN.shape[1]
    return means * [1, -1, -1], quats * [1, 1, -1, -1], shN * RUB_TO_RDF_SH[:k, None]


# positions: signed 24-bit fixed point, little endian, 3 bytes per coordinate

def _float(x) -> np.ndarray:
    """``x`` as a float array, float32 kept as it is (the writer's inputs: half the memory traffic), else float64."""
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def quantise_positions(means: np.ndarray, fractional_bits: int) -> np.ndarray:
    """(N, 3) float -> (N, 3) int32 fixed point ``round(x * 2^frac)`` (exact in float32 too: a power-of-two
    product); the caller checks the range (`position_limit`)."""
    return np.rint(_float(means) * (1 << fractional_bits)).astype(np.int32)


def position_limit(fractional_bits: int) -> float:
    """The largest |coordinate| that fits 24-bit fixed point with ``fractional_bits``."""
    return ((1 << (POSITION_BITS - 1)) - 1) / (1 << fractional_bits)


def pack_positions(fixed: np.ndarray) -> bytes:
    """(N, 3) int32 -> N·9 bytes (each coordinate's low 24 bits, least significant byte first)."""
    u = fixed.astype(np.int64) & 0xFFFFFF
    return np.stack([u & 0xFF, (u >> 8) & 0xFF, u >> 16], -1).astype(np.uint8).tobytes()


def unpack_positions(data: bytes, n: int) -> np.ndarray:
    """N·9 bytes -> (N, 3) int32 fixed point (sign-extended)."""
    p = np.frombuffer(data, np.uint8).reshape(n, 3, 3).astype(np.int32)
    fixed = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
    return np.where(fixed & 0x800000, fixed - (1 << 24), fixed)


def dequantise_positions(fixed: np.ndarray, fractional_bits: int) -> np.ndarray:
    return fixed.astype(np.float64) / (1 << fractional_bits)


# alpha: u8 of sigmoid(opacity)

def quantise_alpha(opacities: np.ndarray) -> np.ndarray:
    """(N,) logit -> (N,) uint8 ``round(255 sigmoid(o))``."""
    a = 1 / (1 + np.exp(-np.asarray(opacities, np.float64)))
    return np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)


def dequantise_alpha(codes: np.ndarray) -> np.ndarray:
    """(N,) uint8 -> (N,) logit (alpha clipped to [1e-6, 1 - 1e-6])."""
    a = np.clip(codes.astype(np.float64) / 255, 1e-6, 1 - 1e-6)
    return np.log(a / (1 - a))


# colour: u8 of 0.15 sh0 + 0.5

def quantise_colour(sh0: np.ndarray) -> np.ndarray:
    """(N, 3) sh0 -> (N, 3) uint8 ``round(255 (0.15 sh0 + 0.5))``, clamped."""
    return np.clip(np.rint((np.asarray(sh0, np.float64) * COLOR_SCALE + 0.5) * 255), 0, 255).astype(np.uint8)


def dequantise_colour(codes: np.ndarray) -> np.ndarray:
    return (codes.astype(np.float64) / 255 - 0.5) / COLOR_SCALE


# scales: u8 of 16 (log s + 10)

def quantise_scales(scales: np.ndarray) -> np.ndarray:
    """(N, 3) log-scales -> (N, 3) uint8 ``round(16 (log s + 10))``, clamped (log s in [-10, 5.94])."""
    return np.clip(np.rint((np.asarray(scales, np.float64) + 10) * 16), 0, 255).astype(np.uint8)


def dequantise_scales(codes: np.ndarray) -> np.ndarray:
    return codes.astype(np.float64) / 16 - 10


# rotations (v3+): smallest three in 32 bits: 2-bit index of the largest |component| (x, y, z, w order), then the
# other three in index order, each a sign bit over a 9-bit magnitude of |c| / sqrt(1/2); the last in the lowest bits

_MAG = (1 << 9) - 1


def quantise_rotations(quats: np.ndarray, step: int = 1) -> np.ndarray:
    """(N, 4) wxyz (any non-zero norm) -> (N,) uint32 smallest-three words, each magnitude rounded to the nearest
    multiple of ``step`` (1..511; 1: every 9-bit code): a coarser lattice of the same codes, which any reader
    decodes, with fewer distinct words for the entropy coder."""
    if not 1 <= step <= _MAG:
        raise ValueError(f"rotation step must be 1..{_MAG}, not {step}")
    q = np.asarray(quats, np.float64)[:, [1, 2, 3, 0]]  # xyzw
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    n = len(q)
    largest = np.argmax(np.abs(q), 1)
    q = q * np.where(q[np.arange(n), largest] < 0, -1.0, 1.0)[:, None]  # the largest is positive
    word = largest.astype(np.uint64)
    for j in range(4):
        here = largest != j
        mag = (np.clip(np.rint(np.abs(q[:, j]) / np.sqrt(0.5) * (_MAG / step)), 0, _MAG // step) * step).astype(np.uint64)
        bits = (np.where(q[:, j] < 0, 1, 0).astype(np.uint64) << np.uint64(9)) | mag
        word = np.where(here, (word << np.uint64(10)) | bits, word)
    return word.astype(np.uint32)


def dequantise_rotations(words: np.ndarray) -> np.ndarray:
    """(N,) uint32 smallest-three words -> (N, 4) wxyz unit quaternions."""
    packed = words.astype(np.int64)
    n = len(packed)
    largest = packed >> 30
    xyzw = np.zeros((n, 4))
    bits = packed.copy()
    filled = np.zeros(n)
    for j in (3, 2, 1, 0):  # stored components, last one in the lowest bits
        here = largest != j
        v = np.sqrt(0.5) * (bits & _MAG) / _MAG * np.where((bits >> 9) & 1 == 1, -1.0, 1.0)
        xyzw[here, j] = v[here]
        filled += np.where(here, v * v, 0.0)
        bits = np.where(here, bits >> 10, bits)
    xyzw[np.arange(n), largest] = np.sqrt(np.clip(1 - filled, 0, None))
    return xyzw[:, [3, 0, 1, 2]]


# SH: u8 of 128 + 128 sh, on a lattice of every ``step``-th code around 128

def sh_step(bits: float) -> int:
    """The code step of ``bits`` bits of SH (Niantic's buckets: 2^(8 - bits); 5 bits -> 8, 4 -> 16)."""
    return int(round(2.0 ** (8 - bits)))


def quantise_sh(shN: np.ndarray, step: int = 1, signs: np.ndarray | None = None) -> np.ndarray:
    """(N, K, 3) -> (N, K, 3) uint8 ``128 + 128 sh`` rounded to the nearest code ``128 + j step`` (``step``
    1..128, any integer: the reader decodes every byte) in 0..256, 256 stored as 255 (the top code, as in
    Niantic's encoder: a large coefficient keeps 127/128). ``signs`` (K,) multiplies coefficient k first (a frame
    turn, `RUB_TO_RDF_SH`) in the same pass."""
    if not 1 <= step <= 128:
        raise ValueError(f"SH step must be 1..128, not {step}")
    shN = _float(shN)
    scale = np.full((shN.shape[1], 1), 128 / step, shN.dtype)
    if signs is not None:
        scale = scale * np.asarray(signs, shN.dtype)[:, None]
    levels = np.multiply(shN, scale)
    np.rint(levels, out=levels)
    np.clip(levels, -(128 // step), 128 // step, out=levels)  # j: the code 128 + j step stays in 0..256
    if step == 1:
        levels += 128
        return np.minimum(levels, 255).astype(np.uint8)
    return np.minimum(levels.astype(np.int16) * step + 128, 255).astype(np.uint8)


def dequantise_sh(codes: np.ndarray) -> np.ndarray:
    return (codes.astype(np.float64) - 128) / 128


def block_sizes(n: int, k: int, version: int) -> list[int]:
    """Bytes of each block, in file order, for ``n`` Gaussians with ``k`` higher SH coefficients per colour."""
    sizes = [9 * n, n, 3 * n, 3 * n, (3 if version == 2 else 4) * n]
    if k:
        sizes.append(3 * k * n)
    return sizes


# v4 container: a 32-byte header (the v3 fields, the stream count in byte 15, the table's offset in bytes 16..19,
# the rest zero), a table of (compressed, raw) u64 sizes per stream, then one zstd frame per block

V4_HEADER = "<IIIBBBBI12x"


def pack_v4(n: int, degree: int, frac: int, blocks: list[bytes], level: int) -> bytes:
    """The bytes of a v4 ``.spz``: ``blocks`` (raw, in file order) each one zstd frame at ``level``. Each frame is
    compressed by one thread (the same bytes on any machine); the frames go to a few threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    import zstandard

    def frame(block: bytes) -> bytes:
        return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(block)

    with ThreadPoolExecutor(max_workers=max(1, min(len(blocks), os.cpu_count() or 1))) as pool:
        frames = list(pool.map(frame, blocks))
    head = struct.pack(V4_HEADER, MAGIC, 4, n, degree, frac, 0, len(blocks), 32)
    toc = b"".join(struct.pack("<QQ", len(f), len(b)) for f, b in zip(frames, blocks))
    return head + toc + b"".join(frames)
