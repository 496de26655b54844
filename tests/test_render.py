"""The reference renderer: projection, colour, compositing order and termination follow gsplat's
conventions; the fast pair-expansion rasteriser equals a naive per-pixel loop; it is differentiable."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import small_scene
from sog.render import RasterConfig, look_at, render, render_tensors
from sog.render.cpu import project, quat_to_rotmat
from sog.render.sh import C0, C1, sh_to_rgb
from sog.splats import SH_C0, Splats

W, H = 48, 40


def scene(means, colours, scales=0.05, opacity=0.999, sh_degree=0) -> Splats:
    """Isotropic Gaussians with given means (N, 3) and RGB colours (N, 3)."""
    means = torch.as_tensor(means, dtype=torch.float32).reshape(-1, 3)
    n = means.shape[0]
    rgb = torch.as_tensor(colours, dtype=torch.float32).reshape(n, 3)
    k = {0: 0, 1: 3, 2: 8, 3: 15}[sh_degree]
    return Splats(means=means, scales=torch.full((n, 3), math.log(scales)), quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                  opacities=torch.full((n,), math.log(opacity / (1 - opacity))),
                  sh0=((rgb - 0.5) / SH_C0).reshape(n, 1, 3), shN=torch.zeros(n, k, 3))


def front_camera(width=W, height=H, fov=60.0):
    """Camera at z = -5 looking at the origin, image up = world -y (so world +x is image right)."""
    return look_at([0.0, 0.0, -5.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0], width, height, fov)


def test_single_gaussian_is_a_blob_at_its_projection_with_its_colour():
    cam = front_camera()
    s = scene([[0.4, -0.3, 0.0]], [[0.9, 0.3, 0.1]], scales=0.08)
    img = render(s, cam, backend="cpu", device="cpu")[0]
    p = cam.viewmat[:3, :3] @ s.means[0] + cam.viewmat[:3, 3]
    u = float(cam.K[0, 0] * p[0] / p[2] + cam.K[0, 2])
    v = float(cam.K[1, 1] * p[1] / p[2] + cam.K[1, 2])
    assert u > W / 2 and v < H / 2          # +x is image right; -y is up, so y = -0.3 is above the centre
    lum = img.sum(-1)
    iy, ix = divmod(int(lum.argmax()), W)
    assert abs(ix + 0.5 - u) <= 1.0 and abs(iy + 0.5 - v) <= 1.0
    peak = img[iy, ix]
    assert torch.allclose(peak / peak.max(), torch.tensor([0.9, 0.3, 0.1]) / 0.9, atol=1e-4)
    assert 0.85 < float(peak[0]) <= 0.9 * 0.999 + 1e-5
    # the blob falls off with distance and the far corner is the (black) background
    assert float(lum[iy, ix]) > float(lum[iy, min(ix + 4, W - 1)]) > float(lum[0, 0]) - 1e-9
    assert float(lum[0, 0]) == 0.0


def test_front_opaque_gaussian_hides_the_back_one_whatever_the_input_order():
    cam = front_camera()
    red_front = scene([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], scales=0.6)
    green_back_first = red_front.permute(torch.tensor([1, 0]))
    for s in (red_front, green_back_first):
        centre = render(s, cam, backend="cpu", device="cpu")[0, H // 2, W // 2]
        assert float(centre[0]) > 0.98 and float(centre[1]) < 0.01


def test_gaussians_behind_the_camera_or_off_image_draw_nothing_and_background_shows():
    cam = front_camera()
    s = scene([[0.0, 0.0, -6.0], [50.0, 0.0, 0.0]], [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], scales=0.3)
    img = render(s, cam, backend="cpu", device="cpu", config=RasterConfig(background=(0.2, 0.4, 0.6)))[0]
    assert torch.allclose(img, torch.tensor([0.2, 0.4, 0.6]).expand(H, W, 3))


def naive_render(s: Splats, cam, config=RasterConfig()) -> torch.Tensor:
    """gsplat's per-pixel loop, written plainly: every pixel walks all Gaussians front to back."""
    means, quats = s.means.double(), s.quats.double()
    scales, opac = s.scales.double().exp(), torch.sigmoid(s.opacities.double())
    R, t = cam.viewmat[:3, :3].double(), cam.viewmat[:3, 3].double()
    fx, fy, cx, cy = (float(v) for v in (cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]))
    campos = -R.T @ t
    colours = sh_to_rgb(s.sh0.double(), s.shN.double(), means - campos)
    pc = means @ R.T + t
    order = torch.argsort(pc[:, 2])
    img = torch.zeros(cam.height, cam.width, 3, dtype=torch.float64)
    splats = []
    for i in order.tolist():
        x, y, z = pc[i].tolist()
        if z < config.near or opac[i] < config.alpha_min:
            continue
        M = R @ quat_to_rotmat(quats[i:i + 1])[0] @ torch.diag(scales[i])
        cov = M @ M.T
        tx = z * min(max(x / z, -(cx / fx + 0.3 * 0.5 * cam.width / fx)), (cam.width - cx) / fx + 0.3 * 0.5 * cam.width / fx)
        ty = z * min(max(y / z, -(cy / fy + 0.3 * 0.5 * cam.height / fy)), (cam.height - cy) / fy + 0.3 * 0.5 * cam.height / fy)
        J = torch.tensor([[fx / z, 0, -fx * tx / z ** 2], [0, fy / z, -fy * ty / z ** 2]], dtype=torch.float64)
        cov2 = J @ cov @ J.T + config.eps2d * torch.eye(2, dtype=torch.float64)
        splats.append((fx * x / z + cx, fy * y / z + cy, torch.linalg.inv(cov2), float(opac[i]), colours[i]))
    for py in range(cam.height):
        for px in range(cam.width):
            T, c = 1.0, torch.zeros(3, dtype=torch.float64)
            for u, v, conic, o, col in splats:
                d = torch.tensor([u - px - 0.5, v - py - 0.5], dtype=torch.float64)
                alpha = min(config.alpha_max, o * math.exp(-0.5 * float(d @ conic @ d)))
                if alpha < config.alpha_min:
                    continue
                if T * (1 - alpha) <= config.t_min:
                    break
                c += col * alpha * T
                T *= 1 - alpha
            img[py, px] = c + T * torch.tensor(config.background, dtype=torch.float64)
    return img


