"""The antimatter15 .splat reader: matches splat-transform's reading, and rejects broken files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sog
from conftest import shared_path
from sog.errors import SogError
from sog.io.splat import RECORD, read_splat


def test_reads_real_capture_with_plausible_values():
    scene = read_splat(shared_path("plant"))
    assert len(scene) == 113648 and scene.sh_degree == 0
    assert torch.allclose(scene.quats.norm(dim=1), torch.ones(len(scene)), atol=1e-5)
    assert float(scene.scales.max()) < 5 and float(scene.scales.min()) > -20


def test_record_fields_decode_to_gsplat_conventions(tmp_path):
    rec = np.zeros(2, RECORD)
    rec["pos"] = [[1, 2, 3], [-1, 0, 0.5]]
    rec["scale"] = [[0.1, 0.2, 0.3], [1, 1, 1]]
    rec["rgba"] = [[255, 128, 0, 255], [128, 128, 128, 128]]
    rec["rot"] = [[255, 128, 128, 128], [128, 255, 128, 128]]
    rec.tofile(tmp_path / "two.splat")
    s = read_splat(tmp_path / "two.splat")
    torch.testing.assert_close(s.means[0], torch.tensor([1.0, 2, 3]))
    torch.testing.assert_close(s.scales[0], torch.log(torch.tensor([0.1, 0.2, 0.3])))
    colour = 0.5 + 0.28209479177387814 * s.sh0[0, 0]
    torch.testing.assert_close(colour, torch.tensor([1.0, 128 / 255, 0]), atol=1e-6, rtol=0)
    assert float(torch.sigmoid(s.opacities[1])) == pytest.approx(128 / 255, abs=1e-6)
    assert int(s.quats[0].abs().argmax()) == 0 and int(s.quats[1].abs().argmax()) == 1  # w first


def test_truncated_splat_is_an_error(tmp_path):
    data = shared_path("plant").read_bytes()[: 32 * 10 + 7]
    (tmp_path / "t.splat").write_bytes(data)
    with pytest.raises(SogError, match="not a multiple of 32"):
        sog.load(tmp_path / "t.splat")


def test_empty_splat_is_an_error(tmp_path):
    (tmp_path / "e.splat").write_bytes(b"")
    with pytest.raises(SogError, match="zero Gaussians"):
        sog.load(tmp_path / "e.splat")


def test_streamed_lod_meta_reads_the_full_resolution_level():
    lod = shared_path("playbot").parent.parent / "lod-meta.json"
    full = sog.load(shared_path("playbot"))
    scene = sog.load(lod)
    assert len(scene) == len(full) == 500000
    assert torch.equal(scene.means, full.means) and torch.equal(scene.shN, full.shN)
