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
from .grid import grid_shape
from .io import load, save
from .pipeline import CompressOptions, CompressResult, compress, convert, decompress
from .sort import sort_grid
from .splats import Splats

__all__ = ["SogError", "Splats", "load", "save", "compress", "decompress", "convert", "CompressOptions",
           "CompressResult", "sort_grid", "grid_shape"]
__version__ = "0.1.0"