@pytest.mark.parametrize("raster", [dict(tiled=False, chunk_pairs=50), dict(tiled=False, chunk_pairs=2_000_000),
                                    dict(tile=16), dict(tile=3)])
@pytest.mark.parametrize("boost", [(1.5, 2.0), (2.5, 8.0)])
def test_fast_rasterisers_equal_the_naive_per_pixel_loop(raster, boost):
    """Both the pair expansion (also split into many depth chunks) and the tiled kernel (also with tiles that cut
    every box), also when pixels saturate (the (2.5, 8.0) scene stops 40 of 480 pixels early at T <= 1e-4 and
    clamps alpha at 0.999)."""
    s = small_scene(60, seed=3, sh_degree=3)
    s.scales = s.scales + boost[0]        # big enough to overlap heavily
    s.opacities = s.opacities + boost[1]
    cam = look_at([0.5, -1.0, -6.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0], 24, 20, 50.0)
    config = RasterConfig(background=(0.1, 0.2, 0.3), **raster)
    fast = render(s, cam, backend="cpu", device="cpu", config=config)[0]
    slow = naive_render(s, cam, config)
    assert float(fast.sub(slow).abs().max()) < 1e-4


def test_sh_colour_uses_inria_basis_and_view_direction():
    sh0 = torch.zeros(2, 1, 3)
    shN = torch.zeros(2, 3, 3)
    shN[:, 0, :] = 0.5                      # the first degree-1 coefficient multiplies -C1 * y
    dirs = torch.tensor([[0.0, 2.0, 0.0], [0.0, -3.0, 0.0]])
    rgb = sh_to_rgb(sh0, shN, dirs)
    assert torch.allclose(rgb[0], torch.full((3,), max(0.5 - C1 * 0.5, 0.0)))
    assert torch.allclose(rgb[1], torch.full((3,), 0.5 + C1 * 0.5))
    assert torch.allclose(sh_to_rgb(torch.ones(1, 1, 3), torch.zeros(1, 15, 3), dirs[:1]), torch.full((1, 3), C0 + 0.5))
    assert torch.allclose(sh_to_rgb(sh0, shN, dirs, degree=0), torch.full((2, 3), 0.5))


