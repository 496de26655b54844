"""PLY reading and writing: the standard 3DGS layout, every SH degree, and clear errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from conftest import shared_path, small_scene
from sog.errors import SogError
from sog.io import load, read_ply, write_ply


def assert_same(a, b):
    assert len(a) == len(b)
    for name, tensor in a.tensors().items():
        torch.testing.assert_close(tensor, b.tensors()[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("ascii", [False, True])
def test_write_then_read_is_exact_for_every_sh_degree(tmp_path, degree, ascii):
    scene = small_scene(50, sh_degree=degree)
    write_ply(scene, tmp_path / "s.ply", ascii=ascii)
    back = read_ply(tmp_path / "s.ply")
    assert back.sh_degree == degree
    if ascii:  # ASCII stores decimal text; float32 survives to within rounding of the printed digits
        for name, tensor in scene.tensors().items():
            torch.testing.assert_close(back.tensors()[name], tensor, rtol=1e-6, atol=1e-6)
    else:
        assert_same(scene, back)


def test_big_endian_files_are_read(tmp_path):
    scene = small_scene(20)
    write_ply(scene, tmp_path / "le.ply")
    ply = PlyData.read(str(tmp_path / "le.ply"))
    ply.byte_order = ">"
    ply.write(str(tmp_path / "be.ply"))
    assert_same(read_ply(tmp_path / "be.ply"), scene)


def test_float32_records_read_in_blocks_and_mixed_types_per_column_give_the_same_scene(tmp_path):
    scene = small_scene(70_000, sh_degree=2)  # more than one 65,536-row block of the all-float32 path
    write_ply(scene, tmp_path / "f4.ply")
    v = PlyData.read(str(tmp_path / "f4.ply"))["vertex"].data
    mixed = np.empty(len(v), [(name, "<f8" if name == "opacity" else "<f4") for name in v.dtype.names])
    for name in v.dtype.names:
        mixed[name] = v[name]
    PlyData([PlyElement.describe(mixed, "vertex")]).write(str(tmp_path / "mixed.ply"))
    assert_same(read_ply(tmp_path / "f4.ply"), scene)
    assert_same(read_ply(tmp_path / "mixed.ply"), scene)


def test_f_rest_is_channel_major_like_inria(tmp_path):
    scene = small_scene(5, sh_degree=1)
    write_ply(scene, tmp_path / "s.ply")
    v = PlyData.read(str(tmp_path / "s.ply"))["vertex"]
    # f_rest_0..2 are the red coefficients of band 1, f_rest_3..5 the green ones.
    assert np.allclose(v["f_rest_1"], scene.shN[:, 1, 0].numpy())
    assert np.allclose(v["f_rest_3"], scene.shN[:, 0, 1].numpy())


def test_real_inria_ply_with_normals_reads_and_keeps_extras(tmp_path):
    path = shared_path("kacytran")
    scene = read_ply(path)
    assert len(scene) == 9080 and scene.sh_degree == 3
    assert set(scene.extras) == {"nx", "ny", "nz"}
    write_ply(scene, tmp_path / "out.ply")
    names = [p.name for p in PlyData.read(str(tmp_path / "out.ply"))["vertex"].properties]
    original = [p.name for p in PlyData.read(str(path))["vertex"].properties]
    assert names == original  # same property order as the INRIA writer
    assert_same(read_ply(tmp_path / "out.ply"), scene)


def _write_raw(path, fields: dict[str, np.ndarray]):
    rec = np.empty(len(next(iter(fields.values()))), dtype=[(k, "<f4") for k in fields])
    for k, v in fields.items():
        rec[k] = v
    PlyData([PlyElement.describe(rec, "vertex")]).write(str(path))


def _fields(n=4):
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    return {k: np.ones(n, np.float32) for k in names}


def test_missing_property_is_named(tmp_path):
    fields = _fields()
    del fields["scale_1"]
    _write_raw(tmp_path / "m.ply", fields)
    with pytest.raises(SogError, match="missing Gaussian property scale_1"):
        read_ply(tmp_path / "m.ply")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected_with_the_attribute_and_index(tmp_path, value):
    fields = _fields()
    fields["rot_2"][3] = value
    _write_raw(tmp_path / "n.ply", fields)
    with pytest.raises(SogError, match=r"quats has 1 Gaussian\(s\) with NaN or Inf values \(first at index 3\)"):
        read_ply(tmp_path / "n.ply")


def test_zero_gaussians_is_an_error(tmp_path):
    _write_raw(tmp_path / "z.ply", {k: v[:0] for k, v in _fields().items()})
    with pytest.raises(SogError, match="zero Gaussians"):
        read_ply(tmp_path / "z.ply")


def test_truncated_ply_is_an_error(tmp_path, sample_ply):
    data = sample_ply.read_bytes()
    (tmp_path / "t.ply").write_bytes(data[: len(data) // 2])
    with pytest.raises(SogError, match="not a readable PLY"):
        read_ply(tmp_path / "t.ply")


def test_wrong_file_type_is_an_error(tmp_path):
    (tmp_path / "x.txt").write_text("hello, I am not a scene\n")
    with pytest.raises(SogError, match="not a Gaussian-splat file"):
        load(tmp_path / "x.txt")


def test_uneven_f_rest_count_is_an_error(tmp_path):
    fields = _fields()
    fields.update({f"f_rest_{i}": np.zeros(4, np.float32) for i in range(7)})
    _write_raw(tmp_path / "r.ply", fields)
    with pytest.raises(SogError, match="f_rest"):
        read_ply(tmp_path / "r.ply")


def test_existing_output_is_refused_and_left_untouched(tmp_path):
    scene = small_scene(10)
    (tmp_path / "o.ply").write_bytes(b"keep me")
    with pytest.raises(SogError, match="already exists"):
        write_ply(scene, tmp_path / "o.ply")
    assert (tmp_path / "o.ply").read_bytes() == b"keep me"
    write_ply(scene, tmp_path / "o.ply", overwrite=True)
    assert len(read_ply(tmp_path / "o.ply")) == 10
