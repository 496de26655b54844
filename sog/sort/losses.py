"""Losses and quality metrics of a grid arrangement, all in one place.

* `neighbour_ratio` (metric) / `neighbour_loss` (differentiable): mean squared distance between
  4-neighbours on the grid divided by ``2 * sum of per-channel variances``. A random arrangement
  scores about 1; lower is better.
* `std_loss`, `column_sum_loss`: the regularisers of soft permutations (a soft permutation may
  average elements together, shrinking the spread, or use one element twice).
* `dpq`: distance preservation quality DPQ_p (Barthel et al., CGF 2023), exact, O(N^2) memory;
  `local_dpq_gain`: its numerator over the nearest grid neighbours only, O(N) (to compare arrangements).
* `ranked_neighbour_loss` (metric) / `ranked_energy` (per cell): the loss DPQ_p is most sensitive
  to, in O(N). Every cell ranks its grid neighbours as DPQ does (nearer rings first, then by feature
  distance) and sums ``weight[k] * (k-th ranked distance)``: unlike the squared neighbour loss, it
  rewards a cell for having *one* very close neighbour, as DPQ does. `dpq_rank_weights` derives the
  weights from DPQ_p's gradient.

An arrangement is given as ``perm`` (H*W,) long (input index per cell, row-major, -1 for an empty
cell) as returned by `sog.sort.sort_grid`, or as an order (N,) filling the first N cells.
"""

from __future__ import annotations

import torch


