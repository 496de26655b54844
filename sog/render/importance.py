"""Render importance: how much the rendered pictures change when a Gaussian's values do.

For each Gaussian and attribute group (positions, rotation, log-scales, DC colour), `sensitivities`
measures the squared gradient of the rendered pixels w.r.t. its values, summed over a set of views: the
render error that one unit of quantisation error there causes. In trained scenes it is very uneven (on
plant the middle and last thirds of the Gaussians, ranked by it, are 16-64 times less sensitive than the
first third): many Gaussians are hidden behind others, inside surfaces, too faint or too blurred to
show small changes. `importance_layers` splits the scene by it so that `sog.codec.native` can store the
less sensitive layers with coarser settings, at little cost in render PSNR.

The views (`sog.render.views.importance_views`): tuning views only, never `sog eval`'s: the tuning subset of a
camera file next to the scene, else seeded close views (0.6-1.4 half-diagonals from points near the centre, some
inside the bounds) and orbit views. Sensitivities are kept per view (`view_sensitivities`), because what is
unimportant from far away (hidden, faint, small on screen) is not from a camera that comes close: each view
counts the same in the ranking (`importance_score`), and a layer's drop is what its *worst* view tolerates
(`importance_layers`).
"""

from __future__ import annotations

import math

import torch

from ..errors import SogError
from ..splats import Splats
from ..stable import snap
from .cameras import Camera
from .cpu import render_one

#: attribute groups whose render sensitivity `sensitivities` measures (the ones a layer can store coarser)
SENSITIVE = ("means", "quats", "scales", "sh0")


def sensitivities(splats: Splats, cameras: list[Camera], device: str | torch.device = "cpu",
                  seed: int = 0, probes: int = 1, per_view: bool = False) -> dict[str, torch.Tensor]:
    """How much the pictures change when a Gaussian's values do: ``{"means", "quats", "scales", "sh0"}``, each
    (N,) float64 on the CPU, the squared gradient norm of the rendered pixels w.r.t. the Gaussian's values
    (positions, quaternion, log-scales, DC colour), summed over ``cameras``; with ``per_view`` each is (V, N)
    float32, one row per camera (`importance_layers` then judges each view on its own).

    Estimated as ``E[(Jᵀr)²]`` with ``probes`` random ±1 images ``r`` per view (Hutchinson's diagonal
    estimator): a rough figure for one Gaussian (one probe per view: about ±40 % over 12 views), accurate
    for a layer's mean."""
    device = torch.device(device)
    s = splats.to(device)
    gen = torch.Generator().manual_seed(seed)
    # on the CPU a float64 render and gradients: the layers are a ranking of these figures, and float32 ones moved
    # between CPU instruction sets by far more than a `snap` absorbs; float64 ones by a few ulps, which it removes
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    values = {name: getattr(s, name).detach().to(dtype).clone().requires_grad_(True) for name in SENSITIVE}
    shN = s.shN.to(dtype)
    rows = {name: [] for name in SENSITIVE}
    for cam in cameras:
        total = {name: torch.zeros(len(splats), dtype=torch.float64) for name in SENSITIVE}
        image, _ = render_one(values["means"], values["quats"], torch.exp(values["scales"]),
                              torch.sigmoid(s.opacities.to(dtype)), values["sh0"], shN, cam.viewmat.to(dtype),
                              cam.K.to(dtype), cam.width, cam.height)
        for k in range(probes):
            probe = (torch.randint(0, 2, image.shape, generator=gen) * 2 - 1).to(image)
            grads = torch.autograd.grad((image * probe).sum(), list(values.values()), allow_unused=True,
                                        retain_graph=k < probes - 1)
            for name, g in zip(values, grads):
                if g is not None:
                    total[name] += g.detach().double().square().reshape(len(splats), -1).sum(1).cpu() / probes
        for name in SENSITIVE:
            total[name] = torch.from_numpy(snap(total[name].cpu().numpy()))  # 20 bits: exact in float32 too
            rows[name].append(total[name].float() if per_view else total[name])
    if per_view:
        return {name: torch.stack(r) if r else torch.zeros(0, len(splats)) for name, r in rows.items()}
    return {name: sum(r) if r else torch.zeros(len(splats), dtype=torch.float64) for name, r in rows.items()}


def importance_score(sensitivity: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N,) float64: the sum over attribute groups of each Gaussian's sensitivity relative to the group's mean
    (each group holds a similar share of the bytes, so each counts the same). Per-view sensitivities (V, N) are
    taken relative to each view's mean: every view counts the same, so a Gaussian that matters in one close view
    (where few Gaussians are seen) ranks high even if no far view sees it."""
    score = 0
    for s in sensitivity.values():
        s = s.double()
        score = score + (s / s.mean(-1, keepdim=True).clamp(min=1e-300)).reshape(-1, s.shape[-1]).sum(0)
    return score


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

    Per-view sensitivities (name -> (V, N), `sensitivities` with ``per_view``) bound the drop by the worst view:
    the ratio is the smallest over views of (first layer's mean) / (this layer's mean) in that view (a view
    that sees this layer and not the first allows no drop). A layer left with no drop at all is merged into the
    first (the same settings, one grid fewer): fewer layers when that is what the numbers say.
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
            ratio = _worst_ratio(sens.double().reshape(-1, n), parts[0], p)
            drops[name] = 0 if ratio <= 1 else min(max_drop, round(math.log2(ratio)) / 2)
        out.append((p, drops))
    if len(out) > 1:                      # layers with no drop join the first one
        flat = [k for k in range(1, len(out)) if not any(out[k][1].values())]
        if flat:
            first = torch.cat([out[0][0]] + [out[k][0] for k in flat])
            out = [(first, out[0][1])] + [out[k] for k in range(1, len(out)) if k not in flat]
    return out


def _worst_ratio(sens: torch.Tensor, first: torch.Tensor, part: torch.Tensor) -> float:
    """The smallest over views (rows of ``sens`` (V, N)) of the first layer's mean sensitivity over ``part``'s: how
    many times less this layer's errors show than the first layer's, in the view where that is least."""
    ratio = float("inf")
    for row in sens:
        here = float(row[part].double().mean())
        if here > 0:
            ratio = min(ratio, float(row[first].double().mean()) / here)
    return ratio
