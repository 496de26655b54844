"""Gumbel-Sinkhorn (Mena et al. 2018): the N^2-parameter baseline sorter, for small N only.

A learnable matrix of logits ``log_alpha`` (N, N) is made doubly stochastic by alternating
row/column normalisation in log space, with Gumbel noise; the hard permutation is the optimal
assignment of the logits (Hungarian algorithm, scipy), which is a bijection by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..errors import SogError
from .losses import column_sum_loss, neighbour_loss, std_loss, total_variance


def log_sinkhorn(log_alpha: torch.Tensor, n_iter: int = 20) -> torch.Tensor:
    """Alternate row and column log-normalisation of ``log_alpha`` (..., N, N); returns log of a ~doubly stochastic matrix."""
    for _ in range(n_iter):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, -1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, -2, keepdim=True)
    return log_alpha


def gumbel_sinkhorn(log_alpha: torch.Tensor, tau: float = 1.0, n_iter: int = 20, noise: float = 1.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Soft permutation (..., N, N) from logits: ``sinkhorn((log_alpha + noise * Gumbel) / tau)``."""
    if noise > 0:
        u = torch.rand(log_alpha.shape, generator=generator).to(log_alpha.device)
        log_alpha = log_alpha + noise * -torch.log(-torch.log(u.clamp(1e-20, 1.0)) + 1e-20)
    return log_sinkhorn(log_alpha / tau, n_iter).exp()


def hungarian(scores: torch.Tensor) -> torch.Tensor:
    """The permutation maximising ``sum_i scores[i, perm[i]]`` for ``scores`` (N, N); (N,) long, a bijection."""
    from scipy.optimize import linear_sum_assignment  # scipy only when this baseline runs (the registry imports it)

    rows, cols = linear_sum_assignment(scores.detach().cpu().double().numpy(), maximize=True)
    out = np.empty_like(cols)
    out[rows] = cols
    return torch.from_numpy(out).long()


@dataclass
class SinkhornConfig:
    steps: int = 1000
    lr: float = 0.1
    tau_start: float = 1.0
    tau_end: float = 0.03
    n_iter: int = 10
    noise: float = 0.1  #: Gumbel noise factor
    std_weight: float = 1.0
    colsum_weight: float = 0.0  #: Sinkhorn columns already sum to ~1
    max_n: int = 4096


def sort_sinkhorn(x: torch.Tensor, shape: tuple[int, int], cfg: SinkhornConfig, *, seed: int,
                  device: torch.device, progress: bool = False, **_) -> torch.Tensor:
    """Learn N x N logits whose Gumbel-Sinkhorn matrix lays ``x`` (N, C) out smoothly; (N,) long.

    Row i of the soft permutation is grid slot i. The loss is the neighbour loss of the soft grid
    plus the std-preservation term; hardened by the Hungarian algorithm on the final logits.
    """
    n = x.shape[0]
    if n > cfg.max_n:
        raise SogError(f"sinkhorn has N^2 parameters; {n} items is more than max_n={cfg.max_n}")
    h, wd = shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    xs = x  # standardised, float32 (`sog.sort.features.standardise`)
    var = total_variance(xs)
    mask = (torch.arange(h * wd, device=device) < n).reshape(h, wd)
    log_alpha = (0.01 * torch.randn(n, n, generator=gen)).to(device).requires_grad_(True)
    opt = torch.optim.Adam([log_alpha], lr=cfg.lr)
    for step in tqdm(range(cfg.steps), desc="sinkhorn", disable=not progress, leave=False):
        tau = cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** (step / max(cfg.steps - 1, 1))
        p = gumbel_sinkhorn(log_alpha, tau, cfg.n_iter, cfg.noise, gen)
        soft = p @ xs
        grid = torch.zeros(h * wd, xs.shape[1], device=device).index_copy(0, torch.arange(n, device=device), soft)
        loss = neighbour_loss(grid.reshape(h, wd, -1), mask, var) + cfg.std_weight * std_loss(soft, xs) \
            + cfg.colsum_weight * column_sum_loss(p)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return hungarian(log_alpha.detach())
