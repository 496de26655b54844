"""Encoding sorted scenes into image planes. A profile is a module with ``encode``/``decode``.

Profiles:
* ``sog`` — the native profile (sog/codec/native.py): free bit depths, palette size, codecs.
* ``playcanvas`` — PlayCanvas SOG v2, byte-compatible with the PlayCanvas viewer.
"""

from __future__ import annotations

from ..errors import SogError
from ..splats import Splats
from . import native, playcanvas

PROFILES = {"playcanvas": playcanvas, "sog": native}


def decode_container(meta: dict, read) -> Splats:
    """Decode a container's planes with the profile its ``meta.json`` names (SOG v2 by default)."""
    profile = meta.get("profile", "playcanvas") if isinstance(meta, dict) else None
    if profile not in PROFILES:
        raise SogError(f"unknown .sog profile {profile!r}")
    return PROFILES[profile].decode(meta, read)
