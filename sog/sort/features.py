"""What to sort on: a weighted, normalised feature vector per Gaussian (`splat_features`), and the one
standardisation of any features on their way into a sorter (`standardise`)."""

from __future__ import annotations

import torch

from ..splats import Splats
from .losses import total_variance

#: Default weight per attribute group (relative importance in the neighbour loss). Positions only:
#: scripts/bench_features.py measured the native .sog 2.4-3.0% smaller than with the mix
#: means 1, sh0 1, scales 0.5, opacities 0.25 on plant, tarot and playbot (125K level), 0.3% larger
#: on the 9K-Gaussian kacytran scene; the position planes hold the most bytes.
DEFAULT_WEIGHTS = {"means": 1.0, "sh0": 0.0, "scales": 0.0, "opacities": 0.0, "quats": 0.0, "shN": 0.0}


def splat_features(splats: Splats, weights: dict[str, float] | None = None) -> torch.Tensor:
    """(N, C) float64 features: each attribute group standardised, then scaled by its weight.

    Positions always come first (columns 0..2) so position-only sorters (Morton) can use them.
    Groups with weight 0 are left out, except positions.
    """
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    n = len(splats)
    parts = []
    for name in ("means", "sh0", "scales", "opacities", "quats", "shN"):
        w = weights.get(name, 0.0)
        if w == 0 and name != "means":
            continue
        t = getattr(splats, name).detach().double().reshape(n, -1)  # float64: see `sog.stable`
        if t.shape[1] == 0:
            continue
        if name == "quats":
            t = torch.nn.functional.normalize(t, dim=1)
            t = t * torch.where(t[:, :1] < 0, -1.0, 1.0)  # q and -q are the same rotation
        t = t - t.mean(0)
        scale = t.pow(2).sum(1).mean().sqrt().clamp(min=1e-12)  # unit RMS norm per group
        parts.append(t / scale * (w if w > 0 else 1.0))
    return torch.cat(parts, 1)


def standardise(x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``x`` (N, C) on ``device`` in ``dtype``, centred and scaled to a total variance (the sum of the per-channel
    variances) of 1; (N, C). `sog.sort.sort_grid` calls it once for the sorters that learn on distances
    (`sog.sort.Sorter.standardised`), so their losses and step sizes mean the same for features of any scale."""
    xs = x.detach().to(device, dtype)
    return (xs - xs.mean(0)) / total_variance(xs).sqrt().clamp(min=1e-12)
