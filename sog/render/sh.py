"""Spherical-harmonics colour, degree 0..3, with the INRIA/gsplat constants and basis order."""

from __future__ import annotations

import torch

from ..stable import normalize, weighted_sum

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
      1.445305721320277, -0.5900435899266435)


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Real SH basis values for unit directions ``dirs`` (N, 3) -> (N, (degree+1)**2), INRIA order and signs."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree > 0:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree > 1:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [C2[0] * xy, C2[1] * yz, C2[2] * (2 * zz - xx - yy), C2[3] * xz, C2[4] * (xx - yy)]
    if degree > 2:
        out += [C3[0] * y * (3 * xx - yy), C3[1] * xy * z, C3[2] * y * (4 * zz - xx - yy),
                C3[3] * z * (2 * zz - 3 * xx - 3 * yy), C3[4] * x * (4 * zz - xx - yy), C3[5] * z * (xx - yy),
                C3[6] * x * (xx - 3 * yy)]
    return torch.stack(out, -1)


def sh_to_rgb(sh0: torch.Tensor, shN: torch.Tensor, dirs: torch.Tensor, degree: int | None = None,
              portable: bool = False) -> torch.Tensor:
    """Colour ``clamp(SH(dirs) + 0.5, min=0)`` -> (N, 3).

    sh0 (N, 1, 3) DC coefficients; shN (N, K, 3) higher bands; dirs (N, 3) viewing directions
    (mean - camera centre; normalised here). ``degree`` defaults to the one ``K`` implies and may be lower.
    ``portable``: normalise and sum with `sog.stable` (the same bits on every CPU).
    """
    k = shN.shape[1]
    full = {0: 0, 3: 1, 8: 2, 15: 3}[k]
    degree = full if degree is None else min(degree, full)
    coeffs = torch.cat([sh0, shN[:, : (degree + 1) ** 2 - 1]], 1)       # (N, (d+1)^2, 3)
    if degree == 0:
        rgb = C0 * coeffs[:, 0]
    else:
        if portable:
            rgb = weighted_sum(sh_basis(normalize(dirs), degree), coeffs)
        else:
            basis = sh_basis(torch.nn.functional.normalize(dirs, dim=-1), degree)   # (N, (d+1)^2)
            rgb = (basis.unsqueeze(-1) * coeffs).sum(1)
    return (rgb + 0.5).clamp(min=0)
