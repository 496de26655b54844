"""The shape of a binary glTF (``.glb``) holding Gaussians with ``KHR_gaussian_splatting``, in one place: shared by
the reader (`sog.io.glb`) and the writer (`sog.io.glb_writer`).

Facts from the glTF 2.0 specification and the extension's (independent code):

* GLB: a 12-byte header (magic ``glTF``, version 2, total length), then chunks of (length u32, type u32, data):
  first the JSON chunk (type ``JSON``, padded with spaces to 4 bytes), then one binary chunk (type ``BIN\\0``,
  padded with zeros).
* A splat primitive has ``mode`` 0 (POINTS), ``extensions.KHR_gaussian_splatting`` (``kernel`` ``"ellipse"``,
  ``colorSpace`` e.g. ``"srgb_rec709_display"``) and the attributes `ATTRIBUTES`: ``POSITION`` (VEC3),
  ``KHR_gaussian_splatting:ROTATION`` (VEC4, a unit quaternion x, y, z, w), ``:SCALE`` (VEC3, linear: the exp of a
  3DGS log-scale), ``:OPACITY`` (SCALAR, the sigmoid of the logit), ``:SH_DEGREE_0_COEF_0`` (VEC3, the DC
  coefficient as in a PLY) and, per higher degree l, ``:SH_DEGREE_l_COEF_n`` for n = 0 .. 2l (VEC3, r g b).
  (The extension's review draft called SCALE log-space; the ratified text, PlayCanvas and splat-transform store it
  linear, as here.)
* glTF's frame is +Y up. A PLY scene (y down) is turned 180° about z on the way in and out (`turn_z180`: x and y
  negated), as splat-transform's writer and the PlayCanvas engine place a PLY scene (checked against
  splat-transform 3.10's .glb in tests/test_glb.py); the 180° turn about x that SPZ's RUB frame asks for would
  also put +Y up, but show the scene from behind.
* Accessor component types: 5120 byte, 5121 unsigned byte, 5122 short, 5123 unsigned short, 5125 unsigned int,
  5126 float; ``normalized`` integers map to [-1, 1] (signed, max(c / (2^(b-1) - 1), -1)) or [0, 1] (unsigned).
"""

from __future__ import annotations

import numpy as np

from ..splats import SH_REST_COUNT

MAGIC = b"glTF"
VERSION = 2
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
EXTENSION = "KHR_gaussian_splatting"
POINTS = 0
FLOAT = 5126
MAX_SH_DEGREE = 3

#: accessor component type -> numpy dtype (little endian)
COMPONENTS = {5120: np.dtype("i1"), 5121: np.dtype("u1"), 5122: np.dtype("<i2"), 5123: np.dtype("<u2"),
              5125: np.dtype("<u4"), 5126: np.dtype("<f4")}
#: accessor type -> components per element
TYPES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}

PREFIX = EXTENSION + ":"
ATTRIBUTES = {"POSITION": "VEC3", PREFIX + "ROTATION": "VEC4", PREFIX + "SCALE": "VEC3",
              PREFIX + "OPACITY": "SCALAR", PREFIX + "SH_DEGREE_0_COEF_0": "VEC3"}


#: Sign of each higher SH coefficient (bands 1..3, 3DGS order) under the turn x -> -x, y -> -y.
Z180_SH = np.array([-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1], np.float64)


def turn_z180(means: np.ndarray, quats: np.ndarray, shN: np.ndarray):
    """The 180° turn about z between a PLY scene and its glTF frame: means (N, 3), quats (N, 4) wxyz, shN (N, K, 3)
    -> the same three, turned (its own inverse; a diagonal turn, so the quaternion's x and y just change sign)."""
    k = shN.shape[1]
    return means * [-1, -1, 1], quats * [1, -1, -1, 1], shN * Z180_SH[:k, None]


def sh_attributes(degree: int) -> list[str]:
    """The higher-SH attribute names of ``degree`` in 3DGS coefficient order (shN[:, k] is the k-th)."""
    return [f"{PREFIX}SH_DEGREE_{l}_COEF_{n}" for l in range(1, degree + 1) for n in range(2 * l + 1)]


assert all(len(sh_attributes(d)) == SH_REST_COUNT[d] for d in SH_REST_COUNT)


def dequantise(values: np.ndarray, component: int, normalized: bool) -> np.ndarray:
    """An accessor's stored values as float64 (``normalized`` integers to [-1, 1] or [0, 1])."""
    out = values.astype(np.float64)
    if normalized and component != FLOAT:
        bits = COMPONENTS[component].itemsize * 8
        if COMPONENTS[component].kind == "i":
            out = np.maximum(out / ((1 << (bits - 1)) - 1), -1.0)
        else:
            out = out / ((1 << bits) - 1)
    return out
