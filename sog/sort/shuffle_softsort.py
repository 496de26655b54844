"""ShuffleSoftSort: a grid sorter with exactly N learnable weights (Barthel, Barthel & Eisert 2025).

The idea of the paper, made to scale: instead of one dense N x N soft permutation, each *run*
shuffles the grid cells into groups of K cells drawn from 2D windows, and every group learns a
SoftSort of its K elements (one weight per element, so N weights in all; memory O(N K)). The
loss of a group is the expected distance between what lands in each cell and a *target*: the
mean of the cell's neighbourhood in the current grid (a box blur that leaves the cell itself
out). The soft permutation is hardened by ``argsort`` of the weights, which is a bijection by
construction, and a group keeps its new order only if its hard cost went down, so every run
improves (never worsens) the arrangement. Windows and blur radius shrink over the runs (coarse
to fine); each radius stops on a plateau.

Last, a *polish* stage learns the same group SoftSorts on the exact grid neighbourhood loss: the
target of a cell is the mean of its 4-neighbours, its cost is weighted by their number, and a
run's groups hold cells of one checkerboard colour only (never two neighbours), so a group's
cost change is exactly the change of the sum of squared 4-neighbour distances.

Options for quality over speed (off by default; the ``shufflesoftsort-dpq`` row of
scripts/bench_sort.py uses them): ``assign_runs`` blurs the target once per radius step and runs
that many runs against it, approximating one linear assignment per step as LAS does (the steps
are not merged when radii round alike); ``feature_groups`` draws every so many runs' groups in
feature space (`draw_feature_groups`: a random k-d tree of element plus target), so that
far-apart cells meet in a group; ``restarts``
redoes the schedule from ``restart_radius`` on the best order so far and keeps a result only if
`sog.sort.losses.local_dpq_gain` (a local, O(N) form of DPQ) rates it higher; ``rank_polish_runs``
adds a last stage (`rank_polish`) on the *ranked* neighbour loss (`sog.sort.losses.ranked_energy`),
which rewards a cell for its nearest neighbour most, as DPQ does, where the squared losses above
reward smoothness. On 1024 random colours it adds about 0.003 to DPQ16.

Start: a recursive PCA bisection of the features into the grid (or a given order, ``init``, as
a warm start during training).

Shapes: ``x`` (N, C) features; the grid is (H, W) with ``H*W >= N``; an *order* (N,) holds the
input index for cells 0..N-1 in row-major order (the empty cells are the last ``H*W - N``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace

import torch
from tqdm import tqdm

from ..device import resolve_device
from ..errors import SogError
from .losses import (as_grid, dpq_rank_weights, local_dpq_gain, neighbour_distances, neighbour_sq_dists,
                     neighbour_table, rank_neighbours, ranked_energy, ring_offsets, sampled_mean_distance,
                     total_variance)
from .softsort import softsort_cost_grad, sum_last


@dataclass
class ShuffleSoftSortConfig:
    """Schedule of the sorter. Radii are in grid cells; tau is in units of the weight spacing (1)."""

    group: int = 4  #: K, elements per SoftSort group
    steps: int = 2  #: gradient steps per run
    lr: float = 0.5  #: Adam learning rate of the weights
    tau_start: float = 1.0
    tau_end: float = 0.1
    p: int = 2  #: power of the SoftSort distance
    radius_start: float | None = None  #: first blur radius; default max(H, W) / 2, or warm_radius with ``init``
    warm_radius: float = 8.0  #: first radius of a warm start: keep the given order's large-scale layout
    radius_end: float = 1.0
    radius_decay: float = 0.8  #: next radius = decay * radius
    window_factor: float = 1.5  #: group windows are about this many radii wide
    assign_runs: int = 0  #: >0: blur once per radius step and run this many runs against that fixed target (see `refine`)
    feature_groups: int = 0  #: every this many runs (0: never), draw the groups in feature space (`draw_feature_groups`)
    min_runs: int = 2  #: runs at each radius before a plateau may stop it
    max_runs: int = 45  #: runs at each radius at most
    improvement_break: float = 1e-4  #: stop a radius when a run lowers the cost by less than this fraction
    max_seconds: float | None = None  #: stop refining after this long (the order stays valid)
    axis_start: bool = True  #: weights start at the 1D matching along each group's main axis (`order_slots`)
    blur_passes: int = 1  #: box blurs that make the target (more tend to a Gaussian)
    include_self: bool = True  #: the target averages the cell itself too (measured better)
    start: str = "pca"  #: first order without ``init``: "pca" (recursive bisection) or "identity"
    polish_runs: int = 600  #: runs of the final stage on the exact 4-neighbour loss at most (0: none)
    polish_group: int = 6  #: K of the polish stage
    polish_window: int = 8  #: its group windows, in cells
    polish_break: float = 1e-5  #: stop polishing when two runs lower the neighbour loss by less than this fraction
    restarts: int = 0  #: warm restarts after the schedule: redo it from ``restart_radius``, keep what `local_dpq_gain` prefers
    restart_radius: float = 4.0  #: first radius of a warm restart
    rank_polish_runs: int = 0  #: >0: a last stage of at most this many runs on the ranked neighbour loss (`rank_polish`)
    rank_polish_seconds: float | None = None  #: with ``max_seconds``: the part of it kept for that stage
    rank_rings: int = 4  #: distance rings that loss looks at (4: the 20 nearest cells)
    rank_group: int = 4  #: K of that stage
    rank_window: int = 3  #: its group windows, in cells


def sort_shuffle_softsort(x: torch.Tensor, shape: tuple[int, int], seed: int = 0, device="auto",
                          progress: bool = False, init: torch.Tensor | None = None,
                          **options) -> torch.Tensor:
    """Arrange ``x`` (N, C) on the (H, W) grid; returns the order (N,) long (a permutation of 0..N-1).

    ``init`` (N,) is an optional starting order (warm start); otherwise ``config.start`` decides.
    ``options`` are fields of `ShuffleSoftSortConfig`.
    """
    known = {f.name for f in fields(ShuffleSoftSortConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SogError(f"unknown shufflesoftsort option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    cfg = ShuffleSoftSortConfig(**options)
    dev = resolve_device(device)
    if init is not None and (init.shape != (x.shape[0],)
                             or not torch.equal(torch.sort(init.cpu().long()).values, torch.arange(x.shape[0]))):
        raise SogError(f"init must be a permutation of 0..{x.shape[0] - 1}")
    n = x.shape[0]
    h, w = shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    xs = x.detach().float().to(dev)
    xs = (xs - xs.mean(0)) / total_variance(xs).sqrt().clamp(min=1e-12)
    if init is not None:
        order = init.to(dev).long()
        if cfg.radius_start is None:
            cfg.radius_start = min(cfg.warm_radius, max(shape) / 2)
    elif cfg.start == "pca" and n > 1:
        order = pca_bisection(xs, shape)
    else:
        order = torch.arange(n, device=dev)
    if n < 4:
        return order.cpu()
    t_end = None if cfg.max_seconds is None else time.perf_counter() + cfg.max_seconds
    main = cfg
    if cfg.rank_polish_runs > 0 and cfg.max_seconds is not None and cfg.rank_polish_seconds:
        main = replace(cfg, max_seconds=max(cfg.max_seconds - cfg.rank_polish_seconds, 0.0))
    order = refine(xs, order, shape, main, gen, progress)
    if cfg.rank_polish_runs > 0:
        order = rank_polish(xs, order, shape, cfg, gen, t_end, progress)
    return order.cpu()


# ----------------------------------------------------------------------------------------------
# start: recursive PCA bisection


def _valid_cells(r0, r1, c0, c1, n: int, w: int) -> torch.Tensor:
    """Number of filled cells (row-major index < n) in the blocks rows [r0, r1) x cols [c0, c1); all (B,)."""
    full_rows, rem = n // w, n % w
    full = (torch.minimum(r1, torch.full_like(r1, full_rows)) - r0).clamp(min=0) * (c1 - c0)
    partial_row = (r0 <= full_rows) & (full_rows < r1)
    part = (torch.full_like(c0, rem) - c0).clamp(min=0).minimum(c1 - c0)
    return full + torch.where(partial_row, part, torch.zeros_like(part))


def _ranks_within(sizes: torch.Tensor) -> torch.Tensor:
    """For consecutive segments of the given ``sizes`` (B,), the rank of each position in its segment; (sum,)."""
    starts = torch.cumsum(sizes, 0) - sizes
    return torch.arange(int(sizes.sum()), device=sizes.device) - torch.repeat_interleave(starts, sizes)


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
        items = items[torch.repeat_interleave(start[split], cap[split]) + _ranks_within(cap[split])]
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
        mean = torch.zeros(cap.numel(), c, device=dev).index_add_(0, block, xb) / cap.unsqueeze(1)
        centred = xb - mean[block]
        v = torch.randn(cap.numel(), c, generator=gen).to(dev)
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


# ----------------------------------------------------------------------------------------------
# refinement: shuffled groups, SoftSort of N weights, accept only what lowers the cost


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


def _counted_grid(xg: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
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
    grid = _counted_grid(xg, shape)
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


def neighbour_sums(xg: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """For cells 0..N-1 holding ``xg`` (N, C): the sum of their filled 4-neighbours (N, C) and how
    many there are (N,)."""
    n, c = xg.shape
    h, w = shape
    grid = _counted_grid(xg, shape).reshape(h, w, c + 1)
    sums = torch.zeros_like(grid)
    sums[1:] += grid[:-1]
    sums[:-1] += grid[1:]
    sums[:, 1:] += grid[:, :-1]
    sums[:, :-1] += grid[:, 1:]
    sums = sums.reshape(h * w, c + 1)[:n]
    return sums[:, :c], sums[:, c]


def draw_groups(shape: tuple[int, int], n: int, window: int, k: int, gen: torch.Generator,
                device: torch.device, parity: int | None = None, gap: int = 0) -> torch.Tensor:
    """Shuffle the filled cells into groups of ``k`` cells from the same ``window`` x ``window``
    tile of a randomly offset tiling; (G, k) cell indices, every cell in at most one group (the
    few left over in a tile sit this run out). With ``parity`` (0 or 1), only the cells (r, c)
    with ``(r + c) % 2 == parity`` take part: no two of them are 4-neighbours. With ``gap`` > 0,
    every window gives one group and the windows are ``gap`` cells apart (the cells between them sit
    the run out), so cells of two groups are more than ``gap`` cells apart along a row or a column."""
    h, w = shape
    period = window + gap
    oy, ox = (int(v) for v in torch.randint(0, period, (2,), generator=gen))
    cells = torch.arange(n)
    if parity is not None:
        cells = cells[(cells // w + cells % w) % 2 == parity]
    if gap:
        cells = cells[((cells // w + oy) % period < window) & ((cells % w + ox) % period < window)]
    ty, tx = (cells // w + oy) // period, (cells % w + ox) // period
    tile = ty * ((w + period) // period + 1) + tx
    key = tile.double() + torch.rand(cells.numel(), generator=gen, dtype=torch.float64)
    idx = torch.argsort(key)  # by tile, randomly within a tile
    tile_sorted = tile[idx]
    _, sizes = torch.unique_consecutive(tile_sorted, return_counts=True)
    rank = _ranks_within(sizes)
    per_tile = torch.where(sizes >= k, k, 0) if gap else sizes // k * k  # with gap: one group per window
    usable = rank < torch.repeat_interleave(per_tile, sizes)
    return cells[idx[usable]].reshape(-1, k).to(device)


def draw_feature_groups(xg: torch.Tensor, target: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Shuffle the filled cells into groups of ``k`` cells that are close in *feature* space, not on
    the grid; (G, k). A cell's point is its element plus its target (where it is and what it
    wants). The points are bisected recursively, every level along a new random direction (a
    random k-d tree, all blocks of a level at once), down to blocks of about ``k``; the resulting
    order is cut, from a random offset, into runs of ``k``. Cells anywhere on the grid meet this
    way, so a group can move an element far (the global moves a linear assignment makes), and a
    group's cells are alike in every channel, not only along one direction."""
    n, c = xg.shape
    dev = xg.device
    levels = max(math.ceil(math.log2(n / k)), 0)
    keys = (xg + target) @ torch.randn(c, levels, generator=gen).to(dev)  # (N, levels) a direction per level
    lo, hi = keys.min(0).values, keys.max(0).values
    keys = ((keys - lo) / (hi - lo).clamp(min=1e-12)).double()  # in [0, 1]; double: block * 2 + key stays exact
    idx = torch.randperm(n, generator=gen).to(dev)
    pos = torch.arange(n, device=dev)
    for level in range(levels):
        parent = (pos * 2 ** level) // n  # the balanced blocks of the previous level
        idx = idx[torch.argsort(parent.double() * 2 + keys[idx, level])]  # by block, then along the direction
    off = int(torch.randint(0, k, (1,), generator=gen))
    m = (n - off) // k * k
    return idx[off:off + m].reshape(-1, k)


