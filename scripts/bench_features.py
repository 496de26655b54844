"""Benchmark: which attributes to sort splats on, judged by the compressed size they give.

For each scene and each weight set (the first, "mix", is the reference) (`sog.sort.features.splat_features` weights), sort with
ShuffleSoftSort and compress with the native profile; report the bytes, the ratio to the default
weights, the neighbour ratio of the sort features and the sort seconds. The decoded values do not
depend on the order (palettes and quantisation see the same set), so bytes alone decide.
Prints a table and writes JSON.

    nice -n 10 python scripts/bench_features.py --json bench_features.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import sog
from sog.datasets import SCENES, scene_path, shared_data
from sog.grid import grid_shape
from sog.sort.features import splat_features
from sog.sort.losses import neighbour_ratio

#: playbot-2_0: a coarser LOD level of playbot (SH degree 2)
DEFAULT_SCENES = ["kacytran", "plant", "tarot", "playbot-2_0"]

WEIGHT_SETS = {
    "mix": {"means": 1.0, "sh0": 1.0, "scales": 0.5, "opacities": 0.25, "quats": 0.0, "shN": 0.0},
    "means only": {"means": 1.0, "sh0": 0.0, "scales": 0.0, "opacities": 0.0, "quats": 0.0, "shN": 0.0},
    "colour only": {"means": 0.0, "sh0": 1.0, "scales": 0.0, "opacities": 0.0, "quats": 0.0, "shN": 0.0},
    "means x2": {"means": 2.0, "sh0": 1.0, "scales": 0.5, "opacities": 0.25, "quats": 0.0, "shN": 0.0},
    "colour x2": {"means": 1.0, "sh0": 2.0, "scales": 0.5, "opacities": 0.25, "quats": 0.0, "shN": 0.0},
    "all attributes": {"means": 1.0, "sh0": 1.0, "scales": 0.5, "opacities": 0.25, "quats": 0.25, "shN": 0.5},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(shared_data()))
    ap.add_argument("--scenes", nargs="+", default=DEFAULT_SCENES, choices=list(SCENES))
    ap.add_argument("--sets", nargs="+", default=list(WEIGHT_SETS))
    ap.add_argument("--sort-seconds", type=float, default=None, help="time budget of each sort")
    ap.add_argument("--json", default="bench_features.json")
    args = ap.parse_args()

    rows = []
    for scene_name in args.scenes:
        path = scene_path(scene_name, args.data)
        if not path.exists():
            print(f"{scene_name}: not found at {path}, skipped")
            continue
        scene = sog.load(path)
        base = None
        for set_name in args.sets:
            weights = WEIGHT_SETS[set_name]
            options = sog.CompressOptions(sort_weights=weights, sort_seconds=args.sort_seconds)
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                result = sog.compress(scene, Path(tmp) / "x.sog", options, quiet=True)
                seconds = time.perf_counter() - t0
            x = splat_features(scene, WEIGHT_SETS["mix"])
            ratio = neighbour_ratio(x, result.order, grid_shape(len(scene)))
            base = base or result.bytes
            row = {"scene": scene_name, "weights": set_name, "n": len(scene), "bytes": result.bytes,
                   "vs_first": result.bytes / base, "neighbour_ratio_mix_features": ratio,
                   "sort_seconds": result.seconds["sort"], "seconds": seconds, "weight_values": weights}
            rows.append(row)
            print(f"{scene_name:13s} {set_name:15s} {result.bytes:>10,d} B  x{row['vs_first']:.3f}  "
                  f"ratio {ratio:.4f}  sort {row['sort_seconds']:.1f} s", flush=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
