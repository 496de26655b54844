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

Start: by ``objective`` (`ShuffleSoftSortConfig.resolved`): a recursive PCA bisection of the features
into the grid ("smooth"), or the 3D Hilbert order of the positions folded row-major ("codec", what
`sog compress` uses: the native file's bytes follow the runs of its high position byte); or a given
order, ``init``, as a warm start during training.

Budget: counted in work, ``budget`` runs shared equally by the stages (`sog.sort.budget`).
Schedule and options: `sog.sort.config`.

Shapes: ``x`` (N, C) features; the grid is (H, W) with ``H*W >= N``; an *order* (N,) holds the
input index for cells 0..N-1 in row-major order (the empty cells are the last ``H*W - N``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from tqdm import tqdm

from ..device import resolve_device
from ..errors import SogError
from ..stable import snap_tensor
from .budget import Budget
from .config import ShuffleSoftSortConfig
from .curves import curve_order, point_keys, quantise
from .groups import draw_feature_groups, draw_groups, group_costs, learn_group_orders, order_slots, ranks_within
from .losses import local_dpq_gain, sampled_mean_distance, total_variance
from .rank_polish import rank_polish


def sort_shuffle_softsort(x: torch.Tensor, shape: tuple[int, int], seed: int = 0, device="auto",
                          progress: bool = False, init: torch.Tensor | None = None,
                          **options) -> torch.Tensor:
    """Arrange ``x`` (N, C) on the (H, W) grid; returns the order (N,) long (a permutation of 0..N-1).

    ``init`` (N,) is an optional starting order (warm start); otherwise ``config.start`` decides.
    ``options`` are fields of `ShuffleSoftSortConfig`.
    """
    cfg = ShuffleSoftSortConfig.from_options(options)
    if cfg.start not in STARTS:
        raise SogError(f"unknown shufflesoftsort start {cfg.start!r} (choose from {', '.join(STARTS)})")
    dev = resolve_device(device)
    if init is not None and (init.shape != (x.shape[0],)
                             or not torch.equal(torch.sort(init.cpu().long()).values, torch.arange(x.shape[0]))):
        raise SogError(f"init must be a permutation of 0..{x.shape[0] - 1}")
    n = x.shape[0]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    # on the CPU float64, and group costs snapped (`sog.stable.snap_tensor`): the learned orders and accepted moves
    # are then the same on any CPU, where float32 sums and logs rounded by the SIMD path moved them
    xs = x.detach().to(dev, torch.float64 if dev.type == "cpu" else torch.float32)
    xs = (xs - xs.mean(0)) / total_variance(xs).sqrt().clamp(min=1e-12)
    if init is not None:
        order = init.to(dev).long()
        if cfg.radius_start is None:
            cfg.radius_start = min(cfg.warm_radius, max(shape) / 2)
    elif n > 1:
        order = STARTS[cfg.start](xs, shape)
    else:
        order = torch.arange(n, device=dev)
    if n < 4:
        return order.cpu()
    budget = Budget(cfg.budget, cfg.max_seconds)
    if cfg.rank_polish_runs > 0:
        # the rank polish keeps its share: its runs (at most half the work budget) or rank_polish_seconds
        order = refine(xs, order, shape, cfg, gen, progress, budget.part(cfg.rank_polish_runs, cfg.rank_polish_seconds))
        order = rank_polish(xs, order, shape, cfg, gen, budget, progress)
    else:
        order = refine(xs, order, shape, cfg, gen, progress, budget)
    return order.cpu()


#: first orders (features ``xs`` (N, C) normalised, grid shape) -> order (N,)
STARTS = {
    "hilbert": lambda xs, shape: torch.argsort(point_keys(xs, "hilbert"), stable=True),  # 1D curve, row-major
    "morton": lambda xs, shape: torch.argsort(point_keys(xs, "morton"), stable=True),
    "hilbert2d": lambda xs, shape: curve_order(xs, shape, "hilbert"),  # both image directions local
    "pca": lambda xs, shape: pca_bisection(xs, shape),
    "identity": lambda xs, shape: torch.arange(xs.shape[0], device=xs.device),
}


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


def neighbour_sums(xg: torch.Tensor, shape: tuple[int, int], vertical: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """For cells 0..N-1 holding ``xg`` (N, C): the sum of their filled 4-neighbours (N, C) and how
    many there are (N,); the neighbours above and below count ``vertical`` times (weights)."""
    n, c = xg.shape
    h, w = shape
    grid = _counted_grid(xg, shape).reshape(h, w, c + 1)
    sums = torch.zeros_like(grid)
    if vertical:
        sums[1:] += vertical * grid[:-1]
        sums[:-1] += vertical * grid[1:]
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
           gen: torch.Generator, progress: bool = False, budget: Budget | None = None) -> torch.Tensor:
    """Improve the order (N,) of normalised features ``xs`` (N, C) on the grid; returns the new order.
    ``cfg`` is resolved (`ShuffleSoftSortConfig.resolved`); ``budget`` (default: none but the
    stages' own caps) is shared equally by the stages, what one leaves goes to the next."""
    n = xs.shape[0]
    dev = xs.device
    budget = budget or Budget()
    order = order.clone()
    xg = xs[order]
    k = min(cfg.group, n)
    stages = (_radii(cfg, shape) if cfg.coarse else []) + (["polish"] if cfg.polish_runs > 0 else [])
    bar = tqdm(total=len(stages), desc="shufflesoftsort", disable=not progress, leave=False)
    for i, radius in enumerate(stages):
        # every stage gets an equal share of what is left, so that the fine radii and the polish
        # (which matter most) are always reached
        share = budget.share(len(stages) - i)
        if radius == "polish":
            _polish(xs, xg, order, shape, cfg, gen, share)
        else:
            window = max(int(math.ceil(cfg.window_factor * radius)), int(math.ceil(math.sqrt(k))) + 1)
            removed_last = float("inf")
            for run in range(cfg.assign_runs or cfg.max_runs):
                if share.spent:
                    break
                if run == 0 or not cfg.assign_runs:
                    target = neighbourhood_mean(xg, shape, radius, cfg.blur_passes, cfg.include_self)
                if cfg.feature_groups and run % cfg.feature_groups == cfg.feature_groups - 1:
                    groups = draw_feature_groups(xg, target, k, gen)
                else:
                    groups = draw_groups(shape, n, window, k, gen, dev)
                if groups.numel() == 0:
                    break
                before, removed = _learn_and_apply(xs, xg, order, target, groups, cfg)
                share.spend()
                # a plateau: with feature groups, over the last two runs (the two kinds of groups)
                recent = removed + (removed_last if cfg.feature_groups else 0.0)
                if run + 1 >= cfg.min_runs and recent < cfg.improvement_break * before:
                    break
                removed_last = removed
        bar.update()
        bar.set_postfix(radius=radius)
    bar.close()
    if cfg.restarts > 0:
        order = _restart(xs, order, shape, cfg, gen, budget)
    return order


def _restart(xs: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], cfg: ShuffleSoftSortConfig,
             gen: torch.Generator, budget: Budget) -> torch.Tensor:
    """Warm restarts: run the schedule again from ``cfg.restart_radius`` on the best order so far
    (new random groups each time) and keep the result if `local_dpq_gain` rates it higher;
    ``cfg.restarts`` times, or until the ``budget`` is spent (a restart gets what is left). Every
    order tried is a permutation, so whichever is kept is too."""
    again = replace(cfg, radius_start=min(cfg.restart_radius, max(shape) / 2), restarts=0, coarse=True)
    mean_d = sampled_mean_distance(xs, gen)
    best = local_dpq_gain(xs, order, shape, mean_d=mean_d)
    for _ in range(cfg.restarts):
        if budget.spent:
            break
        tried = refine(xs, order, shape, again, gen, budget=budget.share(1))
        gain = local_dpq_gain(xs, tried, shape, mean_d=mean_d)
        if gain > best:
            best, order = gain, tried
    return order


def _polish(xs: torch.Tensor, xg: torch.Tensor, order: torch.Tensor, shape: tuple[int, int],
            cfg: ShuffleSoftSortConfig, gen: torch.Generator, budget: Budget | None = None) -> float:
    """The last stage: group SoftSorts on the exact neighbour loss (see the module docstring);
    updates ``order`` (N,) and ``xg`` (N, C) in place. Returns the loss it ends at (the sum of
    squared distances over left-right pairs plus ``cfg.polish_vertical`` times that over up-down
    pairs, as tracked from the cost each run removed). With ``cfg.polish_bits``, the loss is on the
    positions (columns 0-2 of ``xs``) cut to 2^bits cells per axis (`polish_features`)."""
    if cfg.polish_bits:
        xq = polish_features(xs, cfg.polish_bits)
        xgq = xq[order]
        energy = _polish(xq, xgq, order, shape, replace(cfg, polish_bits=0), gen, budget)
        xg.copy_(xs[order])
        return energy
    if cfg.polish_loss == "log":
        return _polish_log(xs, xg, order, shape, cfg, gen, budget)
    budget = budget or Budget()
    n = xs.shape[0]
    k = min(cfg.polish_group, (n + 1) // 2)
    vertical = 1.0 if cfg.polish_vertical is None else cfg.polish_vertical
    energy = neighbour_energy(xg, shape, vertical)
    if k < 2:
        return energy
    window = max(cfg.polish_window, int(math.ceil(math.sqrt(2 * k))) + 1)
    removed_last = float("inf")
    for run in range(cfg.polish_runs):
        if budget.spent:
            break
        # element j at cell i costs sum over i's neighbours nb of weight_nb |x_j - x_nb|^2
        # = (sum of weights) |x_j - weighted mean_nb|^2 + (a constant of the cell)
        sums, degree = neighbour_sums(xg, shape, vertical)
        target = sums / degree.clamp(min=1e-12).unsqueeze(1)
        groups = draw_groups(shape, n, window, k, gen, xs.device, parity=run % 2)
        if groups.numel() == 0:
            break
        _, removed = _learn_and_apply(xs, xg, order, target, groups, cfg, cell_weight=degree)
        budget.spend()
        energy -= removed
        if run % 2 == 1 and removed + removed_last < cfg.polish_break * energy:
            break
        removed_last = removed
    return energy


def polish_features(xs: torch.Tensor, bits: int) -> torch.Tensor:
    """The positions (columns 0-2 of ``xs`` (N, C)) as the index of their cell when each axis is cut into
    2^bits equal steps over its range, like the high byte of a .sog's positions; (N, 3) float.
    Within a cell the loss sees no difference, so the polish keeps the curve's runs of equal bytes."""
    q = quantise(xs[:, :3], 16)
    return torch.div(q, 2 ** (16 - bits), rounding_mode="floor").to(xs.dtype)


def neighbour_energy(xg: torch.Tensor, shape: tuple[int, int], vertical: float = 1.0) -> float:
    """Sum of squared distances over the left-right pairs of filled cells holding ``xg`` (N, C), plus
    ``vertical`` times that over the up-down pairs."""
    n, c = xg.shape
    h, w = shape
    grid = _counted_grid(xg, shape).reshape(h, w, c + 1)
    val, filled = grid[..., :c], grid[..., c]
    horiz = ((val[:, 1:] - val[:, :-1]).pow(2).sum(-1) * filled[:, 1:] * filled[:, :-1]).sum()
    vert = ((val[1:] - val[:-1]).pow(2).sum(-1) * filled[1:] * filled[:-1]).sum()
    return float(horiz + vertical * vert)


def log_cost(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The "log" polish loss of neighbours holding ``a`` and ``b`` (..., C): sum over channels of
    log2(1 + |a - b|); (...). Like the bits an image codec spends on a residual: equal values cost
    nothing, and one large step costs less than several small ones."""
    return torch.log2(1 + (a - b).abs()).sum(-1)


def _neighbour_cells(shape: tuple[int, int], n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
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
    nb, is_vertical = _neighbour_cells(shape, xg.shape[0], xg.device)
    right, down = nb[:, 1], nb[:, 3]
    total = log_cost(xg[right >= 0], xg[right[right >= 0]]).sum()
    if vertical:
        total = total + vertical * log_cost(xg[down >= 0], xg[down[down >= 0]]).sum()
    return float(total)


#: groups per block of `log_group_costs`: its (G, K, K, S, C) temporaries stay small (432 MB each at 6M in one go)
COST_CHUNK = 1 << 14


def log_group_costs(xg: torch.Tensor, groups: torch.Tensor, nb_all: torch.Tensor, slot_w: torch.Tensor,
                    chunk: int = COST_CHUNK) -> torch.Tensor:
    """The "log" polish costs (G, K_i, K_j): element j of group g in cell i against that cell's neighbours
    ``nb_all`` (N, S) (-1: none), slot s weighted ``slot_w[s]``; ``groups`` (G, K) cells, ``xg`` (N, C) the grid.
    Computed ``chunk`` groups at a time (each group's costs are its own)."""
    out = torch.empty(groups.shape[0], groups.shape[1], groups.shape[1], dtype=xg.dtype, device=xg.device)
    for s in range(0, groups.shape[0], chunk):
        part = groups[s:s + chunk]
        nb = nb_all[part]  # (g, K, S) the neighbours of each group cell (none of them in a group)
        there = (nb >= 0).to(xg.dtype) * slot_w
        vals = xg[nb.clamp(min=0)]  # (g, K_i, S, C)
        elems = xg[part]  # (g, K_j, C)
        out[s:s + chunk] = (log_cost(elems.unsqueeze(1).unsqueeze(3), vals.unsqueeze(2)) * there.unsqueeze(2)).sum(-1)
    return snap_tensor(out)


def _polish_log(xs: torch.Tensor, xg: torch.Tensor, order: torch.Tensor, shape: tuple[int, int],
                cfg: ShuffleSoftSortConfig, gen: torch.Generator, budget: Budget | None = None) -> float:
    """The polish on the "log" loss (`log_cost` of neighbours; up-down pairs weighted ``cfg.polish_vertical``):
    group SoftSorts whose cost of element j in cell i is its loss against the neighbours of cell i. A run's
    groups hold cells of one checkerboard colour, so no two cells of a group are neighbours and the
    cost a group removes is exactly what the grid's loss loses. Updates ``order`` and ``xg`` in place;
    returns the loss it ends at."""
    budget = budget or Budget()
    n = xs.shape[0]
    dev = xs.device
    k = min(cfg.polish_group, (n + 1) // 2)
    vertical = cfg.polish_vertical or 0.0
    energy = log_energy(xg, shape, vertical)
    if k < 2:
        return energy
    nb_all, is_vertical = _neighbour_cells(shape, n, dev)
    slot_w = torch.where(is_vertical, vertical, 1.0).to(xs.dtype)
    used = slot_w > 0
    nb_all, slot_w = nb_all[:, used], slot_w[used]
    window = max(cfg.polish_window, int(math.ceil(math.sqrt(2 * k))) + 1)
    removed_last = float("inf")
    for run in range(cfg.polish_runs):
        if budget.spent:
            break
        groups = draw_groups(shape, n, window, k, gen, dev, parity=run % 2)
        if groups.numel() == 0:
            break
        cost = log_group_costs(xg, groups, nb_all, slot_w)  # (G, K_i, K_j)
        new = learn_group_orders(cost, cfg)
        old_cost = cost.diagonal(dim1=1, dim2=2).sum(1)
        new_cost = cost.gather(2, new.unsqueeze(2)).squeeze(2).sum(1)
        accept = new_cost < old_cost - 1e-9
        cells = groups[accept]
        moved = cells.gather(1, new[accept])
        order[cells.reshape(-1)] = order[moved.reshape(-1)].clone()
        xg[cells.reshape(-1)] = xs[order[cells.reshape(-1)]]
        removed = float((old_cost - new_cost)[accept].sum())
        budget.spend()
        energy -= removed
        if run % 2 == 1 and removed + removed_last < cfg.polish_break * energy:
            break
        removed_last = removed
    return energy
