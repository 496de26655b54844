"""The rank polish: an optional last stage of ShuffleSoftSort on the ranked neighbour loss.

DPQ_p (`sog.sort.losses.dpq`) depends mostly on each element's nearest grid neighbours, ranked as
DPQ ranks them, and it rewards one very close neighbour; the squared losses of the main schedule
reward smoothness instead. This stage learns group SoftSorts on `sog.sort.losses.ranked_energy`
(weights from `sog.sort.losses.dpq_rank_weights`). ``ShuffleSoftSortConfig.rank_polish_runs``
turns it on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from .groups import draw_groups, learn_group_orders
from .losses import (dpq_rank_weights, neighbour_distances, neighbour_table, rank_neighbours, ranked_energy,
                     ring_offsets, sampled_mean_distance)

if TYPE_CHECKING:
    from .config import ShuffleSoftSortConfig


@torch.no_grad()
def rank_polish(xs: torch.Tensor, order: torch.Tensor, shape: tuple[int, int], cfg: ShuffleSoftSortConfig,
                gen: torch.Generator, budget=None, progress: bool = False) -> torch.Tensor:
    """An optional last stage: group SoftSorts on the ranked neighbour loss (`losses.ranked_energy`,
    weights from `losses.dpq_rank_weights`), the loss DPQ_p is most sensitive to. Returns the new
    order (N,) for the normalised features ``xs`` (N, C); every run keeps a permutation and never
    raises the loss (its weights are fixed when the stage starts). ``budget`` (a
    `sog.sort.budget.Budget`, optional) is spent one run at a time.

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
