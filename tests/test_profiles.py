"""Profiles: every profile's file for a fixed scene and options is the same bytes as before a refactor; the sogv2
default is plain SOG v2 with its values on coarser lattices inside the v2 fields.

The hashes were recorded from the code before the profile contract (`sog.codec.base`) was introduced
and must not change while the code is only moved: a refactor that changes one byte of a file fails here.
A deliberate format change updates the hash in the same commit and says why.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sog
from conftest import small_scene

#: case -> (source: "sample" = data/sample.ply, or a small synthetic scene; CompressOptions; sha256 prefix).
#: The layered hashes were re-recorded once, deliberately, when importance moved to per-view sensitivities from
#: tuning views at several distances with drops bounded by the worst view (issue 21); the sogv2 ones once more when
#: its default rung and scale weight were chosen on tuning views (scripts/tune_sogv2.py); both layered ones (the only
#: cases with an SH palette) once more when the palette's order stopped depending on the thread count
#: (`palette.order_palette`); the native default and layered ones when native's default colour levels went from
#: 256 to 181; the sogv2 ones when rotations got bits by Gaussian size (`sogv2.quat_bits_for`: the sample's and the
#: small scene's Gaussians are large for their position lattice, so they get 7-bit rotations); the native ones when
#: native files became version 5 (the SH palette as RGB texels, `native.palette_image`) and once more when its
#: default rung, scale weight and SH codebook were chosen on tuning views (scripts/tune_native.py; the --psnr ones
#: then, as the ladder got that rung, all native ones re-recorded at once); the sogv2 ones once more when its default
#: SH codebook went from 128 to 90 entries (a new rung, `sogv2.DEFAULT_LEVEL` 9); all of them once more when the bytes
#: stopped depending on the CPU's SIMD code path (tests/test_determinism.py); nothing else changed them.
FROZEN = {
    "native default": ("sample", dict(profile="sog"), "cb391245898c94ed"),
    "native high": ("sample", dict(profile="sog", quality="high"), "d2dc087c2e901578"),
    "playcanvas": ("sample", dict(profile="playcanvas"), "5c4faed3ceefb982"),
    "native layered": ("small", dict(profile="sog", profile_options={"layers": 3, "layer_min": 1000}),
                       "a0502717ab24bde0"),
    # recorded when the sogv2 profile was added: same input, options and seed -> same bytes
    "sogv2 default": ("sample", dict(profile="sogv2"), "99800f1d673e0763"),
    "sogv2 layered": ("small", dict(profile="sogv2", profile_options={"layers": 3, "layer_min": 1000}),
                      "2a79998bb02bca06"),
}
#: the same through the rate search (a dozen encode/render probes each: slow)
FROZEN_SLOW = {
    "native --psnr 40": ("sample", dict(profile="sog", target_psnr=40.0), "3ca590072e2f50b7"),
    "native layered --psnr 40": ("small", dict(profile="sog", target_psnr=40.0,
                                               profile_options={"layers": 3, "layer_min": 1000}),
                                 "8996c7d46daf61c4"),
}


def digest(tmp_path, sample_ply, source: str, options: dict) -> str:
    scene = sample_ply if source == "sample" else small_scene(3000, seed=1)
    out = tmp_path / "out.sog"
    sog.compress(scene, out, sog.CompressOptions(sort="morton", **options), overwrite=True, quiet=True)
    return hashlib.sha256(out.read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("case", list(FROZEN))
def test_each_profile_writes_the_same_bytes_as_before(tmp_path, sample_ply, case):
    source, options, expected = FROZEN[case]
    assert digest(tmp_path, sample_ply, source, options) == expected


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FROZEN_SLOW))
def test_the_rate_search_writes_the_same_bytes_as_before(tmp_path, sample_ply, case):
    source, options, expected = FROZEN_SLOW[case]
    assert digest(tmp_path, sample_ply, source, options) == expected


# -- the registry and the default --------------------------------------------------------------------------------

def test_the_default_profile_writes_a_plain_sog_v2_file_and_old_names_still_select_their_profile(tmp_path):
    from sog.codec import DEFAULT_PROFILE, get_profile
    from sog.io import read_container

    assert sog.CompressOptions().profile == DEFAULT_PROFILE == "sogv2"
    scene = small_scene(500, seed=2)
    sog.compress(scene, tmp_path / "d.sog", sog.CompressOptions(sort="morton"), quiet=True)
    meta = read_container(tmp_path / "d.sog")[0]
    assert meta["version"] == 2 and "profile" not in meta          # nothing a v2 reader does not know
    assert all(len(meta[k]["codebook"]) == 256 for k in ("scales", "sh0", "shN"))
    assert get_profile("sog") is get_profile("native")               # the native profile's former name
    sog.compress(scene, tmp_path / "n.sog", sog.CompressOptions(profile="sog", sort="morton"), quiet=True)
    assert read_container(tmp_path / "n.sog")[0]["profile"] == "sog"   # its files keep their meta.json id
    with pytest.raises(sog.SogError, match="unknown profile"):
        get_profile("webp")


# -- sogv2: lattices inside the fixed v2 fields -------------------------------------------------------------------

def _planes(path):
    from sog.codec.image import decode_image
    from sog.io import read_container

    meta, read, _ = read_container(path)
    n = meta["count"]
    return meta, {name: decode_image(read(name)).reshape(-1, 4)[:n] for name in
                  ("means_l.webp", "means_u.webp", "quats.webp", "sh0.webp", "scales.webp")}


def test_sogv2_stores_values_on_coarser_lattices_inside_the_v2_fields(tmp_path):
    scene = small_scene(2000, seed=3)
    opts = {"means_bits": 13, "quat_bits": 5, "opacity_bits": 6, "scale_levels": 64, "color_levels": 32,
            "quat_step_ratio": None}                                          # the lattices as given
    res = sog.compress(scene, tmp_path / "c.sog", sog.CompressOptions(sort="morton", profile_options=opts),
                       quiet=True)
    scene = scene.permute(res.order)                                           # file order
    meta, planes = _planes(tmp_path / "c.sog")
    assert not np.any(planes["means_l.webp"][:, :3] % 8)                       # 16 - 13 low bits are zero
    assert not np.any((planes["quats.webp"][:, :3].astype(int) - 128) % 4)     # every 4th code around the middle
    assert np.all(planes["quats.webp"][:, 3] == 252)                           # canonical: w is always dropped
    assert not np.any((255 - planes["sh0.webp"][:, 3].astype(int)) % 4)        # opacity: every 4th alpha from 255
    assert len(np.unique(planes["scales.webp"][:, :3])) <= 64 and len(np.unique(planes["sh0.webp"][:, :3])) <= 32
    back = sog.load(tmp_path / "c.sog")                                        # one step of 13 bits in log space
    lm = np.log1p(np.abs(scene.means.double().numpy())) * np.sign(scene.means.double().numpy())
    step = (lm.max(0) - lm.min(0)) / (2 ** 13 - 1) * 1.001
    lb = np.log1p(np.abs(back.means.double().numpy())) * np.sign(back.means.double().numpy())
    assert np.all(np.abs(lb - lm) <= step / 2 + 1e-6)


def test_sogv2_gives_positions_more_bits_when_the_gaussians_are_small_for_the_lattice(tmp_path):
    from sog.codec import sogv2, v2

    scene = small_scene(2000, seed=3)
    lmeans = v2.log_transform(scene.means.double().numpy())
    logs = scene.scales.double().numpy()

    def r(scales):  # how large the Gaussians are for a 13-bit lattice
        return sogv2.median_step_ratio(lmeans, scales, 13)

    base = sogv2.means_bits_for(r(logs), 13, None)
    assert base == 13                                                          # off: as given
    ratio = r(logs)                                                            # the lattice is meant for this scene
    assert sogv2.means_bits_for(r(logs), 13, ratio) == 13
    assert sogv2.means_bits_for(r(logs - np.log(4)), 13, ratio) == 15          # Gaussians 4x smaller: 2 bits more
    assert sogv2.means_bits_for(r(logs + np.log(64)), 13, ratio) == 13         # never fewer bits than asked
    assert sogv2.means_bits_for(r(logs - np.log(1e6)), 13, ratio) == 16        # at most the 16-bit field
    small = scene.permute(torch.arange(len(scene)))
    small.scales = small.scales - float(np.log(1e6))
    assert sogv2.quat_bits_for(r(small.scales.double().numpy()), 6, 0.05) == 6  # no extra rotation bits
    sog.compress(small, tmp_path / "s.sog", sog.CompressOptions(sort="morton"), quiet=True)
    _, planes = _planes(tmp_path / "s.sog")
    assert np.any(planes["means_l.webp"][:, :3] % 8)                          # the default's 13 bits were raised


def test_sogv2_rotations_are_the_same_covariances(tmp_path):
    from sog.splats import quat_to_rotmat

    scene = small_scene(800, seed=4, sh_degree=0)
    sog.compress(scene, tmp_path / "r.sog", sog.CompressOptions(sort="none", profile_options={"quat_bits": 8}),
                 quiet=True)
    back = sog.load(tmp_path / "r.sog")

    def cov(s):
        m = quat_to_rotmat(s.quats.double()) * torch.exp(s.scales.double())[:, None, :]
        return m @ m.transpose(1, 2)

    rel = (cov(back) - cov(scene)).norm(dim=(1, 2)) / cov(scene).norm(dim=(1, 2))
    assert float(rel.median()) < 0.05   # 8-bit codes and a 256-entry scale codebook; axes relabelled, not changed


def test_sogv2_layers_are_row_blocks_of_one_grid_each_at_its_own_depth(tmp_path):
    from sog.grid import grid_shape

    scene = small_scene(3000, seed=1)
    opts = {"layers": 3, "layer_min": 1000}
    res = sog.compress(scene, tmp_path / "l.sog", sog.CompressOptions(sort="morton", profile_options=opts),
                       quiet=True)
    height, width = grid_shape(3000)
    assert len(res.layers) == 3 and all(w == width for _, w in res.layers)
    assert sum(h for h, _ in res.layers) == height                 # the blocks tile the one v2 grid
    assert sorted(res.order.tolist()) == list(range(3000))         # every Gaussian once
    meta, planes = _planes(tmp_path / "l.sog")
    assert meta["count"] == 3000 and len(sog.load(tmp_path / "l.sog")) == 3000
    codes = (planes["means_u.webp"][:, :3].astype(np.int64) << 8) | planes["means_l.webp"][:, :3]  # 16-bit codes

    def lattice(rows):  # the step every stored position code of these rows is a multiple of
        return int(np.gcd.reduce(rows.reshape(-1)))
    ends = np.cumsum([0] + [h * width for h, _ in res.layers]).clip(max=len(scene))
    steps = [lattice(codes[a:b]) for a, b in zip(ends[:-1], ends[1:])]
    assert steps == sorted(steps) and steps[-1] > steps[0], steps  # each coarser block on a coarser lattice
    assert res.layout[-1][1]  # the last layer has drops


def test_sogv2_refuses_layers_that_leave_gaps_in_the_grid():
    from sog.codec import sogv2
    from sog.codec.base import Layer

    scene = small_scene(300, seed=5)
    with pytest.raises(sog.SogError, match="whole rows"):
        sogv2.encode_layers([Layer(scene.permute(torch.arange(0, 100)), 18, 6),
                             Layer(scene.permute(torch.arange(100, 300)), 18, 12)])


def test_sogv2_ladder_only_gets_coarser_and_the_default_sits_on_it():
    from sog.codec import sogv2

    for finer, coarser in zip(sogv2.LEVELS, sogv2.LEVELS[1:]):        # the rate search walks it one way
        assert all(coarser[k] <= finer[k] for k in finer) and coarser != finer, (finer, coarser)
    defaults = sogv2.Options()
    assert sogv2.LEVELS[sogv2.DEFAULT_LEVEL] == {k: getattr(defaults, k) for k in sogv2.LEVELS[0]}


def test_sogv2_psnr_search_reaches_its_target(tmp_path):
    res = sog.compress(small_scene(600, seed=13, sh_degree=1), tmp_path / "p.sog",
                       sog.CompressOptions(sort="morton", target_psnr=40.0), quiet=True)
    assert res.rate["reached"] and res.psnr >= 40.0
    coarse = [p for p in res.rate["tried"] if p["psnr"] >= 40.0]
    assert min(coarse, key=lambda p: p["bytes"])["settings"] == res.rate["settings"]  # the smallest that passes


def test_sogv2_quality_high_is_finer_and_larger(tmp_path):
    scene = small_scene(1500, seed=6)
    sizes = {q: sog.compress(scene, tmp_path / f"{q}.sog", sog.CompressOptions(sort="morton", quality=q),
                             quiet=True).bytes for q in ("default", "high")}
    assert sizes["high"] > sizes["default"]


def test_sogv2_gives_rotations_more_bits_when_the_gaussians_are_large_for_the_position_lattice(tmp_path):
    from sog.codec import sogv2, v2

    scene = small_scene(2000, seed=3)
    lmeans = v2.log_transform(scene.means.double().numpy())
    logs = scene.scales.double().numpy()

    def r(scales):  # how large the Gaussians are for a 13-bit lattice
        return sogv2.median_step_ratio(lmeans, scales, 13)

    ratio = r(logs)                                                            # the rotations are meant for this scene
    assert sogv2.quat_bits_for(r(logs), 5, None) == 5                          # off: as given
    assert sogv2.quat_bits_for(r(logs), 5, ratio) == 5
    assert sogv2.quat_bits_for(r(logs + np.log(2)), 5, ratio) == 6             # Gaussians 2x larger: 1 bit more
    assert sogv2.quat_bits_for(r(logs + np.log(4)), 5, ratio) == 7
    assert sogv2.quat_bits_for(r(logs - np.log(64)), 5, ratio) == 5            # never fewer bits than asked
    assert sogv2.quat_bits_for(r(logs + np.log(1e6)), 5, ratio) == 8           # at most every code
    opts = {"quat_bits": 5, "quat_step_ratio": ratio / 4}                       # this scene at ratio/4: no extra bit
    sog.compress(scene, tmp_path / "a.sog", sog.CompressOptions(sort="morton", profile_options=opts), quiet=True)
    _, planes = _planes(tmp_path / "a.sog")
    assert not np.any((planes["quats.webp"][:, :3].astype(int) - 128) % 4)     # 5 bits: every 4th code
    opts = {"quat_bits": 5, "quat_step_ratio": ratio * 2}                       # Gaussians large for it: one bit more
    sog.compress(scene, tmp_path / "b.sog", sog.CompressOptions(sort="morton", profile_options=opts), quiet=True)
    _, planes = _planes(tmp_path / "b.sog")
    codes = planes["quats.webp"][:, :3].astype(int) - 128
    assert not np.any(codes % 2) and np.any(codes % 4)                         # 6 bits: every 2nd code


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), level=st.sampled_from([0, 9, 19]), degree=st.sampled_from([0, 2]))
def test_sogv2_quantise_is_what_the_file_decodes_to(seed, level, degree):
    """`sogv2.quantise` (what the fine-tune's quantisation-aware steps train through) gives exactly the values the
    written file decodes to, row for row: the lossless WebP changes no value. The higher SH bands stay float."""
    from sog.codec import sogv2
    from sog.codec.base import Layer
    from sog.grid import grid_shape

    scene = small_scene(257, seed=seed, sh_degree=degree)
    options = sogv2.Options(**sogv2.LEVELS[level])
    h, w = grid_shape(len(scene))
    meta, files = sogv2.encode_layers([Layer(scene, w, h, {})], options)
    decoded = sogv2.decode(meta, files.__getitem__)
    quantised = sogv2.quantise(scene, options)
    for name in ("means", "quats", "scales", "opacities", "sh0"):
        assert torch.equal(getattr(quantised, name), getattr(decoded, name)), name
    assert torch.equal(quantised.shN, scene.shN)
    assert not torch.equal(quantised.means, scene.means)   # it did quantise
