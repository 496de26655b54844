"""Benchmark: sog (the sogv2 default, the native profile) against splat-transform's .sog/.spz and gsplat.

For every shared scene (`sog.datasets`: ../shared/data, or --data): the PLY size, then one row per method with
bytes, ratio to the PLY, xST (bytes over splat-transform's .sog), mean, 10th-percentile and worst-view PSNR and
SSIM vs renders of the original on `sog eval`'s judging views only (`sog.evaluate.evaluate`: 48 views at 512 px,
32 close and 16 orbit, `JUDGING_SEED`), encode and decode seconds.
Prints a table and writes JSON (--json). ``--extra`` adds the playcanvas profile, the native presets and
the native ``--psnr`` row at splat-transform's PSNR.

    nice -n 10 python scripts/bench_compress.py --peer-cache DIR --json bench_compress.json

Peers: splat-transform is run on the scene's PLY (``-g cpu``) unless ``--peer-cache DIR`` holds
its outputs (``<scene>_st.sog``, ``<scene>_st.spz``) and a ``times.txt`` (``file seconds`` lines); such rows are
marked ``cached``.
The playbot .sog conversion takes about an hour, hence the cache. Our encode time is measured
from the scene's PLY (the cache's ``<scene>.ply`` when the scene is not a PLY) and includes
loading and sorting. Each scene is split into importance layers and sorted once, by the first row (the
native default); the other native rows reuse that layout (`CompressOptions.layout`) and add its importance
and sort seconds to their encode time. The playcanvas row reuses it only when it is one grid, and otherwise
sorts the whole scene itself. Decode time is ``sog.load`` of the
output. Peer decode time is our reading of their file. When splat-transform's .sog has a PSNR, one more
row, ``sog sog (--psnr X)``, asks our rate control (`sog.rate`) for the smallest native file at that PSNR:
the bytes-at-equal-quality comparison.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import sog
from sog import peers  # the pinned splat-transform
from sog.datasets import SCENES, scene_path, shared_data
from sog.io.ply import inria_ply_size
from sog.render.views import JUDGING_SIZE, JUDGING_VIEWS  # (sog eval's defaults)

#: the scenes of a default run; playbot-2_0 (125K) because splat-transform's .sog of the full level needs about an
#: hour of CPU (its SH k-means)
DEFAULT_SCENES = ["playbot", "playbot-2_0", "plant", "tarot", "kacytran"]


def default_sort() -> str:
    """ShuffleSoftSort when its module imports, else Morton order."""
    try:
        importlib.import_module("sog.sort.shuffle_softsort")
        return "shufflesoftsort"
    except ImportError:
        return "morton"


def quality(original, decoded, args) -> dict:
    """PSNR/SSIM vs renders of the original via `sog.evaluate`, when that module exists."""
    try:
        from sog.evaluate import evaluate
    except ImportError:
        return {"psnr": None, "ssim": None, "note": "sog.evaluate not available"}
    try:
        out = evaluate(original, decoded, views=args.views, size=args.size)
    except Exception as exc:  # a renderer problem must not lose the size/time figures
        return {"psnr": None, "ssim": None, "note": f"evaluate failed: {exc}"}
    return {"psnr": out.get("psnr"), "psnr_p10": out.get("psnr_p10"), "psnr_min": out.get("psnr_min"),
            "ssim": out.get("ssim")}


def plane_bytes(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as zf:
            return {i.filename: i.compress_size for i in zf.infolist()}
    except zipfile.BadZipFile:
        return {}


def run_ours(name, source, original, profile, extra, args, tmp, reuse=None) -> dict:
    """One row of ours. ``reuse`` = (an earlier row's `CompressResult.layout`, its importance + sort seconds):
    the row then skips both and its encode time adds those seconds, as if it had done them."""
    tag = extra.get("quality") or ("psnr" if extra.get("psnr") else "")
    out = Path(tmp) / f"{name}_{profile}{'_' + tag if tag else ''}.sog"
    opts = sog.CompressOptions(profile=profile, sort=args.sort, effort=args.effort, quality=extra.get("quality"),
                               sort_seconds=args.sort_seconds or None, target_psnr=extra.get("psnr"),
                               layout=None if reuse is None else reuse[0])
    t0 = time.perf_counter()
    res = sog.compress(source, out, opts, overwrite=True, quiet=True)
    enc = time.perf_counter() - t0
    stages = dict(res.seconds)
    if reuse is not None:
        enc += reuse[1]
        stages["sort"] = reuse[1]
    t0 = time.perf_counter()
    decoded = sog.load(out)
    dec = time.perf_counter() - t0
    label = f"sog {profile}" + (f" ({extra['quality']})" if extra.get("quality") else "")
    if extra.get("psnr"):
        label += f" (--psnr {extra['psnr']:.2f})"
    row = {"method": label, "bytes": out.stat().st_size, "encode_s": enc, "decode_s": dec, "sort": args.sort,
           "sort_reused": reuse is not None, "sort_seconds": args.sort_seconds, "stages": stages,
           "planes": plane_bytes(out), "cached": False, "result": res}
    row.update(quality(original, decoded, args))
    return row


def run_peer(name, ply, original, ext, args, tmp) -> dict | None:
    label = f"splat-transform {ext}"
    cached = Path(args.peer_cache) / f"{name}_st{ext}" if args.peer_cache else None
    if cached is not None and cached.exists():
        times = dict(line.split() for line in (Path(args.peer_cache) / "times.txt").read_text().splitlines()
                     if len(line.split()) == 2)
        out, enc, is_cached = cached, float(times.get(cached.name, "nan")), True
    else:
        if ply is None or args.no_peer_run:
            return None
        try:
            command = peers.splat_transform_command()  # the pinned release under the pinned Node 22
        except peers.PeerMissing as e:
            print(f"{label} left out: {e}", file=sys.stderr)
            return None
        out = Path(tmp) / f"{name}_st{ext}"
        t0 = time.perf_counter()
        subprocess.run([*command, "-q", "-w", "-g", "cpu", str(ply), str(out)], check=True, capture_output=True)
        enc, is_cached = time.perf_counter() - t0, False
    t0 = time.perf_counter()
    # a .spz has no frame marker, and 2.7.1 (RUB) and 3.x (the PLY's axes) differ: read it in the source's frame
    decoded = peers.read_peer_spz(out, original) if ext == ".spz" else sog.load(out)
    dec = time.perf_counter() - t0
    row = {"method": label, "bytes": out.stat().st_size, "encode_s": enc, "decode_s": dec, "sort": "theirs",
           "cached": is_cached, "planes": plane_bytes(out) if ext == ".sog" else {}}
    row.update(quality(original, decoded, args))
    return row


def run_gsplat(name, original, args, tmp) -> dict | None:
    """gsplat's PngCompression, only when gsplat and its extras (plas, torchpq) import."""
    try:
        from gsplat.compression import PngCompression
        import plas  # noqa: F401
        import torchpq  # noqa: F401
    except Exception:
        return None
    splats = {"means": original.means, "scales": original.scales, "quats": original.quats,
              "opacities": original.opacities, "sh0": original.sh0, "shN": original.shN}
    folder = Path(tmp) / f"{name}_gsplat"
    folder.mkdir(exist_ok=True)
    comp = PngCompression()
    t0 = time.perf_counter()
    comp.compress(str(folder), splats)
    enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = comp.decompress(str(folder))
    dec = time.perf_counter() - t0
    decoded = sog.Splats(**{k: back[k] for k in ("means", "scales", "quats", "opacities", "sh0", "shN")})
    row = {"method": "gsplat png", "bytes": sum(p.stat().st_size for p in folder.iterdir()), "encode_s": enc,
           "decode_s": dec, "sort": "plas", "cached": False}
    row.update(quality(original, decoded, args))
    return row


def bench_scene(name, args, tmp) -> dict:
    path = scene_path(name, args.data)
    original = sog.load(path)
    ply = path if path.suffix == ".ply" else (Path(args.peer_cache) / f"{name}.ply" if args.peer_cache else None)
    if ply is None or not ply.exists():  # no PLY at hand: write one
        ply = Path(tmp) / f"{name}.ply"
        sog.save(original, ply)
    ply_bytes = inria_ply_size(len(original), original.sh_degree)
    rows, reuse = [], {}
    plan = [("sogv2", {}), ("native", {})]
    if args.extra:
        plan += [("native", {"quality": "high"}), ("native", {"quality": "small"}), ("playcanvas", {})]
    for profile, extra in plan:
        if profile not in args.profiles:
            continue
        # each profile splits and sorts the scene once (sogv2's layers are row blocks of one grid, the native
        # profile's grids of their own); its other rows reuse that layout
        rows.append(run_ours(name, ply, original, profile, extra, args, tmp, reuse.get(profile)))
        res = rows[-1].pop("result")
        if profile not in reuse:
            reuse[profile] = (res.layout, res.seconds["sort"] + res.seconds.get("importance", 0.0))
        print(f"  {name}: {rows[-1]['method']} {rows[-1]['bytes']:,} B", file=sys.stderr, flush=True)
    for ext in (".sog", ".spz"):
        row = run_peer(name, ply, original, ext, args, tmp)
        if row:
            rows.append(row)
    st_psnr = next((r["psnr"] for r in rows if r["method"] == "splat-transform .sog"), None)
    if st_psnr is not None and args.extra and "native" in reuse:  # ours at splat-transform's PSNR: rate control
        rows.append(run_ours(name, ply, original, "native", {"psnr": st_psnr}, args, tmp, reuse["native"]))
        rate = rows[-1].pop("result").rate
        rows[-1]["rate"] = rate
        print(f"  {name}: {rows[-1]['method']} {rows[-1]['bytes']:,} B (level {rate['level']})", file=sys.stderr,
              flush=True)
    row = run_gsplat(name, original, args, tmp)
    if row:
        rows.append(row)
    for r in rows:
        r["ratio"] = ply_bytes / r["bytes"]
    st_sog = next((r["bytes"] for r in rows if r["method"] == "splat-transform .sog"), None)
    for r in rows:
        r["vs_st_sog"] = r["bytes"] / st_sog if st_sog else None
    return {"scene": name, "count": len(original), "sh_degree": original.sh_degree, "ply_bytes": ply_bytes,
            "rows": rows}


def fmt(v, spec):
    return "n/a" if v is None or v != v else format(v, spec)


def table(results, extra_rows=()) -> str:
    """The results as a text table: one block per scene, then the native profile's per-plane bytes."""
    lines = [f"{'scene':11} {'method':28} {'bytes':>11} {'ratio':>6} {'xSTsog':>6} {'PSNR':>6} {'p10':>6} {'min':>6} "
             f"{'SSIM':>6} {'enc s':>8} {'dec s':>6}  sort"]
    for res in results:
        lines.append(f"{res['scene']:11} {'PLY (INRIA layout)':28} {res['ply_bytes']:>11,} {1:>6.1f}")
        for r in res["rows"]:
            label = r["method"] + (" [cached]" if r["cached"] else "")
            lines.append(f"{'':11} {label:28} {r['bytes']:>11,} {r['ratio']:>6.1f} {fmt(r['vs_st_sog'], '6.3f'):>6} "
                         f"{fmt(r['psnr'], '6.2f'):>6} {fmt(r.get('psnr_p10'), '6.2f'):>6} "
                         f"{fmt(r.get('psnr_min'), '6.2f'):>6} "
                         f"{fmt(r['ssim'], '6.4f'):>6} {fmt(r['encode_s'], '8.1f'):>8} "
                         f"{fmt(r['decode_s'], '6.2f'):>6}  {r['sort']}")
        for r in res["rows"]:
            if r["method"] in ("sog sogv2", "sog native", "splat-transform .sog") and r.get("planes"):
                planes = sorted(r["planes"].items(), key=lambda kv: -kv[1])
                lines.append(f"{'':9}   planes of {r['method']}: " + ", ".join(f"{k} {v:,}" for k, v in planes))
    lines.extend(extra_rows)
    return "\n".join(lines)


def million(args, tmp) -> list[str]:
    """Decode seconds of 1M Gaussians (playbot plus a shifted copy), native default preset, and sog.load of it."""
    import torch

    src = sog.load(scene_path("playbot", args.data))
    shift = src.means.clone()
    shift[:, 0] += float(src.means[:, 0].max() - src.means[:, 0].min()) * 1.05
    big = sog.Splats(means=torch.cat([src.means, shift]), scales=torch.cat([src.scales] * 2),
                     quats=torch.cat([src.quats] * 2), opacities=torch.cat([src.opacities] * 2),
                     sh0=torch.cat([src.sh0] * 2), shN=torch.cat([src.shN] * 2))
    out = Path(tmp) / "million.sog"
    t0 = time.perf_counter()
    sog.compress(big, out, sog.CompressOptions(profile="native", sort="morton", effort=args.effort), overwrite=True,
                 quiet=True)
    enc = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        back = sog.load(out)
        times.append(time.perf_counter() - t0)
    assert len(back) == len(big)
    return [f"1M decode: {len(big):,} Gaussians, {out.stat().st_size:,} B native default (morton, encoded in "
            f"{enc:.1f} s); sog.load best of 3: {min(times):.2f} s (all: {', '.join(f'{t:.2f}' for t in times)})"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(shared_data()))
    p.add_argument("--scenes", nargs="*", default=DEFAULT_SCENES, choices=list(SCENES))
    p.add_argument("--peer-cache", default=None, help="folder with splat-transform outputs and times.txt")
    p.add_argument("--no-peer-run", action="store_true",
                   help="never run splat-transform here: a peer output missing from --peer-cache is left out")
    p.add_argument("--sort", default=default_sort())
    p.add_argument("--effort", type=int, default=4)
    p.add_argument("--extra", action="store_true",
                   help="also the playcanvas profile, the native high/small presets and native --psnr at ST's PSNR")
    p.add_argument("--profiles", nargs="*", default=["sogv2", "native", "playcanvas"],
                   help="which of our profiles to run (default: all the rows ask for)")
    p.add_argument("--views", type=int, default=JUDGING_VIEWS)
    p.add_argument("--size", type=int, default=JUDGING_SIZE)
    p.add_argument("--sort-seconds", type=float, default=sog.CompressOptions.sort_seconds,
                   help="time budget of the shufflesoftsort sorter (default: compress's default; 0: none)")
    p.add_argument("--json", default="bench_compress.json")
    p.add_argument("--txt", default=None, help="also write the table to this file")
    p.add_argument("--million", action="store_true",
                   help="also time decoding 1M Gaussians (playbot and a shifted copy)")
    args = p.parse_args(argv)
    results, extra = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            if not scene_path(name, args.data).exists():
                print(f"skip {name}: not in {args.data}", file=sys.stderr)
                continue
            results.append(bench_scene(name, args, tmp))
            Path(args.json).write_text(json.dumps({"partial": True, "sort": args.sort, "results": results},
                                                  indent=1))  # a long run keeps what it has measured
        if args.million and scene_path("playbot", args.data).exists():
            extra = million(args, tmp)
    text = table(results, extra)
    print(text)
    cmd = "python scripts/bench_compress.py " + " ".join(sys.argv[1:] if argv is None else argv)
    Path(args.json).write_text(json.dumps({"command": cmd, "sort": args.sort, "sort_seconds": args.sort_seconds,
                                           "views": args.views, "size": args.size, "results": results,
                                           "million": extra}, indent=1))
    if args.txt:
        Path(args.txt).write_text(f"$ {cmd}\n{text}\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
