"""Importance layers of the native profile: render sensitivities mean what they say,
the split keeps every Gaussian exactly once, drops follow the sensitivity ratio, and a layered file
decodes to every Gaussian within its own layer's step."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import sog
from conftest import small_scene
from sog.codec import native
from sog.codec.layers import importance_layers, layer_options
from sog.errors import SogError
from sog.io import read_container
from sog.pipeline import CompressOptions, compress
from sog.render import look_at
from sog.render.importance import sensitivities
from sog.splats import Splats


def _two_gaussians(front_opacity: float = 0.9) -> tuple[Splats, list]:
    """One Gaussian in front of another on the camera's axis, and a third far outside the view."""
    means = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 4.0], [50.0, 0.0, 3.0]])
    logit = math.log(front_opacity / (1 - front_opacity))
    scales = torch.log(torch.tensor([[0.3, 0.1, 0.2]] * 3))  # not round: turning them shows
    scene = Splats(means=means, scales=scales, quats=torch.tensor([[0.9, 0.3, 0.2, 0.1]] * 3),
                   opacities=torch.tensor([logit, 2.0, 2.0]), sh0=torch.full((3, 1, 3), 0.5),
                   shN=torch.zeros(3, 0, 3))
    cam = look_at(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, -1.0, 0.0]),
                  48, 48)
    return scene, [cam]


def test_sensitivities_estimate_the_squared_render_gradient():
    """For the DC colour the render is linear: d pixel / d sh0 = C0 * blending weight, so the exact figure is
    C0^2 * the sum of the squared weights; many Hutchinson probes must average to it."""
    scene, cams = _two_gaussians(front_opacity=0.6)
    sens = sensitivities(scene, cams, probes=400, seed=1)
    from sog.render.cpu import project, rasterize
    cam = cams[0]
    p = project(scene.means, scene.quats, torch.exp(scene.scales), torch.sigmoid(scene.opacities), cam.viewmat,
                cam.K, cam.width, cam.height)
    exact = torch.zeros(3, dtype=torch.float64)
    for j, i in enumerate(p.index.tolist()):       # one Gaussian lit at a time: its weights per pixel
        colors = torch.zeros(len(p.index), 1)
        colors[j] = 1.0
        weights, _ = rasterize(p, colors, cam.width, cam.height)
        exact[i] = 3 * (0.28209479177387814 * weights.double()).square().sum()   # 3 colour channels
    assert torch.allclose(sens["sh0"], exact, rtol=0.2)


def test_a_hidden_or_unseen_gaussian_is_less_sensitive():
    scene, cams = _two_gaussians(front_opacity=0.99)
    sens = sensitivities(scene, cams, probes=8)
    assert set(sens) == {"means", "quats", "scales", "sh0"}
    for name, s in sens.items():
        assert s[2] == 0, name          # outside the view: nothing changes
        assert s[0] > 10 * s[1], name   # behind an almost opaque Gaussian: little changes


def test_importance_layers_hold_every_gaussian_once_most_important_first():
    g = torch.Generator().manual_seed(0)
    varied = torch.rand(10_000, generator=g, dtype=torch.float64) ** 4
    sens = {"means": varied, "quats": torch.ones(10_000, dtype=torch.float64)}
    layers = importance_layers(sens, layers=3, min_size=1000)
    assert len(layers) == 3
    every = torch.cat([index for index, _ in layers])
    assert torch.equal(torch.sort(every).values, torch.arange(10_000))
    assert float(varied[layers[0][0]].min()) >= float(varied[layers[1][0]].max())
    assert layers[0][1] == {"means": 0, "quats": 0}
    assert all(drops["quats"] == 0 for _, drops in layers)           # equally sensitive everywhere: no drop
    assert [drops["means"] for _, drops in layers] == sorted(drops["means"] for _, drops in layers)
    assert layers[-1][1]["means"] > 0


def test_a_layer_sixteen_times_less_sensitive_is_stored_two_bits_coarser():
    sens = {"means": torch.cat([torch.full((100,), 16.0), torch.full((100,), 1.0)]).double()}
    (_, first), (_, second) = importance_layers(sens, layers=2, min_size=10)
    assert first == {"means": 0} and second == {"means": 2}
    eight = {"means": torch.cat([torch.full((100,), 8.0), torch.full((100,), 1.0)]).double()}
    assert importance_layers(eight, layers=2, min_size=10)[1][1] == {"means": 1.5}   # half steps
    huge = {"means": torch.cat([torch.full((100,), 1e9), torch.full((100,), 1.0)]).double()}
    assert importance_layers(huge, layers=2, min_size=10, max_drop=3)[1][1] == {"means": 3}
    assert len(importance_layers(sens, layers=3, min_size=150)) == 1  # too few for layers


