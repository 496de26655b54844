"""Scalar codebooks and vector palettes (k-means), on plain arrays and tensors.

* `codebook_1d` — a k-entry scalar codebook (1-D Lloyd/k-means) shared by several columns,
  as SOG v2 uses for scales, sh0 and the SH palette values.
* `density_levels` — a k-entry scalar codebook whose levels follow a chosen point density, for labels that
  an image codec entropy-codes (the native profile's scales and colours).
* `scale_weights` — the weights of log-scale values in their codebook fit (opacity x s^2)^power.
* `kmeans` — vector k-means (palette for the higher SH bands). For large palettes it runs
  as a two-level tree (coarse clusters, then clusters inside each) so that assignment costs
  O(N·sqrt(k)) instead of O(N·k); exact when the data has no more than k distinct rows.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..stable import snap


def codebook_1d(values: np.ndarray, k: int = 256, iters: int = 25,
                weights: np.ndarray | None = None, sample: int = 1 << 18,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Quantise ``values`` (any shape) to ``k`` sorted levels.

    Returns ``(codebook (k,) float32 ascending, labels uint8/int64 of values.shape)``.
    When there are at most ``k`` distinct values the codebook holds them exactly.
    ``weights`` (same shape) weight each value in the centroid means. The levels are fitted on
    a random subsample of at most ``sample`` values (seeded); every value is then labelled.
    """
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    wflat = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    distinct = np.unique(flat)
    if len(distinct) <= k:
        return _exact_codebook(distinct, flat, k, np.shape(values))
    fit, wfit = flat, wflat
    if flat.size > sample:
        pick = np.random.default_rng(seed).choice(flat.size, sample, replace=False)
        fit = np.concatenate([flat[pick], [flat.min(), flat.max()]])  # keep the extremes reachable
        wfit = None if wflat is None else np.concatenate([wflat[pick], [0.0, 0.0]])
    # Initialise on a blend of quantiles and a uniform ramp, so dense centres and tails both get levels.
    q = np.quantile(fit, np.linspace(0, 1, k))
    u = np.linspace(fit.min(), fit.max(), k)
    centres = np.sort(0.7 * q + 0.3 * u).astype(np.float64)
    for _ in range(iters):
        labels = nearest_sorted(centres, fit)
        sums = np.bincount(labels, weights=fit * (wfit if wfit is not None else 1.0), minlength=k)
        counts = np.bincount(labels, weights=wfit, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1e-300), centres)
        new.sort()
        if np.allclose(new, centres, rtol=0, atol=1e-7):
            centres = new
            break
        centres = new
    codebook = centres.astype(np.float32)
    labels = nearest_sorted(codebook.astype(np.float64), flat)
    return codebook, label_dtype(labels, k).reshape(np.shape(values))


