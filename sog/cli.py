"""Command line: ``sog compress``, ``sog convert``, ``sog decompress``, ``sog info``, ``sog eval``, ``sog view``, ``sog export-html``.

Every user-facing problem is a `SogError`; it is printed as one line ``sog: error: ...``
and the exit code is 2 (numeric options are range-checked first: `check_options`). Outputs are
written to a temporary file and renamed, so a failed run leaves nothing behind; SIGTERM, SIGINT and
SIGHUP raise `sog.errors.Interrupted`, so that clean-up also runs when the run is stopped (exit
128 + signal; the handlers are in place before torch is imported). Running out of memory is ``sog: error: out of
memory ...``, exit 2. Anything else is a bug, still reported on one line (``sog: internal error: ...``, exit 3).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time

from .version import __version__
from .errors import Interrupted, SogError, is_out_of_memory

# Nothing heavy (torch, numpy, the codecs) is imported at module level: `main` imports it inside its ``try``, so a
# Ctrl-C in the first second of a run is an interrupt like any other, not a traceback.


def ply_bytes(n: int, sh_degree: int) -> int:
    """`sog.io.ply.inria_ply_size`: the PLY bytes compression ratios are measured against."""
    from .io.ply import inria_ply_size

    return inria_ply_size(n, sh_degree)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")


def build_parser() -> argparse.ArgumentParser:
    from .codec import ALIASES, DEFAULT_PROFILE, PROFILES
    from .pipeline import SORT_BUDGET
    from .train.finetune import FINETUNE_STEPS
    from .train.refit import REFIT_STEPS
    from .render import BACKENDS
    from .render.cameras import UP_AXES
    from .render.views import JUDGING_SIZE, JUDGING_VIEWS
    from .metrics import P10_BELOW, WORST_BELOW
    from .sort import SORTERS

    parser = argparse.ArgumentParser(prog="sog", description="Self-Organizing Gaussians: compress 3DGS scenes "
                                     "into sorted image planes (.sog) and back.")
    parser.add_argument("--version", action="version", version=f"sog {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    from .io import WRITERS

    c = sub.add_parser("compress", help="scene (.ply/.splat/.sog/.spz/...) -> .sog zip, SOG folder or another "
                       "compressed format, chosen by OUT's extension")
    c.add_argument("input", nargs="+", help="a scene; several, or a folder of scenes: a batch into the folder OUT "
                   "(OUT/NAME.sog each, OUT/NAME/lod-meta.json with --lod; docs/scale.md)")
    c.add_argument("output", help="OUT.sog for a zip; a path without an extension or folder/meta.json for the "
                   "unbundled form; " + ", ".join(e for w in WRITERS.values() for e in w.endings if e != ".ply")
                   + " for those formats (any other extension is refused)")
    c.add_argument("--format", default=None, choices=[f for f in WRITERS if f != "ply"],
                   help="the output format whatever OUT's extension (default: from the extension)")
    c.add_argument("--profile", default=DEFAULT_PROFILE, choices=[*PROFILES, *ALIASES],
                   help="; ".join(f"{p.name}: {p.summary}" + (" (retired: read only)" if p.retired else "")
                                  for p in PROFILES.values())
                   + f" (default {DEFAULT_PROFILE}; " + ", ".join(f"{a} = {n}" for a, n in ALIASES.items()) + ")")
    from .codec.spz_profile import PROFILE as SPZ_PROFILE

    presets = list(dict.fromkeys(q for p in (*PROFILES.values(), SPZ_PROFILE) for q in p.presets))  # in order
    c.add_argument("--quality", default=None, choices=presets,
                   help="sogv2 presets: small = the smallest file that looks the same: 40 dB at the 10th "
                        "percentile and 35 dB at the worst view, searched on tuning views with a guard for the "
                        "views it has not seen (a rate search); high = 16-bit positions, 8-bit "
                        "rotations, finer codebooks. SPZ: small = the same target over the SPZ writer's lattices; "
                        "high = finer position, SH and rotation lattices (docs/formats.md)")
    c.add_argument("--psnr", type=float, default=None, metavar="DB",
                   help="sogv2 and SPZ: the smallest bit depths (SPZ: lattices) whose renders reach this mean PSNR "
                        f"against the input, with the 10th-percentile view at least DB-{P10_BELOW:g} and the worst at "
                        f"least DB-{WORST_BELOW:g} (the tuning views of sog.render.views.search_cameras); encodes, "
                        "decodes and renders a few times")
    c.add_argument("--psnr-p10", type=float, default=None, metavar="DB",
                   help="the floor of the 10th-percentile tuning view instead of --psnr's (alone: a search without a "
                        "mean target)")
    c.add_argument("--psnr-worst", type=float, default=None, metavar="DB",
                   help="the floor of the worst tuning view instead of --psnr's (alone: as --psnr-p10)")
    c.add_argument("--keep-all", action="store_true",
                   help="with --quality small or --psnr: keep every Gaussian and search the bits only (default: "
                        "the search also tries fewer Gaussians, merged as --reduce merges, and keeps the smallest "
                        "file that reaches the target; docs/reduce.md)")
    c.add_argument("--layers", type=int, default=None, metavar="K",
                   help="sogv2: importance layers, the less visible stored coarser, as row blocks of the one grid "
                        "(default 1: one grid)")
    c.add_argument("--reduce", type=float, default=None, metavar="FRACTION",
                   help="remove this share of the Gaussians (0 <= FRACTION < 1): neighbours merged in pairs, priced by "
                        "what the tuning views see "
                        "(sog.reduce; docs/reduce.md); default: keep every Gaussian")
    c.add_argument("--max-gaussians", type=int, default=None, metavar="N",
                   help="keep at most N Gaussians (N >= 1), chosen as --reduce chooses; not with --reduce")
    c.add_argument("--refit", type=int, nargs="?", const=REFIT_STEPS, default=0, metavar="STEPS",
                   help="after --reduce / --max-gaussians: re-fit the kept Gaussians' colour, opacity and scales "
                        "for STEPS steps towards renders of the whole scene from tuning views, kept where other "
                        "tuning views say it helps "
                        f"(sog.train.refit; docs/reduce.md); default off; without STEPS {REFIT_STEPS}")
    c.add_argument("--finetune", type=int, nargs="?", const=FINETUNE_STEPS, default=None, metavar="STEPS",
                   help="SOG outputs: fine-tune the scene before encoding it, towards renders of itself from tuning "
                        "views, with the neighbour loss on its sorted grid (sog.train.finetune; CPU); "
                        f"default {FINETUNE_STEPS} steps")
    c.add_argument("--qat", type=int, default=0, metavar="STEPS",
                   help="with --finetune: how many of its last steps train through the profile's quantisers "
                        "(straight-through; default 0: measured not to pay, docs/finetune.md)")
    c.add_argument("--lod", default=None, metavar="LEVELS",
                   help="OUT/lod-meta.json (streamed SOG) only: levels of detail, each half the one before "
                        "(sog.reduce); default 3")
    c.add_argument("--chunk-size", type=int, default=None, metavar="N",
                   help="OUT/lod-meta.json only: at most N Gaussians of level 0 per chunk (default 524,288); a binary "
                        "PLY input is compressed chunk by chunk, its memory bounded by this (docs/scale.md)")
    c.add_argument("--workers", type=int, default=None, metavar="N",
                   help="OUT/lod-meta.json from a binary PLY only: run the chunks on a local Dask cluster of N "
                        "worker processes (the same bytes as without)")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="as --workers, on the existing Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786; every "
                        "worker needs sog and the input and output paths)")
    c.add_argument("--sort", default="shufflesoftsort", choices=list(SORTERS))
    c.add_argument("--sort-weights", default=None, metavar="NAME=W,...",
                   help="weights of the attributes to sort on, e.g. means=1,sh0=1,scales=0.5,opacities=0.25")
    c.add_argument("--sort-budget", type=int, default=None, metavar="RUNS",
                   help="work budget of shufflesoftsort: runs (group updates of a whole grid) per grid "
                        f"(default {SORT_BUDGET}; 0: the cheap start order only); the same bytes on any machine")
    c.add_argument("--sort-seconds", type=float, default=None,
                   help="optional wall-clock cap of shufflesoftsort (off by default; with it the output depends on "
                        "how fast the machine is); the order is always complete")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    c.add_argument("--effort", type=int, default=4, choices=range(7), metavar="0-6",
                   help="image-codec effort: higher is smaller and slower (default 4)")
    c.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _common(c)

    d = sub.add_parser("decompress", help=".sog (zip, folder or meta.json) -> PLY")
    d.add_argument("input")
    d.add_argument("output")
    _common(d)

    t = sub.add_parser("convert", help="any scene sog reads -> any format it writes (by OUT's extension), "
                       "changing no more than the target needs")
    t.add_argument("input")
    t.add_argument("output", help="OUT" + ", OUT".join(e for w in WRITERS.values() for e in w.endings)
                   + ", or a path without an extension (SOG folder)")
    t.add_argument("--format", default=None, choices=list(WRITERS),
                   help="the output format whatever OUT's extension (default: from the extension)")
    t.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _common(t)

    i = sub.add_parser("info", help="count, SH degree, grid, bytes, bits per Gaussian, ratio to PLY")
    i.add_argument("input")
    i.add_argument("--json", action="store_true", help="print one JSON object")

    e = sub.add_parser("eval", help="bytes, ratio, bits/Gaussian and PSNR/SSIM of renders of COMPRESSED "
                       "against renders of ORIGINAL")
    e.add_argument("original", help="reference scene (.ply/.splat/.sog/.spz/SOG folder)")
    e.add_argument("compressed", help="scene to evaluate (any format sog reads)")
    e.add_argument("--views", type=int, default=JUDGING_VIEWS,
                   help=f"number of judging cameras (default {JUDGING_VIEWS}: 32 close and 16 orbit views)")
    e.add_argument("--size", default=str(JUDGING_SIZE), help="image size: N (square, or the longer side for scene "
                   f"cameras) or WxH (default {JUDGING_SIZE})")
    e.add_argument("--cameras", default=None, help="cameras.json (INRIA) or COLMAP model folder (its judging "
                   "subset: every 8th camera); default: one found next to ORIGINAL, else seeded close and orbit views")
    e.add_argument("--up", default="-y", choices=["auto", *UP_AXES],
                   help="up axis of the seeded views (default -y, the INRIA/COLMAP/.splat convention; auto = the axis "
                   "of smallest extent)")
    e.add_argument("--fov", type=float, default=50.0, help="seeded views' horizontal field of view in degrees")
    e.add_argument("--backend", default="auto", choices=list(BACKENDS),
                   help="renderer: gsplat on CUDA when available, else the PyTorch rasteriser")
    e.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    e.add_argument("--save-views", default=None, metavar="DIR",
                   help="write side-by-side PNGs (original | compressed | 4x difference) to DIR, worst view first")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")

    v = sub.add_parser("view", help="look at one scene, or two side by side with their PSNR, in the browser")
    v.add_argument("input", help="any scene sog reads (.ply, .sog, SOG folder/meta.json, .spz, .splat, lod-meta.json)")
    v.add_argument("input2", nargs="?", default=None, help="a second scene, shown beside the first from one camera")
    v.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free port)")
    v.add_argument("--no-browser", action="store_true", help="only serve; do not open a browser")
    v.add_argument("--up", default="-y", help="the scene's up axis: -y (default, as sog eval), +y, +z, ...")
    v.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

    x = sub.add_parser("export-html", help="a folder with the viewer page and the scene, for any static web host")
    x.add_argument("input")
    x.add_argument("output", help="the folder to write")
    x.add_argument("--cdn-engine", action="store_true",
                   help="the page loads the PlayCanvas engine from the pinned CDN URL (needs a network connection) "
                        "instead of a copy in the folder; by default the local engine (npm ci) is copied in, so "
                        "the page works offline")
    x.add_argument("--local-engine", action="store_true", help="the default now; accepted for old scripts")
    x.add_argument("--up", default="-y", help="the scene's up axis (default -y)")
    _common(x)
    return parser


def main(argv: list[str] | None = None) -> int:
    restore = _install_signal_handlers()
    restore_streams = _tolerant_streams()
    try:
        args = build_parser().parse_args(argv)  # imports the codecs (and torch)
        check_options(args)
        return {"compress": _compress, "convert": _convert, "decompress": _decompress, "info": _info, "eval": _eval, "view": _view,
                "export-html": _export_html}[args.command](args)
    except SogError as exc:
        print(f"sog: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"sog: interrupted by {signal.Signals(exc.signum).name}; nothing was written", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("sog: interrupted; nothing was written", file=sys.stderr)
        return 130
    except MemoryError:
        print("sog: error: out of memory", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug, not bad input: still one line, and a distinct exit code
        if is_out_of_memory(exc):  # torch's RuntimeError for it (CPU or CUDA)
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            print(f"sog: error: out of memory ({first})" if first else "sog: error: out of memory", file=sys.stderr)
            return 2
        print(f"sog: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(this is a bug in sog; please report it)", file=sys.stderr)
        return 3
    finally:
        restore_streams()
        restore()


def _tolerant_streams():
    """stdout and stderr write what they cannot encode as backslash escapes (a file name that is not UTF-8,
    held as surrogate escapes, on a strict UTF-8 terminal) instead of raising after the work is done. Returns a
    function restoring their error handlers."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        errors = getattr(stream, "errors", None)
        if errors in ("strict", None) and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError, AttributeError):
                continue
            changed.append((stream, errors or "strict"))

    def restore() -> None:
        for stream, errors in changed:
            with contextlib.suppress(ValueError, OSError, AttributeError):
                stream.reconfigure(errors=errors)

    return restore


