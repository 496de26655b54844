"""Importance layers: which Gaussians a profile stores coarser, and by how much.

The pipeline measures how much the rendered pictures change when each Gaussian's values do
(`sog.render.importance.sensitivities`, per view, from the importance cameras) and hands those sensitivities to
the profile's `Profile.plan_layers`; a layered profile splits the scene with `plan_importance_layers` here. No
rendering happens in the codec: this module only ranks and splits numbers it is given.

* `importance_layers` ranks the Gaussians by `importance_score` and splits them into up to ``layers`` layers,
  most important first, each with its *drops*: per attribute, how many steps coarser it may be stored there.
* `layer_drops` adds the rate search's per-layer refinement (``options.layer_steps``) to a layer's drops, and
  `layer_options` turns drops into coarser settings (one bit less per step on positions and rotations, half the
  scale and colour levels), never below `LAYER_FLOOR`.
"""

from __future__ import annotations

import math
from dataclasses import replace
import torch

from ..errors import SogError
from .base import Layer, LayerPlan
from .options import CodecOptions, check_layer_shares

#: layer sizes when none are asked for, by layer count: three layers of 15, 35 and 50 %, most important first (a
#: smaller first layer keeps the finest settings for the Gaussians that need them; docs/profiles.md)
DEFAULT_SHARES: dict[int, tuple[float, ...]] = {3: (0.15, 0.35, 0.5)}

#: the fewest levels (bits for rotations) a coarser layer gets: below these the render error grows much faster
#: than the sensitivity (a small-error estimate) says (docs/profiles.md)
LAYER_FLOOR = {"scales": 32, "sh0": 8, "quats": 4}
#: the attributes whose per-layer drops `layer_options` applies (the order of ``Options.layer_steps``)
LAYER_STEPPED = ("means", "quats", "scales", "sh0")


def wants_layers(count: int, options: CodecOptions) -> bool:
    """Whether a scene of ``count`` Gaussians is split: more than one layer asked for (``options.layers``) and at
    least two layers' worth (``options.layer_min``) of Gaussians."""
    return options.layers > 1 and count >= 2 * options.layer_min


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


def importance_layers(sensitivity: dict[str, torch.Tensor], layers: int, min_size: int = 16384,
                      max_drop: int = 3, shares: tuple[float, ...] | None = None) -> LayerPlan:
    """Split Gaussians into up to ``layers`` layers by `importance_score`, most important first: equal ones, or
    ``shares`` of the scene (relative sizes, one per layer, most important first) when that many layers are made.

    Returns ``[(index (n_k,) long, drops), ...]``: the Gaussians of each layer and, per attribute of
    ``sensitivity`` (name -> (N,)), how many steps coarser it can be stored there. With the error budget spread
    so that every Gaussian adds the same render error, a layer whose mean sensitivity is r times lower than
    the first layer's can be stored with 0.5 log2(r) fewer bits per value (its errors show r times less): that,
    rounded to half steps and capped at ``max_drop``, is the drop; each attribute gets its own. Fewer layers when
    there are fewer than ``min_size`` Gaussians per layer (one layer: the whole scene, no drops). Without
    ``shares``, three layers get `DEFAULT_SHARES`, others equal parts.

    Per-view sensitivities (name -> (V, N), `sog.render.importance.sensitivities` with ``per_view``) bound the
    drop by the worst view: the ratio is the smallest over views of (first layer's mean) / (this layer's mean) in
    that view (a view that sees this layer and not the first allows no drop). A layer left with no drop at all is
    merged into the first (the same settings, one grid fewer): fewer layers when that is what the numbers say.
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


def plan_importance_layers(sensitivity: dict[str, torch.Tensor], options: CodecOptions) -> LayerPlan:
    """The importance layers (`importance_layers`) of per-view ``sensitivity`` (name -> (V, N)) under ``options``'
    ``layers``, ``layer_min``, ``layer_max_drop`` and ``layer_shares``. Shared by the profiles that store layers."""
    return importance_layers(sensitivity, options.layers, options.layer_min, options.layer_max_drop,
                             options.layer_shares)


def layer_options(options: CodecOptions, drops: dict[str, float]) -> CodecOptions:
    """``options`` made coarser by ``drops`` (``means``, ``quats``, ``scales``, ``sh0``: steps, may be half steps):
    one bit less per step on positions and rotations, half the scale and colour levels. Opacity and the SH
    palette rule are unchanged, and no setting goes below its smallest allowed value."""
    d = {name: max(0.0, float(drops.get(name, 0))) for name in LAYER_STEPPED}

    def fewer(levels: int, steps: float, floor: int) -> int:
        return min(levels, max(floor, int(round(levels / 2.0 ** steps))))

    return replace(options, means_bits=min(options.means_bits, max(8, options.means_bits - d["means"])),
                   quat_bits=min(options.quat_bits, max(LAYER_FLOOR["quats"], options.quat_bits - d["quats"])),
                   scale_levels=fewer(options.scale_levels, d["scales"], LAYER_FLOOR["scales"]),
                   color_levels=fewer(options.color_levels, d["sh0"], LAYER_FLOOR["sh0"]))


def layer_drops(options: CodecOptions, index: int, layer: Layer) -> dict[str, float]:
    """The drops layer ``index`` is stored with: its own (`Layer.drops`) plus ``options.layer_steps[index]``."""
    drops = dict(layer.drops)
    if options.layer_steps is not None:
        if len(options.layer_steps) <= index or len(options.layer_steps[index]) != len(LAYER_STEPPED):
            raise SogError(f"layer_steps needs {len(LAYER_STEPPED)} steps (one per attribute of LAYER_STEPPED) "
                           f"for layer {index}")
        for name, step in zip(LAYER_STEPPED, options.layer_steps[index]):
            drops[name] = drops.get(name, 0) + step
    return drops
