"""The groups of ShuffleSoftSort: how a run shuffles grid cells into groups, and how each group
learns its SoftSort.

A *group* is K grid cells; a run draws many disjoint groups (`draw_groups`: cells of one 2D
window; `draw_feature_groups`: cells whose elements are alike in feature space). Each group holds
K learnable weights, one per element; `learn_group_orders` trains them with a few Adam steps on
the expected cost of the SoftSort permutation and hardens them by ``argsort`` (a bijection within
every group by construction); `learn_and_apply` is one run: learn, keep the groups whose cost went down.

Shapes: ``xg`` (N, C) the items in grid order (cell i holds ``xg[i]``); ``groups`` (G, K) cell
indices; ``cost`` (G, K, K) with entry [g, i, j] the cost of element j of group g in its cell i.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from ..stable import snap_tensor
from .softsort import softsort_cost_grad, sum_last


class Schedule(Protocol):
    """What the group SoftSorts read of a config (a `sog.sort.config.ShuffleSoftSortConfig` is one)."""

    steps: int  #: gradient steps per run
    lr: float  #: Adam learning rate of the weights
    tau_start: float
    tau_end: float
    p: int  #: power of the SoftSort distance
    axis_start: bool  #: `learn_and_apply` starts the weights at `order_slots`' 1D matching


def ranks_within(sizes: torch.Tensor) -> torch.Tensor:
    """For consecutive segments of the given ``sizes`` (B,), the rank of each position in its segment; (sum,)."""
    starts = torch.cumsum(sizes, 0) - sizes
    return torch.arange(int(sizes.sum()), device=sizes.device) - torch.repeat_interleave(starts, sizes)


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
    rank = ranks_within(sizes)
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
    # (N, levels) a direction per level (float64 randn: float32's is drawn differently by CPU)
    keys = (xg + target) @ torch.randn(c, levels, generator=gen, dtype=torch.float64).to(dev, xg.dtype)
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


def group_costs(xg: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Squared distances (G, K, K): entry [g, i, j] is element j of group g placed at its cell i."""
    a = target[groups]  # (G, K, C) what each cell wants
    b = xg[groups]  # (G, K, C) what the group holds
    cost = sum_last(a * a, keepdim=True) + sum_last(b * b).unsqueeze(-2) - 2 * a @ b.transpose(1, 2)
    return snap_tensor(cost.clamp(min=0))  # the same on any CPU (`sog.stable`)


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


#: groups per block of `learn_group_orders`: its (G, K, K) temporaries were 72 MB each at 6M in one go (a fresh
#: mapping and page faults each); 2^17 groups of 6 keep them at 19 MB, in the heap
LEARN_CHUNK = 1 << 17


def learn_group_orders(cost: torch.Tensor, cfg: Schedule, start: torch.Tensor | None = None,
                       chunk: int = LEARN_CHUNK) -> torch.Tensor:
    """Learn one weight per element of each group so that SoftSort lowers the expected cost.

    ``cost`` (G, K, K) as in `group_costs`; the weights start at ``start`` (G, K) (default
    0..K-1, the current order). Returns the hard orders (G, K) long: slot i takes element
    ``order[g, i]`` (argsort of the weights, a bijection within every group). The groups learn
    independently, ``chunk`` of them at a time (the gradient is of the mean over all G groups).
    """
    g = cost.shape[0]
    if g <= chunk:
        return _learn_group_orders(cost, cfg, start, g)
    return torch.cat([_learn_group_orders(cost[s:s + chunk], cfg, None if start is None else start[s:s + chunk], g)
                      for s in range(0, g, chunk)])


def _learn_group_orders(cost: torch.Tensor, cfg: Schedule, start: torch.Tensor | None,
                        g: int) -> torch.Tensor:
    """`learn_group_orders` of the groups ``cost`` (G', K, K), ``g`` groups in all."""
    k = cost.shape[1]
    cost = cost / snap_tensor(cost.mean((1, 2), keepdim=True).clamp(min=1e-12))
    if start is None:
        start = torch.arange(k, dtype=cost.dtype, device=cost.device).expand(cost.shape[0], k)
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
        better = hard_cost < best_cost * (1 - 1e-9)  # a tie (a sum's last bit by CPU) keeps the first
        best = torch.where(better.unsqueeze(1), hard, best)
        best_cost = torch.where(better, hard_cost, best_cost)
    return best


def learn_and_apply(xs: torch.Tensor, xg: torch.Tensor, order: torch.Tensor, target: torch.Tensor,
                    groups: torch.Tensor, cfg: Schedule, cell_weight: torch.Tensor | None = None
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
    apply_moves(xs, xg, order, groups, new, accept)
    return float(old_cost.sum()), float((old_cost - new_cost)[accept].sum())


def apply_moves(xs: torch.Tensor, xg: torch.Tensor, order: torch.Tensor, groups: torch.Tensor, new: torch.Tensor,
                accept: torch.Tensor) -> None:
    """Give the groups with ``accept`` (G,) their learned orders ``new`` (G, K) (slot i of group g takes its
    element ``new[g, i]``): ``order`` (N,) and ``xg = xs[order]`` (N, C) updated in place."""
    cells = groups[accept]
    moved = cells.gather(1, new[accept])
    order[cells.reshape(-1)] = order[moved.reshape(-1)].clone()
    xg[cells.reshape(-1)] = xs[order[cells.reshape(-1)]]
