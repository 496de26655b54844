"""Which attribute a compressed file's render error comes from: the original with one attribute group swapped in.

A compressed scene differs from its original in every attribute at once, and a viewer re-quantises some of them on
load (Spark packs centres as float16, colours and opacities as 8 bits, scales as 8-bit logs), so the whole-file PSNR
does not say where the error is. `one_attribute_scenes` of a `matched` pair gives, per attribute group, the
original scene with only that group taken from the decoded file; rendering each in a viewer against the viewer's
render of the original gives that group's share (``scripts/bench_viewer_attributes.py``).

The decoded file is in its own (sorted) order, so each decoded Gaussian is first matched to the original
Gaussian nearest to its position (`match_order`). Positions are quantised far below the spacing of distinct
Gaussians, so the match is nearly a bijection; `MatchedScene.unique` counts the distinct originals matched (a few
coincident Gaussians share a position).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import SogError
from .splats import Splats

#: attribute groups swapped together: a canonical rotation permutes the scale axes with it (the same covariance),
#: so scales and quaternions are one group
GROUPS: dict[str, tuple[str, ...]] = {
    "means": ("means",),
    "scales+quats": ("scales", "quats"),
    "opacities": ("opacities",),
    "sh0": ("sh0",),
    "shN": ("shN",),
}


@dataclass
class MatchedScene:
    """The original reordered to a decoded scene's order: ``original[i]`` is the Gaussian that ``decoded[i]``
    came from; ``unique`` the number of distinct original Gaussians matched."""

    original: Splats
    decoded: Splats
    unique: int


def match_order(original: Splats, decoded: Splats) -> torch.Tensor:
    """(M,) long: for each of the M decoded Gaussians, the index of the original Gaussian nearest to its position
    (means (N, 3) and (M, 3)). `SogError` unless both scenes have the same count (a reduced file has no
    one-to-one match)."""
    if len(original) != len(decoded):
        raise SogError(f"attribution needs the same count: the original has {len(original):,} Gaussians, "
                       f"the decoded file {len(decoded):,}")
    from scipy.spatial import cKDTree

    tree = cKDTree(original.means.double().cpu().numpy())
    _, idx = tree.query(decoded.means.double().cpu().numpy())
    return torch.from_numpy(np.asarray(idx, dtype=np.int64))


def matched(original: Splats, decoded: Splats) -> MatchedScene:
    """`MatchedScene` of ``original`` in ``decoded``'s order (`match_order`), SH degrees made equal (the
    decoded one's)."""
    order = match_order(original, decoded)
    base = original.permute(order).with_sh_degree(decoded.sh_degree)
    return MatchedScene(base, decoded, int(torch.unique(order).numel()))


def one_attribute_scenes(m: MatchedScene) -> dict[str, Splats]:
    """Per group of `GROUPS` (and ``"all"``: the decoded scene itself), the original of ``m`` (`matched`) in the
    decoded order with only that group's tensors taken from the decoded scene. Groups absent from both (``shN`` at
    SH degree 0) are left out."""
    scenes = {"all": m.decoded}
    for group, fields in GROUPS.items():
        if all(getattr(m.original, f).numel() == 0 for f in fields):
            continue
        tensors = m.original.tensors()
        tensors.update({f: getattr(m.decoded, f) for f in fields})
        scenes[group] = Splats(**tensors)
    return scenes
