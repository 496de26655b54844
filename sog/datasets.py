"""The scenes sog is tested and measured on: the table of shared real scenes, and a synthetic scene.

The real scenes are never committed: they live in ``../shared/data`` beside the checkout (`shared_data`;
``$SOG_SHARED_DATA`` overrides it). `SCENES` names each one once, and the tests, benchmarks and tuning scripts
take their scenes from it by name (``--scenes``, a peer cache's ``<name>_st.sog``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from .splats import SH_C0, Splats

#: name -> file under the shared data folder (see its README.md for sources and licences)
SCENES = {
    "kacytran": "kacytran1122-try/point_cloud/iteration_7000/point_cloud.ply",   # INRIA PLY, 9,080, SH 3
    "plant": "marcelpadilla-splats/plant/plant.splat",                         # .splat, 113,648
    "tarot": "marcelpadilla-splats/academic_tarot_cards/academic_tarot_cards.splat",  # .splat, 114,865
    "playbot": "playbot/0_0/meta.json",           # SOG v2 folder, the full LOD level: 500,000, SH 2
    "playbot-2_0": "playbot/2_0/meta.json",       # playbot's coarser LOD levels: 125,000
    "playbot-3_0": "playbot/3_0/meta.json",       # 31,000
    "playbot-4_0": "playbot/4_0/meta.json",       # 8,406
}
#: playbot's LOD tree (all levels)
PLAYBOT_LOD = "playbot/lod-meta.json"


def shared_data() -> Path:
    """The shared data folder: ``$SOG_SHARED_DATA``, else ``shared/data`` beside the checkout holding this package."""
    env = os.environ.get("SOG_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def scene_path(name: str, data: str | os.PathLike | None = None) -> Path:
    """The file of shared scene ``name`` (a key of `SCENES`) under ``data`` (default: `shared_data`); it may be
    absent (check ``.exists()``)."""
    return Path(data if data is not None else shared_data()) / SCENES[name]


def synthetic_scene(n: int = 10_000, seed: int = 0) -> Splats:
    """A procedural 3DGS scene of ``n`` Gaussians, SH degree 3, shaped like a real one (``data/sample.ply`` is
    ``synthetic_scene(10_000, 0)``, written by ``scripts/make_sample.py``).

    Gaussians on surfaces (a sphere, a torus and a ground disc), spatially smooth colours and view-dependent SH,
    log-normal scales oriented along the surface, and a spread of opacities. Deterministic for a seed, on any CPU
    (computed in float64, stored as float32)."""
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
