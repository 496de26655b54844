"""Reader for Niantic's ``.spz`` (versions 2, 3 and 4); the format's shape is `sog.io.spz_format`.

Layout facts (from the public format description and splat-transform's reader; independent code):

* v2/v3: the whole file is one gzip stream; inside, a 16-byte header then the attribute blocks.
* v4: a 32-byte plain header, a table of contents (16 bytes per stream: compressed and raw
  size, u64 each) at the offset in bytes 16..19, then one zstd stream per attribute.
* header: magic ``NGSP`` (u32 0x5053474e), version u32, count u32, SH degree u8,
  fractional bits u8, flags u8 (bit 0: antialiased), and in v4 the stream count u8.
* blocks, in order: positions (3 × signed 24-bit fixed point, ``fractional bits``),
  alphas (u8 sigmoid), colours (u8, ``sh0 = (c/255 - 0.5) / 0.15``), scales
  (u8, ``log s = c/16 - 10``), rotations (v2: 3 bytes xyz, w derived; v3+: 32-bit
  smallest-three, 2-bit index of the largest + three 10-bit sign/magnitude values),
  SH (u8, ``(c - 128) / 128``, coefficient-major with colour innermost).

SPZ stores scenes in the RUB (OpenGL) frame, PLY files in RDF: by default the reader turns the
scene back to the PLY frame (a 180° turn about x: y and z negated in positions, quaternions and
the odd SH basis functions), which is how splat-transform 2.7.1's writer and reader round-trip a
PLY, and how `sog.io.spz_writer` writes. splat-transform 3.x writes the PLY's axes unturned (the file says neither): read those with
``ply_frame=False``.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np

from ..errors import SogError
from ..splats import SH_REST_COUNT, Splats
from . import spz_format as fmt
from .limits import LIMITS, check_count, read_whole
from .spz_format import MAGIC


def read_spz(path: str | os.PathLike, ply_frame: bool = True) -> Splats:
    """Read a ``.spz`` file (v2, v3 or v4) into `Splats` (validated), in the PLY frame unless told."""
    data = read_whole(path, ".spz")
    return decode_spz(data, str(path), ply_frame).validate(str(path))


def _header(data: bytes, name: str) -> tuple[int, int, int, int, list[int]]:
    """``(version, n, degree, fractional bits, block sizes)`` from the first 16 bytes, checked."""
    if len(data) < 16:
        raise SogError(f"{name}: too small to be a .spz file")
    magic, version, n, degree, frac, flags = struct.unpack_from("<IIIBBB", data, 0)
    if magic != MAGIC:
        raise SogError(f"{name}: not a .spz file (bad magic)")
    if version not in (2, 3, 4):
        raise SogError(f"{name}: unsupported .spz version {version} (sog reads 2, 3 and 4)")
    if degree not in SH_REST_COUNT:
        raise SogError(f"{name}: unsupported SH degree {degree} in .spz")
    if n == 0:
        raise SogError(f"{name}: .spz holds zero Gaussians")
    check_count(n, f"{name}: .spz header")
    if frac > fmt.MAX_FRACTIONAL_BITS:
        raise SogError(f"{name}: .spz declares {frac} fractional bits of position (at most "
                       f"{fmt.MAX_FRACTIONAL_BITS})")
    return version, n, degree, frac, fmt.block_sizes(n, SH_REST_COUNT[degree], version)


def _gunzip(data: bytes, name: str) -> bytes:
    """The gzip stream of a v2/v3 ``.spz``, inflated in pieces: the header first, then exactly the bytes it
    declares (refused before inflating when they exceed `Limits.inflated_bytes` of the file)."""
    inflater = zlib.decompressobj(wbits=31)
    out = bytearray()
    try:
        out += inflater.decompress(data, 16)
        rest = inflater.unconsumed_tail
        if len(out) < 16 and not inflater.eof:
            raise SogError(f"{name}: corrupt gzip stream in .spz (it ends before the 16-byte header)")
        version, n, degree, frac, sizes = _header(bytes(out), name)
        need = 16 + sum(sizes)
        if need > LIMITS.inflated_bytes(len(data)):
            raise SogError(f"{name}: .spz header declares {n:,} Gaussians ({need:,} bytes) in {len(data):,} bytes "
                           "of gzip: not a real scene (a decompression bomb?)")
        while len(out) < need and rest:
            out += inflater.decompress(rest, min(need - len(out), 1 << 24))
            rest = inflater.unconsumed_tail
        if len(out) < need and not inflater.eof:
            raise SogError(f"{name}: corrupt gzip stream in .spz (truncated after {len(out):,} bytes)")
        if len(out) == need and not inflater.eof and inflater.decompress(rest, 1):
            raise SogError(f"{name}: .spz gzip stream holds more than the {need:,} bytes its header declares")
    except (zlib.error, ValueError) as exc:
        raise SogError(f"{name}: corrupt gzip stream in .spz ({exc})") from None
    return bytes(out)


def decode_spz(data: bytes, name: str = "spz", ply_frame: bool = True) -> Splats:
    """Decode the bytes of a ``.spz`` file; ``ply_frame`` turns RUB back into PLY's RDF."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, name)
    version, n, degree, frac, sizes = _header(data, name)
    k = SH_REST_COUNT[degree]
    if version >= 4 and sum(sizes) > LIMITS.inflated_bytes(len(data)):
        raise SogError(f"{name}: .spz header declares {n:,} Gaussians ({sum(sizes):,} bytes) in {len(data):,} "
                       "bytes of zstd: not a real scene (a decompression bomb?)")
    blocks = _streams_v4(data, sizes, name) if version >= 4 else _blocks_v23(data, sizes, name)
    pos, alpha, color, scale, rot = blocks[:5]

    means = fmt.dequantise_positions(fmt.unpack_positions(pos, n), frac)
    opacities = fmt.dequantise_alpha(np.frombuffer(alpha, np.uint8))
    sh0 = fmt.dequantise_colour(np.frombuffer(color, np.uint8).reshape(n, 3))
    scales = fmt.dequantise_scales(np.frombuffer(scale, np.uint8).reshape(n, 3))
    quats = _rotations(rot, n, version)
    shN = np.zeros((n, k, 3))
    if k:
        shN = fmt.dequantise_sh(np.frombuffer(blocks[5], np.uint8).reshape(n, k, 3))

    if ply_frame:
        means, quats, shN = fmt.turn_x180(means, quats, shN)

    return Splats.from_arrays(means, scales, quats, opacities, sh0, shN)


