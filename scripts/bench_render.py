"""Benchmark the reference renderer: time and peak memory to render a real scene at 256x256.

    python scripts/bench_render.py [--scene ../shared/data/playbot/0_0/meta.json] [--views 4] [--size 256]
                                   [--backend auto] [--json bench_render.json]

Scenes: the scene itself (playbot: 500K) and "x2" = the scene concatenated with a copy shifted by half its
extent (1M Gaussians). Prints a table and writes JSON. Peak memory is the process's max RSS (Linux), which
includes loading the scene.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from pathlib import Path

import torch

#: the real scenes (../shared/data next to the repository, or $SOG_SHARED_DATA)
SHARED_DATA = Path(os.environ.get("SOG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

import sog
from sog.render import orbit_cameras, render


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(SHARED_DATA / "playbot/0_0/meta.json"))
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", default="256")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default="bench_render.json")
    args = ap.parse_args()
    base = sog.load(args.scene)
    lo, hi = torch.quantile(base.means[::10].float(), torch.tensor([0.02, 0.98]), dim=0)
    shifted = base.permute(torch.arange(len(base)))
    shifted.means = shifted.means + torch.tensor([0.5, 0.0, 0.5]) * (hi - lo)
    rows = []
    for name, scene in (("scene", base), ("x2", sog.Splats.concat([base, shifted]))):
        cams = orbit_cameras(scene.means, args.views, args.size)
        render(scene, cams[:1], backend=args.backend, device=args.device)        # warm-up
        t0 = time.perf_counter()
        render(scene, cams, backend=args.backend, device=args.device)
        sec = (time.perf_counter() - t0) / len(cams)
        rows.append({"scene": name, "gaussians": len(scene), "size": args.size, "views": len(cams),
                     "seconds_per_view": round(sec, 3), "threads": torch.get_num_threads(),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    print(f"{'scene':8} {'gaussians':>10} {'size':>6} {'views':>5} {'s/view':>8} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['scene']:8} {r['gaussians']:>10,} {r['size']:>6} {r['views']:>5} {r['seconds_per_view']:>8.3f} "
              f"{r['peak_rss_mb']:>12.1f}")
    with open(args.json, "w") as fh:
        json.dump({"scene": args.scene, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
