"""Shared fixtures: the real scenes in ../shared/data (skipped when absent) and small synthetic scenes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

#: property tests draw the same examples on every run and machine (the same test run gives the same verdict; CI
#: cannot fail on an example no earlier run drew); ``HYPOTHESIS_PROFILE=explore`` draws fresh random ones, with
#: ``--hypothesis-seed N`` to replay one
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

from sog.datasets import scene_path, shared_data, synthetic_scene

ROOT = Path(__file__).resolve().parent.parent

#: The real trained scenes (`sog.datasets`: ../shared/data beside the checkout, or $SOG_SHARED_DATA).
SHARED = shared_data()
#: the scenes `shared_scene` runs a test on, one of each format (playbot: its full level)
SHARED_SCENES = ("kacytran", "plant", "tarot", "playbot")


def shared_path(name: str) -> Path:
    """The file of shared scene ``name`` (a `sog.datasets.SCENES` name); skips the test when it is absent."""
    path = scene_path(name)
    if not path.exists():
        pytest.skip(f"shared scene {name} not present at {path}")
    return path


@pytest.fixture(params=SHARED_SCENES)
def shared_scene(request) -> tuple[str, Path]:
    """Each real scene in turn, as (name, path)."""
    return request.param, shared_path(request.param)


@pytest.fixture
def sample_ply() -> Path:
    return ROOT / "data" / "sample.ply"


def small_scene(n: int = 300, seed: int = 0, sh_degree: int = 3):
    """`sog.datasets.synthetic_scene` of ``n`` Gaussians at SH degree ``sh_degree``."""
    return synthetic_scene(n, seed).with_sh_degree(sh_degree)


def write_cameras_json(cameras, path: Path, name: str = "v{}") -> None:
    """Write sog `Camera`s as an INRIA ``cameras.json`` (image ``i`` named ``name.format(i)``; sizes and focals as
    they are)."""
    import json

    import torch

    entries = []
    for i, c in enumerate(cameras):
        c2w = torch.linalg.inv(c.viewmat.double())
        entries.append({"id": i, "img_name": name.format(i), "width": c.width, "height": c.height,
                        "position": c2w[:3, 3].tolist(), "rotation": c2w[:3, :3].tolist(),
                        "fx": float(c.K[0, 0]), "fy": float(c.K[1, 1])})
    Path(path).write_text(json.dumps(entries))


def peer_missing(message: str):
    """Skip the test for a missing outside peer (``message`` says which and how to get it), or fail it under
    SOG_REQUIRE_PEERS=1 (as in .ci/run), where every peer must be there."""
    if os.environ.get("SOG_REQUIRE_PEERS") == "1":
        pytest.fail(f"SOG_REQUIRE_PEERS=1 but {message}")
    pytest.skip(message)


def splat_transform_runner():
    """A function running the pinned PlayCanvas splat-transform under the pinned Node 22 (sog/peers.py;
    ``-q -w -g cpu`` and the given arguments); skips the test when they are not installed (``npm ci``), and fails
    it under SOG_REQUIRE_PEERS=1 (as in .ci/run)."""
    from sog import peers

    try:
        command = peers.splat_transform_command()
    except peers.PeerMissing as e:
        peer_missing(str(e))
    return lambda *args, timeout=600: subprocess.run([*command, "-q", "-w", "-g", "cpu", *map(str, args)],
                                                     check=True, capture_output=True, timeout=timeout)


@pytest.fixture(scope="session")
def splat_transform():
    """`splat_transform_runner` as a fixture."""
    return splat_transform_runner()
