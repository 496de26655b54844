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
adds a last stage (`sog.sort.rank_polish`) on the *ranked* neighbour loss
(`sog.sort.losses.ranked_energy`), which rewards a cell for its nearest neighbour most, as DPQ
does, where the squared losses above reward smoothness. On 1024 random colours it adds about 0.003
to DPQ16.

How a run draws its groups and how a group learns its SoftSort: `sog.sort.groups`.

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
from .groups import draw_feature_groups, draw_groups, group_costs, learn_group_orders, order_slots, ranks_within
from .losses import as_grid, local_dpq_gain, neighbour_sq_dists, sampled_mean_distance, total_variance
from .rank_polish import rank_polish


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
    cost = group_costs(xg, target, groups)
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
