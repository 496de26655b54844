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

Gradients (`rasterize_tiles_grad`, the training path): the forward kernel also keeps each pixel's last contributor
(its end in the tile list) and final transmittance; `_composite_grad` walks each pixel's list back to front as
gsplat's backward pass does, recovering each contributor's transmittance (``T_i = T_{i+1} / (1 - alpha_i)``) and
the colour behind it, and gives the gradients w.r.t. each Gaussian's 2D mean, conic, opacity and colour. Each
tile writes the rows of its own list entries (float64), summed per Gaussian in list order afterwards: the same
bytes on every run and thread count, no float atomics. Projection and SH stay in torch autograd
(`sog.render.cpu.render_one` with ``grad="tiles"``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the torch path remains without it
    numba = None

if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's OpenMP layer keeps its idle workers spinning after each kernel, on the cores that torch needs next
    # (a training step alternates torch's projection and these kernels, forward and backward); the work-queue
    # layer's workers sleep. It must not run kernels from two Python threads at once (sog renders in one). It
    # takes effect if no parallel numba kernel has run in the process yet; the variable chooses otherwise.
    numba.config.THREADING_LAYER = "workqueue"


def available() -> bool:
    """Whether numba is importable (else `sog.render.cpu` uses its pair-expansion path)."""
    return numba is not None


if numba is not None:
    @numba.njit(inline="always", cache=True)
    def tile_box(t, tiles_x, tile, width, height):
        """Tile ``t``'s pixel box (row-major tiles of ``tile`` px, clipped to the image) -> (x0, y0, x1, y1)
        inclusive, its width and its pixel count: the prologue of every tile kernel (here and `sog.reduce`)."""
        tx0 = (t % tiles_x) * tile
        ty0 = (t // tiles_x) * tile
        tx1 = min(tx0 + tile, width) - 1
        ty1 = min(ty0 + tile, height) - 1
        tw = tx1 - tx0 + 1
        return tx0, ty0, tx1, ty1, tw, tw * (ty1 - ty0 + 1)

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
    def _composite(offsets, ids, table, colors, x0, y0, x1, y1, xs, ys, width, height, tile, tiles_x,
                   alpha_min, alpha_max, log_t_min, image, log_t, last):
        """Composite every tile into ``image`` (H*W, C) and ``log_t`` (H*W,) float64 (both zero); ``last`` (H*W,)
        int64 gets each pixel's end in ``ids``: its contributors are among ``ids[offsets[t]:last[o]]``.

        The arithmetic is in ``table``'s dtype (float32 for renders, float64 for gradient checks); ``xs`` (W,)
        and ``ys`` (H,) are the pixel centres ``j + 0.5`` in that dtype."""
        n_tiles = offsets.shape[0] - 1
        n_col = colors.shape[1]
        half = xs[0]                               # 0.5 in the table's dtype (the first pixel centre)
        for t in numba.prange(n_tiles):
            tx0, ty0, tx1, ty1, tw, npx = tile_box(t, tiles_x, tile, width, height)
            done = np.zeros(npx, np.bool_)
            lt = np.zeros(npx, np.float64)
            end = np.full(npx, offsets[t], np.int64)
            acc = np.zeros((npx, n_col), image.dtype)
            cast = np.empty(1, image.dtype)        # a store into it rounds a float64 to the image's dtype
            n_done = 0
            for k in range(offsets[t], offsets[t + 1]):
                g = ids[k]
                u, v = table[g, 0], table[g, 1]
                ca, cb, cc, op = table[g, 2], table[g, 3], table[g, 4], table[g, 5]
                for py in range(max(y0[g], ty0), min(y1[g], ty1) + 1):
                    dy = v - ys[py]
                    for px in range(max(x0[g], tx0), min(x1[g], tx1) + 1):
                        i = (py - ty0) * tw + (px - tx0)
                        if done[i]:
                            continue
                        dx = u - xs[px]
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
                        cast[0] = math.exp(lt[i])
                        w = alpha * cast[0]
                        for c in range(n_col):
                            acc[i, c] += w * colors[g, c]
                        lt[i] += l
                        end[i] = k + 1
                if n_done == npx:
                    break
            for py in range(ty0, ty1 + 1):
                for px in range(tx0, tx1 + 1):
                    i = (py - ty0) * tw + (px - tx0)
                    o = py * width + px
                    log_t[o] = lt[i]
                    last[o] = end[i]
                    for c in range(n_col):
                        image[o, c] = acc[i, c]

    @numba.njit(parallel=True, cache=True)
    def _composite_grad(offsets, ids, table, colors, x0, y0, x1, y1, xs, ys, width, height, tile, tiles_x,
                        alpha_min, alpha_max, log_t, last, background, g_image, g_alpha, rows):
        """The backward pass of `_composite` (gsplat's): each pixel walks its contributors back to front from
        ``last``, recovering each one's transmittance from the final one (``log_t``) and the colour behind it.

        g_image (H*W, C) and g_alpha (H*W,) are the loss gradients w.r.t. the image and alpha; ``rows`` (total,
        6 + C) float64 zeros gets, for each tile-list entry ``k`` (Gaussian ``ids[k]`` in one tile), the
        gradient that tile's pixels give w.r.t. (u, v, conic a, b, c, opacity, colour...). Each entry is written
        by its own tile only, so the result does not depend on the threads' schedule."""
        n_tiles = offsets.shape[0] - 1
        n_col = colors.shape[1]
        half = xs[0]
        for t in numba.prange(n_tiles):
            tx0, ty0, tx1, ty1, tw, npx = tile_box(t, tiles_x, tile, width, height)
            trans = np.empty(npx, np.float64)      # transmittance in front of the entry being visited
            final = np.empty(npx, np.float64)      # transmittance after the last contributor
            behind = np.empty((npx, n_col), np.float64)   # colour composited behind it (background included)
            end = np.empty(npx, np.int64)
            gcol = np.zeros(n_col, np.float64)
            k_end = offsets[t]
            for py in range(ty0, ty1 + 1):
                for px in range(tx0, tx1 + 1):
                    i = (py - ty0) * tw + (px - tx0)
                    o = py * width + px
                    final[i] = math.exp(log_t[o])
                    trans[i] = final[i]
                    for c in range(n_col):
                        behind[i, c] = final[i] * background[c]
                    end[i] = last[o]
                    k_end = max(k_end, last[o])
            for k in range(k_end - 1, offsets[t] - 1, -1):
                g = ids[k]
                u, v = table[g, 0], table[g, 1]
                ca, cb, cc, op = table[g, 2], table[g, 3], table[g, 4], table[g, 5]
                gu = gv = ga = gb = gc = gop = 0.0
                for c in range(n_col):
                    gcol[c] = 0.0
                for py in range(max(y0[g], ty0), min(y1[g], ty1) + 1):
                    dy = v - ys[py]
                    for px in range(max(x0[g], tx0), min(x1[g], tx1) + 1):
                        i = (py - ty0) * tw + (px - tx0)
                        if k >= end[i]:
                            continue
                        dx = u - xs[px]
                        sigma = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                        if sigma < 0:
                            continue
                        gauss = np.exp(-sigma)
                        raw = op * gauss
                        alpha = min(alpha_max, raw)
                        if alpha < alpha_min:
                            continue
                        o = py * width + px
                        a = np.float64(alpha)
                        keep = 1.0 - a
                        front = trans[i] / keep               # transmittance in front of this Gaussian
                        d_alpha = np.float64(g_alpha[o]) * final[i] / keep
                        for c in range(n_col):
                            gi = np.float64(g_image[o, c])
                            col = np.float64(colors[g, c])
                            d_alpha += gi * (col * front - behind[i, c] / keep)
                            gcol[c] += gi * a * front
                            behind[i, c] += col * a * front
                        trans[i] = front
                        if raw <= alpha_max:                  # alpha not clamped: it depends on op and sigma
                            d_sigma = -d_alpha * a
                            gop += d_alpha * np.float64(gauss)
                            fdx, fdy = np.float64(dx), np.float64(dy)
                            gu += d_sigma * (np.float64(ca) * fdx + np.float64(cb) * fdy)
                            gv += d_sigma * (np.float64(cc) * fdy + np.float64(cb) * fdx)
                            ga += d_sigma * 0.5 * fdx * fdx
                            gb += d_sigma * fdx * fdy
                            gc += d_sigma * 0.5 * fdy * fdy
                rows[k, 0] = gu
                rows[k, 1] = gv
                rows[k, 2] = ga
                rows[k, 3] = gb
                rows[k, 4] = gc
                rows[k, 5] = gop
                for c in range(n_col):
                    rows[k, 6 + c] = gcol[c]

    @numba.njit(cache=True)
    def _sum_rows(ids, rows, m):
        """Sum the tile-list rows (total, D) into one row per Gaussian (m, D), in list order (deterministic)."""
        out = np.zeros((m, rows.shape[1]), np.float64)
        for k in range(ids.shape[0]):
            g = ids[k]
            for j in range(rows.shape[1]):
                out[g, j] += rows[k, j]
        return out


class _Lists:
    """The tile lists of one render: boxes as inclusive pixel ranges x0, y0, x1, y1 (M,) int64, offsets
    (n_tiles + 1,) int64 and ids (total,) int32 (`_bin`), and the tile grid."""

    def __init__(self, depths: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor,
                 width: int, height: int, tile: int):
        live = (nx * ny > 0).nonzero().squeeze(1)
        order = live[torch.sort(depths.detach()[live], stable=True).indices]      # front to back
        self.tile = int(tile)
        self.tiles_x = -(-width // self.tile)
        n_tiles = self.tiles_x * -(-height // self.tile)
        self.x0 = x0.numpy().astype(np.int64)
        self.y0 = y0.numpy().astype(np.int64)
        self.x1 = self.x0 + nx.numpy() - 1
        self.y1 = self.y0 + ny.numpy() - 1
        self.offsets, self.ids = _bin(order.numpy(), self.x0, self.y0, self.x1, self.y1, self.tile, self.tiles_x,
                                      n_tiles)
        self.width, self.height = width, height


def _centres(lists: _Lists, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres ``j + 0.5`` of the columns (W,) and rows (H,) in ``dtype`` (the kernels' arithmetic type)."""
    return (np.arange(lists.width, dtype=dtype) + dtype.type(0.5), np.arange(lists.height, dtype=dtype) +
            dtype.type(0.5))


def _forward(lists: _Lists, table: np.ndarray, colors: np.ndarray, config) -> tuple[np.ndarray, ...]:
    """Run `_composite` in ``table``'s dtype -> image (H*W, C), log_t (H*W,) float64, last (H*W,) int64."""
    dtype = table.dtype.type
    n_pix = lists.width * lists.height
    image = np.zeros((n_pix, colors.shape[1]), table.dtype)
    log_t = np.zeros(n_pix, np.float64)
    last = np.zeros(n_pix, np.int64)
    xs, ys = _centres(lists, table.dtype)
    _composite(lists.offsets, lists.ids, table, colors, lists.x0, lists.y0, lists.x1, lists.y1, xs, ys,
               lists.width, lists.height, lists.tile, lists.tiles_x, dtype(config.alpha_min),
               dtype(config.alpha_max), math.log(config.t_min), image, log_t, last)
    return image, log_t, last


def _finish(image: np.ndarray, log_t: np.ndarray, config, dtype: torch.dtype, width: int,
            height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the background under the remaining transmittance -> image (H, W, C), alpha (H, W) in ``dtype``."""
    image_t = torch.from_numpy(image).to(dtype)
    trans = torch.exp(torch.from_numpy(log_t)).to(dtype)
    bg = torch.tensor(config.background, dtype=dtype)[: image_t.shape[1]]
    image_t = image_t + trans[:, None] * bg
    return image_t.view(height, width, -1), (1 - trans).view(height, width)


def rasterize_tiles(p, colors: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, nx: torch.Tensor,
                    ny: torch.Tensor, width: int, height: int, config) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite `Projected` ``p`` with ``colors`` (M, C) given its boxes (x0, y0, nx, ny: (M,) long, from
    `sog.render.cpu._boxes`) -> image (H, W, C), alpha (H, W), as `sog.render.cpu.rasterize`; float32
    arithmetic, no gradients."""
    lists = _Lists(p.depths, x0, y0, nx, ny, width, height, config.tile)
    table = torch.cat([p.means2d.detach(), p.conics.detach(), p.opacities.detach()[:, None]], 1).float()
    col = colors.detach().float().contiguous().numpy()
    image, log_t, _ = _forward(lists, table.contiguous().numpy(), col, config)
    return _finish(image, log_t, config, colors.dtype, width, height)


class _TiledRaster(torch.autograd.Function):
    """`_composite` forward and `_composite_grad` backward as one autograd step: (means2d (M, 2), conics (M, 3),
    opacities (M,), colors (M, C)) -> image (H, W, C), alpha (H, W), in the inputs' dtype (float32 or
    float64; the transmittance and the gradient sums are float64 either way)."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, lists, config):
        dtype = means2d.dtype
        table = torch.cat([means2d.detach(), conics.detach().to(dtype), opacities.detach().to(dtype)[:, None]],
                          1).contiguous().numpy()
        col = colors.detach().to(dtype).contiguous().numpy()
        image, log_t, last = _forward(lists, table, col, config)
        ctx.saved = (lists, table, col, log_t, last, config)
        ctx.dtypes = (means2d.dtype, conics.dtype, opacities.dtype, colors.dtype)
        return _finish(image, log_t, config, colors.dtype, lists.width, lists.height)

    @staticmethod
    def backward(ctx, g_image, g_alpha):
        lists, table, col, log_t, last, config = ctx.saved
        n_pix = lists.width * lists.height
        n_col = col.shape[1]
        g_img = (torch.zeros(n_pix, n_col, dtype=torch.float64) if g_image is None
                 else g_image.detach().reshape(n_pix, n_col).double()).contiguous().numpy()
        g_a = (torch.zeros(n_pix, dtype=torch.float64) if g_alpha is None
               else g_alpha.detach().reshape(n_pix).double()).contiguous().numpy()
        dtype = table.dtype.type
        xs, ys = _centres(lists, table.dtype)
        background = np.zeros(n_col, np.float64)
        bg = np.asarray(config.background, np.float64)[:n_col]
        background[: len(bg)] = bg
        rows = np.zeros((lists.ids.shape[0], 6 + n_col), np.float64)
        _composite_grad(lists.offsets, lists.ids, table, col, lists.x0, lists.y0, lists.x1, lists.y1, xs, ys,
                        lists.width, lists.height, lists.tile, lists.tiles_x, dtype(config.alpha_min),
                        dtype(config.alpha_max), log_t, last, background, g_img, g_a, rows)
        grads = torch.from_numpy(_sum_rows(lists.ids, rows, table.shape[0]))
        d_means, d_conics, d_opac, d_col = ctx.dtypes
        return (grads[:, 0:2].to(d_means), grads[:, 2:5].to(d_conics), grads[:, 5].to(d_opac),
                grads[:, 6:].to(d_col), None, None)


def rasterize_tiles_grad(p, colors: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, nx: torch.Tensor,
                         ny: torch.Tensor, width: int, height: int, config) -> tuple[torch.Tensor, torch.Tensor]:
    """`rasterize_tiles`, differentiable w.r.t. ``p.means2d`` (M, 2), ``p.conics`` (M, 3), ``p.opacities`` (M,)
    and ``colors`` (M, C) (a hand-written backward pass, gsplat's: see `_composite_grad`), computed in the
    dtype of ``p.means2d``. Deterministic: the same gradients bit for bit on every run and thread count."""
    lists = _Lists(p.depths, x0, y0, nx, ny, width, height, config.tile)
    return _TiledRaster.apply(p.means2d, p.conics, p.opacities, colors, lists, config)
