"""The SoftSort operator (Prillo & Eisenschlos 2020) and the plain SoftSort grid sorter (N weights, dense N x N).

``P[i, j] = softmax_j(-|sort(w)_i - w_j|^p / tau)``: row i is grid slot i (the i-th smallest
weight), column j is element j. As tau -> 0, P tends to the permutation matrix of ``argsort(w)``,
which is always a bijection; that is how every sorter here hardens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..errors import SogError
from .losses import column_sum_loss, neighbour_loss, std_loss, total_variance


def softsort(w: torch.Tensor, tau: float = 1.0, p: int = 1, hard: bool = False) -> torch.Tensor:
    """Soft permutation matrices for weights ``w`` (..., K); returns (..., K, K), rows sum to 1.

    ``p`` is the power of the distance (1 or 2). ``hard=True`` returns the exact permutation
    matrix of ``argsort(w)`` in the forward pass with the soft gradient (straight-through).
    """
    order, _, soft = _softsort_rows(w, tau, p)
    if not hard:
        return soft
    one_hot = torch.zeros_like(soft).scatter_(-1, order.unsqueeze(-1), 1.0)
    return (one_hot - soft).detach() + soft


def _softsort_rows(w: torch.Tensor, tau: float, p: int, order: torch.Tensor | None = None):
    """``argsort(w)`` (..., K), the differences ``d[i, j] = sort(w)_i - w_j`` (..., K, K) and the soft
    permutation ``softmax_j(-|d|^p / tau)`` (..., K, K). ``order`` is ``argsort(w)`` when the caller
    already has it (saves a sort)."""
    if p not in (1, 2):
        raise ValueError("softsort: p must be 1 or 2")
    if order is None:
        order = w.argsort(-1)
    d = w.gather(-1, order).unsqueeze(-1) - w.unsqueeze(-2)
    # Row i holds sort(w)_i, which equals one of the w_j, so every row's largest logit is exactly 0
    # and the softmax needs no max-subtraction: exp / sum is exact and ~10x faster than
    # torch.softmax on the short rows of grouped sorting.
    # Logits below -80 are clamped there: exp of them is < 2e-35 either way, but the CPU's exp
    # takes a slow path for arguments near and past float32 underflow (60x slower at tau = 0.1)
    # and its denormal results slow down every product that follows.
    e = torch.exp((-(d * d if p == 2 else d.abs()) / tau).clamp_(min=-80.0))
    return order, d, e / sum_last(e, keepdim=True)


def sum_last(t: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """``t.sum(-1)`` as a product with a ones vector: on the CPU, torch reduces a short last axis
    (K of a few elements, millions of rows) several times slower than a matrix product does."""
    out = t @ torch.ones(t.shape[-1], 1, dtype=t.dtype, device=t.device)
    return out if keepdim else out.squeeze(-1)


def softsort_cost_grad(w: torch.Tensor, cost: torch.Tensor, tau: float, p: int = 2,
                       order: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient of ``(softsort(w, tau, p) * cost).sum()`` with respect to ``w`` (..., K), in closed form.

    ``cost`` (..., K, K) as the soft permutation (row = slot, column = element). The same numbers
    autograd gives, without building a graph: for the many tiny groups of ShuffleSoftSort the
    autograd bookkeeping costs more than the arithmetic. ``order`` (..., K) is ``argsort(w)`` if the
    caller has it already. Returns (..., K).
    """
    order, d, soft = _softsort_rows(w, tau, p, order)
    # d loss / d logit_ij = P_ij (C_ij - sum_j' P_ij' C_ij'); d logit / d d_ij = -2 d_ij / tau (p=2)
    g_logit = soft * (cost - sum_last(soft * cost, keepdim=True))
    g_d = g_logit * (-2 * d if p == 2 else -torch.sign(d)) / tau
    grad = -g_d.sum(-2)  # through w_j
    return grad.scatter_add(-1, order, sum_last(g_d))  # through sort(w)_i = w[order_i]


def harden(w: torch.Tensor) -> torch.Tensor:
    """The hard permutation of weights ``w`` (..., K): slot i takes element ``argsort(w)[i]``; (..., K) long.

    A bijection for any ``w`` (ties are broken by index), unlike a row-wise argmax of P.
    """
    return torch.argsort(w, dim=-1, stable=True)


@dataclass
class SoftSortConfig:
    """Plain SoftSort on the whole grid (dense N x N; small N only)."""

    steps: int = 1500
    lr: float = 0.5
    tau_start: float = 64.0  #: in units of the initial weight spacing (1)
    tau_end: float = 0.5
    p: int = 1
    std_weight: float = 1.0
    colsum_weight: float = 1.0
    max_n: int = 8192


def sort_softsort(x: torch.Tensor, shape: tuple[int, int], cfg: SoftSortConfig, *, seed: int,
                  device: torch.device, progress: bool = False, **_) -> torch.Tensor:
    """Learn N weights so that ``softsort(w) @ x`` laid on the grid minimises the neighbour loss; (N,) long.

    The baseline of the ShuffleSoftSort paper: one weight per element, a dense N x N soft
    permutation, tau annealed geometrically, hardened by ``argsort(w)``.
    """
    n = x.shape[0]
    if n > cfg.max_n:
        raise SogError(f"softsort is dense (N x N); {n} items is more than max_n={cfg.max_n}")
    h, wd = shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    xs = x  # standardised, float32 (`sog.sort.features.standardise`)
    var = total_variance(xs)
    mask = (torch.arange(h * wd, device=device) < n).reshape(h, wd)
    w = torch.randperm(n, generator=gen).float().to(device).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=cfg.lr)
    for step in tqdm(range(cfg.steps), desc="softsort", disable=not progress, leave=False):
        tau = cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** (step / max(cfg.steps - 1, 1))
        p = softsort(w, tau, cfg.p)
        soft = p @ xs
        grid = torch.zeros(h * wd, xs.shape[1], device=device)
        grid = grid.index_copy(0, torch.arange(n, device=device), soft).reshape(h, wd, -1)
        loss = neighbour_loss(grid, mask, var) + cfg.std_weight * std_loss(soft, xs) \
            + cfg.colsum_weight * column_sum_loss(p)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return harden(w.detach()).cpu()
