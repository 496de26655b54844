"""Fewer Gaussians by merging neighbours in pairs: each merge replaces two Gaussians that overlap and look alike with
one that carries both, so the region keeps its coverage, its colour and its shape.

    from sog.reduce.pairs import merge_pairs
    r = merge_pairs(splats, keep=len(splats) * 4 // 5, cameras=tuning, seed=0)   # a `sog.reduce.Reduction`

`merge_pairs` links every Gaussian to its `NEIGHBOURS` nearest centres, prices each link (`pair_cost`), picks
disjoint pairs cheapest first (`greedy_matching`: no Gaussian in two pairs) and merges as many as are still to go;
when one round of disjoint pairs is not enough it links the result again and goes on. A merge
(`sog.reduce.merge_gaussians` with ``mass="area"``) keeps the pair's *area mass* (opacity × mean projected area:
the coverage pictures see, whatever an ellipsoid's thickness), its mass-weighted centroid and second moment (the
covariance) and its mass-weighted colour (every SH coefficient).

The price of merging ``i`` and ``j`` is the weight it moves times how different the two are:

    cost = w_i w_j / (w_i + w_j) · (D_B(i, j) + COLOUR_WEIGHT · |c_i - c_j|²)

``D_B`` is the Bhattacharyya distance of the two Gaussians (their centres' distance in the mean covariance, and
how unlike their shapes and orientations are: two flat discs side by side in one plane are close, two crossed
ones far), ``c`` the DC colour in [0, 1], and ``w`` the weight that the pictures give each Gaussian: with
``cameras`` (tuning views) its largest blending weight over them (`sog.reduce.contribution.removal_errors`, in
pixels) over the mean, plus `AREA_SHARE` of its area mass over the mean (so that what no tuning view sees still
costs something); without, the area mass alone. The weight term is Ward's criterion for merging clusters.

Prices are snapped (`sog.stable`), ties go by a seeded order, and merged values are snapped before they are
stored, so that the same Gaussians merge into the same values on every CPU.

The idea of pairwise merging over a neighbour graph with mass-preserving moment matching is NanoGS's (Xiong et al.
2026), which splat-transform's ``--decimate`` runs; the price and its render weighting are sog's own
(docs/reduce.md has what each choice measured)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SogError
from ..render.cameras import Camera
from ..splats import SH_C0, Splats, quat_to_rotmat
from ..stable import snap, snap_tensor

#: links per Gaussian (its nearest centres)
NEIGHBOURS = 8
#: weight of the squared DC-colour distance (colour in [0, 1]) against the Bhattacharyya distance
COLOUR_WEIGHT = 5.0
#: with cameras: the share of the (mean-normalised) area mass added to the render-measured weight
AREA_SHARE = 0.1

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency
    numba = None


def neighbour_pairs(means: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """(E, 2) int64: each unordered pair of Gaussians in which one is among the other's ``k`` nearest centres
    (``means`` (N, 3)), lower index first, each pair once, sorted."""
    from scipy.spatial import cKDTree

    n = len(means)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((0, 2), np.int64)
    _, near = cKDTree(means).query(means, k=k + 1)
    i = np.repeat(np.arange(n), k)
    j = near[:, 1:].reshape(-1)
    pairs = np.stack([np.minimum(i, j), np.maximum(i, j)], 1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0).astype(np.int64)


def bhattacharyya(splats: Splats, pairs: np.ndarray) -> np.ndarray:
    """(E,) float64: the Bhattacharyya distance between the two Gaussians of each pair (``pairs`` (E, 2)):
    ``Δμᵀ Σ̄⁻¹ Δμ / 8 + ln(det Σ̄ / sqrt(det Σ_i det Σ_j)) / 2`` with ``Σ̄`` their mean covariance."""
    rot = quat_to_rotmat(splats.quats.double().cpu())                            # (N, 3, 3)
    log_sd = splats.scales.double().cpu()
    cov = (rot * torch.exp(2 * log_sd)[:, None, :]) @ rot.transpose(1, 2)       # (N, 3, 3)
    i, j = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    mean_cov = 0.5 * (cov[i] + cov[j])                                           # (E, 3, 3)
    d = splats.means.double().cpu()[i] - splats.means.double().cpu()[j]         # (E, 3)
    maha = (d[:, None, :] @ torch.linalg.solve(mean_cov, d[:, :, None]))[:, 0, 0]
    log_det = 2 * log_sd.sum(1)                                                  # ln det Σ, exactly
    shape = torch.linalg.slogdet(mean_cov)[1] - 0.5 * (log_det[i] + log_det[j])
    return (maha / 8 + shape / 2).numpy()


def pair_cost(splats: Splats, pairs: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(E,) float64 snapped: the price of merging each pair (``pairs`` (E, 2)) given each Gaussian's ``weight``
    (N,), as the module docstring defines it."""
    colour = (SH_C0 * splats.sh0.double()[:, 0] + 0.5).cpu().numpy()
    i, j = pairs[:, 0], pairs[:, 1]
    total = weight[i] + weight[j]
    ward = np.divide(weight[i] * weight[j], total, out=np.zeros(len(pairs)), where=total > 0)
    tint = ((colour[i] - colour[j]) ** 2).sum(1)
    return snap(ward * (bhattacharyya(splats, pairs) + COLOUR_WEIGHT * tint))


