"""A real viewer: the PlayCanvas engine (npm ``playcanvas``, pinned in package.json) in headless Chromium.

Issue 17: the engine's own loader opens sog's SOG v2 output, and its screenshot matches its screenshot of the
original PLY. Issue 21 (item 4): sog's CPU renderer (the judge of ``sog eval``) agrees with the engine on the same
cameras, view-dependent SH colour included.

Skipped when chromium, playwright, node_modules/playcanvas or the pinned splat-transform (``npm ci``; sog/peers.py)
are missing, unless SOG_REQUIRE_PEERS=1 (as in .ci/run), where a missing peer is a failure.

Thresholds are the measured values (docs/evaluation.md#real-viewer-checks, ``scripts/bench_engine.py``) minus a
margin (SwiftShader is deterministic here, but the margin leaves room for another GPU/driver and for a coarser profile).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import sog
from conftest import peer_missing, shared_path, splat_transform_runner
from sog.metrics import psnr
from sog.render import RasterConfig, look_at, orbit_cameras, render
from sog.render.engine import ENGINE_EPS2D, EngineConfig, EngineRenderer, engine_camera, missing_peers

#: Every SOG v2 profile sog writes (files any v2 reader opens). A new v2 profile is one more name here.
V2_PROFILES = ["sogv2", "playcanvas"]  # the default first: it is what `sog compress` writes

#: Engine screenshot of our SOG v2 file vs the engine's screenshot of the original PLY: playbot level 3_0, two
#: orbit views at 256 px measured 57.4 and 57.7 dB with `--profile playcanvas`, and 49.8 and 50.1 dB for
#: splat-transform's own `.sog` of the same scene. 48 dB is the reference writer's figure less 2 dB, so a
#: rate-optimised profile may be coarser than ours today but not clearly worse than splat-transform's; a broken
#: file (a wrong codebook, an axis or a sign swapped) scores under 30.
V2_MIN_PSNR = 48.0
#: The screenshot is not blank: measured 20.1 and 20.5 % of pixels brighter than 0.05 (the original: the same).
MIN_COVERAGE = 0.10


def _peers_or_skip():
    missing = missing_peers()
    if missing:
        peer_missing("missing peers: " + ", ".join(missing))


@pytest.fixture(scope="module")
def engine():
    _peers_or_skip()


@pytest.fixture(scope="module")
def splat_transform():
    _peers_or_skip()
    return splat_transform_runner()  # the pinned one under the pinned Node 22 (sog/peers.py)


def _coverage(images: torch.Tensor) -> list[float]:
    """Per view, the fraction of pixels brighter than 0.05 in some channel (black background)."""
    return (images.amax(-1) > 0.05).float().mean((1, 2)).tolist()


def test_engine_camera_projects_points_where_the_sog_camera_does():
    torch.manual_seed(0)
    points = torch.randn(50, 3, dtype=torch.float64)
    for k in range(4):
        eye = torch.randn(3) * 4 + torch.tensor([0.0, 0.0, -6.0])
        cam = look_at(eye, torch.zeros(3), torch.randn(3), 320, 200, fov_deg=40 + 10 * k)
        cam.K[0, 2] += 7.5 * k          # an off-centre principal point and non-square pixels are kept too
        cam.K[1, 1] *= 1 + 0.05 * k
        view = engine_camera(cam, near=0.01, far=1e4)
        c2w = torch.tensor(view["c2w"], dtype=torch.float64).view(4, 4).T      # column-major on the page
        proj = torch.tensor(view["proj"], dtype=torch.float64).view(4, 4).T
        rot = c2w[:3, :3]
        assert torch.allclose(rot.T @ rot, torch.eye(3, dtype=torch.float64), atol=1e-5)
        assert float(torch.linalg.det(rot)) == pytest.approx(1.0, abs=1e-5)   # a rotation the engine can take
        homog = torch.cat([points, torch.ones(len(points), 1, dtype=torch.float64)], 1)
        clip = (proj @ torch.linalg.inv(c2w) @ homog.T).T
        ndc = clip[:, :2] / clip[:, 3:]
        u = (ndc[:, 0] + 1) / 2 * cam.width
        v = (1 - ndc[:, 1]) / 2 * cam.height                                  # GL y up, image rows down
        pc = (cam.viewmat.double() @ homog.T).T[:, :3]
        K = cam.K.double()
        front = pc[:, 2] > 0.1
        assert torch.allclose(u[front], (K[0, 0] * pc[:, 0] / pc[:, 2] + K[0, 2])[front], atol=1e-3)
        assert torch.allclose(v[front], (K[1, 1] * pc[:, 1] / pc[:, 2] + K[1, 2])[front], atol=1e-3)
        assert torch.all((clip[:, 3] > 0) == (pc[:, 2] > 0))                  # in front is in front


@pytest.mark.parametrize("profile", V2_PROFILES)
def test_the_engine_opens_our_sog_v2_and_it_looks_like_the_original(tmp_path, engine, splat_transform, profile):
    src = shared_path("playbot-3_0")          # 31,000 Gaussians, SH 2
    splats = sog.load(src)
    sog.save(splats, tmp_path / "original.ply")
    out = tmp_path / "out.sog"
    sog.compress(splats, out, sog.CompressOptions(profile=profile, sort="morton"), quiet=True)
    cams = orbit_cameras(splats.means, 2, 256)
    with EngineRenderer(tmp_path / "original.ply", 256) as r:
        reference = r.render(cams)
        assert r.load(out)["numSplats"] == len(splats)     # the engine's SOG loader read every Gaussian
        ours = r.render(cams)
    coverage = _coverage(ours)
    assert min(coverage) >= MIN_COVERAGE, coverage
    assert all(c >= 0.9 * ref for c, ref in zip(coverage, _coverage(reference))), coverage
    values = psnr(ours, reference).tolist()
    assert min(values) >= V2_MIN_PSNR, values
    # and the npm converter reads the same file
    splat_transform(out, tmp_path / "back.ply")
    back = sog.load(tmp_path / "back.ply")
    assert len(back) == len(splats) and back.sh_degree == splats.sh_degree


#: sog's CPU renderer vs the engine (float target, no size culling), one orbit view at 256 px, both with the
#: engine's 2D dilation (`ENGINE_EPS2D`): scene -> PSNR bound (what was measured in the comment). The rest of the
#: gap is the engine's kernel (cut at 2.83 sigma and rescaled to reach 0 there); with that emulated too the renders
#: agree to 55-69 dB.
JUDGE_SCENES = {
    "playbot-3_0": 42.0,   # SH 2; measured 45.3 and 44.4 dB on 2 views
    "kacytran": 37.0,      # SH 3; 40.8, 39.4 dB
}
#: How much better the engine agrees with sog's SH colour than with the same scene rendered without its higher
#: bands, or with band 1's signs flipped (measured: playbot 12-17 dB, kacytran 2.5-6.7 dB).
SH_MARGIN = {"playbot-3_0": 6.0, "kacytran": 1.5}
#: How much the engine's dilation gains over gsplat's 0.3 px² (measured: playbot 16.2-16.4 dB, kacytran 1.1-2.6).
DILATION_GAIN = {"playbot-3_0": 8.0, "kacytran": 0.5}


@pytest.mark.parametrize("scene", [
    "playbot-3_0", pytest.param("kacytran", marks=pytest.mark.slow)])
def test_sog_cpu_renderer_agrees_with_the_engine_sh_included(engine, scene):
    bound = JUDGE_SCENES[scene]
    splats = sog.load(shared_path(scene))
    cams = orbit_cameras(splats.means, 1, 256)
    with EngineRenderer(splats, 256, EngineConfig(float_target=True, min_pixel_size=0)) as r:
        reference = r.render(cams)
    config = RasterConfig(eps2d=ENGINE_EPS2D)
    ours = render(splats, cams, backend="cpu", config=config)
    agree = float(psnr(reference, ours).min())
    assert agree >= bound, agree
    no_sh = render(replace(splats, shN=torch.zeros_like(splats.shN)), cams, backend="cpu", config=config)
    flipped_sh = splats.shN.clone()
    flipped_sh[:, :3] *= -1                              # band 1 (y, z, x) with the opposite sign
    flipped = render(replace(splats, shN=flipped_sh), cams, backend="cpu", config=config)
    for other in (no_sh, flipped):
        assert agree >= float(psnr(reference, other).max()) + SH_MARGIN[scene]
    # and the dilation is the convention that differs most: with gsplat's 0.3 px² sog agrees much less
    gsplat_way = float(psnr(reference, render(splats, cams, backend="cpu")).max())
    assert agree >= gsplat_way + DILATION_GAIN[scene], (agree, gsplat_way)


#: The engine's render of sog's output vs its render of the original PLY, data/sample.ply (10,000 Gaussians, SH 3),
#: two orbit views at 128 px: measured 49.0 and 49.1 dB for the .compressed.ply (Morton order), 52.9 and 53.9 dB
#: for the streamed lod-meta.json (2 levels; the unified renderer, the only one that streams, on both sides).
FORMAT_MIN_PSNR = {"compressed-ply": 44.0, "lod": 46.0}
SAMPLE_COVERAGE = 0.15   # measured 27-28 % of pixels brighter than 0.05


def _sample_views(splats):
    return orbit_cameras(splats.means, 2, 128)


def test_the_engine_loads_sogs_compressed_ply_and_it_looks_like_the_original(tmp_path, engine, sample_ply):
    splats = sog.load(sample_ply)
    out = tmp_path / "out.compressed.ply"
    sog.compress(splats, out, sog.CompressOptions(sort="morton"), quiet=True)
    cams = _sample_views(splats)
    with EngineRenderer(sample_ply, 128) as r:
        reference = r.render(cams)
        assert r.load(out)["numSplats"] == len(splats)      # the engine's compressed-PLY loader read them all
        ours = r.render(cams)                              # (a page error would raise here)
    assert min(_coverage(ours)) >= SAMPLE_COVERAGE, _coverage(ours)
    values = psnr(ours, reference).tolist()
    assert min(values) >= FORMAT_MIN_PSNR["compressed-ply"], values


@pytest.mark.slow  # the two-level compress takes about a minute on a loaded 2-core machine
def test_the_engine_streams_sogs_lod_meta_json_and_it_looks_like_the_original(tmp_path, engine, sample_ply):
    """`sog compress IN OUT/lod-meta.json --lod 2`, opened by the engine's octree loader (the ``gsplat`` asset of
    a ``lod-meta.json``) and streamed by its unified renderer: every chunk file it asks for is served, the render
    waits until none is pending, and the image matches the engine's render of the original."""
    import subprocess
    import sys

    out = tmp_path / "lod" / "lod-meta.json"
    subprocess.run([sys.executable, "-m", "sog.cli", "compress", str(sample_ply), str(out), "--lod", "2",
                    "--sort", "morton", "-q"], check=True, capture_output=True, timeout=600)
    splats = sog.load(sample_ply)
    cams = _sample_views(splats)
    with EngineRenderer(sample_ply, 128, EngineConfig(unified=True)) as r:
        reference = r.render(cams)
        assert r.load(out)["numSplats"] == len(splats)      # level 0's count, as the engine sums it
        ours = r.render(cams)
    assert min(_coverage(ours)) >= SAMPLE_COVERAGE, _coverage(ours)
    values = psnr(ours, reference).tolist()
    assert min(values) >= FORMAT_MIN_PSNR["lod"], values


