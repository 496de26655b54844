"""Benchmark: sog's files and splat-transform's `.sog` as two real viewers show them (issue 28, item 2).

Per shared scene (`sog.datasets`; default plant, tarot, kacytran) and per file, PSNR in the PlayCanvas engine
(`sog.render.engine`, its default per-asset renderer and RGBA8 canvas, one settle frame after the sort) and in
Spark (`sog.render.spark`, its defaults: 16-byte splats, anti-aliasing blur), each against ITS OWN render of the float original (the scene
written as a PLY), on the same judging views (`sog.render.views.judging_cameras`, close views only, ``--views``
of them at ``--size`` px): mean, p10 and worst view per viewer. Each viewer opens each file with its own loader.

Files: sog's default (``sog compress IN OUT.sog``), ``--profile native`` (no viewer reads native SOG: its rows
are the file decoded by sog to a PLY, what a user of those viewers would have to do), ``--quality small``,
``--quality high``, and splat-transform's ``.sog`` (the pinned release, ``-g cpu``, on the PLY; `sog.peers`).
Prints a table and writes JSON (--json); ``--keep DIR`` keeps (and reuses) the compressed files.

    nice -n 10 python scripts/bench_viewers.py --views 6 --json bench_out/bench_viewers.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

import sog
from sog import peers
from sog.datasets import SCENES, scene_path, shared_data
from sog.metrics import psnr_capped, view_psnrs
from sog.render.engine import EngineConfig, EngineRenderer
from sog.render.engine import missing_peers as engine_missing
from sog.render.spark import SparkConfig, SparkRenderer
from sog.render.spark import missing_peers as spark_missing
from sog.render.views import JUDGING_SIZE, judging_cameras

DEFAULT_SCENES = ["plant", "tarot", "kacytran"]
#: (label, CompressOptions fields, decoded by sog before the viewers see it)
OURS = [("sog default", {}, False),
        ("sog --profile native", {"profile": "native"}, True),
        ("sog --quality small", {"quality": "small"}, False),
        ("sog --quality high", {"quality": "high"}, False)]
ST_LABEL = "splat-transform .sog"
#: ``--files`` names: the last word of each label ("st" for splat-transform's file, always measured)
FILE_KEYS = [label.split()[-1].replace("-", "") for label, _, _ in OURS]
VIEWERS = {"playcanvas": (EngineRenderer, EngineConfig, engine_missing),
           "spark": (SparkRenderer, SparkConfig, spark_missing)}


def close_views(splats, views: int, size: int):
    """The first ``views`` close views of the judging set (`judging_cameras` names them ``..._close``)."""
    cams, _ = judging_cameras(splats, views=2 * views + 2, size=size)
    close = [c for c in cams if c.name.endswith("_close")][:views]
    if len(close) < views:
        raise SystemExit(f"only {len(close)} close judging views")
    return close


def make_files(name: str, path: Path, ply: Path, work: Path, quiet: bool, keys: list[str] = FILE_KEYS) -> list[dict]:
    """Each file of the table whose `FILE_KEYS` name is in ``keys``, and splat-transform's (compressed once; kept in
    ``work`` and reused when it is there)."""
    files = []
    for (label, fields, decoded), key in zip(OURS, FILE_KEYS):
        if key not in keys:
            continue
        out = work / f"{name}_{key}.sog"
        t, reused = time.perf_counter(), out.exists()
        if not reused:
            sog.compress(path, out, sog.CompressOptions(**fields), quiet=True)
        files.append({"file": label, "path": out, "bytes": out.stat().st_size, "decoded": decoded,
                      "encode_s": None if reused else round(time.perf_counter() - t, 1)})
        if not quiet:
            print(f"  {name}: {label} {files[-1]['bytes']:,} B", file=sys.stderr, flush=True)
    out = work / f"{name}_st.sog"
    t, reused = time.perf_counter(), out.exists()
    if not reused:
        subprocess.run([*peers.splat_transform_command(), "-q", "-w", "-g", "cpu", str(ply), str(out)],
                       check=True, capture_output=True, timeout=3600)
    files.append({"file": ST_LABEL, "path": out, "bytes": out.stat().st_size, "decoded": False,
                  "encode_s": None if reused else round(time.perf_counter() - t, 1)})
    return files


def stats(values: list[float]) -> dict:
    v = sorted(psnr_capped(x) for x in values)
    p10 = v[max(0, int(0.1 * (len(v) - 1)))]
    return {"mean": round(sum(v) / len(v), 2), "p10": round(p10, 2), "worst": round(v[0], 2),
            "views": [round(psnr_capped(x), 2) for x in values]}


def scene_and_ply(name: str, data: str, work: Path):
    """``(path, scene, ply)``: the shared scene's file, the scene, and the scene written as a PLY in ``work`` (the
    float original that every file is judged against; written once and reused)."""
    path = scene_path(name, data)
    original = sog.load(path)
    ply = work / f"{name}_original.ply"
    if not ply.exists():
        sog.save(original, ply)
    return path, original, ply


def bench_scene(name: str, args, work: Path) -> dict:
    path, original, ply = scene_and_ply(name, args.data, work)
    files = make_files(name, path, ply, work, args.quiet, args.files)
    if args.files_only:
        return {"scene": name, "rows": [{k: v for k, v in f.items() if k != "path"} for f in files]}
    cams = close_views(original, args.views, args.size)
    st_bytes = next(f["bytes"] for f in files if f["file"] == ST_LABEL)
    rows = [{k: v for k, v in f.items() if k != "path"} | {"x_st": round(f["bytes"] / st_bytes, 3)} for f in files]
    for viewer, (renderer, config, missing) in VIEWERS.items():
        if missing():
            print(f"{viewer} left out: missing {', '.join(missing())}", file=sys.stderr)
            continue
        t = time.perf_counter()
        options = {"timeout_s": args.timeout}
        if viewer == "playcanvas":
            options["settle_frames"] = args.settle_frames
        with renderer(ply, args.size, config(**options)) as r:
            reference = r.render(cams)
            for f, row in tqdm(list(zip(files, rows)), desc=f"{name} {viewer}", disable=args.quiet):
                r.load(sog.load(f["path"]) if f["decoded"] else f["path"])
                row[viewer] = stats(view_psnrs(r.render(cams), reference))
        if not args.quiet:
            print(f"  {name}: {viewer} {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    return {"scene": name, "count": len(original), "sh_degree": original.sh_degree, "views": len(cams),
            "rows": rows}


def each_scene(args, bench, cmd: str) -> list[dict]:
    """``bench(name, args, work)`` for each of ``args.scenes`` found in ``args.data``, in the folder ``args.keep``
    (or a temporary one); the results so far are written to ``args.json`` after each scene."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.scenes:
            if not scene_path(name, args.data).exists():
                print(f"skip {name}: not in {args.data}", file=sys.stderr)
                continue
            results.append(bench(name, args, work))
            Path(args.json).write_text(json.dumps({"command": cmd, "partial": True, "results": results}, indent=1))
    return results


