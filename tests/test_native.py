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
from sog.codec import get_profile, native
from sog.codec.palette import order_palette
from sog.codec.quantize import codebook_1d, density_levels, scale_weights
from sog.codec.rotation import canonical_rotations
from sog.errors import SogError
from sog.io import read_container
from sog.evaluate import evaluate
from sog.metrics import SMALL_TARGET
from sog.render.views import search_cameras  # the search measures on tuning views, not sog eval's
from sog.pipeline import CompressOptions, compress


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 50), st.just(3)), elements=st.floats(-1e4, 1e4)),
       st.integers(16, 32).map(lambda half_bits: half_bits / 2))
def test_uniform_quantiser_error_is_at_most_half_a_step(x, bits):
    lo, hi = x.min(0), x.max(0)
    levels = native.level_count(bits)
    q = native.quantize_uniform(x, lo, hi, levels)
    assert q.max() < levels
    back = native.dequantize_uniform(q, lo, hi, levels)
    step = (hi - lo) / (levels - 1)
    assert np.all(np.abs(back - x) <= step / 2 + 1e-9 * (1 + np.abs(x)))


def test_palette_ordering_relabels_consistently():
    g = torch.Generator().manual_seed(0)
    cent, labels = torch.randn(50, 6, generator=g), torch.randint(0, 50, (500,), generator=g)
    c2, l2 = order_palette(cent, labels)
    assert torch.equal(c2[l2], cent[labels])
    proj = (c2 - c2.mean(0)) @ torch.linalg.svd(c2 - c2.mean(0), full_matrices=False)[2][0]
    assert bool((proj[1:] >= proj[:-1]).all()) or bool((proj[1:] <= proj[:-1]).all())


def test_palette_order_is_the_same_for_any_thread_count():
    """The palette's order decides the bytes of the centroid and label planes: same entries, same order, however
    many threads torch (and its BLAS) uses. A torch SVD here once ordered playbot's palette differently with 1 and
    2 threads."""
    g = torch.Generator().manual_seed(1)
    cent = torch.randn(65536, 24, generator=g) * torch.linspace(0.1, 1, 24)
    labels = torch.randint(0, 65536, (100000,), generator=g)
    before = torch.get_num_threads()
    try:
        orders = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            orders.append(order_palette(cent, labels))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(orders[0][0], orders[1][0]) and torch.equal(orders[0][1], orders[1][1])


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
    # rotations come back as their canonical (smallest-angle) equivalents, scale axes permuted to match
    q, s = (torch.from_numpy(a).float() for a in canonical_rotations(ref.quats.numpy(), ref.scales.numpy()))
    assert float((q * back.quats).sum(1).abs().min()) > 0.9999
    assert torch.allclose(torch.sigmoid(back.opacities), torch.sigmoid(ref.opacities), atol=0.5 / 255 + 1e-5)
    # codebooks: each decoded value is the nearest level of the stored codebook
    cb = torch.from_numpy(native.codebook_values(meta["scales"]["codebook"]))
    nearest = cb[(s[..., None] - cb).abs().argmin(-1)]
    assert torch.allclose(back.scales, nearest, atol=1e-6)


def test_half_bits_store_positions_and_rotations_on_round_2_to_the_bits_levels(tmp_path):
    scene = small_scene(700, seed=9, sh_degree=0)
    ref, back, meta = _round_trip(scene, tmp_path, means_bits=13.5, quat_bits=6.5)
    assert meta["means"]["levels"] == 11585 and meta["means"]["bits"] == 14 and meta["quats"]["levels"] == 89
    lmin, lmax = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])
    step = torch.tensor((lmax - lmin) / 11584, dtype=torch.float32)
    lref = torch.sign(ref.means) * torch.log1p(ref.means.abs())
    lback = torch.sign(back.means) * torch.log1p(back.means.abs())
    assert bool(((lref - lback).abs() <= step / 2 + 1e-5).all())
    coarser = ((lref - lback).abs() > (lmax.max() - lmin.min()) / 16383 / 2 + 1e-5).any()
    assert bool(coarser)                                  # 11,585 levels: coarser than 14 bits' 16,384
    q = torch.from_numpy(canonical_rotations(ref.quats.numpy(), ref.scales.numpy())[0]).float()
    assert float((q * back.quats).sum(1).abs().min()) > 0.999


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
    opts = native.preset_options("high")
    ref, high, meta = _round_trip(scene, tmp_path, **opts)
    assert meta["means"]["bits"] == opts["means_bits"] and meta["shN"]["count"] <= opts["palette_size"]
    assert native.preset_options("high")["means_bits"] > native.Options().means_bits
    q = torch.from_numpy(canonical_rotations(ref.quats.numpy(), ref.scales.numpy())[0]).float()
    assert float((q * high.quats).sum(1).abs().min()) > 0.9999
    with pytest.raises(SogError, match="quality preset"):
        native.preset_options("ultra")


