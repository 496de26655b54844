"""The gsplat backend: ``gsplat.rasterization`` on CUDA (optional dependency, extra ``gpu``)."""

from __future__ import annotations

import torch

from ..errors import SogError
from .cpu import RasterConfig


def available() -> bool:
    """True when gsplat imports and a CUDA GPU is present."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except Exception:  # gsplat may fail to import for many reasons (no CUDA toolkit, ABI mismatch)
        return False
    return True


def render_gsplat(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                  sh0: torch.Tensor, shN: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int,
                  height: int, config: RasterConfig = RasterConfig(),
                  sh_degree: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as `sog.render.cpu.render_one` (activated values on a CUDA device) -> RGB (H, W, 3),
    alpha (H, W). Uses gsplat's classic (non-antialiased) mode with the same near/far/eps2d/background."""
    try:
        from gsplat import rasterization
    except Exception as exc:
        raise SogError(f"the gsplat backend needs the gsplat package ({exc})") from None
    device = means.device
    coeffs = torch.cat([sh0, shN], 1)                                   # (N, (d+1)^2, 3)
    full = {1: 0, 4: 1, 9: 2, 16: 3}[coeffs.shape[1]]
    degree = full if sh_degree is None else min(sh_degree, full)
    bg = torch.tensor([config.background], dtype=means.dtype, device=device)
    colors, alphas, _ = rasterization(
        means, quats, scales, opacities, coeffs,
        viewmat[None].to(device=device, dtype=means.dtype), K[None].to(device=device, dtype=means.dtype),
        int(width), int(height), near_plane=config.near, far_plane=config.far, eps2d=config.eps2d,
        sh_degree=degree, backgrounds=bg, rasterize_mode="classic", packed=False)
    return colors[0], alphas[0, ..., 0]
