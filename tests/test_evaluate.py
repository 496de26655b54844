"""``sog eval``: a scene against itself is perfect; a degraded copy scores lower; sizes and ratios are the
compressed input's; the CLI prints the required JSON keys and writes side-by-side views on request."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import shared_path, small_scene, write_cameras_json
from sog.cli import main
from sog.errors import SogError
from sog.evaluate import evaluate, evaluation_cameras
from sog.io import write_ply
from sog.io.ply import inria_ply_size


@pytest.fixture
def scene_files(tmp_path):
    s = small_scene(400, seed=0, sh_degree=3)
    write_ply(s, tmp_path / "orig.ply")
    noisy = s.permute(torch.arange(len(s)))
    noisy.sh0 = noisy.sh0 + 0.3 * torch.randn(noisy.sh0.shape, generator=torch.Generator().manual_seed(0))
    write_ply(noisy, tmp_path / "noisy.ply")
    return tmp_path / "orig.ply", tmp_path / "noisy.ply"


def test_a_scene_against_itself_is_perfect(scene_files):
    orig, _ = scene_files
    r = evaluate(orig, orig, views=3, size=48, device="cpu")
    assert r["ssim"] == pytest.approx(1.0) and r["psnr"] == 100.0
    assert r["bytes"] == orig.stat().st_size and r["ply_bytes"] == orig.stat().st_size and r["ratio"] == 1.0
    assert r["bits_per_gaussian"] == pytest.approx(8 * orig.stat().st_size / 400)
    assert r["views"] == 3 and r["size"] == [48, 48] and r["cameras"] == "scene views (seed 0)"


def test_a_degraded_copy_scores_lower(scene_files):
    orig, noisy = scene_files
    r = evaluate(orig, noisy, views=10, size=48, device="cpu")
    assert 5 < r["psnr"] < 60 and 0 < r["ssim"] < 1
    assert len(r["psnr_views"]) == 10 and r["psnr_min"] == min(r["psnr_views"])
    assert r["psnr_min"] <= r["psnr_p10"] <= r["psnr"] and r["ssim_min"] <= r["ssim_p10"] <= r["ssim"]
    assert r["psnr_p10"] == pytest.approx(float(np.percentile(r["psnr_views"], 10)))


def test_by_default_eval_judges_on_48_views_at_512_px_32_of_them_close():
    cams, source = evaluation_cameras(None, small_scene(400, seed=0))
    assert len(cams) == 48 and {(c.width, c.height) for c in cams} == {(512, 512)} and source == "scene views (seed 0)"
    assert sum(c.name.endswith("close") for c in cams) == 32


def test_a_compressed_sog_is_measured_by_its_file_size_against_the_ply(tmp_path):
    import sog
    s = small_scene(400, seed=1, sh_degree=3)
    res = sog.compress(s, tmp_path / "s.sog", sog.CompressOptions(sort="morton"), quiet=True)
    r = evaluate(s, tmp_path / "s.sog", views=2, size=48, device="cpu")
    nbytes = (tmp_path / "s.sog").stat().st_size
    assert r["bytes"] == nbytes == res.bytes
    assert r["ratio"] == pytest.approx(inria_ply_size(400, 3) / nbytes)
    assert r["psnr"] > 25 and r["ssim"] > 0.9


def test_scenes_with_different_counts_are_still_compared(scene_files):
    orig, _ = scene_files
    import sog
    half = sog.load(orig).permute(torch.arange(0, 400, 2))
    r = evaluate(orig, half, views=2, size=48, device="cpu")
    assert r["count"] == 400 and r["count_compressed"] == 200 and r["bytes"] is None
    assert r["psnr"] < 100


def test_the_judging_subset_of_a_cameras_json_next_to_the_original_is_used(scene_files):
    orig, _ = scene_files
    from sog.render import orbit_cameras
    import sog
    cams = orbit_cameras(sog.load(orig).means, 10, "64x32")
    write_cameras_json(cams, orig.parent / "cameras.json")
    r = evaluate(orig, orig, views=5, size=32, device="cpu")
    assert "cameras.json" in r["cameras"] and r["size"] == [32, 16]
    assert r["view_names"] == ["v0", "v8"]                    # every 8th camera judges; the rest may tune


def test_cli_json_has_the_required_keys_and_saves_views(scene_files, tmp_path, capsys):
    orig, noisy = scene_files
    code = main(["eval", str(orig), str(noisy), "--views", "2", "--size", "40x32", "--json",
                 "--save-views", str(tmp_path / "views"), "--device", "cpu"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("bytes", "ratio", "bits_per_gaussian", "psnr", "ssim", "views", "size", "seconds"):
        assert key in out
    assert out["size"] == [40, 32]
    pngs = sorted((tmp_path / "views").glob("worst_*.png"))
    assert len(pngs) == 2
    from PIL import Image
    assert Image.open(pngs[0]).size == (3 * 40 + 8, 32)
    worst = out["view_names"][out["psnr_views"].index(out["psnr_min"])]
    assert pngs[0].name == f"worst_00_{worst}.png" == f"worst_00_{out['worst_view']}.png"   # worst view first


def test_cli_reports_bad_inputs_in_one_line(tmp_path, scene_files, capsys):
    orig, _ = scene_files
    assert main(["eval", str(orig), str(tmp_path / "missing.sog")]) == 2
    assert main(["eval", str(orig), str(orig), "--views", "0", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("sog: error:") for line in err)


def test_real_scene_against_itself(tmp_path):
    path = shared_path("kacytran")
    r = evaluate(path, path, views=2, size=32, device="cpu")
    assert r["ssim"] == pytest.approx(1.0) and r["count"] == 9080
    import sog
    from sog.render import orbit_cameras, render
    s = sog.load(path)
    img = render(s, orbit_cameras(s.means, 2, 32), device="cpu")
    assert float((img.sum(-1) > 0.05).float().mean()) > 0.05       # the orbit actually sees the scene


#: how far under splat-transform's (dB) the default file's mean and worst judging view may be on plant. Issue 21's
#: target is "at least splat-transform's": the margin only absorbs the renderer's float noise. Measured
#: (scripts/bench_fidelity.py --sort morton, seed-0 judging views, splat-transform 56.80 / 51.25 dB): the sogv2
#: default before its settings were chosen on tuning views (scripts/tune_sogv2.py) 53.34 / 44.71 dB, so this test
#: fails on that code; the chosen default 59.24 / 53.66 dB.
WORST_VIEW_MARGIN_DB = 0.1


@pytest.fixture(scope="module")
def plant_st_sog(tmp_path_factory, splat_transform):
    """splat-transform's .sog of plant (made once per module; skipped without the peer unless SOG_REQUIRE_PEERS=1)."""
    path = shared_path("plant")
    out = tmp_path_factory.mktemp("peer") / "plant_st.sog"
    splat_transform(path, out, timeout=900)
    return path, out


