"""Reference renders by a real viewer: the PlayCanvas engine (npm ``playcanvas``) in headless Chromium.

    from sog.render.engine import render_engine
    images = render_engine("scene.sog", cameras, size=256)    # (C, H, W, 3) float32, black background

The scene file is opened by the ENGINE'S OWN loader (the ``gsplat`` asset type: PLY, SOG v2 ``.sog`` zip, a SOG
folder's ``meta.json``, ``lod-meta.json``; the ``container`` asset type for a ``.glb`` with KHR_gaussian_splatting,
node transforms included), so a file that renders here opens in PlayCanvas-based viewers. A
`Splats` object is written to a temporary PLY first (the engine has no ``.splat``/``.spz`` loader).

How it runs: `sog.render.browser.BrowserPage` (the plumbing shared with `sog.render.spark`) serves, on
127.0.0.1, only our page (``engine_page/``), ``node_modules/playcanvas/build/playcanvas.mjs`` and the scene;
playwright drives the system Chromium with WebGL 2 through SwiftShader. Every wait is bounded
(`EngineConfig.timeout_s`); a failure is a `SogError` naming what did not happen.

Camera conventions (`sog.render.browser.gl_camera`). sog's `Camera` is OpenCV/COLMAP: ``viewmat`` world->camera
with x right, y down, z forward, intrinsics ``K`` in pixels. PlayCanvas cameras look down -Z with +Y up, so the
engine camera's world transform is
``inverse(viewmat) @ diag(1, -1, -1, 1)``, and its projection is the OpenGL matrix built from ``K``
(``[2fx/W, 0, 1 - 2cx/W]``, ``[0, 2fy/H, 2cy/H - 1]``): the vertical field of view ``2 atan(H / 2fy)``, the
aspect, and any off-centre principal point match exactly. The image is ``W x H`` device pixels (pixel ratio 1, no
MSAA); rows come back top first.

Colour. With the camera's ``gammaCorrection = GAMMA_SRGB`` and ``toneMapping = TONEMAP_NONE`` (set here) the
splat shader writes ``max(SH colour, 0)`` untouched (``prepareOutputFromGamma`` decodes/re-encodes gamma only for
tone mapping, fog, or ``GAMMA_NONE``, where it would *linearise* the colours); it blends premultiplied
(``rgb * a, a``, back to front) in those (sRGB-encoded) values, which is what 3DGS and sog's renderer do. The
default framebuffer is RGBA8, so the canvas (the real viewer's screenshot) clamps to [0, 1] and rounds every
blend step to 1/255; ``EngineConfig.float_target`` renders into an RGBA32F target instead (no clamp, no
per-blend rounding: the engine's arithmetic without the screen's quantisation), used to check sog's renderer.

The engine's own conventions that differ from sog's CPU renderer (gsplat's) are listed in
docs/evaluation.md#real-viewer-checks and measured by ``scripts/bench_engine.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SogError
from ..peers import find_playcanvas
from ..splats import Splats
from .browser import BrowserPage, PageRenderer, browser_missing, decode_pixels, gl_camera, scene_file
from .cameras import Camera

PAGE_DIR = Path(__file__).resolve().parent / "engine_page"

#: The 2D dilation the engine adds, in px²: its shader adds 0.3 to a covariance measured in half pixels (its
#: focal length is ``viewport * projection[0][0]`` = 2 fx), i.e. 0.3 / 4 px², where 3DGS, gsplat and sog's CPU
#: renderer add 0.3 px². ``RasterConfig(eps2d=ENGINE_EPS2D)`` renders sog's way with the engine's dilation.
ENGINE_EPS2D = 0.3 / 4

#: A sog `Camera` -> the engine's view (PlayCanvas cameras look down -Z with +Y up): `sog.render.browser.gl_camera`.
engine_camera = gl_camera

#: the files the engine's own loaders open (a .glb: KHR_gaussian_splatting in its glTF container loader), besides a
#: SOG folder's ``meta.json`` and ``lod-meta.json``
ENGINE_SUFFIXES = (".ply", ".sog", ".glb")


@dataclass
class EngineConfig:
    """How the engine renders.

    ``unified``: the engine's unified splat renderer (its default since 2.x: all splats copied into a shared,
    *compact* work buffer, 8-bit log scales and 32-bit rotations) instead of the per-asset renderer that reads the
    file's own textures (the default here, so the file's values are what is drawn). ``float_target``: render into
    an RGBA32F target instead of the RGBA8 canvas. ``near``/``far`` clip distances (splat centres are only culled
    behind the camera). ``timeout_s`` bounds each wait (browser start, page, load, sort, read-back). ``browser``: the
    Chromium executable (default: `sog.peers.find_chromium`); the engine is `sog.peers.find_playcanvas`'s.
    """

    unified: bool = False
    float_target: bool = False
    near: float = 0.01
    far: float = 1.0e6
    timeout_s: float = 120.0
    settle_frames: int = 3
    min_pixel_size: float | None = None
    browser: str | None = None


def missing_peers(config: EngineConfig | None = None) -> list[str]:
    """What the engine renderer needs and does not find here (empty when it can run)."""
    config = config or EngineConfig()
    missing = browser_missing(config.browser)
    if find_playcanvas() is None:
        missing.append("node_modules/playcanvas of the pinned version (npm ci)")
    return missing


def _nearly_same(c2w_a: list[float], c2w_b: list[float], eps: float = 1e-3) -> bool:
    """Camera positions and view axes (column-major (16,) transforms) within ``eps`` of each other."""
    idx = (8, 9, 10, 12, 13, 14)
    return all(abs(c2w_a[i] - c2w_b[i]) < eps for i in idx)


class EngineRenderer(PageRenderer):
    """A running engine page (browser + server) with one scene loaded; use as a context manager.

    ``with EngineRenderer(path, 256) as r: images = r.render(cameras)``; ``size`` fixes the canvas (N, "WxH").
    """

    Config = EngineConfig
    label = "engine renderer"
    api = "sogEngine"

    def __init__(self, scene, size, config: EngineConfig | None = None):
        super().__init__(scene, size, config)
        self._previous = None  # the last camera rendered (an unmoved camera gets no new sort)

    def _start(self):
        cfg = self.config
        missing = missing_peers(cfg)
        if missing:
            raise SogError("the engine renderer needs " + ", ".join(missing))
        self._page = BrowserPage("engine renderer", PAGE_DIR, {"/playcanvas.mjs": find_playcanvas()},
                                 self.width, self.height, cfg.timeout_s, "window.sogEngineReady === true",
                                 cfg.browser).start()
        self.info = self._page.call("o => window.sogEngine.init(o)",
                                    {"width": self.width, "height": self.height, "near": cfg.near, "far": cfg.far,
                                     "float": cfg.float_target, "timeoutMs": self._page.timeout_ms})
        self.load(self.scene)

    def load(self, scene) -> dict:
        """Replace the loaded scene by ``scene`` (a file the engine reads, or `Splats`) -> what the engine
        reports (``numSplats``, ``shBands``), also kept in ``info``."""
        page = self._page
        folder = page.new_folder()
        source = scene_file(scene, folder, ENGINE_SUFFIXES, lod=True)
        # a SOG folder's meta.json brings its planes, a lod-meta.json its level folders
        url = page.serve(source, folder, whole_folder=source.name.endswith("meta.json"))
        loaded = page.call("([u, o]) => window.sogEngine.load(u, o)",
                           [url, {"unified": self.config.unified, "timeoutMs": page.timeout_ms,
                                  "minPixelSize": self.config.min_pixel_size}])
        self.info.update(loaded)
        self._previous = None
        return loaded

    def render(self, cameras: list[Camera] | Camera) -> torch.Tensor:
        """Render each camera (resized to the canvas) -> (C, H, W, 3) float32 on the CPU (black background)."""
        cams = [cameras] if isinstance(cameras, Camera) else list(cameras)
        if not cams:
            raise SogError("no cameras to render")
        ms = self._page.timeout_ms
        out = []
        previous = self._previous
        for cam in cams:
            cam = cam.resized(self.width, self.height)
            view = engine_camera(cam, self.config.near, self.config.far)
            # a camera that did not move (by the sort worker's 1e-3) gets no new sort: do not wait for one then
            same = previous is not None and _nearly_same(view["c2w"], previous["c2w"]) and view["proj"] == previous["proj"]
            view.update({"timeoutMs": ms if not same else min(ms, 3000), "settleFrames": self.config.settle_frames})
            result = self._page.call("v => window.sogEngine.render(v)", view)
            if not result["sorted"] and not same:
                raise SogError(f"engine renderer: no sort finished within {self.config.timeout_s:g} s "
                               f"for camera {cam.name or len(out)}")
            if result.get("streamingPending"):
                raise SogError(f"engine renderer: {result['streamingPending']} streamed files still loading after "
                               f"{self.config.timeout_s:g} s for camera {cam.name or len(out)}")
            out.append(decode_pixels(result, self.width, self.height))
            previous = self._previous = {k: view[k] for k in ("c2w", "proj")}
        self.check_page_errors()
        return torch.stack(out)


def render_engine(scene: str | os.PathLike | Splats, cameras: list[Camera] | Camera,
                  size: int | tuple[int, int] | str | None = None,
                  config: EngineConfig | None = None) -> torch.Tensor:
    """Render ``scene`` (a file the engine reads, or `Splats`) from ``cameras`` with the PlayCanvas engine
    -> (C, H, W, 3) float32 in [0, 1] (RGBA8 canvas) or unclamped (``config.float_target``).

    ``size`` (N, "WxH" or (W, H)) resizes every camera; by default all cameras must share one image size.
    """
    return EngineRenderer.render_all(scene, cameras, size, config)
