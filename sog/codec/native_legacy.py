"""Readers for the native profile's older files, kept apart from the current layout (`sog.codec.native`).

Every file sog ever wrote still decodes. What changed, newest first:

* version 4 made linear positions possible (``"transform"``) and wrote codebooks as integer steps; older files
  (versions 1 and 2) have log-space positions and float-list codebooks (`position_transform_of`, `codebook_list`);
* version 2 stored rotations as canonical Gibbs vectors; version 1 as SOG v2's smallest-three texels
  (`smallest_three_quats`);
* opacity got a plane of its own; before, it was the alpha of the ``sh0`` plane (`opacity_in_sh0_alpha`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .v2 import unpack_quats

#: ``plane(name, channels) -> (N, channels) uint8``: how the native decoder reads one of its planes
Plane = Callable[[str, int], np.ndarray]


def position_transform_of(means_meta: dict) -> str:
    """The position transform of a plain meta's ``"means"``: files before version 4 name none and are ``log``."""
    return means_meta.get("transform", "log")


def smallest_three_quats(plane: Plane) -> np.ndarray:
    """Version 1: (N, 4) wxyz quaternions from a 4-channel smallest-three ``quats`` plane, as SOG v2 stores them."""
    return unpack_quats(plane("quats", 4))


def opacity_in_sh0_alpha(plane: Plane) -> tuple[np.ndarray, np.ndarray]:
    """Files without an ``opacity`` plane: ``(sh0 labels (N, 3), opacity codes (N,))`` from the RGBA ``sh0`` plane."""
    sh0_tex = plane("sh0", 4)
    return sh0_tex[:, :3], sh0_tex[:, 3]


def codebook_list(stored) -> np.ndarray:
    """A codebook written as a plain list of floats (before `native.codebook_json`): (k,) float32."""
    return np.asarray(stored, np.float32)