def test_on_plant_the_default_files_mean_and_worst_judging_view_hold_against_splat_transforms(plant_st_sog, tmp_path):
    """The default file must not buy its size with a broken view: on the judging views (close-ups included), its
    mean and its worst view are at least splat-transform's (less `WORST_VIEW_MARGIN_DB`). The sorter is Morton
    here: it sets the order of the Gaussians (the bytes), not their values (what the renders show)."""
    import sog
    from sog import metrics
    from sog.render import render
    from sog.render.views import judging_cameras

    path, st = plant_st_sog
    original = sog.load(path)
    sog.compress(original, tmp_path / "plant.sog", sog.CompressOptions(sort="morton"), quiet=True)
    cams, _ = judging_cameras(original)
    reference = render(original, cams, device="cpu")
    views = {name: metrics.view_psnrs(reference, render(sog.load(f), cams, device="cpu"))
             for name, f in (("ours", tmp_path / "plant.sog"), ("splat-transform", st))}
    mean = {name: sum(v) / len(v) for name, v in views.items()}
    worst = {name: min(v) for name, v in views.items()}
    assert worst["ours"] >= worst["splat-transform"] - WORST_VIEW_MARGIN_DB, worst
    assert mean["ours"] >= mean["splat-transform"] - WORST_VIEW_MARGIN_DB, mean


@pytest.mark.parametrize("kwargs, word", [({"views": 0}, "--views"), ({"size": 9000}, "--size"),
                                          ({"fov_deg": 180.0}, "--fov"), ({"fov_deg": float("nan")}, "--fov")])
def test_evaluate_refuses_bad_view_options_before_reading_anything(tmp_path, kwargs, word):
    """The Python API and `sog eval` share one check: nothing is loaded (the inputs need not even exist)."""
    with pytest.raises(SogError, match=word):
        evaluate(tmp_path / "missing.ply", tmp_path / "missing.sog", **kwargs)
