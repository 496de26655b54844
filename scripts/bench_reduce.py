"""Benchmark: render-guided reduction (`sog.reduce`) against the naive opacity × footprint prune.

For each scene and each share removed, the reduced scene is rendered from the judging views
(`sog.render.views.judging_cameras`, never used by the reduction) and compared with renders of the whole scene:
PSNR mean, 10th percentile and worst view, and the seconds the reduction took. The reduction measures on the
tuning views (`sog.render.views.tuning_cameras`). Prints a table and writes JSON (--json).

    nice -n 10 python scripts/bench_reduce.py --scenes plant --views 16 --size 256 --json bench_reduce.json

Methods: ``footprint`` (keep the largest opacity × footprint), ``pairs`` (`sog.reduce.reduce`, the default: pairwise
merging priced by the tuning views, `sog.reduce.pairs`), ``pairs no views`` (the same priced by area mass alone),
``pairs+refit`` (``pairs``, then the checked re-fit of ``sog compress --reduce``: `sog.train.refit.refit_checked`,
kept where other tuning views say it helps), ``render`` (``method="drop"``: keep the Gaussians whose removal the
tuning views see most), ``render+merge``
(the same with ``merge=True``), ``render 1 round`` (measured once, no re-measuring), ``render+refit`` (the
``render`` reduction, then `sog.train.refit.refit` at ``lr_scale`` 3, the rate chosen for it: --refit-steps of distillation of the survivors' colour, opacity
and scales towards renders of the whole scene from the tuning views; its seconds are the reduction's plus the
re-fit's, and the ``refit s`` column is the re-fit's alone), ``st-decimate`` and ``st-decimate-adaptive``
(splat-transform 3.x's ``--decimate N`` and ``--decimate-adaptive N`` to the same count, on its CPU path ``-g cpu``:
the peer's reducer, run in the same benchmark; its seconds include starting Node and reading the scene).
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
METHODS = ("footprint", "pairs", "pairs no views", "pairs+refit", "render", "render+merge", "render 1 round", "render no prior", "render+refit", "st-decimate",
           "st-decimate-adaptive")


def peer_decimate(path: Path, keep: int, adaptive: bool):
    """splat-transform's reduction of the scene file ``path`` to ``keep`` Gaussians, read back (same frame)."""
    import tempfile
    from types import SimpleNamespace

    from sog.io import load
    from sog.peers import run_splat_transform

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "decimated.ply"
        run_splat_transform("-q", "-w", "-g", "cpu", path, out,
                            "--decimate-adaptive" if adaptive else "--decimate", str(keep), capture_output=True,
                            check=True)
        splats = load(out)
    return SimpleNamespace(splats=splats, count=len(splats), merged=None)


def run_method(method: str, splats, keep: int, tuning, seed: int, cache: dict, refit_steps: int, path: Path):
    """-> (the `Reduction`, seconds of a re-fit in it, or 0). ``cache`` holds the ``render`` and ``pairs`` reductions (with
    its seconds) so that ``render+refit`` re-fits it instead of reducing again."""
    import dataclasses

    from sog.reduce import reduce
    from sog.render.views import tuning_cameras
    from sog.train.refit import RefitConfig, refit, refit_checked, refit_views

    if method in ("render+refit", "pairs+refit"):
        base = "render" if method == "render+refit" else "pairs"
        if cache.get((base, keep)) is None:
            t0 = time.perf_counter()
            cache[(base, keep)] = (reduce(splats, keep, tuning, seed=seed, method="drop" if base == "render" else
                                          "pairs"), time.perf_counter() - t0)
        cache.update(keep=keep, reduction=cache[(base, keep)][0], seconds=cache[(base, keep)][1])
        t0 = time.perf_counter()
        if base == "pairs":     # what `sog compress --reduce` does: kept where other tuning views say it helps
            check = tuning_cameras(splats, path, views=2 * len(tuning), size=tuning[0].width)
            fitted, report = refit_checked(cache["reduction"].splats, splats, refit_views(splats, path, check), check,
                                           RefitConfig(steps=refit_steps), seed=seed)
            cache["refit_kept"] = report["kept"]
        else:
            fitted = refit(cache["reduction"].splats, splats, tuning, RefitConfig(steps=refit_steps, lr_scale=3.0),
                           seed=seed).splats
        return dataclasses.replace(cache["reduction"], splats=fitted), time.perf_counter() - t0
    if method.startswith("st-decimate"):
        return peer_decimate(path, keep, adaptive=method.endswith("adaptive")), 0.0
    return _reduce(method, splats, keep, tuning, seed, cache), 0.0


