"""Pure-PyTorch Gaussian-splat rasteriser (any device; the reference backend when gsplat/CUDA is absent).

It follows gsplat's "classic" conventions so the two backends agree:

* projection: world->camera ``viewmat``; Gaussians with depth outside ``[near, far]`` are culled;
  covariance ``Σ = R S Sᵀ Rᵀ`` (quaternion normalised, ``S = diag(scale)``), EWA projection ``J W Σ Wᵀ Jᵀ``
  with the perspective Jacobian evaluated at the mean clamped to 1.3x the field of view (as gsplat does),
  plus ``eps2d`` (0.3 px²) on the diagonal; Gaussians with a non-positive determinant or opacity < 1/255 are
  culled;
* pixel centres at ``(j + 0.5, i + 0.5)``; ``alpha = min(alpha_max, opacity * exp(-½ dᵀ Σ⁻¹ d))``, skipped
  below 1/255; front-to-back compositing in depth (camera z) order; a pixel stops at the first Gaussian that
  would bring its transmittance to ``t_min`` (1e-4) or below (that Gaussian is not drawn); the background is
  added with the remaining transmittance.

Two compositing paths give the same images (up to float rounding): renders without gradients (evaluation, the
rate search) go to the tiled numba kernel of `sog.render.tiles` (tiles of 16 px, per-tile depth lists, early
termination per pixel and per tile; 12 views of 1M Gaussians at 512 px in about 30-50 CPU seconds); renders that
need gradients take `rasterize_pairs`, below (importance: the reference), or, with ``grad="tiles"`` (the
fine-tune), the same tiled kernel with a hand-written backward pass (gsplat's: `sog.render.tiles`).

`rasterize_pairs`: instead of tiles, every kept Gaussian is expanded into the pixels of its exact
opacity-aware bounding box (``sqrt(2 ln(255·opacity))`` standard deviations, gsplat's tight box), so a
sub-pixel Gaussian costs a handful of pixel evaluations, not a 16x16 tile. The (Gaussian, pixel) pairs are
built for depth-sorted chunks of Gaussians with a bounded number of pairs each (memory stays bounded); within
a chunk they are stably sorted by pixel and composited with a segmented cumulative sum of ``log(1 - alpha)``
(float64), carrying each pixel's transmittance from chunk to chunk. Pairs landing on pixels that are already
saturated are dropped before any work.

Differentiable: every step on values is an out-of-place torch op (gather, exp, cumsum, index_add), so
autograd gives gradients w.r.t. means, quats, scales, opacities and SH coefficients (the bounding boxes and
orders are integers, as in gsplat). Use it under ``torch.no_grad()`` for evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..splats import quat_to_rotmat
from ..stable import normalize
from .sh import sh_to_rgb


@dataclass
class RasterConfig:
    """Rasterisation constants (defaults are gsplat's) and the CPU chunk budget."""

    near: float = 0.01
    far: float = 1e10
    eps2d: float = 0.3
    alpha_min: float = 1.0 / 255.0
    alpha_max: float = 0.999
    t_min: float = 1e-4
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: (Gaussian, pixel) pairs generated per chunk: bounds memory (about 100 bytes a pair at peak).
    chunk_pairs: int = 2_000_000
    #: without gradients, composite with the tiled kernel (`sog.render.tiles`, numba) when it is installed
    tiled: bool = True
    #: its tile side in pixels
    tile: int = 16
    #: the ops whose rounding depends on the CPU's vector code in their `sog.stable` versions (the opacity
    #: sigmoid is the caller's): the same bits on every CPU, a little slower (the training path)
    portable: bool = False


@dataclass
class Projected:
    """Gaussians projected to one image (only the kept ones; ``index`` (M,) are their rows in the input).

    means2d (M, 2) pixels; depths (M,) camera z; conics (M, 3) = inverse 2D covariance (a, b, c) for
    ``[[a, b], [b, c]]``; cov_diag (M, 2) = 2D covariance diagonal; opacities (M,) in (0, 1].
    """

    index: torch.Tensor
    means2d: torch.Tensor
    depths: torch.Tensor
    conics: torch.Tensor
    cov_diag: torch.Tensor
    opacities: torch.Tensor


def project(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
            viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
            config: RasterConfig = RasterConfig()) -> Projected:
    """EWA-project Gaussians (activated values: means (N, 3), quats (N, 4), scales (N, 3) standard deviations,
    opacities (N,) in [0, 1]) with ``viewmat`` (4, 4) and ``K`` (3, 3); cull as gsplat does."""
    R, t = viewmat[:3, :3].to(means), viewmat[:3, 3].to(means)
    fx, fy, cx, cy = (float(v) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    with torch.no_grad():
        z = means.detach() @ R[2] + t[2]
        keep = (z >= config.near) & (z <= config.far) & (opacities.detach() >= config.alpha_min)
        index = keep.nonzero().squeeze(1)
    means, quats, scales, opacities = means[index], quats[index], scales[index], opacities[index]
    pc = means @ R.T + t                                                     # (M, 3) camera space
    x, y, z = pc.unbind(1)
    rotmat = quat_to_rotmat(normalize(quats), unit=True) if config.portable else quat_to_rotmat(quats)
    M = R @ rotmat * scales[:, None, :]                       # (M, 3, 3) = W R_q S
    cov = M @ M.transpose(1, 2)                                              # camera-space covariance
    # perspective Jacobian at the mean, with x/z and y/z clamped to 1.3x the field of view (gsplat)
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    tx = z * torch.clamp(x / z, -lim_xn, lim_xp)
    ty = z * torch.clamp(y / z, -lim_yn, lim_yp)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * tx / (z * z), zero, fy / z, -fy * ty / (z * z)], 1).view(-1, 2, 3)
    cov2 = J @ cov @ J.transpose(1, 2)
    a = cov2[:, 0, 0] + config.eps2d
    b = cov2[:, 0, 1]
    c = cov2[:, 1, 1] + config.eps2d
    det = a * c - b * b
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], 1)
    with torch.no_grad():
        ok = (det > 0).nonzero().squeeze(1)
    det = det[ok]
    conics = torch.stack([c[ok] / det, -b[ok] / det, a[ok] / det], 1)
    return Projected(index=index[ok], means2d=means2d[ok], depths=z[ok], conics=conics,
                     cov_diag=torch.stack([a[ok], c[ok]], 1), opacities=opacities[ok])


