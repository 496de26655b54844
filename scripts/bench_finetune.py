"""Benchmark: what each part of the self-organising fine-tune is worth (issue 30, step 4).

For each scene, four files of the default profile, all keeping every Gaussian:

* ``no fine-tune``: ``sog compress`` as it is;
* ``sort + loss``: ``sog compress --finetune STEPS`` (the grid sorter's order, the neighbour loss of `sog.train` on
  that grid, re-sorted by the plugin's hook: `FinetuneConfig`'s defaults);
* ``sort, no loss``: the same fine-tune with the neighbour loss off (λ = 0), then the default compress;
* ``morton, no loss``: the fine-tune on the Morton order with neither the loss nor re-sorts, then ``--sort
  morton``;
* ``sort, no loss, QAT`` (``--qat STEPS``): as ``sort, no loss`` with its last STEPS steps trained through the
  default profile's quantisers (`sog.codec.sogv2.quantise`, straight-through); ``--level K`` judges every
  variant at rung K of `sogv2.LEVELS` instead of the default;
* with ``--reduce F``, two more: ``sog compress --reduce F`` and ``sog compress --reduce F --finetune STEPS`` (the
  fine-tune distils the whole scene: what the reduction cost is what it can win back).

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
from sog.codec import sogv2
from sog.datasets import scene_path
from sog.device import one_cpu_thread
from sog.evaluate import evaluate
from sog.render.views import JUDGING_SIZE, JUDGING_VIEWS, tuning_cameras
from sog.grid import grid_shape
from sog.sort import sort_grid
from sog.sort.features import splat_features
from sog.train.finetune import FINETUNE_SIZE, FINETUNE_VIEWS, FinetuneConfig, finetune

VARIANTS = ("no fine-tune", "sort + loss", "sort, no loss", "morton, no loss", "sort, no loss, QAT")


def tuned(splats: sog.Splats, order: torch.Tensor, cameras, config: FinetuneConfig, seed: int,
          quantise=None) -> sog.Splats:
    """``splats`` fine-tuned in the grid order ``order`` (N,) with ``config`` (through ``quantise`` in its QAT
    steps), back in its own row order."""
    with one_cpu_thread():  # the pipeline's fine-tune is pinned to one thread too
        out = finetune(splats.permute(order), cameras, config, seed=seed, quantise=quantise).splats
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

    rung = {} if args.level is None else dict(sogv2.LEVELS[args.level])

    def options(**fields) -> sog.CompressOptions:
        return sog.CompressOptions(seed=args.seed, profile_options=rung, **fields)

    t0 = time.perf_counter()
    plain = sog.compress(splats, work / f"{name}.plain.sog", options(), quiet=True)
    judged("no fine-tune", work / f"{name}.plain.sog", time.perf_counter() - t0)

    def reduced() -> None:
        for variant, fields in ((f"reduce {args.reduce:g}", {}), (f"reduce {args.reduce:g} + fine-tune",
                                                                  {"finetune": args.steps})):
            t1 = time.perf_counter()
            path = work / f"{name}.reduced{len(fields)}.sog"
            sog.compress(splats, path, options(reduce=args.reduce, **fields), quiet=True)
            judged(variant, path, time.perf_counter() - t1)

    if args.only_reduce and args.reduce is not None:
        reduced()
        return rows

    t0 = time.perf_counter()
    sog.compress(splats, work / f"{name}.ft.sog", options(finetune=args.steps), quiet=True)
    judged("sort + loss", work / f"{name}.ft.sog", time.perf_counter() - t0)

    # the default file's grid order is the order the pipeline's fine-tune starts from, and its re-sorts use the
    # same sorter (`sog.pipeline._finetune`)
    defaults = sog.CompressOptions()
    resort = dict(sort=defaults.sort, sort_options=defaults.sort_plugin_options,
                  sort_weights=dict(defaults.sort_weights))
    t0 = time.perf_counter()
    scene = tuned(splats, plain.order, cameras, FinetuneConfig(steps=args.steps, smooth_weight=0.0, **resort),
                  args.seed)
    sog.compress(scene, work / f"{name}.noloss.sog", options(), quiet=True)
    judged("sort, no loss", work / f"{name}.noloss.sog", time.perf_counter() - t0)

    t0 = time.perf_counter()
    n = len(splats)  # the order `--sort morton` gives
    morton = sort_grid(splat_features(splats, defaults.sort_weights), grid_shape(n), "morton", seed=args.seed)[:n]
    scene = tuned(splats, morton, cameras, FinetuneConfig(steps=args.steps, smooth_weight=0.0, sort_every=0),
                  args.seed)
    sog.compress(scene, work / f"{name}.morton.sog", options(sort="morton"), quiet=True)
    judged("morton, no loss", work / f"{name}.morton.sog", time.perf_counter() - t0)

    if args.reduce is not None:
        reduced()

    if args.qat:
        t0 = time.perf_counter()
        quantise = sogv2.PROFILE.quantiser(sogv2.Options(**rung))
        scene = tuned(splats, plain.order, cameras, FinetuneConfig(steps=args.steps, smooth_weight=0.0,
                                                                   qat_steps=args.qat, **resort), args.seed, quantise)
        sog.compress(scene, work / f"{name}.qat.sog", options(), quiet=True)
        judged("sort, no loss, QAT", work / f"{name}.qat.sog", time.perf_counter() - t0)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=["kacytran"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--views", type=int, default=JUDGING_VIEWS, help="judging views (default %(default)s)")
    ap.add_argument("--size", type=int, default=JUDGING_SIZE, help="judging image size (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--qat", type=int, default=0, help="also the QAT variant, its last QAT steps quantisation-aware")
    ap.add_argument("--reduce", type=float, default=None, help="also --reduce F with and without the fine-tune")
    ap.add_argument("--only-reduce", action="store_true", help="with --reduce: only the no-fine-tune row and those two")
    ap.add_argument("--level", type=int, default=None, help="a rung of sogv2.LEVELS for every file (default: none)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"{'scene':10} {'variant':16} {'bytes':>11} {'mean':>7} {'p10':>7} {'worst':>7} {'seconds':>10}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            rows.extend(run_scene(name, args, Path(tmp)))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "steps": args.steps, "qat": args.qat, "level": args.level,
                                               "reduce": args.reduce,
                                               "views": args.views,
                                               "size": args.size}, indent=1))


if __name__ == "__main__":
    main()
