"""Benchmark fidelity as `sog eval` judges it: sog's default (sogv2) file, its native and playcanvas profiles against
splat-transform's .sog, on the shared scenes, by mean, 10th-percentile and worst judging view.

    nice -n 10 python scripts/bench_fidelity.py [--scenes plant tarot kacytran playbot-2_0] [--peer-cache DIR]
                                               [--sort morton] [--sort-seconds S] [--json bench_fidelity.json]

Per scene and file: bytes, xST (bytes / splat-transform's .sog bytes), mean, 10th-percentile and worst-view PSNR,
views under 40 dB, mean and worst-view SSIM, over `sog.evaluate.evaluate`'s default cameras (48 seeded judging
views at 512 px, 32 close and 16 orbit, seed 0: docs/evaluation.md#evaluation-protocol), against the input scene. splat-transform (``-g cpu``) is
run on the input unless ``--peer-cache DIR`` holds ``<scene>_st.sog``. ``playbot-2_0`` is playbot's 125,000-Gaussian
LOD level; ``playbot`` its full 500,000 level 0_0. The sorter changes the bytes, not the values: ``--sort
morton`` is a quick check of fidelity, the default (ShuffleSoftSort on its work budget) the figure for bytes. Prints
a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sog
from sog import peers  # the pinned splat-transform
from sog.datasets import SCENES, scene_path
from sog.evaluate import evaluate


def peer_sog(name: str, path: Path, args, tmp: Path) -> Path | None:
    """splat-transform's .sog of the scene: from the peer cache, else made now (None without splat-transform)."""
    if args.peer_cache and (Path(args.peer_cache) / f"{name}_st.sog").exists():
        return Path(args.peer_cache) / f"{name}_st.sog"
    try:
        command = peers.splat_transform_command()  # the pinned release under the pinned Node 22
    except peers.PeerMissing as e:
        print(f"{name}: no splat-transform .sog: {e}", file=sys.stderr)
        return None
    out = tmp / f"{name}_st.sog"
    subprocess.run([*command, "-q", "-w", "-g", "cpu", str(path), str(out)], check=True, capture_output=True)
    return out


def judged(original: Path, compressed: Path) -> dict:
    r = evaluate(original, compressed, device="cpu")
    return {"bytes": r["bytes"], "psnr": r["psnr"], "psnr_p10": r["psnr_p10"], "psnr_min": r["psnr_min"],
            "worst_view": r["worst_view"],
            "views_under_40": sum(p < 40 for p in r["psnr_views"]), "ssim": r["ssim"], "ssim_min": r["ssim_min"],
            "views": r["views"], "size": r["size"], "psnr_views": r["psnr_views"]}


def bench_scene(name: str, args, tmp: Path) -> list[dict]:
    path = scene_path(name)
    rows = []
    st = peer_sog(name, path, args, tmp)
    if st is not None:
        rows.append({"scene": name, "file": "splat-transform .sog", **judged(path, st)})
    for label, profile in (("sog default (sogv2)", "sogv2"), ("sog --profile native", "native"),
                           ("sog --profile playcanvas", "playcanvas")):
        out = tmp / f"{name}_{profile}.sog"
        t0 = time.perf_counter()
        res = sog.compress(path, out, sog.CompressOptions(profile=profile, sort=args.sort,
                                                          sort_seconds=args.sort_seconds), quiet=True,
                           overwrite=True)
        row = {"scene": name, "file": label, "encode_s": round(time.perf_counter() - t0, 1),
               "layers": len(res.layers), "drops": [dict(d) for _, d in res.layout], **judged(path, out)}
        rows.append(row)
    st_bytes = rows[0]["bytes"] if st is not None else None
    for r in rows:
        r["xST"] = None if not st_bytes else r["bytes"] / st_bytes
    return rows


def table(rows: list[dict]) -> str:
    head = (f"{'scene':9} {'file':25} {'bytes':>10} {'xST':>6} {'PSNR':>7} {'p10':>7} {'worst':>7} {'<40dB':>5} {'SSIM':>7} "
            f"{'worst':>7} layers")
    lines = [head]
    for r in rows:
        xst = f"{r['xST']:.3f}" if r.get("xST") else "-"
        lines.append(f"{r['scene']:9} {r['file']:25} {r['bytes']:>10,} {xst:>6} {r['psnr']:>7.2f} "
                     f"{r['psnr_p10']:>7.2f} {r['psnr_min']:>7.2f} "
                     f"{r['views_under_40']:>5} {r['ssim']:>7.4f} {r['ssim_min']:>7.4f} {r.get('layers', '')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", nargs="+", default=["plant", "tarot", "kacytran", "playbot-2_0"],
                   choices=list(SCENES))
    p.add_argument("--peer-cache", default=None, help="folder holding <scene>_st.sog from splat-transform")
    p.add_argument("--sort", default="shufflesoftsort")
    p.add_argument("--sort-seconds", type=float, default=None, help="opt-in time cap of the sort (default: none, "
                   "compress's work budget, so the bytes repeat)")
    p.add_argument("--json", default="bench_fidelity.json")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            if not scene_path(name).exists():
                print(f"{name}: not present, skipped")
                continue
            rows += bench_scene(name, args, Path(tmp))
            print(table([r for r in rows if r["scene"] == name]), flush=True)
    print()
    print(table(rows))
    load = os.getloadavg()[0]
    with open(args.json, "w") as fh:
        json.dump({"protocol": "sog.evaluate defaults (12 seeded views, 512 px, seed 0)", "sort": args.sort,
                   "sort_seconds": args.sort_seconds, "load_average": load, "rows": rows}, fh, indent=1)
    print(f"(load average {load:.1f} at the end; JSON in {args.json})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
