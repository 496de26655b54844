"""Render importance: how much the rendered pictures change when a Gaussian's values do.

For each Gaussian and attribute group (positions, rotation, log-scales, DC colour), `sensitivities`
measures the squared gradient of the rendered pixels w.r.t. its values, summed over a set of views: the
render error that one unit of quantisation error there causes. In trained scenes it is very uneven (on
plant the middle and last thirds of the Gaussians, ranked by it, are 16-64 times less sensitive than the
first third): many Gaussians are hidden behind others, inside surfaces, too faint or too blurred to
show small changes. `importance_layers` splits the scene by it so that `sog.codec.native` can store the
less sensitive layers with coarser settings, at little cost in render PSNR.

The views: a camera file next to the scene when there is one, else `importance_cameras`, an orbit at
two elevations that differ from `sog eval`'s (8 views at 20 degrees): the split is not tuned to the
views it is judged on.
"""

from __future__ import annotations

import math

import torch

from ..errors import SogError
from ..splats import Splats
from .cameras import Camera, orbit_cameras
from .cpu import render_one

#: attribute groups whose render sensitivity `sensitivities` measures (the ones a layer can store coarser)
SENSITIVE = ("means", "quats", "scales", "sh0")


def importance_cameras(splats: Splats, views: int = 12, size: int = 256,
                       elevations: tuple[float, ...] = (35.0, -10.0)) -> list[Camera]:
    """``views`` orbit cameras around ``splats``, split evenly over ``elevations`` (degrees)."""
    per = max(1, views // len(elevations))
    return [cam for e in elevations for cam in orbit_cameras(splats.means, per, size, elevation_deg=e)]


def sensitivities(splats: Splats, cameras: list[Camera], device: str | torch.device = "cpu",
                  seed: int = 0, probes: int = 1) -> dict[str, torch.Tensor]:
    """How much the pictures change when a Gaussian's values do: ``{"means", "quats", "scales", "sh0"}``, each
    (N,) float64 on the CPU, the squared gradient norm of the rendered pixels w.r.t. the Gaussian's values
    (positions, quaternion, log-scales, DC colour), summed over ``cameras``.

    Estimated as ``E[(Jᵀr)²]`` with ``probes`` random ±1 images ``r`` per view (Hutchinson's diagonal
    estimator): a rough figure for one Gaussian (one probe per view: about ±40 % over 12 views), accurate
    for a layer's mean."""
    device = torch.device(device)
    s = splats.to(device)
    gen = torch.Generator().manual_seed(seed)
    values = {name: getattr(s, name).detach().float().clone().requires_grad_(True) for name in SENSITIVE}
    shN = s.shN.float()
    total = {name: torch.zeros(len(splats), dtype=torch.float64) for name in SENSITIVE}
    for cam in cameras:
        image, _ = render_one(values["means"], values["quats"], torch.exp(values["scales"]),
                              torch.sigmoid(s.opacities.float()), values["sh0"], shN, cam.viewmat, cam.K,
                              cam.width, cam.height)
        for k in range(probes):
            probe = (torch.randint(0, 2, image.shape, generator=gen) * 2 - 1).to(image)
            grads = torch.autograd.grad((image * probe).sum(), list(values.values()), allow_unused=True,
                                        retain_graph=k < probes - 1)
            for name, g in zip(values, grads):
                if g is not None:
                    total[name] += g.detach().double().square().reshape(len(splats), -1).sum(1).cpu() / probes
    return total


def importance_score(sensitivity: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N,) float64: the sum over attribute groups of each Gaussian's sensitivity relative to the group's mean
    (each group holds a similar share of the bytes, so each counts the same)."""
    return sum(s.double() / max(float(s.double().mean()), 1e-300) for s in sensitivity.values())


#: layer sizes when none are asked for, by layer count: three layers of 15, 35 and 50 %, most important first. At
#: splat-transform's PSNR (`sog.rate`) tarot's file was 0.5-1.4 % smaller than with equal thirds over four runs
#: (1.1 % with the per-layer search), plant's 0.1 % (one seed); a smaller first layer keeps the finest settings
#: for the Gaussians that need them
DEFAULT_SHARES: dict[int, tuple[float, ...]] = {3: (0.15, 0.35, 0.5)}


def check_layer_shares(shares: tuple[float, ...], layers: int) -> None:
    """Raise `SogError` unless ``shares`` are ``layers`` positive numbers (relative layer sizes)."""
    if len(shares) != layers or any(not share > 0 for share in shares):
        raise SogError(f"layer_shares must be {layers} positive numbers (one per layer), not {list(shares)}")


def importance_layers(sensitivity: dict[str, torch.Tensor], layers: int, min_size: int = 16384,
                      max_drop: int = 3, shares: tuple[float, ...] | None = None
                      ) -> list[tuple[torch.Tensor, dict[str, float]]]:
    """Split Gaussians into up to ``layers`` layers by `importance_score`, most important first: equal ones, or
    ``shares`` of the scene (relative sizes, one per layer, most important first) when that many layers are made.

    Returns ``[(index (n_k,) long, drops), ...]``: the Gaussians of each layer and, per attribute of
    ``sensitivity`` (name -> (N,)), how many steps coarser it can be stored there. With the error budget spread
    so that every Gaussian adds the same render error, a layer whose mean sensitivity is r times lower than
    the first layer's can be stored with 0.5 log2(r) fewer bits per value (its errors show r times less): that,
    rounded to half steps and capped at ``max_drop``, is the drop; each attribute gets its own (tarot: 1 and 2
    bits on positions, 2 and 3 steps on rotations). Half steps rather than whole ones: on plant and tarot
    0.6 % fewer bytes at the same PSNR. Fewer layers when there are fewer than ``min_size`` Gaussians per
    layer (one layer: the whole scene, no drops). Without ``shares``, three layers get `DEFAULT_SHARES`, others
    equal parts.
    """
    score = importance_score(sensitivity)
    n = score.shape[0]
    count = max(1, min(layers, n // max(min_size, 1)))
    order = torch.argsort(score, descending=True, stable=True)
    if shares is not None:
        check_layer_shares(shares, layers)
    else:
        shares = DEFAULT_SHARES.get(count)
    if shares is not None and len(shares) == count:
        ends = torch.tensor(shares, dtype=torch.float64).cumsum(0) / sum(shares) * n
        parts = torch.tensor_split(order, [int(round(float(e))) for e in ends[:-1]])
        if any(len(p) == 0 for p in parts):
            raise SogError(f"layer shares {list(shares)} leave a layer of {n} Gaussians empty")
    else:
        parts = torch.tensor_split(order, count)
    out = []
    for p in parts:
        drops = {}
        for name, sens in sensitivity.items():
            first, here = float(sens[parts[0]].double().mean()), float(sens[p].double().mean())
            ratio = first / here if here > 0 else float("inf")
            drops[name] = 0 if ratio <= 1 else min(max_drop, round(math.log2(ratio)) / 2)
        out.append((p, drops))
    return out
