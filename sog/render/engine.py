"""Reference renders by a real viewer: the PlayCanvas engine (npm ``playcanvas``) in headless Chromium.

    from sog.render.engine import render_engine
    images = render_engine("scene.sog", cameras, size=256)    # (C, H, W, 3) float32, black background

The scene file is opened by the ENGINE'S OWN loader (the ``gsplat`` asset type: PLY, SOG v2 ``.sog`` zip, a SOG
folder's ``meta.json``, ``lod-meta.json``), so a file that renders here opens in PlayCanvas-based viewers. A
`Splats` object is written to a temporary PLY first (the engine has no ``.splat``/``.spz`` loader).

How it runs: a stdlib HTTP server on 127.0.0.1 (a free port, stopped at the end) serves only our page
(``engine_page/``), ``node_modules/playcanvas/build/playcanvas.mjs`` and the scene; playwright drives the system
Chromium with WebGL 2 through SwiftShader. Every wait is bounded (`EngineConfig.timeout_s`); a failure is a
`SogError` naming what did not happen.

Camera conventions. sog's `Camera` is OpenCV/COLMAP: ``viewmat`` world->camera with x right, y down, z forward,
intrinsics ``K`` in pixels. PlayCanvas cameras look down -Z with +Y up, so the engine camera's world transform is
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

import base64
import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import SogError
from ..localserver import LocalServer
from ..peers import CHROMIUM_ARGS, find_chromium, find_playcanvas
from ..splats import Splats
from .cameras import Camera, parse_size

PAGE_DIR = Path(__file__).resolve().parent / "engine_page"

#: The 2D dilation the engine adds, in px²: its shader adds 0.3 to a covariance measured in half pixels (its
#: focal length is ``viewport * projection[0][0]`` = 2 fx), i.e. 0.3 / 4 px², where 3DGS, gsplat and sog's CPU
#: renderer add 0.3 px². ``RasterConfig(eps2d=ENGINE_EPS2D)`` renders sog's way with the engine's dilation.
ENGINE_EPS2D = 0.3 / 4


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
    missing = []
    if find_chromium(config.browser) is None:
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if find_playcanvas() is None:
        missing.append("node_modules/playcanvas of the pinned version (npm ci)")
    return missing


def engine_camera(camera: Camera, near: float, far: float) -> dict:
    """A sog `Camera` -> the page's view: PlayCanvas camera-to-world and OpenGL projection, both (16,) column-major."""
    viewmat = camera.viewmat.double()
    c2w = torch.linalg.inv(viewmat) @ torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
    fx, fy, cx, cy = (float(v) for v in (camera.K[0, 0], camera.K[1, 1], camera.K[0, 2], camera.K[1, 2]))
    w, h = camera.width, camera.height
    proj = torch.zeros(4, 4, dtype=torch.float64)
    proj[0, 0], proj[0, 2] = 2 * fx / w, 1 - 2 * cx / w
    proj[1, 1], proj[1, 2] = 2 * fy / h, 2 * cy / h - 1
    proj[2, 2], proj[2, 3] = -(far + near) / (far - near), -2 * far * near / (far - near)
    proj[3, 2] = -1.0
    return {"c2w": c2w.T.flatten().tolist(), "proj": proj.T.flatten().tolist()}


#: content types of what the engine page loads
TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
         ".webp": "image/webp", ".png": "image/png", ".ply": "application/octet-stream",
         ".sog": "application/octet-stream"}


def _server(playcanvas: Path, scene_dir: Path) -> LocalServer:
    """A started `sog.localserver.LocalServer` on a free port for three things only: the page, playcanvas.mjs and,
    under ``/scene/``, one folder (holding links to the scenes loaded)."""
    routes = {"/": PAGE_DIR / "index.html", "/index.html": PAGE_DIR / "index.html",
              "/main.js": PAGE_DIR / "main.js", "/playcanvas.mjs": playcanvas}

    def lookup(raw: str) -> tuple[str, bytes] | None:
        path = urllib.parse.unquote(raw)
        target = routes.get(path)
        if target is None and path.startswith("/scene/"):
            parts = [p for p in path[len("/scene/"):].split("/") if p]
            if parts and not any(p in (".", "..") or "\\" in p for p in parts):
                cand = scene_dir.joinpath(*parts)
                if cand.is_file():
                    target = cand
        if target is None:
            return None
        return TYPES.get(target.suffix.lower(), "application/octet-stream"), target.read_bytes()

    return LocalServer(lookup).start()


