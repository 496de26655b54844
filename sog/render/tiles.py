"""The CPU rasteriser's fast path for renders without gradients: tiles, culling and early termination, in numba.

The same compositing as `sog.render.cpu.rasterize_pairs` (images equal up to float rounding): a Gaussian draws
only into the pixels of its opacity-aware box, with ``alpha = min(alpha_max, opacity * exp(-sigma))`` skipped
below ``alpha_min``, front to back in (stable) depth order, and a pixel stops at the first Gaussian that would
bring its transmittance to ``t_min`` or below. How it is fast:

* culling: Gaussians behind the camera or off the image never reach it (`project`, empty boxes);
* tiles: the image is cut into ``tile`` x ``tile`` squares; each Gaussian is listed, in depth order, in the tiles
  its box touches (a counting sort, no pair sort), and the tiles are composited in parallel, each only over the
  part of each box inside it;
* early termination: a pixel that is saturated is skipped, and a tile stops walking its list once all its
  pixels are.

The arithmetic per (Gaussian, pixel) is float32 as in the torch path, transmittance in float64 (log space).
"""

from __future__ import annotations

import math

import numpy as np
import torch

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the torch path remains without it
    numba = None


def available() -> bool:
    """Whether numba is importable (else `sog.render.cpu` uses its pair-expansion path)."""
    return numba is not None


if numba is not None:
    @numba.njit(cache=True)
    def _bin(order, x0, y0, x1, y1, tile, tiles_x, n_tiles):
        """Tile lists: for each tile (row-major), the Gaussians whose box touches it, in ``order``.
        -> offsets (n_tiles + 1,) int64, ids (total,) int32."""
        counts = np.zeros(n_tiles + 1, np.int64)
        for k in range(order.shape[0]):
            g = order[k]
            for ty in range(y0[g] // tile, y1[g] // tile + 1):
                for tx in range(x0[g] // tile, x1[g] // tile + 1):
                    counts[ty * tiles_x + tx + 1] += 1
        offsets = np.cumsum(counts)
        fill = offsets[:-1].copy()
        ids = np.empty(offsets[-1], np.int32)
        for k in range(order.shape[0]):
            g = order[k]
            for ty in range(y0[g] // tile, y1[g] // tile + 1):
                for tx in range(x0[g] // tile, x1[g] // tile + 1):
                    t = ty * tiles_x + tx
                    ids[fill[t]] = g
                    fill[t] += 1
        return offsets, ids

    @numba.njit(parallel=True, cache=True)
    def _composite(offsets, ids, table, colors, x0, y0, x1, y1, width, height, tile, tiles_x,
                   alpha_min, alpha_max, log_t_min, image, log_t):
        """Composite every tile into ``image`` (H*W, C) float32 and ``log_t`` (H*W,) float64 (both zero)."""
        n_tiles = offsets.shape[0] - 1
        n_col = colors.shape[1]
        half = np.float32(0.5)
        for t in numba.prange(n_tiles):
            tx0 = (t % tiles_x) * tile
            ty0 = (t // tiles_x) * tile
            tx1 = min(tx0 + tile, width) - 1
            ty1 = min(ty0 + tile, height) - 1
            tw = tx1 - tx0 + 1
            npx = tw * (ty1 - ty0 + 1)
            done = np.zeros(npx, np.bool_)
            lt = np.zeros(npx, np.float64)
            acc = np.zeros((npx, n_col), np.float32)
            n_done = 0
            for k in range(offsets[t], offsets[t + 1]):
                g = ids[k]
                u, v = table[g, 0], table[g, 1]
                ca, cb, cc, op = table[g, 2], table[g, 3], table[g, 4], table[g, 5]
                for py in range(max(y0[g], ty0), min(y1[g], ty1) + 1):
                    dy = v - (np.float32(py) + half)
                    for px in range(max(x0[g], tx0), min(x1[g], tx1) + 1):
                        i = (py - ty0) * tw + (px - tx0)
                        if done[i]:
                            continue
                        dx = u - (np.float32(px) + half)
                        sigma = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                        if sigma < 0:
                            continue
                        alpha = min(alpha_max, op * np.exp(-sigma))
                        if alpha < alpha_min:
                            continue
                        l = math.log1p(-np.float64(alpha))
                        if lt[i] + l <= log_t_min:
                            done[i] = True
                            n_done += 1
                            continue
                        w = alpha * np.float32(math.exp(lt[i]))
                        for c in range(n_col):
                            acc[i, c] += w * colors[g, c]
                        lt[i] += l
                if n_done == npx:
                    break
            for py in range(ty0, ty1 + 1):
                for px in range(tx0, tx1 + 1):
                    i = (py - ty0) * tw + (px - tx0)
                    o = py * width + px
                    log_t[o] = lt[i]
                    for c in range(n_col):
                        image[o, c] = acc[i, c]


def rasterize_tiles(p, colors: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, nx: torch.Tensor,
                    ny: torch.Tensor, width: int, height: int, config) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite `Projected` ``p`` with ``colors`` (M, C) given its boxes (x0, y0, nx, ny: (M,) long, from
    `sog.render.cpu._boxes`) -> image (H, W, C), alpha (H, W), as `sog.render.cpu.rasterize`."""
    live = (nx * ny > 0).nonzero().squeeze(1)
    order = live[torch.sort(p.depths.detach()[live], stable=True).indices]
    tile = int(config.tile)
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    x0n = x0.numpy().astype(np.int64)
    y0n = y0.numpy().astype(np.int64)
    x1n = x0n + nx.numpy() - 1
    y1n = y0n + ny.numpy() - 1
    offsets, ids = _bin(order.numpy(), x0n, y0n, x1n, y1n, tile, tiles_x, tiles_x * tiles_y)
    table = torch.cat([p.means2d.detach(), p.conics.detach(), p.opacities.detach()[:, None]], 1).float()
    col = colors.detach().float().contiguous().numpy()
    n_pix = width * height
    image = np.zeros((n_pix, col.shape[1]), np.float32)
    log_t = np.zeros(n_pix, np.float64)
    _composite(offsets, ids, table.contiguous().numpy(), col, x0n, y0n, x1n, y1n, width, height, tile, tiles_x,
               np.float32(config.alpha_min), np.float32(config.alpha_max), math.log(config.t_min), image, log_t)
    image_t = torch.from_numpy(image).to(colors.dtype)
    trans = torch.exp(torch.from_numpy(log_t)).to(image_t.dtype)
    bg = torch.tensor(config.background, dtype=image_t.dtype)[: image_t.shape[1]]
    image_t = image_t + trans[:, None] * bg
    return image_t.view(height, width, -1), (1 - trans).view(height, width)
