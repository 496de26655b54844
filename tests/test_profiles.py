"""Profiles: every profile's file for a fixed scene and options is the same bytes as before a refactor.

The hashes were recorded from the code before the profile contract (`sog.codec.base`) was introduced
and must not change while the code is only moved: a refactor that changes one byte of a file fails here.
A deliberate format change updates the hash in the same commit and says why.
"""

from __future__ import annotations

import hashlib

import pytest

import sog
from conftest import small_scene

#: case -> (source: "sample" = data/sample.ply, or a small synthetic scene; CompressOptions; sha256 prefix)
FROZEN = {
    "native default": ("sample", dict(profile="sog"), "8324cff35244e203"),
    "native high": ("sample", dict(profile="sog", quality="high"), "a696c534e1831d9e"),
    "playcanvas": ("sample", dict(profile="playcanvas"), "836a222638dc8251"),
    "native layered": ("small", dict(profile="sog", profile_options={"layers": 3, "layer_min": 1000}),
                       "07b59ae297f0656d"),
}
#: the same through the rate search (a dozen encode/render probes each: slow)
FROZEN_SLOW = {
    "native --psnr 40": ("sample", dict(profile="sog", target_psnr=40.0), "4e1797020093bbde"),
    "native layered --psnr 40": ("small", dict(profile="sog", target_psnr=40.0,
                                               profile_options={"layers": 3, "layer_min": 1000}),
                                 "8ed00d0b54d89f23"),
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
