"""The grid smoothness loss of Self-Organizing Gaussians, in plain torch.

Each attribute ``(N, C)`` is laid on the ``(H, W)`` grid of `sog.grid.grid_shape` (Gaussian i at
texel i, row-major; the tail cells are empty and masked out), standardised per channel, blurred
with a separable Gaussian kernel (normalised by the blurred mask, so empty cells never pull
values), and compared with a Huber loss to the *detached* blurred copy. Minimising it moves each
Gaussian's attributes towards its grid neighbours' average.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..grid import grid_shape
from ..stable import blur as stable_blur, gaussian_taps, snap_tensor

#: Per-attribute weights. SOG's defaults were opacity 1 and quaternions 10; the others are ours.
DEFAULT_WEIGHTS = {"means": 1.0, "scales": 1.0, "quats": 10.0, "opacities": 1.0, "sh0": 1.0, "shN": 0.0}


def to_plane(x: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (N, C) -> plane (C, H, W) with zeros in the tail cells, and mask (1, H, W) of occupied cells."""
    n, c = x.shape
    h, w = shape
    pad = h * w - n
    plane = torch.cat([x, x.new_zeros(pad, c)]).T.reshape(c, h, w)
    mask = torch.cat([x.new_ones(n), x.new_zeros(pad)]).reshape(1, h, w)
    return plane, mask


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, radius ceil(2 sigma); shape (2r+1,)."""
    return gaussian_taps(max(1, math.ceil(2 * sigma)), sigma, dtype, device)


def blur(plane: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) with zero padding (`sog.stable.blur`); same shape."""
    return stable_blur(plane, gaussian_kernel1d(sigma, plane.device, plane.dtype))


def masked_blur(plane: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur of the occupied cells only: blur(plane * mask) / blur(mask); (C, H, W)."""
    return blur(plane * mask, sigma) / blur(mask, sigma).clamp(min=1e-6)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """(N, C) with each channel shifted/scaled by its detached mean/std, so attribute weights are comparable."""
    # the statistics in float64, snapped: a reduction's order (so its last bit) follows the CPU's vector width
    x64 = x.detach().double()
    mean = snap_tensor(x64.mean(0)).to(x.dtype)
    std = (snap_tensor(x64.std(0, unbiased=False)).to(x.dtype).clamp(min=1e-8) if x.shape[0] > 1
           else torch.ones_like(mean))
    return (x - mean) / std


def plane_smoothness(x: torch.Tensor, shape: tuple[int, int], sigma: float = 1.0, delta: float = 1.0) -> torch.Tensor:
    """Huber loss between standardised ``x`` (N, C) on the grid and its detached masked blur; scalar."""
    plane, mask = to_plane(standardise(x), shape)
    target = masked_blur(plane, mask, sigma).detach()
    per_cell = F.huber_loss(plane, target, reduction="none", delta=delta) * mask
    return per_cell.sum() / (mask.sum() * plane.shape[0])


def smoothness_loss(params, weights: dict[str, float] | None = None, sigma: float = 1.0,
                    delta: float = 1.0) -> torch.Tensor:
    """Weighted sum of `plane_smoothness` over the attributes in ``params`` (name -> (N, ...)); scalar.

    Assumes row i of every attribute is texel i of the current grid (true after `SelfOrganizingGrid.sort_`).
    """
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    first = next(iter(params.values()))
    n = int(first.shape[0])
    shape = grid_shape(n)
    total = first.new_zeros(())
    for name, value in params.items():
        w = weights.get(name, 0.0)
        if w == 0 or value.shape[0] != n:
            continue
        x = value.reshape(n, -1)
        if x.shape[1] == 0:
            continue
        total = total + w * plane_smoothness(x, shape, sigma, delta)
    return total


def neighbour_ratio(x: torch.Tensor, shape: tuple[int, int] | None = None) -> float:
    """The neighbour ratio (`sog.sort.losses.neighbour_ratio`) of the rows of ``x`` (N, ...) in
    their current grid order, each channel standardised first: about 1 for no order, lower is smoother."""
    from ..sort.losses import neighbour_ratio as ratio

    x = standardise(x.detach().float().reshape(x.shape[0], -1))
    return ratio(x, torch.arange(x.shape[0]), shape or grid_shape(x.shape[0]))