def as_grid(x: torch.Tensor, perm: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lay ``x`` (N, C) out on the grid: returns ``grid`` (H, W, C) (zeros in empty cells) and ``mask`` (H, W) bool.

    ``perm`` is (H*W,) with -1 for empty cells, or an order (N,) for the first N cells.
    """
    h, w = shape
    perm = perm.to(x.device).long()
    full = torch.full((h * w,), -1, dtype=torch.long, device=x.device)
    full[: perm.numel()] = perm
    mask = full >= 0
    grid = torch.zeros(h * w, x.shape[1], dtype=x.dtype, device=x.device)
    grid[mask] = x[full[mask]]
    return grid.reshape(h, w, -1), mask.reshape(h, w)


def total_variance(x: torch.Tensor) -> torch.Tensor:
    """Sum of the per-channel variances of ``x`` (N, C) (population variance); a scalar."""
    return x.var(0, unbiased=False).sum()


def neighbour_sq_dists(grid: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared distances over 4-neighbour pairs of ``grid`` (H, W, C) and the number of pairs.

    Pairs with an empty cell (``mask`` False) are left out. Differentiable in ``grid``.
    """
    dh = (grid[1:] - grid[:-1]).pow(2).sum(-1)
    dw = (grid[:, 1:] - grid[:, :-1]).pow(2).sum(-1)
    if mask is None:
        return dh.sum() + dw.sum(), torch.tensor(dh.numel() + dw.numel(), device=grid.device)
    mh = mask[1:] & mask[:-1]
    mw = mask[:, 1:] & mask[:, :-1]
    return (dh * mh).sum() + (dw * mw).sum(), mh.sum() + mw.sum()


def neighbour_loss(grid: torch.Tensor, mask: torch.Tensor | None = None,
                   variance: torch.Tensor | float | None = None) -> torch.Tensor:
    """Differentiable neighbour ratio of ``grid`` (H, W, C): mean squared 4-neighbour distance / (2 * variance).

    ``variance`` is the total variance of the items (default: of the filled cells of ``grid``).
    """
    if variance is None:
        cells = grid.reshape(-1, grid.shape[-1])
        variance = total_variance(cells if mask is None else cells[mask.reshape(-1)])
    total, count = neighbour_sq_dists(grid, mask)
    return total / count.clamp(min=1) / (2 * torch.as_tensor(variance).clamp(min=1e-30))


@torch.no_grad()
def neighbour_ratio(x: torch.Tensor, perm: torch.Tensor, shape: tuple[int, int]) -> float:
    """The neighbour ratio of ``x`` (N, C) arranged by ``perm``: about 1 for a random grid, 0 for a constant one."""
    x = x.double()
    grid, mask = as_grid(x, perm, shape)
    return float(neighbour_loss(grid, mask, total_variance(x)))


def std_loss(soft: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Relative loss of spread of soft-permuted features ``soft`` (..., N, C) against ``x`` (..., N, C); scalar.

    A soft permutation that averages elements shrinks their standard deviation; this is
    ``mean over channels of |std(x) - std(soft)| / std(x)``.
    """
    sx = x.std(-2)
    return ((sx - soft.std(-2)).abs() / sx.clamp(min=1e-12)).mean()


def column_sum_loss(p: torch.Tensor) -> torch.Tensor:
    """Mean of ``(column sum - 1)^2`` of soft permutation matrices ``p`` (..., N, N) (rows already sum to 1)."""
    return (p.sum(-2) - 1).pow(2).mean()


def _dp_gain(sorted_d: torch.Tensor, mean_d: torch.Tensor) -> torch.Tensor:
    """Delta-D_k for k = 1..N-1 from rows of distances sorted by neighbour rank (column 0 is the element itself)."""
    n = sorted_d.shape[1]
    d_k = (sorted_d[:, 1:].cumsum(1) / torch.arange(1, n, dtype=sorted_d.dtype, device=sorted_d.device)).mean(0)
    return ((mean_d - d_k) / mean_d).clamp(min=0)


@torch.no_grad()
def dpq(x: torch.Tensor, perm: torch.Tensor, shape: tuple[int, int], p: float = 16) -> float:
    """Distance preservation quality DPQ_p of ``x`` (N, C) arranged by ``perm`` on ``shape`` (exact; O(N^2)).

    For every element, the mean feature distance to its k nearest grid neighbours is compared with
    the mean distance to its k nearest feature neighbours, for all k; DPQ_p =
    ``||dD_2D||_p / ||dD_HD||_p`` with ``dD_k = max(0, (mean_dist - D_k) / mean_dist)``. Grid cells
    at equal grid distance are ranked by feature distance (as Barthel et al.'s code does), so a
    random arrangement scores about 0.3 and a perfect one 1. Only filled cells take part.
    """
    h, w = shape
    full = torch.full((h * w,), -1, dtype=torch.long)
    full[: perm.numel()] = perm.cpu().long()
    cells = torch.nonzero(full >= 0).squeeze(1)
    items = x.detach().double().cpu()[full[cells]]
    d_hd = torch.cdist(items, items)
    sorted_hd = d_hd.sort(1).values
    mean_d = sorted_hd[:, 1:].mean()
    rc = torch.stack([cells // w, cells % w], 1).double()
    d_2d = torch.cdist(rc, rc).pow(2).round()  # squared grid distances: integers
    scale = d_hd.max() * 1.0001
    if scale == 0:
        return 1.0
    ranked = (d_2d + d_hd / scale).sort(1).values  # grid distance first, feature distance breaks ties
    hd_by_2d = torch.frac(ranked) * scale
    gain_2d = _dp_gain(hd_by_2d, mean_d)
    gain_hd = _dp_gain(sorted_hd, mean_d)
    return float(torch.linalg.vector_norm(gain_2d, p) / torch.linalg.vector_norm(gain_hd, p))


@torch.no_grad()
def sampled_mean_distance(x: torch.Tensor, gen: torch.Generator, rows: int = 256) -> float:
    """Mean feature distance between the items ``x`` (N, C), estimated from ``rows`` random rows against all."""
    pick = torch.randperm(x.shape[0], generator=gen)[:rows].to(x.device)
    return float(torch.cdist(x[pick], x).mean())


@torch.no_grad()
def local_dpq_gain(x: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], radius: int = 4, p: float = 16,
                   mean_d: float | None = None) -> float:
    """``sum_k dD_k^p`` of `dpq`'s numerator over the nearest grid neighbours only; higher is better.

    ``x`` (N, C) arranged by ``order`` (N,) (cells 0..N-1). D_k is taken over the neighbours within
    Euclidean grid distance ``radius`` (ties at equal grid distance ranked by feature distance, as
    in `dpq`), for k up to half of that disc; a cell near the border ranks the neighbours it has (as
    in `dpq`, the next ring moves up).
    With a large ``p`` the small k dominate DPQ_p, so this ranks arrangements of the *same* items
    nearly as `dpq` does, in O(N radius^2) instead of O(N^2). ``mean_d``, the mean distance
    between items, is estimated from a sample of rows when not given.
    """
    if mean_d is None:
        mean_d = sampled_mean_distance(x, torch.Generator().manual_seed(0))
    rings = len({dy * dy + dx * dx for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
                 if 0 < dy * dy + dx * dx <= radius * radius})
    offsets, ring = ring_offsets(rings)
    d = neighbour_distances(x[order], neighbour_table(shape, x.shape[0], offsets, x.device))
    gains = _local_gains(d, torch.tensor(ring, device=x.device), mean_d)[: len(offsets) // 2]
    return float((gains ** p).sum())


# ----------------------------------------------------------------------------------------------
# the ranked neighbour loss (what DPQ_p rewards, locally)


def ring_offsets(rings: int) -> tuple[list[tuple[int, int]], list[int]]:
    """The grid offsets (dy, dx) of the ``rings`` nearest distance rings around a cell (ring 0: the
    4-neighbours, 1: the diagonals, 2: two cells straight, 3: knight moves, ...), nearest first,
    and the ring number of each. Four rings hold 20 cells."""
    reach = rings + 1
    sq = sorted({dy * dy + dx * dx for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)} - {0})[:rings]
    offsets = sorted(((dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)
                      if dy * dy + dx * dx in sq), key=lambda o: (o[0] ** 2 + o[1] ** 2, o))
    return offsets, [sq.index(dy * dy + dx * dx) for dy, dx in offsets]


def neighbour_table(shape: tuple[int, int], n: int, offsets: list[tuple[int, int]],
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """For cells 0..N-1 of the (H, W) grid, the cell at each offset; (N, M) long, -1 where that
    cell is off the grid or empty (index >= N)."""
    h, w = shape
    cells = torch.arange(n, device=device)
    r, c = cells // w, cells % w
    cols = []
    for dy, dx in offsets:
        rr, cc = r + dy, c + dx
        there = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w) & (rr * w + cc < n)
        cols.append(torch.where(there, rr * w + cc, torch.full_like(cells, -1)))
    return torch.stack(cols, 1) if cols else torch.zeros(n, 0, dtype=torch.long, device=device)


def rank_neighbours(d: torch.Tensor, ring: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank a cell's neighbour distances as DPQ does: ``d`` (..., M) with ``inf`` for a missing
    neighbour, ``ring`` (M,) the ring of each slot. Returns the ranked distances (..., M) (missing
    ones last, as 0) and ``rank_of`` (..., M): the rank of each slot."""
    d64 = d.to(torch.float64)
    finite = torch.isfinite(d64)
    span = torch.where(finite, d64, torch.zeros_like(d64)).amax() + 1  # wider than any distance: rings never mix
    key = ring.to(torch.float64) * span + d64  # nearer rings first, then by distance; missing (inf) last
    idx = key.argsort(-1)
    ranked = d.gather(-1, idx)
    ranked = torch.where(torch.isfinite(ranked), ranked, torch.zeros_like(ranked))
    rank_of = torch.empty_like(idx).scatter_(-1, idx, torch.arange(d.shape[-1], device=d.device).expand_as(idx))
    return ranked, rank_of


def ranked_energy(d: torch.Tensor, ring: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k weights[k] * (k-th ranked distance)`` of neighbour distances ``d`` (..., M) (``inf``:
    missing) ranked by `rank_neighbours`; (...,)."""
    return (rank_neighbours(d, ring)[0] * weights).sum(-1)


def _local_gains(d: torch.Tensor, ring: torch.Tensor, mean_d: float) -> torch.Tensor:
    """DPQ's dD_k (M,) over the ranked neighbours only: ``max(0, 1 - D_k / mean_d)`` with D_k the mean
    over cells of the mean of their k nearest ranked distances ``d`` (N, M) (``inf``: missing; a
    cell with fewer neighbours averages those it has)."""
    ranked, _ = rank_neighbours(d, ring)
    count = torch.isfinite(d).sum(1, keepdim=True)  # missing neighbours rank last
    present = torch.arange(d.shape[1], device=d.device) < count
    mean_k = ranked.cumsum(1) / present.cumsum(1).clamp(min=1)
    return (1 - mean_k.mean(0) / mean_d).clamp(min=0)


def dpq_rank_weights(d: torch.Tensor, ring: torch.Tensor, mean_d: float, p: float = 16) -> torch.Tensor:
    """Weights (M,) for `ranked_energy` from the gradient of DPQ_p's numerator, given the neighbour
    distances ``d`` (N, M) (``inf``: missing) of an arrangement and the mean distance between items.

    D_k is the mean over cells of the mean of their k nearest ranked distances, and the numerator
    ``sum_k (1 - D_k / mean_d)^p``; the k-th ranked distance enters every D_k' with k' >= k (as
    1/k' of it), so its weight is ``sum_{k' >= k} g_k'^(p-1) / k'`` (normalised to 1 for k = 1).
    On 1024 random colours with p = 16 the nearest neighbour weighs about twice the second and five
    times the fourth.
    """
    g = _local_gains(d, ring, mean_d)
    k = torch.arange(1, d.shape[1] + 1, dtype=g.dtype, device=d.device)
    w = (g ** (p - 1) / k).flip(0).cumsum(0).flip(0)
    return w / w[0].clamp(min=1e-30)


def neighbour_distances(xg: torch.Tensor, table: torch.Tensor, cells: torch.Tensor | None = None) -> torch.Tensor:
    """Feature distances from the items ``xg`` (N, C) in grid order to their neighbours in ``table``
    (N, M) (`neighbour_table`), for ``cells`` (default all); (len(cells), M), ``inf`` where missing."""
    nb = table if cells is None else table[cells]
    here = xg if cells is None else xg[cells]
    d = (here.unsqueeze(1) - xg[nb.clamp(min=0)]).norm(dim=-1)
    return torch.where(nb >= 0, d, torch.full_like(d, float("inf")))


@torch.no_grad()
def ranked_neighbour_loss(x: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], rings: int = 4,
                          p: float = 16) -> float:
    """The ranked neighbour loss of ``x`` (N, C) arranged by ``order`` (N,) (cells 0..N-1): the mean
    over cells of `ranked_energy` with `dpq_rank_weights` from this arrangement, over the mean
    distance between items (so it is scale-free); lower is better."""
    x = x.double()
    xg = x[order.to(x.device)]
    offsets, ring = ring_offsets(rings)
    d = neighbour_distances(xg, neighbour_table(shape, x.shape[0], offsets, x.device))
    ring_t = torch.tensor(ring, device=x.device)
    mean_d = sampled_mean_distance(x, torch.Generator().manual_seed(0))
    return float(ranked_energy(d, ring_t, dpq_rank_weights(d, ring_t, mean_d, p)).mean() / mean_d)
