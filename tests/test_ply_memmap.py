"""Out-of-core PLY reading (`sog.io.ply_memmap`): a binary INRIA PLY memory-mapped, handed out as blocks of
positions or as rows, each block checked as a whole read checks the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData

from conftest import small_scene
from sog.errors import SogError
from sog.io import read_ply, write_ply
from sog.io.ply_memmap import PlyMemmap, memmappable, ply_layout


def assert_same(a, b):
    assert len(a) == len(b)
    for name, tensor in a.tensors().items():
        torch.testing.assert_close(tensor, b.tensors()[name], rtol=0, atol=0, msg=name)
    assert sorted(a.extras) == sorted(b.extras)


@pytest.mark.parametrize("degree", [0, 3])
def test_rows_and_positions_are_what_a_whole_read_gives(tmp_path, degree):
    scene = small_scene(300, sh_degree=degree)
    scene.extras["nx"] = torch.zeros(300)
    write_ply(scene, tmp_path / "s.ply")
    whole, ply = read_ply(tmp_path / "s.ply"), PlyMemmap(tmp_path / "s.ply")
    assert len(ply) == 300
    np.testing.assert_array_equal(ply.positions(block=7), whole.means.numpy())
    index = np.array([0, 5, 6, 150, 299])
    assert_same(ply.rows(index), whole.permute(torch.from_numpy(index)))
    assert_same(ply.rows(np.arange(300)), whole)


def test_a_nan_is_found_in_the_block_that_holds_it(tmp_path):
    write_ply(small_scene(100), tmp_path / "s.ply")  # the writer refuses NaN: the values are put in afterwards
    layout = ply_layout(tmp_path / "s.ply")
    rows = np.memmap(tmp_path / "s.ply", dtype=layout.dtype, mode="r+", offset=layout.offset, shape=(100,))
    rows["y"][40], rows["opacity"][70] = np.nan, np.inf
    rows.flush()
    del rows
    ply = PlyMemmap(tmp_path / "s.ply")
    with pytest.raises(SogError, match="NaN or Inf.*index 40"):
        ply.positions(block=16)
    with pytest.raises(SogError, match="opacities has 1 Gaussian"):
        ply.rows(np.arange(64, 100))
    assert len(ply.rows(np.arange(0, 32))) == 32  # a clean block reads


def test_a_truncated_file_is_refused_before_mapping(tmp_path):
    write_ply(small_scene(100), tmp_path / "s.ply")
    data = (tmp_path / "s.ply").read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[:-10])
    with pytest.raises(SogError, match="truncated"):
        PlyMemmap(tmp_path / "cut.ply")
    assert not memmappable(tmp_path / "cut.ply")


def test_rows_out_of_range_are_refused(tmp_path):
    write_ply(small_scene(10), tmp_path / "s.ply")
    with pytest.raises(SogError, match="out of range"):
        PlyMemmap(tmp_path / "s.ply").rows(np.array([3, 10]))


def test_only_the_plain_binary_little_endian_layout_maps(tmp_path):
    scene = small_scene(20)
    write_ply(scene, tmp_path / "le.ply")
    write_ply(scene, tmp_path / "text.ply", ascii=True)
    ply = PlyData.read(str(tmp_path / "le.ply"))
    ply.byte_order = ">"
    ply.write(str(tmp_path / "be.ply"))
    (tmp_path / "notes.txt").write_text("not a ply")
    assert memmappable(tmp_path / "le.ply")
    for name in ("text.ply", "be.ply", "notes.txt", "missing.ply"):
        assert not memmappable(tmp_path / name), name
    with pytest.raises(SogError, match="binary little-endian"):
        PlyMemmap(tmp_path / "be.ply")


def test_a_mapped_file_may_declare_more_rows_than_a_whole_read_allows(tmp_path):
    """Memory is the chunk's, not the file's: the count limit of a whole read does not apply (the header must
    still fit the file)."""
    from sog.io.limits import Limits

    write_ply(small_scene(300), tmp_path / "s.ply")
    with pytest.raises(SogError, match="more than sog's limit"):
        from sog.io.ply import check_ply_header
        check_ply_header(tmp_path / "s.ply", Limits(max_gaussians=100))
    assert len(PlyMemmap(tmp_path / "s.ply", Limits(max_gaussians=100)).positions()) == 300
