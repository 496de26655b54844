"""Writing .spz (v3): each quantiser and its dequantiser agree within the format's step, a written scene reads back
(sog's reader and splat-transform's) with every Gaussian, and what SPZ cannot hold is refused on one line."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import sog
from conftest import small_scene
from sog.cli import main
from sog.errors import SogError
from sog.io import spz_format as fmt
from sog.io.spz import decode_spz, read_spz
from sog.io.spz_writer import choose_fractional_bits, encode_spz, write_spz

finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(frac=st.integers(0, 20), data=st.data())
def test_positions_come_back_within_half_a_fixed_point_step(frac, data):
    limit = fmt.position_limit(frac)
    means = data.draw(arrays(np.float64, (5, 3), elements=st.floats(-limit, limit, **finite)))
    back = fmt.dequantise_positions(fmt.unpack_positions(fmt.pack_positions(fmt.quantise_positions(means, frac)), 5),
                                    frac)
    assert np.all(np.abs(back - means) <= 0.5 / (1 << frac) + 1e-9 * np.abs(means))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (6, 3), elements=st.floats(-9.9, 5.9, **finite)))
def test_log_scales_come_back_within_half_a_sixteenth(scales):
    assert np.all(np.abs(fmt.dequantise_scales(fmt.quantise_scales(scales)) - scales) <= 1 / 32 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (6, 3), elements=st.floats(-3.3, 3.3, **finite)))
def test_colours_come_back_within_half_a_byte_step(sh0):
    assert np.all(np.abs(fmt.dequantise_colour(fmt.quantise_colour(sh0)) - sh0) <= 0.5 / 255 / fmt.COLOR_SCALE + 1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (6,), elements=st.floats(-8, 8, **finite)))
def test_opacities_come_back_within_half_a_byte_of_alpha(opacity):
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    back = fmt.dequantise_alpha(fmt.quantise_alpha(opacity))
    assert np.all(np.abs(sigmoid(back) - sigmoid(opacity)) <= 0.5 / 255 + 1e-6)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (8, 4), elements=st.floats(-1, 1, **finite)).filter(
    lambda q: np.all(np.linalg.norm(q, axis=1) > 0.1)))
def test_rotations_come_back_as_the_same_rotation(quats):
    back = fmt.dequantise_rotations(fmt.quantise_rotations(quats))
    unit = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    # each of the three stored components is within half a 9-bit step of sqrt(1/2); the fourth follows
    assert np.all(np.abs((back * unit).sum(1)) > 1 - 2e-5)


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 8), sh=arrays(np.float64, (4, 3, 3), elements=st.floats(-0.99, 0.99, **finite)))
def test_sh_comes_back_within_half_its_lattice_step(bits, sh):
    codes = fmt.quantise_sh(sh, bits)
    step = 1 << (8 - bits)
    assert np.all(codes % step == 0)
    top = (255 // step * step - 128) / 128  # above the top lattice point the value is clamped to it
    assert np.all(np.abs(fmt.dequantise_sh(codes) - np.clip(sh, None, top)) <= step / 2 / 128 + 1e-12)


def test_a_written_scene_reads_back_within_spz_precision(tmp_path):
    scene = small_scene(500, seed=2, sh_degree=3)
    write_spz(scene, tmp_path / "s.spz", fractional_bits=12, sh_bits=(8, 8))
    back = read_spz(tmp_path / "s.spz")
    assert len(back) == len(scene) and back.sh_degree == 3
    assert torch.allclose(back.means, scene.means, atol=2 ** -13 + 1e-6)
    # rotations are written canonical, the scales permuted to match: each axis scale is one of the scene's within a
    # 16th step, and the covariances are the scene's within the scale and rotation steps
    inside = ((scene.scales > -10) & (scene.scales < 5.9)).all(1)
    assert torch.allclose(back.scales.sort(1).values[inside], scene.scales.sort(1).values[inside], atol=1 / 32 + 1e-5)
    a, b = _covariances(back)[inside], _covariances(scene)[inside]
    assert float(((a - b).norm(dim=(1, 2)) / b.norm(dim=(1, 2))).max()) < 0.1
    inside = scene.shN.abs() < 0.99
    assert float((back.shN - scene.shN)[inside].abs().max()) <= 0.5 / 128 + 1e-6


def _covariances(scene: sog.Splats) -> torch.Tensor:
    from sog.splats import quat_to_rotmat
    rot = quat_to_rotmat(scene.quats.double())
    return rot @ torch.diag_embed(torch.exp(2 * scene.scales.double())) @ rot.transpose(1, 2)


def test_the_file_is_a_v3_gzip_stream_and_the_same_scene_gives_the_same_bytes():
    scene = small_scene(200, seed=1, sh_degree=1)
    data = encode_spz(scene)
    assert data == encode_spz(scene)
    magic, version, n, degree = struct.unpack_from("<IIIB", gzip.decompress(data))
    assert (magic, version, n, degree) == (fmt.MAGIC, 3, 200, 1)


def test_coarser_sh_lattices_make_a_smaller_file():
    scene = small_scene(2000, seed=3, sh_degree=3)
    assert len(encode_spz(scene, sh_bits=(5, 4))) < len(encode_spz(scene, sh_bits=(8, 8)))


def test_fractional_bits_follow_the_gaussians_size_and_always_fit():
    scene = small_scene(400, seed=5, sh_degree=0)
    means, scales = scene.means.double().numpy(), scene.scales.double().numpy()
    small = choose_fractional_bits(means, scales)
    assert choose_fractional_bits(means * 8, scales + np.log(8)) == small - 3  # the same scene, 8x larger
    huge = means * 1e5
    bits = choose_fractional_bits(huge, scales)
    assert np.abs(huge).max() <= fmt.position_limit(bits)


def test_what_spz_cannot_hold_is_refused(tmp_path):
    scene = small_scene(50, seed=1, sh_degree=0)
    with pytest.raises(SogError, match="do not fit SPZ's 24-bit"):
        encode_spz(scene, fractional_bits=30)
    far = sog.Splats(**{**scene.tensors(), "means": scene.means * 0 + 1e7})
    with pytest.raises(SogError, match="do not fit SPZ's 24-bit"):
        write_spz(far, tmp_path / "far.spz")
    assert not (tmp_path / "far.spz").exists()


def test_compress_to_spz_writes_an_spz_that_reads_back_with_every_gaussian(tmp_path, sample_ply):
    assert main(["compress", str(sample_ply), str(tmp_path / "s.spz"), "-q"]) == 0
    assert (tmp_path / "s.spz").is_file() and (tmp_path / "s.spz").read_bytes()[:2] == b"\x1f\x8b"
    assert len(sog.load(tmp_path / "s.spz")) == len(sog.load(sample_ply))


def test_splat_transform_reads_our_spz_with_every_gaussian(tmp_path, splat_transform):
    """Its values are the file's own: splat-transform 3.10 reads (and writes) SPZ without the RDF <-> RUB turn
    that sog's reader and writer apply (docs/formats.md), so compare with the file's stored frame."""
    scene = small_scene(600, seed=7, sh_degree=3)
    write_spz(scene, tmp_path / "ours.spz")
    splat_transform(tmp_path / "ours.spz", tmp_path / "theirs.ply", timeout=120)
    theirs = sog.load(tmp_path / "theirs.ply")
    assert len(theirs) == len(scene) and theirs.sh_degree == 3
    stored = decode_spz((tmp_path / "ours.spz").read_bytes(), ply_frame=False)
    assert torch.allclose(theirs.means, stored.means, atol=1e-5)
    assert torch.allclose(theirs.scales, stored.scales, atol=1e-5)
    q = torch.nn.functional.normalize(theirs.quats, dim=1)
    assert float((q * stored.quats).sum(1).abs().min()) > 1 - 1e-4

def test_a_count_beyond_the_header_is_refused_before_writing(tmp_path, monkeypatch):
    from sog.io import spz_writer
    monkeypatch.setattr(spz_writer, "MAX_COUNT", 10)
    with pytest.raises(SogError, match="at most 10 Gaussians"):
        write_spz(small_scene(11, sh_degree=0), tmp_path / "s.spz")
    assert list(tmp_path.iterdir()) == []
