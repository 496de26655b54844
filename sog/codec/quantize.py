"""Scalar codebooks and vector palettes (k-means), on plain arrays and tensors.

* `codebook_1d` — a k-entry scalar codebook (1-D Lloyd/k-means) shared by several columns,
  as SOG v2 uses for scales, sh0 and the SH palette values.
* `kmeans` — vector k-means (palette for the higher SH bands). For large palettes it runs
  as a two-level tree (coarse clusters, then clusters inside each) so that assignment costs
  O(N·sqrt(k)) instead of O(N·k); exact when the data has no more than k distinct rows.
"""

from __future__ import annotations

import math

import numpy as np
import torch


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
        codebook = np.concatenate([distinct, np.full(k - len(distinct), distinct[-1], np.float32)])
        labels = np.searchsorted(distinct, flat)
        return codebook, label_dtype(labels, k).reshape(np.shape(values))
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


def label_dtype(labels: np.ndarray, k: int) -> np.ndarray:
    """``labels`` into a codebook of ``k`` entries as uint8 (k <= 256, one byte plane) or int64."""
    return labels.astype(np.uint8 if k <= 256 else np.int64)


def kmeans(x: torch.Tensor, k: int, iters: int = 10, seed: int = 0,
           weights: torch.Tensor | None = None, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster rows of ``x`` (N, D) into at most ``k`` centroids.

    Returns ``(centroids (k', D), labels (N,) long)`` with ``k' <= k``. Deterministic for a seed.
    ``weights`` (N,) weight rows in the centroid means (e.g. opacity × size).
    """
    x = x.float()
    n = x.shape[0]
    unique, inverse = torch.unique(x, dim=0, return_inverse=True)
    if unique.shape[0] <= k:
        return unique, inverse
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
        sums = torch.zeros_like(centroids).index_add_(0, labels, x * w[:, None])
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


def _assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int) -> torch.Tensor:
    c2 = (centroids * centroids).sum(1)
    out = torch.empty(x.shape[0], dtype=torch.long)
    for s in range(0, x.shape[0], chunk):
        part = x[s:s + chunk]
        out[s:s + chunk] = torch.addmm(c2, part, centroids.t(), alpha=-2).argmin(1)
    return out