def test_the_small_preset_reaches_40_db_at_p10_and_35_at_the_worst_view_and_is_smaller_than_the_default(tmp_path):
    scene = small_scene(9000, seed=4, sh_degree=3)  # a palette of N/12 entries at most (512)
    results = {}
    for quality in ("small", "default"):
        out = tmp_path / f"{quality}.sog"
        results[quality] = compress(scene, out, CompressOptions(profile="native", quality=quality, sort="morton",
                                                                search_views=12, search_size=64), quiet=True)
    small = results["small"]
    assert small.bytes < results["default"].bytes
    assert native.PRESET_TARGET["small"] == SMALL_TARGET
    assert small.rate["reached"] and small.rate["target"] == SMALL_TARGET.as_dict()
    judged = evaluate(scene, tmp_path / "small.sog", cameras=search_cameras(scene, views=12, size=64))
    assert judged["psnr_p10"] == pytest.approx(small.rate["stats"]["p10"], abs=1e-4) and judged["psnr_p10"] >= SMALL_TARGET.p10
    assert judged["psnr_min"] == pytest.approx(small.rate["stats"]["worst"], abs=1e-4) and judged["psnr_min"] >= SMALL_TARGET.worst


def test_bad_options_and_broken_meta_raise_sog_errors(tmp_path):
    scene = small_scene(100, seed=0, sh_degree=0)
    with pytest.raises(SogError, match="means_bits"):
        _round_trip(scene, tmp_path, means_bits=20)
    meta, files = native.encode(scene, 10, 10)
    with pytest.raises(SogError, match="version"):
        native.decode({**meta, "version": 99}, files.__getitem__)
    with pytest.raises(SogError, match="has no 'means'"):  # the meta check names what is missing
        native.decode({k: v for k, v in meta.items() if k != "means"}, files.__getitem__)
    with pytest.raises(SogError, match=r"means\.levels is 1048576"):
        native.decode({**meta, "means": {**meta["means"], "levels": 1 << 20}}, files.__getitem__)
    with pytest.raises(SogError, match="rotation levels"):
        native.decode({**meta, "quats": {**meta["quats"], "levels": 128}}, files.__getitem__)
    with pytest.raises(SogError):
        get_profile("sog").decode(meta, lambda name: b"not an image")


def test_a_real_shared_scene_round_trips_natively(tmp_path):
    src = sog.load(shared_path("kacytran"))
    ref, back, _ = _round_trip(src, tmp_path, palette_size=512)
    assert len(back) == len(src)
    _, _, meta = _round_trip(src, tmp_path, palette_size=512)
    cb = torch.from_numpy(native.codebook_values(meta["sh0"]["codebook"]))
    assert torch.allclose(back.sh0, cb[(ref.sh0[..., None] - cb).abs().argmin(-1)], atol=1e-6)
    m = meta["means"]
    if m["transform"] == "linear":   # within half a uniform step (kacytran's positions reach 1,000 units)
        step = (torch.tensor(m["maxs"]) - torch.tensor(m["mins"])) / (m["levels"] - 1)
        assert bool(((back.means - ref.means).abs() <= step / 2 + 1e-3).all())
    else:                            # within half a step of the log grid
        rel = (back.means - ref.means).abs() / (ref.means.abs() + 1)
        assert float(rel.max()) < 1e-3


# --- codebooks, palettes and error budgets (issue 4: rate and fidelity) ---

@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.integers(1, 400), elements=st.floats(-20, 5)), st.integers(2, 64))
def test_fit_levels_labels_every_value_with_its_nearest_ascending_level(values, k):
    cb, idx = native.fit_levels(values, k)
    assert cb.shape == (k,) and bool(np.all(np.diff(cb) >= 0))
    dist = np.abs(values[:, None] - cb[None, :].astype(np.float64))
    assert np.allclose(dist[np.arange(len(values)), idx.astype(np.int64)], dist.min(1), atol=1e-5)
    if len(np.unique(values.astype(np.float32))) <= k:  # few distinct values: kept exactly
        assert np.allclose(cb[idx], values.astype(np.float32))


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.integers(1, 400), elements=st.floats(-20, 5)), st.integers(2, 64),
       st.sampled_from([(0.0, 0.0), (0.15, 0.3), (1 / 3, 1 / 3)]))