def _boxes(p: Projected, width: int, height: int, alpha_min: float) -> tuple[torch.Tensor, ...]:
    """Per Gaussian, the inclusive pixel ranges whose centres lie inside its opacity-aware box -> x0, y0, nx, ny
    (long, (M,)); nx or ny is 0 when the box misses the image."""
    with torch.no_grad():
        extend = torch.sqrt(2 * torch.log(p.opacities.detach() / alpha_min).clamp(min=0)).clamp(max=3.33)
        rx = extend * p.cov_diag[:, 0].detach().sqrt()
        ry = extend * p.cov_diag[:, 1].detach().sqrt()
        u, v = p.means2d.detach().unbind(1)
        x0 = torch.ceil(u - rx - 0.5).clamp(min=0)
        x1 = torch.floor(u + rx - 0.5).clamp(max=width - 1)
        y0 = torch.ceil(v - ry - 0.5).clamp(min=0)
        y1 = torch.floor(v + ry - 0.5).clamp(max=height - 1)
        nx = (x1 - x0 + 1).clamp(min=0)
        ny = (y1 - y0 + 1).clamp(min=0)
        return x0.long(), y0.long(), nx.long(), ny.long()


#: the ways `rasterize` may take when gradients are needed
GRAD_PATHS = ("pairs", "tiles")


def rasterize(p: Projected, colors: torch.Tensor, width: int, height: int,
              config: RasterConfig = RasterConfig(), grad: str = "pairs") -> tuple[torch.Tensor, torch.Tensor]:
    """Composite projected Gaussians with ``colors`` (M, C) -> image (H, W, C) and alpha (H, W).

    When no gradient is needed (``torch.no_grad()``, or inputs that require none) and the tensors are on the
    CPU, the tiled kernel of `sog.render.tiles` does the same compositing (images equal up to float rounding).
    When one is: ``grad="pairs"`` takes `rasterize_pairs` (autograd through torch ops, any device: the
    reference), ``grad="tiles"`` the tiled kernel with its hand-written backward pass
    (`sog.render.tiles.rasterize_tiles_grad`, CPU, same gradients up to float rounding, much faster)."""
    if grad not in GRAD_PATHS:
        raise ValueError(f"grad must be one of {GRAD_PATHS}, not {grad!r}")
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (p.means2d, p.conics, p.opacities, colors))
    if p.means2d.device.type == "cpu" and config.tiled and (not needs_grad or grad == "tiles"):
        from . import tiles
        if tiles.available():
            x0, y0, nx, ny = _boxes(p, width, height, config.alpha_min)
            if needs_grad:
                return tiles.rasterize_tiles_grad(p, colors, x0, y0, nx, ny, width, height, config)
            return tiles.rasterize_tiles(p, colors, x0, y0, nx, ny, width, height, config)
    return rasterize_pairs(p, colors, width, height, config)


