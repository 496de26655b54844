"""What the decoders share once the planes are read: the colour and opacity of each Gaussian from its sh0 labels
and alpha codes, and the higher-band coefficient count a ``meta.json`` declares (`sog.codec.v2.decode` and
`sog.codec.native.decode`)."""

from __future__ import annotations

import numpy as np

from ..errors import SogError
from ..splats import SH_REST_COUNT


def colour_and_opacity(codebook: np.ndarray, labels: np.ndarray, alpha: np.ndarray,
                       top: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sh0 (N, 3), opacities (N,) float64)``: the ``codebook`` (k,) entries the sh0 ``labels`` (N, 3) name, and the
    opacity logits of ``alpha`` (N,) codes 0..``top`` (``top``: opaque), kept off 0 and 1 so every logit is finite."""
    a = np.clip(alpha.astype(np.float64) / top, 1e-6, 1 - 1e-6)
    return codebook[labels], np.log(a / (1 - a))


def sh_rest_count(shn_meta: dict | None) -> int:
    """K, the higher-band SH coefficients per colour of a file whose meta.json ``shN`` entry is ``shn_meta`` (its
    ``bands``; 0 without one); `SogError` for a band count a scene cannot have."""
    bands = int(shn_meta["bands"]) if shn_meta else 0
    k = SH_REST_COUNT.get(bands)
    if k is None:
        raise SogError(f"unsupported shN bands {bands}")
    return k