def test_density_levels_label_every_value_with_its_nearest_ascending_level(values, k, density):
    weights = np.exp(values / 4)
    cb, idx = density_levels(values, k, weights, *density)
    assert cb.shape == (k,) and bool(np.all(np.diff(cb) >= 0))
    dist = np.abs(values[:, None] - cb[None, :].astype(np.float64))
    assert np.allclose(dist[np.arange(len(values)), idx.astype(np.int64)], dist.min(1), atol=1e-5)
    if len(np.unique(values.astype(np.float32))) <= k:  # few distinct values: kept exactly
        assert np.allclose(cb[idx], values.astype(np.float32))


def entropy_bits(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def test_evenly_spaced_levels_label_a_gaussian_in_fewer_bits_than_lloyds_at_the_same_error():
    # the labels are entropy-coded, so what counts is the labels' entropy at a given error, not the level count
    x = np.random.default_rng(0).normal(size=50000)
    cb, lab = codebook_1d(x, 64)
    lloyd_error, lloyd_bits = float(((cb[lab] - x) ** 2).mean()), entropy_bits(lab)
    for k in range(64, 200, 4):  # the fewest even levels with no more error
        cb, lab = density_levels(x, k)
        if ((cb[lab] - x) ** 2).mean() <= lloyd_error:
            break
    assert ((cb[lab] - x) ** 2).mean() <= lloyd_error
    assert entropy_bits(lab) < lloyd_bits - 0.1


def test_density_levels_put_levels_closer_where_the_weight_is():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 40000)
    weights = np.where(x > 0.5, 100.0, 1.0)             # errors above 0.5 cost 100 times more
    cb, lab = density_levels(x, 64, weights, 0.0, 0.5)
    err = np.abs(cb[lab] - x)
    assert err[x > 0.5].max() < err[x < 0.5].max() / 5  # steps ~ weight^-1/2: 10 times finer


def test_weighted_scale_codebook_fits_the_large_opaque_gaussians_closer():
    rng = np.random.default_rng(0)
    small = rng.normal(-6, 0.5, (20000, 3))          # many small Gaussians
    large = rng.uniform(-2.5, -1.0, (60, 3))           # a thin tail of large ones
    log_s = np.concatenate([small, large])
    opac = torch.zeros(len(log_s))                     # sigmoid 0.5 each
    err = {}
    for power in (0.0, 2.0):
        w = scale_weights(log_s, opac, power) if power else None
        cb, idx = native.fit_levels(log_s, 64, weights=w)
        err[power] = np.abs(cb[idx] - log_s)[-60:].max()
    assert err[2.0] < err[0.0] / 2


def test_an_already_palettised_source_keeps_its_sh_palette_exactly(tmp_path):
    scene = small_scene(2000, seed=7, sh_degree=2)
    rows = scene.shN[torch.arange(2000) % 300]      # 300 distinct SH rows, as a SOG source would have
    scene = sog.Splats(means=scene.means, scales=scene.scales, quats=scene.quats, opacities=scene.opacities,
                       sh0=scene.sh0, shN=rows.clone())
    ref, back, meta = _round_trip(scene, tmp_path, palette_size=256)
    assert meta["shN"]["count"] == 300
    cb = torch.from_numpy(native.codebook_values(meta["shN"]["codebook"]))
    nearest = cb[(ref.shN[..., None] - cb).abs().argmin(-1)]  # only the value codebook remains
    assert torch.allclose(back.shN, nearest, atol=1e-6)
    _, _, meta_k = _round_trip(scene, tmp_path, palette_size=256, exact_palette_per=0)
    assert meta_k["shN"]["count"] == 256


def test_a_large_sh3_palette_widens_its_image_past_webps_height_limit():
    n = 100_000
    scene = small_scene(n, seed=1, sh_degree=3)
    pal = torch.randn(25_000, 15, 3, generator=torch.Generator().manual_seed(0)) * 0.1
    scene = sog.Splats(means=scene.means, scales=scene.scales, quats=scene.quats, opacities=scene.opacities,
                       sh0=scene.sh0, shN=pal[torch.arange(n) % 25_000])
    meta, files = native.encode(scene, 317, 316, native.Options(effort=0, codecs=("webp",)))
    assert meta["shN"]["count"] == 25_000
    back = native.decode(meta, files.__getitem__)
    cb = torch.from_numpy(native.codebook_values(meta["shN"]["codebook"]))
    assert torch.allclose(back.shN, cb[(scene.shN[..., None] - cb).abs().argmin(-1)], atol=1e-6)


