"""Make a big SH-3 test scene by tiling and jittering the real shared scenes (for scale benchmarks).

Real trained scenes hold 1-6 million Gaussians with SH degree 3; the shared scenes are smaller
(playbot's full level: 500,000, SH degree 2). This tiles copies of a source scene side by side on a
square of tiles (each copy shifted by its bounding box and a margin, rotated by a quarter turn about
the vertical axis every other tile, positions jittered by a fraction of each Gaussian's own size,
colours and opacities jittered a little), fills the SH bands the source lacks from the bands below
of randomly paired Gaussians (scaled down, as real higher bands are smaller), and keeps the first N.
The result is written as a binary INRIA PLY to a path you give (not into the repository: it is
data, never committed). Seeded, so the same arguments give the same file.

    python scripts/make_big_scene.py /tmp/big_1m.ply --count 1000000
    python scripts/make_big_scene.py /tmp/big_6m.ply --count 6000000 --source ../shared/data/playbot/0_0/meta.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

import sog
from sog.datasets import scene_path
from sog.io import write_ply
from sog.splats import Splats

#: the checkout, which the scene must stay out of
ROOT = Path(__file__).resolve().parent.parent

#: SH coefficients per degree (bands 1..degree), (degree + 1)^2 - 1
REST = {0: 0, 1: 3, 2: 8, 3: 15}


def pad_sh(shn: torch.Tensor, degree: int, gen: torch.Generator) -> torch.Tensor:
    """``shn`` (N, K, 3) padded to ``degree``: each missing band copies the band below of a random
    other Gaussian (cycled to the band's length) at 0.5 times its size, plus a little noise; (N, REST[degree], 3)."""
    n = shn.shape[0]
    out = shn
    while out.shape[1] < REST[degree]:
        have = out.shape[1]
        band = next(d for d in (1, 2, 3) if REST[d] > have)
        size = REST[band] - have
        if have == 0:  # no band to copy: small noise of the size a degree-1 band has
            new = 0.05 * torch.randn(n, size, 3, generator=gen)
        else:
            lower = out[torch.randint(0, n, (n,), generator=gen), REST[band - 2]:REST[band - 1]]  # band - 1
            idx = torch.arange(size) % lower.shape[1]
            new = 0.5 * lower[:, idx] + 0.01 * torch.randn(n, size, 3, generator=gen)
        out = torch.cat([out, new], 1)
    return out


def tile(source: Splats, count: int, degree: int, seed: int) -> Splats:
    """``count`` Gaussians: jittered copies of ``source`` on a square of tiles, SH padded to ``degree``."""
    gen = torch.Generator().manual_seed(seed)
    n = len(source)
    copies = math.ceil(count / n)
    side = math.ceil(math.sqrt(copies))
    lo, hi = source.means.min(0).values, source.means.max(0).values
    step = (hi - lo) * 1.05
    parts = []
    left = count
    for c in range(copies):
        take = min(n, left)
        keep = torch.randperm(n, generator=gen)[:take].sort().values if take < n else torch.arange(n)
        s = source.permute(keep)
        means = s.means.clone()
        quats = s.quats.clone()
        if c % 2:  # a quarter turn about y (the shared scenes' vertical axis): x' = z, z' = -x
            centre = (lo + hi) / 2
            rel = means - centre
            means = torch.stack([rel[:, 2], rel[:, 1], -rel[:, 0]], 1) + centre
            turn = torch.tensor([math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0])  # wxyz
            w1, x1, y1, z1 = turn
            w2, x2, y2, z2 = quats.unbind(1)
            quats = torch.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                                 w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], 1)
        size = s.scales.exp().mean(1, keepdim=True)
        means = means + 0.25 * size * torch.randn(take, 3, generator=gen)
        means = means + torch.tensor([(c % side) * float(step[0]), 0.0, (c // side) * float(step[2])])
        parts.append(Splats(
            means=means.float(), scales=(s.scales + 0.05 * torch.randn(take, 3, generator=gen)).float(),
            quats=torch.nn.functional.normalize(quats.float(), dim=1),
            opacities=(s.opacities + 0.1 * torch.randn(take, generator=gen)).float(),
            sh0=(s.sh0 + 0.02 * torch.randn(take, 1, 3, generator=gen)).float(),
            shN=pad_sh(s.shN.float(), degree, gen)))
        left -= take
    return Splats.concat(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", help="the PLY to write (outside the repository)")
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--source", default=str(scene_path("playbot")), help="default: the shared playbot's full level")
    ap.add_argument("--degree", type=int, default=3, choices=(0, 1, 2, 3))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    out = Path(args.output).resolve()
    if ROOT in out.parents:
        sys.exit("make_big_scene: write the scene outside the repository (it is data, never committed)")
    t0 = time.perf_counter()
    source = sog.load(args.source)
    if source.sh_degree > args.degree:
        source = Splats(source.means, source.scales, source.quats, source.opacities, source.sh0,
                        source.shN[:, :REST[args.degree]])
    big = tile(source, args.count, args.degree, args.seed)
    write_ply(big, out, overwrite=args.force)
    print(f"{out}: {len(big):,} Gaussians, SH degree {big.sh_degree}, {out.stat().st_size:,} bytes "
          f"from {len(source):,} of {args.source} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
