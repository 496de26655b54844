"""A real outside reader: PlayCanvas splat-transform reads our .sog files, and we read theirs.

The peer is the splat-transform release pinned in package.json, run by the pinned Node 22 (sog/peers.py,
docs/peers.md). Skipped when they are not installed (``npm ci``), unless SOG_REQUIRE_PEERS=1 (as in .ci/run),
where a missing peer is a failure.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

import sog
from conftest import shared_path, small_scene
from sog.codec import playcanvas as pc
from sog.io import read_container


def assert_equal_scenes(a: sog.Splats, b: sog.Splats, atol: float):
    assert len(a) == len(b) and a.sh_degree == b.sh_degree
    for name, tensor in a.tensors().items():
        other = b.tensors()[name]
        if name == "quats":  # both are unit quaternions up to sign
            tensor, other = [torch.nn.functional.normalize(t, dim=1) for t in (tensor, other)]
            assert torch.all((tensor * other).sum(1).abs() > 1 - 1e-5)
            continue
        torch.testing.assert_close(tensor, other, rtol=1e-5, atol=atol, msg=name)


@pytest.mark.parametrize("source", ["sample", "kacytran"])
def test_splat_transform_decodes_our_sog_like_we_do(tmp_path, splat_transform, sample_ply, source):
    path = sample_ply if source == "sample" else shared_path("kacytran")
    sog.compress(path, tmp_path / "ours.sog", sog.CompressOptions(profile="playcanvas", sort="morton"), quiet=True)
    splat_transform(tmp_path / "ours.sog", tmp_path / "theirs.ply")
    ours = sog.decompress(tmp_path / "ours.sog")
    theirs = sog.load(tmp_path / "theirs.ply")
    assert_equal_scenes(ours, theirs, atol=1e-5)


def _default_roundtrip(tmp_path, splat_transform, source, options):
    """``source`` compressed with the default profile, converted by splat-transform to PLY: that PLY is what our
    decoder reads from the file (the same v2 codes, decoded the same way), and within quantisation of the input."""
    out = tmp_path / "default.sog"
    res = sog.compress(source, out, sog.CompressOptions(**options), quiet=True)
    meta = read_container(out)[0]
    assert meta["version"] == 2 and "profile" not in meta
    splat_transform(out, tmp_path / "theirs.ply")
    ours, theirs = sog.decompress(out), sog.load(tmp_path / "theirs.ply")
    assert_equal_scenes(ours, theirs, atol=1e-5)
    original = (sog.load(source) if not isinstance(source, sog.Splats) else source).permute(res.order)
    # positions: within half a lattice step in log space; the coarsest layer has 14 - 3 bits (2^5 16-bit codes)
    lo = pc.log_transform(original.means.double().numpy())
    step = (np.asarray(meta["means"]["maxs"]) - np.asarray(meta["means"]["mins"])) / 65535 * 2 ** 5
    assert np.all(np.abs(pc.log_transform(theirs.means.double().numpy()) - lo) <= step / 2 + 1e-9)
    # opacity within half a lattice step of the coarsest opacity lattice (8 bits: 1/510)
    assert torch.all((torch.sigmoid(original.opacities) - torch.sigmoid(theirs.opacities)).abs() <= 1 / 510 + 1e-6)
    return res


@pytest.mark.parametrize("source", ["sample", "kacytran", "layered"])
def test_splat_transform_converts_the_default_output_to_the_ply_our_decoder_reads(tmp_path, splat_transform,
                                                                                   sample_ply, source):
    if source == "layered":  # importance layers as row blocks of the one grid
        res = _default_roundtrip(tmp_path, splat_transform, small_scene(3000, seed=1),
                                 {"sort": "morton", "profile_options": {"layers": 3, "layer_min": 1000}})
        assert len(res.layers) == 3
    else:
        _default_roundtrip(tmp_path, splat_transform, sample_ply if source == "sample" else shared_path("kacytran"),
                           {"sort": "morton"})


@pytest.mark.slow
@pytest.mark.parametrize("scene", ["plant", "tarot", "playbot"])
def test_splat_transform_converts_the_default_output_of_every_shared_scene(tmp_path, splat_transform, scene):
    _default_roundtrip(tmp_path, splat_transform, shared_path(scene), {"sort": "morton"})


def test_splat_transform_reads_our_unbundled_folder(tmp_path, splat_transform):
    scene = small_scene(400, sh_degree=2)
    sog.compress(scene, tmp_path / "folder", sog.CompressOptions(profile="playcanvas", sort="morton"), quiet=True)
    splat_transform(tmp_path / "folder" / "meta.json", tmp_path / "theirs.ply")
    assert_equal_scenes(sog.decompress(tmp_path / "folder"), sog.load(tmp_path / "theirs.ply"), atol=1e-5)


def test_we_decode_playbot_exactly_as_splat_transform_does(tmp_path, splat_transform):
    meta = shared_path("playbot")
    splat_transform(meta, tmp_path / "theirs.ply")
    assert_equal_scenes(sog.load(meta), sog.load(tmp_path / "theirs.ply"), atol=0)


def test_we_decode_a_sog_that_splat_transform_wrote(tmp_path, splat_transform):
    src = shared_path("kacytran")
    original = sog.load(src)
    splat_transform(src, tmp_path / "theirs.sog")
    meta = read_container(tmp_path / "theirs.sog")[0]
    decoded = sog.load(tmp_path / "theirs.sog")
    assert len(decoded) == len(original) and decoded.sh_degree == 3
    # Every decoded Gaussian is matched to a distinct original within one 16-bit step per axis
    # (splat-transform truncates where we round): a perfect bipartite matching must exist.
    mins, maxs = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])

    def codes(s):
        return (pc.log_transform(s.means.double().numpy()) - mins) / (maxs - mins) * 65535

    a, b = codes(original), codes(decoded)
    near = cKDTree(b).sparse_distance_matrix(cKDTree(a), max_distance=1.01, p=np.inf).tocsr()
    near.data += 1e-9  # keep exact hits as edges
    rows, cols = min_weight_full_bipartite_matching(near)  # raises when no bijection exists
    match = np.empty(len(b), np.int64)
    match[rows] = cols
    # Attributes: compare pairs that are unambiguous (training clones can share a position code).
    alone = (np.diff(near.indptr) == 1) & (np.bincount(near.indices, minlength=len(a))[match] == 1)
    assert alone.mean() > 0.5
    keep = torch.from_numpy(np.flatnonzero(alone))
    o, d = original.permute(torch.from_numpy(match)[keep]), decoded.permute(keep)
    # Their encoder truncates opacity to 8 bits (we round): one full step.
    assert torch.all((torch.sigmoid(o.opacities) - torch.sigmoid(d.opacities)).abs() <= 1 / 255 + 1e-6)
    for name in ("scales", "sh0"):  # the nearest (or next) level of their 256-entry codebook
        cb = torch.tensor(meta[name]["codebook"])
        orig = getattr(o, name).reshape(-1)
        nearest = (orig[:, None] - cb[None]).abs().min(1).values
        gap = float(cb.diff().max())
        assert torch.all((getattr(d, name).reshape(-1) - orig).abs() <= nearest + gap + 1e-5), name


def test_we_read_splat_captures_as_splat_transform_does(tmp_path, splat_transform):
    src = shared_path("plant")
    splat_transform(src, tmp_path / "theirs.ply")
    assert_equal_scenes(sog.load(src), sog.load(tmp_path / "theirs.ply"), atol=1e-4)


def test_we_decode_compressed_ply_as_splat_transform_does(tmp_path, splat_transform):
    splat_transform(shared_path("kacytran"), tmp_path / "k.compressed.ply")
    splat_transform(tmp_path / "k.compressed.ply", tmp_path / "theirs.ply")
    ours = sog.load(tmp_path / "k.compressed.ply")
    assert ours.sh_degree == 3
    assert_equal_scenes(ours, sog.load(tmp_path / "theirs.ply"), atol=1e-6)
