"""Pairwise merging (`sog.reduce.pairs`, the default of `sog.reduce.reduce`): each merge joins two neighbours into
one Gaussian that keeps their area mass and centroid; the pairs of a round are disjoint and taken cheapest first;
the count asked for is met exactly, the same way every run; and on a real scene it renders closer to the whole
scene than dropping Gaussians does, on views it never measured."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from conftest import shared_path, small_scene
from sog.io import load
from sog.metrics import view_psnrs
from sog.reduce import REDUCE_SIZE, REDUCE_VIEWS, area_mass, merge_gaussians, reduce
from sog.reduce.pairs import bhattacharyya, greedy_matching, merge_pairs, neighbour_pairs
from sog.render import render
from sog.render.views import judging_cameras, tuning_cameras
from sog.splats import Splats


def disc(centre, normal_axis: int, radius: float = 0.1, opacity: float = 0.5) -> Splats:
    """One flat Gaussian disc at ``centre``, thin along ``normal_axis``."""
    scales = torch.full((1, 3), radius)
    scales[0, normal_axis] = radius / 100
    return Splats(means=torch.tensor([centre], dtype=torch.float32), scales=torch.log(scales),
                  quats=torch.tensor([[1.0, 0, 0, 0]]), opacities=torch.logit(torch.tensor([opacity])),
                  sh0=torch.zeros(1, 1, 3), shN=torch.zeros(1, 0, 3))


def test_an_area_merge_keeps_the_pairs_area_mass_and_centroid():
    pair = Splats.concat([disc([0, 0, 0], 2, opacity=0.3), disc([0.05, 0, 0], 2, opacity=0.2)])
    merged = merge_gaussians(pair, torch.tensor([0, 0]), 1, mass="area")
    mass = area_mass(pair)
    assert float(area_mass(merged)[0]) == pytest.approx(float(mass.sum()), rel=1e-4)
    centroid = (mass[:, None] * pair.means.double()).sum(0) / mass.sum()
    assert torch.allclose(merged.means[0].double(), centroid, atol=1e-6)


def test_discs_side_by_side_in_one_plane_are_closer_than_crossed_ones():
    flat = Splats.concat([disc([0, 0, 0], 2), disc([0.05, 0, 0], 2)])
    crossed = Splats.concat([disc([0, 0, 0], 2), disc([0.05, 0, 0], 0)])
    pairs = np.array([[0, 1]])
    assert bhattacharyya(flat, pairs)[0] < bhattacharyya(crossed, pairs)[0]


def test_neighbour_pairs_are_unordered_unique_and_exclude_self():
    pairs = neighbour_pairs(small_scene(200, seed=1).means.double().numpy(), k=4)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert len(np.unique(pairs, axis=0)) == len(pairs)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(0, 2 ** 31 - 1), st.integers(1, 20))
def test_greedy_matching_takes_disjoint_pairs_cheapest_first(n, seed, most):
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.sort(rng.integers(0, n, (3 * n, 2)), 1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if not len(pairs):
        return
    cost = rng.random(len(pairs))
    chosen = greedy_matching(pairs, cost, np.arange(len(pairs)), n, most)
    assert len(chosen) <= most
    assert len(np.unique(chosen)) == chosen.size, "no Gaussian in two pairs"
    # each pair left out that is cheaper than the last taken one shares a Gaussian with a cheaper pair taken
    price = {tuple(p): c for p, c in zip(pairs.tolist(), cost)}
    taken = [price[tuple(p)] for p in chosen.tolist()]
    assert taken == sorted(taken)
    if len(chosen) < most:  # then every pair touches a taken one
        used = set(chosen.ravel().tolist())
        assert all(a in used or b in used for a, b in pairs.tolist())


def test_merging_meets_the_count_and_is_deterministic():
    scene = small_scene(300, seed=2)
    cams = tuning_cameras(scene, views=4, size=48)
    a = merge_pairs(scene, 170, cams, seed=5)
    b = merge_pairs(scene, 170, cams, seed=5)
    assert a.count == 170 and a.source_count == 300 and a.merged == 130
    assert all(torch.equal(x, y) for x, y in zip(a.splats.tensors().values(), b.splats.tensors().values()))
    assert torch.equal(a.kept, b.kept)
    assert len(torch.unique(a.kept)) == 170 and int(a.kept.max()) < 300, "each output stands for its own input row"


def test_keeping_everything_changes_nothing():
    scene = small_scene(50)
    out = merge_pairs(scene, 50, None)
    assert out.splats is scene and out.merged == 0


def test_on_a_real_scene_merging_beats_dropping_on_views_it_never_measured():
    """plant, a fifth removed: the default (merge) against ``method="drop"``, on judging views."""
    path = shared_path("plant")
    scene = load(path)
    keep = len(scene) * 4 // 5
    tuning = tuning_cameras(scene, path, views=REDUCE_VIEWS, size=REDUCE_SIZE)
    judging, _ = judging_cameras(scene, path, views=12, size=256)
    reference = render(scene, judging, backend="cpu", device="cpu")

    def p10(s):
        return float(np.percentile(view_psnrs(render(s, judging, backend="cpu", device="cpu"), reference), 10))

    merged = reduce(scene, keep, tuning, seed=0)
    dropped = reduce(scene, keep, tuning, seed=0, method="drop")
    assert merged.count == dropped.count == keep and merged.merged > 0
    assert p10(merged.splats) > p10(dropped.splats) + 2.0


def test_tiny_gaussians_no_view_sees_are_dropped_before_anything_is_merged():
    scene = small_scene(200, seed=4)
    cams = tuning_cameras(scene, views=4, size=48)
    far = small_scene(10, seed=5)
    far = Splats(means=far.means * 1e-3 + 1e4, scales=far.scales - 6, quats=far.quats, opacities=far.opacities,
                 sh0=far.sh0, shN=far.shN)                       # far outside every view, and tiny
    both = Splats.concat([scene, far])
    out = reduce(both, 200, cams, seed=0)
    assert out.merged == 0 and torch.equal(out.kept, torch.arange(200))
