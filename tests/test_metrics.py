"""PSNR and SSIM: identical images are perfect, known differences give known values."""

from __future__ import annotations

import pytest
import torch

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