def table(results: list[dict]) -> str:
    head = ("| scene | file | bytes | xST | PlayCanvas mean / p10 / worst | Spark mean / p10 / worst |\n"
            "|---|---|---|---|---|---|")
    lines = [head]
    for res in results:
        for row in res["rows"]:
            cells = []
            for viewer in VIEWERS:
                s = row.get(viewer)
                cells.append(f"{s['mean']:.2f} / {s['p10']:.2f} / {s['worst']:.2f}" if s else "-")
            label = row["file"] + (" (decoded to PLY)" if row["decoded"] else "")
            lines.append(f"| {res['scene']} | {label} | {row['bytes']:,} | {row['x_st']:.2f} | {cells[0]} | "
                         f"{cells[1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(shared_data()))
    p.add_argument("--scenes", nargs="*", default=DEFAULT_SCENES, choices=list(SCENES))
    p.add_argument("--views", type=int, default=6, help="close judging views per scene (default 6)")
    p.add_argument("--size", type=int, default=JUDGING_SIZE)
    p.add_argument("--timeout", type=float, default=300.0, help="each viewer's bound on one wait, in seconds")
    p.add_argument("--settle-frames", type=int, default=1,
                   help="engine frames drawn after its sort before the read-back (EngineConfig's default is 3; 1 "
                        "gave identical images on kacytran's close views at a third less time)")
    p.add_argument("--keep", default=None, help="folder for the compressed files (reused when they are there)")
    p.add_argument("--json", default="bench_viewers.json")
    p.add_argument("--txt", default=None, help="also write the table to this file")
    p.add_argument("--files", nargs="+", default=FILE_KEYS, choices=FILE_KEYS,
                   help="which of sog's files to measure (default all; splat-transform's .sog always)")
    p.add_argument("--files-only", action="store_true", help="only make the files (into --keep), no renders")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    cmd = "python scripts/bench_viewers.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = each_scene(args, bench_scene, cmd)
    if args.files_only:
        print(json.dumps(results, indent=1))
        return 0
    text = table(results)
    print(text)
    Path(args.json).write_text(json.dumps({"command": cmd, "views": args.views, "size": args.size,
                                           "results": results}, indent=1))
    if args.txt:
        Path(args.txt).write_text(f"$ {cmd}\n{text}\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
