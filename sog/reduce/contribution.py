"""What each Gaussian adds to one picture: the squared change of the render when it alone is removed.

For a pixel composited front to back, ``C = F + T·a·c + T·(1 - a)·B``: ``F`` is what the Gaussians in front of
this one add, ``T`` the transmittance they leave, ``a`` and ``c`` this Gaussian's alpha and colour there, and
``B`` everything behind it (the background included) as seen through it. Without it the pixel would be
``F + T·B``, so removing it changes the pixel by ``T·a·(c - B)``, and ``B`` follows from the finished pixel:
``B = (C - F - T·a·c) / (T·(1 - a))``. `removal_errors` composites every tile twice (once for ``C``, once walking
the same pairs with ``F`` and ``T`` to the point of each Gaussian) and sums ``|T·a·(c - B)|²`` over the pixels
for each Gaussian: the squared error one view gets when that Gaussian is dropped (exact, apart from a later
Gaussian that a saturated pixel skipped and would then draw). It also returns the blending weight ``Σ T·a``.

The same compositing as `sog.render.tiles` (opacity-aware boxes, depth order, ``alpha_min``/``alpha_max``,
``t_min``), all in float64, and the per-Gaussian sums are added in a fixed order (no atomics: each tile writes the
slots of its own list), so the figures are the same run to run; `sog.stable.snap` takes off the last bits that
another CPU's ``exp`` may round differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..render.cameras import Camera
from ..render.cpu import RasterConfig, _boxes, project
from ..render.sh import sh_to_rgb
from ..render.tiles import _bin, numba, tile_box
from ..stable import snap

#: the most (Gaussian, pixel) records `_removal` keeps for one tile (20 bytes each, per thread: 40 MiB); a tile
#: whose boxes hold more pixels than this is composited twice instead (the same figures, more exp and log1p)
MAX_TILE_RECORDS = 1 << 21

if numba is not None:
    @numba.njit(cache=True)
    def _tile_recorded(t, offsets, ids, table, colors, x0, y0, x1, y1, width, height, tile, tiles_x,
                       alpha_min, alpha_max, log_t_min, background, err, wsum, cap):
        """`_removal` of tile ``t`` with at most ``cap`` records: the first sweep composites the tile and records
        each drawn (Gaussian, pixel) pair's pixel, alpha and transmittance in drawing order; the second replays
        them (the values a second sweep would compute again, without its exp and log1p)."""
        tx0, ty0, tx1, ty1, tw, npx = tile_box(t, tiles_x, tile, width, height)
        n_col = colors.shape[1]
        final = np.zeros((npx, n_col), np.float64)
        front = np.zeros((npx, n_col), np.float64)
        done = np.zeros(npx, np.bool_)
        lt = np.zeros(npx, np.float64)
        n_done = 0
        start = offsets[t]
        stop = offsets[t + 1]
        pix = np.empty(cap, np.int32)
        alphas = np.empty(cap, np.float64)
        transs = np.empty(cap, np.float64)
        ends = np.empty(stop - start, np.int64)   # per slot, the end of its records
        used = 0
        last = stop
        for k in range(start, stop):
            g = ids[k]
            u, v = table[g, 0], table[g, 1]
            ca, cb, cc, op = table[g, 2], table[g, 3], table[g, 4], table[g, 5]
            for py in range(max(y0[g], ty0), min(y1[g], ty1) + 1):
                dy = v - (py + 0.5)
                for px in range(max(x0[g], tx0), min(x1[g], tx1) + 1):
                    i = (py - ty0) * tw + (px - tx0)
                    if done[i]:
                        continue
                    dx = u - (px + 0.5)
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0:
                        continue
                    alpha = min(alpha_max, op * math.exp(-sigma))
                    if alpha < alpha_min:
                        continue
                    l = math.log1p(-alpha)
                    if lt[i] + l <= log_t_min:
                        done[i] = True
                        n_done += 1
                        continue
                    trans = math.exp(lt[i])
                    w = alpha * trans
                    for c in range(n_col):
                        final[i, c] += w * colors[g, c]
                    lt[i] += l
                    pix[used] = i
                    alphas[used] = alpha
                    transs[used] = trans
                    used += 1
            ends[k - start] = used
            if n_done == npx:
                last = k + 1
                break
        for i in range(npx):
            rest = math.exp(lt[i])
            for c in range(n_col):
                final[i, c] += rest * background[c]
        r = 0
        for k in range(start, last):
            g = ids[k]
            e = 0.0
            ws = 0.0
            while r < ends[k - start]:
                i = pix[r]
                alpha = alphas[r]
                trans = transs[r]
                r += 1
                w = alpha * trans
                through = trans * (1.0 - alpha)
                for c in range(n_col):
                    behind = (final[i, c] - front[i, c] - w * colors[g, c]) / through
                    d = w * (colors[g, c] - behind)
                    e += d * d
                    front[i, c] += w * colors[g, c]
                ws += w
            err[k] = e
            wsum[k] = ws

    @numba.njit(cache=True)
    def _tile_twice(t, offsets, ids, table, colors, x0, y0, x1, y1, width, height, tile, tiles_x,
                    alpha_min, alpha_max, log_t_min, background, err, wsum):
        """`_removal` of tile ``t`` in two full sweeps (no records): one for the finished pixels, one walking the
        same pairs again with the colour in front ``F`` and the transmittance ``T``."""
        tx0, ty0, tx1, ty1, tw, npx = tile_box(t, tiles_x, tile, width, height)
        n_col = colors.shape[1]
        final = np.zeros((npx, n_col), np.float64)
        front = np.zeros((npx, n_col), np.float64)
        for sweep in range(2):
            done = np.zeros(npx, np.bool_)
            lt = np.zeros(npx, np.float64)
            n_done = 0
            for k in range(offsets[t], offsets[t + 1]):
                g = ids[k]
                u, v = table[g, 0], table[g, 1]
                ca, cb, cc, op = table[g, 2], table[g, 3], table[g, 4], table[g, 5]
                e = 0.0
                ws = 0.0
                for py in range(max(y0[g], ty0), min(y1[g], ty1) + 1):
                    dy = v - (py + 0.5)
                    for px in range(max(x0[g], tx0), min(x1[g], tx1) + 1):
                        i = (py - ty0) * tw + (px - tx0)
                        if done[i]:
                            continue
                        dx = u - (px + 0.5)
                        sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                        if sigma < 0:
                            continue
                        alpha = min(alpha_max, op * math.exp(-sigma))
                        if alpha < alpha_min:
                            continue
                        l = math.log1p(-alpha)
                        if lt[i] + l <= log_t_min:
                            done[i] = True
                            n_done += 1
                            continue
                        trans = math.exp(lt[i])
                        w = alpha * trans
                        if sweep == 0:
                            for c in range(n_col):
                                final[i, c] += w * colors[g, c]
                        else:
                            through = trans * (1.0 - alpha)
                            for c in range(n_col):
                                behind = (final[i, c] - front[i, c] - w * colors[g, c]) / through
                                d = w * (colors[g, c] - behind)
                                e += d * d
                                front[i, c] += w * colors[g, c]
                            ws += w
                        lt[i] += l
                if sweep == 1:
                    err[k] = e
                    wsum[k] = ws
                if n_done == npx:
                    break
            if sweep == 0:
                for i in range(npx):
                    rest = math.exp(lt[i])
                    for c in range(n_col):
                        final[i, c] += rest * background[c]

    @numba.njit(parallel=True, cache=True)
    def _removal(offsets, ids, table, colors, x0, y0, x1, y1, width, height, tile, tiles_x,
                 alpha_min, alpha_max, log_t_min, background, err, wsum, max_records):
        """Per tile list slot ``k``: ``err[k]`` the squared colour change over the tile's pixels if Gaussian
        ``ids[k]`` were removed, ``wsum[k]`` its blending weight there (both float64, zero on entry). A tile
        whose boxes hold at most ``max_records`` pixels replays recorded pairs (`_tile_recorded`), any other is
        composited twice (`_tile_twice`): the same figures either way."""
        n_tiles = offsets.shape[0] - 1
        for t in numba.prange(n_tiles):
            tx0, ty0, tx1, ty1, tw, npx = tile_box(t, tiles_x, tile, width, height)
            cap = 0                                   # every box pixel in the tile: at most this many records
            for k in range(offsets[t], offsets[t + 1]):
                g = ids[k]
                cap += (min(y1[g], ty1) - max(y0[g], ty0) + 1) * (min(x1[g], tx1) - max(x0[g], tx0) + 1)
            if cap <= max_records:
                _tile_recorded(t, offsets, ids, table, colors, x0, y0, x1, y1, width, height, tile, tiles_x,
                               alpha_min, alpha_max, log_t_min, background, err, wsum, cap)
            else:
                _tile_twice(t, offsets, ids, table, colors, x0, y0, x1, y1, width, height, tile, tiles_x,
                            alpha_min, alpha_max, log_t_min, background, err, wsum)


@dataclass
class ViewSetup:
    """One camera's share of `removal_errors` that does not depend on which of the Gaussians are there: the
    ``count`` (N) Gaussians projected, coloured and boxed once, kept only where the box touches the image, in depth
    order (L of them). Each Gaussian's values are its own (a Gaussian's projection, colour and box do not depend on
    the others), so `measure` on a subset gives what `removal_errors` on that subset gives, without projecting it
    again: `sog.reduce` measures its rounds this way.

    index (L,) int64: input rows; table (L, 6) float64: centre (2), conic (3), opacity; colors (L, 3) float64;
    x0, y0, x1, y1 (L,) int32: inclusive pixel boxes."""

    count: int
    index: np.ndarray
    table: np.ndarray
    colors: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    width: int
    height: int
    config: RasterConfig

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.index, self.table, self.colors, self.x0, self.y0, self.x1, self.y1))


def setup_view(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
               sh0: torch.Tensor, shN: torch.Tensor, camera: Camera,
               config: RasterConfig = RasterConfig()) -> ViewSetup:
    """The `ViewSetup` of N Gaussians (activated values as `sog.render.cpu.project` takes them; sh0 (N, 1, 3), shN
    (N, K, 3)) seen from ``camera``: projected, coloured and boxed in float64, as `removal_errors` needs them."""
    n = len(means)
    dt = torch.float64
    means, quats, scales, opacities = (x.detach().cpu().to(dt) for x in (means, quats, scales, opacities))
    viewmat, K = camera.viewmat.to(dt), camera.K.to(dt)
    width, height = camera.width, camera.height
    p = project(means, quats, scales, opacities, viewmat, K, width, height, config)
    campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
    colors = sh_to_rgb(sh0.detach().cpu().to(dt)[p.index], shN.detach().cpu().to(dt)[p.index],
                       means[p.index] - campos)
    x0, y0, nx, ny = _boxes(p, width, height, config.alpha_min)
    live = (nx * ny > 0).nonzero().squeeze(1)
    order = live[torch.sort(p.depths[live], stable=True).indices].numpy()
    x0n, y0n = x0.numpy()[order], y0.numpy()[order]
    x1n, y1n = x0n + nx.numpy()[order] - 1, y0n + ny.numpy()[order] - 1
    table = torch.cat([p.means2d, p.conics, p.opacities[:, None]], 1).numpy()[order]
    return ViewSetup(n, p.index.numpy()[order].astype(np.int64), np.ascontiguousarray(table),
                     np.ascontiguousarray(colors.numpy()[order]), *(a.astype(np.int32) for a in (x0n, y0n, x1n, y1n)),
                     width, height, config)


def measure(view: ViewSetup, alive: np.ndarray | None = None,
            max_records: int = MAX_TILE_RECORDS) -> tuple[np.ndarray, np.ndarray]:
    """`removal_errors` of the Gaussians of ``view`` that ``alive`` ((N,) bool; None: all) keeps, as if the others
    were not there -> ``(error, weight)``, each (N,) float64 snapped; 0 for a Gaussian not kept or not seen.
    ``max_records``: `MAX_TILE_RECORDS` (tests set 0 to take the two-sweep path everywhere)."""
    config = view.config
    tile = int(config.tile)
    tiles_x, tiles_y = -(-view.width // tile), -(-view.height // tile)
    order = np.arange(len(view.index)) if alive is None else np.flatnonzero(alive[view.index])
    x0n, y0n, x1n, y1n = (a.astype(np.int64) for a in (view.x0, view.y0, view.x1, view.y1))
    offsets, ids = _bin(order, x0n, y0n, x1n, y1n, tile, tiles_x, tiles_x * tiles_y)
    err = np.zeros(len(ids), np.float64)
    wsum = np.zeros(len(ids), np.float64)
    _removal(offsets, ids, view.table, view.colors, x0n, y0n, x1n, y1n, view.width, view.height, tile, tiles_x,
             config.alpha_min, config.alpha_max, math.log(config.t_min),
             np.asarray(config.background, np.float64), err, wsum, max_records)
    m = len(view.index)
    out_err, out_w = np.zeros(view.count), np.zeros(view.count)
    out_err[view.index] = np.bincount(ids, weights=err, minlength=m)
    out_w[view.index] = np.bincount(ids, weights=wsum, minlength=m)
    return snap(out_err), snap(out_w)


def removal_errors(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                   sh0: torch.Tensor, shN: torch.Tensor, camera: Camera,
                   config: RasterConfig = RasterConfig()) -> tuple[np.ndarray, np.ndarray]:
    """For each of the N Gaussians (activated values as `sog.render.cpu.project` takes them; sh0 (N, 1, 3), shN
    (N, K, 3)), seen from ``camera`` -> ``(error, weight)``, each (N,) float64 snapped (`sog.stable.snap`):
    the summed squared RGB change of the picture when that Gaussian alone is removed, and its summed blending
    weight ``T·a`` (in pixels). Gaussians the camera does not see get 0. (`setup_view`, then `measure`.)"""
    if numba is None:  # pragma: no cover - numba is a dependency
        raise RuntimeError("sog.reduce needs numba")
    return measure(setup_view(means, quats, scales, opacities, sh0, shN, camera, config))
