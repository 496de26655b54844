"""Benchmark: where each renderer's error of a compressed file comes from, attribute by attribute (issue 28).

`bench_viewers.py` shows that the real viewers separate sog's default from splat-transform's `.sog` more than sog's
renderer does. Here each file is taken apart (`sog.attribution.one_attribute_scenes`): the original with only
its positions, or only its scales and rotations, opacities, colours (``sh0``) or SH rest, replaced by the file's
decoded values. Each such scene, and the whole file, is rendered by sog's renderer, the PlayCanvas engine and Spark
on the same close judging views as `bench_viewers.py`, each against its own render of the float original; a
group's PSNR is the error that group alone costs in that renderer (the groups' errors do not simply add).

Files: sog's default and splat-transform's `.sog` (the pinned release, ``-g cpu``, on the PLY), made as
`bench_viewers.py` makes them (``--keep DIR`` keeps and reuses them), and with ``--variant JSON`` (repeatable) the
default with those profile options (e.g. ``'{"color_levels": 256}'``), each row with its bytes and the PSNR of its
whole file on `sog eval`'s 48 judging views too, and the rms position error before and after both scenes' centres
are rounded to float16 (as Spark stores them). Prints a table and writes JSON.

    nice -n 10 python scripts/bench_viewer_attributes.py --scenes plant tarot --views 8 --keep DIR \
        --variant '{"color_levels": 256}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

import sog
from bench_viewers import ST_LABEL, VIEWERS, close_views, each_scene, make_files, scene_and_ply, stats  # (the same files and views)
from sog.attribution import matched, one_attribute_scenes
from sog.evaluate import evaluate
from sog.datasets import SCENES, shared_data
from sog.metrics import view_psnrs
from sog.render import render
from sog.render.views import JUDGING_SIZE

RENDERERS = ["sog", *VIEWERS]


def position_rms(a, b) -> float:
    """Root-mean-square difference of two (N, 3) position tensors, per coordinate."""
    return float(((a.double() - b.double()) ** 2).mean().sqrt())


def bench_scene(name: str, args, work: Path) -> dict:
    path, original, ply = scene_and_ply(name, args.data, work)
    files = make_files(name, path, ply, work, args.quiet, ["default"])
    for text in args.variant:
        options = json.loads(text)
        out = work / f"{name}_{'_'.join(f'{k}{v}' for k, v in sorted(options.items()))}.sog"
        if not out.exists():
            sog.compress(path, out, sog.CompressOptions(profile_options=options), quiet=True)
        files.append({"file": f"sog default + {text}", "path": out, "bytes": out.stat().st_size})
    cams = close_views(original, args.views, args.size)
    rows = []
    for f in files:
        decoded = sog.load(f["path"])
        judged = evaluate(original, decoded)  # the whole file on the 48 judging views
        f["judged"] = {k: round(judged[k], 2) for k in ("psnr", "psnr_p10", "psnr_min")}
        m = matched(original, decoded)  # one position match for the swaps and the rms
        scenes = one_attribute_scenes(m)
        rms = {"float32": position_rms(m.original.means, m.decoded.means),
               "float16": position_rms(m.original.means.half().float(), m.decoded.means.half().float())}
        rows += [{"file": f["file"], "bytes": f["bytes"], "judged": f["judged"], "group": g, "matched": m.unique,
                  "position_rms": rms, "scene": s}
                 for g, s in scenes.items()]
    for viewer in args.renderers:
        t = time.perf_counter()
        if viewer == "sog":
            reference = render(original, cams)
            for row in tqdm(rows, desc=f"{name} sog", disable=args.quiet):
                row["sog"] = stats(view_psnrs(render(row["scene"], cams), reference))
        else:
            renderer, config, missing = VIEWERS[viewer]
            if missing():
                print(f"{viewer} left out: missing {', '.join(missing())}", file=sys.stderr)
                continue
            with renderer(ply, args.size, config(timeout_s=args.timeout)) as r:
                reference = r.render(cams)
                for row in tqdm(rows, desc=f"{name} {viewer}", disable=args.quiet):
                    r.load(row["scene"])
                    row[viewer] = stats(view_psnrs(r.render(cams), reference))
        if not args.quiet:
            print(f"  {name}: {viewer} {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    for row in rows:
        del row["scene"]
    return {"scene": name, "count": len(original), "views": len(cams), "rows": rows}


def table(results: list[dict], renderers: list[str]) -> str:
    """Per file, its bytes and judged PSNR (48 judging views: mean / p10 / worst), then one line per swapped-in
    group with each renderer's mean / worst on the close views."""
    names = {"sog": "sog renderer", "playcanvas": "PlayCanvas", "spark": "Spark"}
    lines = ["| scene | file | swapped in | " + " | ".join(f"{names[r]} mean / worst" for r in renderers) + " |",
             "|---|---|---|" + "---|" * len(renderers)]
    for res in results:
        for row in res["rows"]:
            cells = [f"{row[r]['mean']:.2f} / {row[r]['worst']:.2f}" if r in row else "-" for r in renderers]
            j, rms = row["judged"], row["position_rms"]
            labels = {"all": f"the whole file ({row['bytes']:,} B; judged {j['psnr']:.2f} / {j['psnr_p10']:.2f} / "
                             f"{j['psnr_min']:.2f})",
                      "means": f"means (rms {rms['float32']:.1e}; {rms['float16']:.1e} both as float16)"}
            label = labels.get(row["group"], row["group"])
            lines.append(f"| {res['scene']} | {row['file']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(shared_data()))
    p.add_argument("--scenes", nargs="*", default=["plant", "tarot"], choices=list(SCENES))
    p.add_argument("--views", type=int, default=8, help="close judging views per scene (default 8)")
    p.add_argument("--size", type=int, default=JUDGING_SIZE)
    p.add_argument("--renderers", nargs="+", default=RENDERERS, choices=RENDERERS)
    p.add_argument("--variant", action="append", default=[], metavar="JSON",
                   help="also the default with these profile options (repeatable)")
    p.add_argument("--timeout", type=float, default=300.0, help="each viewer's bound on one wait, in seconds")
    p.add_argument("--keep", default=None, help="folder for the compressed files (reused when they are there)")
    p.add_argument("--json", default="bench_viewer_attributes.json")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    cmd = "python scripts/bench_viewer_attributes.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = each_scene(args, bench_scene, cmd)
    print(table(results, args.renderers))
    Path(args.json).write_text(json.dumps({"command": cmd, "views": args.views, "size": args.size,
                                           "st": ST_LABEL, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
