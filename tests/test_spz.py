"""Reading .spz: splat-transform's files (v3 and v4) come back as the scene they were written from,
within SPZ's quantisation, in the PLY frame; broken files raise SogError."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import sog
from conftest import shared_path, small_scene
from sog.errors import SogError
from sog.io.spz import decode_spz, read_spz

def _write_spz(splat_transform, tmp_path, scene, version: int):
    ply = tmp_path / "in.ply"
    sog.save(scene, ply)
    out = tmp_path / f"out_v{version}.spz"
    splat_transform(ply, "--spz-version", version, out, timeout=120)
    return out


@pytest.mark.parametrize("version", [3, 4])
def test_splat_transform_spz_reads_back_as_its_source_within_spz_steps(tmp_path, splat_transform, version):
    scene = small_scene(400, seed=1, sh_degree=3)
    back = read_spz(_write_spz(splat_transform, tmp_path, scene, version))
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
    # higher SH: 8-bit (band 1 may be coarser); signs must follow the frame turn, so compare closely
    inside = scene.shN.abs() < 0.9
    assert float((back.shN - scene.shN)[inside].abs().max()) < 0.07


def test_spz_is_read_in_the_ply_frame_not_spz_rub(tmp_path, splat_transform):
    scene = small_scene(200, seed=2, sh_degree=1)
    path = _write_spz(splat_transform, tmp_path, scene, 4)
    raw = decode_spz(path.read_bytes(), ply_frame=False)
    assert torch.allclose(raw.means[:, 1], -scene.means[:, 1], atol=2 ** -12)
    assert torch.allclose(read_spz(path).means, scene.means, atol=2 ** -12)


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
