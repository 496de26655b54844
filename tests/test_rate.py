"""``--psnr``: the coarsest bit depths whose renders reach a target, measured as ``sog eval`` measures."""

from __future__ import annotations

import pytest

import sog
from conftest import shared_path, small_scene
from sog.errors import SogError
from sog.evaluate import evaluate
from sog.render.views import search_cameras  # the search measures on tuning views, not sog eval's
from sog.pipeline import CompressOptions, compress
from sog.codec import Layer, get_profile, native
from sog.grid import grid_shape
from sog.io import write_container
from sog.metrics import P10_BELOW, WORST_BELOW, RateTarget
from sog.rate import RateSearch
from sog.codec.native import LEVELS


#: the search's views in these tests of how it steps: fewer and smaller than its default judge (48 at 256 px), which
#: `test_the_search_judges_on_48_tuning_views_by_default` checks
VIEWS, SIZE = 12, 64


def _views(scene):
    return search_cameras(scene, views=VIEWS, size=SIZE)


def _at(scene, tmp_path, target, name="x.sog", **profile_options):
    out = tmp_path / name
    res = compress(scene, out, CompressOptions(profile="native", sort="morton", target_psnr=target,
                                               profile_options=profile_options, search_views=VIEWS,
                                               search_size=SIZE),
                   quiet=True, overwrite=True)
    return res, out


def test_the_written_file_reaches_the_target_and_the_next_coarser_level_measured_does_not(tmp_path):
    scene = small_scene(1500, seed=11, sh_degree=1)
    res, out = _at(scene, tmp_path, 55.0)                  # lands mid-list on this scene (level 7)
    assert res.rate["reached"] and res.psnr >= 55.0 and 0 < res.rate["level"] < len(LEVELS) - 1
    assert evaluate(scene, out, cameras=_views(scene))["psnr"] == pytest.approx(res.psnr, abs=1e-4)  # on its views
    chosen = res.rate["level"]
    ladder = [p for p in res.rate["tried"] if p["level"] is not None]
    for probe in ladder:
        assert probe["passed"] == (probe["level"] <= chosen)
    assert chosen == len(LEVELS) - 1 or any(p["level"] == chosen + 1 for p in ladder)
    assert len(sog.load(out)) == len(scene)


def test_the_second_stage_keeps_the_smallest_file_that_reaches_the_target(tmp_path):
    scene = small_scene(1500, seed=11, sh_degree=1)
    res, out = _at(scene, tmp_path, 55.0)
    tried = res.rate["tried"]
    chosen = next(p for p in tried if p["settings"] == res.rate["settings"])
    assert chosen["bytes"] == min(p["bytes"] for p in tried if p["passed"])
    assert res.bytes >= chosen["bytes"] and res.psnr == chosen["psnr"] >= 55.0
    steps = [p for p in tried if p["level"] is None]    # each one setting coarser than the level found
    assert steps and all(sum(p["settings"][k] != LEVELS[res.rate["level"]][k] for k in p["settings"]) >= 1
                         for p in steps)
    fixed, _ = _at(scene, tmp_path, 55.0, "fixed.sog", means_bits=14)   # a setting the caller fixed stays
    start = LEVELS[fixed.rate["level"]]["means_bits"]
    assert all(p["settings"]["means_bits"] == start for p in fixed.rate["tried"] if p["level"] is None)


def test_a_band_limit_applies_to_the_palette_the_search_reuses(tmp_path):
    scene = small_scene(1500, seed=11, sh_degree=3)
    res, out = _at(scene, tmp_path, 40.0, "bands.sog", sh_degree=1)
    back = sog.load(out)
    assert len(back) == 1500 and back.sh_degree == 1 and res.psnr >= 40.0


def test_a_higher_target_never_writes_a_smaller_file(tmp_path):
    scene = small_scene(1500, seed=12, sh_degree=0)
    low, _ = _at(scene, tmp_path, 40.0, "low.sog")
    high, _ = _at(scene, tmp_path, 60.0, "high.sog")
    assert high.rate["level"] <= low.rate["level"] and high.bytes >= low.bytes


