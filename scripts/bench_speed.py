"""Benchmark: where the time of `sog compress` goes, and the bytes the sorter buys per budget.

For each scene, one run of the default `sog compress` in a child process (the headline row): seconds of
every stage (load, importance, sort, encode split into the SH palette's k-means, the image-codec trials
and the rest, write), peak RSS and bytes. Then, on the same importance layers (the child's layout, so
that only the order differs), the native file's bytes for the row-major Morton order (the `morton`
sorter), the sorter's start order alone (budget 0) and ShuffleSoftSort budgets (runs) that take about
``--seconds`` each on this machine (measured from a first short budget), and the default budget. The
bytes are exact; seconds depend on how loaded the machine is. Prints a table and writes JSON.

    nice -n 10 python scripts/bench_speed.py --json bench_speed.json
    nice -n 10 python scripts/bench_speed.py --scenes big --big /tmp/big_1m.ply --no-sweep   # a scene of make_big_scene.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENES = {
    "plant": "marcelpadilla-splats/plant/plant.splat",
    "tarot": "marcelpadilla-splats/academic_tarot_cards/academic_tarot_cards.splat",
    "playbot-125k": "playbot/2_0/meta.json",  # a coarser LOD level of playbot (SH degree 2)
    "playbot": "playbot/0_0/meta.json",  # the full 500K level
}


def profile_one(path: str, out: str, layout_file: str | None, options_json: str) -> dict:
    """The default compress of ``path``, in this (child) process, with the encode split by timers."""
    import torch

    import sog
    from sog.codec import native
    from sog.render import importance

    timers = {"palette": 0.0, "codec": 0.0, "importance_render": 0.0}

    def timed(module, name, key):
        fn = getattr(module, name)

        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[key] += time.perf_counter() - t0
        setattr(module, name, wrapper)

    timed(native, "fit_sh_palette", "palette")
    timed(native, "smallest_image", "codec")
    t0 = time.perf_counter()
    result = sog.compress(path, out, sog.CompressOptions(**json.loads(options_json)), overwrite=True, quiet=True)
    total = time.perf_counter() - t0
    if layout_file:
        torch.save([(index, drops) for index, drops in result.layout], layout_file)
    stages = dict(result.seconds)
    stages["encode_palette"] = timers["palette"]
    stages["encode_codec_trials"] = timers["codec"]
    stages["encode_rest"] = stages.get("encode", 0.0) - timers["palette"] - timers["codec"]
    return {"count": result.count, "sh_degree": result.sh_degree, "bytes": result.bytes, "seconds": total,
            "stages": stages, "layers": result.layers,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def headline(path: Path, workdir: Path, threads: int | None, options: dict, sweep: bool) -> dict:
    layout_file = str(workdir / "layout.pt") if sweep else ""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, "--child", str(path), str(workdir / "default.sog"), layout_file,
           json.dumps(options)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"default compress of {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep_rows(path: Path, workdir: Path, seconds: list[float], probe: int) -> list[dict]:
    """Bytes of the native file per order on the headline's importance layers."""
    import torch

    import sog
    from sog.grid import grid_shape
    from sog.pipeline import SORT_BUDGET
    from sog.sort import sort_grid
    from sog.sort.features import splat_features

    splats = sog.load(path)
    layout = torch.load(workdir / "layout.pt")
    groups = [(torch.sort(index).values, drops) for index, drops in layout]  # the layers, order forgotten
    rows = []

    def row(label: str, method: str, budget: int | None = None) -> dict:
        t0 = time.perf_counter()
        parts = []
        for index, drops in groups:
            part = splats.permute(index)
            options = {"objective": "codec", "budget": budget} if method == "shufflesoftsort" else {}
            perm = sort_grid(splat_features(part), grid_shape(len(part)), method, seed=0, device="cpu", **options)
            parts.append((index[perm[:len(part)]], drops))
        sort_s = time.perf_counter() - t0
        result = sog.compress(splats, workdir / "x.sog", sog.CompressOptions(layout=parts), overwrite=True, quiet=True)
        r = {"order": label, "sorter": method, "budget": budget, "sort_seconds": sort_s, "bytes": result.bytes}
        rows.append(r)
        print(f"  {label:24s} {result.bytes:>11,d} B  sort {sort_s:7.1f} s", flush=True)
        return r

    row("morton (row-major)", "morton")
    row("start (budget 0)", "shufflesoftsort", 0)
    first = row(f"budget {probe}", "shufflesoftsort", probe)
    per_run = max(first["sort_seconds"] / probe, 1e-6)
    done = {0, probe}
    for s in seconds:
        b = max(int(round(s / per_run)), 1)
        if b not in done:
            done.add(b)
            row(f"budget {b} (~{s:g} s)", "shufflesoftsort", b)
    if SORT_BUDGET not in done:
        row(f"budget {SORT_BUDGET} (default)", "shufflesoftsort", SORT_BUDGET)
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(profile_one(*sys.argv[2:6])))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("SOG_SHARED_DATA", "/work/shared/data"))
    ap.add_argument("--scenes", nargs="+", default=["plant", "tarot", "playbot-125k"],
                    help=f"of {', '.join(SCENES)}, or 'big' (the file given by --big)")
    ap.add_argument("--big", default=None, help="a scene file (e.g. from scripts/make_big_scene.py) for 'big'")
    ap.add_argument("--seconds", type=float, nargs="+", default=[1, 5, 20, 60],
                    help="sort seconds whose budgets (runs) the sweep tries")
    ap.add_argument("--probe", type=int, default=10, help="the first budget, timed to convert seconds to runs")
    ap.add_argument("--no-sweep", action="store_true", help="the headline compress only")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads, here and in the headline child (default 1: comparable on a shared machine; "
                         "0: torch's default)")
    ap.add_argument("--options", default="{}", help="JSON of CompressOptions fields for the headline")
    ap.add_argument("--json", default="bench_speed.json")
    args = ap.parse_args()

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for name in args.scenes:
        path = Path(args.big) if name == "big" else Path(args.data) / SCENES[name]
        if not path.exists():
            print(f"{name}: not found at {path}, skipped")
            continue
        with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
            work = Path(tmp)
            print(f"{name}: default sog compress ...", flush=True)
            head = headline(path, work, args.threads, json.loads(args.options), not args.no_sweep)
            st = head["stages"]
            print(f"  default: {head['count']:,} Gaussians, {head['bytes']:,} B in {head['seconds']:.1f} s, "
                  f"peak RSS {head['peak_rss_mb']:.0f} MB; "
                  + ", ".join(f"{k} {v:.1f}" for k, v in st.items()), flush=True)
            rows = [] if args.no_sweep else sweep_rows(path, work, args.seconds, args.probe)
            if name == "big":
                t0 = time.perf_counter()
                import sog
                sog.load(work / "default.sog")
                head["load_sog_seconds"] = time.perf_counter() - t0
                print(f"  sog.load of the .sog: {head['load_sog_seconds']:.1f} s")
            results.append({"scene": name, "path": str(path), "default": head, "sweep": rows})

    print()
    print("| scene | N | default bytes | s | load | importance | sort | palette | codec trials | encode rest | write"
          " | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d, st = r["default"], r["default"]["stages"]
        print(f"| {r['scene']} | {d['count']:,} | {d['bytes']:,} | {d['seconds']:.1f} | {st.get('load', 0):.1f} | "
              f"{st.get('importance', 0):.1f} | {st.get('sort', 0):.1f} | {st['encode_palette']:.1f} | "
              f"{st['encode_codec_trials']:.1f} | {st['encode_rest']:.1f} | {st.get('write', 0):.1f} | "
              f"{d['peak_rss_mb']:.0f} |")
    if any(r["sweep"] for r in results):
        print()
        print("| scene | order | budget (runs) | sort s | bytes | vs Morton |")
        print("|---|---|---|---|---|---|")
        for r in results:
            morton = next((x["bytes"] for x in r["sweep"] if x["sorter"] == "morton"), None)
            for x in r["sweep"]:
                rel = "" if morton is None else f"{x['bytes'] / morton - 1:+.2%}"
                print(f"| {r['scene']} | {x['order']} | {'' if x['budget'] is None else x['budget']} | "
                      f"{x['sort_seconds']:.1f} | {x['bytes']:,} | {rel} |")
    info = {"command": " ".join(sys.argv), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "load_average": os.getloadavg(), "scenes": results}
    Path(args.json).write_text(json.dumps(info, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
