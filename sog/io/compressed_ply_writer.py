"""Writer of the PlayCanvas/SuperSplat ``.compressed.ply`` (layout: `sog.io.compressed_ply_format`; read back by
`sog.io.compressed_ply`).

The format fixes the chunk (256 Gaussians, one bounding range each); what a writer chooses is which Gaussians share
a chunk. The caller's order does (`sog.pipeline.stream_order`: Morton), so a chunk's bounds are tight and its
11-10-11 positions fine. Each chunk also carries the range of its colours, so the 8-bit colours spend their codes
on the colours the chunk really holds.
"""

from __future__ import annotations

import os

import numpy as np
from plyfile import PlyData, PlyElement

from ..splats import SH_C0, Splats
from . import compressed_ply_format as fmt
from .atomic import atomic_path
from .limits import check_writable

MAX_COUNT = (1 << 31) - 1


def _chunk_bounds(values: np.ndarray, n_chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) values -> (n_chunks, C) float32 minima and maxima per chunk of 256 (the last chunk partial)."""
    pad = n_chunks * fmt.CHUNK - len(values)
    full = np.concatenate([values, np.repeat(values[-1:], pad, 0)]) if pad else values
    blocks = full.reshape(n_chunks, fmt.CHUNK, -1)
    return blocks.min(1).astype(np.float32), blocks.max(1).astype(np.float32)


def _quantise_in_chunks(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, C) values -> (N, C) fractions of their chunk's (float32) range."""
    n = len(values)
    lo = np.repeat(lo.astype(np.float64), fmt.CHUNK, 0)[:n]
    hi = np.repeat(hi.astype(np.float64), fmt.CHUNK, 0)[:n]
    return fmt.fraction(values, lo, hi)


def compressed_ply_data(splats: Splats) -> PlyData:
    """``splats`` as the elements of a compressed PLY (chunk, vertex and, with SH, sh), in the order given.
    Refuses (`SogError`) an SH degree above 3 or a count beyond a PLY element's."""
    check_writable(splats, "a compressed PLY", MAX_COUNT, fmt.MAX_SH_DEGREE)
    n, k = len(splats), int(splats.shN.shape[1])
    n_chunks = (n + fmt.CHUNK - 1) // fmt.CHUNK
    means = splats.means.detach().cpu().double().numpy()
    scales = splats.scales.detach().cpu().double().numpy()
    colours = splats.sh0.detach().cpu().double().numpy().reshape(n, 3) * SH_C0 + 0.5
    alpha = 1 / (1 + np.exp(-splats.opacities.detach().cpu().double().numpy()))

    bounds = {}
    words = {}
    for name, values, prefix in (("packed_position", means, ""), ("packed_scale", scales, "scale_")):
        lo, hi = _chunk_bounds(values, n_chunks)
        bounds.update({f"min_{prefix}{a}": lo[:, i] for i, a in enumerate("xyz")})
        bounds.update({f"max_{prefix}{a}": hi[:, i] for i, a in enumerate("xyz")})
        words[name] = fmt.pack_111011(_quantise_in_chunks(values, lo, hi))
    lo, hi = _chunk_bounds(colours, n_chunks)
    bounds.update({f"min_{c}": lo[:, i] for i, c in enumerate("rgb")})
    bounds.update({f"max_{c}": hi[:, i] for i, c in enumerate("rgb")})
    words["packed_rotation"] = fmt.pack_rotations(splats.quats.detach().cpu().double().numpy())
    words["packed_color"] = fmt.pack_colour(_quantise_in_chunks(colours, lo, hi), alpha)

    names = [*fmt.CHUNK_BOUNDS[:6], *fmt.CHUNK_BOUNDS[6:], *fmt.CHUNK_COLOURS]
    chunk = np.empty(n_chunks, dtype=[(name, "<f4") for name in names])
    for name in names:
        chunk[name] = bounds[name]
    vertex = np.empty(n, dtype=[(name, "<u4") for name in fmt.PACKED])
    for name in fmt.PACKED:
        vertex[name] = words[name]
    elements = [PlyElement.describe(chunk, "chunk"), PlyElement.describe(vertex, "vertex")]
    if k:
        rest = fmt.quantise_sh(splats.shN.detach().cpu().double().numpy().transpose(0, 2, 1).reshape(n, 3 * k))
        sh = np.empty(n, dtype=[(f"f_rest_{i}", "u1") for i in range(3 * k)])
        for i in range(3 * k):
            sh[f"f_rest_{i}"] = rest[:, i]
        elements.append(PlyElement.describe(sh, "sh"))
    return PlyData(elements, text=False, byte_order="<")


def write_compressed_ply(splats: Splats, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write ``splats`` as a ``.compressed.ply`` at ``path`` atomically."""
    data = compressed_ply_data(splats)
    with atomic_path(path, overwrite) as tmp:
        data.write(str(tmp))
