"""Camera sets: the views that judge (`sog eval`, benchmarks) and the views that tune (rate search, presets,
importance) never share a pose; seeded views look at the scene from several distances, close-ups included."""

from __future__ import annotations

import pytest

import sog
from conftest import small_scene, write_cameras_json
from sog.render import orbit_cameras
from sog.render.cameras import CLOSE_DISTANCES, robust_bounds, scene_views, split_cameras
from sog.render import views
from sog.render.views import importance_views, judging_cameras, search_cameras, tuning_cameras


def poses(cams) -> set[tuple]:
    return {tuple(c.viewmat.flatten().round(decimals=5).tolist()) for c in cams}


def test_seeded_views_come_close_and_go_round_the_scene():
    s = small_scene(3000, seed=0)
    cams = scene_views(s.means, 12, "64x48", seed=0)
    assert len(cams) == 12 and all((c.width, c.height) == (64, 48) for c in cams)
    lo, hi = robust_bounds(s.means)
    centre, radius = (lo + hi) / 2, float((hi - lo).norm()) / 2
    close = [c for c in cams if c.name.endswith("close")]
    orbit = [c for c in cams if c.name.endswith("orbit")]
    assert len(close) == 8 and len(orbit) == 4
    for c in close:                     # near the centre, some inside the bounds; looking at a point near it
        assert 0.6 * radius - 0.21 * float((hi - lo).norm()) <= float((c.position - centre).norm()) \
            <= CLOSE_DISTANCES[1] * radius + 0.21 * float((hi - lo).norm())
    far = [float((c.position - centre).norm()) for c in orbit]
    assert min(far) > max(CLOSE_DISTANCES) * radius       # orbit views are farther than any close view
    assert len(poses(cams)) == 12


def test_seeded_views_are_reproducible_and_a_prefix_of_a_longer_list():
    s = small_scene(500, seed=1)
    assert poses(scene_views(s.means, 5, 32, seed=7)) == poses(scene_views(s.means, 5, 32, seed=7))
    assert poses(scene_views(s.means, 5, 32, seed=7)) <= poses(scene_views(s.means, 12, 32, seed=7))


@pytest.mark.parametrize("count", [1, 8, 12, 40])
def test_judging_and_tuning_views_share_no_pose(count):
    s = small_scene(800, seed=2)
    judging, source = judging_cameras(s, views=count, size=32)
    assert "seed 0" in source
    for tuning in (tuning_cameras(s, views=count, size=32), search_cameras(s, views=count, size=32),
                   importance_views(s, views=count, size=32)):
        assert len(tuning) == count and not poses(judging) & poses(tuning)


def test_the_default_sets_are_48_views_each_32_close_and_16_orbit_and_share_no_pose():
    """`sog eval`'s default (JUDGING_VIEWS at JUDGING_SIZE) and the rate search's (TUNING_VIEWS at TUNING_SIZE),
    and longer lists of both (a user's ``--views``): never one pose in common."""
    s = small_scene(800, seed=2)
    judging, _ = judging_cameras(s)
    tuning = search_cameras(s)
    assert (views.JUDGING_VIEWS, views.JUDGING_SIZE, views.TUNING_VIEWS) == (48, 512, 48) and views.TUNING_SIZE >= 256
    for cams, size in ((judging, views.JUDGING_SIZE), (tuning, views.TUNING_SIZE)):
        assert len(cams) == 48 and all((c.width, c.height) == (size, size) for c in cams)
        assert sum(c.name.endswith("close") for c in cams) == 32 and sum(c.name.endswith("orbit") for c in cams) == 16
        assert len(poses(cams)) == 48
    assert not poses(judging) & poses(tuning)
    longer = poses(judging_cameras(s, views=200, size=32)[0])
    assert not longer & poses(tuning_cameras(s, views=200, size=32))


def test_a_camera_file_is_split_into_disjoint_judging_and_tuning_subsets(tmp_path):
    s = small_scene(800, seed=3)
    cams = orbit_cameras(s.means, 20, "64x32")
    write_cameras_json(cams, tmp_path / "cameras.json", name="v{:02d}")
    sog.io.write_ply(s, tmp_path / "scene.ply")
    judging, source = judging_cameras(s, tmp_path / "scene.ply", views=50, size=64)
    tuning = tuning_cameras(s, tmp_path / "scene.ply", views=50, size=64)
    assert [c.name for c in judging] == ["v00", "v08", "v16"] and "judging subset" in source
    assert len(tuning) == 17 and not poses(judging) & poses(tuning)
    assert {c.name for c in judging} | {c.name for c in tuning} == {f"v{i:02d}" for i in range(len(cams))}
    assert [c.name for c in split_cameras(cams, "judging")] == [cams[i].name for i in (0, 8, 16)]


def test_compressing_with_a_psnr_target_and_importance_never_renders_a_judging_view(monkeypatch, tmp_path):
    """The tuning code paths (importance layers, the rate search) do not call `judging_cameras`, and every
    camera they render from is a tuning camera."""
    from sog.render import cpu

    s = small_scene(1000, seed=4, sh_degree=1)
    judged = poses(views.judging_cameras(s, views=12, size=512)[0]) | poses(views.judging_cameras(s)[0])
    monkeypatch.setattr(views, "judging_cameras", lambda *a, **k: pytest.fail("a tuning path asked for judging views"))
    seen = []
    real = cpu.render_one

    def spy(*args, **kwargs):
        seen.append(tuple(args[6].flatten().round(decimals=5).tolist()))
        return real(*args, **kwargs)

    monkeypatch.setattr(cpu, "render_one", spy)
    monkeypatch.setattr("sog.render.render_one", spy)
    monkeypatch.setattr("sog.render.importance.render_one", spy)
    # an unreachable target keeps the search short (a binary search down the ladder) but still probes by rendering
    opts = sog.CompressOptions(sort="morton", target_psnr=300, profile_options={"layers": 2, "layer_min": 500})
    sog.compress(s, tmp_path / "s.sog", opts, quiet=True)
    assert seen and not set(seen) & judged
