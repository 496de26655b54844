"""What a coarser level of detail loses in one region: the per-leaf ``errors`` of streamed SOG (``lod-meta.json``).

The PlayCanvas engine (2.22 and later) spends its splat budget where an upgrade from one level to the next finer
one removes the most error per splat added; it reads each leaf's ``errors[k]`` from the tree when the header says
``"lodErrors": true``, and derives ``ln(finest count / count)`` otherwise. An error is measured against the finest
level present in the leaf (0 there), is relative (no unit: only the differences between adjacent levels are
used), and does not fall from a level to the next coarser one.

`level_errors` measures it as the pictures see it: the leaf's levels rendered from the six axis directions around
the finest level's box (looking at it along -x, +x, -y, +y, -z, +z, the box's bounding sphere filling the picture)
on a transparent background, and the summed squared RGBA difference from the finest level's pictures, relative to
the finest level's own summed squared RGBA: 0 when a level paints the same pixels, 1 when it paints nothing.
Thinning, blur and colour drift count in proportion to how much they show; a merge that paints the same pixels
costs nothing. Each figure is snapped (`sog.stable`) and kept to `DIGITS` significant digits, so the tree's bytes
are the same on any CPU, and is at least the finer level's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..render.cameras import Camera, look_at
from ..render.cpu import RasterConfig, render_one
from ..splats import Splats
from ..stable import snap

#: the side of the six pictures, in pixels
SIZE = 64
#: their field of view, in degrees
FOV = 50.0
#: significant digits of a stored error
DIGITS = 4


def box_cameras(lo: np.ndarray, hi: np.ndarray, size: int = SIZE) -> list[Camera]:
    """Six cameras around the box ``lo`` (3,) .. ``hi`` (3,), one along each axis direction, each far enough that
    the box's bounding sphere fits its (square) picture of ``size`` pixels."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    centre = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-6 * max(1.0, float(np.abs(centre).max())))
    distance = radius / math.sin(math.radians(FOV) / 2)
    cams = []
    for axis in range(3):
        up = np.eye(3)[(axis + 1) % 3]
        for sign in (-1.0, 1.0):
            eye = centre + sign * distance * np.eye(3)[axis]
            cams.append(look_at(eye, centre, up, size, size, FOV, name=f"{'-+'[sign > 0]}{'xyz'[axis]}"))
    return cams


@torch.no_grad()
def _pictures(splats: Splats, cameras: list[Camera]) -> torch.Tensor:
    """(V, H, W, 4) float64: premultiplied RGB and alpha of ``splats`` from each camera (zeros when empty)."""
    cam = cameras[0]
    if len(splats) == 0:
        return torch.zeros(len(cameras), cam.height, cam.width, 4, dtype=torch.float64)
    s = splats.to("cpu")
    tensors = (s.means.float(), s.quats.float(), torch.exp(s.scales.float()), torch.sigmoid(s.opacities.float()),
               s.sh0.float(), s.shN.float())
    out = []
    for cam in cameras:
        rgb, alpha = render_one(*tensors, cam.viewmat, cam.K, cam.width, cam.height, RasterConfig())
        out.append(torch.cat([rgb.double(), alpha.double()[..., None]], -1))
    return torch.stack(out)


def level_errors(levels: list[Splats], lo: np.ndarray, hi: np.ndarray, size: int = SIZE) -> list[float]:
    """Per level of one leaf (``levels[0]`` the finest; any may be empty), its error against ``levels[0]`` as the
    module docstring defines it, pictured around the box ``lo`` (3,) .. ``hi`` (3,) (the leaf's bound):
    ``errors[0] == 0`` and ``errors[k] >= errors[k - 1]``."""
    cameras = box_cameras(lo, hi, size)
    finest = _pictures(levels[0], cameras)
    energy = float((finest ** 2).sum())
    errors = [0.0]
    for level in levels[1:]:
        if energy > 0:
            diff = float(((_pictures(level, cameras) - finest) ** 2).sum()) / energy
        else:
            diff = 0.0
        value = float(f"{float(snap(diff, 16)):.{DIGITS}g}")
        errors.append(max(errors[-1], value))
    return errors