def test_an_unreachable_target_writes_the_finest_level_and_says_so(tmp_path):
    res, out = _at(small_scene(600, seed=13, sh_degree=0), tmp_path, 200.0)
    assert res.rate == {**res.rate, "level": 0, "reached": False} and res.psnr < 200 and out.exists()


def test_psnr_is_refused_for_the_playcanvas_profile_before_any_work(tmp_path):
    out = tmp_path / "x.sog"
    with pytest.raises(SogError, match="does not apply to the playcanvas"):
        compress(small_scene(100), out, CompressOptions(profile="playcanvas", target_psnr=40.0), quiet=True)
    with pytest.raises(SogError, match="positive"):
        compress(small_scene(100), out, CompressOptions(profile="native", target_psnr=float("nan")), quiet=True)
    assert not out.exists()


def test_each_level_is_one_setting_coarser_and_the_default_sits_on_the_list():
    for finer, coarser in zip(LEVELS, LEVELS[1:]):
        changed = [k for k in finer if finer[k] != coarser[k]]
        assert len(changed) == 1 and coarser[changed[0]] < finer[changed[0]]
    defaults = native.Options()
    assert LEVELS[native.DEFAULT_LEVEL] == {k: getattr(defaults, k) for k in LEVELS[native.DEFAULT_LEVEL]}
    assert not set(native.PRESETS["small"]) & set(LEVELS[0])   # the small preset's bit depths come from a search


def test_after_the_half_steps_quarter_steps_spend_the_psnr_left_over_the_target(tmp_path):
    scene = small_scene(1500, seed=11, sh_degree=1)
    res, _ = _at(scene, tmp_path, 55.0)
    steps = [p for p in res.rate["tried"] if p["level"] is None]

    def quarter(p) -> bool:  # a setting a quarter step (not a half or whole one) from the ladder's values
        return any(p["settings"][k] % 0.5 for k in ("means_bits", "quat_bits"))
    assert any(quarter(p) for p in steps)
    first = next(i for i, p in enumerate(steps) if quarter(p))
    assert first > 0 and not any(quarter(p) for p in steps[:first])  # the half steps come first
    assert res.rate["settings"] == min((p for p in res.rate["tried"] if p["passed"]),
                                       key=lambda p: p["bytes"])["settings"]


def test_with_importance_layers_the_search_also_steps_one_layer_at_a_time(tmp_path):
    scene = small_scene(3000, seed=5, sh_degree=0)
    res, out = _at(scene, tmp_path, 50.0, layers=3, layer_min=1000)
    per_layer = [p for p in res.rate["tried"] if p["settings"].get("layer_steps")]
    assert per_layer    # probes that store one layer's attribute coarser (or finer) than the others
    for p in per_layer:
        assert len(p["settings"]["layer_steps"]) == 3 and all(len(row) == 4 for row in p["settings"]["layer_steps"])
    reaching = [p for p in res.rate["tried"] if p["passed"]]
    assert res.psnr >= 50.0 and res.rate["settings"] == min(reaching, key=lambda p: p["bytes"])["settings"]
    assert evaluate(scene, out, cameras=_views(scene))["psnr"] == pytest.approx(res.psnr, abs=1e-4)


def test_a_probe_passes_only_when_its_mean_p10_and_worst_view_all_reach_the_target(tmp_path):
    scene = small_scene(1500, seed=11, sh_degree=1)
    res, out = _at(scene, tmp_path, 55.0)
    assert res.rate["target"] == {"mean": 55.0, "p10": 55.0 - P10_BELOW, "worst": 55.0 - WORST_BELOW}
    for p in res.rate["tried"]:
        assert p["passed"] == (p["psnr"] >= 55.0 and p["p10"] >= 55.0 - P10_BELOW and p["worst"] >= 55.0 - WORST_BELOW)
    judged = evaluate(scene, out, cameras=_views(scene))  # the written file, on the search's views
    stats = res.rate["stats"]
    assert judged["psnr_p10"] == pytest.approx(stats["p10"], abs=1e-4)
    assert judged["psnr_min"] == pytest.approx(stats["worst"], abs=1e-4) and stats["worst"] >= 55.0 - WORST_BELOW


