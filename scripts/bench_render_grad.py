"""Benchmark the differentiable CPU renderer: forward + backward per view, tiled kernel against autograd.

    python scripts/bench_render_grad.py [--scene plant] [--views 8] [--reference-views 2] [--size 256]
                                        [--json bench_render_grad.json]

For each of ``--views`` tuning cameras (`sog.render.views.tuning_cameras`, never judging ones) it times one
training step's render work: activate the parameters (means, quats, log-scales, logit opacities, sh0, shN as
leaf tensors), `sog.render.render_tensors`, an L1 loss against a fixed target, ``loss.backward()``. Two paths
in the same run: ``tiles`` (projection and SH in torch autograd, compositing in the tiled numba kernel with
its hand-written backward pass) and ``pairs`` (autograd through `rasterize_pairs`, the reference), the latter
on the first ``--reference-views`` cameras only (it is slow). Prints a table (wall seconds per view, CPU
seconds per view, the slowest view, the ratio pairs / tiles on the shared views) and the two paths' relative gradient error on the first view, and writes JSON. A warm-up
step (numba compile, cached on disk) is not counted. Wall seconds grow with other load on the machine (the
load average is recorded); CPU seconds much less.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import sog
from sog.datasets import scene_path
from sog.render import render_tensors
from sog.render.views import tuning_cameras


def numba_threads() -> int | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.get_num_threads()


def step(params: dict[str, torch.Tensor], cam, target: torch.Tensor, backend: str) -> None:
    """One forward + backward of an L1 render loss (gradients land in ``params``)."""
    rgb, _ = render_tensors(params["means"], params["quats"], params["scales"].exp(),
                            torch.sigmoid(params["opacities"]), params["sh0"], params["shN"], cam,
                            "tiles" if backend == "tiles" else "cpu")
    (rgb - target).abs().mean().backward()


def time_path(splats, cams, targets, backend: str) -> dict:
    params = {k: v.float().clone().requires_grad_(True) for k, v in splats.tensors().items()}
    if backend == "tiles":
        step(params, cams[0], targets[0], backend)                               # warm-up (numba compile)
    each, cpu_each, first = [], [], None
    for cam, target in zip(cams, targets):
        for p in params.values():
            p.grad = None
        c0, t0 = time.process_time(), time.perf_counter()
        step(params, cam, target, backend)
        each.append(time.perf_counter() - t0)
        cpu_each.append(time.process_time() - c0)
        if first is None:
            first = {k: v.grad.detach().clone() for k, v in params.items()}
    return {"path": backend, "views": len(cams), "seconds_per_view": round(sum(each) / len(each), 3),
            "cpu_seconds_per_view": round(sum(cpu_each) / len(each), 3), "slowest_view_seconds": round(max(each), 3),
            "each": [round(e, 3) for e in each], "load_average": round(os.getloadavg()[0], 2),
            "grads": first}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="plant", help="a sog.datasets name or a path")
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--reference-views", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch's threads (default 1, as `compress` and its fine-tune run torch; the tiled "
                         "kernel uses numba's threads, all cores)")
    ap.add_argument("--json", default="bench_render_grad.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = scene_path(args.scene) if not os.path.exists(args.scene) else args.scene
    splats = sog.load(path)
    cams = tuning_cameras(splats, views=args.views, size=args.size)
    gen = torch.Generator().manual_seed(0)
    targets = [torch.rand(c.height, c.width, 3, generator=gen) for c in cams]
    tiles = time_path(splats, cams, targets, "tiles")
    n_ref = min(args.reference_views, len(cams))
    pairs = time_path(splats, cams[:n_ref], targets[:n_ref], "pairs")
    shared = sum(tiles["each"][:n_ref]) / n_ref
    ratio = round(pairs["seconds_per_view"] / shared, 1)
    # the two paths' gradients on the first view (equal up to float rounding)
    rel = {k: float((tiles["grads"][k] - g).norm() / g.norm().clamp(min=1e-30)) for k, g in pairs["grads"].items()}
    rows = []
    for r in (tiles, pairs):
        r = {k: v for k, v in r.items() if k != "grads"}
        rows.append(r)
    print(f"scene {args.scene} ({len(splats):,} Gaussians), {args.size} px, torch threads {torch.get_num_threads()}, "
          f"numba threads {numba_threads()}")
    print(f"{'path':6} {'views':>5} {'s/view':>8} {'cpu s/view':>10} {'slowest':>8} {'load':>5}")
    for r in rows:
        print(f"{r['path']:6} {r['views']:>5} {r['seconds_per_view']:>8.3f} {r['cpu_seconds_per_view']:>10.3f} "
              f"{r['slowest_view_seconds']:>8.3f} {r['load_average']:>5.1f}")
    print(f"pairs / tiles (same views): {ratio}x; gradient relative error: "
          + ", ".join(f"{k} {v:.1e}" for k, v in rel.items()))
    with open(args.json, "w") as fh:
        json.dump({"scene": str(path), "gaussians": len(splats), "size": args.size,
                   "threads": torch.get_num_threads(), "numba_threads": numba_threads(), "rows": rows, "ratio_pairs_over_tiles": ratio,
                   "gradient_relative_error": rel}, fh, indent=1)


if __name__ == "__main__":
    main()
