"""The native ``sog`` profile: quantisers bounded by their step, planes round-trip, every Gaussian
comes back exactly once, presets and the SH band limit do what they say, real scenes survive."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import sog
from conftest import shared_path, small_scene
from sog.codec import PROFILES, native
from sog.errors import SogError
from sog.io import read_container
from sog.pipeline import CompressOptions, compress


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 50), st.just(3)), elements=st.floats(-1e4, 1e4)),
       st.integers(8, 16))
def test_uniform_quantiser_error_is_at_most_half_a_step(x, bits):
    lo, hi = x.min(0), x.max(0)
    q = native.quantize_uniform(x, lo, hi, bits)
    assert q.max() < (1 << bits)
    back = native.dequantize_uniform(q, lo, hi, bits)
    step = (hi - lo) / ((1 << bits) - 1)
    assert np.all(np.abs(back - x) <= step / 2 + 1e-9 * (1 + np.abs(x)))


def test_palette_ordering_relabels_consistently():
    g = torch.Generator().manual_seed(0)
    cent, labels = torch.randn(50, 6, generator=g), torch.randint(0, 50, (500,), generator=g)
    c2, l2 = native.order_palette(cent, labels)
    assert torch.equal(c2[l2], cent[labels])
    proj = (c2 - c2.mean(0)) @ torch.linalg.svd(c2 - c2.mean(0), full_matrices=False)[2][0]
    assert bool((proj[1:] >= proj[:-1]).all()) or bool((proj[1:] <= proj[:-1]).all())


def _round_trip(scene, tmp_path, **profile_options):
    out = tmp_path / "x.sog"
    res = compress(scene, out, CompressOptions(profile="sog", sort="morton", profile_options=profile_options),
                   quiet=True, overwrite=True)
    meta, _, _ = read_container(out)
    assert meta["profile"] == "sog"
    return scene.permute(res.order), sog.load(out), meta


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_round_trip_keeps_every_gaussian_within_each_planes_step(tmp_path, degree):
    scene = small_scene(700, seed=degree, sh_degree=degree)
    ref, back, meta = _round_trip(scene, tmp_path, means_bits=16)
    assert len(back) == len(scene) and back.sh_degree == degree
    lmin, lmax = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])
    step = torch.tensor((lmax - lmin) / 65535, dtype=torch.float32)
    lref = torch.sign(ref.means) * torch.log1p(ref.means.abs())
    lback = torch.sign(back.means) * torch.log1p(back.means.abs())
    assert bool(((lref - lback).abs() <= step / 2 + 1e-5).all())
    q = torch.nn.functional.normalize(ref.quats, dim=1)
    assert float((q * back.quats).sum(1).abs().min()) > 0.999
    assert torch.allclose(torch.sigmoid(back.opacities), torch.sigmoid(ref.opacities), atol=0.5 / 255 + 1e-5)
    # codebooks: each decoded value is the nearest level of the stored codebook
    cb = torch.tensor(meta["scales"]["codebook"])
    nearest = cb[(ref.scales[..., None] - cb).abs().argmin(-1)]
    assert torch.allclose(back.scales, nearest, atol=1e-6)


def test_every_gaussian_is_present_once_after_a_round_trip(tmp_path):
    scene = small_scene(997, seed=5, sh_degree=0)  # 997 is prime: a padded grid
    ref, back, _ = _round_trip(scene, tmp_path)
    # match each decoded Gaussian to its nearest reference position: a bijection
    d = torch.cdist(back.means.double(), ref.means.double())
    match = d.argmin(1)
    assert torch.equal(torch.sort(match).values, torch.arange(len(scene)))


def test_sh_band_limit_and_presets(tmp_path):
    scene = small_scene(500, seed=3, sh_degree=3)
    _, back, meta = _round_trip(scene, tmp_path, sh_degree=1)
    assert back.sh_degree == 1 and meta["shN"]["bands"] == 1
    _, back0, meta0 = _round_trip(scene, tmp_path, sh_degree=0)
    assert back0.sh_degree == 0 and "shN" not in meta0
    opts = native.preset_options("small")
    ref, small, meta = _round_trip(scene, tmp_path, **opts)
    assert meta["means"]["bits"] == opts["means_bits"] and len(meta["scales"]["codebook"]) == opts["scale_levels"]
    q = torch.nn.functional.normalize(ref.quats, dim=1)
    assert float((q * small.quats).sum(1).abs().min()) > 0.99
    with pytest.raises(SogError, match="quality preset"):
        native.preset_options("ultra")


def test_bad_options_and_broken_meta_raise_sog_errors(tmp_path):
    scene = small_scene(100, seed=0, sh_degree=0)
    with pytest.raises(SogError, match="means_bits"):
        _round_trip(scene, tmp_path, means_bits=20)
    meta, files = native.encode(scene, 10, 10)
    with pytest.raises(SogError, match="version"):
        native.decode({**meta, "version": 99}, files.__getitem__)
    with pytest.raises(SogError, match="malformed"):
        native.decode({k: v for k, v in meta.items() if k != "means"}, files.__getitem__)
    with pytest.raises(SogError):
        PROFILES["sog"].decode(meta, lambda name: b"not an image")


def test_a_real_shared_scene_round_trips_natively(tmp_path):
    src = sog.load(shared_path("kacytran"))
    ref, back, _ = _round_trip(src, tmp_path, palette_size=512)
    assert len(back) == len(src)
    _, _, meta = _round_trip(src, tmp_path, palette_size=512)
    cb = torch.tensor(meta["sh0"]["codebook"])
    assert torch.allclose(back.sh0, cb[(ref.sh0[..., None] - cb).abs().argmin(-1)], atol=1e-6)
    rel = (back.means - ref.means).abs() / (ref.means.abs() + 1)
    assert float(rel.max()) < 1e-3
