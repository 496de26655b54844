"""Tuning: the re-fit's rate and steps after the default (pairwise) reduction, on held-out tuning views.

Each scene is reduced (`sog.reduce.reduce`) and re-fitted (`sog.train.refit.refit`) on tuning views 0-11 of
`tuning_cameras(views=24)` at 256 px, and judged against the whole scene's renders on tuning views 12-23, which
neither saw (never a judging view). Prints mean / p10 / worst PSNR per (scene, share removed, steps, lr_scale).

    nice -n 5 python scripts/tune_refit.py --scenes plant tarot kacytran --fractions 0.2,0.4,0.6 \\
        --configs '[[48, 1.0], [48, 0.5], [48, 0.3]]'
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    from sog.datasets import scene_path
    from sog.io import load
    from sog.metrics import view_psnrs
    from sog.reduce import reduce, target_count
    from sog.render import render
    from sog.render.views import tuning_cameras
    from sog.train.refit import RefitConfig, refit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=["plant", "tarot", "kacytran"])
    ap.add_argument("--fractions", default="0.2,0.4,0.6", help="shares removed")
    ap.add_argument("--configs", default="[[48, 0.3]]", help="JSON list of [steps, lr_scale]")
    args = ap.parse_args()
    for name in args.scenes:
        s = load(scene_path(name))
        cams = tuning_cameras(s, views=24, size=256)
        fit, held = cams[:12], cams[12:]
        ref = render(s, held, backend="cpu", device="cpu")

        def report(label, scene):
            p = np.asarray(view_psnrs(render(scene, held, backend="cpu", device="cpu"), ref))
            print(f"{name:9s} {label:28s} {p.mean():6.2f} / {np.percentile(p, 10):6.2f} / {p.min():6.2f}", flush=True)

        for frac in (float(f) for f in args.fractions.split(",")):
            r = reduce(s, target_count(len(s), frac), fit, seed=0, method="pairs")
            report(f"{frac:.0%} removed, no re-fit", r.splats)
            for steps, lr in json.loads(args.configs):
                t0 = time.perf_counter()
                f = refit(r.splats, s, fit, RefitConfig(steps=steps, lr_scale=lr), seed=0)
                report(f"{frac:.0%} +{steps} lr {lr} ({time.perf_counter() - t0:.0f} s)", f.splats)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
