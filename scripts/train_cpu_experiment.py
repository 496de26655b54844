"""CPU experiment: train-with-SOG-plugin vs train-without-then-sort, same step budget.

A crop of a real scene (default: the N Gaussians nearest the centre of the shared plant .splat) is
rendered from a ring of cameras with the tiny dense renderer (sog.train.dense_render); a degraded
copy (colours/opacities/scales reset, positions jittered) is refit to those renders twice:
  on : SelfOrganizingGrid sorts every --sort-every steps and adds its smoothness loss;
  off: plain training, then sorted once by `sog.compress`.
Both results are compressed with the playcanvas profile and rendered from held-out cameras.
Prints a table and writes JSON (--json).

  nice -n 10 python scripts/train_cpu_experiment.py --steps 150 --count 2000 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time

import torch

from sog.datasets import scene_path


def build_cameras(center, radius, count, size, f, seed, elevation=0.35):
    from sog.render.cameras import look_at
    height, width = size
    fov_deg = math.degrees(2 * math.atan(width / (2 * f)))
    g = torch.Generator().manual_seed(seed)
    cams = []
    for i in range(count):
        az = 2 * math.pi * (i + float(torch.rand((), generator=g)) * 0.5) / count
        el = elevation * (2 * float(torch.rand((), generator=g)) - 1)
        d = torch.tensor([math.cos(az) * math.cos(el), math.sin(el), math.sin(az) * math.cos(el)])
        cams.append(look_at(center + 2.6 * radius * d, center, (0.0, -1.0, 0.0), width, height, fov_deg))
    return cams


def render_params(p, cam):
    from sog.train.dense_render import render
    return render(p["means"], p["scales"], p["quats"], p["opacities"], p["sh0"], cam)


def mean_psnr(p, cams, targets):
    from sog.metrics import psnr
    with torch.no_grad():
        return sum(float(psnr(render_params(p, c), t)) for c, t in zip(cams, targets)) / len(cams)


def train(init, cams, targets, steps, lrs, plugin, seed):
    torch.manual_seed(seed)
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.clone()) for k, v in init.items()})
    opts = {k: torch.optim.Adam([params[k]], lr=lrs[k], eps=1e-15) for k in params}
    g = torch.Generator().manual_seed(seed)
    sorts = 0
    for step in range(steps):
        if plugin is not None and plugin.should_sort(step):
            plugin.sort_(params, opts, step=step)
            sorts += 1
        i = int(torch.randint(0, len(cams), (1,), generator=g))
        loss = (render_params(params, cams[i]) - targets[i]).abs().mean()
        if plugin is not None:
            loss = loss + plugin.smoothness_loss(params)
        for o in opts.values():
            o.zero_grad()
        loss.backward()
        for o in opts.values():
            o.step()
    return params, sorts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", default=str(scene_path("plant")))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--sort-every", type=int, default=25)
    ap.add_argument("--smooth-weight", type=float, default=0.005)
    ap.add_argument("--method", default="auto", help="sort method; auto = shufflesoftsort if present, else morton")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from sog.io import load
    from sog.pipeline import CompressOptions, compress, decompress
    from sog.sort import SORTERS
    from sog.splats import Splats
    from sog.train import SelfOrganizingGrid, neighbour_ratio

    method = SelfOrganizingGrid(method=args.method).resolved_method
    assert method in SORTERS
    torch.set_num_threads(2)
    if not os.path.exists(args.scene):
        sys.exit(f"scene not found: {args.scene}")
    s = load(args.scene)
    op = torch.sigmoid(s.opacities.float())
    center = s.means[op > 0.5].median(0).values
    dist = (s.means - center).norm(dim=1)
    idx = torch.argsort(dist)[: args.count]
    radius = float(dist[idx].max())
    target = {k: getattr(s, k)[idx].float() for k in ("means", "scales", "quats", "opacities", "sh0")}
    size = (args.size, args.size)
    f = args.size / 2 * 2.6 * 0.9
    train_cams = build_cameras(center, radius, 12, size, f, args.seed)
    test_cams = build_cameras(center, radius, 4, size, f, args.seed + 100)
    with torch.no_grad():
        train_targets = [render_params(target, c) for c in train_cams]
        test_targets = [render_params(target, c) for c in test_cams]
    g = torch.Generator().manual_seed(args.seed)
    init = {"means": target["means"] + 0.03 * radius * torch.randn(target["means"].shape, generator=g),
            "scales": torch.full_like(target["scales"], float(target["scales"].mean())),
            "quats": target["quats"].clone(),
            "opacities": torch.zeros_like(target["opacities"]),
            "sh0": torch.zeros_like(target["sh0"])}
    lrs = {"means": 0.01 * radius, "scales": 0.01, "quats": 0.003, "opacities": 0.05, "sh0": 0.02}

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("off", "on"):
            plugin = None
            if name == "on":
                plugin = SelfOrganizingGrid(method=method, sort_every=args.sort_every,
                                            sort_until=args.steps - args.sort_every, smooth_weight=args.smooth_weight,
                                            seed=args.seed, device="cpu")
            t0 = time.perf_counter()
            params, sorts = train(init, train_cams, train_targets, args.steps, lrs, plugin, args.seed)
            seconds = time.perf_counter() - t0
            p = {k: v.detach() for k, v in params.items()}
            n = p["means"].shape[0]
            splats = Splats(means=p["means"], scales=p["scales"], quats=p["quats"], opacities=p["opacities"],
                            sh0=p["sh0"], shN=torch.zeros(n, 0, 3))
            out = os.path.join(tmp, f"{name}.sog")
            res = compress(splats, out, CompressOptions(profile="playcanvas", sort="none" if name == "on" else method,
                                                        device="cpu", seed=args.seed), quiet=True)
            dec = decompress(out)
            dp = {k: getattr(dec, k).float() for k in ("means", "scales", "quats", "opacities", "sh0")}
            ordered = splats.permute(res.order)
            rows[name] = {"steps": args.steps, "sorts_in_training": sorts, "train_seconds": round(seconds, 1),
                          "psnr_float": round(mean_psnr(p, test_cams, test_targets), 2),
                          "psnr_compressed": round(mean_psnr(dp, test_cams, test_targets), 2),
                          "bytes": res.bytes,
                          "neighbour_ratio": {k: round(neighbour_ratio(getattr(ordered, k)), 3)
                                              for k in ("means", "scales", "quats", "opacities", "sh0")}}
    init_psnr = mean_psnr(init, test_cams, test_targets)
    result = {"scene": args.scene, "count": args.count, "size": args.size, "method": method,
              "smooth_weight": args.smooth_weight, "sort_every": args.sort_every, "init_psnr": round(init_psnr, 2),
              "runs": rows}
    print(f"scene crop: {args.count} Gaussians, {args.size}x{args.size} px, sort method {method}, "
          f"init PSNR {init_psnr:.2f} dB")
    print(f"{'run':<5}{'steps':>6}{'sorts':>6}{'train s':>9}{'PSNR float':>11}{'PSNR .sog':>10}{'bytes':>9}  "
          "neighbour ratio (means scales quats opac sh0)")
    for name, r in rows.items():
        nr = " ".join(f"{v:.3f}" for v in r["neighbour_ratio"].values())
        print(f"{name:<5}{r['steps']:>6}{r['sorts_in_training']:>6}{r['train_seconds']:>9}{r['psnr_float']:>11}"
              f"{r['psnr_compressed']:>10}{r['bytes']:>9}  {nr}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
