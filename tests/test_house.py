"""The house rules of the package layout, read from the source with `ast` (nothing is imported).

- No import circle between sog's modules, counting imports made inside functions: a lazy import is still an arrow.
- No profile module of `sog/codec/` imports another profile: profiles share the toolkit, not each other.
- Library code never imports the command line (`sog/cli.py`).
- The rooms (sog's packages and top-level modules) are ordered so that data flows one way; at most one arrow
  points back up, and it is named here with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sog"

#: Profile modules (the registry, sog/codec/__init__.py, is the one place that names them all), each with the
#: modules that are part of it (native_legacy: the native profile's reader of its older versions).
PROFILES = {"sog.codec.sogv2": (), "sog.codec.native": ("sog.codec.native_legacy",), "sog.codec.playcanvas": ()}

#: Rooms from the bottom up: a room may import the rooms before it. Shared leaves (errors, stable, device, ...)
#: come first; the CLI is last.
ROOMS = [
    "sog.errors", "sog.version", "sog.stable", "sog.device", "sog.localserver", "sog.splats", "sog.grid",
    "sog.metrics", "sog.datasets",
    "sog.io", "sog.peers", "sog.render", "sog.reduce", "sog.sort", "sog.codec", "sog.rate",
    "sog.train", "sog.pipeline", "sog.evaluate", "sog.attribution", "sog.stream", "sog.distributed", "sog.viewer",
    "sog", "sog.cli",
]

#: The one arrow allowed back up, (from room, to room): the readers in sog.io decode `.sog` containers with the
#: profiles' decoders, so loading a compressed scene (io) reaches into the codec, which sits above it because
#: encoding needs the sorted grid.
ALLOWED_BACK = {("sog.io", "sog.codec")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The sog modules that module ``name`` imports anywhere in its body (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sog" or alias.name.startswith("sog."):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == "sog" or target.startswith("sog.")):
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{target}.{alias.name}"
                add(sub if sub in known else target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def room_of(module: str) -> str:
    best = ""
    for room in ROOMS:
        inside = module.startswith(room + ".") and room != "sog"  # the package's front is a room of its own
        if (module == room or inside) and len(room) > len(best):
            best = room
    assert best, f"{module} belongs to no room: add it to ROOMS in the right place"
    return best


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_reader_sees_imports_inside_functions():
    g = graph()
    assert "sog.errors" in g["sog.cli"]  # a top-level import
    assert g["sog"], "the package's front imports its rooms"


def test_no_import_circle_between_modules():
    g = graph()
    # A package's __init__ re-exporting its own modules is not a circle of rooms: drop arrows into a parent package.
    pruned = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in g.items()}
    assert cycles(pruned) == []


def test_no_profile_imports_another_profile():
    g = graph()
    for profile, parts in PROFILES.items():
        others = {m for other, its in PROFILES.items() if other != profile for m in (other, *its)}
        for module in (profile, *parts):
            assert not (g[module] & others), f"{module} imports {sorted(g[module] & others)}"


def test_library_never_imports_the_cli():
    g = graph()
    assert [m for m, ts in g.items() if "sog.cli" in ts and m != "sog.cli"] == []


def test_rooms_point_one_way_with_one_named_exception():
    g = graph()
    order = {room: i for i, room in enumerate(ROOMS)}
    back = set()
    for module, targets in g.items():
        for target in targets:
            a, b = room_of(module), room_of(target)
            if a != b and order[b] > order[a] and a != "sog":
                back.add((a, b))
    assert back <= ALLOWED_BACK, f"arrows back up: {sorted(back - ALLOWED_BACK)}"
    assert len(ALLOWED_BACK) <= 1


@pytest.mark.parametrize("room", sorted({room_of(m) for m in modules()}))
def test_each_room_says_what_it_owns(room):
    path = modules()[room]
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc and doc.strip(), f"{room} has no docstring saying what it owns"
