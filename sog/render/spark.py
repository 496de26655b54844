"""Reference renders by a second real viewer: Spark (npm ``@sparkjsdev/spark``, on ``three``) in headless Chromium.

    from sog.render.spark import render_spark
    images = render_spark("scene.spz", cameras, size=256)    # (C, H, W, 3) float32 in [0, 1], black background

The scene file is opened by SPARK'S OWN loader (``SplatMesh``; 2.2.0 reads PLY, SPZ, ``.splat``, ``.ksplat``,
SOG v2 ``.sog`` zips and a SOG folder's ``meta.json``, and its own ``.rad``; it has no glTF/GLB and no
``lod-meta.json`` loader), so a file that renders here opens in Spark-based viewers. `Splats`, and any other
format sog reads, are written to a temporary PLY first.

How it runs: `sog.render.browser.BrowserPage` (the plumbing shared with `sog.render.engine`) serves our page
(``spark_page/``), the pinned npm files that it imports (`sog.peers.find_spark`: Spark's module build, three.js's
module build and one three.js add-on, never a CDN) and the scene; Chromium renders with WebGL 2 through
SwiftShader. Every wait is bounded (`SparkConfig.timeout_s`); a failure is a `SogError`.

Camera conventions: three.js cameras look down -Z with +Y up, as PlayCanvas's do, so the camera is
`sog.render.browser.gl_camera`'s (world transform ``inverse(viewmat) @ diag(1, -1, -1, 1)``, projection from
``K``; Spark's focal length is ``renderSize * projection / 2`` = ``fx``, ``fy``). Updates are driven by the page
(``autoUpdate`` off), so each image waits for the sort of its own camera. LoD is off (every Gaussian is drawn).

Colour: ``NoToneMapping`` and sRGB output, so Spark writes ``max(SH colour, 0)`` as it is, blended premultiplied
back to front into the RGBA8 canvas (clamped to [0, 1] and rounded at every blend step). Spark's own defaults are
kept unless `SparkConfig` says otherwise: it decodes every file into its 16-byte ``PackedSplats`` (``ext_splats``:
its 32-byte extended encoding instead), adds ``blurAmount`` 0.3 px² to the 2D covariance *with* an opacity
correction (``sqrt(det / det_blurred)``, anti-aliased 3DGS) where sog's CPU renderer and gsplat add 0.3 px²
without one (``pre_blur=0.3, blur=0`` renders that way), cuts kernels at ``sqrt(8)`` standard deviations and
sorts by distance from the eye (``sortRadial``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SogError
from ..peers import find_spark
from ..splats import Splats
from .browser import BrowserPage, PageRenderer, browser_missing, decode_pixels, gl_camera, scene_file
from .cameras import Camera

PAGE_DIR = Path(__file__).resolve().parent / "spark_page"

#: the files Spark 2.2.0's own loader opens (besides a SOG folder's ``meta.json``)
SPARK_SUFFIXES = (".ply", ".spz", ".splat", ".ksplat", ".sog")


@dataclass
class SparkConfig:
    """How Spark renders.

    ``pre_blur``: px² added to the 2D covariance (Spark's ``preBlurAmount``; None: its default 0). ``blur``: px²
    added with an opacity correction (``blurAmount``; None: its default 0.3). ``ext_splats``: decode into Spark's
    extended 32-byte splats instead of its default 16-byte ``PackedSplats``. ``near``/``far``: clip distances.
    ``timeout_s`` bounds each wait (browser start, page, load, sort, read-back). ``browser``: the Chromium
    executable (default: `sog.peers.find_chromium`); Spark and three.js are `sog.peers.find_spark`'s.
    """

    pre_blur: float | None = None
    blur: float | None = None
    ext_splats: bool = False
    near: float = 0.01
    far: float = 1.0e6
    timeout_s: float = 120.0
    browser: str | None = None


def missing_peers(config: SparkConfig | None = None) -> list[str]:
    """What the Spark renderer needs and does not find here (empty when it can run)."""
    config = config or SparkConfig()
    missing = browser_missing(config.browser)
    if find_spark() is None:
        missing.append("node_modules/@sparkjsdev/spark and three of the pinned versions (npm ci)")
    return missing


class SparkRenderer(PageRenderer):
    """A running Spark page (browser + server) with one scene loaded; use as a context manager.

    ``with SparkRenderer(path, 256) as r: images = r.render(cameras)``; ``size`` fixes the canvas (N, "WxH").
    """

    Config = SparkConfig
    label = "Spark renderer"
    api = "sogSpark"

    def _start(self):
        cfg = self.config
        missing = missing_peers(cfg)
        if missing:
            raise SogError("the Spark renderer needs " + ", ".join(missing))
        routes = {f"/npm/{name}": path for name, path in find_spark().items()}
        self._page = BrowserPage("Spark renderer", PAGE_DIR, routes, self.width, self.height, cfg.timeout_s,
                                 "window.sogSparkReady === true", cfg.browser).start()
        self.info = self._page.call("o => window.sogSpark.init(o)",
                                    {"width": self.width, "height": self.height, "near": cfg.near, "far": cfg.far,
                                     "extSplats": cfg.ext_splats,
                                     "spark": {"preBlurAmount": cfg.pre_blur, "blurAmount": cfg.blur}})
        self.load(self.scene)

    def load(self, scene) -> dict:
        """Replace the loaded scene by ``scene`` (a file Spark reads, another format sog reads, or `Splats`)
        -> what Spark reports (``numSplats``, ``shDegree``), also kept in ``info``."""
        page = self._page
        folder = page.new_folder()
        source = scene_file(scene, folder, SPARK_SUFFIXES)
        url = page.serve(source, folder, whole_folder=source.name == "meta.json")   # a SOG folder: its planes
        loaded = page.call("([u, o]) => window.sogSpark.load(u, o)", [url, {"timeoutMs": page.timeout_ms}])
        if not loaded.get("numSplats"):
            raise SogError(f"Spark renderer: {source.name} loaded no splats")
        self.info.update(loaded)
        return loaded

    def render(self, cameras: list[Camera] | Camera) -> torch.Tensor:
        """Render each camera (resized to the canvas) -> (C, H, W, 3) float32 in [0, 1] on the CPU (black
        background)."""
        cams = [cameras] if isinstance(cameras, Camera) else list(cameras)
        if not cams:
            raise SogError("no cameras to render")
        out = []
        for cam in cams:
            cam = cam.resized(self.width, self.height)
            view = gl_camera(cam, self.config.near, self.config.far)
            view["timeoutMs"] = self._page.timeout_ms
            result = self._page.call("v => window.sogSpark.render(v)", view)
            if not result["sorted"]:
                raise SogError(f"Spark renderer: no sort finished within {self.config.timeout_s:g} s "
                               f"for camera {cam.name or len(out)}")
            out.append(decode_pixels(result, self.width, self.height))
        self.check_page_errors()
        return torch.stack(out)


def render_spark(scene: str | os.PathLike | Splats, cameras: list[Camera] | Camera,
                 size: int | tuple[int, int] | str | None = None,
                 config: SparkConfig | None = None) -> torch.Tensor:
    """Render ``scene`` (a file Spark reads, another format sog reads, or `Splats`) from ``cameras`` with Spark
    -> (C, H, W, 3) float32 in [0, 1].

    ``size`` (N, "WxH" or (W, H)) resizes every camera; by default all cameras must share one image size.
    """
    return SparkRenderer.render_all(scene, cameras, size, config)
