"""Image-plane codecs: (H, W, C) uint8 arrays to compressed bytes and back.

A new codec is one function pair plus one line in `CODECS`. All codecs here are
lossless; ``webp`` keeps the colour under fully transparent pixels (``exact``), which
matters because SOG stores opacity in the alpha channel of ``sh0``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import SogError


@dataclass(frozen=True)
class ImageCodec:
    name: str
    extension: str
    encode: Callable[[np.ndarray, int], bytes]


def _encode_webp(array: np.ndarray, effort: int) -> bytes:
    buf = io.BytesIO()
    _to_image(array).save(buf, format="WEBP", lossless=True, quality=100, method=effort, exact=True)
    return buf.getvalue()


def _encode_png(array: np.ndarray, effort: int) -> bytes:
    buf = io.BytesIO()
    _to_image(array).save(buf, format="PNG", optimize=effort >= 6, compress_level=9)
    return buf.getvalue()


def _to_image(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"image plane must be (H, W, 1|3|4) uint8, got {array.shape} {array.dtype}")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    return Image.fromarray(np.ascontiguousarray(array if array.shape[2] > 1 else array[..., 0]), mode)


CODECS: dict[str, ImageCodec] = {
    "webp": ImageCodec("webp", ".webp", _encode_webp),
    "png": ImageCodec("png", ".png", _encode_png),
}


def encode_image(array: np.ndarray, codec: str = "webp", effort: int = 4) -> bytes:
    """Losslessly compress an (H, W, C) uint8 plane; ``effort`` 0 (fast) to 6 (small)."""
    try:
        return CODECS[codec].encode(array, effort)
    except KeyError:
        raise SogError(f"unknown image codec {codec!r} (choose from {', '.join(CODECS)})") from None


def decode_image(data: bytes, name: str = "image", channels: int = 4) -> np.ndarray:
    """Decode any Pillow-readable image to an (H, W, channels) uint8 array."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert({4: "RGBA", 3: "RGB", 1: "L"}[channels])
            array = np.asarray(img, dtype=np.uint8)
    except Exception as exc:
        raise SogError(f"{name}: cannot decode image ({exc})") from None
    return array.reshape(array.shape[0], array.shape[1], channels)
