"""The `Splats` container: one 3DGS scene as plain tensors with gsplat's names.

All values are pre-activation, exactly as a trainer stores them:

==========  ==========  ==============================================
field       shape       meaning
==========  ==========  ==============================================
means       (N, 3)      positions
scales      (N, 3)      log of the per-axis standard deviation
quats       (N, 4)      rotation quaternion (w, x, y, z), not normalised
opacities   (N,)        logit of the opacity
sh0         (N, 1, 3)   DC spherical-harmonic coefficient per colour
shN         (N, K, 3)   higher SH bands, K = 0, 3, 8 or 15 (degree 0..3)
extras      {name: (N,)}  any other per-vertex PLY property, kept as is
==========  ==========  ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import SogError

#: Number of higher-band SH coefficients per colour channel for degree 0..3.
SH_REST_COUNT = {0: 0, 1: 3, 2: 8, 3: 15}
SH_C0 = 0.28209479177387814

FIELDS = ("means", "scales", "quats", "opacities", "sh0", "shN")


def sh_degree_from_rest(k: int) -> int:
    """SH degree for K higher-band coefficients per channel (0, 3, 8, 15)."""
    for degree, count in SH_REST_COUNT.items():
        if count == k:
            return degree
    raise SogError(f"unsupported number of higher SH coefficients per channel: {k} (expected 0, 3, 8 or 15)")


def quat_to_rotmat(quats: torch.Tensor, unit: bool = False) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z), any non-zero norm -> (..., 3, 3) rotation matrices (the one conversion
    every renderer, camera reader and codec uses). ``unit``: the quaternions are of unit length already (not
    normalised again)."""
    w, x, y, z = (quats if unit else torch.nn.functional.normalize(quats, dim=-1)).unbind(-1)
    return torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
                       -1).reshape(*quats.shape[:-1], 3, 3)


@dataclass
class Splats:
    """A Gaussian-splat scene; see the module docstring for shapes."""

    means: torch.Tensor
    scales: torch.Tensor
    quats: torch.Tensor
    opacities: torch.Tensor
    sh0: torch.Tensor
    shN: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @staticmethod
    def from_arrays(means, scales, quats, opacities, sh0, shN, extras: dict | None = None) -> "Splats":
        """A scene from numpy arrays (or anything `np.asarray` takes) as a decoder produces them: means (N, 3),
        scales (N, 3) log, quats (N, 4) wxyz, opacities (N,) logit, sh0 (N, 3) or (N, 1, 3), shN (N, K, 3); each
        becomes a contiguous float32 tensor (extras are kept as they are)."""
        def t(a) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

        n = int(np.shape(means)[0])
        return Splats(means=t(means), scales=t(scales), quats=t(quats), opacities=t(opacities),
                      sh0=t(sh0).reshape(n, 1, 3), shN=t(shN), extras=dict(extras or {}))

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_rest(int(self.shN.shape[1]))

    def tensors(self) -> dict[str, torch.Tensor]:
        """The six attribute tensors by gsplat name (no extras)."""
        return {name: getattr(self, name) for name in FIELDS}

    def validate(self, what: str = "scene") -> "Splats":
        """Check shapes and that every value is finite; raise `SogError` naming the problem."""
        n = len(self)
        if n == 0:
            raise SogError(f"{what} has zero Gaussians")
        expected = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,), "sh0": (n, 1, 3)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise SogError(f"{what}: {name} has shape {got}, expected {shape}")
        if self.shN.ndim != 3 or self.shN.shape[0] != n or self.shN.shape[2] != 3:
            raise SogError(f"{what}: shN has shape {tuple(self.shN.shape)}, expected ({n}, K, 3)")
        sh_degree_from_rest(int(self.shN.shape[1]))
        for name, tensor in self.tensors().items():
            if all_finite(tensor):  # one pass without a mask; the mask only to name the first bad Gaussian
                continue
            bad = ~torch.isfinite(tensor)
            if bool(bad.any()):
                rows = bad.reshape(n, -1).any(dim=1).nonzero().flatten()
                raise SogError(
                    f"{what}: {name} has {int(rows.numel())} Gaussian(s) with NaN or Inf values "
                    f"(first at index {int(rows[0])})"
                )
        return self

    def permute(self, order: torch.Tensor) -> "Splats":
        """A new scene whose i-th Gaussian is ``self[order[i]]``; ``order`` is (M,) long."""
        order = order.to(self.means.device)
        return Splats(
            **{name: t[order] for name, t in self.tensors().items()},
            extras={k: v[order] for k, v in self.extras.items()},
        )

    def to(self, device: str | torch.device) -> "Splats":
        return Splats(
            **{name: t.to(device) for name, t in self.tensors().items()},
            extras={k: v.to(device) for k, v in self.extras.items()},
        )

    def with_sh_degree(self, degree: int) -> "Splats":
        """The same scene with SH truncated (or zero-padded) to ``degree``."""
        k = SH_REST_COUNT[degree]
        n = len(self)
        shN = self.shN[:, :k]
        if shN.shape[1] < k:
            pad = torch.zeros(n, k - shN.shape[1], 3, dtype=shN.dtype, device=shN.device)
            shN = torch.cat([shN, pad], dim=1)
        return Splats(**{**self.tensors(), "shN": shN}, extras=dict(self.extras))

    @staticmethod
    def concat(parts: list["Splats"]) -> "Splats":
        """Concatenate scenes of the same SH degree (extras kept only when all have them)."""
        keys = set.intersection(*(set(p.extras) for p in parts)) if parts else set()
        return Splats(
            **{name: torch.cat([getattr(p, name) for p in parts]) for name in FIELDS},
            extras={k: torch.cat([p.extras[k] for p in parts]) for k in sorted(keys)},
        )


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether every value of ``tensor`` (any shape, float) is finite: its smallest and largest value are (a NaN
    makes both NaN). One reduction, no (N, ...) mask."""
    if tensor.numel() == 0:
        return True
    lo, hi = torch.aminmax(tensor.detach())
    return bool(torch.isfinite(lo) & torch.isfinite(hi))