def _scene_file(scene, tmp: Path) -> Path:
    """The file the engine opens: the path itself, or a PLY written from `Splats` (or a file the engine has no
    loader for)."""
    if isinstance(scene, Splats):
        from ..io import write_ply
        path = tmp / "scene.ply"
        write_ply(scene, path)
        return path
    path = Path(scene)
    if path.is_dir():
        path = path / "meta.json"
    if not path.exists():
        raise SogError(f"{path}: no such scene file")
    if path.name.endswith("meta.json") or path.suffix.lower() in (".ply", ".sog"):
        return path
    from ..io import load, write_ply
    out = tmp / "scene.ply"
    write_ply(load(path), out)
    return out


def _nearly_same(c2w_a: list[float], c2w_b: list[float], eps: float = 1e-3) -> bool:
    """Camera positions and view axes (column-major (16,) transforms) within ``eps`` of each other."""
    idx = (8, 9, 10, 12, 13, 14)
    return all(abs(c2w_a[i] - c2w_b[i]) < eps for i in idx)


def _decode(result: dict, width: int, height: int) -> torch.Tensor:
    raw = base64.b64decode(result["data"])
    if result["type"] == "float32":
        arr = np.frombuffer(raw, dtype=np.float32).reshape(height, width, 4)
    else:
        arr = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr[::-1, :, :3]))      # GL rows are bottom first


