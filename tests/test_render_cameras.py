"""Cameras: orbits look at the scene's centre from outside its bounds; INRIA cameras.json and COLMAP
models read back the poses they were written with."""

from __future__ import annotations

import struct

import pytest
import torch

from conftest import small_scene, write_cameras_json
from sog.errors import SogError
from sog.render import Camera, load_cameras, look_at, orbit_cameras, parse_size, select_views
from sog.render.cameras import detect_up, find_scene_cameras, robust_bounds


def project(cam: Camera, point: torch.Tensor) -> torch.Tensor:
    p = cam.viewmat[:3, :3] @ point + cam.viewmat[:3, 3]
    return torch.stack([cam.K[0, 0] * p[0] / p[2] + cam.K[0, 2], cam.K[1, 1] * p[1] / p[2] + cam.K[1, 2], p[2]])


def test_look_at_is_opencv_with_up_at_the_image_top():
    cam = look_at([0.0, 0.0, -4.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 64, 48)
    R = cam.viewmat[:3, :3]
    assert torch.allclose(R @ R.T, torch.eye(3), atol=1e-6) and float(torch.det(R)) == pytest.approx(1.0)
    assert torch.allclose(cam.position, torch.tensor([0.0, 0.0, -4.0]), atol=1e-6)
    centre, above = project(cam, torch.zeros(3)), project(cam, torch.tensor([0.0, 1.0, 0.0]))
    assert centre[:2].tolist() == pytest.approx([32.0, 24.0]) and float(centre[2]) == pytest.approx(4.0)
    assert float(above[1]) < 24.0             # world up is towards the top of the image (smaller row)


def test_orbit_views_surround_the_scene_centre_outside_its_bounds():
    s = small_scene(2000, seed=0)
    cams = orbit_cameras(s.means, 6, "80x60", up="-y")
    assert len(cams) == 6 and all((c.width, c.height) == (80, 60) for c in cams)
    lo, hi = robust_bounds(s.means)
    centre = (lo + hi) / 2
    dists = [float((c.position - centre).norm()) for c in cams]
    assert max(dists) - min(dists) < 1e-4 and min(dists) > float((hi - lo).norm()) / 2
    for c in cams:
        u, v, z = project(c, centre).tolist()
        assert u == pytest.approx(40.0, abs=1e-3) and v == pytest.approx(30.0, abs=1e-3) and z > 0
        assert float(c.position[1] - centre[1]) < 0       # elevated towards up = -y
    # all views are distinct
    assert len({tuple(c.position.round(decimals=4).tolist()) for c in cams}) == 6


def test_auto_up_picks_the_flattest_axis():
    flat_y = torch.randn(5000, 3) * torch.tensor([2.0, 0.1, 2.0])
    flat_z = torch.randn(5000, 3) * torch.tensor([2.0, 2.0, 0.1])
    assert detect_up(flat_y) == "-y" and detect_up(flat_z) == "+z"
    with pytest.raises(SogError):
        orbit_cameras(flat_y, 4, 32, up="sideways")


def test_size_parsing():
    assert parse_size(256) == (256, 256) and parse_size("320x240") == (320, 240) and parse_size("64") == (64, 64)
    with pytest.raises(SogError):
        parse_size("big")


def test_inria_cameras_json_round_trip(tmp_path):
    cams = orbit_cameras(small_scene(500).means, 3, "40x30")
    write_cameras_json(cams, tmp_path / "cameras.json", name="img{}")
    back = load_cameras(tmp_path / "cameras.json")
    assert [c.name for c in back] == ["img0", "img1", "img2"]
    for a, b in zip(cams, back):
        assert torch.allclose(a.viewmat, b.viewmat, atol=1e-5) and torch.allclose(a.K, b.K)
    assert find_scene_cameras(tmp_path / "scene.ply") == tmp_path / "cameras.json"
    assert [c.name for c in select_views(back, 2)] == ["img0", "img2"]


def _rot_to_qvec(R: torch.Tensor) -> list[float]:
    w = float(torch.sqrt(1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    return [w, float(R[2, 1] - R[1, 2]) / (4 * w), float(R[0, 2] - R[2, 0]) / (4 * w), float(R[1, 0] - R[0, 1]) / (4 * w)]


@pytest.mark.parametrize("binary", [False, True])
def test_colmap_model_gives_the_written_poses(tmp_path, binary):
    cam = look_at([0.3, -1.0, -4.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0], 40, 30, 60.0)
    q, t = _rot_to_qvec(cam.viewmat[:3, :3].double()), cam.viewmat[:3, 3].tolist()
    f, cx, cy = float(cam.K[0, 0]), 20.0, 15.0
    if binary:
        (tmp_path / "cameras.bin").write_bytes(struct.pack("<Q", 1) + struct.pack("<iiQQ", 1, 1, 40, 30)
                                               + struct.pack("<4d", f, f, cx, cy))
        (tmp_path / "images.bin").write_bytes(struct.pack("<Q", 1) + struct.pack("<i7di", 7, *q, *t, 1) + b"a.jpg\x00"
                                              + struct.pack("<Q", 1) + struct.pack("<ddq", 1.0, 2.0, -1))
    else:
        (tmp_path / "cameras.txt").write_text(f"# comment\n1 PINHOLE 40 30 {f} {f} {cx} {cy}\n")
        (tmp_path / "images.txt").write_text("# comment\n" + " ".join(str(v) for v in [7, *q, *t, 1, "a.jpg"])
                                             + "\n1.0 2.0 -1\n")
    (back,) = load_cameras(tmp_path)
    assert back.name == "a.jpg" and (back.width, back.height) == (40, 30)
    assert torch.allclose(back.viewmat, cam.viewmat, atol=1e-5) and torch.allclose(back.K, cam.K)


def test_bad_camera_files_are_one_line_errors(tmp_path):
    (tmp_path / "cameras.json").write_text("{not json")
    with pytest.raises(SogError):
        load_cameras(tmp_path / "cameras.json")
    with pytest.raises(SogError):
        load_cameras(tmp_path / "missing.json")
    with pytest.raises(SogError):
        load_cameras(tmp_path)                  # a folder without a COLMAP model


def test_orbit_cameras_do_not_depend_on_the_order_of_the_gaussians():
    # the rate search renders a scene in its layers' order, `sog eval` in the input's: both need one orbit
    means = torch.randn(300_000, 3) * torch.tensor([3.0, 1.0, 2.0])
    order = torch.randperm(len(means), generator=torch.Generator().manual_seed(0))
    for a, b in zip(orbit_cameras(means, 4, 64), orbit_cameras(means[order], 4, 64)):
        assert torch.equal(a.viewmat, b.viewmat) and torch.equal(a.K, b.K)