def test_a_higher_worst_view_floor_never_writes_a_smaller_file_and_is_held(tmp_path):
    scene = small_scene(1500, seed=12, sh_degree=0)
    mean_only = compress(scene, tmp_path / "m.sog", CompressOptions(profile="native", sort="morton", target_psnr=40.0,
                                                                  psnr_worst=1.0, search_views=VIEWS,
                                                                  search_size=SIZE), quiet=True)
    floor = mean_only.rate["stats"]["worst"] + 3.0   # a worst view the mean-only file misses
    held = compress(scene, tmp_path / "w.sog", CompressOptions(profile="native", sort="morton", target_psnr=40.0,
                                                             psnr_worst=floor, search_views=VIEWS, search_size=SIZE),
                   quiet=True)
    assert held.rate["reached"] and held.rate["stats"]["worst"] >= floor
    assert held.bytes > mean_only.bytes


def test_floors_alone_are_a_search_without_a_mean_target(tmp_path):
    res = compress(small_scene(600, seed=13, sh_degree=0), tmp_path / "f.sog",
                   CompressOptions(profile="native", sort="morton", psnr_p10=40.0, psnr_worst=35.0,
                                   search_views=VIEWS, search_size=SIZE), quiet=True)
    assert res.rate["target"] == {"mean": None, "p10": 40.0, "worst": 35.0}
    assert res.rate["reached"] and res.rate["stats"]["p10"] >= 40.0 and res.rate["stats"]["worst"] >= 35.0


def _chosen(res) -> dict:
    return next(p for p in res.rate["tried"] if p["settings"] == res.rate["settings"])


def test_the_bytes_the_search_chooses_on_are_the_written_file_s(tmp_path):
    """Its meta.json (three 256-entry codebooks) and the zip's headers count: on a small scene they are a large
    share of the file (the search once counted the planes alone)."""
    scene = small_scene(1500, seed=11, sh_degree=1)
    for name in ("x.sog", "folder"):  # the written file is the chosen probe's (encoded at the requested effort)
        res, out = _at(scene, tmp_path, 50.0, name)
        assert _chosen(res)["bytes"] == res.bytes


def test_on_kacytran_the_size_the_search_measured_is_the_written_file_s(tmp_path):
    """kacytran (SH 3, 9,080 Gaussians): the file was 6.5 % larger than the search's size for the same settings."""
    splats = sog.load(shared_path("kacytran"))
    height, width = grid_shape(len(splats))
    profile = get_profile("sogv2")
    search = RateSearch(profile, profile.ladder, [Layer(splats, width, height, {})], RateTarget(mean=50.0),
                        cameras=search_cameras(splats, views=3, size=64), device="cpu", refine_rounds=0)
    result = search.run()
    written = write_container(result.meta, result.files, tmp_path / "k.sog")
    chosen = next(p for p in result.tried if p["settings"] == result.settings)
    assert chosen["bytes"] == written


def test_the_search_judges_on_48_tuning_views_by_default(monkeypatch, tmp_path):
    """Without search_views/search_size the probes render `search_cameras`' default: 48 tuning views (32 close, 16
    orbit) at 256 px."""
    import sog.rate
    seen = []
    real = sog.rate.render

    def spy(splats, cameras, **kwargs):
        seen.append((len(cameras), cameras[0].width, sum(c.name.endswith("close") for c in cameras)))
        return real(splats, cameras, **kwargs)

    monkeypatch.setattr(sog.rate, "render", spy)
    res = compress(small_scene(300, seed=13, sh_degree=0), tmp_path / "d.sog",
                   CompressOptions(profile="native", sort="morton", target_psnr=300.0), quiet=True)
    assert seen and set(seen) == {(48, 256, 32)} and not res.rate["reached"]
