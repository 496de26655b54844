"""Benchmark the reference renderer: time and peak memory to render a real scene from `sog eval`'s cameras.

    python scripts/bench_render.py [--scene ../shared/data/playbot/0_0/meta.json] [--views 12] [--size 512]
                                   [--backend auto] [--json bench_render.json]

Scenes: the scene itself (playbot: 500K) and "x2" = the scene concatenated with a copy shifted by half its
robust extent in x and z (1M Gaussians), built in memory. The cameras are `sog.render.views.judging_cameras`
(close and orbit views; see docs/evaluation.md#evaluation-protocol); the target is 12 views of 1M Gaussians at
512 px in 60 s or less. Prints a table (seconds for all views, CPU seconds, per view, the slowest view) and writes JSON.
"cpu s" is the process's CPU time over all threads: wall seconds grow with other load on the machine, CPU
seconds much less (on an idle machine wall is about cpu s / threads). Peak memory is the process's max RSS
(Linux), which includes loading the scene. The first render of a process compiles the tiled kernel (numba,
cached on disk); a warm-up view is rendered first and not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import torch

import sog
from sog.datasets import scene_path
from sog.render import render
from sog.render.cameras import robust_bounds
from sog.render.views import judging_cameras


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(scene_path("playbot")))
    ap.add_argument("--views", type=int, default=12)
    ap.add_argument("--size", default="512")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default="bench_render.json")
    args = ap.parse_args()
    base = sog.load(args.scene)
    lo, hi = robust_bounds(base.means)
    shifted = base.permute(torch.arange(len(base)))
    shifted.means = shifted.means + torch.tensor([0.5, 0.0, 0.5]) * (hi - lo)
    rows = []
    for name, scene in (("scene", base), ("x2", sog.Splats.concat([base, shifted]))):
        cams, _ = judging_cameras(scene, views=args.views, size=args.size)
        render(scene, cams[:1], backend=args.backend, device=args.device)        # warm-up (and numba compile)
        each = []
        c0 = time.process_time()
        for cam in cams:
            t0 = time.perf_counter()
            render(scene, cam, backend=args.backend, device=args.device)
            each.append(time.perf_counter() - t0)
        cpu = time.process_time() - c0
        rows.append({"scene": name, "gaussians": len(scene), "size": args.size, "views": len(cams),
                     "seconds": round(sum(each), 2), "cpu_seconds": round(cpu, 2),
                     "seconds_per_view": round(sum(each) / len(cams), 3),
                     "slowest_view_seconds": round(max(each), 3), "threads": torch.get_num_threads(),
                     "load_average": round(os.getloadavg()[0], 2),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    print(f"{'scene':8} {'gaussians':>10} {'size':>6} {'views':>5} {'s total':>8} {'cpu s':>8} {'s/view':>8} "
          f"{'slowest':>8} {'load':>5} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['scene']:8} {r['gaussians']:>10,} {r['size']:>6} {r['views']:>5} {r['seconds']:>8.2f} "
              f"{r['cpu_seconds']:>8.2f} {r['seconds_per_view']:>8.3f} {r['slowest_view_seconds']:>8.3f} "
              f"{r['load_average']:>5.1f} {r['peak_rss_mb']:>12.1f}")
    with open(args.json, "w") as fh:
        json.dump({"scene": args.scene, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
