"""Sorting Gaussians (or any feature vectors) onto a 2D grid so that neighbours are similar.

`sort_grid` is the one entry point. A sorter is a function
``fn(x (N, C), shape (H, W), seed, device, **options) -> order (N,)`` returning the input
indices for grid cells 0..N-1 in row-major order; a new sorter is one module plus one line in
`SORTERS`.
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch

from ..errors import SogError

#: name -> "module:function", imported on first use.
SORTERS: dict[str, str] = {
    "none": "sog.sort.identity:sort_none",
    "morton": "sog.sort.morton:sort_morton",
    "shufflesoftsort": "sog.sort.shuffle_softsort:sort_shuffle_softsort",
    "softsort": "sog.sort.softsort:sort_softsort",  # dense N x N baseline, small N only
    "sinkhorn": "sog.sort.sinkhorn:sort_sinkhorn",  # N^2-parameter baseline, small N only
}


def get_sorter(method: str) -> Callable[..., torch.Tensor]:
    try:
        module, func = SORTERS[method].split(":")
    except KeyError:
        raise SogError(f"unknown sort method {method!r} (choose from {', '.join(SORTERS)})") from None
    return getattr(importlib.import_module(module), func)


def sort_grid(x: torch.Tensor, shape: tuple[int, int], method: str = "shufflesoftsort", seed: int = 0,
              device: str = "auto", **options) -> torch.Tensor:
    """Arrange the rows of ``x`` (N, C) on an ``shape = (H, W)`` grid with ``H*W >= N``.

    Returns ``perm`` (H*W,) long: ``perm[r*W + c]`` is the input index at grid cell (r, c);
    the last ``H*W - N`` cells are empty and hold -1. Every input index appears exactly
    once (checked).
    """
    n = x.shape[0]
    h, w = shape
    if h * w < n:
        raise SogError(f"grid {h}x{w} has fewer cells than the {n} items to sort")
    if n == 0:
        raise SogError("nothing to sort (zero items)")
    order = get_sorter(method)(x, (h, w), seed=seed, device=device, **options).cpu().long()
    check_bijection(order, n)
    perm = torch.full((h * w,), -1, dtype=torch.long)
    perm[:n] = order
    return perm


def check_bijection(order: torch.Tensor, n: int) -> None:
    """Raise if ``order`` is not a permutation of 0..n-1 (a sorter bug; never silently lose data)."""
    if order.shape != (n,) or n == 0:
        raise RuntimeError(f"sorter returned shape {tuple(order.shape)}, expected ({n},)")
    counts = torch.bincount(order.clamp(0, n - 1), minlength=n)
    if int(order.min()) < 0 or int(order.max()) >= n or not bool((counts == 1).all()):
        raise RuntimeError("sorter returned an order that is not a permutation (a Gaussian would be lost)")
