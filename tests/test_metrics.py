"""PSNR and SSIM: identical images are perfect, known differences give known values; per-view statistics and the
targets a rate search holds them to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sog import metrics
from sog.errors import SogError
from sog.metrics import psnr, psnr_capped, ssim


def test_identical_images_have_infinite_psnr_and_ssim_one():
    img = torch.rand(2, 32, 40, 3, generator=torch.Generator().manual_seed(0))
    assert torch.isinf(psnr(img, img)).all()
    assert torch.allclose(ssim(img, img), torch.ones(2))
    assert psnr_capped(float(psnr(img[0], img[0]))) == 100.0


def test_psnr_of_a_uniform_offset():
    a = torch.full((16, 16, 3), 0.5)
    assert float(psnr(a, a + 0.1)) == pytest.approx(20.0, abs=1e-4)     # mse 0.01
    assert float(psnr(a, a + 0.01)) == pytest.approx(40.0, abs=1e-3)


def test_ssim_drops_with_noise_and_is_symmetric():
    gen = torch.Generator().manual_seed(1)
    img = torch.rand(48, 48, 3, generator=gen)
    little = (img + 0.02 * torch.randn(48, 48, 3, generator=gen)).clamp(0, 1)
    much = (img + 0.3 * torch.randn(48, 48, 3, generator=gen)).clamp(0, 1)
    s_little, s_much = float(ssim(img, little)), float(ssim(img, much))
    assert 1.0 > s_little > s_much > 0.0
    assert float(ssim(little, img)) == pytest.approx(s_little, abs=1e-6)


def test_ssim_of_a_constant_shift_is_the_luminance_term():
    # away from the zero-padded border, SSIM of two constant images is (2ab + C1) / (a² + b² + C1)
    c1 = 0.01 ** 2
    expected = (2 * 0.4 * 0.6 + c1) / (0.4 ** 2 + 0.6 ** 2 + c1)
    value = float(ssim(torch.full((1, 128, 128, 3), 0.4), torch.full((1, 128, 128, 3), 0.6)))
    assert value == pytest.approx(expected, abs=0.01)


def test_view_stats_are_the_mean_the_10th_percentile_and_the_worst_view():
    psnrs = [float(v) for v in range(30, 50)]       # 20 views, 30..49 dB
    stats = metrics.ViewStats.of(psnrs)
    assert stats.mean == pytest.approx(39.5) and stats.worst == 30.0
    assert stats.p10 == pytest.approx(float(np.percentile(psnrs, 10)))  # numpy's linear interpolation
    assert metrics.percentile([5.0], 10) == 5.0


def test_a_rate_target_is_met_only_when_every_floor_given_is_reached():
    stats = metrics.ViewStats(mean=50.0, p10=46.0, worst=41.0)
    assert metrics.RateTarget(mean=50.0).met(stats)                      # the mean alone: as --psnr once was
    assert not metrics.RateTarget(mean=50.0, worst=42.0).met(stats)       # one view too low fails it
    assert metrics.RateTarget(p10=46.0, worst=41.0).margin(stats) == 0.0
    assert metrics.RateTarget(mean=45.0, p10=40.0).margin(stats) == 5.0  # the least clearance
    assert metrics.RateTarget(mean=52.0, p10=40.0).margin(stats) == -2.0


def test_psnr_db_holds_the_mean_and_floors_on_the_10th_percentile_and_worst_view():
    target = metrics.RateTarget.for_psnr(50.0)
    assert target == metrics.RateTarget(50.0, 50.0 - metrics.P10_BELOW, 50.0 - metrics.WORST_BELOW)
    assert metrics.RateTarget.for_psnr(50.0, worst=30.0).worst == 30.0


@pytest.mark.parametrize("kwargs", [{}, {"mean": float("nan")}, {"p10": -1.0}, {"worst": 1000.0}])
def test_a_rate_target_without_a_floor_or_with_a_bad_one_is_refused(kwargs):
    with pytest.raises(SogError, match="target"):
        metrics.RateTarget(**kwargs)


def test_the_small_target_is_its_promise_plus_a_guard_for_unseen_views():
    """``--quality small`` searches above what it promises unseen views, by the guard tune_small_guard.py measured."""
    assert metrics.SMALL_PROMISE == metrics.RateTarget(p10=40.0, worst=35.0)
    assert metrics.SMALL_TARGET.p10 == metrics.SMALL_PROMISE.p10 + metrics.SMALL_GUARD_P10 > metrics.SMALL_PROMISE.p10
    assert metrics.SMALL_TARGET.worst == metrics.SMALL_PROMISE.worst + metrics.SMALL_GUARD_WORST
    assert metrics.SMALL_GUARD_WORST > 0 and metrics.SMALL_TARGET.mean is None
