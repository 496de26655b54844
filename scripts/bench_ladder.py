"""Benchmark: sog's rate-quality ladder (count and bits chosen together) against splat-transform.

For each scene and ladder point (``--psnr DB`` for each DB of --targets, ``--quality small`` and the default),
sog compresses the scene (`sog.compress`: with a target, the count search tries fewer Gaussians as well as
coarser bits, on tuning views only), and the file is judged against renders of the original on the judging views
(`sog.evaluate.evaluate`: 48 views at 512 px by default, 32 close and 16 orbit): bytes, Gaussians kept, PSNR mean /
10th percentile / worst view, SSIM. Peers in the same run: splat-transform's .sog and .spz of the whole scene and,
for each ladder point that kept fewer Gaussians, splat-transform's ``--decimate`` to the same count followed by
its .sog (bytes and PSNR of that file). Prints a table and writes JSON (--json).

    nice -n 10 python scripts/bench_ladder.py --scenes kacytran plant --json bench_ladder.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import sog
from sog import peers
from sog.datasets import scene_path
from sog.evaluate import evaluate


def judged(original, path, args) -> dict:
    decoded = peers.read_peer_spz(path, original) if str(path).endswith(".spz") else sog.load(path)
    out = evaluate(original, decoded, views=args.views, size=args.size)
    return {"psnr": out["psnr"], "psnr_p10": out["psnr_p10"], "psnr_min": out["psnr_min"], "ssim": out.get("ssim")}


def st(*argv) -> float:
    t0 = time.perf_counter()
    peers.run_splat_transform("-q", "-w", "-g", "cpu", *map(str, argv), capture_output=True, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=["kacytran", "plant", "tarot", "playbot-2_0"])
    ap.add_argument("--targets", default="35,40,45,50", help="--psnr ladder points (dB); '' for none")
    ap.add_argument("--views", type=int, default=48)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.scenes:
            path = scene_path(name)
            original = sog.load(path)
            n = len(original)

            def add(row):
                rows.append({"scene": name, "source_count": n, **row})
                r = rows[-1]
                print(f"{name:12s} {r['method']:34s} {r['bytes']:>10,} x{r['bytes'] / st_bytes:5.3f} "
                      f"kept {r['kept']:>9,}  {r['psnr']:6.2f} / {r['psnr_p10']:6.2f} / {r['psnr_min']:6.2f}  "
                      f"ssim {r['ssim'] or float('nan'):.4f}  {r['seconds']:6.1f} s", flush=True)

            seconds = st(path, tmp / f"{name}_st.sog")
            st_bytes = (tmp / f"{name}_st.sog").stat().st_size
            add({"method": "splat-transform .sog", "bytes": st_bytes, "kept": n, "seconds": seconds,
                 **judged(original, tmp / f"{name}_st.sog", args)})
            seconds = st(path, tmp / f"{name}_st.spz")
            add({"method": "splat-transform .spz", "bytes": (tmp / f"{name}_st.spz").stat().st_size, "kept": n,
                 "seconds": seconds, **judged(original, tmp / f"{name}_st.spz", args)})
            points = [("default", {})] + [(f"--psnr {t}", {"target_psnr": float(t)}) for t in args.targets.split(",")
                                          if t]
            points.append(("--quality small", {"quality": "small"}))
            for label, extra in points:
                out = tmp / f"{name}_{len(rows)}.sog"
                t0 = time.perf_counter()
                result = sog.compress(path, out, sog.CompressOptions(**extra), quiet=True, overwrite=True)
                add({"method": f"sog {label}", "bytes": out.stat().st_size, "kept": result.count,
                     "seconds": time.perf_counter() - t0, **judged(original, out, args),
                     "counts": (result.rate or {}).get("counts")})
                if result.count < n:
                    ply = tmp / f"{name}_dec.ply"
                    seconds = st(path, ply, "--decimate", result.count)
                    seconds += st(ply, tmp / f"{name}_dec.sog")
                    add({"method": f"st --decimate {result.count} .sog", "bytes": (tmp / f"{name}_dec.sog").stat().st_size,
                         "kept": len(sog.load(ply)), "seconds": seconds, **judged(original, tmp / f"{name}_dec.sog", args)})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
