"""A tiny, dense, differentiable Gaussian splatting renderer — a stand-in for tests and the CPU experiment.

Every Gaussian is evaluated at every pixel (memory O(N·H·W)), so it is only for small scenes
(a few thousand Gaussians, 64×64 images). Colour is the SH degree-0 term only; background black.
It exists so the training plugin can be exercised without a GPU; real training uses gsplat. Cameras are
`sog.render.cameras.Camera` (e.g. from its `look_at`), scores `sog.metrics.psnr`.
"""

from __future__ import annotations

import torch

from ..render.cameras import Camera
from ..splats import SH_C0, quat_to_rotmat


def render(means, scales, quats, opacities, sh0, cam: Camera) -> torch.Tensor:
    """Render pre-activation attributes (means (N, 3), scales (N, 3) log, quats (N, 4), opacities (N,) logit,
    sh0 (N, 1, 3)) seen by ``cam`` (a `sog.render.cameras.Camera`) -> image (H, W, 3), differentiable in all of
    them."""
    h, w = cam.height, cam.width
    R, t = cam.viewmat[:3, :3].to(means.dtype), cam.viewmat[:3, 3].to(means.dtype)
    fx, fy, cx, cy = (float(v) for v in (cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]))
    p = means @ R.T + t                                          # (N, 3) camera space
    keep = p[:, 2] > 0.05
    p, scales, quats, opacities, sh0 = p[keep], scales[keep], quats[keep], opacities[keep], sh0[keep]
    z = p[:, 2]
    uv = torch.stack([fx * p[:, 0] / z + cx, fy * p[:, 1] / z + cy], 1)
    rot = R @ quat_to_rotmat(quats)                              # (N, 3, 3)
    m = rot * torch.exp(scales)[:, None, :]
    cov = m @ m.transpose(1, 2)                                  # (N, 3, 3) camera-space covariance
    J = torch.zeros(p.shape[0], 2, 3, dtype=p.dtype)
    J[:, 0, 0] = fx / z
    J[:, 0, 2] = -fx * p[:, 0] / z ** 2
    J[:, 1, 1] = fy / z
    J[:, 1, 2] = -fy * p[:, 1] / z ** 2
    cov2 = J @ cov @ J.transpose(1, 2) + 0.3 * torch.eye(2)
    a, b, c = cov2[:, 0, 0], cov2[:, 0, 1], cov2[:, 1, 1]
    det = (a * c - b * b).clamp(min=1e-12)
    ia, ib, ic = c / det, -b / det, a / det                      # inverse 2x2
    order = torch.argsort(z.detach())
    ys, xs = torch.meshgrid(torch.arange(h, dtype=p.dtype) + 0.5, torch.arange(w, dtype=p.dtype) + 0.5,
                            indexing="ij")
    dx = xs.reshape(-1, 1) - uv[order, 0]                        # (P, N) sorted front to back
    dy = ys.reshape(-1, 1) - uv[order, 1]
    power = -0.5 * (ia[order] * dx * dx + 2 * ib[order] * dx * dy + ic[order] * dy * dy)
    alpha = (torch.sigmoid(opacities[order]) * torch.exp(power.clamp(max=0))).clamp(max=0.99)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
    colour = (0.5 + SH_C0 * sh0[order].reshape(-1, 3)).clamp(min=0)
    img = (trans * alpha) @ colour                               # (P, 3)
    return img.reshape(h, w, 3)

