"""The differentiable tiled renderer (`render_tensors(..., backend="tiles")`, `sog.render.tiles`): the same
images as the reference path and the same gradients, for every attribute, as autograd through
`rasterize_pairs`; bit-for-bit the same gradients on every run and thread count."""

from __future__ import annotations

import pytest
import torch

from conftest import small_scene
from sog.errors import SogError
from sog.render import RasterConfig, look_at, render_tensors
from sog.render import tiles

pytestmark = pytest.mark.skipif(not tiles.available(), reason="the tiled kernel needs numba")

CAMERAS = [look_at([0.5, -1.0, -6.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0], 40, 36, 50.0),
           look_at([-3.0, -1.0, -4.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0], 33, 29, 60.0),
           look_at([0.0, 2.5, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], 24, 24, 70.0)]


def scene(boost: tuple[float, float]):
    """300 Gaussians at SH degree 3, log-scales and logit opacities raised by ``boost`` so that they overlap
    (with (1.0, 6.0) many pixels saturate: early termination and alpha clamped at 0.999)."""
    s = small_scene(300, seed=4, sh_degree=3)
    s.scales = s.scales + boost[0]
    s.opacities = s.opacities + boost[1]
    return s


def render_and_grads(s, backend: str, dtype: torch.dtype, config: RasterConfig, cameras=CAMERAS):
    """Images (one (H, W, 3) per camera) and the gradients of a loss that weighs every pixel and channel of the
    image and alpha differently, w.r.t. each raw attribute (means, quats, log-scales, logit opacities, sh0, shN)."""
    params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in s.tensors().items()}
    loss, images = 0, []
    for cam in cameras:
        n = cam.width * cam.height
        w = torch.linspace(-1, 1, 3 * n, dtype=dtype).view(cam.height, cam.width, 3)
        rgb, alpha = render_tensors(params["means"], params["quats"], params["scales"].exp(),
                                    torch.sigmoid(params["opacities"]), params["sh0"], params["shN"], cam,
                                    backend, config)
        loss = loss + (rgb * w).sum() + 0.3 * (alpha * w[..., 0].flip(0)).sum()
        images.append(rgb.detach())
    loss.backward()
    return images, {k: v.grad for k, v in params.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tile", [16, 5])
@pytest.mark.parametrize("boost", [(1.0, 2.0), (1.0, 6.0)])
def test_tiled_gradients_equal_autograd_through_the_pair_expansion(dtype, tile, boost):
    """Relative error (norm of the difference over the norm) at most 1e-4 for every attribute, in float32 as in
    float64; tiles of 5 px cut most boxes; a coloured background makes the transmittance count."""
    s = scene(boost)
    config = RasterConfig(background=(0.1, 0.2, 0.3), tile=tile)
    img_t, grad_t = render_and_grads(s, "tiles", dtype, config)
    img_p, grad_p = render_and_grads(s, "cpu", dtype, config)
    for a, b in zip(img_t, img_p):
        assert float((a - b).abs().max()) < (1e-5 if dtype == torch.float32 else 1e-10)
        assert float(a.sum(-1).gt(0.7).float().mean()) > 0.1                       # the views see the scene
    for name, g in grad_p.items():
        assert float(g.norm()) > 0, name
        assert float((grad_t[name] - g).norm() / g.norm()) <= 1e-4, name


def test_an_empty_view_renders_the_background_with_zero_gradients():
    s = scene((1.0, 2.0))
    away = look_at([0.0, 0.0, -6.0], [0.0, 0.0, -12.0], [0.0, -1.0, 0.0], 16, 12, 50.0)
    config = RasterConfig(background=(0.1, 0.2, 0.3))
    images, grads = render_and_grads(s, "tiles", torch.float32, config, [away])
    assert torch.allclose(images[0], torch.tensor([0.1, 0.2, 0.3]).expand(12, 16, 3))
    assert all(float(g.abs().sum()) == 0 for g in grads.values())


def test_tiled_gradients_are_the_same_bytes_on_every_run_and_thread_count():
    """Each tile writes its own gradient rows, summed in list order afterwards: no float atomics."""
    numba = pytest.importorskip("numba")
    s = scene((1.0, 6.0))
    config = RasterConfig(tile=8)
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in (before, 1, before):
            numba.set_num_threads(threads)
            runs.append(render_and_grads(s, "tiles", torch.float32, config)[1])
    finally:
        numba.set_num_threads(before)
    for other in runs[1:]:
        for name, g in runs[0].items():
            assert torch.equal(g, other[name]), name


def test_render_tensors_rejects_an_unknown_backend():
    s = small_scene(10)
    with pytest.raises(SogError, match="backend"):
        render_tensors(s.means, s.quats, s.scales.exp(), torch.sigmoid(s.opacities), s.sh0, s.shN, CAMERAS[0],
                       "nope")