def nearest_sorted(centres: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of the ascending ``centres`` for each ``x``."""
    mids = (centres[1:] + centres[:-1]) / 2
    return np.searchsorted(mids, x)


def density_levels(values: np.ndarray, k: int, weights: np.ndarray | None = None, alpha: float = 0.0,
                   beta: float = 0.0, bins: int = 1 << 14, smooth: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A ``k``-level scalar codebook for ``values`` (any shape) whose levels have the point density
    ``p(x)^alpha * w(x)^beta``: ``p`` the values' density, ``w`` the mean of ``weights`` (values' shape, the
    squared-error weight of each value; none: 1) near ``x``, both from a histogram of ``bins`` bins smoothed over
    ``smooth`` of them. Each level then moves to the weighted mean of the values it labels.

    Why not Lloyd's algorithm: Lloyd minimises the error of labels of a *fixed* length (its levels crowd where
    the values are dense, density ``(p w)^(1/3)``), but the labels here are entropy-coded, and then at high rate
    the best levels are spaced by the weight alone (``w^(1/2)``, ``alpha = 0``): crowding them where values are
    dense makes the labels nearly equiprobable, i.e. expensive. ``alpha > 0`` keeps levels where the values are
    when the weight model is crude (a tiny Gaussian rounded up to a large scale is worse than its weight says).
    The exponents the profiles use were chosen by measurement (docs/profiles.md).

    Returns ``(codebook (k,) float32 ascending, labels uint8 (k <= 256) or int64 of values.shape)``; exact when
    there are at most ``k`` distinct values."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    distinct = np.unique(flat.astype(np.float32))
    if len(distinct) <= k:
        return _exact_codebook(distinct, flat.astype(np.float32), k, np.shape(values))
    w = np.ones_like(flat) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    edges = np.linspace(flat.min(), flat.max(), bins + 1)
    kernel = np.ones(smooth) / smooth
    count = np.convolve(np.histogram(flat, edges)[0].astype(np.float64), kernel, "same")
    mass = np.convolve(np.histogram(flat, edges, weights=w)[0], kernel, "same")
    filled = np.flatnonzero(count > 0)  # empty stretches take the mean weight of the nearest filled bin
    wbar = np.interp(np.arange(bins), filled, mass[filled] / count[filled])
    density = np.maximum(count / count.sum(), 1e-12) ** alpha * np.maximum(wbar / wbar.max(), 1e-300) ** beta
    cdf = np.concatenate([[0.0], np.cumsum(density)])
    levels = np.interp((np.arange(k) + 0.5) / k * cdf[-1], cdf, edges)
    labels = nearest_sorted(levels, flat)
    total = np.bincount(labels, weights=w, minlength=k)
    levels = np.sort(np.where(total > 0, np.bincount(labels, weights=w * flat, minlength=k) / np.maximum(total, 1e-300),
                              levels))
    codebook = levels.astype(np.float32)
    labels = nearest_sorted(codebook.astype(np.float64), flat)
    return codebook, label_dtype(labels, k).reshape(np.shape(values))


def _exact_codebook(distinct: np.ndarray, flat: np.ndarray, k: int, shape) -> tuple[np.ndarray, np.ndarray]:
    """The codebook of at most ``k`` ``distinct`` float32 values (ascending; padded with the last) and the labels
    of ``flat`` (float32) into it, as ``shape``."""
    codebook = np.concatenate([distinct, np.full(k - len(distinct), distinct[-1], np.float32)])
    return codebook, label_dtype(np.searchsorted(distinct, flat), k).reshape(shape)


def label_dtype(labels: np.ndarray, k: int) -> np.ndarray:
    """``labels`` into a codebook of ``k`` entries as uint8 (k <= 256, one byte plane) or int64."""
    return labels.astype(np.uint8 if k <= 256 else np.int64)


def kmeans(x: torch.Tensor, k: int, iters: int = 10, seed: int = 0,
           weights: torch.Tensor | None = None, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster rows of ``x`` (N, D) into at most ``k`` centroids.

    Returns ``(centroids (k', D), labels (N,) long)`` with ``k' <= k``. Deterministic for a seed.
    ``weights`` (N,) weight rows in the centroid means (e.g. opacity × size). ``chunk``: rows per distance block
    (the labels do not depend on it); 8192 rows of 128 distances stay in the heap, where 65,536 (32 MB) were a
    fresh mapping per block, and slower.
    """
    x = x.float()
    n = x.shape[0]
    exact = distinct_rows(x, k)
    if exact is not None:
        return exact
    if k <= 1024:
        return _lloyd(x, k, iters, seed, weights, chunk)
    # Two-level tree: k1 coarse clusters, then k * share centroids inside each.
    k1 = int(round(math.sqrt(k)))
    coarse_c, coarse = _lloyd(x, k1, iters, seed, weights, chunk)
    sizes = torch.bincount(coarse, minlength=coarse_c.shape[0]).double()
    budget = _apportion(sizes, k)
    centroids, labels = [], torch.empty(n, dtype=torch.long)
    offset = 0
    order = torch.argsort(coarse, stable=True)
    bounds = torch.cumsum(sizes.long(), 0)
    start = 0
    for j in range(coarse_c.shape[0]):
        idx = order[start:int(bounds[j])]
        start = int(bounds[j])
        if idx.numel() == 0 or budget[j] == 0:
            continue
        sub_w = None if weights is None else weights[idx]
        c, lab = kmeans(x[idx], int(budget[j]), iters, seed + 1 + j, sub_w, chunk) if budget[j] > 1 else (
            x[idx].mean(0, keepdim=True), torch.zeros(idx.numel(), dtype=torch.long))
        centroids.append(c)
        labels[idx] = lab + offset
        offset += c.shape[0]
    return torch.cat(centroids), labels


def row_hashes(x: torch.Tensor) -> torch.Tensor:
    """A 64-bit hash of each row of ``x`` (N, D) float, (N,) int64: rows that `torch.unique` finds equal hash
    equal (-0.0 is hashed as 0.0), so a count of distinct hashes is at most the count of distinct rows.
    One column at a time: O(N) memory, not O(N D)."""
    h = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], 1 << 16):  # blocks of rows: the column passes stay in the cache
        bits = (x[s:s + (1 << 16)].float() + 0.0).view(torch.int32)  # adding 0.0 turns -0.0 into +0.0
        hs = torch.zeros(bits.shape[0], dtype=torch.int64, device=x.device)
        for j in range(x.shape[1]):  # FNV-1a over the columns' 32-bit patterns (wrapping int64 arithmetic)
            hs = (hs ^ bits[:, j].long()) * 1099511628211
        h[s:s + (1 << 16)] = hs
    return h


