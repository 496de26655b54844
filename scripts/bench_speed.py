"""Benchmark: where the time of `sog compress` goes, and the bytes the sorter buys per budget.

For each scene, one run of the default `sog compress` in a child process (the headline row): seconds of
every stage (load, importance, sort, encode split into the SH palette's k-means, the WebP / image-codec
encodes and the rest, write), peak RSS of the compress, bytes, and the seconds `sog.load` takes to read the
written file back in a fresh process. With ``--tools``, also `sog info`, `sog decompress` (to a PLY) and
`sog eval` (``--eval-views`` views at ``--eval-size`` px) on it, each in its own process (seconds, exit status,
peak RSS). Then, unless ``--no-sweep``, on the same importance layers (the child's layout, so that only the
order differs), the default profile's file's bytes for the row-major Morton order (the `morton` sorter), the
sorter's start order alone (budget 0) and ShuffleSoftSort budgets (runs) that take about ``--seconds`` each on this machine (measured from a first short
budget), and the default budget. The bytes are exact; seconds depend on how loaded the machine is (the 1-minute
load average is printed with every headline row). Prints a table and writes JSON.

    nice -n 10 python scripts/bench_speed.py --json bench_speed.json
    nice -n 10 python scripts/bench_speed.py --scenes playbot --no-sweep
    python scripts/make_big_scene.py /tmp/big_1m.ply --count 1000000     # scenes of make_big_scene.py
    nice -n 10 python scripts/bench_speed.py --scenes playbot big --big /tmp/big_1m.ply /tmp/big_6m.ply \
        --no-sweep --tools
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

from sog.datasets import SCENES, scene_path, shared_data
from sog.render.views import JUDGING_SIZE, JUDGING_VIEWS

#: the checkout: the children it starts import its sog (PYTHONPATH)
ROOT = Path(__file__).resolve().parent.parent


def profile_one(path: str, out: str, layout_file: str | None, options_json: str) -> dict:
    """The default compress of ``path``, in this (child) process, with the encode split by timers."""
    import threading

    import torch

    import sog
    from sog.codec import native, sogv2

    timers = {"palette": 0.0, "codec": 0.0}
    lock = threading.Lock()  # the sogv2 planes may be encoded in threads: their seconds are summed

    def timed(module, name, key):
        fn = getattr(module, name)

        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    timers[key] += time.perf_counter() - t0
        setattr(module, name, wrapper)

    timed(native, "fit_sh_palette", "palette")  # each profile imports it from sog.codec.palette
    timed(sogv2, "fit_sh_palette", "palette")
    timed(native, "smallest_image", "codec")  # the native profile's codec trials
    timed(sogv2, "encode_image", "codec")  # the sogv2 profile's WebP planes
    t0 = time.perf_counter()
    result = sog.compress(path, out, sog.CompressOptions(**json.loads(options_json)), overwrite=True, quiet=True)
    total = time.perf_counter() - t0
    if layout_file:
        torch.save([(index, drops) for index, drops in result.layout], layout_file)
    order, sh_degree, size, layers = result.order, result.sh_degree, result.bytes, result.layers
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stages = dict(result.seconds)
    stages["encode_palette"] = timers["palette"]
    stages["encode_codec_trials"] = timers["codec"]
    # the rest of encode (quantising, codebooks); with threaded planes the WebP seconds overlap the palette's
    stages["encode_rest"] = max(stages.get("encode", 0.0) - timers["palette"] - timers["codec"], 0.0)
    return {"count": len(order), "sh_degree": sh_degree, "bytes": size, "seconds": total, "stages": stages,
            "layers": layers, "peak_rss_mb": peak, "torch_threads": torch.get_num_threads()}


def load_child(path: str) -> dict:
    """Seconds of `sog.load` of ``path`` in a fresh process (``import sog`` done first, the rest counted: a first
    call's lazy imports and set-up are part of what a user waits for) and that process's peak RSS."""
    import sog
    t0 = time.perf_counter()
    sog.load(path)
    return {"load_sog_seconds": time.perf_counter() - t0,
            "load_sog_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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
    head = json.loads(out.stdout.strip().splitlines()[-1])
    out = subprocess.run([sys.executable, __file__, "--load", str(workdir / "default.sog")], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"sog.load of the compressed {path} failed:\n{out.stderr[-3000:]}")
    return {**head, **json.loads(out.stdout.strip().splitlines()[-1])}


def run_tool(args: list[str], threads: int | None) -> dict:
    """One `sog` command in its own process (this script with ``--tool``): seconds, exit status, peak RSS (MB) and
    its last line of output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--tool", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    err = proc.stderr.strip().splitlines()
    peak = json.loads(err[-1])["peak_rss_mb"] if err and err[-1].startswith('{"peak_rss_mb"') else None
    lines = proc.stdout.strip().splitlines() or err[:-1]
    return {"command": "sog " + " ".join(args), "seconds": seconds, "rc": proc.returncode, "peak_rss_mb": peak,
            "last_line": lines[-1][:300] if lines else ""}


def tool_child(args: list[str]) -> int:
    """Run `sog` with ``args`` in this process; its peak RSS goes to stderr as the last line."""
    from sog.cli import main
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
    return rc or 0


def tools(path: Path, sog_file: Path, workdir: Path, threads: int | None, views: int, size: int) -> dict:
    """`sog info`, `sog decompress` and `sog eval` on the written file."""
    rows = {}
    for name, args in [("info", ["info", "--json", str(sog_file)]),
                       ("decompress", ["decompress", str(sog_file), str(workdir / "back.ply"), "--force"]),
                       ("eval", ["eval", str(path), str(sog_file), "--views", str(views), "--size", str(size),
                                 "--json", "-q"])]:
        rows[name] = run_tool(args, threads)
        r = rows[name]
        print(f"  sog {name}: rc {r['rc']}, {r['seconds']:.1f} s; {r['last_line'][:160]}", flush=True)
        if name == "decompress":
            (workdir / "back.ply").unlink(missing_ok=True)
    return rows


def sweep_rows(path: Path, workdir: Path, seconds: list[float], probe: int) -> list[dict]:
    """Bytes of the default profile's file per order on the headline's importance layers."""
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
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        print(json.dumps(load_child(sys.argv[2])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--tool":
        sys.exit(tool_child(sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(shared_data()))
    ap.add_argument("--scenes", nargs="+", default=["plant", "tarot", "playbot-2_0"],
                    help=f"of {', '.join(SCENES)}, or 'big' (each file given by --big)")
    ap.add_argument("--big", nargs="+", default=[], help="scene files (e.g. from scripts/make_big_scene.py) for 'big'")
    ap.add_argument("--seconds", type=float, nargs="+", default=[1, 5, 20, 60],
                    help="sort seconds whose budgets (runs) the sweep tries")
    ap.add_argument("--probe", type=int, default=10, help="the first budget, timed to convert seconds to runs")
    ap.add_argument("--no-sweep", action="store_true", help="the headline compress only")
    ap.add_argument("--tools", action="store_true", help="also sog info, decompress and eval on each written file")
    ap.add_argument("--eval-views", type=int, default=JUDGING_VIEWS, help="views of the --tools sog eval (its default)")
    ap.add_argument("--eval-size", type=int, default=JUDGING_SIZE, help="image size of the --tools sog eval")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads, here and in the headline child (default 1: comparable on a shared machine; "
                         "0: torch's default)")
    ap.add_argument("--options", default="{}", help="JSON of CompressOptions fields for the headline")
    ap.add_argument("--json", default="bench_speed.json")
    args = ap.parse_args()

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    jobs = []
    for name in args.scenes:
        if name == "big":
            jobs += [(f"big:{Path(p).stem}", Path(p)) for p in args.big]
        elif name in SCENES:
            jobs.append((name, scene_path(name, args.data)))
        else:
            sys.exit(f"bench_speed: unknown scene {name!r} (choose from {', '.join(SCENES)}, big)")
    results = []
    for name, path in jobs:
        if not path.exists():
            print(f"{name}: not found at {path}, skipped")
            continue
        with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
            work = Path(tmp)
            load_before = os.getloadavg()
            print(f"{name}: default sog compress (load average {load_before[0]:.2f}) ...", flush=True)
            head = headline(path, work, args.threads, json.loads(args.options), not args.no_sweep)
            head["load_average_before"], head["load_average_after"] = load_before, os.getloadavg()
            st = head["stages"]
            print(f"  default: {head['count']:,} Gaussians, {head['bytes']:,} B in {head['seconds']:.1f} s, "
                  f"peak RSS {head['peak_rss_mb']:.0f} MB, sog.load {head['load_sog_seconds']:.1f} s; "
                  + ", ".join(f"{k} {v:.1f}" for k, v in st.items())
                  + f"; load average after {head['load_average_after'][0]:.2f}", flush=True)
            checks = tools(path, work / "default.sog", work, args.threads, args.eval_views, args.eval_size) \
                if args.tools else {}
            rows = [] if args.no_sweep else sweep_rows(path, work, args.seconds, args.probe)
            results.append({"scene": name, "path": str(path), "default": head, "tools": checks, "sweep": rows})

    print()
    print("| scene | N | bytes | s | load | importance | sort | palette | WebP/codec | encode rest | write"
          " | peak RSS MB | sog.load s | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d, st = r["default"], r["default"]["stages"]
        print(f"| {r['scene']} | {d['count']:,} | {d['bytes']:,} | {d['seconds']:.1f} | {st.get('load', 0):.1f} | "
              f"{st.get('importance', 0):.1f} | {st.get('sort', 0):.1f} | {st['encode_palette']:.1f} | "
              f"{st['encode_codec_trials']:.1f} | {st['encode_rest']:.1f} | {st.get('write', 0):.1f} | "
              f"{d['peak_rss_mb']:.0f} | {d['load_sog_seconds']:.1f} | "
              f"{d['load_average_before'][0]:.2f}-{d['load_average_after'][0]:.2f} |")
    if any(r["tools"] for r in results):
        print()
        print("| scene | command | rc | s | peak RSS MB |")
        print("|---|---|---|---|---|")
        for r in results:
            for t in r["tools"].values():
                peak = "" if t["peak_rss_mb"] is None else f"{t['peak_rss_mb']:.0f}"
                print(f"| {r['scene']} | `{t['command']}` | {t['rc']} | {t['seconds']:.1f} | {peak} |")
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
