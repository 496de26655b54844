"""Rendering: the reference renderer (CPU rasteriser, gsplat on CUDA), cameras, views, importance, engine renders.

    from sog.render import render, orbit_cameras
    cams = orbit_cameras(splats.means, views=8, size=256)
    images = render(splats, cams)              # (C, H, W, 3) float32 in [0, 1+]

Both backends share gsplat's conventions (see `sog.render.cpu`), so their images agree closely. The
differentiable renderer for training on a CPU is `render_tensors(..., backend="tiles")` (`sog.render.tiles`).
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from ..device import resolve_device
from ..errors import SogError
from ..splats import Splats
from .cameras import (Camera, find_scene_cameras, load_cameras, look_at, orbit_cameras, parse_size,
                      read_colmap, read_cameras_json, select_views)
from .cpu import RasterConfig, render_one

__all__ = ["render", "render_tensors", "Camera", "RasterConfig", "orbit_cameras", "look_at", "load_cameras",
           "read_cameras_json", "read_colmap", "find_scene_cameras", "select_views", "parse_size", "BACKENDS"]

BACKENDS = ("auto", "cpu", "gsplat")


def _pick_backend(backend: str, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise SogError(f"unknown render backend {backend!r} (use {', '.join(BACKENDS)})")
    if backend == "cpu":
        return "cpu"
    from .gsplat_backend import available
    if backend == "gsplat":
        if device.type != "cuda" or not available():
            raise SogError("the gsplat backend needs the gsplat package and a CUDA GPU")
        return "gsplat"
    return "gsplat" if device.type == "cuda" and available() else "cpu"


def render_tensors(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                   sh0: torch.Tensor, shN: torch.Tensor, camera: Camera, backend: str = "cpu",
                   config: RasterConfig = RasterConfig(), sh_degree: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render activated tensors (means (N, 3), quats (N, 4), scales (N, 3) standard deviations, opacities (N,)
    in [0, 1], sh0 (N, 1, 3), shN (N, K, 3)) from one camera -> RGB (H, W, 3), alpha (H, W).

    Differentiable w.r.t. all inputs with every backend. ``backend="cpu"``: autograd through the torch ops of
    `sog.render.cpu.rasterize_pairs` (the reference, any device); ``backend="tiles"``: projection and SH in
    torch autograd, compositing in the tiled numba kernel with its own backward pass (CPU tensors; the
    training path, same gradients up to float rounding); ``backend="gsplat"``: gsplat on CUDA.
    """
    if backend == "gsplat":
        from .gsplat_backend import render_gsplat
        return render_gsplat(means, quats, scales, opacities, sh0, shN, camera.viewmat, camera.K,
                             camera.width, camera.height, config, sh_degree)
    if backend not in ("cpu", "tiles"):
        raise SogError(f"unknown render_tensors backend {backend!r} (use cpu, tiles or gsplat)")
    return render_one(means, quats, scales, opacities, sh0, shN, camera.viewmat, camera.K, camera.width,
                      camera.height, config, sh_degree, grad="tiles" if backend == "tiles" else "pairs")


@torch.no_grad()
def render(splats: Splats, cameras: list[Camera] | Camera, size: int | tuple[int, int] | str | None = None,
           backend: str = "auto", device: str | torch.device = "auto", config: RasterConfig | None = None,
           progress: bool = False) -> torch.Tensor:
    """Render ``splats`` from each camera -> (C, H, W, 3) float32 on the CPU (not clamped to 1).

    ``size`` (N, "WxH" or (W, H)) resizes every camera first; ``backend`` is ``auto`` (gsplat when CUDA
    and gsplat are present, else the PyTorch rasteriser), ``cpu`` (PyTorch rasteriser on ``device``) or
    ``gsplat``. All cameras must have the same image size. No gradients (see `render_tensors` for those).
    """
    cams = [cameras] if isinstance(cameras, Camera) else list(cameras)
    if not cams:
        raise SogError("no cameras to render")
    if size is not None:
        w, h = parse_size(size)
        cams = [c.resized(w, h) for c in cams]
    if len({(c.width, c.height) for c in cams}) > 1:
        raise SogError("all cameras must have the same image size (pass size=...)")
    dev = resolve_device(device)
    kind = _pick_backend(backend, dev)
    config = config or RasterConfig()
    s = splats.to(dev)
    means = s.means.float()
    quats = s.quats.float()
    scales = torch.exp(s.scales.float())
    opacities = torch.sigmoid(s.opacities.float())
    sh0, shN = s.sh0.float(), s.shN.float()
    out = []
    for cam in tqdm(cams, desc="render", unit="view", disable=not progress):
        rgb, _ = render_tensors(means, quats, scales, opacities, sh0, shN, cam, kind, config)
        out.append(rgb.float().cpu())
    return torch.stack(out)
