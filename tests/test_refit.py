"""Re-fitting a reduced scene (`sog.train.refit`): a few distillation steps towards the original scene's renders
from tuning views lower the loss, change only colour, opacity and scales, are deterministic, and never read a
judging camera."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import small_scene
from sog.device import one_cpu_thread
from sog.errors import SogError
from sog.reduce import reduce
from sog.render import render, tiles
from sog.render.views import tuning_cameras
from sog.train.finetune import FinetuneConfig, distillation_loss
from sog.train.refit import RefitConfig, refit, refit_checked

pytestmark = pytest.mark.skipif(not tiles.available(), reason="the differentiable renderer needs numba")


def reduced_scene():
    """(original, reduced, tuning cameras): a small scene with 40 % of its Gaussians removed by `reduce`."""
    original = small_scene(300, seed=3, sh_degree=1)
    cams = tuning_cameras(original, None, views=4, size=40)
    return original, reduce(original, 180, cams, seed=0).splats, cams


def test_refit_lowers_the_tuning_views_distillation_loss():
    original, reduced, cams = reduced_scene()
    targets = render(original, cams, backend="cpu", device="cpu")
    loss = FinetuneConfig(smooth_weight=0.0)
    with one_cpu_thread():
        before, _ = distillation_loss(reduced, targets, cams, loss)
        fitted = refit(reduced, original, cams, RefitConfig(steps=12), seed=0)
        after, _ = distillation_loss(fitted.splats, targets, cams, loss)
    assert after < 0.95 * before, (before, after)             # measured: 0.91 of it
    assert len(fitted.splats) == len(reduced)


def test_refit_changes_only_colour_opacity_and_scales_unless_asked_for_the_means():
    original, reduced, cams = reduced_scene()
    with one_cpu_thread():
        fitted = refit(reduced, original, cams, RefitConfig(steps=4), seed=0).splats
        moved = refit(reduced, original, cams, RefitConfig(steps=4, means=True), seed=0).splats
    for name in ("means", "quats", "shN"):
        assert torch.equal(getattr(fitted, name), getattr(reduced, name)), name
    for name in ("sh0", "opacities", "scales"):
        assert not torch.equal(getattr(fitted, name), getattr(reduced, name)), name
    assert not torch.equal(moved.means, reduced.means)


def test_a_checked_refit_is_kept_where_views_it_did_not_train_on_say_it_helps():
    original = small_scene(300, seed=3, sh_degree=1)
    cams = tuning_cameras(original, None, views=8, size=40)
    fit, check = cams[:4], cams[4:]
    dimmed = dataclasses.replace(original, sh0=original.sh0 * 0.8)          # colours a re-fit can mend
    with one_cpu_thread():
        scene, report = refit_checked(dimmed, original, fit, check, RefitConfig(steps=12, lr_scale=1.0), seed=0)
    assert report["kept"] and report["after"]["p10"] > report["before"]["p10"]
    assert not torch.equal(scene.sh0, dimmed.sh0)


def test_a_checked_refit_that_hurts_the_other_views_is_dropped():
    original = small_scene(300, seed=3, sh_degree=1)
    cams = tuning_cameras(original, None, views=8, size=40)
    with one_cpu_thread():   # nothing to mend, and a rate that can only add noise
        scene, report = refit_checked(original, original, cams[:4], cams[4:], RefitConfig(steps=6, lr_scale=30.0),
                                      seed=0)
    assert not report["kept"] and scene is original
    assert report["after"]["mean"] < report["before"]["mean"]
    with pytest.raises(SogError):
        refit_checked(original, original, cams[:4], [])


def test_refit_is_deterministic_and_zero_steps_change_nothing():
    original, reduced, cams = reduced_scene()
    with one_cpu_thread():
        runs = [refit(reduced, original, cams, RefitConfig(steps=5), seed=7).splats for _ in range(2)]
        same = refit(reduced, original, cams, RefitConfig(steps=0), seed=7).splats
    for name, value in runs[0].tensors().items():
        assert torch.equal(value, getattr(runs[1], name)), name
        assert torch.equal(getattr(same, name), getattr(reduced, name)), name


def test_refit_never_reads_a_judging_camera(monkeypatch):
    import sog.render.views as views

    def refuse(*args, **kwargs):
        raise AssertionError("the re-fit read a judging camera")

    monkeypatch.setattr(views, "judging_cameras", refuse)
    original, reduced, cams = reduced_scene()
    with one_cpu_thread():
        fitted = refit(reduced, original, cams, RefitConfig(steps=2), seed=0)
    assert len(fitted.photometric) == 2


def test_bad_refit_settings_are_refused():
    with pytest.raises(SogError, match="re-fit"):
        RefitConfig(steps=-1)
    with pytest.raises(SogError, match="lr_scale"):
        RefitConfig(lr_scale=0)


def test_compress_reduce_refit_trains_on_tuning_views_only_and_is_off_by_default(tmp_path, monkeypatch):
    import sog
    import sog.render.views as views
    from sog.pipeline import CompressOptions

    def refuse(*args, **kwargs):
        raise AssertionError("compress --reduce read a judging camera")

    monkeypatch.setattr(views, "judging_cameras", refuse)
    s = small_scene(300, seed=2, sh_degree=1)
    plain = sog.compress(s, tmp_path / "plain.sog", CompressOptions(sort="morton", reduce=0.5), quiet=True)
    fitted = sog.compress(s, tmp_path / "fit.sog", CompressOptions(sort="morton", reduce=0.5, refit=4), quiet=True)
    assert "refit" in fitted.seconds and "refit" not in plain.seconds
    assert fitted.count == plain.count == 150
    again = sog.compress(s, tmp_path / "again.sog", CompressOptions(sort="morton", reduce=0.5, refit=4), quiet=True)
    assert again.count == 150 and (tmp_path / "again.sog").read_bytes() == (tmp_path / "fit.sog").read_bytes()


def test_the_cli_refits_when_asked_and_refuses_a_bad_step_count_in_one_line(tmp_path, capsys):
    import json

    from sog.cli import main
    from sog.io import write_ply

    write_ply(small_scene(50), tmp_path / "s.ply")
    assert main(["compress", str(tmp_path / "s.ply"), str(tmp_path / "ok.sog"), "--sort", "morton", "--reduce", "0.5",
                 "--refit", "2", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["count"], out["source_count"]) == (25, 50)
    assert main(["compress", str(tmp_path / "s.ply"), str(tmp_path / "o.sog"), "--reduce", "0.5",
                 "--refit", "-1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--refit" in err[0]
    assert not (tmp_path / "o.sog").exists()


def test_refit_without_a_reduction_is_refused_in_one_line_with_nothing_written(tmp_path, capsys):
    """--refit re-fits what a reduction keeps: alone it would silently do nothing, so it is an error."""
    from sog.cli import main
    from sog.io import write_ply
    from sog.pipeline import CompressOptions

    with pytest.raises(SogError, match="--reduce or --max-gaussians"):
        CompressOptions(refit=4)
    write_ply(small_scene(50), tmp_path / "s.ply")
    assert main(["compress", str(tmp_path / "s.ply"), str(tmp_path / "o.sog"), "--refit", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--reduce or --max-gaussians" in err[0]
    assert not (tmp_path / "o.sog").exists()
