"""A tiny, dense, differentiable Gaussian splatting renderer — a stand-in for tests and the CPU experiment.

Every Gaussian is evaluated at every pixel (memory O(N·H·W)), so it is only for small scenes
(a few thousand Gaussians, 64×64 images). Colour is the SH degree-0 term only; background black.
It exists so the training plugin can be exercised without a GPU; real training uses gsplat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..splats import SH_C0, quat_to_rotmat


@dataclass
class Camera:
    """Pinhole camera: world->camera rotation ``R`` (3, 3), translation ``t`` (3,), focal ``f`` px, image ``size`` (H, W)."""

    R: torch.Tensor
    t: torch.Tensor
    f: float
    size: tuple[int, int]


def look_at(eye: torch.Tensor, target: torch.Tensor, f: float, size: tuple[int, int]) -> Camera:
    """Camera at ``eye`` (3,) looking at ``target`` (3,) (OpenCV axes: x right, y down, z forward)."""
    z = torch.nn.functional.normalize(target - eye, dim=0)
    up = torch.tensor([0.0, -1.0, 0.0]) if abs(float(z[1])) < 0.99 else torch.tensor([0.0, 0.0, 1.0])
    x = torch.nn.functional.normalize(torch.linalg.cross(z, up), dim=0)
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z])
    return Camera(R=R, t=-R @ eye, f=f, size=size)


def render(means, scales, quats, opacities, sh0, cam: Camera) -> torch.Tensor:
    """Render pre-activation attributes (means (N, 3), scales (N, 3) log, quats (N, 4), opacities (N,) logit,
    sh0 (N, 1, 3)) -> image (H, W, 3), differentiable in all of them."""
    h, w = cam.size
    p = means @ cam.R.T + cam.t                                  # (N, 3) camera space
    keep = p[:, 2] > 0.05
    p, scales, quats, opacities, sh0 = p[keep], scales[keep], quats[keep], opacities[keep], sh0[keep]
    z = p[:, 2]
    uv = torch.stack([cam.f * p[:, 0] / z + w / 2, cam.f * p[:, 1] / z + h / 2], 1)
    rot = cam.R @ quat_to_rotmat(quats)                          # (N, 3, 3)
    m = rot * torch.exp(scales)[:, None, :]
    cov = m @ m.transpose(1, 2)                                  # (N, 3, 3) camera-space covariance
    J = torch.zeros(p.shape[0], 2, 3, dtype=p.dtype)
    J[:, 0, 0] = cam.f / z
    J[:, 0, 2] = -cam.f * p[:, 0] / z ** 2
    J[:, 1, 1] = cam.f / z
    J[:, 1, 2] = -cam.f * p[:, 1] / z ** 2
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


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1] (values clamped)."""
    mse = (a.clamp(0, 1) - b.clamp(0, 1)).pow(2).mean()
    return float(-10 * torch.log10(mse.clamp(min=1e-12)))
