"""Benchmark: the PlayCanvas engine (headless Chromium, SwiftShader) as an independent check of sog's renderer.

Two tables, printed and written as JSON (--json):

1. *Judge*: per scene, PSNR between the engine's render and sog's CPU renderer on the same cameras (sog eval's
   judging views, `sog.render.views.judging_cameras`), with and without the higher SH bands (stripped from the
   scene for both renderers). Columns: the engine's float target (no 8-bit screen, no size culling) against
   sog's renderer as `sog eval` runs it (gsplat's 0.3 px² dilation) and with the engine's dilation
   (`ENGINE_EPS2D`); the engine's RGBA8 canvas (a viewer's screenshot) against sog's default.
2. *Files*: per scene and compressed file (sog's SOG v2 profiles, splat-transform's .sog from --peer-cache,
   optionally other profiles decoded to PLY), PSNR against the original PLY measured twice: in the engine (both
   opened by its own loaders) and by sog's CPU renderer (what `sog eval` reports) on the same views.

    nice -n 10 python scripts/bench_engine.py --views 3 --size 256 --json bench_out/bench_engine.json

Rows of our files are written with ``--sort`` (default morton: the engine check is about the format and the
decoder, and ShuffleSoftSort's budget would dominate the run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import sog
from sog.datasets import SCENES, scene_path, shared_data
from sog.metrics import psnr
from sog.render import RasterConfig, render
from sog.render.engine import ENGINE_EPS2D, EngineConfig, EngineRenderer, missing_peers
from sog.render.views import judging_cameras

ROOT = Path(__file__).resolve().parent.parent
V2_PROFILES = ("playcanvas",)


def _psnrs(a: torch.Tensor, b: torch.Tensor) -> dict:
    values = [round(float(v), 2) for v in psnr(a, b)]
    return {"mean": round(sum(values) / len(values), 2), "worst": min(values), "views": values}


def _strip_sh(s: sog.Splats) -> sog.Splats:
    return replace(s, shN=s.shN[:, :0])


def judge_rows(name: str, splats: sog.Splats, cams, size: int, timeout: float) -> list[dict]:
    rows = []
    variants = [("SH", splats)] + ([("no SH", _strip_sh(splats))] if splats.sh_degree > 0 else [])
    for label, scene in variants:
        t = time.time()
        with EngineRenderer(scene, size, EngineConfig(float_target=True, min_pixel_size=0, timeout_s=timeout)) as r:
            eng_float = r.render(cams)
        with EngineRenderer(scene, size, EngineConfig(timeout_s=timeout)) as r:
            eng_canvas = r.render(cams)
        t_engine = time.time() - t
        t = time.time()
        cpu = render(scene, cams, backend="cpu")
        cpu_eng = render(scene, cams, backend="cpu", config=RasterConfig(eps2d=ENGINE_EPS2D))
        rows.append({"scene": name, "gaussians": len(splats), "sh_degree": splats.sh_degree, "variant": label,
                     "float_vs_sog": _psnrs(eng_float, cpu), "float_vs_sog_engine_eps": _psnrs(eng_float, cpu_eng),
                     "canvas_vs_sog": _psnrs(eng_canvas, cpu), "engine_s": round(t_engine, 1),
                     "cpu_s": round(time.time() - t, 1)})
        print_judge(rows[-1])
    return rows


def file_rows(name: str, splats: sog.Splats, original_ply: Path, cams, size: int, files: list[tuple[str, Path, int]],
              timeout: float) -> list[dict]:
    rows = []
    with EngineRenderer(original_ply, size, EngineConfig(timeout_s=timeout)) as r:
        reference = r.render(cams)
        cpu_reference = render(splats, cams, backend="cpu")
        for label, path, size_bytes in files:
            info = r.load(path)
            engine = r.render(cams)
            cpu = render(sog.load(path), cams, backend="cpu")
            rows.append({"scene": name, "file": label, "bytes": size_bytes,
                         "engine_splats": info.get("numSplats"), "engine": _psnrs(engine, reference),
                         "sog_cpu": _psnrs(cpu, cpu_reference)})
            print_file(rows[-1])
    return rows


def print_judge(row: dict):
    print(f"{row['scene']:<12} {row['gaussians']:>8,} SH{row['sh_degree']} {row['variant']:<6} "
          f"float vs sog {row['float_vs_sog']['mean']:6.2f} (worst {row['float_vs_sog']['worst']:6.2f})  "
          f"float vs sog@eps.075 {row['float_vs_sog_engine_eps']['mean']:6.2f} "
          f"(worst {row['float_vs_sog_engine_eps']['worst']:6.2f})  "
          f"canvas vs sog {row['canvas_vs_sog']['mean']:6.2f}  [{row['engine_s']:.0f}+{row['cpu_s']:.0f} s]",
          flush=True)


def print_file(row: dict):
    print(f"{row['scene']:<12} {row['file']:<28} {row['bytes']:>11,} B  engine {row['engine']['mean']:6.2f} "
          f"(worst {row['engine']['worst']:6.2f})  sog cpu {row['sog_cpu']['mean']:6.2f} "
          f"(worst {row['sog_cpu']['worst']:6.2f})  engine read {row['engine_splats']}", flush=True)


def _write(path: str, out: dict):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(shared_data()))
    p.add_argument("--scenes", default="kacytran,plant,tarot,playbot-3_0,playbot-2_0",
                   help=f"comma-separated, of {', '.join(SCENES)}")
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--profiles", default=",".join(V2_PROFILES),
                   help="profiles to compress with; non-v2 ones are decoded to PLY for the engine")
    p.add_argument("--sort", default="morton")
    p.add_argument("--peer-cache", default=None, help="folder with splat-transform outputs <scene>_st.sog")
    p.add_argument("--skip-judge", action="store_true")
    p.add_argument("--skip-files", action="store_true")
    p.add_argument("--timeout", type=float, default=600.0, help="bound of each engine wait, seconds")
    p.add_argument("--json", default=str(ROOT / "bench_out" / "bench_engine.json"))
    args = p.parse_args(argv)
    missing = missing_peers()
    if missing:
        print("bench_engine: missing " + ", ".join(missing), file=sys.stderr)
        return 2
    out = {"views": args.views, "size": args.size, "sort": args.sort, "judge": [], "files": []}
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        tmp = Path(tmp)
        for name in [n for n in args.scenes.split(",") if n]:
            src = scene_path(name, args.data)
            if not src.exists():
                print(f"{name}: not present at {src}, skipped")
                continue
            splats = sog.load(src)
            cams, _ = judging_cameras(splats, src, views=args.views, size=args.size)
            if not args.skip_judge:
                out["judge"] += judge_rows(name, splats, cams, args.size, args.timeout)
            if args.skip_files:
                _write(args.json, out)
                continue
            original = tmp / f"{name}.ply"
            sog.save(splats, original, overwrite=True)
            files = []
            for profile in [q for q in args.profiles.split(",") if q]:
                path = tmp / f"{name}-{profile}.sog"
                sog.compress(splats, path, sog.CompressOptions(profile=profile, sort=args.sort), quiet=True,
                             overwrite=True)
                if profile not in V2_PROFILES:           # the engine reads SOG v2 only: decode ours to PLY
                    decoded = tmp / f"{name}-{profile}-decoded.ply"
                    sog.decompress(path, decoded)
                    files.append((f"sog {profile} (decoded PLY)", decoded, path.stat().st_size))
                else:
                    files.append((f"sog {profile}", path, path.stat().st_size))
            cached = Path(args.peer_cache) / f"{name}_st.sog" if args.peer_cache else None
            if cached is not None and cached.is_file():
                files.append(("splat-transform .sog", cached, cached.stat().st_size))
            out["files"] += file_rows(name, splats, original, cams, args.size, files, args.timeout)
            _write(args.json, out)                     # after every scene, so a long run leaves its figures
    _write(args.json, out)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
