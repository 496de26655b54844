"""Space-filling curves: a cheap order of 3D points laid along a 2D curve over the grid.

`hilbert_keys` gives the Hilbert (or `morton_keys` the Z-order) index of integer coordinates in
any number of dimensions (Skilling's transpose form, vectorised over the points). `curve_cells`
orders the filled cells of an (H, W) grid along the 2D curve of the power-of-two square that holds
it (the curve is clipped, so it jumps where the square sticks out, but every block of 4^k cells it
visits together is still a compact square). `curve_order` puts the points, in the order of their
3D curve, into the grid cells in the order of the 2D curve, so that both image directions are
local; a row-major fold of a 1D order (the `morton` sorter) is local along rows only.

Shapes: points ``x`` (N, C), the first 3 columns used; an *order* (N,) holds the input index for
cells 0..N-1 in row-major order.
"""

from __future__ import annotations

import torch


def quantise(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer coordinates in [0, 2^bits) of the points ``x`` (N, D), each axis over its own range; (N, D) long."""
    pts = x.double()
    lo, hi = pts.min(0).values, pts.max(0).values
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return ((pts - lo) / span * (2 ** bits - 1)).round().long().clamp(0, 2 ** bits - 1)


def _interleave(axes: list[torch.Tensor], bits: int) -> torch.Tensor:
    """Key whose bits, most significant first, are bit b of axis 0, 1, ..., for b = bits-1 .. 0; (N,) long."""
    d = len(axes)
    key = torch.zeros_like(axes[0])
    for b in range(bits - 1, -1, -1):
        for a in range(d):
            key = (key << 1) | ((axes[a] >> b) & 1)
    return key


#: points per chunk of the key computations: their ~100 elementwise passes stay in the CPU's cache (at 6M points
#: one pass over an (N,) long column is 48 MB, and the Hilbert keys of 6M took 30 s unchunked, 1M 1 s)
KEY_CHUNK = 1 << 16


def _chunked(keys):
    """``keys(q, bits)`` applied to row chunks of ``q`` (N, D) of `KEY_CHUNK` points (the keys are per point)."""
    def run(q: torch.Tensor, bits: int) -> torch.Tensor:
        if q.shape[0] <= KEY_CHUNK:
            return keys(q, bits)
        return torch.cat([keys(q[s:s + KEY_CHUNK], bits) for s in range(0, q.shape[0], KEY_CHUNK)])
    run.__doc__, run.__name__ = keys.__doc__, keys.__name__
    return run


@_chunked
def morton_keys(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Z-order index of the integer coordinates ``q`` (N, D) in [0, 2^bits); (N,) long (D * bits <= 63)."""
    return _interleave([q[:, a] for a in range(q.shape[1])], bits)


@_chunked
def hilbert_keys(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Hilbert index of the integer coordinates ``q`` (N, D) in [0, 2^bits); (N,) long (D * bits <= 63).

    Skilling's method (J. Skilling, "Programming the Hilbert curve", 2004): undo the excess work
    of the curve's rotations bit plane by bit plane, Gray-encode, then interleave the bits.
    """
    d = q.shape[1]
    x = [q[:, a].clone() for a in range(d)]
    m = 1 << (bits - 1)
    bit = m
    while bit > 1:
        low = bit - 1
        for i in range(d):
            on = (x[i] & bit) != 0
            t = (x[0] ^ x[i]) & low
            x0_flip = x[0] ^ low
            if i == 0:
                x[0] = torch.where(on, x0_flip, x[0])  # the swap of axis 0 with itself is a no-op
                continue
            x[0] = torch.where(on, x0_flip, x[0] ^ t)
            x[i] = torch.where(on, x[i], x[i] ^ t)
        bit >>= 1
    for i in range(1, d):
        x[i] = x[i] ^ x[i - 1]
    t = torch.zeros_like(x[0])
    bit = m
    while bit > 1:
        t = torch.where((x[d - 1] & bit) != 0, t ^ (bit - 1), t)
        bit >>= 1
    x = [v ^ t for v in x]
    return _interleave(x, bits)


KEYS = {"hilbert": hilbert_keys, "morton": morton_keys}


def point_keys(x: torch.Tensor, curve: str = "hilbert", bits: int = 21) -> torch.Tensor:
    """Curve index of the points ``x`` (N, C) by their first (up to) 3 columns; (N,) long."""
    pts = x[:, :3]
    return KEYS[curve](quantise(pts, bits), bits)


def curve_cells(shape: tuple[int, int], n: int, curve: str = "hilbert", device=None) -> torch.Tensor:
    """The filled cells 0..n-1 (row-major) of the (H, W) grid in the order of the 2D curve over the
    smallest power-of-two square that holds the grid; (n,) long."""
    h, w = shape
    bits = max(int(max(h, w) - 1).bit_length(), 1)
    cells = torch.arange(n, device=device)
    q = torch.stack([cells // w, cells % w], 1)
    return cells[torch.argsort(KEYS[curve](q, bits), stable=True)]


def curve_order(x: torch.Tensor, shape: tuple[int, int], curve: str = "hilbert") -> torch.Tensor:
    """Order (N,) long: the points ``x`` (N, C) sorted along the 3D ``curve`` of their first 3
    columns, laid into the grid's filled cells along the 2D ``curve``."""
    n = x.shape[0]
    along = torch.argsort(point_keys(x, curve), stable=True)
    order = torch.empty(n, dtype=torch.long, device=x.device)
    order[curve_cells(shape, n, curve, device=x.device)] = along
    return order
