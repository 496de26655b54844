"""Choose the sogv2 profile's default settings on tuning views, against splat-transform's .sog.

The sogv2 default (`sog.codec.sogv2.DEFAULT_LEVEL`, ``Options.scale_weight``) is a choice of how coarse the lattices
inside the v2 fields are and how the scale codebook weights its values. This script makes that choice the way the
evaluation protocol allows (docs/evaluation.md#evaluation-protocol): it renders only **tuning views**
(`sog.render.views.tuning_cameras`, `TUNING_VIEWS` = 48 views (32 close, 16 orbit) at 512 px, `TUNING_SEED`, disjoint
from `sog eval`'s judging views) and
never a judging view, so the figures `sog eval` and `scripts/bench_fidelity.py` report afterwards are not the ones
the choice was fitted to.

For every shared scene with a splat-transform .sog (``--peer-cache DIR/<scene>_st.sog``, else made now with
``splat-transform -g cpu``), and every candidate (a rung of `sogv2.LEVELS` x a ``scale_weight``, optionally with fewer sh0 codebook entries), the scene in
Morton order is encoded as one grid (`sogv2.encode_layers`; the sort changes the bytes a little, never the values)
and decoded; the candidate's bytes over splat-transform's and its mean, 10th-percentile and worst tuning-view PSNR
minus splat-transform's are tabulated. The chosen default is the candidate with the smallest mean xST among those
whose mean, 10th percentile *and* worst tuning view are at least splat-transform's (plus ``--margin`` dB) on every
scene; when none is, the one that holds on the most scenes. Prints a table and writes JSON.

    nice -n 10 python scripts/tune_sogv2.py --peer-cache DIR --json tune_sogv2.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import sog
from sog import metrics
from sog.codec import sogv2
from sog.codec.base import Layer
from sog.datasets import SCENES, scene_path, shared_data
from sog.device import one_cpu_thread
from sog.grid import grid_shape
from sog.metrics import percentile
from sog.render import render
from sog.render.views import TUNING_VIEWS, tuning_cameras
from sog.sort.curves import point_keys

from bench_fidelity import peer_sog  # (the same peer files)


def view_psnrs(ref: torch.Tensor, splats, cams) -> list[float]:
    return metrics.view_psnrs(ref, render(splats, cams, device="cpu"))


def tune_scene(name: str, path: Path, candidates: list[dict], args, tmp: Path) -> dict | None:
    peer = peer_sog(name, path, args, tmp)
    if peer is None:
        return None
    scene = sog.load(path)
    scene = scene.permute(torch.argsort(point_keys(scene.means, "morton"), stable=True))
    cams = tuning_cameras(scene, path, views=args.views, size=args.size)
    ref = render(scene, cams, device="cpu")
    st = view_psnrs(ref, sog.load(peer), cams)
    st_bytes = peer.stat().st_size
    h, w = grid_shape(len(scene))
    palette = None
    if scene.shN.shape[1]:  # the SH palette does not depend on the rung: fitted once
        palette = sogv2.fit_sh_palette(sogv2.band_limited(scene, sogv2.Options()), sogv2.Options())
    rows = []
    for cand in candidates:
        t0 = time.perf_counter()
        meta, files = sogv2.encode_layers([Layer(scene, w, h, {})], sogv2.Options(**cand["options"]),
                                          sh_palette=palette)
        psnrs = view_psnrs(ref, sogv2.decode(meta, files.__getitem__), cams)
        nbytes = sum(len(v) for v in files.values())
        rows.append({"candidate": cand["name"], "bytes": nbytes, "xst": nbytes / st_bytes,
                     "psnr": float(np.mean(psnrs)), "psnr_p10": percentile(psnrs, 10), "psnr_min": min(psnrs),
                     "d_mean": float(np.mean(psnrs) - np.mean(st)), "d_p10": percentile(psnrs, 10) - percentile(st, 10),
                     "d_worst": min(psnrs) - min(st),
                     "seconds": round(time.perf_counter() - t0, 2)})
        r = rows[-1]
        print(f"  {name:9s} {r['candidate']:14s} {r['bytes']:>10,} {r['xst']:.3f}  {r['psnr']:6.2f} / "
              f"{r['psnr_p10']:6.2f} / {r['psnr_min']:6.2f}  ({r['d_mean']:+.2f} / {r['d_p10']:+.2f} / "
              f"{r['d_worst']:+.2f} vs splat-transform) {r['seconds']:.0f} s", flush=True)
    return {"scene": name, "count": len(scene), "st_bytes": st_bytes, "st_psnr": float(np.mean(st)),
            "st_psnr_p10": percentile(st, 10), "st_psnr_min": min(st), "cameras": len(cams), "rows": rows}


def choose(results: list[dict], candidates: list[dict], margin: float) -> dict:
    """The candidate of smallest mean xST that holds (mean, p10 where measured, and worst >= splat-transform +
    margin) on every scene; else the one holding on the most scenes (then smallest mean xST)."""
    scored = []
    for cand in candidates:
        rows = [next(r for r in res["rows"] if r["candidate"] == cand["name"]) for res in results]
        held = sum(all(r[k] >= margin for k in ("d_mean", "d_p10", "d_worst") if k in r) for r in rows)
        scored.append((-held, float(np.mean([r["xst"] for r in rows])), cand["name"], held))
    scored.sort()
    best = scored[0]
    return {"candidate": best[2], "scenes_held": best[3], "scenes": len(results), "mean_xst": best[1]}


def tune_scenes(args, tune, summary) -> list[dict]:
    """``tune(name, path)`` on each of ``args.scenes`` that is present (a result of None: no splat-transform .sog,
    skipped), printing ``summary(result)`` after each; the results."""
    results = []
    for name in args.scenes:
        path = scene_path(name, args.data)
        if not path.exists():
            print(f"{name}: {path} missing, skipped")
            continue
        res = tune(name, path)
        if res is None:
            print(f"{name}: no splat-transform .sog, skipped")
            continue
        print(f"{name}: {summary(res)}", flush=True)
        results.append(res)
    return results


def report(results: list[dict], candidates: list[dict], args, today: str) -> int:
    """Print the chosen candidate (`choose`) beside ``today``'s default and write ``args.json``; the exit code."""
    if not results:
        print("no scene could be tuned")
        return 1
    pick = choose(results, candidates, args.margin)
    print(f"\nchosen: {pick['candidate']} (holds on {pick['scenes_held']} of {pick['scenes']} scenes, "
          f"mean bytes ratio {pick['mean_xst']:.3f}); {today}")
    if args.json:
        Path(args.json).write_text(json.dumps({"views": args.views, "size": args.size, "margin": args.margin,
                                               "scenes": results, "chosen": pick}, indent=1))
    return 0


