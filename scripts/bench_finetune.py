"""Benchmark: what each part of the self-organising fine-tune is worth (issue 30, step 4).

For each scene, four files of the default profile, all keeping every Gaussian:

* ``no fine-tune``: ``sog compress`` as it is;
* ``sort + loss``: ``sog compress --finetune STEPS`` (the grid sorter's order, the neighbour loss of `sog.train` on
  that grid, re-sorted by the plugin's hook: `FinetuneConfig`'s defaults);
* ``sort, no loss``: the same fine-tune with the neighbour loss off (λ = 0), then the default compress;
* ``morton, no loss``: the fine-tune on the Morton order with neither the loss nor re-sorts, then ``--sort
  morton``.

The fine-tunes train on the tuning views (`sog.render.views.tuning_cameras`, ``FINETUNE_VIEWS`` at
``FINETUNE_SIZE``) towards renders of the scene itself; every file is judged against the original on the judging
views (``--views`` at ``--size``, never seen by any choice): bytes, mean / 10th-percentile / worst-view PSNR, and the
seconds each took. Prints a table and writes JSON (``--json``).

    nice -n 10 python scripts/bench_finetune.py --scenes kacytran --steps 300 --json bench_finetune.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import sog
from sog.datasets import scene_path
from sog.device import one_cpu_thread
from sog.evaluate import evaluate
from sog.render.views import JUDGING_SIZE, JUDGING_VIEWS, tuning_cameras
from sog.grid import grid_shape
from sog.sort import sort_grid
from sog.sort.features import splat_features
from sog.train.finetune import FINETUNE_SIZE, FINETUNE_VIEWS, FinetuneConfig, finetune

VARIANTS = ("no fine-tune", "sort + loss", "sort, no loss", "morton, no loss")


def tuned(splats: sog.Splats, order: torch.Tensor, cameras, config: FinetuneConfig, seed: int) -> sog.Splats:
    """``splats`` fine-tuned in the grid order ``order`` (N,) with ``config``, back in its own row order."""
    with one_cpu_thread():  # the pipeline's fine-tune is pinned to one thread too
        out = finetune(splats.permute(order), cameras, config, seed=seed).splats
    return out.permute(torch.argsort(order))


def run_scene(name: str, args, work: Path) -> list[dict]:
    source = scene_path(name)
    splats = sog.load(source)
    cameras = tuning_cameras(splats, source, views=FINETUNE_VIEWS, size=FINETUNE_SIZE)
    rows = []

    def judged(variant: str, path: Path, seconds: float) -> None:
        e = evaluate(splats, path, views=args.views, size=args.size)
        rows.append({"scene": name, "variant": variant, "count": len(splats), "bytes": path.stat().st_size,
                     "psnr": e["psnr"], "psnr_p10": e["psnr_p10"], "psnr_min": e["psnr_min"], "seconds": seconds})
        r = rows[-1]
        print(f"{name:10} {variant:16} {r['bytes']:>11,} {r['psnr']:7.2f} {r['psnr_p10']:7.2f} {r['psnr_min']:7.2f} "
              f"{seconds:8.1f} s", flush=True)

    t0 = time.perf_counter()
    plain = sog.compress(splats, work / f"{name}.plain.sog", sog.CompressOptions(seed=args.seed), quiet=True)
    judged("no fine-tune", work / f"{name}.plain.sog", time.perf_counter() - t0)

    t0 = time.perf_counter()
    sog.compress(splats, work / f"{name}.ft.sog", sog.CompressOptions(finetune=args.steps, seed=args.seed), quiet=True)
    judged("sort + loss", work / f"{name}.ft.sog", time.perf_counter() - t0)

    # the default file's grid order is the order the pipeline's fine-tune starts from, and its re-sorts use the
    # same sorter (`sog.pipeline._finetune`)
    defaults = sog.CompressOptions()
    resort = dict(sort=defaults.sort, sort_options=defaults.sort_plugin_options,
                  sort_weights=dict(defaults.sort_weights))
    t0 = time.perf_counter()
    scene = tuned(splats, plain.order, cameras, FinetuneConfig(steps=args.steps, smooth_weight=0.0, **resort),
                  args.seed)
    sog.compress(scene, work / f"{name}.noloss.sog", sog.CompressOptions(seed=args.seed), quiet=True)
    judged("sort, no loss", work / f"{name}.noloss.sog", time.perf_counter() - t0)

    t0 = time.perf_counter()
    n = len(splats)  # the order `--sort morton` gives
    morton = sort_grid(splat_features(splats, defaults.sort_weights), grid_shape(n), "morton", seed=args.seed)[:n]
    scene = tuned(splats, morton, cameras, FinetuneConfig(steps=args.steps, smooth_weight=0.0, sort_every=0),
                  args.seed)
    sog.compress(scene, work / f"{name}.morton.sog", sog.CompressOptions(sort="morton", seed=args.seed), quiet=True)
    judged("morton, no loss", work / f"{name}.morton.sog", time.perf_counter() - t0)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=["kacytran"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--views", type=int, default=JUDGING_VIEWS, help="judging views (default %(default)s)")
    ap.add_argument("--size", type=int, default=JUDGING_SIZE, help="judging image size (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"{'scene':10} {'variant':16} {'bytes':>11} {'mean':>7} {'p10':>7} {'worst':>7} {'seconds':>10}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            rows.extend(run_scene(name, args, Path(tmp)))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "steps": args.steps, "views": args.views,
                                               "size": args.size}, indent=1))


if __name__ == "__main__":
    main()