def _install_signal_handlers():
    """SIGTERM, SIGINT and SIGHUP raise `Interrupted` in the main thread, so the clean-up of a half-written
    output runs; a second signal during that clean-up is ignored. Returns a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    names = [name for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)]
    numbers = [getattr(signal, name) for name in names]
    old = {num: signal.getsignal(num) for num in numbers}

    def handler(signum, frame):
        for num in numbers:
            signal.signal(num, signal.SIG_IGN)
        raise Interrupted(signum)

    for num in numbers:
        signal.signal(num, handler)

    def restore() -> None:
        for num, previous in old.items():
            signal.signal(num, previous if previous is not None else signal.SIG_DFL)

    return restore


def check_options(args, limits=None) -> None:
    """Range checks of numeric options, before any work (each a one-line `SogError`); ``limits``: a
    `sog.io.limits.Limits` (default ``LIMITS``)."""
    if limits is None:
        from .io.limits import LIMITS as limits
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= limits.max_seed:
        raise SogError(f"--seed must be 0..{limits.max_seed}, not {seed}")
    layers = getattr(args, "layers", None)
    if layers is not None and layers > limits.max_layers:
        raise SogError(f"--layers must be at most {limits.max_layers}, not {layers}")
    for flag in ("psnr", "psnr_p10", "psnr_worst"):
        psnr = getattr(args, flag, None)
        if psnr is not None and not 0 < psnr < 1000:
            raise SogError(f"--{flag.replace('_', '-')} must be a positive number of dB below 1000, not {psnr}")
    port = getattr(args, "port", None)
    if port is not None and not 0 <= port <= 65535:
        raise SogError(f"--port must be 0..65535 (0: any free port), not {port}")


def _parse_weights(text: str | None) -> dict[str, float]:
    """``"means=1,sh0=0.5"`` -> ``{"means": 1.0, "sh0": 0.5}``; names are checked against the features."""
    from .sort.features import DEFAULT_WEIGHTS

    if not text:
        return {}
    weights = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in DEFAULT_WEIGHTS:
            raise SogError(f"--sort-weights: unknown attribute {name!r} (choose from {', '.join(DEFAULT_WEIGHTS)})")
        try:
            weights[name] = float(value)
        except ValueError:
            raise SogError(f"--sort-weights: {item!r} is not NAME=NUMBER") from None
        if weights[name] < 0:
            raise SogError(f"--sort-weights: {name} must not be negative")
    return weights


def _compress(args) -> int:
    from .pipeline import SORT_BUDGET, CompressOptions, compress

    from .codec import get_profile

    if get_profile(args.profile).retired:
        raise SogError(f"--profile {args.profile} is retired as a write option: {get_profile(args.profile).retired}; "
                       f"sog still reads its files")
    if args.layers is not None and get_profile(args.profile).max_layers() == 1:
        raise SogError(f"--layers applies to profiles with importance layers, not {args.profile}")
    if args.layers is not None and args.layers < 1:
        raise SogError(f"--layers must be 1 or more, not {args.layers}")
    from .io import output_format
    from .distributed.batch import is_batch

    batch = is_batch(args.input)
    if not batch:
        args.input = args.input[0]
    elif args.format not in (None, "lod") or args.psnr is not None:
        raise SogError("a batch (several inputs, or a folder of them) writes OUT/NAME.sog, or OUT/NAME/lod-meta.json "
                       "with --lod; --format and --psnr apply to one input")
    format_options = {}
    if args.lod is not None:
        from .io.lod_writer import check_levels

        if not batch and output_format(args.output, args.format) != "lod":
            raise SogError(f"--lod applies to a .../lod-meta.json output, not {args.output}")
        format_options["levels"] = check_levels(args.lod)
    lod = (args.lod is not None or args.format == "lod") if batch else output_format(args.output, args.format) == "lod"
    if args.chunk_size is not None:
        if not lod:
            raise SogError(f"--chunk-size applies to a .../lod-meta.json output, not {args.output}")
        format_options["chunk_gaussians"] = args.chunk_size
    if (args.workers is not None or args.scheduler is not None) and not (lod or batch):
        raise SogError(f"--workers and --scheduler apply to a .../lod-meta.json output or a batch of inputs, not "
                       f"{args.output}")
    t0 = time.perf_counter()
    options = CompressOptions(profile=args.profile, sort=args.sort, seed=args.seed, device=args.device,
                              effort=args.effort, quality=args.quality, target_psnr=args.psnr,
                              psnr_p10=args.psnr_p10, psnr_worst=args.psnr_worst,
                              sort_seconds=args.sort_seconds,
                              sort_budget=SORT_BUDGET if args.sort_budget is None else args.sort_budget,
                              sort_weights=_parse_weights(args.sort_weights),
                              profile_options={} if args.layers is None else {"layers": args.layers},
                              format=None if batch else args.format, format_options=format_options,
                              reduce=args.reduce, max_gaussians=args.max_gaussians, finetune=args.finetune,
                              finetune_qat=args.qat, refit=args.refit, search_count=not args.keep_all)
    if batch:
        return _compress_batch(args, options, lod, t0)
    if lod:
        from .distributed import compress_lod

        result = compress_lod(args.input, args.output, options, workers=args.workers, scheduler=args.scheduler,
                              overwrite=args.force, quiet=args.quiet)
    else:
        result = compress(args.input, args.output, options, overwrite=args.force, quiet=args.quiet)
    seconds = time.perf_counter() - t0
    ply = ply_bytes(result.count, result.sh_degree)
    summary = {"input": str(args.input), "output": str(args.output), "count": result.count,
               "source_count": result.source_count,
               "grid": list(result.grid), "layers": [list(g) for g in result.layers], "bytes": result.bytes,
               "bits_per_gaussian": 8 * result.bytes / result.count,
               "ratio": ply / result.bytes, "seconds": round(seconds, 3),
               "stages": {k: round(v, 3) for k, v in result.seconds.items()}, "unstored": result.unstored}
    if result.rate is not None:
        summary.update(psnr=result.psnr, rate=result.rate)
    if result.format not in ("sog", "sog-folder"):
        summary.update(format=result.format, grid=None, layers=[])
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        sog_output = result.format in ("sog", "sog-folder")
        if sog_output:
            grids = " + ".join(f"{w}x{h}" for h, w in result.layers)
            print(f"{args.output}: {result.count:,} Gaussians on {grids}, "
                  f"{result.bytes:,} bytes ({summary['bits_per_gaussian']:.1f} bits/Gaussian, "
                  f"{summary['ratio']:.1f}x smaller than PLY) in {seconds:.1f} s")
        else:
            print(f"{args.output}: {result.count:,} Gaussians as {result.format}, {result.bytes:,} bytes "
                  f"({summary['bits_per_gaussian']:.1f} bits/Gaussian, {summary['ratio']:.1f}x smaller than PLY) in "
                  f"{seconds:.1f} s")
        if args.reduce is not None or args.max_gaussians is not None or (
                result.source_count is not None and result.count != result.source_count):  # also a count search's
            print(f"kept {result.count:,} of {result.source_count:,} Gaussians")
        if result.rate is not None:
            stats, target = result.rate["stats"], result.rate["target"]
            measured = (f"mean {stats['mean']:.2f}, p10 {stats['p10']:.2f}, worst {stats['worst']:.2f} dB on "
                        "the tuning views")
            wanted = ", ".join(f"{k} {v:g}" for k, v in target.items() if v is not None) + " dB"
            from .metrics import SMALL_PROMISE, SMALL_TARGET

            if args.quality == "small" and target == SMALL_TARGET.as_dict():  # not the same floors typed by hand
                wanted += f": --quality small's {SMALL_PROMISE} for unseen views, plus a guard"
            if result.rate["reached"] and result.rate["level"] is None:  # a format with one precision
                print(f"renders at {measured} (target {wanted})")
            elif result.rate["reached"]:
                print(f"renders at {measured} (target {wanted}): from "
                      f"{'bit-depth' if sog_output else 'ladder'} level {result.rate['level']} (0 = finest): "
                      f"{result.rate['settings']}")
            else:
                finest = "bit depths" if sog_output else "settings" if result.rate["level"] is not None else \
                    "file (every Gaussian, at the format's one precision)"
                print(f"note: even the finest {finest} reach{'es' if finest.startswith('file') else ''} only "
                      f"{measured}, under the target ({wanted}); wrote that file")
        if result.unstored and sog_output:
            print(f"note: extra PLY properties not stored in .sog: {', '.join(result.unstored)}")
    return 0


def _compress_batch(args, options, lod: bool, t0: float) -> int:
    """`sog compress A B ... OUTDIR` (or a folder of inputs): one line per scene, or one JSON object."""
    from .distributed.batch import run_batch

    done = run_batch(args.input, args.output, options, lod=lod, workers=args.workers, scheduler=args.scheduler,
                     overwrite=args.force, quiet=args.quiet)
    scenes = [{"input": d.source, "output": d.output, "count": d.count, "bytes": d.bytes,
               "bits_per_gaussian": 8 * d.bytes / d.count, "ratio": ply_bytes(d.count, d.sh_degree) / d.bytes}
              for d in done]
    seconds = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps({"output": str(args.output), "scenes": scenes, "seconds": seconds}))
    elif not args.quiet:
        for s in scenes:
            print(f"{s['output']}: {s['count']:,} Gaussians, {s['bytes']:,} bytes ({s['bits_per_gaussian']:.1f} "
                  f"bits/Gaussian, {s['ratio']:.1f}x smaller than PLY)")
        print(f"{len(scenes)} scenes in {seconds:.1f} s")
    return 0


def _decompress(args) -> int:
    from .pipeline import decompress

    t0 = time.perf_counter()
    splats = decompress(args.input, args.output, overwrite=args.force)
    if not args.quiet:
        print(f"{args.output}: {len(splats):,} Gaussians, SH degree {splats.sh_degree}, "
              f"{os.path.getsize(args.output):,} bytes in {time.perf_counter() - t0:.1f} s")
    return 0


def _convert(args) -> int:
    from .pipeline import convert

    t0 = time.perf_counter()
    result = convert(args.input, args.output, format=args.format, overwrite=args.force, quiet=args.quiet)
    summary = {"input": str(args.input), "output": str(args.output), "format": result.format,
               "count": result.count, "bytes": result.bytes, "how": result.how,
               "seconds": round(time.perf_counter() - t0, 3)}
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        print(f"{args.output}: {result.count:,} Gaussians as {result.format}, {result.bytes:,} bytes "
              f"({result.how}) in {summary['seconds']:.1f} s")
    return 0


def _eval(args) -> int:
    from .evaluate import evaluate

    result = evaluate(args.original, args.compressed, views=args.views, size=args.size, save_views=args.save_views,
                      device=args.device, backend=args.backend, cameras=args.cameras, up=args.up,
                      fov_deg=args.fov, progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(result))
    elif not args.quiet:
        w, h = result["size"]
        counts = f"{result['count']:,} Gaussians"
        if result["count_compressed"] != result["count"]:
            counts += f" (compressed has {result['count_compressed']:,})"
        print(f"{args.compressed}: {result['bytes']:,} bytes, {result['bits_per_gaussian']:.2f} bits/Gaussian, "
              f"{result['ratio']:.2f}x smaller than the {result['ply_bytes']:,}-byte PLY; {counts}")
        print(f"renders vs {args.original}: PSNR {result['psnr']:.2f} dB (p10 {result['psnr_p10']:.2f}, "
              f"worst view {result['psnr_min']:.2f}, "
              f"{result['worst_view']}), SSIM {result['ssim']:.4f} (worst {result['ssim_min']:.4f}) over "
              f"{result['views']} {w}x{h} views ({result['cameras']}, {result['backend']}) in "
              f"{result['seconds']:.1f} s")
        if args.save_views:
            print(f"side-by-side views in {args.save_views}")
    return 0


def _view(args) -> int:
    from .viewer import view

    paths = [args.input] + ([args.input2] if args.input2 else [])
    return view(paths, port=args.port, open_browser=not args.no_browser, up=args.up, quiet=args.quiet)


def _export_html(args) -> int:
    from .viewer import export_html, up_vector

    if args.cdn_engine and args.local_engine:
        raise SogError("--cdn-engine and --local-engine exclude each other")
    result = export_html(args.input, args.output, cdn_engine=args.cdn_engine, overwrite=args.force,
                         up=up_vector(args.up))
    if not args.quiet:
        print(f"{args.output}: {', '.join(result['files'])} ({result['bytes']:,} bytes); serve the folder with any "
              "static web host")
        if result["scene"]["kind"] == "raw":
            print("note: the scene is stored as raw floats (scene.sograw); `sog compress` it first for a small .sog")
    return 0


def _info(args) -> int:
    from .io.info import scene_info

    info = scene_info(args.input)
    n = info.count
    ply = ply_bytes(n, info.sh_degree)
    grids = [list(grid) for grid in info.grids]
    out = {"input": info.path, "format": info.format, "count": n, "source_count": info.source_count or n,
           "sh_degree": info.sh_degree, "grid": grids[0],
           "grids": grids, "bytes": info.bytes, "bits_per_gaussian": 8 * info.bytes / n, "ratio": ply / info.bytes,
           "ply_bytes": ply, "extras": info.extras}
    if args.json:
        print(json.dumps(out))
    else:
        shown = " + ".join(f"{w}x{h}" for h, w in grids)
        print(f"{info.path}: {info.format}, {n:,} Gaussians, SH degree {info.sh_degree}, grid {shown}, "
              f"{info.bytes:,} bytes, {out['bits_per_gaussian']:.1f} bits/Gaussian, {out['ratio']:.2f}x smaller "
              f"than the {ply:,}-byte PLY")
        if info.source_count is not None and info.source_count != n:
            print(f"reduced: kept {n:,} of {info.source_count:,} Gaussians")
    return 0


if __name__ == "__main__":
    sys.exit(main())
