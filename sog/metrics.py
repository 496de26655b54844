"""Image metrics in torch: PSNR and SSIM on RGB images in [0, 1]; the per-view statistics that rate choices and
reports use (`ViewStats`: mean, 10th percentile and worst view) and a target on them (`RateTarget`).

Images are (H, W, 3) or batches (B, H, W, 3); values are clamped to [0, 1] first (renders can exceed 1).
SSIM is the standard one (Wang et al. 2004) as the INRIA 3DGS evaluation computes it: an 11x11 Gaussian
window with sigma 1.5, C1 = 0.01², C2 = 0.03², per colour channel, zero padding ("same" size), averaged over
pixels and channels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .errors import SogError
from .stable import blur as stable_blur, gaussian_taps


def _batch(img: torch.Tensor) -> torch.Tensor:
    if img.ndim == 3:
        img = img[None]
    if img.ndim != 4:
        raise ValueError(f"expected (H, W, C) or (B, H, W, C) images, got shape {tuple(img.shape)}")
    return img.float().clamp(0, 1)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image -> (B,) (or a scalar tensor for single images)."""
    x, y = _batch(a), _batch(b)
    out = (x - y).pow(2).flatten(1).mean(1)
    return out if a.ndim == 4 else out[0]


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image (peak 1) -> (B,) or scalar; ``inf`` for identical images."""
    return -10 * torch.log10(mse(a, b))


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image -> (B,) or scalar; 1 for identical images."""
    x = _batch(a).permute(0, 3, 1, 2)
    y = _batch(b).permute(0, 3, 1, 2)
    taps = gaussian_taps(window // 2, sigma, x.dtype, x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return stable_blur(t, taps)   # the separable window; the same bits on every CPU (a training loss)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x * mu_x
    syy = blur(y * y) - mu_y * mu_y
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2))
    out = m.flatten(1).mean(1)
    return out if a.ndim == 4 else out[0]


def psnr_capped(value: float, cap: float = 100.0) -> float:
    """A finite PSNR for reports: ``inf`` (identical images) and anything above ``cap`` become ``cap``."""
    return cap if math.isinf(value) or value > cap else float(value)


def view_psnrs(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-view PSNR of (V, H, W, 3) renders, each capped (`psnr_capped`); their mean is the reported PSNR."""
    return [psnr_capped(float(v)) for v in psnr(a, b)]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` with linear interpolation between order statistics (numpy's default)."""
    v = sorted(float(x) for x in values)
    if not v:
        raise ValueError("no values")
    pos = (len(v) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@dataclass(frozen=True)
class ViewStats:
    """What a set of per-view PSNRs (dB) is judged by: the ``mean``, the 10th percentile ``p10`` (`percentile`)
    and the ``worst`` view."""

    mean: float
    p10: float
    worst: float

    @classmethod
    def of(cls, psnrs: list[float]) -> "ViewStats":
        return cls(sum(psnrs) / len(psnrs), percentile(psnrs, 10), min(psnrs))

    def as_dict(self) -> dict:
        return asdict(self)


#: ``--psnr DB`` alone: the 10th-percentile view must reach DB - `P10_BELOW` and the worst view DB - `WORST_BELOW`
#: (`RateTarget.for_psnr`; chosen on tuning views, docs/profiles.md)
P10_BELOW, WORST_BELOW = 4.0, 10.0


@dataclass(frozen=True)
class RateTarget:
    """Floors (dB) on a file's `ViewStats`; None leaves a statistic unconstrained. A file meets the target when
    each given statistic reaches its floor (`margin` >= 0)."""

    mean: float | None = None
    p10: float | None = None
    worst: float | None = None

    def __post_init__(self) -> None:
        given = self.given()
        if not given:
            raise SogError("a PSNR target needs at least one of mean, p10 and worst")
        for name, floor in given.items():
            if not 0 < floor < 1000:  # also catches NaN
                raise SogError(f"the {name} PSNR target must be a positive number of dB below 1000, not {floor}")

    @classmethod
    def for_psnr(cls, db: float, p10: float | None = None, worst: float | None = None) -> "RateTarget":
        """``--psnr DB``: the mean reaches ``db``, the 10th percentile ``p10`` (default ``db`` - `P10_BELOW`) and the
        worst view ``worst`` (default ``db`` - `WORST_BELOW`)."""
        if not 0 < db < 1000:
            raise SogError(f"--psnr must be a positive number of dB below 1000, not {db}")
        return cls(db, db - P10_BELOW if p10 is None else p10, db - WORST_BELOW if worst is None else worst)

    def given(self) -> dict[str, float]:
        """The constrained statistics: name -> floor."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def margin(self, stats: ViewStats) -> float:
        """The least amount (dB) by which ``stats`` clear the floors (negative: the largest shortfall)."""
        return min(getattr(stats, name) - floor for name, floor in self.given().items())

    def met(self, stats: ViewStats) -> bool:
        return self.margin(stats) >= 0

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{name} {floor:g} dB" for name, floor in self.given().items())


#: what ``--quality small`` promises of views it has never seen (at the judging size): 40 dB at the 10th percentile and
#: 35 dB at the worst view (40 dB render against render: "looks the same", about -0.2 dB against photos)
SMALL_PROMISE = RateTarget(p10=40.0, worst=35.0)
#: how far above the promise the search holds its own views (48 tuning views at 256 px), so that other views keep it:
#: the largest drop from the search views to held-out tuning views at 512 px (scripts/tune_small_guard.py)
SMALL_GUARD_P10, SMALL_GUARD_WORST = 1.6, 0.7
#: ``--quality small`` for every output: the smallest file whose search views reach the promise plus the guard
SMALL_TARGET = RateTarget(p10=SMALL_PROMISE.p10 + SMALL_GUARD_P10, worst=SMALL_PROMISE.worst + SMALL_GUARD_WORST)
