"""Benchmark: which attribute's quantisation limits the render fidelity of a native .sog.

For each scene: encode with the native profile (``--quality`` preset; unsorted, since the order
changes the bytes but not the decoded values), decode, then render the original with *one*
attribute group replaced by its decoded values and report that PSNR against the original renders
(100 dB = exact). The attribute with the lowest PSNR spends the error budget; the plane bytes show
what each costs. Prints a table and writes JSON.

    python scripts/bench_attributes.py --scenes plant --json bench_attributes.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import sog  # noqa: E402
from bench_compress import SCENES  # noqa: E402
from sog.codec import native  # noqa: E402
from sog.codec.rotation import canonical_rotations  # noqa: E402
from sog.evaluate import evaluate  # noqa: E402
from sog.grid import grid_shape  # noqa: E402

ATTRIBUTES = ["means", "quats", "scales", "opacities", "sh0", "shN"]


def canonical(scene: sog.Splats) -> sog.Splats:
    """The same scene with every rotation in the canonical form the encoder stores (same renders), so that
    a decoded quats or scales group can replace the original's on its own."""
    quats, scales = canonical_rotations(scene.quats.double().numpy(), scene.scales.double().numpy())
    out = copy.copy(scene)
    out.quats, out.scales = torch.from_numpy(quats).float(), torch.from_numpy(scales).float()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--scenes", nargs="+", default=["plant", "tarot", "kacytran"], choices=list(SCENES))
    ap.add_argument("--quality", default="default", choices=list(native.PRESETS))
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--json", default="bench_attributes.json")
    args = ap.parse_args()

    results = []
    for name in args.scenes:
        path = Path(args.data) / SCENES[name][0]
        if not path.exists():
            print(f"{name}: {path} is missing, skipped")
            continue
        scene = canonical(sog.load(path))
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