def _group_costs(xg: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Squared distances (G, K, K): entry [g, i, j] is element j of group g placed at its cell i."""
    a = target[groups]  # (G, K, C) what each cell wants
    b = xg[groups]  # (G, K, C) what the group holds
    cost = sum_last(a * a, keepdim=True) + sum_last(b * b).unsqueeze(-2) - 2 * a @ b.transpose(1, 2)
    return cost.clamp(min=0)


def order_slots(xg: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, power_iters: int = 3):
    """Put the cells of each group in the order of their targets along the group's main axis and
    rank the elements along that same axis.

    Returns ``groups`` (G, K) reordered and ``start`` (G, K) float: element j of a group (the one
    now at its j-th cell) starts with weight = its rank along the axis, so that ``argsort`` of the
    start weights is the 1D matching of elements to cells, a good first guess that SoftSort refines.
    """
    t = target[groups]  # (G, K, C)
    e = xg[groups]
    both = torch.cat([t, e], 1)
    centred = both - both.mean(1, keepdim=True)
    v = centred[:, 0] - centred[:, -1] + 1e-6  # (G, C) a cheap first guess of the axis
    for _ in range(power_iters):  # v <- centred^T centred v, per group
        v = torch.bmm(centred.transpose(1, 2), torch.bmm(centred, v.unsqueeze(2))).squeeze(2)
        v = v / v.norm(dim=1, keepdim=True).clamp(min=1e-20)
    slot_order = torch.argsort(torch.bmm(t, v.unsqueeze(2)).squeeze(2), dim=1)
    groups = groups.gather(1, slot_order)
    proj = torch.bmm(xg[groups], v.unsqueeze(2)).squeeze(2)
    start = torch.argsort(torch.argsort(proj, dim=1), dim=1).to(xg.dtype)  # ranks
    return groups, start


def learn_group_orders(cost: torch.Tensor, cfg: ShuffleSoftSortConfig, start: torch.Tensor | None = None) -> torch.Tensor:
    """Learn one weight per element of each group so that SoftSort lowers the expected cost.

    ``cost`` (G, K, K) as in `_group_costs`; the weights start at ``start`` (G, K) (default
    0..K-1, the current order). Returns the hard orders (G, K) long: slot i takes element
    ``order[g, i]`` (argsort of the weights, a bijection within every group).
    """
    g, k, _ = cost.shape
    cost = cost / cost.mean((1, 2), keepdim=True).clamp(min=1e-12)
    if start is None:
        start = torch.arange(k, dtype=cost.dtype, device=cost.device).expand(g, k)
    w = start.clone()
    m, v = torch.zeros_like(w), torch.zeros_like(w)  # Adam moments (betas 0.9, 0.999), updated by hand
    best = torch.argsort(start, dim=-1, stable=True)
    best_cost = cost.gather(2, best.unsqueeze(2)).sum((1, 2))
    hard = best  # argsort of the current weights, shared by the gradient and the hardening
    for step in range(cfg.steps):
        tau = cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** (step / max(cfg.steps - 1, 1))
        grad = softsort_cost_grad(w, cost, tau, cfg.p, order=hard) / g  # of the mean expected cost per group
        m.mul_(0.9).add_(grad, alpha=0.1)
        v.mul_(0.999).addcmul_(grad, grad, value=0.001)
        w -= cfg.lr * (m / (1 - 0.9 ** (step + 1))) / ((v / (1 - 0.999 ** (step + 1))).sqrt() + 1e-8)
        # keep the best hard order met on the way (argsort: always a bijection)
        hard = torch.argsort(w, dim=-1, stable=True)
        hard_cost = cost.gather(2, hard.unsqueeze(2)).sum((1, 2))
        better = hard_cost < best_cost
        best = torch.where(better.unsqueeze(1), hard, best)
        best_cost = torch.where(better, hard_cost, best_cost)
    return best


def _radii(cfg: ShuffleSoftSortConfig, shape: tuple[int, int]) -> list[int]:
    r = cfg.radius_start if cfg.radius_start is not None else max(shape) / 2
    out = []
    while r > cfg.radius_end:
        out.append(max(int(round(r)), 1))
        r *= cfg.radius_decay
    out.append(max(int(round(cfg.radius_end)), 1))
    if cfg.assign_runs:  # every step blurs anew, so repeated (rounded) radii are steps too
        return out
    return [v for i, v in enumerate(out) if i == 0 or v != out[i - 1]] or [1]


def _learn_and_apply(xs: torch.Tensor, xg: torch.Tensor, order: torch.Tensor, target: torch.Tensor,
                     groups: torch.Tensor, cfg: ShuffleSoftSortConfig, cell_weight: torch.Tensor | None = None
                     ) -> tuple[float, float]:
    """One run on the drawn ``groups`` (G, K): learn each group's SoftSort against ``target`` (N, C),
    keep the groups whose hard cost went down, and update ``order`` (N,) and ``xg`` (N, C) in place.
    ``cell_weight`` (N,) scales the cost of each cell. Returns (cost before, cost removed) of the groups."""
    start = None
    if cfg.axis_start:
        groups, start = order_slots(xg, target, groups)
    cost = _group_costs(xg, target, groups)
    if cell_weight is not None:
        cost = cost * cell_weight[groups].unsqueeze(2)
    new = learn_group_orders(cost, cfg, start)
    old_cost = cost.diagonal(dim1=1, dim2=2).sum(1)
    new_cost = cost.gather(2, new.unsqueeze(2)).squeeze(2).sum(1)
    accept = new_cost < old_cost * (1 - 1e-6)
    cells = groups[accept]
    moved = cells.gather(1, new[accept])
    order[cells.reshape(-1)] = order[moved.reshape(-1)].clone()
    xg[cells.reshape(-1)] = xs[order[cells.reshape(-1)]]
    return float(old_cost.sum()), float((old_cost - new_cost)[accept].sum())


@torch.no_grad()
def refine(xs: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], cfg: ShuffleSoftSortConfig,
           gen: torch.Generator, progress: bool = False) -> torch.Tensor:
    """Improve the order (N,) of normalised features ``xs`` (N, C) on the grid; returns the new order."""
    n = xs.shape[0]
    dev = xs.device
    order = order.clone()
    xg = xs[order]
    k = min(cfg.group, n)
    t_end = None if cfg.max_seconds is None else time.perf_counter() + cfg.max_seconds
    stages = _radii(cfg, shape) + (["polish"] if cfg.polish_runs > 0 else [])
    bar = tqdm(total=len(stages), desc="shufflesoftsort", disable=not progress, leave=False)
    for i, radius in enumerate(stages):
        # with a time budget, every stage gets an equal share of what is left, so that the
        # fine radii and the polish (which matter most) are always reached
        r_end = None if t_end is None else time.perf_counter() + (t_end - time.perf_counter()) / (len(stages) - i)
        if radius == "polish":
            _polish(xs, xg, order, shape, cfg, gen, r_end)
        else:
            window = max(int(math.ceil(cfg.window_factor * radius)), int(math.ceil(math.sqrt(k))) + 1)
            removed_last = float("inf")
            for run in range(cfg.assign_runs or cfg.max_runs):
                if run == 0 or not cfg.assign_runs:
                    target = neighbourhood_mean(xg, shape, radius, cfg.blur_passes, cfg.include_self)
                if cfg.feature_groups and run % cfg.feature_groups == cfg.feature_groups - 1:
                    groups = draw_feature_groups(xg, target, k, gen)
                else:
                    groups = draw_groups(shape, n, window, k, gen, dev)
                if groups.numel() == 0:
                    break
                before, removed = _learn_and_apply(xs, xg, order, target, groups, cfg)
                # a plateau: with feature groups, over the last two runs (the two kinds of groups)
                recent = removed + (removed_last if cfg.feature_groups else 0.0)
                if run + 1 >= cfg.min_runs and recent < cfg.improvement_break * before:
                    break
                removed_last = removed
                if r_end is not None and time.perf_counter() > r_end:
                    break
        bar.update()
        bar.set_postfix(radius=radius)
    bar.close()
    if cfg.restarts > 0:
        order = _restart(xs, order, shape, cfg, gen, t_end)
    return order


def _restart(xs: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], cfg: ShuffleSoftSortConfig,
             gen: torch.Generator, t_end: float | None = None) -> torch.Tensor:
    """Warm restarts: run the schedule again from ``cfg.restart_radius`` on the best order so far
    (new random groups each time) and keep the result if `local_dpq_gain` rates it higher;
    ``cfg.restarts`` times, or until ``t_end`` (a restart gets what is left of the time). Every
    order tried is a permutation, so whichever is kept is too."""
    again = replace(cfg, radius_start=min(cfg.restart_radius, max(shape) / 2), restarts=0, max_seconds=None)
    mean_d = sampled_mean_distance(xs, gen)
    best = local_dpq_gain(xs, order, shape, mean_d=mean_d)
    for _ in range(cfg.restarts):
        t0 = time.perf_counter()
        if t_end is not None and t0 > t_end:
            break
        if t_end is not None:
            again.max_seconds = t_end - t0
        tried = refine(xs, order, shape, again, gen)
        gain = local_dpq_gain(xs, tried, shape, mean_d=mean_d)
        if gain > best:
            best, order = gain, tried
    return order


def _polish(xs: torch.Tensor, xg: torch.Tensor, order: torch.Tensor, shape: tuple[int, int],
            cfg: ShuffleSoftSortConfig, gen: torch.Generator, t_end: float | None = None) -> float:
    """The last stage: group SoftSorts on the exact 4-neighbour loss (see the module docstring);
    updates ``order`` (N,) and ``xg`` (N, C) in place. Returns the loss it ends at (the sum of
    squared 4-neighbour distances, as tracked from the cost each run removed)."""
    n = xs.shape[0]
    k = min(cfg.polish_group, (n + 1) // 2)
    # the loss: sum of squared distances over 4-neighbour pairs of filled cells
    energy = float(neighbour_sq_dists(*as_grid(xg, torch.arange(n, device=xs.device), shape))[0])
    if k < 2:
        return energy
    window = max(cfg.polish_window, int(math.ceil(math.sqrt(2 * k))) + 1)
    removed_last = float("inf")
    for run in range(cfg.polish_runs):
        # element j at cell i costs sum over i's neighbours of |x_j - x_nb|^2
        # = deg_i |x_j - mean_nb|^2 + (a constant of the cell)
        sums, degree = neighbour_sums(xg, shape)
        target = sums / degree.clamp(min=1).unsqueeze(1)
        groups = draw_groups(shape, n, window, k, gen, xs.device, parity=run % 2)
        if groups.numel() == 0:
            break
        _, removed = _learn_and_apply(xs, xg, order, target, groups, cfg, cell_weight=degree)
        energy -= removed
        if run % 2 == 1 and removed + removed_last < cfg.polish_break * energy:
            break
        removed_last = removed
        if t_end is not None and time.perf_counter() > t_end:
            break
    return energy


@torch.no_grad()
def rank_polish(xs: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], cfg: ShuffleSoftSortConfig,
                gen: torch.Generator, t_end: float | None = None, progress: bool = False) -> torch.Tensor:
    """An optional last stage: group SoftSorts on the ranked neighbour loss (`losses.ranked_energy`,
    weights from `losses.dpq_rank_weights`), the loss DPQ_p is most sensitive to. Returns the new
    order (N,) for the normalised features ``xs`` (N, C); every run keeps a permutation and never
    raises the loss (its weights are fixed when the stage starts).

    A cell's loss depends on its ``cfg.rank_rings`` nearest rings of neighbours (reach r cells), so
    a run's groups come from ``rank_window``-wide windows 2r cells apart: no cell's loss sees two
    groups, and the loss a group's move removes is exactly the change over its cells and their
    neighbours, which decides whether the group keeps its move. The SoftSort cost of element j in
    cell i is the ranked loss of j there, plus how the neighbours' losses change to first order (the
    weight of the slot pointing back at i times the new distance); the exact check above corrects
    what that approximation gets wrong.
    """
    n = xs.shape[0]
    dev = xs.device
    offsets, ring_list = ring_offsets(cfg.rank_rings)
    reach = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    table = neighbour_table(shape, n, offsets, dev)  # (N, M)
    ring = torch.tensor(ring_list, device=dev)
    mirror = torch.tensor([offsets.index((-dy, -dx)) for dy, dx in offsets], device=dev)  # slot pointing back
    xd = xs.double()
    xg = xd[order]
    order = order.clone()
    d = neighbour_distances(xg, table)  # (N, M), inf: no neighbour
    weights = dpq_rank_weights(d, ring, sampled_mean_distance(xd, gen))
    ranked, rank_of = rank_neighbours(d, ring)
    energy = (ranked * weights).sum(1)  # (N,) loss of every cell
    slot_w = weights[rank_of] * torch.isfinite(d)  # (N, M) the weight each neighbour slot has now
    k = min(cfg.rank_group, cfg.rank_window ** 2)
    ident = torch.arange(k, device=dev)
    for _ in tqdm(range(cfg.rank_polish_runs), desc="rank polish", disable=not progress, leave=False):
        if t_end is not None and time.perf_counter() > t_end:
            break
        groups = draw_groups(shape, n, cfg.rank_window, k, gen, dev, gap=2 * reach)  # (G, K)
        if groups.numel() == 0:
            break
        nb = table[groups]  # (G, K, M) neighbours of each group cell
        there = nb >= 0
        nbc = nb.clamp(min=0)
        # distance from element j of the group to the neighbours of cell i: (G, K_i, K_j, M)
        dj = (xg[nbc].unsqueeze(2) - xg[groups].unsqueeze(1).unsqueeze(3)).norm(dim=-1)
        dj = torch.where(there.unsqueeze(2), dj, torch.full_like(dj, float("inf")))
        back = torch.where(there, slot_w[nbc, mirror.expand_as(nbc)], torch.zeros_like(dj[:, :, 0]))
        theirs = (back.unsqueeze(2) * torch.where(there.unsqueeze(2), dj, torch.zeros_like(dj))).sum(-1)
        cost = ranked_energy(dj, ring, weights) + theirs  # (G, K_i, K_j)
        new = learn_group_orders((cost - cost.min(-1, keepdim=True).values).to(xs.dtype), cfg)
        moving = (new != ident).any(1)
        if not moving.any():
            continue
        groups, new = groups[moving], new[moving]
        g = groups.shape[0]
        cells, src = groups.reshape(-1), groups.gather(1, new).reshape(-1)
        # the cells whose loss a group's move changes: its cells and their neighbours (disjoint per group)
        region = torch.cat([groups, table[groups].reshape(g, -1)], 1)
        owner = torch.full((n,), -1, dtype=torch.long, device=dev)
        owner[region[region >= 0]] = torch.arange(g, device=dev).unsqueeze(1).expand_as(region)[region >= 0]
        touched = torch.nonzero(owner >= 0).squeeze(1)
        prev_x, prev_o = xg[cells], order[cells]
        xg[cells], order[cells] = xg[src], order[src]
        d_new = neighbour_distances(xg, table, touched)
        ranked_new, rank_new = rank_neighbours(d_new, ring)
        e_new = (ranked_new * weights).sum(1)
        delta = torch.zeros(g, dtype=e_new.dtype, device=dev).index_add_(0, owner[touched], e_new - energy[touched])
        good = delta < -1e-12
        undo = ~good.repeat_interleave(k)
        xg[cells[undo]], order[cells[undo]] = prev_x[undo], prev_o[undo]
        keep = good[owner[touched]]
        kept = touched[keep]
        d[kept], energy[kept] = d_new[keep], e_new[keep]
        slot_w[kept] = weights[rank_new[keep]] * torch.isfinite(d_new[keep])
    return order