class EngineRenderer:
    """A running engine page (browser + server) with one scene loaded; use as a context manager.

    ``with EngineRenderer(path, 256) as r: images = r.render(cameras)``; ``size`` fixes the canvas (N, "WxH").
    """

    def __init__(self, scene, size, config: EngineConfig | None = None):
        self.config = config or EngineConfig()
        self.width, self.height = parse_size(size)
        self.scene = scene
        self.info: dict = {}
        self._stack: list = []
        self._previous = None

    def __enter__(self) -> "EngineRenderer":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        cfg = self.config
        missing = missing_peers(cfg)
        if missing:
            raise SogError("the engine renderer needs " + ", ".join(missing))
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
        self._error = PlaywrightError
        self._tmp = Path(tempfile.mkdtemp(prefix="sog-engine-"))
        self._stack.append(lambda: shutil.rmtree(self._tmp, ignore_errors=True))
        # the server's /scene/ folder: links to the scenes loaded so far (a SOG folder's meta.json brings its
        # planes), so only they are served
        self._served = self._tmp / "served"
        self._served.mkdir()
        server = _server(find_playcanvas(), self._served)
        self._stack.append(server.close)
        ms = int(cfg.timeout_s * 1000)
        try:
            pw = sync_playwright().start()
            self._stack.append(pw.stop)
            browser = pw.chromium.launch(executable_path=find_chromium(cfg.browser), args=list(CHROMIUM_ARGS),
                                         timeout=ms)
            self._stack.append(browser.close)
            page = browser.new_page(viewport={"width": max(self.width, 64), "height": max(self.height, 64)})
            page.set_default_timeout(ms)
            page.goto(server.url + "index.html", timeout=ms)
            page.wait_for_function("window.sogEngineReady === true", timeout=ms)
            self.info = page.evaluate("o => window.sogEngine.init(o)",
                                      {"width": self.width, "height": self.height, "near": cfg.near, "far": cfg.far,
                                       "float": cfg.float_target, "timeoutMs": ms})
        except PlaywrightError as exc:
            raise SogError(f"engine renderer: {str(exc).splitlines()[0]}") from None
        self.page = page
        self._loads = 0
        self.load(self.scene)

    def load(self, scene) -> dict:
        """Replace the loaded scene by ``scene`` (a file the engine reads, or `Splats`) -> what the engine
        reports (``numSplats``, ``shBands``), also kept in ``info``."""
        self._loads += 1
        folder = self._served / str(self._loads)
        folder.mkdir()
        source = _scene_file(scene, folder)
        if source.parent != folder:                      # the scene's own file (and a SOG folder's planes)
            for item in ([source] if source.suffix.lower() in (".ply", ".sog") else source.parent.iterdir()):
                (folder / item.name).symlink_to(item.resolve())     # lod-meta.json: its level folders too
        ms = int(self.config.timeout_s * 1000)
        try:
            loaded = self.page.evaluate("([u, o]) => window.sogEngine.load(u, o)",
                                        [f"/scene/{self._loads}/{source.name}",
                                         {"unified": self.config.unified, "timeoutMs": ms,
                                          "minPixelSize": self.config.min_pixel_size}])
        except self._error as exc:
            raise SogError(f"engine renderer: {str(exc).splitlines()[0]}") from None
        self.info.update(loaded)
        self._previous = None
        return loaded

    def render(self, cameras: list[Camera] | Camera) -> torch.Tensor:
        """Render each camera (resized to the canvas) -> (C, H, W, 3) float32 on the CPU (black background)."""
        cams = [cameras] if isinstance(cameras, Camera) else list(cameras)
        if not cams:
            raise SogError("no cameras to render")
        ms = int(self.config.timeout_s * 1000)
        out = []
        previous = self._previous
        for cam in cams:
            cam = cam.resized(self.width, self.height)
            view = engine_camera(cam, self.config.near, self.config.far)
            # a camera that did not move (by the sort worker's 1e-3) gets no new sort: do not wait for one then
            same = previous is not None and _nearly_same(view["c2w"], previous["c2w"]) and view["proj"] == previous["proj"]
            view.update({"timeoutMs": ms if not same else min(ms, 3000), "settleFrames": self.config.settle_frames})
            try:
                result = self.page.evaluate("v => window.sogEngine.render(v)", view)
            except self._error as exc:
                raise SogError(f"engine renderer: {str(exc).splitlines()[0]}") from None
            if not result["sorted"] and not same:
                raise SogError(f"engine renderer: no sort finished within {self.config.timeout_s:g} s "
                               f"for camera {cam.name or len(out)}")
            out.append(_decode(result, self.width, self.height))
            previous = self._previous = {k: view[k] for k in ("c2w", "proj")}
        errors = self.page.evaluate("() => window.sogEngine.errors()")
        if errors:
            raise SogError(f"engine renderer: page error: {errors[0]}")
        return torch.stack(out)

    def close(self):
        while self._stack:
            step = self._stack.pop()
            try:
                step()
            except Exception:  # closing what is already gone (a crashed browser) must not hide the first error
                pass


def render_engine(scene: str | os.PathLike | Splats, cameras: list[Camera] | Camera,
                  size: int | tuple[int, int] | str | None = None,
                  config: EngineConfig | None = None) -> torch.Tensor:
    """Render ``scene`` (a file the engine reads, or `Splats`) from ``cameras`` with the PlayCanvas engine
    -> (C, H, W, 3) float32 in [0, 1] (RGBA8 canvas) or unclamped (``config.float_target``).

    ``size`` (N, "WxH" or (W, H)) resizes every camera; by default all cameras must share one image size.
    """
    cams = [cameras] if isinstance(cameras, Camera) else list(cameras)
    if not cams:
        raise SogError("no cameras to render")
    if size is None:
        sizes = {(c.width, c.height) for c in cams}
        if len(sizes) > 1:
            raise SogError("all cameras must have the same image size (pass size=...)")
        size = sizes.pop()
    with EngineRenderer(scene, size, config) as renderer:
        return renderer.render(cams)