def test_tolerance_keeps_positions_within_their_budget_and_rounds_round_gaussians_to_identity(tmp_path):
    scene = small_scene(900, seed=2, sh_degree=0)
    scales = scene.scales.clone()
    scales[:300] = scales[:300, :1]                    # 300 exactly round Gaussians
    scene = sog.Splats(means=scene.means, scales=scales, quats=scene.quats, opacities=scene.opacities,
                       sh0=scene.sh0, shN=scene.shN)
    ref, back, meta = _round_trip(scene, tmp_path, tolerance=4.0)
    lmin, lmax = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])
    lmeans = np.sign(ref.means.double().numpy()) * np.log1p(np.abs(ref.means.double().numpy()))
    step = ((lmax - lmin) / ((1 << meta["means"]["bits"]) - 1) * np.exp(np.abs(lmeans))).mean(1)
    bound, _ = native.error_budget(ref, step, 4.0)
    err = (back.means - ref.means).abs().double().numpy()
    assert np.all(err <= bound[:, None] * 1.01 + step[:, None] + 1e-6)  # budget + the uniform half-steps
    round_ = torch.isclose(ref.scales[:, 0], ref.scales[:, 1]) & torch.isclose(ref.scales[:, 1], ref.scales[:, 2])
    assert int(round_.sum()) == 300
    ident = torch.tensor([1.0, 0, 0, 0])
    assert float((back.quats[round_] * ident).sum(1).abs().min()) > 0.9999
    _, plain, _ = _round_trip(scene, tmp_path)
    assert len(plain) == len(back) == len(scene)


def test_a_native_sog_deflates_its_meta_json_and_a_playcanvas_one_stores_it(tmp_path):
    import zipfile

    scene = small_scene(400, seed=2, sh_degree=1)
    for profile, expected in (("sog", zipfile.ZIP_DEFLATED), ("playcanvas", zipfile.ZIP_STORED)):
        out = tmp_path / f"{profile}.sog"
        compress(scene, out, CompressOptions(profile=profile, sort="morton"), quiet=True)
        with zipfile.ZipFile(out) as zf:
            info = zf.getinfo("meta.json")
            assert info.compress_type == expected
            assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist() if i.filename != "meta.json")
            # a fixed date on every entry: the same scene and options give the same bytes at any time
            assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert len(sog.load(out)) == 400


def test_a_version_1_file_with_smallest_three_rotations_still_decodes():
    scene = small_scene(400, seed=7, sh_degree=0)
    meta, files = native.encode(scene, 20, 20, native.Options(scale_levels=256))
    # rewrite it as version 1 wrote it: smallest-three quats (4 channels), no quats/bits entries
    from sog.codec.image import encode_image
    from sog.codec.v2 import pack_quats
    files = {**files, meta["files"]["quats"]: encode_image(
        pack_quats(scene.quats.double().numpy()).reshape(20, 20, 4), meta["files"]["quats"].rsplit(".", 1)[1])}
    v1 = {**meta, "version": 1, "scales": {"codebook": meta["scales"]["codebook"]}}
    v1.pop("quats")
    back = native.decode(v1, files.__getitem__)
    q = torch.nn.functional.normalize(scene.quats, dim=1)
    assert float((q * back.quats).sum(1).abs().min()) > 0.999
    v2 = native.decode(meta, files.__getitem__)
    assert torch.equal(back.means, v2.means) and torch.equal(back.opacities, v2.opacities)
    assert torch.equal(back.scales, v2.scales)  # the same 8-bit scales plane, read without a "bits" entry


def test_opacity_has_a_plane_of_its_own_and_files_with_it_in_the_alpha_of_sh0_still_decode():
    scene = small_scene(400, seed=8, sh_degree=0)
    meta, files = native.encode(scene, 20, 20, native.Options())
    from sog.codec.image import decode_image, encode_image
    assert "opacity" in meta["files"]
    assert decode_image(files[meta["files"]["sh0"]], "sh0", 4)[..., 3].min() == 255  # no alpha in sh0
    # rewrite it as files before the opacity plane were written: opacity in the alpha of sh0
    sh0 = decode_image(files[meta["files"]["sh0"]], "sh0", 3)
    alpha = decode_image(files[meta["files"]["opacity"]], "opacity", 1)
    old_files = {**files, "sh0.webp": encode_image(np.concatenate([sh0, alpha], 2), "webp")}
    old_meta = {**meta, "files": {k: v for k, v in meta["files"].items() if k != "opacity"}}
    old_meta["files"]["sh0"] = "sh0.webp"
    old, new = native.decode(old_meta, old_files.__getitem__), native.decode(meta, files.__getitem__)
    assert torch.equal(old.opacities, new.opacities) and torch.equal(old.sh0, new.sh0)
    assert float((torch.sigmoid(new.opacities) - torch.sigmoid(scene.opacities)).abs().max()) <= 0.5 / 255 + 1e-6