def _blocks_v23(data: bytes, sizes: list[int], name: str) -> list[bytes]:
    need = 16 + sum(sizes)
    if len(data) < need:
        raise SogError(f"{name}: truncated .spz ({len(data)} bytes, need {need})")
    out, off = [], 16
    for size in sizes:
        out.append(data[off:off + size])
        off += size
    return out


def _streams_v4(data: bytes, sizes: list[int], name: str) -> list[bytes]:
    try:
        import zstandard
    except ImportError:
        raise SogError(f"{name}: .spz version 4 needs the 'zstandard' package (pip install zstandard)") from None
    if len(data) < 32:
        raise SogError(f"{name}: truncated .spz v4 header")
    count, toc = struct.unpack_from("<BI", data, 15)
    if count != len(sizes):
        raise SogError(f"{name}: .spz v4 has {count} streams, expected {len(sizes)}")
    off = toc + 16 * count
    if toc < 32 or off > len(data):
        raise SogError(f"{name}: corrupt .spz v4 table of contents")
    out = []
    dctx = zstandard.ZstdDecompressor()
    for i, size in enumerate(sizes):
        packed, raw = struct.unpack_from("<QQ", data, toc + 16 * i)
        if raw != size or off + packed > len(data):
            raise SogError(f"{name}: corrupt .spz v4 stream {i}")
        try:
            # a stream reader inflates at most raw + 1 bytes, whatever size the frame header claims
            with dctx.stream_reader(io.BytesIO(data[off:off + packed]), read_across_frames=True) as reader:
                block = reader.read(raw + 1)
        except zstandard.ZstdError as exc:
            raise SogError(f"{name}: corrupt zstd stream {i} in .spz ({exc})") from None
        if len(block) != raw:
            raise SogError(f"{name}: .spz v4 stream {i} has {len(block)} bytes, expected {raw}")
        out.append(block)
        off += packed
    return out


def _rotations(rot: bytes, n: int, version: int) -> np.ndarray:
    """(N, 4) wxyz quaternions from v2 (xyz bytes) or v3+ (smallest-three u32) rotations."""
    if version == 2:
        xyz = np.frombuffer(rot, np.uint8).reshape(n, 3).astype(np.float64) / 127.5 - 1
        w = np.sqrt(np.clip(1 - (xyz ** 2).sum(1), 0, None))
        return np.concatenate([w[:, None], xyz], 1)
    return fmt.dequantise_rotations(np.frombuffer(rot, "<u4"))