def rasterize_pairs(p: Projected, colors: torch.Tensor, width: int, height: int,
                    config: RasterConfig = RasterConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """`rasterize` by pair expansion in torch ops (see the module docstring): any device, differentiable."""
    device, dtype = p.means2d.device, p.means2d.dtype
    n_pix = width * height
    x0, y0, nx, ny = _boxes(p, width, height, config.alpha_min)
    area = nx * ny
    with torch.no_grad():
        live = (area > 0).nonzero().squeeze(1)
        order = live[torch.sort(p.depths.detach()[live], stable=True).indices]   # front to back
    area_o = area[order]
    ends = torch.cumsum(area_o, 0)
    image = torch.zeros(n_pix, colors.shape[1], device=device, dtype=colors.dtype)
    log_t = torch.zeros(n_pix, device=device, dtype=torch.float64)             # log transmittance per pixel
    done = torch.zeros(n_pix, device=device, dtype=torch.bool)
    start = 0
    consumed = 0
    while start < len(order):
        # the next chunk: as many Gaussians as fit in the pair budget (at least one)
        stop = int(torch.searchsorted(ends, consumed + config.chunk_pairs, right=True))
        stop = max(stop, start + 1)
        g = order[start:stop]
        counts = area_o[start:stop]
        n_pairs = int(counts.sum())
        first = ends[start:stop] - counts - consumed                             # offset of each Gaussian's block
        consumed = int(ends[stop - 1])
        start = stop
        with torch.no_grad():
            local = torch.arange(n_pairs, device=device)
            rank = torch.repeat_interleave(torch.arange(len(g), device=device), counts, output_size=n_pairs)
            local = local - first[rank]
            gi = g[rank]
            w = nx[gi]
            px = x0[gi] + local % w
            py = y0[gi] + local // w
            pix = py * width + px
            alive = ~done[pix]
            rank, gi, px, py, pix = rank[alive], gi[alive], px[alive], py[alive], pix[alive]
        dx = p.means2d[gi, 0] - (px.to(dtype) + 0.5)
        dy = p.means2d[gi, 1] - (py.to(dtype) + 0.5)
        con = p.conics[gi]
        sigma = 0.5 * (con[:, 0] * dx * dx + con[:, 2] * dy * dy) + con[:, 1] * dx * dy
        alpha = torch.clamp(p.opacities[gi] * torch.exp(-sigma), max=config.alpha_max)
        with torch.no_grad():
            sel = ((sigma >= 0) & (alpha >= config.alpha_min)).nonzero().squeeze(1)
            # stable sort by pixel keeps depth order within each pixel (pairs were made front to back)
            by_pix = sel[torch.sort(pix[sel], stable=True).indices]
            pix_s = pix[by_pix]
            if len(pix_s) == 0:
                continue
            new_seg = torch.ones_like(pix_s, dtype=torch.bool)
            new_seg[1:] = pix_s[1:] != pix_s[:-1]
            seg_id = torch.cumsum(new_seg.long(), 0) - 1
            seg_first = new_seg.nonzero().squeeze(1)
        a = alpha[by_pix]
        l = torch.log1p(-a.double())                                            # log(1 - alpha) <= 0
        csum = torch.cumsum(l, 0)
        excl = csum - l                                                          # sum before this pair
        excl = excl - excl[seg_first][seg_id]                                    # ... within its pixel
        log_before = log_t[pix_s] + excl
        with torch.no_grad():
            ok = (log_before + l).detach() > math.log(config.t_min)             # stop before T <= t_min
            # (transmittance only falls, so the drawn pairs of a pixel are a prefix of its segment)
            stopped = pix_s[~ok]
            keep = ok.nonzero().squeeze(1)
        weight = (a[keep] * torch.exp(log_before[keep]).to(a.dtype)).unsqueeze(1)
        contrib = weight * colors[gi[by_pix[keep]]]
        image = image.index_add(0, pix_s[keep], contrib)
        log_t = log_t.index_add(0, pix_s[keep], l[keep])
        if len(stopped):
            done = done.index_fill(0, stopped, True)
    trans = torch.exp(log_t).to(image.dtype)
    bg = torch.tensor(config.background, device=device, dtype=image.dtype)[: image.shape[1]]
    image = image + trans[:, None] * bg
    return image.view(height, width, -1), (1 - trans).view(height, width)


def render_one(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
               sh0: torch.Tensor, shN: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
               config: RasterConfig = RasterConfig(), sh_degree: int | None = None,
               grad: str = "pairs") -> tuple[torch.Tensor, torch.Tensor]:
    """Render activated Gaussians (see `project`; sh0 (N, 1, 3), shN (N, K, 3)) from one camera
    -> RGB (H, W, 3) and alpha (H, W); ``grad`` picks the compositing that gradients go through (`rasterize`)."""
    p = project(means, quats, scales, opacities, viewmat, K, width, height, config)
    campos = -viewmat[:3, :3].T.to(means) @ viewmat[:3, 3].to(means)
    colors = sh_to_rgb(sh0[p.index], shN[p.index], means[p.index] - campos, sh_degree, config.portable)
    return rasterize(p, colors, width, height, config, grad)
