"""Choose the native profile's default settings on tuning views, against splat-transform's .sog or the sogv2 default.

The native default (`sog.codec.native.Options`: a rung of `sog.codec.native.LEVELS`, the number of importance layers and
the scale codebook's weight) decides how coarse each attribute is. This script makes that choice as the evaluation
protocol allows (docs/evaluation.md#evaluation-protocol): it renders only **tuning views**
(`sog.render.views.tuning_cameras`, `TUNING_VIEWS` = 48 views at 512 px, `TUNING_SEED`), never a judging view.

Per shared scene the reference is splat-transform's .sog (``--peer-cache DIR/<scene>_st.sog``, else made now with
``splat-transform -g cpu``; ``--against sogv2`` or a scene without one: sog's own sogv2 default). The importance
layers and the Morton order are computed once per scene, layer count and largest drop (`CompressOptions.layout`;
the sort changes the bytes a little, never the values); every candidate (a rung x layers x largest layer drop x
scale weight, optionally another SH codebook size) is encoded on that layout, decoded and rendered. The table gives
each candidate's bytes over the reference's, its mean and worst tuning-view PSNR minus the reference's, and its
bytes over the sogv2 default's. The chosen default is the candidate of smallest mean bytes ratio whose mean *and*
worst tuning view are at least the reference's (``--margin``) on every scene
(`tune_sogv2.choose`). Prints a table and writes JSON.

    nice -n 10 python scripts/tune_native.py --peer-cache DIR --json tune_native.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import sog
from sog.codec import native
from sog.render import render
from sog.render.views import tuning_cameras

from bench_fidelity import peer_sog  # (the same peer files)
from tune_sogv2 import common_arguments, report, tune_scenes, view_psnrs  # (the same rule, options, loop)


def compressed(scene, out: Path, profile: str, **kwargs) -> tuple[sog.Splats, int, object]:
    res = sog.compress(scene, out, sog.CompressOptions(profile=profile, sort="morton", **kwargs), quiet=True,
                       overwrite=True)
    return sog.load(out), out.stat().st_size, res


def layout_key(options: dict) -> tuple[int, int]:
    return options["layers"], options.get("layer_max_drop", native.Options().layer_max_drop)


def tune_scene(name: str, path: Path, candidates: list[dict], args, tmp: Path) -> dict:
    scene = sog.load(path)
    cams = tuning_cameras(scene, path, views=args.views, size=args.size)
    ref = render(scene, cams, device="cpu")
    v2, v2_bytes, _ = compressed(scene, tmp / "v2.sog", "sogv2")
    v2_psnrs = view_psnrs(ref, v2, cams)
    peer = None if args.against == "sogv2" else peer_sog(name, path, args, tmp)
    against = "splat-transform" if peer is not None else "sogv2 default"
    ref_psnrs = view_psnrs(ref, sog.load(peer), cams) if peer is not None else v2_psnrs
    ref_bytes = peer.stat().st_size if peer is not None else v2_bytes
    layouts = {}  # the split (and its drops) depends on the layer count and the largest drop only
    for key in sorted({layout_key(c["options"]) for c in candidates}):
        layouts[key] = compressed(scene, tmp / "layout.sog", "native",
                                  profile_options=dict(zip(("layers", "layer_max_drop"), key)))[2].layout
    rows = []
    for cand in candidates:
        t0 = time.perf_counter()
        back, nbytes, _ = compressed(scene, tmp / "c.sog", "native", profile_options=cand["options"],
                                     layout=layouts[layout_key(cand["options"])])
        psnrs = view_psnrs(ref, back, cams)
        rows.append({"candidate": cand["name"], "bytes": nbytes, "xst": nbytes / ref_bytes, "x_sogv2": nbytes / v2_bytes,
                     "psnr": float(np.mean(psnrs)), "psnr_min": min(psnrs),
                     "d_mean": float(np.mean(psnrs) - np.mean(ref_psnrs)), "d_worst": min(psnrs) - min(ref_psnrs),
                     "d_mean_sogv2": float(np.mean(psnrs) - np.mean(v2_psnrs)),
                     "d_worst_sogv2": min(psnrs) - min(v2_psnrs), "seconds": round(time.perf_counter() - t0, 2)})
        r = rows[-1]
        print(f"  {name:9s} {r['candidate']:16s} {r['bytes']:>10,} x{against[:5]} {r['xst']:.3f} xsogv2 {r['x_sogv2']:.3f}"
              f"  {r['psnr']:6.2f} / {r['psnr_min']:6.2f}  ({r['d_mean']:+.2f} / {r['d_worst']:+.2f} vs {against}; "
              f"{r['d_mean_sogv2']:+.2f} / {r['d_worst_sogv2']:+.2f} vs sogv2) {r['seconds']:.0f} s", flush=True)
    return {"scene": name, "count": len(scene), "against": against, "ref_bytes": ref_bytes,
            "ref_psnr": float(np.mean(ref_psnrs)), "ref_psnr_min": min(ref_psnrs), "sogv2_bytes": v2_bytes,
            "sogv2_psnr": float(np.mean(v2_psnrs)), "sogv2_psnr_min": min(v2_psnrs), "cameras": len(cams),
            "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common_arguments(ap, ["plant", "tarot", "kacytran", "playbot-2_0"])
    ap.add_argument("--against", choices=["st", "sogv2"], default="st",
                    help="the reference: splat-transform's .sog (the sogv2 default where there is none) or sogv2's")
    ap.add_argument("--levels", type=int, nargs="+", default=list(range(1, 9)), help="rungs of sog.codec.native.LEVELS")
    ap.add_argument("--layers", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--scale-weights", type=float, nargs="+", default=[native.Options().scale_weight])
    ap.add_argument("--max-drops", type=int, nargs="+", default=[native.Options().layer_max_drop],
                    help="most steps a layer is stored coarser than the first (layer_max_drop)")
    args = ap.parse_args(argv)
    candidates = [{"name": f"L{lv} x{layers}" + (f" d{d}" if layers > 1 else "") + f" sw{sw:g}"
                   + (f" h{h}" if h else ""),
                   "options": {**native.LEVELS[lv], "layers": layers, "layer_max_drop": d, "scale_weight": sw,
                               **({"sh_levels": h} if h else {})}}
                  for lv in args.levels for layers in args.layers for d in (args.max_drops if layers > 1 else [3])
                  for sw in args.scale_weights for h in args.sh_levels]
    with tempfile.TemporaryDirectory() as tmp:
        results = tune_scenes(args, lambda name, path: tune_scene(name, path, candidates, args, Path(tmp)),
                              lambda res: f"reference {res['against']} {res['ref_bytes']:,} B, tuning views "
                                          f"{res['ref_psnr']:.2f} / {res['ref_psnr_min']:.2f} dB; sogv2 default "
                                          f"{res['sogv2_bytes']:,} B, {res['sogv2_psnr']:.2f} / "
                                          f"{res['sogv2_psnr_min']:.2f} dB")
    today = native.Options()
    return report(results, candidates, args, f"native default today: rung {native.DEFAULT_LEVEL}, {today.layers} "
                                             f"layers, scale weight {today.scale_weight:g}")


if __name__ == "__main__":
    raise SystemExit(main())
