"""Make the small sample scene that ships in data/ (a procedural 3DGS scene, SH degree 3).

    python scripts/make_sample.py [--n 10000] [--seed 0] [--out data/sample.ply]

The scene is synthetic but shaped like a real one: Gaussians on surfaces (a sphere, a torus and a
ground disc), spatially smooth colours and view-dependent SH, log-normal scales oriented along the
surface, and a spread of opacities. Deterministic for a seed, on any CPU (computed in float64, stored as float32).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from sog.io import write_ply
from sog.splats import SH_C0, Splats


def make_scene(n: int = 10_000, seed: int = 0) -> Splats:
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    parts = [n // 2, n // 3]
    parts.append(n - sum(parts))
    # Sphere of radius 1 at the origin.
    v = randn(parts[0], 3)
    sphere = v / v.norm(dim=1, keepdim=True)
    # Torus around the sphere.
    a, b = rand(parts[1]) * 2 * math.pi, rand(parts[1]) * 2 * math.pi
    torus = torch.stack([(1.8 + 0.35 * b.cos()) * a.cos(), 0.35 * b.sin(), (1.8 + 0.35 * b.cos()) * a.sin()], 1)
    # Ground disc below.
    r, t = 3.0 * rand(parts[2]).sqrt(), rand(parts[2]) * 2 * math.pi
    disc = torch.stack([r * t.cos(), torch.full_like(r, -1.2), r * t.sin()], 1)
    means = torch.cat([sphere, torus, disc]) + 0.01 * randn(n, 3)

    # Smooth colour fields: a function of position, different per part.
    rgb = 0.5 + 0.4 * torch.stack([torch.sin(2.0 * means[:, 0]), torch.cos(1.5 * means[:, 1] + 0.5),
                                   torch.sin(1.7 * means[:, 2] + 1.0)], 1)
    rgb[parts[0] + parts[1]:] = 0.35 + 0.1 * ((means[parts[0] + parts[1]:, :1] * 2).floor() % 2)
    sh0 = ((rgb - 0.5) / SH_C0).reshape(n, 1, 3)
    freq = torch.arange(1, 16).double()
    shN = 0.08 * torch.sin(means[:, None, :1] * freq[None, :, None] + torch.arange(3).double()) \
        * torch.exp(-0.15 * freq)[None, :, None]

    scales = torch.log(0.02 + 0.03 * rand(n, 3)) + 0.3 * randn(n, 3)
    scales[:, 2] -= 1.0  # flat along one axis, like trained splats
    quats = randn(n, 4)
    opacities = torch.logit(0.05 + 0.9 * rand(n) ** 0.5)
    # float64 to the end, then float32: torch's float32 randn and transcendentals round differently by CPU
    return Splats(means=means.float(), scales=scales.float(), quats=quats.float(), opacities=opacities.float(),
                  sh0=sh0.float(), shN=shN.float()).validate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data" / "sample.ply"))
    args = parser.parse_args()
    write_ply(make_scene(args.n, args.seed), args.out, overwrite=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
