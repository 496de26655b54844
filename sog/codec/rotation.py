"""Canonical rotations: the same Gaussian, written with the smallest rotation angle.

A Gaussian's covariance ``R diag(s)^2 R^T`` does not change when its rotation is turned by one of
the 24 rotations that map the coordinate axes onto each other (the rotation group of the cube),
``R -> R P``, provided its scales are permuted to match (``s'_i = s_k`` where column ``i`` of ``P``
is ``±e_k``). Training picks one of the 24 at random, so stored rotations cover all of SO(3) and
neighbouring Gaussians on a surface hold unrelated quaternions. Picking, for every Gaussian, the
``P`` that makes the rotation angle smallest (largest ``|w|``) leaves renders unchanged but puts
every quaternion in a 24x smaller region around the identity, and similar Gaussians get similar
quaternions: the quats plane holds fewer distinct, smoother values.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from ..splats import FIELDS, Splats, quat_to_rotmat


def _cube_rotations() -> np.ndarray:
    """(24, 4) unit wxyz quaternions of the rotations of the cube (one of each ±q pair)."""
    r = np.sqrt(0.5)
    out = [(1.0, 0, 0, 0), (0, 1.0, 0, 0), (0, 0, 1.0, 0), (0, 0, 0, 1.0)]
    for i, j in itertools.combinations(range(4), 2):          # 90° turns and 180° face-diagonal turns
        for sign in (1, -1):
            q = [0.0] * 4
            q[i], q[j] = r, sign * r
            out.append(tuple(q))
    for signs in itertools.product((1, -1), repeat=3):         # 120° turns about the body diagonals
        out.append((0.5, *(0.5 * s for s in signs)))
    return np.array(out, np.float64)


CUBE = _cube_rotations()


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions, broadcasting over leading axes."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], -1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz quaternions (any norm) to (..., 3, 3) float64 rotation matrices (`sog.splats.quat_to_rotmat`)."""
    return quat_to_rotmat(torch.from_numpy(np.asarray(q, np.float64))).numpy()


#: for each cube rotation P, the scale axis each new axis takes: s'_i = s[_AXES[p, i]]
_AXES = np.abs(quat_to_matrix(CUBE)).argmax(1)


def canonical_rotations(quats: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rewrite each Gaussian with its smallest-angle equivalent rotation.

    ``quats`` (N, 4) wxyz (any norm; zero rows stay zero), ``scales`` (N, 3) (log or linear: they are
    only permuted). Returns ``(quats (N, 4) unit with w >= 0, scales (N, 3))`` describing the same
    covariances."""
    quats = np.asarray(quats, np.float64)
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    q = np.where(norm > 0, quats / np.where(norm > 0, norm, 1), np.array([1.0, 0, 0, 0]))
    # w of q ⊗ p for all 24 p: q_w p_w - q_v · p_v
    w = q[:, :1] * CUBE[None, :, 0] - q[:, 1:] @ CUBE[:, 1:].T          # (N, 24)
    w = np.abs(w)
    w[:, 0] += 1e-12                            # on a tie keep the rotation as it is: canonical twice = once
    best = w.argmax(1)
    out = quat_multiply(q, CUBE[best])
    out *= np.where(out[:, :1] < 0, -1.0, 1.0)
    out[norm[:, 0] == 0] = quats[norm[:, 0] == 0]
    scales = np.asarray(scales)
    return out, np.take_along_axis(scales, _AXES[best], axis=1)


#: largest |x/w|, |y/w|, |z/w| of a canonical rotation: tan(22.5°), where a 90° turn starts to be closer
GIBBS_MAX = np.sqrt(2.0) - 1.0


def canonical_splats(splats: Splats) -> Splats:
    """``splats`` with every rotation in its canonical form and the scales permuted to match (`canonical_rotations`:
    the same covariances and renders, the form the encoders store); the dtypes and extras kept."""
    quats, scales = canonical_rotations(splats.quats.detach().double().numpy(), splats.scales.detach().double().numpy())
    return Splats(**{**{name: getattr(splats, name) for name in FIELDS},
                     "quats": torch.from_numpy(quats).to(splats.quats.dtype),
                     "scales": torch.from_numpy(scales).to(splats.scales.dtype)}, extras=dict(splats.extras))


def gibbs_levels(bits: float) -> int:
    """Levels per Gibbs component for a bit depth that may be fractional (6.5: half a bit less than 7): an odd
    count near ``2^bits - 1`` (``2^bits - 1`` for whole bits), so that zero is a level; at most 255."""
    return min(255, 2 * int(round((2.0 ** bits - 2) / 2)) + 1)


def pack_gibbs(quats: np.ndarray, levels: int = 255) -> np.ndarray:
    """Canonical (N, 4) wxyz quaternions (w > 0) to (N, 3) uint8 codes of their Gibbs vector ``(x, y, z) / w``.

    Each component lies in [-tan 22.5°, tan 22.5°] (`canonical_rotations`); it is quantised uniformly to
    ``levels`` (odd, `gibbs_levels`) levels so that zero (no turn about that axis) is a level. Near the identity
    one code step turns a Gaussian by about ``4 tan(22.5°) / (levels - 1)`` radians (0.0065 at 255 levels,
    1.7x finer than an 8-bit smallest-three component)."""
    top = levels - 1
    q = np.asarray(quats, np.float64)
    g = q[:, 1:] / np.maximum(q[:, :1], 1e-12)
    return np.clip(np.rint((np.clip(g / GIBBS_MAX, -1, 1) * 0.5 + 0.5) * top), 0, top).astype(np.uint8)


def unpack_gibbs(codes: np.ndarray, levels: int = 255) -> np.ndarray:
    """(N, 3) uint8 Gibbs codes to (N, 4) unit wxyz quaternions (inverse of `pack_gibbs`)."""
    top = levels - 1
    g = (np.minimum(codes.astype(np.float64), top) / top * 2 - 1) * GIBBS_MAX
    q = np.concatenate([np.ones((len(g), 1)), g], 1)
    return q / np.linalg.norm(q, axis=1, keepdims=True)
