"""Apply one reordering of the Gaussians to parameters, optimizer state and strategy state.

A trainer keeps per-Gaussian rows in three places: the parameters themselves, the optimizer state
(Adam's ``exp_avg`` / ``exp_avg_sq``, ...) and the densification strategy's statistics (gsplat's
``grad2d``, ``count``, ``radii``). Reordering only the first silently corrupts training, so every
function here moves all three together. ``order`` is always an ``(N,)`` long permutation:
row ``i`` after the call is row ``order[i]`` before it.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch


def iter_optimizers(optimizers) -> list[torch.optim.Optimizer]:
    """A flat list from a single optimizer, a list of them, or gsplat's ``{name: optimizer}`` dict."""
    if optimizers is None:
        return []
    if isinstance(optimizers, torch.optim.Optimizer):
        return [optimizers]
    if isinstance(optimizers, Mapping):
        return list(optimizers.values())
    return list(optimizers)


def _permute_rows(value, order: torch.Tensor, n: int):
    """``value[order]`` for a tensor whose first dim is ``n``; anything else (scalars, ``step``) unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n:
        return value[order.to(value.device)]
    return value


def replace_param_(optimizers: Iterable[torch.optim.Optimizer], old: torch.nn.Parameter,
                   new: torch.nn.Parameter, order: torch.Tensor) -> None:
    """Swap ``old`` for ``new`` in every optimizer that holds it and permute its state rows by ``order``."""
    n = int(order.shape[0])
    for opt in optimizers:
        for group in opt.param_groups:
            for i, p in enumerate(group["params"]):
                if p is old:
                    group["params"][i] = new
        if old in opt.state:
            state = opt.state.pop(old)
            opt.state[new] = {k: _permute_rows(v, order, n) for k, v in state.items()}


def permute_params_(params: torch.nn.ParameterDict, optimizers, order: torch.Tensor,
                    strategy_state: dict | None = None) -> None:
    """Reorder every per-Gaussian row of ``params`` (each ``(N, ...)``), optimizer state and strategy state.

    Parameters are replaced by new ``nn.Parameter`` objects (as gsplat's strategies do), so any
    code holding the old objects must read them again from ``params``.
    """
    order = order.long()
    n = int(order.shape[0])
    opts = iter_optimizers(optimizers)
    for name in list(params.keys()):
        old = params[name]
        if old.dim() == 0 or old.shape[0] != n:
            continue
        new = torch.nn.Parameter(old.detach()[order.to(old.device)].clone(), requires_grad=old.requires_grad)
        replace_param_(opts, old, new, order)
        params[name] = new
    if strategy_state is not None:
        for key, value in list(strategy_state.items()):
            strategy_state[key] = _permute_rows(value, order, n)
