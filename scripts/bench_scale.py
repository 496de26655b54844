"""Benchmark: out-of-core streamed SOG (`sog.stream`, `sog.distributed`) against scene size and worker count.

For each count, a tiled scene from scripts/make_big_scene.py is generated to --out (outside the repository; kept and
reused while its size matches), then `sog compress IN OUT/lod-meta.json` runs as a subprocess, serially and with
``--workers N``. Reported: wall time, peak RSS in total (the sum over the process tree, sampled every 0.2 s) and of
the largest single process (the driver or one Dask worker), bytes and bits per Gaussian; the 2-worker output is
compared byte for byte with the serial one; the pinned splat-transform reads level 0 and its count is compared.
Prints a table and writes JSON.

    nice -n 10 python scripts/bench_scale.py --counts 1000000,5000000 --workers 0,2 --lod 1 --json bench_scale.json
    nice -n 10 python scripts/bench_scale.py --split-only 10000000,50000000 --json bench_split.json
    python scripts/bench_scale.py --counts 50000000 --degree 0 --engine-only --engine-timeout 7200 --json e.json

``--engine`` (after each serial output) or ``--engine-only`` (on the outputs already in --out) opens the output in
the PlayCanvas engine (headless Chromium; SwiftShader on a machine without a GPU) as a viewer streams it: the count
the engine reports, two orbit renders at 256 px (their coverage), seconds, and any page error (a failure is
recorded, not raised).

Counts are Gaussians; ``--workers 0`` is the serial run. Figures depend on the machine and its load: say which.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def tree_hash(folder: Path) -> str:
    """One SHA-256 over every file under ``folder`` (relative names and bytes, in name order)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run_sampled(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``, sampling the RSS of it and all its descendants: wall seconds, peak total, peak per process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    root = psutil.Process(proc.pid)
    peak_total, peak_each = 0, {}
    while proc.poll() is None:
        total = 0
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in procs:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            peak_each[p.pid] = max(peak_each.get(p.pid, 0), rss)
        peak_total = max(peak_total, total)
        time.sleep(0.2)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    return {"seconds": seconds, "peak_total_rss": peak_total, "peak_process_rss": max(peak_each.values(), default=0),
            "processes": len(peak_each), "summary": summary}


def peer_level0_count(meta: Path, scratch: Path, env: dict) -> int | None:
    """The Gaussians the pinned splat-transform reads from level 0 of ``meta`` (written as a PLY, header read)."""
    from sog import peers

    try:
        command = peers.splat_transform_command()
    except peers.PeerMissing as exc:
        print(f"splat-transform not run: {exc}", file=sys.stderr)
        return None
    out = scratch / "level0.ply"
    out.unlink(missing_ok=True)
    subprocess.run([*command, "-q", "-w", "-g", "cpu", str(meta), "-L", "0", str(out)], check=True,
                   capture_output=True, timeout=3600, env=env)
    with open(out, "rb") as fh:
        head = fh.read(4096).split(b"end_header")[0].decode("latin-1")
    out.unlink()
    return next(int(line.split()[2]) for line in head.splitlines() if line.startswith("element vertex"))


def engine_check(meta: Path, scene: Path, timeout_s: float) -> dict:
    """Open ``meta`` (a lod-meta.json) in the PlayCanvas engine and render two orbit views of ``scene``'s box at
    256 px: the count the engine reports, each view's share of lit pixels, seconds, and the error if it failed."""
    import numpy as np
    import torch

    from sog.errors import SogError
    from sog.io.ply_memmap import PlyMemmap
    from sog.render.cameras import orbit_cameras
    from sog.render.engine import EngineConfig, EngineRenderer, missing_peers

    config = EngineConfig(unified=True, timeout_s=timeout_s)
    missing = missing_peers(config)
    if missing:
        return {"error": "not run: needs " + ", ".join(missing)}
    positions = PlyMemmap(scene).positions()
    sample = torch.from_numpy(np.ascontiguousarray(positions[:: max(1, len(positions) // 1_000_000)]))
    cameras = orbit_cameras(sample, 2, 256)
    t0 = time.perf_counter()
    try:
        with EngineRenderer(meta, 256, config) as r:
            images = r.render(cameras)
            count = r.info.get("numSplats")
    except SogError as exc:
        return {"error": str(exc), "seconds": round(time.perf_counter() - t0, 1)}
    coverage = [round(float((im.sum(-1) > 0.02).float().mean()), 3) for im in images]
    return {"engine_count": count, "coverage": coverage, "seconds": round(time.perf_counter() - t0, 1),
            "error": None}


def engine_cell(check: dict | None) -> str:
    """The engine column of the table: its count and seconds, ``failed`` or ``-`` (not run)."""
    if not check:
        return "-"
    if check.get("error"):
        return "failed"
    return f"{check['engine_count']:,} {check['seconds']:.0f} s"


def write_split_scene(path: Path, count: int, seed: int = 0) -> None:
    """A synthetic SH-0 INRIA PLY of ``count`` Gaussians (centres uniform in a 16-unit box, so that the count rule
    splits; the rest constant), written block by block through a memory map: only for timing the split, whose work
    is the centres'."""
    import numpy as np

    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {count}\n"
              + "".join(f"property float {n}\n" for n in names) + "end_header\n").encode()
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + 4 * len(names) * count)
    rows = np.memmap(path, dtype=[(n, "<f4") for n in names], mode="r+", offset=len(header), shape=(count,))
    gen = np.random.default_rng(seed)
    for start in range(0, count, 1 << 22):
        block = rows[start:start + (1 << 22)]
        for axis in "xyz":
            block[axis] = gen.uniform(-8, 8, len(block)).astype(np.float32)
        block["rot_0"], block["scale_0"], block["scale_1"], block["scale_2"] = 1.0, -4.0, -4.0, -4.0
    rows.flush()


SPLIT_CHILD = """
import json, resource, sys, time
from sog.io.ply_memmap import PlyMemmap
from sog.stream import split
t0 = time.perf_counter()
tree, parts = split(PlyMemmap(sys.argv[1]), int(sys.argv[2]), 16.0, 8192)
print(json.dumps({"seconds": time.perf_counter() - t0, "leaves": len(parts),
                  "largest": max(len(p.members[0]) for p in parts),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def split_only(counts: list[int], out: Path, chunk: int, env: dict) -> list[dict]:
    """The split alone (`sog.stream.split`: centres in one pass, the k-d tree) of synthetic SH-0 scenes, in a child
    process each: seconds, leaves, the largest leaf, peak RSS (the driver's share of a chunked run's memory)."""
    rows = []
    for count in counts:
        path = out / f"split_{count}.ply"
        if not path.is_file():
            write_split_scene(path, count)
        done = subprocess.run([sys.executable, "-c", SPLIT_CHILD, str(path), str(chunk)], check=True,
                              capture_output=True, env=env, cwd=ROOT)
        row = {"count": count, "file_bytes": path.stat().st_size, **json.loads(done.stdout.decode())}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1000000,5000000", help="comma-separated scene sizes (Gaussians)")
    ap.add_argument("--workers", default="0,2", help="comma-separated worker counts (0: serial)")
    ap.add_argument("--degree", type=int, default=3, choices=(0, 1, 2, 3))
    ap.add_argument("--lod", type=int, default=1, help="levels of detail (1: level 0 only, no reduction)")
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--sort-budget", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("/tmp/sog_scale"), help="scenes and outputs (not the repo)")
    ap.add_argument("--no-peer", action="store_true", help="skip the splat-transform check")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--engine", action="store_true", help="open each serial output in the PlayCanvas engine")
    ap.add_argument("--engine-only", action="store_true",
                    help="only the engine check, on the serial outputs already in --out")
    ap.add_argument("--engine-timeout", type=float, default=3600.0, help="seconds for each wait of the engine check")
    ap.add_argument("--split-only", default=None, metavar="COUNTS",
                    help="time only the split (centres and k-d tree) of synthetic SH-0 scenes of these counts")
    args = ap.parse_args()
    if ROOT in args.out.resolve().parents:
        raise SystemExit("bench_scale: --out must be outside the repository")
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.setdefault("SOG_NODE_MODULES", str(ROOT / "node_modules"))
    from sog.io.ply import inria_ply_size

    if args.split_only:
        rows = split_only([int(c) for c in args.split_only.split(",")], args.out, args.chunk_size or 512 * 1024, env)
        print(f"{'count':>12} {'file GB':>8} {'seconds':>8} {'leaves':>7} {'largest':>9} {'peak RSS MB':>11}")
        for r in rows:
            print(f"{r['count']:>12,} {r['file_bytes'] / 1e9:>8.2f} {r['seconds']:>8.1f} {r['leaves']:>7} "
                  f"{r['largest']:>9,} {r['peak_rss_mb']:>11,.0f}")
        if args.json:
            args.json.write_text(json.dumps({"split": rows, "load_average": os.getloadavg()}, indent=1))
        return

    if args.engine_only:
        rows = []
        for count in [int(c) for c in args.counts.split(",")]:
            meta = args.out / f"out_{count}_w0" / "lod-meta.json"
            if not meta.is_file():
                raise SystemExit(f"bench_scale: no serial output {meta}; run without --engine-only first")
            row = {"count": count, **engine_check(meta, args.out / f"tiled_{count}_sh{args.degree}.ply",
                                                  args.engine_timeout)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        print(f"{'count':>12} {'engine count':>12} {'seconds':>8} {'coverage':>12}  error")
        for r in rows:
            print(f"{r['count']:>12,} {str(r.get('engine_count', '-')):>12} {r.get('seconds', 0):>8.1f} "
                  f"{str(r.get('coverage', '-')):>12}  {r['error'] or ''}")
        if args.json:
            args.json.write_text(json.dumps({"engine": rows, "load_average": os.getloadavg(),
                                             "cpus": os.cpu_count()}, indent=1))
        return

    rows = []
    for count in [int(c) for c in args.counts.split(",")]:
        scene = args.out / f"tiled_{count}_sh{args.degree}.ply"
        header_free = inria_ply_size(count, args.degree) - 4 * 3 * count  # make_big_scene writes no normals
        if not scene.is_file() or abs(scene.stat().st_size - header_free) > 4096:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_big_scene.py"), str(scene), "--count",
                            str(count), "--degree", str(args.degree), "--force"], check=True, env=env, cwd=ROOT)
            print(f"generated {scene} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        serial_hash = None
        for workers in [int(w) for w in args.workers.split(",")]:
            out = args.out / f"out_{count}_w{workers}"
            cmd = [sys.executable, "-m", "sog.cli", "compress", str(scene), str(out / "lod-meta.json"), "--lod",
                   str(args.lod), "--json", "-q", "-f"]
            cmd += ["--workers", str(workers)] if workers else []
            cmd += ["--chunk-size", str(args.chunk_size)] if args.chunk_size else []
            cmd += ["--sort-budget", str(args.sort_budget)] if args.sort_budget is not None else []
            print(f"{count:,} Gaussians, {workers or 'serial'} worker(s) ...", file=sys.stderr, flush=True)
            m = run_sampled(cmd, env)
            digest = tree_hash(out)
            if workers == 0:
                serial_hash = digest
            s = m["summary"]
            row = {"count": count, "degree": args.degree, "lod": args.lod, "workers": workers,
                   "seconds": round(m["seconds"], 1), "stages": s["stages"],
                   "peak_total_rss_mb": round(m["peak_total_rss"] / 2**20), "processes": m["processes"],
                   "peak_process_rss_mb": round(m["peak_process_rss"] / 2**20), "bytes": s["bytes"],
                   "bits_per_gaussian": round(s["bits_per_gaussian"], 3), "sha256": digest,
                   "same_as_serial": None if serial_hash is None or workers == 0 else digest == serial_hash,
                   "seconds_per_million": round(m["seconds"] / (count / 1e6), 1)}
            if not args.no_peer and workers == 0:
                row["splat_transform_level0"] = peer_level0_count(out / "lod-meta.json", args.out, env)
            if args.engine and workers == 0:
                row["engine"] = engine_check(out / "lod-meta.json", scene, args.engine_timeout)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"{'count':>10} {'workers':>7} {'seconds':>8} {'s/M':>6} {'peak total MB':>13} {'peak proc MB':>12} "
          f"{'bytes':>12} {'bits/G':>7} {'same':>5} {'peer L0':>10} {'engine':>18}")
    for r in rows:
        print(f"{r['count']:>10,} {r['workers'] or 'serial':>7} {r['seconds']:>8.1f} {r['seconds_per_million']:>6.1f} "
              f"{r['peak_total_rss_mb']:>13,} {r['peak_process_rss_mb']:>12,} {r['bytes']:>12,} "
              f"{r['bits_per_gaussian']:>7.2f} {'-' if r['same_as_serial'] is None else str(r['same_as_serial']):>5} "
              f"{str(r.get('splat_transform_level0', '-')):>10} {engine_cell(r.get('engine')):>18}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load_average": os.getloadavg(), "cpus": os.cpu_count()},
                                        indent=1))


if __name__ == "__main__":
    main()
