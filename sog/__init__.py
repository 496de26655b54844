"""sog — Self-Organizing Gaussians: sort 3D Gaussian Splatting scenes onto 2D grids and store
each attribute as a compressed image plane.

Quick use::

    import sog
    splats = sog.load("scene.ply")                    # Splats with gsplat names
    sog.compress(splats, "scene.sog")                 # sort + encode + write
    back = sog.decompress("scene.sog", "back.ply")    # Splats (and a PLY)
    sog.convert("scene.ply", "scene.spz")             # any format sog reads to any it writes
    perm = sog.sort_grid(x, (H, W))                   # the sorter on any (N, C) tensor
"""

from .errors import SogError

#: the public names and the module each comes from, imported on first use (PEP 562): ``import sog`` itself is
#: cheap, so the command line can catch a Ctrl-C that arrives while torch is still being imported
_LAZY = {"grid_shape": "grid", "load": "io", "save": "io", "CompressOptions": "pipeline",
         "CompressResult": "pipeline", "compress": "pipeline", "decompress": "pipeline", "convert": "pipeline", "sort_grid": "sort",
         "Splats": "splats"}

__all__ = ["SogError", "Splats", "load", "save", "compress", "decompress", "convert", "CompressOptions",
           "CompressResult", "sort_grid", "grid_shape"]
from .version import __version__


def __getattr__(name: str):
    import importlib
    import importlib.util

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)  # ``sog.io``, ``sog.codec``, ... as before
    raise AttributeError(f"module 'sog' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
