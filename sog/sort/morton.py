"""Morton (Z-order) sort: a cheap, good starting order for spatial data."""

from __future__ import annotations

import torch


def morton_codes(x: torch.Tensor, bits: int = 21) -> torch.Tensor:
    """Z-order codes of the first (up to) 3 columns of ``x`` (N, C), each quantised to ``bits``."""
    pts = x[:, :3].double()
    lo, hi = pts.min(0).values, pts.max(0).values
    q = ((pts - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi)) * (2 ** bits - 1)).long()
    code = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for bit in range(bits):
        for axis in range(q.shape[1]):
            code |= ((q[:, axis] >> bit) & 1) << (bit * q.shape[1] + axis)
    return code


def sort_morton(x: torch.Tensor, shape: tuple[int, int], config=None, **_) -> torch.Tensor:
    """Indices of ``x`` (N, C) in Morton order of its first 3 columns; (N,) long. No options, no seed."""
    return torch.argsort(morton_codes(x), stable=True)
