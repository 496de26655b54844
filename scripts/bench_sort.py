"""Benchmark: grid sorters on random colours and on real splat attributes, against PLAS and Morton.

Part 1, 1024 random RGB colours on 32x32 (fixed seeds): SoftSort, Gumbel-Sinkhorn,
ShuffleSoftSort (defaults; ``-long``: groups of 6, radius x0.9, plateau 1e-5; ``-dpq``: see
`VARIANTS`), the PCA-bisection
start alone, and PLAS when ``plas`` is importable: DPQ16,
neighbour ratio, seconds, peak memory, learnable parameters.

Part 2, real splat features (`sog.sort.features.splat_features` of ``playbot``, the largest scene
in ../shared/data) at 65,536, 262,144 and 500,000 Gaussians (random subsets) and at 1,000,000
(playbot plus a shifted copy): Morton, ShuffleSoftSort and PLAS (``improvement_break=1e-4``):
neighbour ratio, seconds, peak RSS. PLAS sorts square grids only, so its 500,000 row
sorts the largest square subset (499,849).

Every row runs in a fresh Python process so that its peak RSS (``ru_maxrss``) is its own; the
sorter's time excludes loading. Prints a table and writes JSON.

    nice -n 10 python scripts/bench_sort.py --json bench_sort.json
    python scripts/bench_sort.py --part colours --seeds 0 1 2
    python scripts/bench_sort.py --part splats --sizes 65536 262144 --methods morton shufflesoftsort
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from sog.datasets import scene_path

COLOUR_METHODS = ["softsort", "sinkhorn", "pca", "shufflesoftsort", "shufflesoftsort-long", "shufflesoftsort-dpq",
                  "plas"]
#: rows that run a sorter with other options than its defaults: name -> (sorter, options)
VARIANTS = {"shufflesoftsort-long": ("shufflesoftsort", {"group": 6, "radius_decay": 0.9, "improvement_break": 1e-5,
                                                         "max_runs": 60}),
            # for DPQ: a fixed target per radius step (x0.93), groups of 8, 3 SoftSort steps, feature-space
            # groups every other run, no squared polish, 3 warm restarts from radius 3 kept by a local DPQ,
            # then 1300 runs of the rank polish (the loss DPQ is most sensitive to); at most 9.5 s
            "shufflesoftsort-dpq": ("shufflesoftsort", {"radius_decay": 0.93, "assign_runs": 60, "improvement_break": 0,
                                                        "window_factor": 1, "feature_groups": 2, "polish_runs": 0,
                                                        "restarts": 3, "restart_radius": 3, "group": 8, "steps": 3,
                                                        "rank_polish_runs": 1300,
                                                        "max_seconds": 9.5})}
SPLAT_METHODS = ["morton", "pca", "shufflesoftsort", "plas"]
SPLAT_SIZES = [65536, 262144, 500000, 1000000]
#: the features sorted in part 2: positions, colour, scales and opacity (a 10-channel mix, harder than
#: positions alone)
SPLAT_WEIGHTS = {"means": 1.0, "sh0": 1.0, "scales": 0.5, "opacities": 0.25, "quats": 0.0, "shN": 0.0}


# ---------------------------------------------------------------------------------------------
# one row, in a child process


def _features(kind: str, n: int, seed: int):
    import torch

    if kind == "colours":
        return torch.rand(n, 3, generator=torch.Generator().manual_seed(seed))
    import sog
    from sog.sort.features import splat_features

    scene = sog.load(scene_path("playbot"))
    if n > len(scene):  # playbot plus shifted copies, as a bigger scene
        copies = [scene]
        extent = scene.means.max(0).values - scene.means.min(0).values
        while sum(len(c) for c in copies) < n:
            shifted = scene.permute(torch.arange(len(scene)))
            shifted.means = shifted.means + extent * torch.tensor([1.1 * len(copies), 0.0, 0.0])
            copies.append(shifted)
        scene = sog.Splats.concat(copies)
    if n < len(scene):
        keep = torch.randperm(len(scene), generator=torch.Generator().manual_seed(seed))[:n]
        scene = scene.permute(keep.sort().values)
    return splat_features(scene, SPLAT_WEIGHTS)


def _plas(x, shape):
    import plas
    import torch

    h, w = shape
    n = x.shape[0]
    if h * w != n or h != w:
        raise RuntimeError("PLAS needs a full square grid")
    grid = x.T.reshape(x.shape[1], h, w).contiguous()
    _, idx = plas.sort_with_plas(grid, improvement_break=1e-4, seed=0)
    return idx.reshape(-1).long()


def run_row(spec: dict) -> dict:
    import torch

    from sog.grid import grid_shape
    from sog.sort import check_bijection, sort_grid
    from sog.sort.losses import dpq, neighbour_ratio
    from sog.sort.features import standardise
    from sog.sort.starts import pca_bisection

    torch.set_num_threads(int(spec.get("threads") or torch.get_num_threads()))
    n, method, seed = spec["n"], spec["method"], spec["seed"]
    if method == "plas" and spec["kind"] == "splats":
        n = math.isqrt(n) ** 2  # PLAS sorts square grids only: the largest square subset (500,000 -> 499,849)
    x = _features(spec["kind"], n, seed)
    n = x.shape[0]
    shape = (32, 32) if spec["kind"] == "colours" else grid_shape(n)
    sorter, options = VARIANTS.get(method, (method, {}))
    if sorter == "shufflesoftsort" and spec.get("sort_seconds"):
        options = {**options, "max_seconds": spec["sort_seconds"]}
    params = {"softsort": n, "sinkhorn": n * n, "shufflesoftsort": n}.get(sorter, 0)
    t0 = time.perf_counter()
    if method == "plas":
        order = _plas(x, shape)
    elif method == "pca":
        order = pca_bisection(standardise(x, x.device, x.dtype), shape)
    else:
        order = sort_grid(x, shape, sorter, seed=seed, device=spec.get("device", "auto"), **options)[:n]
    seconds = time.perf_counter() - t0
    check_bijection(order[:n], n)
    row = {**spec, "n": n, "grid": list(shape), "seconds": seconds, "params": params,
           "neighbour_ratio": neighbour_ratio(x, order, shape),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if spec["kind"] == "colours":
        row["dpq16"] = dpq(x, order, shape, 16)
    return row


# ---------------------------------------------------------------------------------------------
# orchestration


def child(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--row", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {**spec, "error": last}
    return json.loads(out.stdout.strip().splitlines()[-1])


def plas_available() -> bool:
    try:
        import plas  # noqa: F401
    except Exception:
        return False
    return True


def fmt(v, nd=4):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def print_table(rows: list[dict], title: str, colours: bool) -> None:
    print(f"\n{title}")
    head = ["method", "N", "seed", "DPQ16" if colours else "", "ratio", "seconds", "peak MB", "params"]
    print(" | ".join(h for h in head if h))
    for r in rows:
        if "error" in r:
            print(f"{r['method']} | {r['n']} | {r['seed']} | ERROR: {r['error']}")
            continue
        cells = [r["method"], str(r["n"]), str(r["seed"])]
        if colours:
            cells.append(fmt(r.get("dpq16")))
        cells += [fmt(r["neighbour_ratio"], 5), fmt(r["seconds"], 2), fmt(r["peak_rss_mb"], 0), str(r["params"])]
        print(" | ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["colours", "splats", "all"], default="all")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--baseline-seeds", type=int, default=1,
                    help="SoftSort and Gumbel-Sinkhorn (minutes each) run on the first this many seeds")
    ap.add_argument("--methods", nargs="+", help="restrict to these methods")
    ap.add_argument("--sizes", type=int, nargs="+", default=SPLAT_SIZES)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sort-seconds", type=float, default=None,
                    help="time budget of the shufflesoftsort rows (default: none, they run until they converge)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per row (default: torch's); 1 keeps rows honest beside other work")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per row")
    ap.add_argument("--json", default="bench_sort.json")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return

    have_plas = plas_available()
    results: dict = {"plas_available": have_plas, "colours": [], "splats": []}
    import torch

    results["machine"] = {"cpus": os.cpu_count(), "torch_threads": args.threads or torch.get_num_threads(),
                          "cuda": torch.cuda.is_available()}

    def wanted(method: str) -> bool:
        if args.methods and method not in args.methods:
            return False
        if method == "plas" and not have_plas:
            print("plas is not importable: its rows are skipped")
            return False
        return True

    if args.part in ("colours", "all"):
        for method in filter(wanted, COLOUR_METHODS):
            seeds = args.seeds[: args.baseline_seeds] if method in ("softsort", "sinkhorn") else args.seeds
            for seed in seeds:
                row = child({"kind": "colours", "n": 1024, "method": method, "seed": seed,
                             "device": args.device, "threads": args.threads,
                             "sort_seconds": args.sort_seconds}, args.timeout)
                results["colours"].append(row)
                Path(args.json).write_text(json.dumps(results, indent=1))  # keep what is done so far
                print(f"  colours {method} seed {seed}: " + (row.get("error") or
                      f"DPQ16 {row['dpq16']:.4f} ratio {row['neighbour_ratio']:.4f} {row['seconds']:.2f} s"),
                      flush=True)
    if args.part in ("splats", "all"):
        if not scene_path("playbot").is_file():
            print(f"no playbot scene at {scene_path('playbot')}: the splat part is skipped")
        else:
            for n in args.sizes:
                for method in filter(wanted, SPLAT_METHODS):
                    row = child({"kind": "splats", "n": n, "method": method, "seed": 0,
                                 "device": args.device, "threads": args.threads,
                                 "sort_seconds": args.sort_seconds}, args.timeout)
                    results["splats"].append(row)
                    Path(args.json).write_text(json.dumps(results, indent=1))
                    print(f"  splats {n} {method}: " + (row.get("error") or
                          f"ratio {row['neighbour_ratio']:.5f} {row['seconds']:.1f} s "
                          f"{row['peak_rss_mb']:.0f} MB"), flush=True)
    if results["colours"]:
        print_table(results["colours"], "1024 random colours, 32x32", True)
    if results["splats"]:
        print_table(results["splats"], "playbot splat features (means, sh0, scales, opacity)", False)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
