"""Benchmark: render-guided reduction (`sog.reduce`) against the naive opacity × footprint prune.

For each scene and each share removed, the reduced scene is rendered from the judging views
(`sog.render.views.judging_cameras`, never used by the reduction) and compared with renders of the whole scene:
PSNR mean, 10th percentile and worst view, and the seconds the reduction took. The reduction measures on the
tuning views (`sog.render.views.tuning_cameras`). Prints a table and writes JSON (--json).

    nice -n 10 python scripts/bench_reduce.py --scenes plant --views 16 --size 256 --json bench_reduce.json

Methods: ``footprint`` (keep the largest opacity × footprint), ``render`` (`sog.reduce.reduce`), ``render+merge``
(the same with ``merge=True``), ``render 1 round`` (measured once, no re-measuring).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

SHARED_DATA = Path(os.environ.get("SOG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SCENES = {
    "plant": "marcelpadilla-splats/plant/plant.splat",
    "tarot": "marcelpadilla-splats/academic_tarot_cards/academic_tarot_cards.splat",
    "kacytran": "kacytran1122-try/point_cloud/iteration_7000/point_cloud.ply",
    "playbot": "playbot/0_0/meta.json",
}
METHODS = ("footprint", "render", "render+merge", "render 1 round", "render no prior")


def run_method(method: str, splats, keep: int, tuning, seed: int):
    from sog.reduce import footprint_prune, reduce

    if method == "footprint":
        return footprint_prune(splats, keep)
    if method == "render":
        return reduce(splats, keep, tuning, seed=seed)
    if method == "render+merge":
        return reduce(splats, keep, tuning, seed=seed, merge=True)
    if method == "render 1 round":
        return reduce(splats, keep, tuning, seed=seed, rounds=1)
    if method == "render no prior":
        return reduce(splats, keep, tuning, seed=seed, prior=False)
    raise SystemExit(f"unknown method {method}")


def main() -> None:
    from sog.io import load
    from sog.metrics import view_psnrs
    from sog.reduce import target_count
    from sog.render import render
    from sog.render.views import judging_cameras, tuning_cameras

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--scenes", default="plant", help="comma-separated names of " + ", ".join(SCENES))
    ap.add_argument("--fractions", default="0.2,0.4,0.6", help="shares removed")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--views", type=int, default=16, help="judging views")
    ap.add_argument("--size", type=int, default=256, help="judging image size")
    ap.add_argument("--tuning-views", type=int, default=12)
    ap.add_argument("--tuning-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    rows = []
    for name in args.scenes.split(","):
        path = args.data / SCENES[name]
        splats = load(path)
        judging, source = judging_cameras(splats, path, views=args.views, size=args.size)
        tuning = tuning_cameras(splats, path, views=args.tuning_views, size=args.tuning_size)
        reference = render(splats, judging, backend="cpu", device="cpu")
        for fraction in (float(f) for f in args.fractions.split(",")):
            keep = target_count(len(splats), fraction)
            for method in args.methods.split(","):
                t0 = time.perf_counter()
                reduced = run_method(method, splats, keep, tuning, args.seed)
                seconds = time.perf_counter() - t0
                psnrs = np.array(view_psnrs(render(reduced.splats, judging, backend="cpu", device="cpu"),
                                            reference))
                row = {"scene": name, "count": len(splats), "removed": fraction, "kept": reduced.count,
                       "method": method, "merged": reduced.merged, "psnr_mean": float(psnrs.mean()),
                       "psnr_p10": float(np.percentile(psnrs, 10)), "psnr_worst": float(psnrs.min()),
                       "seconds": round(seconds, 2), "views": f"{len(judging)} x {args.size} px ({source})",
                       "tuning": f"{len(tuning)} x {args.tuning_size} px"}
                rows.append(row)
                print(f"{name:9s} {fraction:4.0%} removed  {method:15s} kept {reduced.count:>8,}  "
                      f"PSNR mean {row['psnr_mean']:6.2f}  p10 {row['psnr_p10']:6.2f}  worst {row['psnr_worst']:6.2f}"
                      f"  {seconds:6.1f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
