"""`sog.attribution`: the original in a decoded file's order, with one attribute group at a time taken from the file."""

from __future__ import annotations

import pytest
import torch

import sog
from conftest import small_scene
from sog.attribution import GROUPS, match_order, matched, one_attribute_scenes
from sog.errors import SogError


def shuffled_and_coarsened(s, seed=0):
    """``s`` permuted, with its colours and positions rounded: what a sorted, quantised file decodes to."""
    perm = torch.randperm(len(s), generator=torch.Generator().manual_seed(seed))
    d = s.permute(perm)
    d.sh0 = torch.round(d.sh0 * 8) / 8
    d.means = torch.round(d.means * 1024) / 1024
    return d, perm


def test_the_match_recovers_the_permutation_of_a_quantised_file():
    s = small_scene(500, seed=3)
    d, perm = shuffled_and_coarsened(s)
    assert torch.equal(match_order(s, d), perm)


def test_each_scene_differs_from_the_original_in_its_own_group_only():
    s = small_scene(300, seed=1, sh_degree=2)
    d, perm = shuffled_and_coarsened(s)
    scenes = one_attribute_scenes(matched(s, d))
    assert set(scenes) == {"all", *GROUPS}
    base = s.permute(perm)
    for group, fields in GROUPS.items():
        for name, t in scenes[group].tensors().items():
            expected = getattr(d if name in fields else base, name)
            assert torch.equal(t, expected), (group, name)
    assert scenes["all"] is d


def test_a_scene_without_sh_rest_has_no_shN_group_and_a_sogv2_file_matches_one_to_one(tmp_path):
    s = small_scene(256, seed=2, sh_degree=0)
    sog.compress(s, tmp_path / "s.sog", sog.CompressOptions(sort="morton"), quiet=True)
    d = sog.load(tmp_path / "s.sog")
    scenes = one_attribute_scenes(matched(s, d))
    assert "shN" not in scenes and "sh0" in scenes
    assert torch.unique(match_order(s, d)).numel() == len(s)


def test_a_reduced_file_cannot_be_attributed():
    s = small_scene(100, seed=0)
    with pytest.raises(SogError, match="same count"):
        match_order(s, s.permute(torch.arange(50)))
