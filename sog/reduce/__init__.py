"""Fewer Gaussians: keep the ones the pictures need, measured in renders from the tuning views.

    from sog.reduce import reduce
    from sog.render.views import tuning_cameras
    r = reduce(splats, keep=len(splats) // 2, cameras=tuning_cameras(splats, path), seed=0)
    r.splats          # (keep,) Gaussians; r.source_count is len(splats)

By default (``method="pairs"``) `reduce` merges neighbours that overlap and look alike in pairs, each pair into one
moment-matched Gaussian that keeps its coverage, priced by what the tuning views see of each
(`sog.reduce.pairs`). With ``method="drop"`` it keeps a subset of the Gaussians as they are instead: it ranks them
by what removing each one does to the pictures (`sog.reduce.contribution`: the
summed squared RGB change of a view when that Gaussian alone is dropped) and keeps, per Gaussian, the largest
figure over the views, so that whatever one view needs is kept even if no other view sees it. It drops the least
needed in a few rounds, measuring again after each (what one Gaussian adds depends on which others are still
there: of two that cover each other, the first removal costs little and the second much). Ties (Gaussians no
tuning view sees) go by opacity × footprint, then by a seeded permutation. Optionally (``merge``) a dropped
Gaussian that lies inside a kept neighbour of about its colour is folded into it by moment matching
(`merge_gaussians`: opacity mass, its centroid and second moment kept) instead of being dropped.

The cameras are the caller's: tuning views (`sog.render.views.tuning_cameras`), never the judging ones
(`sog.render.views.judging_cameras`) that `sog eval` and the benchmarks report on. The ranking is computed in
float64 and snapped (`sog.stable`), so the same Gaussians are kept (and merged into the same values) on every
CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SogError
from ..render.cameras import Camera
from ..splats import SH_C0, Splats, quat_to_rotmat
from ..stable import snap
from .contribution import ViewSetup, measure, setup_view
from .pairs import merge_pairs

#: `reduce`'s methods: merge neighbours in pairs (the default), or drop the least needed
METHODS = ("pairs", "drop")
#: ``method="pairs"`` first drops Gaussians whose removal changes no tuning view by more than this share of the
#: mean change (`view_errors`): what no view sees is better dropped than merged into a neighbour
UNSEEN_ERROR = 1e-3
#: ... and whose area mass (`area_mass`) is at most this share of the mean: what other views could see is merged
UNSEEN_MASS = 0.03
#: measuring rounds of `reduce`: each drops an equal share of what is still to go, then measures again
ROUNDS = 4
#: `merge`: a dropped Gaussian joins a kept one when its centre lies within this many of the kept one's
#: standard deviations (Mahalanobis distance) ...
MERGE_RADIUS = 1.0
#: ... and their DC colours differ by at most this much in every channel (colour in [0, 1])
MERGE_COLOUR = 0.1
#: the largest opacity a merged Gaussian gets (the rasteriser's alpha cap)
MAX_OPACITY = 0.99
#: the tuning views `sog compress --reduce` measures on (`sog.render.views.tuning_cameras`): count and size
REDUCE_VIEWS, REDUCE_SIZE = 12, 256


@dataclass
class Reduction:
    """What `reduce` kept: ``splats`` (M Gaussians); ``kept`` (M,) long, the input row each comes from (a merged
    one: the kept Gaussian the others were folded into); ``source_count`` the input's N; ``merged`` how many of
    the N - M removed Gaussians were folded into a kept one rather than dropped."""

    splats: Splats
    kept: torch.Tensor
    source_count: int
    merged: int = 0

    @property
    def count(self) -> int:
        return len(self.splats)


def check_reduce_options(fraction: float | None = None, max_gaussians: int | None = None) -> None:
    """`SogError` unless ``fraction`` (share removed) is None or 0 <= f < 1, ``max_gaussians`` None or a whole
    number >= 1, and not both are given."""
    target_count(1, fraction, max_gaussians)


def target_count(n: int, fraction: float | None = None, max_gaussians: int | None = None) -> int:
    """How many of ``n`` Gaussians to keep: ``n - floor(fraction · n)`` for a share removed (0 <= fraction < 1),
    ``min(n, max_gaussians)`` for a cap (>= 1), ``n`` for neither. `SogError` on a bad value or both."""
    if fraction is not None and max_gaussians is not None:
        raise SogError("--reduce and --max-gaussians are two ways to say the same; give one")
    if fraction is not None:
        if not 0 <= fraction < 1:  # also catches NaN
            raise SogError(f"--reduce is the share of Gaussians removed, 0 <= FRACTION < 1, not {fraction}")
        return max(1, n - math.floor(fraction * n))
    if max_gaussians is not None:
        if isinstance(max_gaussians, bool) or not isinstance(max_gaussians, (int, np.integer)) or max_gaussians < 1:
            raise SogError(f"--max-gaussians must be a whole number of at least 1, not {max_gaussians}")
        return min(n, int(max_gaussians))
    return n


def view_setups(splats: Splats, cameras: list[Camera]) -> list[ViewSetup]:
    """Per camera, ``splats`` projected, coloured and boxed in float64 (`sog.reduce.contribution.setup_view`): what
    every measuring round of `reduce` shares (about 100 bytes per Gaussian a view sees)."""
    s = splats.to("cpu")
    act = (s.means.double(), s.quats.double(), torch.exp(s.scales.double()), torch.sigmoid(s.opacities.double()),
           s.sh0.double(), s.shN.double())
    return [setup_view(*act, cam) for cam in cameras]


def view_errors(splats: Splats, cameras: list[Camera]) -> np.ndarray:
    """(V, N) float64: per camera, the squared RGB change of its picture when each Gaussian alone is removed
    (`sog.reduce.contribution.removal_errors`)."""
    if not cameras:
        return np.zeros((0, len(splats)))
    return np.stack([measure(view)[0] for view in view_setups(splats, cameras)])


def footprint_score(splats: Splats) -> np.ndarray:
    """(N,) float64: opacity × footprint (the product of the two largest standard deviations), snapped: the
    naive ranking, and `reduce`'s tie-break among Gaussians no view sees."""
    s = splats.to("cpu")
    log_scales = torch.sort(s.scales.double(), dim=1).values
    return snap((torch.sigmoid(s.opacities.double()) * torch.exp(log_scales[:, 1] + log_scales[:, 2])).numpy())


