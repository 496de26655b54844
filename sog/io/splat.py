"""The antimatter15 ``.splat`` format: 32 bytes per Gaussian, no header, SH degree 0.

Record: position 3×f32, linear scale 3×f32, RGBA 4×u8 (colour = 0.5 + SH_C0·f_dc,
alpha = sigmoid(opacity)), rotation 4×u8 (w, x, y, z mapped from [-1, 1]).
Reading is lossy by nature of the format (8-bit colour, opacity and rotation).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import SogError
from ..splats import SH_C0, Splats
from .limits import LIMITS, check_count

RECORD = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])


def read_splat(path: str | os.PathLike) -> Splats:
    """Read a ``.splat`` file into `Splats`."""
    try:
        size = os.path.getsize(path)
        if size > LIMITS.max_gaussians * RECORD.itemsize:
            check_count(size // RECORD.itemsize, f"{path}: .splat file of {size:,} bytes")
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data.size == 0:
        raise SogError(f"{path}: .splat file is empty (zero Gaussians)")
    if data.size % RECORD.itemsize:
        raise SogError(f"{path}: .splat size {data.size} is not a multiple of 32 bytes (truncated?)")
    rec = data.view(RECORD)
    n = len(rec)
    scale = rec["scale"].astype(np.float32)
    if (scale <= 0).any():
        raise SogError(f"{path}: .splat has non-positive scales (not a .splat file?)")
    rgba = rec["rgba"].astype(np.float32) / 255.0
    alpha = np.clip(rgba[:, 3], 1e-6, 1 - 1e-6)
    rot = rec["rot"].astype(np.float32) / 255.0 * 2.0 - 1.0
    norm = np.linalg.norm(rot, axis=1, keepdims=True)
    rot = np.where(norm > 0, rot / np.maximum(norm, 1e-12), np.array([1, 0, 0, 0], np.float32))
    splats = Splats.from_arrays(rec["pos"], np.log(scale), rot, np.log(alpha / (1 - alpha)),
                                (rgba[:, :3] - 0.5) / SH_C0, np.zeros((n, 0, 3)))
    return splats.validate(str(path))
