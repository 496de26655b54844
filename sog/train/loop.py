"""One training step with the SOG plugin, shared by sog's fine-tune and by training code (gsplat).

`training_step` is the body of a training loop that uses `SelfOrganizingGrid`: render the parameters (through a
profile's quantisers when asked: `straight_through`), the 3DGS photometric loss against the target image, plus the
plugin's neighbour loss on the grid, backward, and one step of every optimiser. The renderer is an argument, so
the same step runs on sog's differentiable CPU renderer (`sog.train.finetune`) and on gsplat's CUDA rasteriser
(``scripts/train_gsplat.py``); a densification strategy plugs in through ``pre_backward`` / ``post_backward``.
Re-sorting stays with the caller (`SelfOrganizingGrid.should_sort` / `sort_`): where in the loop it happens, and
which strategy state it must permute with the parameters, is the training code's.

    grid = SelfOrganizingGrid(sort_every=1000)
    for step in range(steps):
        photo, neighbour = training_step(params, optimizers, grid, lambda p: (my_render(p, cam), None), target)
        if grid.should_sort(step):
            grid.sort_(params, optimizers, step=step)

Shapes: ``params`` maps gsplat's names to raw tensors (``means`` (N, 3), ``quats`` (N, 4), ``scales`` (N, 3) log,
``opacities`` (N,) logits, ``sh0`` (N, 1, 3), ``shN`` (N, K, 3)), rows in grid order; ``render(params) -> (image
(H, W, 3), info)``; ``target`` (H, W, 3).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..metrics import ssim
from ..splats import FIELDS, Splats


def photometric_loss(image: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.2) -> torch.Tensor:
    """3DGS's ``(1 - w) · L1 + w · (1 - SSIM)`` of an image (H, W, 3) against its target; scalar."""
    l1 = (image - target).abs().mean()
    if ssim_weight == 0:
        return l1
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim(image, target))


def straight_through(params, quantise) -> dict[str, torch.Tensor]:
    """``params`` (raw tensors in grid order, rotations canonical) with the values of ``quantise`` (Splats -> Splats,
    the same rows) in the forward pass and the identity in the backward pass: ``x + (Q(x) - x).detach()``. A row
    whose decoded rotation is not its own up to sign (its canonical form changed: other parametrisation, permuted
    scales) keeps its float rotation and scales."""
    with torch.no_grad():
        plain = Splats(**{name: params[name].detach() for name in FIELDS})
        q = quantise(plain)
        quats = q.quats.to(params["quats"].dtype)
        raw = torch.nn.functional.normalize(params["quats"].detach(), dim=1)
        dot = (quats * raw).sum(1)
        same = dot.abs() > 0.9                 # the smallest-three lattice moves a rotation by far less
        quats = torch.where((dot < 0)[:, None], -quats, quats) * params["quats"].detach().norm(dim=1, keepdim=True)
        values = {name: getattr(q, name).to(params[name].dtype).reshape(params[name].shape) for name in FIELDS}
        values["quats"] = torch.where(same[:, None], quats, params["quats"].detach())
        values["scales"] = torch.where(same[:, None], values["scales"], params["scales"].detach())
    return {name: params[name] + (values[name] - params[name].detach()) for name in FIELDS}


def training_step(params, optimizers: dict, grid, render: Callable, target: torch.Tensor, *,
                  ssim_weight: float = 0.2, quantise=None, pre_backward: Callable | None = None,
                  post_backward: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: ``render`` the parameters (through ``quantise`` with straight-through gradients when given), the
    photometric loss against ``target`` plus ``grid``'s neighbour loss (`SelfOrganizingGrid.smoothness_loss`; None:
    no grid), backward, then ``step`` and ``zero_grad`` of every optimiser in ``optimizers`` (name -> optimiser).
    ``pre_backward(info)`` / ``post_backward(info)``: a densification strategy's hooks, with what ``render``
    returned beside the image. Returns the detached (photometric, neighbour) losses."""
    shown = straight_through(params, quantise) if quantise is not None else params
    image, info = render(shown)
    if pre_backward is not None:
        pre_backward(info)
    photo = photometric_loss(image, target, ssim_weight)
    smooth = grid.smoothness_loss(params) if grid is not None else torch.zeros((), dtype=photo.dtype)
    (photo + smooth).backward()
    for opt in optimizers.values():
        opt.step()
        opt.zero_grad(set_to_none=True)
    if post_backward is not None:
        post_backward(info)
    return photo.detach(), smooth.detach()
