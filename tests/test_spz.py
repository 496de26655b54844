"""Reading .spz: splat-transform's files (v3 and v4) come back as the scene they were written from, within SPZ's
quantisation, in the frame they were written in (3.x: the PLY's, unturned; docs/peers.md); broken files raise
SogError."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
import torch

import sog
from conftest import shared_path, small_scene
from sog.errors import SogError
from sog.io.spz import decode_spz, read_spz

#: splat-transform 3.x quantises higher SH to 5 bits in band 1 and 4 bits in bands 2-3 (its writer's defaults; the
#: bytes are multiples of 8 and 16): codes ``(c - 128) / 128`` rounded to buckets of 2^(8 - bits).
SH_BITS = {1: 5, 2: 4, 3: 4}


def _write_spz(splat_transform, tmp_path, scene, version: int):
    ply = tmp_path / "in.ply"
    sog.save(scene, ply)
    out = tmp_path / f"out_v{version}.spz"
    splat_transform(ply, "--spz-version", version, out, timeout=120)
    return out


def decode_spz_header(path) -> bytes:
    """The first 16 bytes of a .spz file's header (gunzipped for v2/v3)."""
    data = path.read_bytes()
    return gzip.decompress(data)[:16] if data[:2] == b"\x1f\x8b" else data[:16]


@pytest.mark.parametrize("version", [3, 4])
def test_splat_transform_spz_reads_back_as_its_source_within_spz_steps(tmp_path, splat_transform, version):
    scene = small_scene(400, seed=1, sh_degree=3)
    scene = replace(scene, shN=scene.shN * 10)  # up to about 0.7: every band spans many of its buckets
    path = _write_spz(splat_transform, tmp_path, scene, version)
    assert struct.unpack_from("<I", decode_spz_header(path), 4)[0] == version
    # splat-transform 3.x writes the PLY's own frame, unturned (test below): read it in that frame
    back = read_spz(path, ply_frame=False)
    assert len(back) == len(scene) and back.sh_degree == 3
    # positions: fixed point with 12 fractional bits by default
    assert torch.allclose(back.means, scene.means, atol=2 ** -12)
    # log scales: 1/16 steps inside the byte's range [-10, 5.9]
    inside = (scene.scales > -10) & (scene.scales < 5.9)
    assert torch.allclose(back.scales[inside], scene.scales[inside], atol=1 / 32 + 1e-5)
    # sh0 in colour bytes of 0.15 * sh0 + 0.5, where not clamped
    colour = scene.sh0 * 0.15 + 0.5
    ok = (colour > 0) & (colour < 1)
    assert torch.allclose(back.sh0[ok], scene.sh0[ok], atol=0.5 / 255 / 0.15 + 1e-4)
    # opacity in sigmoid bytes
    assert torch.allclose(torch.sigmoid(back.opacities), torch.sigmoid(scene.opacities), atol=0.5 / 255 + 1e-4)
    # rotations: same rotation (q ~ -q)
    q = torch.nn.functional.normalize(scene.quats, dim=1)
    assert float((q * back.quats).sum(1).abs().min()) > 0.999
    # higher SH: within half a bucket of each band's bits (plus the byte's own rounding), where not clamped
    for band, (lo, hi) in {1: (0, 3), 2: (3, 8), 3: (8, 15)}.items():
        inside = scene.shN[:, lo:hi].abs() < 0.9
        step = 2 ** (8 - SH_BITS[band]) / 128
        error = (back.shN - scene.shN)[:, lo:hi][inside].abs().max()
        assert float(error) <= step / 2 + 0.5 / 128 + 1e-6, (band, float(error))


def test_splat_transform_3_writes_spz_in_the_ply_frame_unturned(tmp_path, splat_transform):
    """splat-transform 3.x stores .spz with no frame conversion (the PLY's RDF axes as they are; 2.7.1 turned them
    into SPZ's RUB, y and z negated). sog reads a file in RUB by default and turns it back to the PLY frame, so a
    3.x file read by default comes back turned 180 degrees about x; ``ply_frame=False`` reads it as written."""
    scene = small_scene(200, seed=2, sh_degree=1)
    path = _write_spz(splat_transform, tmp_path, scene, 4)
    raw = decode_spz(path.read_bytes(), ply_frame=False)
    assert torch.allclose(raw.means, scene.means, atol=2 ** -12)
    turned = read_spz(path)
    assert torch.allclose(turned.means, scene.means * torch.tensor([1.0, -1.0, -1.0]), atol=2 ** -12)
    # and splat-transform reads its own file back unturned: the same scene as our raw reading
    splat_transform(path, tmp_path / "theirs.ply")
    theirs = sog.load(tmp_path / "theirs.ply")
    torch.testing.assert_close(theirs.means, raw.means, rtol=0, atol=1e-6)


def test_sog_load_dispatches_spz_files(tmp_path):
    n = 3
    body = struct.pack("<IIIBBBB", 0x5053474E, 2, n, 0, 8, 0, 0)
    body += bytes(9 * n) + bytes([128] * n) + bytes([128] * 3 * n) + bytes([160] * 3 * n) + bytes([128] * 3 * n)
    path = tmp_path / "tiny.spz"
    path.write_bytes(gzip.compress(body))
    scene = sog.load(path)
    assert len(scene) == 3 and scene.sh_degree == 0
    assert torch.allclose(scene.scales, torch.zeros(3, 3))  # 160/16 - 10
    assert torch.allclose(scene.means, torch.zeros(3, 3))


@pytest.mark.parametrize("data, message", [
    (b"", "too small"),
    (gzip.compress(b"XXXX" + bytes(20)), "bad magic"),
    (gzip.compress(struct.pack("<IIIBBBB", 0x5053474E, 9, 1, 0, 8, 0, 0)), "version 9"),
    (gzip.compress(struct.pack("<IIIBBBB", 0x5053474E, 2, 10, 0, 8, 0, 0) + bytes(5)), "truncated"),
    (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
])
def test_broken_spz_files_raise_a_one_line_sog_error(data, message):
    with pytest.raises(SogError, match=message):
        decode_spz(data)


def test_shared_spz_peer_output_matches_its_source_when_cached():
    """splat-transform's .spz of kacytran from a benchmark peer cache (``$SOG_PEER_CACHE/kacytran_st.spz``, the
    folder bench_compress.py's ``--peer-cache`` fills)."""
    src = shared_path("kacytran")
    spz = Path(os.environ.get("SOG_PEER_CACHE", "")) / "kacytran_st.spz"
    if not os.environ.get("SOG_PEER_CACHE") or not spz.exists():
        pytest.skip("no cached splat-transform .spz of the kacytran scene ($SOG_PEER_CACHE)")
    a, b = sog.load(src), sog.load(spz)
    assert len(a) == len(b)
    assert torch.allclose(a.means, b.means, atol=2 ** -12)