def _greedy(pairs: np.ndarray, order: np.ndarray, n: int, most: int) -> np.ndarray:
    """Indices into ``pairs`` (E, 2) of up to ``most`` disjoint pairs, taken in ``order`` (E,)."""
    used = np.zeros(n, np.bool_)
    out = np.empty(min(most, len(order)), np.int64)
    taken = 0
    for e in order:
        if taken >= most:
            break
        a, b = pairs[e, 0], pairs[e, 1]
        if used[a] or used[b]:
            continue
        used[a] = True
        used[b] = True
        out[taken] = e
        taken += 1
    return out[:taken]


if numba is not None:
    _greedy = numba.njit(cache=True)(_greedy)


def greedy_matching(pairs: np.ndarray, cost: np.ndarray, tie: np.ndarray, n: int, most: int) -> np.ndarray:
    """(P, 2): up to ``most`` disjoint pairs of ``pairs`` (E, 2), cheapest ``cost`` (E,) first (ties by ``tie``
    (E,)): a pair is taken when neither of its Gaussians (of ``n``) is in a pair taken before."""
    order = np.lexsort((tie, cost)).astype(np.int64)
    return pairs[_greedy(np.ascontiguousarray(pairs), order, n, int(most))]


def pair_weight(splats: Splats, cameras: list[Camera] | None, seen: np.ndarray | None = None) -> np.ndarray:
    """(N,) float64: each Gaussian's weight in the price (the module docstring): with ``cameras``, its largest
    blending weight over them (``seen`` (N,) when the caller has measured it) over the mean, plus `AREA_SHARE` of
    its area mass over the mean; without, its area mass."""
    from . import area_mass
    from .contribution import removal_errors

    mass = area_mass(splats).cpu().numpy()
    if not cameras:
        return mass
    if seen is None:
        s = splats.to("cpu")
        act = (s.means.double(), s.quats.double(), torch.exp(s.scales.double()),
               torch.sigmoid(s.opacities.double()), s.sh0.double(), s.shN.double())
        seen = np.max([removal_errors(*act, cam)[1] for cam in cameras], 0)
    return seen / max(seen.mean(), 1e-300) + AREA_SHARE * mass / max(mass.mean(), 1e-300)


def merge_pairs(splats: Splats, keep: int, cameras: list[Camera] | None = None, seed: int = 0,
                device: str | torch.device = "cpu", seen: np.ndarray | None = None):
    """Merge ``splats``' N Gaussians in pairs until ``keep`` are left (1 <= keep; ``keep >= N`` keeps all), as the
    module docstring says -> a `sog.reduce.Reduction` (``kept``: for each output Gaussian the input row of the one
    that carried the most weight into it; ``merged``: the merges made). ``cameras``: tuning views, never judging
    ones; ``seen`` (N,): their blending weights for the first round, when the caller has measured them.
    Deterministic for a given ``seed``. Extras are dropped when any merge is made."""
    from . import Reduction, merge_gaussians

    n = len(splats)
    if keep < 1:
        raise SogError(f"a reduction keeps at least one Gaussian, not {keep}")
    if keep >= n:
        return Reduction(splats, torch.arange(n), n)
    current = splats.to("cpu")
    origin = np.arange(n)                   # the input row that stands for each current Gaussian
    rng = np.random.default_rng(seed)
    merges = 0
    while len(current) > keep:
        m = len(current)
        pairs = neighbour_pairs(current.means.double().numpy())
        if len(pairs) == 0:
            break
        weight = pair_weight(current, cameras, seen if merges == 0 else None)
        cost = pair_cost(current, pairs, weight)
        chosen = greedy_matching(pairs, cost, rng.permutation(len(pairs)), m, m - keep)
        if len(chosen) == 0:
            break
        current, origin = _apply(current, origin, chosen, weight, device, merge_gaussians)
        merges += len(chosen)
    return Reduction(current, torch.from_numpy(origin), n, merges)


def _apply(current: Splats, origin: np.ndarray, chosen: np.ndarray, weight: np.ndarray, device,
           merge_gaussians) -> tuple[Splats, np.ndarray]:
    """``current`` with each pair of ``chosen`` (P, 2) merged into the row of its lower member (the others kept
    as they are, in order), and ``origin`` (M,) updated (a pair: its heavier member's input row)."""
    low, high = chosen[:, 0], chosen[:, 1]
    survivors = np.setdiff1d(np.arange(len(current)), high)                      # ascending
    members = torch.from_numpy(np.concatenate([low, high]))
    group = torch.from_numpy(np.concatenate([np.arange(len(low))] * 2))
    merged = merge_gaussians(current.permute(members).to(device), group.to(device), len(low), mass="area")
    rows = torch.from_numpy(np.searchsorted(survivors, low))
    values = {name: t.clone() for name, t in current.permute(torch.from_numpy(survivors)).tensors().items()}
    for name, t in merged.tensors().items():
        values[name][rows] = snap_tensor(t.to("cpu", torch.float64)).to(values[name].dtype)
    out = origin[survivors].copy()
    out[rows.numpy()] = origin[np.where(weight[low] >= weight[high], low, high)]
    return Splats(**values), out