def footprint_prune(splats: Splats, keep: int) -> Reduction:
    """The naive reduction: keep the ``keep`` Gaussians of largest `footprint_score` (in input order)."""
    order = np.lexsort((np.arange(len(splats)), -footprint_score(splats)))
    kept = torch.from_numpy(np.sort(order[:keep]))
    return Reduction(splats.permute(kept), kept, len(splats))


def _ranks(x: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """(N,) float64 in [0, 1): each value's place among ``x`` (N,), ties by ``perm`` (N,)."""
    out = np.empty(len(x))
    out[np.lexsort((perm, x))] = np.arange(len(x)) / max(len(x), 1)
    return out


def _ranking(err: np.ndarray, tie: np.ndarray, perm: np.ndarray, prior: bool) -> np.ndarray:
    """Indices from least needed to most: by ``err`` (N,) (with ``prior``: by the larger of its rank and the rank
    of ``tie`` (N,)), then ``tie``, then ``perm`` (N,)."""
    if prior:
        err = np.maximum(_ranks(err, perm), _ranks(tie, perm))
    return np.lexsort((perm, tie, err))


def reduce(splats: Splats, keep: int, cameras: list[Camera], seed: int = 0, device: str | torch.device = "cpu",
           method: str = "pairs", rounds: int = ROUNDS, merge: bool = False, prior: bool = True) -> Reduction:
    """``keep`` Gaussians for ``splats``' N (1 <= keep; ``keep >= N`` keeps all), weighed by the pictures of
    ``cameras`` (tuning views); see the module docstring. ``method``: ``"pairs"`` merges neighbours in pairs
    (`sog.reduce.pairs.merge_pairs`), ``"drop"`` keeps those whose removal would change the pictures most, in
    ``rounds`` measuring rounds, ``merge`` folding dropped Gaussians into kept look-alikes (`merge_gaussians`).
    Measuring renders on the CPU (numba); ``device`` is where merged values are computed. Deterministic for a
    given ``seed`` (which orders exact ties)."""
    n = len(splats)
    if method not in METHODS:
        raise SogError(f"unknown reduction method {method!r} (use {', '.join(METHODS)})")
    if keep < 1:
        raise SogError(f"a reduction keeps at least one Gaussian, not {keep}")
    if keep >= n:
        return Reduction(splats, torch.arange(n), n)
    if not cameras:
        raise SogError("reduction needs cameras to measure the renders from")
    if method == "pairs":
        return _drop_unseen_then_merge(splats, keep, cameras, seed, device)
    tie = footprint_score(splats)
    perm = np.argsort(torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy())
    alive = np.arange(n)
    rounds = max(1, int(rounds))
    views = view_setups(splats, cameras)  # once: a Gaussian's projection and colour do not change between rounds
    for k in range(rounds):
        drop = math.ceil((len(alive) - keep) / (rounds - k))
        if drop <= 0:
            break
        live = np.zeros(n, np.bool_)
        live[alive] = True
        err = np.stack([measure(view, live)[0][alive] for view in views]).max(0)
        order = _ranking(err, tie[alive], perm[alive], prior)
        alive = np.sort(alive[order[drop:]])
    kept = torch.from_numpy(alive)
    if not merge:
        return Reduction(splats.permute(kept), kept, n)
    removed = np.setdiff1d(np.arange(n), alive)
    out, merged = merge_into_neighbours(splats, alive, removed, device)
    return Reduction(out, kept, n, merged)


def _drop_unseen_then_merge(splats: Splats, keep: int, cameras: list[Camera], seed: int, device) -> Reduction:
    """``method="pairs"``: first drop the Gaussians whose removal no camera sees (an error of at most
    `UNSEEN_ERROR` of the mean, least first, no more than are to go), then merge pairs (`merge_pairs`) down to
    ``keep``."""
    n = len(splats)
    measured = [measure(view) for view in view_setups(splats, cameras)]
    err = np.max([m[0] for m in measured], 0)
    seen = np.max([m[1] for m in measured], 0)      # blending weights: the merge prices' first round
    perm = np.argsort(torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy())
    order = np.lexsort((perm, footprint_score(splats), err))
    mass = area_mass(splats).cpu().numpy()
    free = (err <= UNSEEN_ERROR * err.mean()) & (mass <= UNSEEN_MASS * mass.mean())
    ranked = np.concatenate([order[free[order]], order[~free[order]]])
    alive = np.sort(ranked[min(int(free.sum()), n - keep):])
    merged = merge_pairs(splats.permute(torch.from_numpy(alive)), keep, cameras, seed=seed, device=device,
                         seen=seen[alive])
    return Reduction(merged.splats, torch.from_numpy(alive)[merged.kept], n, merged.merged)


def merge_into_neighbours(splats: Splats, kept: np.ndarray, removed: np.ndarray,
                          device: str | torch.device = "cpu") -> tuple[Splats, int]:
    """``splats`` rows ``kept`` (M,), each with the ``removed`` Gaussians that render like it folded in: a removed
    Gaussian joins its nearest kept one (by centre) when it lies within `MERGE_RADIUS` of its standard deviations
    and their DC colours are within `MERGE_COLOUR`. -> (M Gaussians, how many were folded in)."""
    from scipy.spatial import cKDTree

    s = splats.to("cpu")
    base = s.permute(torch.from_numpy(kept))
    if len(removed) == 0:
        return base, 0
    means = s.means.double().numpy()
    _, near = cKDTree(means[kept]).query(means[removed], k=1)
    j = kept[near]
    # Mahalanobis distance of each removed centre in its neighbour's covariance
    rot = quat_to_rotmat(s.quats.double()[j])                           # (R, 3, 3)
    local = torch.einsum("rji,rj->ri", rot, torch.from_numpy(means[removed] - means[j]))
    maha = (local / torch.exp(s.scales.double()[j])).square().sum(1).sqrt().numpy()
    dc = (SH_C0 * s.sh0.double()[:, 0] + 0.5).numpy()
    close = np.abs(dc[removed] - dc[j]).max(1)
    ok = (snap(maha) <= MERGE_RADIUS) & (snap(close) <= MERGE_COLOUR)
    if not ok.any():
        return base, 0
    src, dst = removed[ok], near[ok]                                    # dst: row in `base`
    groups = np.concatenate([np.arange(len(kept)), dst])                # which output row each member joins
    members = np.concatenate([kept, src])
    targets = np.unique(dst)
    take = np.isin(groups, targets)
    merged = merge_gaussians(s.permute(torch.from_numpy(members[take])).to(device),
                             torch.from_numpy(groups[take]).to(device), len(kept))
    rows = torch.from_numpy(targets)
    values = {name: t.clone() for name, t in base.tensors().items()}
    for name in values:
        values[name][rows] = getattr(merged, name)[rows.to(device)].to("cpu", values[name].dtype)
    return Splats(**values, extras=dict(base.extras)), int(ok.sum())


def opacity_mass(splats: Splats) -> torch.Tensor:
    """(N,) float64: each Gaussian's opacity mass, ``opacity · (2π)^{3/2} σx σy σz`` (the integral of its opacity
    density over space): what `merge_gaussians` keeps."""
    return torch.sigmoid(splats.opacities.double()) * (2 * math.pi) ** 1.5 * torch.exp(splats.scales.double().sum(1))


def projected_area(log_scales: torch.Tensor) -> torch.Tensor:
    """(N,) float64: the mean projected area of each 1-sigma ellipsoid (``log_scales`` (N, 3) log standard
    deviations): a quarter of its surface area, by Thomsen's formula (within about 1 %)."""
    s = torch.exp(log_scales.double())
    p = 1.6075
    pairs = (s[:, 0] * s[:, 1]) ** p + (s[:, 0] * s[:, 2]) ** p + (s[:, 1] * s[:, 2]) ** p
    return math.pi * (pairs / 3) ** (1 / p)


def area_mass(splats: Splats) -> torch.Tensor:
    """(N,) float64: opacity × `projected_area`, the coverage that pictures see whatever the ellipsoid's
    thickness (a flat disc has almost no `opacity_mass` but the coverage of its face): what a merge with
    ``mass="area"`` keeps."""
    return torch.sigmoid(splats.opacities.double()) * projected_area(splats.scales)


def merge_gaussians(splats: Splats, group: torch.Tensor, groups: int, mass: str = "volume") -> Splats:
    """Moment-matched merge: Gaussian i of ``splats`` (N) joins group ``group[i]`` ((N,) long in 0..groups-1) ->
    ``groups`` Gaussians (a group with no member: zeros). Each keeps its members' mass (``mass="volume"``:
    `opacity_mass`; ``"area"``: `area_mass`), unless that needs an opacity above `MAX_OPACITY`, their
    mass-weighted centroid and second moment (covariance = mass-weighted mean of ``Σ_i + (μ_i - μ)(μ_i - μ)ᵀ``),
    and their mass-weighted mean SH. Extras are dropped."""
    if mass not in ("volume", "area"):
        raise SogError(f"a merge keeps the volume or the area mass, not {mass!r}")
    dev = splats.means.device
    by_area = mass == "area"
    mass = area_mass(splats) if by_area else opacity_mass(splats)        # (N,)
    group = group.to(dev)
    total = torch.zeros(groups, dtype=torch.float64, device=dev).index_add(0, group, mass)
    w = mass / total[group]                                              # (N,) weights within the group

    def wsum(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((groups, *x.shape[1:]), dtype=torch.float64, device=dev)
        return out.index_add(0, group, x * w.view(-1, *([1] * (x.dim() - 1))))

    mu = wsum(splats.means.double())                                     # (G, 3)
    rot = quat_to_rotmat(splats.quats.double())                          # (N, 3, 3)
    var = torch.exp(2 * splats.scales.double())
    cov = rot @ torch.diag_embed(var) @ rot.transpose(1, 2)              # (N, 3, 3)
    d = splats.means.double() - mu[group]
    cov = wsum(cov + d[:, :, None] * d[:, None, :])                      # (G, 3, 3)
    cov = 0.5 * (cov + cov.transpose(1, 2))
    eigval, eigvec = torch.linalg.eigh(cov)                              # ascending, columns
    eigval = eigval.clamp(min=1e-30)
    # a proper rotation with a fixed sign per axis (largest component of each axis positive)
    pick = eigvec.abs().argmax(1, keepdim=True)
    eigvec = eigvec * torch.sign(torch.gather(eigvec, 1, pick))
    det = torch.linalg.det(eigvec)
    eigvec[:, :, 2] = eigvec[:, :, 2] * torch.sign(det)[:, None]
    scales = 0.5 * torch.log(eigval)                                     # (G, 3) log standard deviations
    size = projected_area(scales) if by_area else (2 * math.pi) ** 1.5 * torch.exp(scales.sum(1))
    opacity = (total / size).clamp(1e-6, MAX_OPACITY)
    return Splats(means=mu.float(), scales=scales.float(), quats=rotmat_to_quat(eigvec).float(),
                  opacities=torch.logit(opacity).float(), sh0=wsum(splats.sh0.double()).float(),
                  shN=wsum(splats.shN.double()).float())


def rotmat_to_quat(rot: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) proper rotations -> (N, 4) unit quaternions (w, x, y, z) with w >= 0 (`quat_to_rotmat`'s
    inverse), by the largest of the four candidate components (Shepperd's method)."""
    m = rot
    t = torch.stack([1 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                     1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], 1)
    k = t.argmax(1)
    r = 0.5 * torch.sqrt(t.gather(1, k[:, None]).squeeze(1).clamp(min=1e-30))
    s = 0.25 / r
    q = torch.empty(len(m), 4, dtype=m.dtype, device=m.device)
    a = k == 0
    q[a] = torch.stack([r[a], (m[a, 2, 1] - m[a, 1, 2]) * s[a], (m[a, 0, 2] - m[a, 2, 0]) * s[a],
                        (m[a, 1, 0] - m[a, 0, 1]) * s[a]], 1)
    a = k == 1
    q[a] = torch.stack([(m[a, 2, 1] - m[a, 1, 2]) * s[a], r[a], (m[a, 0, 1] + m[a, 1, 0]) * s[a],
                        (m[a, 0, 2] + m[a, 2, 0]) * s[a]], 1)
    a = k == 2
    q[a] = torch.stack([(m[a, 0, 2] - m[a, 2, 0]) * s[a], (m[a, 0, 1] + m[a, 1, 0]) * s[a], r[a],
                        (m[a, 1, 2] + m[a, 2, 1]) * s[a]], 1)
    a = k == 3
    q[a] = torch.stack([(m[a, 1, 0] - m[a, 0, 1]) * s[a], (m[a, 0, 2] + m[a, 2, 0]) * s[a],
                        (m[a, 1, 2] + m[a, 2, 1]) * s[a], r[a]], 1)
    return q * torch.where(q[:, :1] < 0, -1.0, 1.0)
