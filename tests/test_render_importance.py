"""Importance that holds up close: per-view sensitivities, each view counting the same in the ranking, drops
bounded by the view that tolerates least, and no layer kept that the numbers give no drop."""

from __future__ import annotations

import torch

from conftest import small_scene
from sog.codec.layers import importance_layers, importance_score
from sog.render.importance import sensitivities
from sog.render.views import importance_views


def test_per_view_sensitivities_sum_to_the_totals():
    s = small_scene(300, seed=0, sh_degree=0)
    cams = importance_views(s, views=3, size=32)
    per_view = sensitivities(s, cams, seed=2, per_view=True)
    total = sensitivities(s, cams, seed=2)
    for name in total:
        assert per_view[name].shape == (3, 300)
        assert torch.allclose(per_view[name].double().sum(0), total[name], rtol=1e-5, atol=1e-12)


def test_a_gaussian_only_a_close_view_sees_ranks_high():
    """View 0 (far) sees everything a little; view 1 (close) sees only Gaussian 7, strongly for that view, weakly
    against the far view's totals. Summed, it would rank last; each view counting the same, it ranks first."""
    far = torch.full((100,), 10.0).double()
    far[7] = 0.0
    close = torch.zeros(100).double()
    close[7] = 1.0
    sens = {"means": torch.stack([far, close])}
    assert int(torch.argmax(importance_score(sens))) == 7
    assert int(torch.argmin(importance_score({"means": far + close}))) == 7


def test_the_worst_view_bounds_a_layers_drop():
    """On average layer 2 is 16 times less sensitive than layer 1 (2 steps), but in one view it is as sensitive
    as layer 1: no drop, so it joins the first layer and one layer is left."""
    first, second = torch.full((100,), 16.0), torch.full((100,), 1.0)
    mean_view = torch.cat([first, second]).double()
    assert [d for _, d in importance_layers({"means": mean_view[None]}, layers=2, min_size=10)] == \
        [{"means": 0}, {"means": 2}]
    close_view = torch.cat([torch.full((100,), 1.0), torch.full((100,), 1.0)]).double()
    layers = importance_layers({"means": torch.stack([mean_view, close_view])}, layers=2, min_size=10)
    assert len(layers) == 1 and layers[0][1] == {"means": 0}
    assert torch.equal(torch.sort(layers[0][0]).values, torch.arange(200))     # every Gaussian, once


def test_a_middle_layer_without_drop_joins_the_first_and_the_others_keep_theirs():
    sens = torch.cat([torch.full((100,), 4.0), torch.full((100,), 3.0), torch.full((100,), 1e-3)]).double()
    layers = importance_layers({"means": sens}, layers=3, min_size=10, shares=(1, 1, 1))
    assert [len(index) for index, _ in layers] == [200, 100]
    every = torch.cat([index for index, _ in layers])
    assert torch.equal(torch.sort(every).values, torch.arange(300))           # merged, every Gaussian still once
    assert layers[0][1] == {"means": 0} and layers[1][1]["means"] == 3
