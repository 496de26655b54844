"""Grid geometry: how N Gaussians are laid out on an H×W image.

Gaussian i of the sorted scene sits at texel i in row-major order; texels N..H·W-1 are
empty padding. Nothing is ever dropped to make a square.
"""

from __future__ import annotations

import math

from .errors import SogError


def grid_shape(n: int) -> tuple[int, int]:
    """The (H, W) grid for ``n`` Gaussians: W = ceil(sqrt(n)), H = ceil(n / W); fewer than W empty cells."""
    if n <= 0:
        raise SogError("cannot lay out zero Gaussians on a grid")
    width = math.isqrt(n - 1) + 1
    return (n + width - 1) // width, width
