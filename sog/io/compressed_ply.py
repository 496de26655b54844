"""Reader of the PlayCanvas/SuperSplat ``.compressed.ply``: chunks of 256 Gaussians with per-chunk bounds and
packed 32-bit vertex words, plus optional 8-bit SH in an ``sh`` element; the layout is
`sog.io.compressed_ply_format`."""

from __future__ import annotations

import numpy as np
from plyfile import PlyData

from ..errors import SogError
from ..splats import SH_C0, Splats, sh_degree_from_rest
from . import compressed_ply_format as fmt
from .compressed_ply_format import CHUNK, CHUNK_BOUNDS, CHUNK_COLOURS, PACKED


def is_compressed_ply(ply: PlyData) -> bool:
    names = {e.name for e in ply.elements}
    return "chunk" in names and "vertex" in names and all(
        p in (ply["vertex"].data.dtype.names or ()) for p in PACKED)


def _lerp_111011(value, chunk, prefix: str, names: tuple[str, str, str]) -> np.ndarray:
    t = fmt.unpack_111011(value)
    return np.stack([fmt.lerp(chunk[f"min_{prefix}{axis}"].astype(np.float64),
                              chunk[f"max_{prefix}{axis}"].astype(np.float64), t[:, i])
                     for i, axis in enumerate(names)], 1)


def check_chunks(names, path: str) -> None:
    """The chunk element has every bound the decoder reads (a missing one is named)."""
    missing = [p for p in CHUNK_BOUNDS if p not in names]
    colours = [p for p in CHUNK_COLOURS if p in names]
    if colours and len(colours) != len(CHUNK_COLOURS):
        missing += [p for p in CHUNK_COLOURS if p not in names]
    if missing:
        raise SogError(f"{path}: compressed PLY chunk element is missing {', '.join(missing)}")


def check_sh(sh, n: int, path: str) -> None:
    """The ``sh`` element holds one row per Gaussian of ``f_rest_0..`` properties."""
    names = list(sh.dtype.names or ())
    if len(sh) != n:
        raise SogError(f"{path}: compressed PLY 'sh' element has {len(sh)} rows for {n} Gaussians")
    if names != [f"f_rest_{i}" for i in range(len(names))]:
        raise SogError(f"{path}: compressed PLY 'sh' element properties are not f_rest_0..f_rest_{len(names) - 1}")
    if any(sh.dtype[name].kind not in "iuf" for name in names):
        raise SogError(f"{path}: compressed PLY 'sh' element holds list properties")


def read_compressed_ply(ply: PlyData, path: str) -> Splats:
    """Decode a compressed PLY (already parsed by plyfile) into `Splats`."""
    vertex = ply["vertex"].data
    n = len(vertex)
    if n == 0:
        raise SogError(f"{path}: compressed PLY has zero Gaussians")
    chunk_rows = ply["chunk"].data
    if len(chunk_rows) != (n + CHUNK - 1) // CHUNK:
        raise SogError(f"{path}: compressed PLY has {len(chunk_rows)} chunks for {n} Gaussians")
    check_chunks(chunk_rows.dtype.names or (), path)
    if any(chunk_rows.dtype[name].kind not in "iuf" for name in chunk_rows.dtype.names) or any(
            vertex.dtype[p].kind not in "iu" for p in PACKED):
        raise SogError(f"{path}: compressed PLY packed words must be integers and chunk bounds numbers")
    if "sh" in {e.name for e in ply.elements}:
        check_sh(ply["sh"].data, n, path)
    chunk = {name: np.repeat(chunk_rows[name], CHUNK)[:n] for name in chunk_rows.dtype.names}
    words = {p: np.asarray(vertex[p], dtype=np.uint32) for p in PACKED}
    means = _lerp_111011(words["packed_position"], chunk, "", ("x", "y", "z"))
    scales = _lerp_111011(words["packed_scale"], chunk, "scale_", ("x", "y", "z"))

    quats = fmt.unpack_rotations(words["packed_rotation"])
    rgba = fmt.unpack_colour(words["packed_color"])
    if "min_r" in chunk:
        for i, c in enumerate("rgb"):
            lo, hi = chunk[f"min_{c}"].astype(np.float64), chunk[f"max_{c}"].astype(np.float64)
            rgba[:, i] = fmt.lerp(lo, hi, rgba[:, i])
    alpha = np.clip(rgba[:, 3], 1e-6, 1 - 1e-6)

    shN = np.zeros((n, 0, 3))
    if "sh" in {e.name for e in ply.elements}:
        sh = ply["sh"].data
        count = len(sh.dtype.names)
        k = count // 3
        if count % 3 or sh_degree_from_rest(k) == 0:
            raise SogError(f"{path}: compressed PLY 'sh' element has {count} properties (expected 9, 24 or 45)")
        raw = np.stack([np.asarray(sh[f"f_rest_{i}"], np.float64) for i in range(count)], 1)
        shN = fmt.dequantise_sh(raw).reshape(n, 3, k).transpose(0, 2, 1)

    return Splats.from_arrays(means, scales, quats, np.log(alpha / (1 - alpha)), (rgba[:, :3] - 0.5) / SH_C0,
                              shN).validate(path)
