"""The polish stages of ShuffleSoftSort: group SoftSorts on an exact neighbour loss of the grid.

`polish` (the last stage of every schedule) learns the same group SoftSorts as the coarse stages, on the
neighbour loss itself. With the squared loss, a cell's target is the mean of its 4-neighbours and its cost is
weighted by their number; with the "log" loss (`sog.sort.neighbourhood.log_cost`, objective "codec"), the cost of
element j in cell i is its loss against the neighbours of cell i. A run's groups hold cells of one checkerboard
colour only (never two neighbours), so the cost a group removes is exactly what the grid's loss loses.

`rank_polish` (opt-in: ``ShuffleSoftSortConfig.rank_polish_runs``) is a last stage on the *ranked* neighbour loss
(`sog.sort.losses.ranked_energy`, weights from `sog.sort.losses.dpq_rank_weights`). DPQ_p
(`sog.sort.losses.dpq`) depends mostly on each element's nearest grid neighbours, ranked as DPQ ranks them, and it
rewards one very close neighbour; the squared losses of the main schedule reward smoothness instead.

Every run keeps a permutation and accepts only group moves that lower its loss. Shapes: ``xs`` (N, C) the
standardised features, ``order`` (N,) the input index per cell, ``xg`` (N, C) ``xs[order]``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from tqdm import tqdm

from ..stable import snap_tensor
from .budget import Budget
from .config import ShuffleSoftSortConfig
from .curves import quantise
from .groups import apply_moves, draw_groups, learn_and_apply, learn_group_orders
from .losses import (dpq_rank_weights, neighbour_distances, neighbour_table, rank_neighbours, ranked_energy,
                     ring_offsets, sampled_mean_distance)
from .neighbourhood import log_cost, log_energy, neighbour_cells, neighbour_energy, neighbour_sums


def polish(xs: torch.Tensor, xg: torch.Tensor, order: torch.Tensor, shape: tuple[int, int],
           cfg: ShuffleSoftSortConfig, gen: torch.Generator, budget: Budget | None = None) -> float:
    """The last stage of the schedule: group SoftSorts on the exact neighbour loss (see the module docstring);
    updates ``order`` (N,) and ``xg`` (N, C) in place. Returns the loss it ends at (the sum of
    squared distances over left-right pairs plus ``cfg.polish_vertical`` times that over up-down
    pairs, as tracked from the cost each run removed). With ``cfg.polish_bits``, the loss is on the
    positions (columns 0-2 of ``xs``) cut to 2^bits cells per axis (`polish_features`)."""
    if cfg.polish_bits:
        xq = polish_features(xs, cfg.polish_bits)
        xgq = xq[order]
        energy = polish(xq, xgq, order, shape, replace(cfg, polish_bits=0), gen, budget)
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

    def step(groups: torch.Tensor) -> float:
        # element j at cell i costs sum over i's neighbours nb of weight_nb |x_j - x_nb|^2
        # = (sum of weights) |x_j - weighted mean_nb|^2 + (a constant of the cell)
        sums, degree = neighbour_sums(xg, shape, vertical)
        target = sums / degree.clamp(min=1e-12).unsqueeze(1)
        return learn_and_apply(xs, xg, order, target, groups, cfg, cell_weight=degree)[1]

    return _runs(step, shape, n, window, k, gen, xs.device, cfg, budget, energy)


def _runs(step, shape: tuple[int, int], n: int, window: int, k: int, gen: torch.Generator, device,
          cfg: ShuffleSoftSortConfig, budget: Budget, energy: float) -> float:
    """The run loop both polish losses share: each run draws groups of ``k`` cells of one checkerboard colour
    (alternating) and ``step(groups)`` learns and applies their moves, returning the loss it removed. Stops when
    the budget is spent, no group can be drawn, or two runs together remove less than ``cfg.polish_break`` of
    what is left; returns the loss it ends at."""
    removed_last = float("inf")
    for run in range(cfg.polish_runs):
        if budget.spent:
            break
        groups = draw_groups(shape, n, window, k, gen, device, parity=run % 2)
        if groups.numel() == 0:
            break
        removed = step(groups)
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
    nb_all, is_vertical = neighbour_cells(shape, n, dev)
    slot_w = torch.where(is_vertical, vertical, 1.0).to(xs.dtype)
    used = slot_w > 0
    nb_all, slot_w = nb_all[:, used], slot_w[used]
    window = max(cfg.polish_window, int(math.ceil(math.sqrt(2 * k))) + 1)

    def step(groups: torch.Tensor) -> float:
        cost = log_group_costs(xg, groups, nb_all, slot_w)  # (G, K_i, K_j)
        new = learn_group_orders(cost, cfg)
        old_cost = cost.diagonal(dim1=1, dim2=2).sum(1)
        new_cost = cost.gather(2, new.unsqueeze(2)).squeeze(2).sum(1)
        accept = new_cost < old_cost - 1e-9
        apply_moves(xs, xg, order, groups, new, accept)
        return float((old_cost - new_cost)[accept].sum())

    return _runs(step, shape, n, window, k, gen, dev, cfg, budget, energy)


@torch.no_grad()
def rank_polish(xs: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], cfg: ShuffleSoftSortConfig,
                gen: torch.Generator, budget: Budget | None = None, progress: bool = False) -> torch.Tensor:
    """An optional last stage: group SoftSorts on the ranked neighbour loss (`losses.ranked_energy`,
    weights from `losses.dpq_rank_weights`), the loss DPQ_p is most sensitive to. Returns the new
    order (N,) for the normalised features ``xs`` (N, C); every run keeps a permutation and never
    raises the loss (its weights are fixed when the stage starts). ``budget`` (optional) is spent
    one run at a time.

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
    energy, slot_w = _cell_losses(d, ring, weights)  # (N,) loss of every cell, (N, M) weight of each slot
    k = min(cfg.rank_group, cfg.rank_window ** 2)
    ident = torch.arange(k, device=dev)
    for _ in tqdm(range(cfg.rank_polish_runs), desc="rank polish", disable=not progress, leave=False):
        if budget is not None and budget.spent:
            break
        if budget is not None:
            budget.spend()
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
        e_new, w_new = _cell_losses(d_new, ring, weights)
        delta = torch.zeros(g, dtype=e_new.dtype, device=dev).index_add_(0, owner[touched], e_new - energy[touched])
        good = delta < -1e-12
        undo = ~good.repeat_interleave(k)
        xg[cells[undo]], order[cells[undo]] = prev_x[undo], prev_o[undo]
        keep = good[owner[touched]]
        kept = touched[keep]
        d[kept], energy[kept], slot_w[kept] = d_new[keep], e_new[keep], w_new[keep]
    return order


def _cell_losses(d: torch.Tensor, ring: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For cells with neighbour distances ``d`` (T, M) (``inf``: missing): their ranked loss (T,) and the
    weight each neighbour slot has in it (T, M) (0 where missing)."""
    ranked, rank_of = rank_neighbours(d, ring)
    return (ranked * weights).sum(1), weights[rank_of] * torch.isfinite(d)