def _reduce(method: str, splats, keep: int, tuning, seed: int, cache: dict):
    from sog.reduce import footprint_prune, reduce

    if method == "footprint":
        return footprint_prune(splats, keep)
    from sog.reduce.pairs import merge_pairs

    if method in ("render", "pairs"):
        t0 = time.perf_counter()
        out = reduce(splats, keep, tuning, seed=seed, method="drop" if method == "render" else "pairs")
        cache[(method, keep)] = (out, time.perf_counter() - t0)
        return out
    if method == "pairs no views":
        return merge_pairs(splats, keep, None, seed=seed)
    if method == "render+merge":
        return reduce(splats, keep, tuning, seed=seed, method="drop", merge=True)
    if method == "render 1 round":
        return reduce(splats, keep, tuning, seed=seed, method="drop", rounds=1)
    if method == "render no prior":
        return reduce(splats, keep, tuning, seed=seed, method="drop", prior=False)
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
    ap.add_argument("--refit-steps", type=int, default=None, help="render+refit: steps (default: REFIT_STEPS)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from sog.train.refit import REFIT_STEPS

    refit_steps = REFIT_STEPS if args.refit_steps is None else args.refit_steps
    rows = []
    for name in args.scenes.split(","):
        path = args.data / SCENES[name]
        splats = load(path)
        judging, source = judging_cameras(splats, path, views=args.views, size=args.size)
        tuning = tuning_cameras(splats, path, views=args.tuning_views, size=args.tuning_size)
        reference = render(splats, judging, backend="cpu", device="cpu")
        for fraction in (float(f) for f in args.fractions.split(",")):
            keep = target_count(len(splats), fraction)
            cache: dict = {}
            for method in args.methods.split(","):
                t0 = time.perf_counter()
                reduced, refit_seconds = run_method(method, splats, keep, tuning, args.seed, cache, refit_steps,
                                                     path)
                seconds = time.perf_counter() - t0
                if method.endswith("+refit"):
                    seconds = cache["seconds"] + refit_seconds
                psnrs = np.array(view_psnrs(render(reduced.splats, judging, backend="cpu", device="cpu"),
                                            reference))
                row = {"scene": name, "count": len(splats), "removed": fraction, "kept": reduced.count,
                       "method": method, "merged": reduced.merged, "psnr_mean": float(psnrs.mean()),
                       "psnr_p10": float(np.percentile(psnrs, 10)), "psnr_worst": float(psnrs.min()),
                       "seconds": round(seconds, 2), "refit_seconds": round(refit_seconds, 2),
                       "refit_steps": refit_steps if method.endswith("+refit") else 0, "views": f"{len(judging)} x {args.size} px ({source})",
                       "tuning": f"{len(tuning)} x {args.tuning_size} px",
                       "refit_kept": cache.get("refit_kept") if method == "pairs+refit" else None}
                rows.append(row)
                print(f"{name:9s} {fraction:4.0%} removed  {method:15s} kept {reduced.count:>8,}  "
                      f"PSNR mean {row['psnr_mean']:6.2f}  p10 {row['psnr_p10']:6.2f}  worst {row['psnr_worst']:6.2f}"
                      f"  {seconds:6.1f} s (refit {refit_seconds:5.1f} s"
                      f"{', kept' if row['refit_kept'] else ', dropped' if row['refit_kept'] is False else ''})",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
