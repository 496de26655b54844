"""Benchmark for the native profile's keep-or-retire decision (issue 28 item 3): bytes at an equal worst view.

Rule: native earns its place as a write option only if, on every scene, it is at least 10 % smaller than the
default (sogv2) at an equal judging-view worst view. For each scene both profiles are encoded along their own
rate ladders (`LEVELS` rungs, each profile's own layout computed once and reused), every file is rendered from
the judging views (`sog.render.views.judging_cameras`: 48 views = 32 close + 16 orbit, 512 px) and the curve
bytes(worst view) of each profile is read off; native's bytes at the default's worst view are interpolated in
log bytes between the two rungs that bracket it. This is a measurement of two rate-quality curves, not a tuning
step: nothing chosen here is used by an encoder.

    nice -n 10 python scripts/bench_native.py --json bench_native.json [--scenes plant tarot kacytran]

Prints one row per file (bytes, mean, p10, worst) and, per scene, native's bytes at the default's worst view and
its ratio to the default's; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

import sog
from sog import metrics
from sog.codec import native, sogv2
from sog.datasets import scene_path
from sog.render import render
from sog.render.views import judging_cameras

#: rungs of each ladder measured (index into the profile's LEVELS): around each default, finer and coarser
RUNGS = {"sogv2": [0, sogv2.DEFAULT_LEVEL, 12], "native": [0, 2, native.DEFAULT_LEVEL, 7, 10]}


def at_worst(points: list[dict], worst: float) -> float | None:
    """Bytes of the curve ``points`` (bytes, worst) at ``worst``: log-linear between the two rungs that bracket
    it (the smallest file at or above it if the curve is not monotone there); None if no rung reaches it."""
    pts = sorted(points, key=lambda p: p["bytes"])
    above = [p for p in pts if p["worst"] >= worst]
    if not above:
        return None
    hi = above[0]
    below = [p for p in pts if p["bytes"] < hi["bytes"] and p["worst"] < worst]
    if not below:
        return float(hi["bytes"])
    lo = below[-1]
    t = (worst - lo["worst"]) / (hi["worst"] - lo["worst"])
    return math.exp(math.log(lo["bytes"]) + t * (math.log(hi["bytes"]) - math.log(lo["bytes"])))


def bench_scene(name: str, args, tmp: Path) -> dict:
    original = sog.load(scene_path(name))
    cams, _ = judging_cameras(original, None, views=args.views, size=args.size)
    ref = render(original, cams)
    rows = []
    for profile, module in (("sogv2", sogv2), ("native", native)):
        layout = None
        for rung in RUNGS[profile]:
            settings = dict(module.LEVELS[rung])
            out = tmp / f"{name}_{profile}_{rung}.sog"
            opts = sog.CompressOptions(profile=profile, profile_options=settings, layout=layout)
            t0 = time.perf_counter()
            res = sog.compress(original, out, opts, overwrite=True, quiet=True)
            seconds = time.perf_counter() - t0
            layout = res.layout
            psnrs = metrics.view_psnrs(ref, render(sog.load(out), cams))
            row = {"scene": name, "profile": profile, "rung": rung, "default": rung == module.DEFAULT_LEVEL,
                   "bytes": out.stat().st_size, "encode_s": round(seconds, 2),
                   **metrics.ViewStats.of(psnrs).as_dict()}  # mean, p10 and worst as `sog eval` reports them
            rows.append(row)
            print(f"{name:10s} {profile:7s} rung {rung:2d}{'*' if row['default'] else ' '} {row['bytes']:>10,d} B"
                  f"  mean {row['mean']:6.2f}  p10 {row['p10']:6.2f}  worst {row['worst']:6.2f}", flush=True)
    default = next(r for r in rows if r["profile"] == "sogv2" and r["default"])
    native_bytes = at_worst([r for r in rows if r["profile"] == "native"], default["worst"])
    ratio = None if native_bytes is None else native_bytes / default["bytes"]
    return {"scene": name, "count": len(original), "rows": rows, "default_bytes": default["bytes"],
            "default_worst": default["worst"], "native_bytes_at_default_worst": native_bytes,
            "native_ratio": ratio, "earns_place": ratio is not None and ratio <= 0.9}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", nargs="+", default=["plant", "tarot", "kacytran"])
    ap.add_argument("--views", type=int, default=48)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--json", default="bench_native.json")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            results.append(bench_scene(name, args, Path(tmp)))
    print("\n| scene | default bytes | default worst | native bytes at that worst | native / default | earns place |")
    print("|---|---|---|---|---|---|")
    for r in results:
        nb = "not reached" if r["native_bytes_at_default_worst"] is None else f"{r['native_bytes_at_default_worst']:,.0f}"
        ratio = "-" if r["native_ratio"] is None else f"{r['native_ratio']:.3f}"
        print(f"| {r['scene']} | {r['default_bytes']:,} | {r['default_worst']:.2f} | {nb} | {ratio} | "
              f"{'yes' if r['earns_place'] else 'no'} |")
    verdict = all(r["earns_place"] for r in results)
    print(f"\nnative earns its place (>= 10 % smaller at an equal worst view on every scene): {verdict}")
    Path(args.json).write_text(json.dumps({"views": args.views, "size": args.size, "scenes": results,
                                           "native_earns_place": verdict}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
