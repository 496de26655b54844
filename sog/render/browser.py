"""The plumbing that the real-viewer renderers share: one page in headless Chromium on a local server.

`sog.render.engine` (the PlayCanvas engine) and `sog.render.spark` (Spark on three.js) each bring a page folder
(``index.html`` + ``main.js``) and the npm files it imports; this module serves them, starts the browser, runs the
page's entry points and turns every failure into a `SogError`.

- `BrowserPage`: a stdlib HTTP server on 127.0.0.1 (`sog.localserver.LocalServer`, a free port, stopped at the
  end) that serves only the page, the routes it is given (npm files from ``node_modules``, never a CDN), the shared
  ``/common.js`` (``browser_page/common.js``: bounded waits, frame counting, base64) and, under ``/scene/<k>/``,
  links to the scenes loaded so far; playwright drives the system Chromium with WebGL 2 through SwiftShader.
  Every wait is bounded by ``timeout_s``.
- `gl_camera`: a sog OpenCV `Camera` -> the camera-to-world transform and OpenGL projection that both PlayCanvas
  and three.js take (both look down -Z with +Y up).
- `PageRenderer`: what each viewer's renderer class shares (a context manager over one `BrowserPage` with a scene
  loaded, the page-error check, the one-call `PageRenderer.render_all`).
- `decode_pixels`: the page's read-back (base64 RGBA8 or float32, GL rows bottom first) -> (H, W, 3) float32,
  top row first.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import urllib.parse
from pathlib import Path

import numpy as np
import torch

from ..errors import SogError
from ..localserver import LocalServer
from ..peers import CHROMIUM_ARGS, find_chromium
from ..splats import Splats
from .cameras import Camera, parse_size

COMMON_JS = Path(__file__).resolve().parent / "browser_page" / "common.js"

#: content types of what the pages load
TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
         ".webp": "image/webp", ".png": "image/png", ".ply": "application/octet-stream",
         ".sog": "application/octet-stream", ".spz": "application/octet-stream",
         ".splat": "application/octet-stream", ".glb": "model/gltf-binary"}


def browser_missing(browser: str | None = None) -> list[str]:
    """What every browser renderer needs and does not find here: Chromium and playwright (empty when both are)."""
    missing = []
    if find_chromium(browser) is None:
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    return missing


def gl_camera(camera: Camera, near: float, far: float) -> dict:
    """A sog `Camera` (OpenCV: x right, y down, z forward; ``K`` in pixels) -> ``{"c2w", "proj"}``, both (16,)
    column-major: the camera-to-world transform of a camera looking down -Z with +Y up (``inverse(viewmat) @
    diag(1, -1, -1, 1)``) and the OpenGL projection built from ``K`` (``[2fx/W, 0, 1 - 2cx/W]``,
    ``[0, 2fy/H, 2cy/H - 1]``), so field of view, aspect and an off-centre principal point match exactly."""
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


def decode_pixels(result: dict, width: int, height: int) -> torch.Tensor:
    """``{"data": base64, "type": "uint8" | "float32"}`` of ``width x height`` RGBA, GL rows bottom first
    -> (H, W, 3) float32, top row first (uint8 scaled to [0, 1])."""
    raw = base64.b64decode(result["data"])
    if result["type"] == "float32":
        arr = np.frombuffer(raw, dtype=np.float32).reshape(height, width, 4)
    else:
        arr = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr[::-1, :, :3]))


class BrowserPage:
    """One page (``page_dir``'s ``index.html`` and ``main.js``) open in headless Chromium, served with ``routes``
    (``{"/url": file}``) and `serve`'d scenes. ``name`` starts every error message; ``ready`` is the JavaScript
    condition that says the page's module has run. Use as a context manager, or `start` and `close`."""

    def __init__(self, name: str, page_dir: Path, routes: dict[str, Path], width: int, height: int,
                 timeout_s: float, ready: str, browser: str | None = None):
        self.name = name
        self.routes = {"/": page_dir / "index.html", "/index.html": page_dir / "index.html",
                       "/main.js": page_dir / "main.js", "/common.js": COMMON_JS, **routes}
        self.width, self.height = width, height
        self.timeout_ms = int(timeout_s * 1000)
        self.ready = ready
        self.browser = browser
        self.loads = 0
        self._stack: list = []

    def __enter__(self) -> "BrowserPage":
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def start(self) -> "BrowserPage":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self):
        missing = browser_missing(self.browser)
        if missing:
            raise SogError(f"{self.name} needs " + ", ".join(missing))
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
        self._error = PlaywrightError
        self._tmp = Path(tempfile.mkdtemp(prefix="sog-browser-"))
        self._stack.append(lambda: shutil.rmtree(self._tmp, ignore_errors=True))
        # the server's /scene/ folder: links to the scenes loaded so far, so only they are served
        self.served = self._tmp / "served"
        self.served.mkdir()
        server = LocalServer(self._lookup).start()
        self._stack.append(server.close)
        ms = self.timeout_ms
        try:
            pw = sync_playwright().start()
            self._stack.append(pw.stop)
            browser = pw.chromium.launch(executable_path=find_chromium(self.browser), args=list(CHROMIUM_ARGS),
                                         timeout=ms)
            self._stack.append(browser.close)
            page = browser.new_page(viewport={"width": max(self.width, 64), "height": max(self.height, 64)})
            page.set_default_timeout(ms)
            page.goto(server.url + "index.html", timeout=ms)
            page.wait_for_function(self.ready, timeout=ms)
        except PlaywrightError as exc:
            raise SogError(f"{self.name}: {str(exc).splitlines()[0]}") from None
        self.page = page

    def _lookup(self, raw: str) -> tuple[str, bytes] | None:
        path = urllib.parse.unquote(raw)
        target = self.routes.get(path)
        if target is None and path.startswith("/scene/"):
            parts = [p for p in path[len("/scene/"):].split("/") if p]
            if parts and not any(p in (".", "..") or "\\" in p for p in parts):
                cand = self.served.joinpath(*parts)
                if cand.is_file():
                    target = cand
        if target is None:
            return None
        return TYPES.get(target.suffix.lower(), "application/octet-stream"), Path(target).read_bytes()

    def new_folder(self) -> Path:
        """A fresh folder served as ``/scene/<k>/`` (k counts the loads): put or link the next scene there."""
        self.loads += 1
        folder = self.served / str(self.loads)
        folder.mkdir()
        return folder

    def serve(self, source: Path, folder: Path, whole_folder: bool) -> str:
        """Serve ``source`` from ``folder`` (a `new_folder`) -> its URL. A file already in ``folder`` is served as
        it is; otherwise it is linked there, with every file beside it when ``whole_folder`` (a SOG folder's
        planes, a ``lod-meta.json``'s level folders)."""
        if source.parent != folder:
            for item in (source.parent.iterdir() if whole_folder else [source]):
                (folder / item.name).symlink_to(item.resolve())
        return f"/scene/{folder.name}/{source.name}"

    def call(self, script: str, arg=None):
        """``page.evaluate(script, arg)`` (an awaited promise's value); a page error is a `SogError`."""
        try:
            return self.page.evaluate(script, arg)
        except self._error as exc:
            raise SogError(f"{self.name}: {str(exc).splitlines()[0]}") from None

    def close(self):
        while self._stack:
            step = self._stack.pop()
            try:
                step()
            except Exception:  # closing what is already gone (a crashed browser) must not hide the first error
                pass