def test_layer_options_drop_each_attribute_and_stop_at_the_smallest_setting():
    base = native.Options(means_bits=13, quat_bits=6, scale_levels=512, color_levels=128)
    o = layer_options(base, {"means": 1, "quats": 1, "scales": 2, "sh0": 3})
    assert (o.means_bits, o.quat_bits, o.scale_levels, o.color_levels) == (12, 5, 128, 16)
    o = layer_options(base, {"means": 9, "quats": 9, "scales": 9, "sh0": 9})
    assert (o.means_bits, o.quat_bits, o.scale_levels, o.color_levels) == (8, 4, 32, 8)
    assert layer_options(base, {}) == base
    o = layer_options(base, {"means": 0.5, "quats": 0.5, "scales": 0.5, "sh0": 1.5})  # half steps
    assert (o.means_bits, o.quat_bits, o.scale_levels, o.color_levels) == (12.5, 5.5, 362, 45)


def test_a_layered_file_gives_back_every_gaussian_once_within_its_layers_step(tmp_path):
    scene = small_scene(3000, seed=7, sh_degree=1)
    out = tmp_path / "layered.sog"
    res = compress(scene, out, CompressOptions(profile="native",
                                               sort="morton", profile_options={"layers": 3, "layer_min": 1000}),
                   quiet=True)
    meta, _, _ = read_container(out)
    assert meta["version"] == native.LAYERED_VERSION and len(meta["layers"]) == 3 == len(res.layers)
    assert sum(m["count"] for m in meta["layers"]) == 3000 == meta["count"]
    assert torch.equal(torch.sort(res.order).values, torch.arange(3000))
    back, ref = sog.load(out), scene.permute(res.order)
    assert len(back) == 3000
    start = 0
    for m in meta["layers"]:                         # each Gaussian within half a step of its layer's grid
        end = start + m["count"]
        lmin, lmax = np.array(m["means"]["mins"]), np.array(m["means"]["maxs"])
        step = torch.tensor((lmax - lmin) / (m["means"]["levels"] - 1), dtype=torch.float32)
        lref = torch.sign(ref.means[start:end]) * torch.log1p(ref.means[start:end].abs())
        lback = torch.sign(back.means[start:end]) * torch.log1p(back.means[start:end].abs())
        assert bool(((lref - lback).abs() <= step / 2 + 1e-5).all())
        start = end
    levels = [m["means"]["levels"] for m in meta["layers"]]
    assert levels[0] == native.level_count(native.Options().means_bits) and levels == sorted(levels, reverse=True)


def test_a_band_limited_layered_file_fits_its_shared_palette_on_the_bands_it_stores(tmp_path):
    scene = small_scene(3000, seed=7, sh_degree=3)
    out = tmp_path / "bands.sog"
    compress(scene, out, CompressOptions(profile="native",
                                         sort="morton", profile_options={"layers": 3, "layer_min": 1000,
                                                                         "sh_degree": 1}), quiet=True)
    back = sog.load(out)
    assert len(back) == 3000 and back.sh_degree == 1 and read_container(out)[0]["shN"]["bands"] == 1


def test_a_layered_meta_that_disagrees_with_its_layers_is_refused():
    scene = small_scene(200, seed=2, sh_degree=0)
    parts = [native.Layer(scene.permute(torch.arange(0, 100)), 10, 10),
             native.Layer(scene.permute(torch.arange(100, 200)), 10, 10, {"means": 1})]
    meta, files = native.encode_layers(parts)
    assert len(native.decode(meta, files.__getitem__)) == 200
    with pytest.raises(SogError, match="layers hold 200"):
        native.decode({**meta, "count": 150}, files.__getitem__)
    with pytest.raises(SogError, match="layers must be a list of 1..16"):  # the meta check names the field
        native.decode({**meta, "layers": []}, files.__getitem__)


def test_layers_share_one_sh_palette_and_keep_an_exact_source_palette():
    scene = small_scene(2000, seed=3, sh_degree=2)
    g = torch.Generator().manual_seed(0)
    entries = torch.randn(300, 8, 3, generator=g) * 0.1           # an already palettised source: 300 rows
    scene = Splats(**{**scene.tensors(), "shN": entries[torch.randint(0, 300, (2000,), generator=g)]})
    parts = [native.Layer(scene.permute(torch.arange(0, 1000)), 32, 32),
             native.Layer(scene.permute(torch.arange(1000, 2000)), 32, 32, {"sh0": 2})]
    meta, files = native.encode_layers(parts)
    assert sorted(n for n in files if "centroids" in n) == ["shN_centroids.webp"]
    distinct = torch.unique(scene.shN.reshape(2000, -1), dim=0).shape[0]  # 299: one row was never drawn
    assert meta["shN"]["count"] == distinct and all(m["shN"]["shared"] for m in meta["layers"])
    back = native.decode(meta, files.__getitem__)
    codebook = native.codebook_values(meta["shN"]["codebook"])
    step = (codebook[1:] - codebook[:-1]).max()
    assert float((back.shN - scene.shN).abs().max()) <= step / 2 + 1e-6
    with pytest.raises(SogError, match="shared SH palette"):
        native.decode(meta["layers"][0], files.__getitem__)


