"""Viewer load time: from the page request to the first fully sorted frame, in headless Chromium (SwiftShader).

    python scripts/bench_view.py [FILE ...] [--runs 3] [--size 640x480] [--json bench_view.json]

Default FILE: /tmp/playbot.sog, playbot's 500,000 Gaussians as sog's default SOG v2; make it first with
``sog compress ../shared/data/playbot/0_0/meta.json /tmp/playbot.sog`` (a few minutes on 2 cores). Each run opens a fresh page on `sog view`'s server (scene bytes served from memory) and reads the page's own clock
(``performance.now()``, milliseconds since the navigation started): when the scene's bytes had arrived, when
they were decoded to float arrays (the browser decoder), when the engine's GPU resource was built and when the
first sorted frame was drawn. The WebGL here is SwiftShader (a CPU rasteriser), so the last step is far slower
than on a GPU; fetch and decode are the browser's own CPU work either way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from sog.peers import CHROMIUM_ARGS, find_chromium, find_playcanvas
from sog.viewer import ViewerConfig, ViewerServer, prepare_scene

ROOT = Path(__file__).resolve().parents[1]


def one_run(browser, server, size: tuple[int, int]) -> dict:
    page = browser.new_page(viewport={"width": size[0] + 40, "height": size[1] + 120})
    try:
        t0 = time.perf_counter()
        page.goto(server.url)
        page.wait_for_function("window.sogViewer && window.sogViewer.state !== 'loading'", timeout=600_000)
        wall = time.perf_counter() - t0
        state = page.evaluate("window.sogViewer.state")
        if state != "ready":
            raise SystemExit(f"page error: {page.evaluate('window.sogViewer.error')}")
        t = page.evaluate("window.sogViewer.timings[0]")
    finally:
        page.close()
    return {"fetched_s": t["fetched"] / 1000, "decoded_s": t["decoded"] / 1000, "uploaded_s": t["uploaded"] / 1000,
            "first_frame_s": t["firstFrame"] / 1000, "decode_s": (t["decoded"] - t["fetched"]) / 1000,
            "wall_s": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", default=["/tmp/playbot.sog"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="640x480", help="canvas pixels WxH")
    ap.add_argument("--json", default="bench_view.json")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    engine = find_playcanvas(ROOT)
    if engine is None:
        raise SystemExit("needs the local engine: run `npm ci` in the project folder")
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        for path in args.files:
            if not Path(path).exists():
                raise SystemExit(f"{path} does not exist (see the docstring for how to make it)")
            scene = prepare_scene(path)
            with ViewerServer(ViewerConfig(scenes=[scene], size=size), port=0, engine_path=engine) as server:
                runs = [one_run(browser, server, size) for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append({"file": str(path), "format": scene.format, "profile": scene.profile, "count": scene.count,
                         "bytes": scene.bytes, "size": list(size), "runs": runs, "median": med})
        browser.close()

    print(f"median of {args.runs} runs; fetched, uploaded, 1st frame: seconds since the request; decode: seconds")
    print(f"{'file':34} {'Gaussians':>10} {'bytes':>11} {'fetched':>8} {'decode':>7} {'uploaded':>9} "
          f"{'1st frame':>9} {'min 1st':>8}")
    for r in rows:
        m = r["median"]
        print(f"{Path(r['file']).name:34} {r['count']:>10,} {r['bytes']:>11,} {m['fetched_s']:8.2f} "
              f"{m['decode_s']:7.2f} {m['uploaded_s']:9.2f} {m['first_frame_s']:9.2f} "
              f"{min(x['first_frame_s'] for x in r['runs']):8.2f}")
    with open(args.json, "w") as fh:
        json.dump({"browser": "chromium headless, SwiftShader WebGL", "rows": rows}, fh, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
