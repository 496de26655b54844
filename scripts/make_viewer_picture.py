"""The README's viewer picture: `sog view ORIGINAL COMPRESSED` side by side, with its PSNR bar, as a small PNG.

    python scripts/make_viewer_picture.py [--source ../shared/data/playbot/2_0/meta.json] [--compressed X.sog]
                                          [--out docs/viewer.png] [--size 420x360]

Without ``--compressed`` the source is compressed first with sog's native profile. The page is the one
`sog view` serves, rendered by headless Chromium (SwiftShader WebGL) from sog eval's first judging camera; the
PNG is palette-quantised to stay small (< 300 KB).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import sog
from sog.datasets import scene_path
from sog.peers import CHROMIUM_ARGS, find_chromium, find_playcanvas
from sog.render.views import judging_cameras
from sog.viewer import ViewerConfig, ViewerServer, prepare_scene
from sog.viewer.poses import camera_pose

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=str(scene_path("playbot-2_0")))
    ap.add_argument("--compressed", default=None)
    ap.add_argument("--out", default=str(ROOT / "docs" / "viewer.png"))
    ap.add_argument("--size", default="420x360", help="each canvas, WxH pixels")
    ap.add_argument("--view", type=int, default=0, help="which of sog eval's cameras")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    engine = find_playcanvas(ROOT)
    if engine is None:
        raise SystemExit("needs the local engine: run `npm ci` in the project folder")
    with tempfile.TemporaryDirectory() as tmp:
        compressed = args.compressed
        if compressed is None:
            compressed = str(Path(tmp) / "compressed.sog")
            result = sog.compress(args.source, compressed, sog.CompressOptions(profile="native"))
            print(f"compressed {args.source}: {result.bytes:,} bytes")
        splats = sog.load(args.source)
        cam = judging_cameras(splats, args.source, size=f"{w}x{h}")[0][args.view]
        from PIL import Image
        from playwright.sync_api import sync_playwright

        scenes = [prepare_scene(args.source), prepare_scene(compressed)]
        with ViewerServer(ViewerConfig(scenes=scenes, size=(w, h)), port=0, engine_path=engine) as server, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
            page = browser.new_page(viewport={"width": 2 * w + 2, "height": h + 60})
            page.goto(server.url)
            page.wait_for_function("window.sogViewer && window.sogViewer.state !== 'loading'", timeout=600_000)
            if page.evaluate("window.sogViewer.state") != "ready":
                raise SystemExit(page.evaluate("window.sogViewer.error"))
            page.evaluate("(pose) => window.sogViewer.setPose(pose)", camera_pose(cam))
            psnr = page.evaluate("window.sogViewer.psnr()")
            page.evaluate("document.querySelector('#bar .help').hidden = true")
            png = page.screenshot(full_page=True)
            browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    print(f"{out}: {out.stat().st_size:,} bytes, {image.width}x{image.height}; PSNR of the view {psnr:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
