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

Last, a *polish* stage (`sog.sort.polish`) learns the same group SoftSorts on the exact grid
neighbourhood loss.

Options for quality over speed (off by default; the ``shufflesoftsort-dpq`` row of
scripts/bench_sort.py uses them): ``assign_runs`` blurs the target once per radius step and runs
that many runs against it, approximating one linear assignment per step as LAS does (the steps
are not merged when radii round alike); ``feature_groups`` draws every so many runs' groups in
feature space (`draw_feature_groups`: a random k-d tree of element plus target), so that
far-apart cells meet in a group; ``restarts``
redoes the schedule from ``restart_radius`` on the best order so far and keeps a result only if
`sog.sort.losses.local_dpq_gain` (a local, O(N) form of DPQ) rates it higher; ``rank_polish_runs``
adds a last stage (`sog.sort.polish.rank_polish`) on the *ranked* neighbour loss
(`sog.sort.losses.ranked_energy`), which rewards a cell for its nearest neighbour most, as DPQ
does, where the squared losses above reward smoothness. On 1024 random colours it adds about 0.003
to DPQ16.

How a run draws its groups and how a group learns its SoftSort: `sog.sort.groups`; the targets and
neighbour losses: `sog.sort.neighbourhood`.

Start (`sog.sort.starts`): by ``objective`` (`ShuffleSoftSortConfig.resolved`): a recursive PCA
bisection of the features into the grid ("smooth"), or the 3D Hilbert order of the positions folded
row-major ("codec", what `sog compress` uses: the native file's bytes follow the runs of its high
position byte); or a given order, ``init``, as a warm start during training.

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

from .budget import Budget
from .config import ShuffleSoftSortConfig
from .groups import draw_feature_groups, draw_groups, learn_and_apply
from .losses import local_dpq_gain, sampled_mean_distance
from .neighbourhood import neighbourhood_mean
from .polish import polish, rank_polish
from .starts import STARTS


def sort_shuffle_softsort(xs: torch.Tensor, shape: tuple[int, int], cfg: ShuffleSoftSortConfig, *, seed: int,
                          device: torch.device, progress: bool = False, init: torch.Tensor | None = None
                          ) -> torch.Tensor:
    """Arrange ``xs`` (N, C) on the (H, W) grid; returns the order (N,) long (a permutation of 0..N-1).

    ``xs`` is standardised (`sog.sort.features.standardise`), on the CPU in float64: with the group costs snapped
    (`sog.stable.snap_tensor`), the learned orders and accepted moves are then the same on any CPU, where float32
    sums and logs rounded by the SIMD path moved them.

    ``cfg`` is resolved and checked (`ShuffleSoftSortConfig.from_options`). ``init`` (N,) is an optional
    starting order (a warm start, a permutation); otherwise ``cfg.start`` decides.
    """
    n = xs.shape[0]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if init is not None:
        order = init.to(device).long()
        if cfg.radius_start is None:
            cfg = replace(cfg, radius_start=min(cfg.warm_radius, max(shape) / 2))
    elif n > 1:
        order = STARTS[cfg.start](xs, shape)
    else:
        order = torch.arange(n, device=device)
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
            polish(xs, xg, order, shape, cfg, gen, share)
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
                before, removed = learn_and_apply(xs, xg, order, target, groups, cfg)
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