def test_the_engine_loads_sogs_glb_with_the_values_sog_reads(tmp_path, engine, sample_ply):
    """The engine's glTF container loader reads KHR_gaussian_splatting. It draws the positions as stored (sog
    writes the scene turned 180° about z into glTF's frame, with no node transform), so its render is compared
    with sog's reading of the file turned back into that stored frame: measured identical images (inf dB) on two
    orbit views at 128 px, 31 % coverage."""
    from sog.io.glb_format import turn_z180

    splats = sog.load(sample_ply)
    out = tmp_path / "out.glb"
    sog.compress(splats, out, sog.CompressOptions(sort="morton"), quiet=True)
    back = sog.load(out)
    means, quats, sh_n = turn_z180(back.means.double().numpy(), back.quats.double().numpy(),
                                   back.shN.double().numpy())
    stored = replace(back, means=torch.tensor(means, dtype=torch.float32),
                     quats=torch.tensor(quats, dtype=torch.float32), shN=torch.tensor(sh_n, dtype=torch.float32))
    cams = _sample_views(stored)
    with EngineRenderer(out, 128) as r:
        assert r.info["numSplats"] == len(splats)
        ours = r.render(cams)
        r.load(stored)
        reference = r.render(cams)
    assert min(_coverage(ours)) >= SAMPLE_COVERAGE, _coverage(ours)
    values = psnr(ours, reference).tolist()
    assert min(values) >= 60.0, values