def distinct_rows(x: torch.Tensor, most: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``torch.unique(x, dim=0, return_inverse=True)`` of ``x`` (N, D) when it has at most ``most`` distinct rows,
    else None. The rows are sorted only when their hashes (`row_hashes`) leave at most ``most`` distinct: sorting
    millions of wide rows costs seconds and a copy of ``x``; hashing them, a fraction of that."""
    if x.shape[0] > most and torch.unique(row_hashes(x)).numel() > most:
        return None
    unique, inverse = torch.unique(x, dim=0, return_inverse=True)
    return (unique, inverse) if unique.shape[0] <= most else None


def _apportion(sizes: torch.Tensor, k: int) -> list[int]:
    """Split ``k`` centroids over clusters in proportion to their sizes (at least 1 each, at most size)."""
    share = sizes / sizes.sum() * k
    budget = torch.clamp(share.floor(), min=1)
    budget = torch.minimum(budget, sizes)
    left = k - int(budget.sum())
    if left > 0:
        room = (sizes - budget).clamp(min=0)
        extra = torch.argsort(share - share.floor() + room.gt(0).double(), descending=True)
        for j in extra.tolist():
            if left == 0:
                break
            if room[j] > 0:
                budget[j] += 1
                left -= 1
    return [int(b) for b in budget]


def _lloyd(x: torch.Tensor, k: int, iters: int, seed: int, weights: torch.Tensor | None,
           chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    k = min(k, n)
    gen = torch.Generator().manual_seed(seed)
    centroids = x[torch.randperm(n, generator=gen)[:k]].clone()
    w = torch.ones(n) if weights is None else weights.float().clamp(min=1e-12)
    labels = _assign(x, centroids, chunk)
    for _ in range(iters):
        sums = torch.zeros_like(centroids)
        for s in range(0, n, chunk):  # in row order, as one index_add_ would add them: O(chunk D) extra memory
            sums.index_add_(0, labels[s:s + chunk], x[s:s + chunk] * w[s:s + chunk, None])
        counts = torch.zeros(k).index_add_(0, labels, w)
        empty = counts <= 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1e-12)[:, None])
        if bool(empty.any()):  # re-seed empty clusters on random points
            picks = torch.randint(0, n, (int(empty.sum()),), generator=gen)
            centroids[empty] = x[picks]
        new_labels = _assign(x, centroids, chunk)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centroids, labels


def _squared_norms(x: torch.Tensor) -> torch.Tensor:
    """(N,) float64 squared norms of the rows of ``x`` (N, D) float64, summed column by column from 0 in a fixed
    order (a cumsum along the row: one op where a loop over the columns took one per column), on every CPU."""
    if x.shape[1] == 0:
        return torch.zeros(x.shape[0], dtype=torch.float64)
    return torch.cumsum(x * x, 1)[:, -1]


def _assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int) -> torch.Tensor:
    """Index of the nearest of ``centroids`` (k, D) for each row of ``x`` (N, D) float32, (N,) long: the same on
    every CPU. A float32 matrix product ranks the candidates; its rounding (which BLAS code path, in which order)
    is bounded, so a row whose best candidate leads the next by more than that bound has its true nearest one. The
    other rows (near-ties) are decided on float64 squared distances summed column by column (exactly rounded
    operations in a fixed order; the lowest index on a tie)."""
    n, d = x.shape
    c64 = centroids.double()
    c2_64 = _squared_norms(c64)  # |c|^2 in a fixed order, then rounded once
    c2 = c2_64.float()
    # |x.c| <= (|x|^2 + |c|^2) / 2: every rounding of c2 - 2 x.c within `u` (d + 4) (|x|^2 + max |c|^2), times 4
    unit = 4.0 * (d + 4) * 2.0 ** -24
    cmax = float(c2_64.max())
    out = torch.empty(n, dtype=torch.long)
    for s in range(0, n, chunk):
        part = x[s:s + chunk]
        dist = torch.addmm(c2, part, centroids.t(), alpha=-2)
        if dist.shape[1] < 2:
            out[s:s + chunk] = 0
            continue
        # the nearest and the second-nearest distance (topk's two values; a minimum, then one more over the row
        # with that entry masked: half topk's time). A tied nearest has a gap of 0 and is decided below, so which
        # index of a tie `min` returns does not matter.
        first, labels = dist.min(1)
        second = dist.scatter_(1, labels[:, None], float("inf")).amin(1)
        x2 = _squared_norms(part.double())
        bound = unit * (x2 + cmax)
        near = torch.nonzero((second - first).double() <= 3 * bound).flatten()
        if near.numel():
            rows = part[near].double()
            exact = torch.zeros(near.numel(), c64.shape[0], dtype=torch.float64)
            for j in range(d):
                exact += (rows[:, j:j + 1] - c64[None, :, j]) ** 2
            labels[near] = exact.argmin(1)
        out[s:s + chunk] = labels
    return out


def scale_weights(log_scales: np.ndarray, opacities: torch.Tensor, power: float) -> np.ndarray:
    """(N, 3) weights of log-scale values (N, 3) in their codebook fit: (opacity x s^2)^power per value, so the
    largest, most opaque Gaussians (the ones that cover pixels) get the closest levels; ``opacities`` (N,) logits.
    Snapped to 20 significant bits (`sog.stable.snap`): they place the codebook's levels, and exp/log round the
    last bit by CPU."""
    alpha = 1.0 / (1.0 + np.exp(-opacities.detach().cpu().double().numpy()))[:, None]
    logw = power * (np.log(np.clip(alpha, 1e-6, 1)) + 2 * log_scales)
    return snap(np.exp(np.clip(logw - logw.max(), -60, 0)))
