"""Numbers that steer a discrete choice (a label, a codebook level, a layer) the same on every CPU.

Vectorised kernels (torch's per-capability kernels, MKL's and OpenBLAS's per-CPU code paths, numpy's SIMD
transcendentals) may round the last bit of a float differently on different CPUs. `snap` rounds such a value to
fewer significant bits, so that a last-bit difference almost never survives; exact choices use exactly rounded
operations in a fixed order instead (`sog.codec.quantize` k-means assignment).
"""

from __future__ import annotations

import numpy as np
import torch

#: significant bits `snap` keeps by default: a few fewer than float32's 24
SNAP_BITS = 20


def snap(x, bits: int = SNAP_BITS) -> np.ndarray:
    """``x`` (any shape) as float64 rounded to ``bits`` significant bits (round half to even on the mantissa;
    zeros, infinities and NaNs unchanged)."""
    x = np.asarray(x, np.float64)
    mantissa, exponent = np.frexp(x)
    return np.ldexp(np.rint(np.ldexp(mantissa, bits)), exponent - bits)


def snap_tensor(x: torch.Tensor, bits: int = SNAP_BITS) -> torch.Tensor:
    """`snap` of a float tensor ``x`` (any shape, any device), in its own dtype (float32 keeps ``bits`` <= 24)."""
    mantissa, exponent = torch.frexp(x)
    return torch.ldexp(torch.round(torch.ldexp(mantissa, torch.tensor(bits, device=x.device))),
                       (exponent - bits).to(x.dtype))
