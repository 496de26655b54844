"""Benchmark: which attribute's quantisation limits the render fidelity of a native .sog.

For each scene: encode with the native profile (``--quality`` preset; unsorted, since the order
changes the bytes but not the decoded values), decode, then render the original with *one*
attribute group replaced by its decoded values and report that PSNR against the original renders
(100 dB = exact). The attribute with the lowest PSNR spends the error budget; the plane bytes show
what each costs. Prints a table and writes JSON.

``--ladder``: how the defaults were chosen. On the sorted scene (``--sort``), start near-lossless
(16-bit positions, 8-bit rotations, 4096 scale and 256 colour levels) and step *one* setting at a time;
report the bytes of the planes that setting controls and the PSNR of the whole decoded scene. The
cheapest file at a given PSNR takes the steps with the smallest PSNR loss per byte saved.

    python scripts/bench_attributes.py --scenes plant --json bench_attributes.json
    python scripts/bench_attributes.py --scenes plant tarot --ladder --json bench_ladder.json
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

import sog
from sog import metrics
from sog.codec import native
from sog.codec.rotation import canonical_splats
from sog.datasets import SCENES, scene_path, shared_data
from sog.evaluate import evaluate
from sog.grid import grid_shape
from sog.render import render
from sog.render.views import JUDGING_SIZE, JUDGING_VIEWS, tuning_cameras
from sog.sort import sort_grid
from sog.sort.features import splat_features

ATTRIBUTES = ["means", "quats", "scales", "opacities", "sh0", "shN"]


BASE = {"means_bits": 16, "quat_bits": 8, "scale_levels": 4096, "color_levels": 256}
LADDER = {"means_bits": (15, 14, 13, 12, 11, 10), "quat_bits": (7, 6, 5), "scale_levels": (2048, 1024, 512, 256, 128),
          "color_levels": (128, 64, 32)}
PLANES = {"means_bits": ("means_u", "means_l"), "quat_bits": ("quats",), "scale_levels": ("scales", "scales_l"),
          "color_levels": ("sh0",)}


def ladder(name: str, scene: sog.Splats, args) -> dict:
    """Step each bit-depth setting alone from `BASE` on the sorted ``scene``: plane bytes and PSNR per step."""
    order = sort_grid(splat_features(scene), grid_shape(len(scene)), args.sort, seed=0, device="cpu")
    scene = scene.permute(order[:len(scene)])
    h, w = grid_shape(len(scene))
    cams = tuning_cameras(scene, views=args.views, size=args.size)  # picking defaults is tuning: never judging views
    ref = render(scene, cams, backend="cpu", device="cpu")
    row = {"scene": name, "count": len(scene), "sort": args.sort, "steps": []}
    for key, levels in [(None, (None,)), *LADDER.items()]:
        for level in levels:
            opts = BASE if key is None else {**BASE, key: level}
            meta, files = native.encode(scene, w, h, native.Options(**opts))
            test = render(native.decode(meta, lambda f: files[f]), cams, backend="cpu", device="cpu")
            psnr = sum(metrics.view_psnrs(ref, test)) / len(cams)
            sizes = {f.split(".")[0]: len(v) for f, v in files.items()}
            planes = PLANES[key] if key else tuple(sizes)
            step = {"setting": key or "base", "level": level, "bytes": sum(sizes.get(p, 0) for p in planes),
                    "total_bytes": sum(sizes.values()), "psnr": psnr}
            row["steps"].append(step)
            print(f"{name:9} {step['setting']:13} {str(level or ''):>5} {step['bytes']:>10,} {step['total_bytes']:>11,}"
                  f" {psnr:7.2f}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(shared_data()))
    ap.add_argument("--scenes", nargs="+", default=["plant", "tarot", "kacytran"], choices=list(SCENES))
    ap.add_argument("--quality", default="default", choices=list(native.PRESETS))
    ap.add_argument("--views", type=int, default=JUDGING_VIEWS)
    ap.add_argument("--size", type=int, default=JUDGING_SIZE)
    ap.add_argument("--json", default="bench_attributes.json")
    ap.add_argument("--ladder", action="store_true", help="step each bit-depth setting alone (see above)")
    ap.add_argument("--sort", default="morton", help="sorter for --ladder (shufflesoftsort: slower, the real bytes)")
    args = ap.parse_args()
    if args.ladder:
        print("scene     setting       level  plane bytes  file bytes    PSNR")

    results = []
    for name in args.scenes:
        path = scene_path(name, args.data)
        if not path.exists():
            print(f"{name}: {path} is missing, skipped")
            continue
        if args.ladder:
            results.append(ladder(name, sog.load(path), args))
            continue
        scene = canonical_splats(sog.load(path))  # a decoded quats or scales group can replace the original's
        h, w = grid_shape(len(scene))
        meta, files = native.encode(scene, w, h, native.Options(**native.preset_options(args.quality)))
        decoded = native.decode(meta, lambda f: files[f])
        row = {"scene": name, "count": len(scene), "quality": args.quality,
               "plane_bytes": {k: len(v) for k, v in files.items()},
               "psnr_all": evaluate(scene, decoded, views=args.views, size=args.size)["psnr"], "psnr_only": {}}
        for attr in ATTRIBUTES:
            if getattr(scene, attr).numel() == 0:
                continue
            hybrid = copy.copy(scene)
            setattr(hybrid, attr, getattr(decoded, attr))
            row["psnr_only"][attr] = evaluate(scene, hybrid, views=args.views, size=args.size)["psnr"]
        results.append(row)
        print(f"{name} ({len(scene):,} Gaussians, {args.quality}): all decoded {row['psnr_all']:.2f} dB; "
              "only one attribute decoded: " + ", ".join(f"{a} {v:.2f}" for a, v in row["psnr_only"].items()))
        print("    planes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(row["plane_bytes"].items(),
                                                                       key=lambda kv: -kv[1])), flush=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