class PageRenderer:
    """A running viewer page (browser + server) with one scene loaded; use as a context manager:
    ``with Renderer(path, 256) as r: images = r.render(cameras)`` (``size`` fixes the canvas: N or "WxH").

    Subclasses set ``Config`` (their config dataclass), ``label`` (the start of their error messages) and ``api``
    (the page's ``window`` object), and implement ``_start`` (start ``self._page`` and load ``self.scene``) and
    ``render``."""

    Config: type = object
    label: str = "viewer renderer"
    api: str = ""

    def __init__(self, scene, size, config=None):
        self.config = config or self.Config()
        self.width, self.height = parse_size(size)
        self.scene = scene
        self.info: dict = {}
        self._page: BrowserPage | None = None

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        raise NotImplementedError

    def check_page_errors(self) -> None:
        """`SogError` with the first error the page recorded, if any."""
        errors = self._page.call(f"() => window.{self.api}.errors()")
        if errors:
            raise SogError(f"{self.label}: page error: {errors[0]}")

    def close(self):
        if self._page is not None:
            self._page.close()

    @classmethod
    def render_all(cls, scene, cameras: list[Camera] | Camera, size=None, config=None) -> torch.Tensor:
        """Open a page on ``scene``, render ``cameras`` -> (C, H, W, 3) float32, close it. ``size`` (N, "WxH" or
        (W, H)) resizes every camera; by default all cameras must share one image size."""
        cams = [cameras] if isinstance(cameras, Camera) else list(cameras)
        if not cams:
            raise SogError("no cameras to render")
        if size is None:
            sizes = {(c.width, c.height) for c in cams}
            if len(sizes) > 1:
                raise SogError("all cameras must have the same image size (pass size=...)")
            size = sizes.pop()
        with cls(scene, size, config) as renderer:
            return renderer.render(cams)


def scene_file(scene, folder: Path, suffixes: tuple[str, ...], lod: bool = False) -> Path:
    """The file a viewer opens for ``scene``: the path itself when its suffix is in ``suffixes`` or it is a SOG
    folder's ``meta.json`` (or, with ``lod``, a ``lod-meta.json``); else a PLY written into ``folder`` from
    `Splats` or from what `sog.io.load` reads (a format the viewer has no loader for)."""
    from ..io import load, write_ply

    if not isinstance(scene, Splats):
        path = Path(scene)
        if path.is_dir():
            path = path / "meta.json"
        if not path.exists():
            raise SogError(f"{path}: no such scene file")
        if path.name == "meta.json" or (lod and path.name.endswith("meta.json")) or path.suffix.lower() in suffixes:
            return path
        scene = load(path)
    out = folder / "scene.ply"
    write_ply(scene, out)
    return out