def common_arguments(ap: argparse.ArgumentParser, scenes: list[str]) -> None:
    """The options every tuning script takes: scenes, peer cache, tuning views, margin, JSON (``--sh-levels`` too)."""
    ap.add_argument("--data", default=str(shared_data()))
    ap.add_argument("--scenes", nargs="+", default=scenes, choices=list(SCENES))
    ap.add_argument("--peer-cache", default=None)
    ap.add_argument("--sh-levels", type=int, nargs="+", default=[0],
                    help="entries of the SH palette's coefficient codebook (0: the rung's own)")
    ap.add_argument("--views", type=int, default=TUNING_VIEWS)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--margin", type=float, default=0.0, help="dB above the reference a candidate must hold")
    ap.add_argument("--json", default=None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common_arguments(ap, ["plant", "tarot", "kacytran"])
    ap.add_argument("--levels", type=int, nargs="+", default=list(range(2, 10)),
                    help="rungs of sogv2.LEVELS to try")
    ap.add_argument("--scale-weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    ap.add_argument("--color-levels", type=int, nargs="+", default=[0],
                    help="sh0 codebook entries used (0: the rung's own)")
    args = ap.parse_args(argv)
    candidates = [{"name": f"L{lv} sw{sw:g}" + (f" c{c}" if c else "") + (f" h{h}" if h else ""), "level": lv,
                   "scale_weight": sw, "color_levels": c or sogv2.LEVELS[lv]["color_levels"],
                   "options": {**sogv2.LEVELS[lv], "scale_weight": sw, **({"color_levels": c} if c else {}),
                               **({"sh_levels": h} if h else {})}}
                  for lv in args.levels for sw in args.scale_weights for c in args.color_levels for h in args.sh_levels]
    with tempfile.TemporaryDirectory() as tmp, one_cpu_thread("cpu"):  # as `sog compress`: the same bytes
        results = tune_scenes(args, lambda name, path: tune_scene(name, path, candidates, args, Path(tmp)),
                              lambda res: f"splat-transform {res['st_bytes']:,} B, tuning views "
                                          f"{res['st_psnr']:.2f} / {res['st_psnr_p10']:.2f} / "
                                          f"{res['st_psnr_min']:.2f} dB")
    return report(results, candidates, args, f"sogv2 default today: L{sogv2.DEFAULT_LEVEL} "
                                             f"sw{sogv2.Options().scale_weight:g}")


if __name__ == "__main__":
    raise SystemExit(main())
