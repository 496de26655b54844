"""The codec's rooms: profiles share the toolkit and never import each other; the codec neither renders nor
searches (the pipeline measures importance and runs the rate search, then hands the codec numbers)."""

from __future__ import annotations

import ast
from pathlib import Path

import sog.codec

CODEC = Path(sog.codec.__file__).parent
#: the module of each registered profile (a profile is one module of sog.codec)
PROFILE_MODULES = {type(profile).__module__ for profile in sog.codec.PROFILES.values()}


def imported_modules(path: Path) -> set[str]:
    """The absolute dotted names of every module ``path`` (a module of sog.codec) imports, lazily or not; ``from x
    import y`` counts as x and as x.y (y may be a module)."""
    here = ["sog", "codec"]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def codec_modules() -> list[Path]:
    return sorted(CODEC.rglob("*.py"))


def test_no_codec_module_but_the_registry_imports_a_profile_module():
    assert len(PROFILE_MODULES) == len(sog.codec.PROFILES)  # one module each
    for path in codec_modules():
        if path == CODEC / "__init__.py":
            continue
        wrong = imported_modules(path) & (PROFILE_MODULES - {f"sog.codec.{path.stem}"})
        assert not wrong, f"{path.name} imports {sorted(wrong)}"


def test_the_codec_imports_neither_the_renderer_nor_the_rate_search():
    for path in codec_modules():
        wrong = {m for m in imported_modules(path)
                 if m == "sog.rate" or m.startswith("sog.rate.") or m == "sog.render" or m.startswith("sog.render.")}
        assert not wrong, f"{path.name} imports {sorted(wrong)}"


def test_the_import_reader_sees_relative_lazy_imports(tmp_path):
    # the checks above are only as good as this reader: a lazy, relative import inside a function counts
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ..render.importance import sensitivities\n    from . import native\n")
    assert {"sog.render.importance", "sog.codec.native"} <= imported_modules(module)
