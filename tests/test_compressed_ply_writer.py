"""Writing .compressed.ply: each pack/unpack pair agrees within its step, a written scene reads back (sog's reader
and splat-transform's) with every Gaussian, within the chunk's quantisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from plyfile import PlyData

import sog
from conftest import small_scene
from sog.cli import main
from sog.errors import SogError
from sog.io import compressed_ply_format as fmt
from sog.io import compressed_ply_writer
from sog.io.compressed_ply_writer import write_compressed_ply
from sog.pipeline import stream_order

unit = st.floats(0, 1, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, (7, 3), elements=unit))
def test_11_10_11_words_come_back_within_half_a_step(t):
    back = fmt.unpack_111011(fmt.pack_111011(t))
    assert np.all(np.abs(back - t) <= 0.5 / np.array([2047, 1023, 2047]) + 1e-12)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, (7, 3), elements=unit), arrays(np.float64, (7,), elements=unit))
def test_colour_words_come_back_within_half_a_byte(rgb, alpha):
    back = fmt.unpack_colour(fmt.pack_colour(rgb, alpha))
    assert np.all(np.abs(back - np.concatenate([rgb, alpha[:, None]], 1)) <= 0.5 / 255 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (8, 4), elements=st.floats(-1, 1, allow_nan=False)).filter(
    lambda q: np.all(np.linalg.norm(q, axis=1) > 0.1)))
def test_rotation_words_come_back_as_the_same_rotation(quats):
    back = fmt.unpack_rotations(fmt.pack_rotations(quats))
    q = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    assert np.all(np.abs((back * q).sum(1)) > 1 - 1e-5)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, (20,), elements=st.floats(-3.9, 3.9, allow_nan=False)))
def test_sh_bytes_come_back_within_one_step(sh):
    back = fmt.dequantise_sh(fmt.quantise_sh(sh))
    inner = np.abs(sh) < 4 - 8 / 256  # the end codes decode to the ends of the range
    assert np.all(np.abs(back - sh)[inner] <= 0.5 * 8 / 256 + 1e-12)


@pytest.mark.parametrize("n", [1, 255, 256, 1000])
def test_a_written_scene_reads_back_with_every_gaussian_within_its_chunk_steps(tmp_path, n):
    scene = small_scene(n, seed=n, sh_degree=2)
    scene = scene.permute(stream_order(scene))
    path = tmp_path / "s.compressed.ply"
    write_compressed_ply(scene, path)
    back = sog.load(path)
    assert len(back) == n and back.sh_degree == 2
    chunk = PlyData.read(str(path))["chunk"].data
    assert len(chunk) == (n + 255) // 256
    for name, prefix in (("means", ""), ("scales", "scale_")):
        span = np.stack([chunk[f"max_{prefix}{a}"] - chunk[f"min_{prefix}{a}"] for a in "xyz"], 1)
        step = np.repeat(span, 256, 0)[:n] / np.array([2047, 1023, 2047])
        err = (back.tensors()[name] - scene.tensors()[name]).abs().numpy()
        assert np.all(err <= step / 2 + 1e-5), name
    q = torch.nn.functional.normalize(scene.quats, dim=1)
    assert float((q * back.quats).sum(1).abs().min()) > 1 - 1e-5
    inside = scene.shN.abs() < 3.9
    assert float((back.shN - scene.shN)[inside].abs().max()) <= 4 / 256 + 1e-5


def test_morton_order_makes_tighter_chunks_and_so_finer_positions(tmp_path):
    scene = small_scene(4000, seed=2, sh_degree=0)
    errors = {}
    for name, order in (("input", torch.randperm(4000, generator=torch.Generator().manual_seed(0))),
                        ("morton", None)):
        s = scene.permute(order if order is not None else stream_order(scene))
        write_compressed_ply(s, tmp_path / f"{name}.compressed.ply")
        errors[name] = float((sog.load(tmp_path / f"{name}.compressed.ply").means - s.means).abs().mean())
    assert errors["morton"] < errors["input"] / 2


def test_a_count_beyond_the_format_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(compressed_ply_writer, "MAX_COUNT", 10)
    with pytest.raises(SogError, match="at most 10 Gaussians"):
        write_compressed_ply(small_scene(11, sh_degree=0), tmp_path / "s.compressed.ply")
    assert list(tmp_path.iterdir()) == []


def test_compress_to_compressed_ply_is_not_a_plain_ply(tmp_path, sample_ply):
    out = tmp_path / "s.compressed.ply"
    assert main(["compress", str(sample_ply), str(out), "-q"]) == 0
    assert {e.name for e in PlyData.read(str(out)).elements} == {"chunk", "vertex", "sh"}
    assert len(sog.load(out)) == len(sog.load(sample_ply))


def test_splat_transform_reads_our_compressed_ply_with_every_gaussian(tmp_path, splat_transform):
    scene = small_scene(700, seed=9, sh_degree=3)
    write_compressed_ply(scene.permute(stream_order(scene)), tmp_path / "ours.compressed.ply")
    splat_transform(tmp_path / "ours.compressed.ply", tmp_path / "theirs.ply", timeout=120)
    theirs = sog.load(tmp_path / "theirs.ply")
    assert len(theirs) == 700 and theirs.sh_degree == 3
    assert torch.allclose(theirs.means, sog.load(tmp_path / "ours.compressed.ply").means, atol=1e-4)