def test_positions_are_stored_linearly_unless_a_few_far_gaussians_stretch_the_box():
    scene = small_scene(500, seed=2, sh_degree=0)
    means = scene.means.clone()
    means[:3] *= 100                                   # three far Gaussians (a background)
    far = sog.Splats(**{**scene.tensors(), "means": means})
    for splats, transform in ((scene, "linear"), (far, "log")):
        meta, files = native.encode(splats, 23, 22)
        assert meta["means"]["transform"] == transform
        back = native.decode(meta, files.__getitem__)
        assert len(back) == 500
        if transform == "linear":   # one uniform step everywhere: error within half of it
            step = (np.array(meta["means"]["maxs"]) - np.array(meta["means"]["mins"])) / (meta["means"]["levels"] - 1)
            assert np.all(np.abs(back.means.double().numpy() - splats.means.double().numpy()) <= step / 2 + 1e-6)
    # a version-2 file (before the transform and the integer codebooks): log positions, codebooks as floats
    older = {**meta, "version": 2, "means": {k: v for k, v in meta["means"].items() if k != "transform"},
             "scales": {**meta["scales"], "codebook": native.codebook_values(meta["scales"]["codebook"]).tolist()},
             "sh0": {**meta["sh0"], "codebook": native.codebook_values(meta["sh0"]["codebook"]).tolist()}}
    again = native.decode(older, files.__getitem__)
    assert torch.equal(again.means, back.means) and torch.equal(again.scales, back.scales)
    with pytest.raises(SogError, match="means_transform"):
        native.encode(scene, 23, 22, native.Options(means_transform="cubic"))


def test_the_sh_palette_holds_each_coefficients_colours_in_one_texel_and_version_4_palettes_still_decode():
    from sog.codec.image import decode_image, encode_image

    scene = small_scene(600, seed=9, sh_degree=2)
    meta, files = native.encode(scene, 25, 24, native.Options(palette_size=256, palette_per=0))
    assert meta["version"] == 5 and meta["shN"]["layout"] == "rgb"
    k, c = 8, meta["shN"]["count"]
    image = decode_image(files[meta["files"]["shN_centroids"]], "shN_centroids", 3)
    assert image.shape == (-(-c // 64), 64 * k, 3)
    new = native.decode(meta, files.__getitem__)
    # rewrite it as version 4 wrote it: one grey row of 64 entries per coefficient and colour
    idx = image.reshape(-1, k, 3)[:c].transpose(0, 2, 1).reshape(c, 3 * k)
    rows = -(-c // 64)
    pal = np.zeros((rows * 64, 3 * k), np.uint8)
    pal[:c] = idx
    grey = pal.reshape(rows, 64, 3 * k).transpose(0, 2, 1).reshape(rows * 3 * k, 64, 1).repeat(3, axis=2)
    name = meta["files"]["shN_centroids"]
    v4 = {**meta, "version": 4, "shN": {key: v for key, v in meta["shN"].items() if key != "layout"}}
    old = native.decode(v4, {**files, name: encode_image(grey, name.rsplit(".", 1)[1])}.__getitem__)
    assert torch.equal(old.shN, new.shN) and torch.equal(old.sh0, new.sh0)
    assert float((new.shN - scene.shN).abs().max()) < float(scene.shN.abs().max())  # a palette of the scene's SH


def test_a_palettised_real_scene_keeps_its_sh_palette_when_it_has_up_to_n_over_1_5_distinct_rows(tmp_path):
    import json
    import zipfile

    path = shared_path("playbot-3_0")  # a SOG level: 31,000 Gaussians, 16,384 distinct SH rows
    scene = sog.load(path)
    distinct = torch.unique(scene.shN.reshape(len(scene), -1), dim=0).shape[0]
    assert len(scene) / 4 < distinct <= len(scene) / 1.5  # at N/4 this was k-means'ed to N/16 entries
    compress(scene, tmp_path / "n.sog", CompressOptions(profile="native", sort="morton"), quiet=True)
    with zipfile.ZipFile(tmp_path / "n.sog") as zf:
        meta = json.loads(zf.read("meta.json"))
    shn = meta["shN"] if "shN" in meta else meta["layers"][0]["shN"]
    assert shn["count"] == distinct
    back = sog.load(tmp_path / "n.sog")
    assert torch.unique(back.shN.reshape(len(back), -1), dim=0).shape[0] <= distinct