def test_a_reused_layout_writes_the_same_file_and_a_broken_one_is_refused(tmp_path):
    scene = small_scene(3000, seed=8, sh_degree=0)
    opts = {"layers": 2, "layer_min": 1000}
    first = compress(scene, tmp_path / "a.sog", CompressOptions(profile="native",
                                                                sort="morton", profile_options=opts), quiet=True)
    again = compress(scene, tmp_path / "b.sog", CompressOptions(profile="native",
                                                                profile_options=opts, layout=first.layout),
                     quiet=True)
    assert (tmp_path / "a.sog").read_bytes() == (tmp_path / "b.sog").read_bytes()
    assert torch.equal(first.order, again.order) and "importance" not in again.seconds
    broken = [(first.layout[0][0], {}), (first.layout[1][0][1:], {})]   # one Gaussian left out
    with pytest.raises(SogError, match="exactly once"):
        compress(scene, tmp_path / "c.sog", CompressOptions(profile="native", layout=broken), quiet=True)
    with pytest.raises(SogError, match="one grid"):
        compress(scene, tmp_path / "d.sog", CompressOptions(profile="playcanvas", layout=first.layout), quiet=True)
    assert not (tmp_path / "c.sog").exists() and not (tmp_path / "d.sog").exists()


def test_layer_shares_set_the_layer_sizes_and_a_wrong_count_is_refused(tmp_path):
    g = torch.Generator().manual_seed(1)
    # uneven enough that every layer gets a drop (a layer without one would join the first)
    sens = {"means": torch.rand(10_000, generator=g, dtype=torch.float64) ** 4}
    layers = importance_layers(sens, layers=3, min_size=1000, shares=(0.15, 0.35, 0.5))
    assert [len(index) for index, _ in layers] == [1500, 3500, 5000]
    every = torch.cat([index for index, _ in layers])
    assert torch.equal(torch.sort(every).values, torch.arange(10_000))
    assert float(sens["means"][layers[0][0]].min()) >= float(sens["means"][layers[1][0]].max())
    # fewer layers than shares (a small scene): equal layers
    assert [len(index) for index, _ in importance_layers(sens, layers=3, min_size=4000, shares=(1, 2, 3))] == [5000, 5000]
    with pytest.raises(SogError, match="layer_shares"):
        compress(small_scene(300), tmp_path / "x.sog", CompressOptions(profile="native",
                                                                       profile_options={"layer_shares": (1.0, 2.0)}),
                 quiet=True)
    assert not (tmp_path / "x.sog").exists()
    with pytest.raises(SogError, match="empty"):
        importance_layers(sens, layers=3, min_size=1000, shares=(1e-9, 1.0, 1.0))


def test_layer_steps_make_one_attribute_of_one_layer_coarser_and_a_wrong_shape_is_refused():
    scene = small_scene(2000, seed=3, sh_degree=0)
    parts = [native.Layer(scene.permute(torch.arange(0, 1000)), 32, 32),
             native.Layer(scene.permute(torch.arange(1000, 2000)), 32, 32, {"sh0": 1})]
    base = native.Options(quat_bits=6, color_levels=64)
    meta, _ = native.encode_layers(parts, base)
    stepped, files = native.encode_layers(parts, replace(base, layer_steps=((0, 0, 0, 0), (0, 1, 0, 0))))
    assert stepped["layers"][0]["quats"] == meta["layers"][0]["quats"]
    assert stepped["layers"][1]["quats"]["levels"] < meta["layers"][1]["quats"]["levels"]   # one bit coarser
    for k in range(2):   # the other attributes as they were
        assert stepped["layers"][k]["means"] == meta["layers"][k]["means"]
        assert stepped["layers"][k]["sh0"] == meta["layers"][k]["sh0"]
    assert len(native.decode(stepped, files.__getitem__)) == 2000
    with pytest.raises(SogError, match="layer_steps"):
        native.encode_layers(parts, replace(base, layer_steps=((0, 0, 0, 0),)))
