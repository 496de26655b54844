"""The SH palette: the higher SH bands as one palette of entries plus a label per Gaussian.

`fit_sh_palette` is shared by the profiles that size their palette by rate (native, sogv2): a k-means weighted by
opacity x footprint (`splat_weights`), its entries ordered along their first principal axis (`order_palette`) so
neighbouring labels hold similar entries (a smoother label plane); a source that is already palettised keeps its
palette exactly. How a profile stores the palette (its image layout and codebook) is the profile's own.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..splats import Splats
from ..stable import snap
from .options import CodecOptions
from .quantize import distinct_rows, kmeans


def default_palette_size(n: int) -> int:
    """splat-transform's palette size: a power of two times 1024, at most 65536."""
    return int(min(64, 2 ** math.floor(math.log2(max(n, 1) / 1024))) * 1024)


def band_limited(splats: Splats, options: CodecOptions) -> Splats:
    """``splats`` with at most ``options.sh_degree`` SH bands (all of them when it is None)."""
    if options.sh_degree is None:
        return splats
    return splats.with_sh_degree(min(options.sh_degree, splats.sh_degree))


def stored_palette(splats: Splats, options: CodecOptions) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`fit_sh_palette` on the bands a file stores (`band_limited`), or None when it stores none: the palette a
    profile fits once for several encodes of the same scene (`sog.codec.base.Profile.fit_palette`)."""
    limited = band_limited(splats, options)
    return fit_sh_palette(limited, options) if limited.shN.shape[1] else None


def splat_weights(splats: Splats) -> np.ndarray:
    """(N,) importance of each Gaussian: opacity x screen footprint (exp of twice the mean log scale).

    In float64 numpy, snapped to 20 significant bits (`sog.stable.snap`): the weights steer the SH k-means'
    labels, and torch's float32 sigmoid/exp round the last bit differently by CPU instruction set."""
    logit = splats.opacities.detach().cpu().double().numpy()
    s = splats.scales.detach().cpu().double().numpy()
    opacity = 1.0 / (1.0 + np.exp(-logit))
    area = np.exp(np.clip(2 * ((s[:, 0] + s[:, 1] + s[:, 2]) / 3), -60, 20))  # the columns in a fixed order
    w = snap(opacity * area)
    cap = np.quantile(w, 0.99) if w.size > 100 else w.max()
    return np.clip(w, cap * 1e-6 + 1e-30, max(cap, 1e-30))


def fit_sh_palette(splats: Splats, options: CodecOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The higher-band SH palette of ``splats``: ``(centroids (c, 3K) float32, labels (N,) long)``, entries
    ordered along their first principal axis. Size: ``palette_size`` capped at N / ``palette_per`` (at most 65,536
    entries: 16-bit labels); an already palettised source with at most N / ``exact_palette_per`` distinct rows
    keeps them exactly."""
    n, k = len(splats), splats.shN.shape[1]
    flat = splats.shN.detach().cpu().float().transpose(1, 2).reshape(n, 3 * k)
    size = min(options.palette_size or default_palette_size(n), 65536)
    if options.palette_per > 0:
        size = min(size, 1 << max(8, int(math.log2(max(n // options.palette_per, 1)))))
    if options.exact_palette_per > 0:  # an already palettised source (e.g. a SOG): keep its palette
        exact = distinct_rows(flat, int(min(n // options.exact_palette_per, 65536)))
        if exact is not None:
            size = max(size, exact[0].shape[0])
    weights = torch.from_numpy(splat_weights(splats)) if options.weighted else None
    centroids, labels = kmeans(flat, size, options.kmeans_iters, options.seed, weights)
    return order_palette(centroids, labels)


def order_palette(centroids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder palette entries (k, D) along their first principal axis; relabel (N,) to match.

    The same order for the same entries on any machine and thread count: float64, numpy's own pairwise sums and
    einsum loops (no threaded BLAS reduction whose order depends on the thread count), the axis signed so its
    largest component is positive and rounded to 1e-9, a stable sort (a threaded SVD's order depended on the
    thread count)."""
    if centroids.shape[0] < 2:
        return centroids, labels
    c = centroids.detach().cpu().double().numpy()
    centred = c - c.mean(0)
    _, vectors = np.linalg.eigh(np.einsum("ki,kj->ij", centred, centred))
    axis = vectors[:, -1] * (1.0 if vectors[np.abs(vectors[:, -1]).argmax(), -1] >= 0 else -1.0)
    proj = (centred * np.round(axis, 9)).sum(1)
    order = torch.from_numpy(np.argsort(proj, kind="stable")).to(centroids.device)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return centroids[order], rank[labels]
