"""The first order of ShuffleSoftSort, before any run: a space-filling curve or a recursive PCA bisection.

`STARTS` maps the names ``ShuffleSoftSortConfig.start`` takes to the functions; "pca" (objective "smooth") splits
the grid and the features along their first principal component recursively, "hilbert" (objective "codec") is the
3D Hilbert order of the positions folded row-major (`sog.sort.curves`).

Shapes: ``xs`` (N, C) standardised features; the grid (H, W) with ``H*W >= N``; an order (N,) long.
"""

from __future__ import annotations

import torch

from .curves import curve_order, point_keys
from .groups import ranks_within


#: first orders (features ``xs`` (N, C) normalised, grid shape) -> order (N,)
STARTS = {
    "hilbert": lambda xs, shape: torch.argsort(point_keys(xs, "hilbert"), stable=True),  # 1D curve, row-major
    "morton": lambda xs, shape: torch.argsort(point_keys(xs, "morton"), stable=True),
    "hilbert2d": lambda xs, shape: curve_order(xs, shape, "hilbert"),  # both image directions local
    "pca": lambda xs, shape: pca_bisection(xs, shape),
    "identity": lambda xs, shape: torch.arange(xs.shape[0], device=xs.device),
}


def _valid_cells(r0, r1, c0, c1, n: int, w: int) -> torch.Tensor:
    """Number of filled cells (row-major index < n) in the blocks rows [r0, r1) x cols [c0, c1); all (B,)."""
    full_rows, rem = n // w, n % w
    full = (torch.minimum(r1, torch.full_like(r1, full_rows)) - r0).clamp(min=0) * (c1 - c0)
    partial_row = (r0 <= full_rows) & (full_rows < r1)
    part = (torch.full_like(c0, rem) - c0).clamp(min=0).minimum(c1 - c0)
    return full + torch.where(partial_row, part, torch.zeros_like(part))


@torch.no_grad()
def pca_bisection(x: torch.Tensor, shape: tuple[int, int], power_iters: int = 4) -> torch.Tensor:
    """A quick 2D-local order for ``x`` (N, C): split the grid's longer side in half and the items
    at the matching quantile of their first principal component, recursively (all blocks of a
    level at once, so about log2(N) vectorised steps). Returns the order (N,) long."""
    n, c = x.shape
    h, w = shape
    dev = x.device
    one = lambda v: torch.full((1,), v, dtype=torch.long, device=dev)  # noqa: E731
    r0, r1, c0, c1, cap = one(0), one(h), one(0), one(w), one(n)
    items = torch.arange(n, device=dev)  # the items of block b, blocks one after another
    result = torch.full((h * w,), -1, dtype=torch.long, device=dev)
    gen = torch.Generator(device="cpu").manual_seed(0)
    while cap.numel():
        # a block with one item is finished: its item goes to the block's first cell (row-major),
        # which is filled because the filled cells are a row-major prefix of the grid
        start = torch.cumsum(cap, 0) - cap
        done = cap == 1
        result[r0[done] * w + c0[done]] = items[start[done]]
        split = cap > 1
        items = items[torch.repeat_interleave(start[split], cap[split]) + ranks_within(cap[split])]
        r0, r1, c0, c1, cap = r0[split], r1[split], c0[split], c1[split], cap[split]
        if not cap.numel():
            break
        block = torch.repeat_interleave(torch.arange(cap.numel(), device=dev), cap)
        # split each block along its longer side; child a gets as many items as it has filled cells
        by_rows = (r1 - r0) >= (c1 - c0)
        mid_r, mid_c = r0 + (r1 - r0) // 2, c0 + (c1 - c0) // 2
        a_r1, a_c1 = torch.where(by_rows, mid_r, r1), torch.where(by_rows, c1, mid_c)
        b_r0, b_c0 = torch.where(by_rows, mid_r, r0), torch.where(by_rows, c0, mid_c)
        cap_a = _valid_cells(r0, a_r1, c0, a_c1, n, w)
        # first principal component of each block by a few power iterations
        xb = x[items]
        mean = torch.zeros(cap.numel(), c, dtype=x.dtype, device=dev).index_add_(0, block, xb) / cap.unsqueeze(1)
        centred = xb - mean[block]
        v = torch.randn(cap.numel(), c, generator=gen, dtype=torch.float64).to(dev, x.dtype)  # float32 randn: by CPU
        for _ in range(power_iters):
            proj = (centred * v[block]).sum(1, keepdim=True)
            v = torch.zeros_like(v).index_add_(0, block, centred * proj)
            v = v / v.norm(dim=1, keepdim=True).clamp(min=1e-20)
        proj = (centred * v[block]).sum(1)
        idx = torch.argsort(proj, stable=True)
        idx = idx[torch.argsort(block[idx], stable=True)]  # by block, then projection
        items = items[idx]
        r0 = torch.stack([r0, b_r0], 1).reshape(-1)
        r1 = torch.stack([a_r1, r1], 1).reshape(-1)
        c0 = torch.stack([c0, b_c0], 1).reshape(-1)
        c1 = torch.stack([a_c1, c1], 1).reshape(-1)
        cap = torch.stack([cap_a, cap - cap_a], 1).reshape(-1)
    return result[:n]
