"""The same bits on every CPU: numbers that steer a discrete choice, and the ops of a training step.

Vectorised kernels (torch's per-capability kernels, oneDNN's convolutions, MKL's and OpenBLAS's per-CPU code paths,
numpy's SIMD transcendentals) may round the last bit of a float differently on different CPUs.

* `snap` rounds a value that steers a discrete choice (a label, a codebook level, a layer) to fewer significant
  bits, so that a last-bit difference almost never survives; exact choices use exactly rounded operations in a
  fixed order instead (`sog.codec.quantize` k-means assignment).
* A training step is a loop, so one last-bit difference grows into different parameters (Adam turns the sign of
  a tiny gradient into a whole step): its ops must round the same everywhere. Elementwise ``+ - * /`` and
  ``sqrt`` are exactly rounded, and torch's ``exp`` and the projection's small matrix products measured the same
  in every kernel (`tests/test_stable.py`); torch's ``sigmoid``, reductions over a small dimension
  (``F.normalize``, ``sum(dim)``) and ``conv2d`` (oneDNN picks its kernel by CPU) do not. The replacements below
  use only exactly rounded ops in a fixed order and are differentiable through autograd:

      sigmoid(x)                 # (...) like torch.sigmoid
      normalize(v)               # (..., D) rows of unit length, like F.normalize(v, dim=-1)
      weighted_sum(w, c)         # (N, K) x (N, K, C) -> (N, C), the K terms added in order
      blur(x, taps)              # (..., H, W) separable blur, zero padding, like two conv2d passes
      gaussian_taps(r, sigma)    # (2r+1,) normalised Gaussian, computed in Python's float64
"""

from __future__ import annotations

import math

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


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``1 / (1 + exp(-x))`` of any shape (torch's own sigmoid rounds by CPU)."""
    return 1 / (1 + torch.exp(-x))


def normalize(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows of ``v`` (..., D) divided by their length (at least ``eps``), the squares added in index order."""
    sq = v[..., 0] * v[..., 0]
    for i in range(1, v.shape[-1]):
        sq = sq + v[..., i] * v[..., i]
    return v / sq.sqrt().clamp(min=eps).unsqueeze(-1)


def weighted_sum(w: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``sum_k w[:, k] * c[:, k]`` for weights (N, K) and values (N, K, C) -> (N, C), added in order of k."""
    out = w[:, 0, None] * c[:, 0]
    for k in range(1, w.shape[1]):
        out = out + w[:, k, None] * c[:, k]
    return out


def gaussian_taps(radius: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """(2 radius + 1,) Gaussian taps ``exp(-t² / 2σ²)`` summing to 1, computed in Python floats (libm, in order)."""
    g = [math.exp(-0.5 * (t / sigma) ** 2) for t in range(-radius, radius + 1)]
    total = math.fsum(g)
    return torch.tensor([v / total for v in g], dtype=dtype, device=device)


def blur(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable blur of ``x`` (..., H, W) by the 1-D ``taps`` (K,) (K odd) along W, then H, with zero padding
    -> (..., H, W): what two grouped ``conv2d`` passes compute, each output the K products added in order."""
    r = taps.shape[0] // 2
    for dim in (-1, -2):
        n = x.shape[dim]
        pad = [0, 0, 0, 0]
        pad[0 if dim == -1 else 2] = pad[1 if dim == -1 else 3] = r
        xp = torch.nn.functional.pad(x, pad)
        out = taps[0] * xp.narrow(dim, 0, n)
        for j in range(1, taps.shape[0]):
            out = out + taps[j] * xp.narrow(dim, j, n)
        x = out
    return x
