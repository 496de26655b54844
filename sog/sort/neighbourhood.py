"""Grid neighbourhoods of ShuffleSoftSort: the targets its runs learn against and the losses its polish lowers.

A box blur of the grid around each cell (`neighbourhood_mean`, the coarse stages' target), the sum of a cell's
4-neighbours (`neighbour_sums`, the polish's target), and the two neighbour losses of the polish: squared
(`neighbour_energy`) and "log" (`log_cost`, `log_energy`).

Shapes: ``xg`` (N, C) the items in grid order (cell i holds ``xg[i]``) of an (H, W) grid with ``H*W >= N``; the
cells N..H*W-1 are empty.
"""

from __future__ import annotations

import torch


def _box_sum(grid: torch.Tensor, k: int) -> torch.Tensor:
    """Sum of ``grid`` (H, W, C) over the (2k+1)^2 window around every cell, clipped at the borders; O(HWC)."""
    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        size = t.shape[dim]
        cs = torch.cumsum(t, dim)
        pad_shape = list(t.shape)
        pad_shape[dim] = 1
        cs = torch.cat([torch.zeros(pad_shape, dtype=t.dtype, device=t.device), cs], dim)
        idx = torch.arange(size, device=t.device)
        hi = (idx + k + 1).clamp(max=size)
        lo = (idx - k).clamp(min=0)
        return cs.index_select(dim, hi) - cs.index_select(dim, lo)
    return along(along(grid, 0), 1)


def counted_grid(xg: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Cells 0..N-1 of an (H, W) grid holding ``xg`` (N, C), plus a last channel that is 1 where a
    cell is filled; (H*W, C+1), zeros in the empty cells. Sums over it give counts too."""
    n, c = xg.shape
    grid = torch.zeros(shape[0] * shape[1], c + 1, dtype=xg.dtype, device=xg.device)
    grid[:n, :c] = xg
    grid[:n, c] = 1
    return grid


def neighbourhood_mean(xg: torch.Tensor, shape: tuple[int, int], k: int, passes: int = 1,
                       include_self: bool = False) -> torch.Tensor:
    """For cells 0..N-1 holding ``xg`` (N, C), the mean of the other filled cells within Chebyshev
    distance ``k`` (a box blur that leaves the cell itself out); (N, C). ``passes`` > 1 repeats
    the box blur (radius k / passes each), which tends to a Gaussian."""
    n, c = xg.shape
    h, w = shape
    grid = counted_grid(xg, shape)
    if passes > 1:
        kk = max(int(round(k / passes)), 1)
        for _ in range(passes - 1):
            sums = _box_sum(grid.reshape(h, w, c + 1), kk).reshape(h * w, c + 1)
            grid = torch.cat([sums[:, :c] / sums[:, c:].clamp(min=1), grid[:, c:]], 1) * grid[:, c:]
        k = kk
    sums = _box_sum(grid.reshape(h, w, c + 1), k).reshape(h * w, c + 1)[:n]
    if include_self:
        return sums[:, :c] / sums[:, c:].clamp(min=1)
    return (sums[:, :c] - grid[:n, :c]) / (sums[:, c:] - 1).clamp(min=1)


def neighbour_sums(xg: torch.Tensor, shape: tuple[int, int], vertical: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """For cells 0..N-1 holding ``xg`` (N, C): the sum of their filled 4-neighbours (N, C) and how
    many there are (N,); the neighbours above and below count ``vertical`` times (weights)."""
    n, c = xg.shape
    h, w = shape
    grid = counted_grid(xg, shape).reshape(h, w, c + 1)
    sums = torch.zeros_like(grid)
    if vertical:
        sums[1:] += vertical * grid[:-1]
        sums[:-1] += vertical * grid[1:]
    sums[:, 1:] += grid[:, :-1]
    sums[:, :-1] += grid[:, 1:]
    sums = sums.reshape(h * w, c + 1)[:n]
    return sums[:, :c], sums[:, c]


def neighbour_energy(xg: torch.Tensor, shape: tuple[int, int], vertical: float = 1.0) -> float:
    """Sum of squared distances over the left-right pairs of filled cells holding ``xg`` (N, C), plus
    ``vertical`` times that over the up-down pairs."""
    n, c = xg.shape
    h, w = shape
    grid = counted_grid(xg, shape).reshape(h, w, c + 1)
    val, filled = grid[..., :c], grid[..., c]
    horiz = ((val[:, 1:] - val[:, :-1]).pow(2).sum(-1) * filled[:, 1:] * filled[:, :-1]).sum()
    vert = ((val[1:] - val[:-1]).pow(2).sum(-1) * filled[1:] * filled[:-1]).sum()
    return float(horiz + vertical * vert)


def log_cost(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The "log" polish loss of neighbours holding ``a`` and ``b`` (..., C): sum over channels of
    log2(1 + |a - b|); (...). Like the bits an image codec spends on a residual: equal values cost
    nothing, and one large step costs less than several small ones."""
    return torch.log2(1 + (a - b).abs()).sum(-1)


def neighbour_cells(shape: tuple[int, int], n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """For cells 0..n-1: their left, right, up and down neighbours (n, 4) (-1 where empty or off the grid)
    and whether each is vertical (4,)."""
    h, w = shape
    cells = torch.arange(n, device=device)
    r, c = cells // w, cells % w
    nb = torch.stack([torch.where(c > 0, cells - 1, -1), torch.where(c < w - 1, cells + 1, -1),
                      torch.where(r > 0, cells - w, -1), cells + w], 1)
    nb = torch.where(nb < n, nb, -1)
    return nb, torch.tensor([False, False, True, True], device=device)


def log_energy(xg: torch.Tensor, shape: tuple[int, int], vertical: float = 0.0) -> float:
    """The "log" polish loss of the grid holding ``xg`` (N, C): `log_cost` summed over left-right
    pairs of filled cells plus ``vertical`` times over up-down pairs."""
    nb, is_vertical = neighbour_cells(shape, xg.shape[0], xg.device)
    right, down = nb[:, 1], nb[:, 3]
    total = log_cost(xg[right >= 0], xg[right[right >= 0]]).sum()
    if vertical:
        total = total + vertical * log_cost(xg[down >= 0], xg[down[down >= 0]]).sum()
    return float(total)