def test_render_size_resizes_the_cameras():
    s = small_scene(200, seed=1)
    cam = front_camera(32, 32)
    img = render(s, cam, size="20x12", backend="cpu", device="cpu")
    assert img.shape == (1, 12, 20, 3)


def test_projection_culls_and_keeps_the_rest_with_their_indices():
    s = scene([[0.0, 0.0, 0.0], [0.0, 0.0, -5.5], [0.1, 0.0, 0.0]], [[1, 1, 1]] * 3)
    cam = front_camera()
    p = project(s.means, s.quats, s.scales.exp(), torch.sigmoid(s.opacities), cam.viewmat, cam.K, W, H)
    assert p.index.tolist() == [0, 2]
    assert torch.allclose(p.depths, torch.tensor([5.0, 5.0]))


def test_cpu_rasteriser_is_differentiable_in_every_parameter():
    s = small_scene(40, seed=2, sh_degree=1)
    cam = look_at([0.0, -1.0, -5.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0], 16, 16, 60.0)
    params = {k: v.clone().requires_grad_(True) for k, v in s.tensors().items()}

    def loss_of(p):
        rgb, _ = render_tensors(p["means"], p["quats"], p["scales"].exp(), torch.sigmoid(p["opacities"]),
                                p["sh0"], p["shN"], cam)
        return (rgb * torch.linspace(0, 1, 16)[:, None, None]).sum()

    loss = loss_of(params)
    loss.backward()
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0, name
    # finite differences agree for the (smooth) colour and opacity parameters
    for name, idx in (("sh0", (5, 0, 1)), ("opacities", (7,))):
        with torch.no_grad():
            plus = {k: v.detach().clone() for k, v in params.items()}
            minus = {k: v.detach().clone() for k, v in params.items()}
            plus[name][idx] += 1e-2
            minus[name][idx] -= 1e-2
            fd = (loss_of(plus) - loss_of(minus)) / 2e-2
        assert float(params[name].grad[idx]) == pytest.approx(float(fd), rel=0.05, abs=1e-3), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_and_gsplat_backends_agree():
    pytest.importorskip("gsplat")
    from sog.render import orbit_cameras
    from sog.metrics import psnr
    s = small_scene(3000, seed=0, sh_degree=3)
    cams = orbit_cameras(s.means, 3, 128)
    a = render(s, cams, backend="cpu", device="cuda")
    b = render(s, cams, backend="gsplat", device="cuda")
    assert float((a - b).abs().mean()) < 2e-3
    assert float(psnr(a, b).min()) > 40


def test_tiled_kernel_renders_a_real_scene_as_the_pair_expansion_does():
    """The fast path (tiles, culling, early termination) changes no image beyond float rounding, on a real scene
    from a close view that sees part of it, one from inside its bounds, and an orbit view."""
    from conftest import shared_path
    from sog.io import load
    from sog.render.views import judging_cameras

    s = load(shared_path("plant")).with_sh_degree(0)
    cams, _ = judging_cameras(s, views=3, size=64)
    tiled = render(s, cams, backend="cpu", device="cpu")
    pairs = render(s, cams, backend="cpu", device="cpu", config=RasterConfig(tiled=False))
    assert float(tiled.sub(pairs).abs().max()) < 1e-5
    assert float(tiled.sum(-1).gt(0.05).float().mean()) > 0.2       # the views see the scene
