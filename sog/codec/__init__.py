"""Encoding sorted scenes into image planes. Each profile is a module with a `base.Profile` subclass and one line
in `PROFILES`; `base` states the contract the pipeline relies on.

Profiles:
* ``native`` (alias ``sog``) — sog's own layout (sog/codec/native.py): free bit depths, palette size, codecs,
  importance layers, read by sog only. Retired as a write option of ``sog compress`` (`Profile.retired`:
  at an equal worst view it is not smaller than sogv2); its files are still read.
* ``sogv2`` (the default) — SOG v2 files that every v2 reader opens, rate-optimised inside the fixed fields
  (sog/codec/sogv2.py).
* ``playcanvas`` — PlayCanvas SOG v2 as splat-transform writes it (sog/codec/playcanvas.py).
"""

from __future__ import annotations

from ..errors import SogError
from ..splats import Splats
from . import native, playcanvas, sogv2
from .base import Layer, Profile

#: name -> profile; a new profile is one module plus one line here. The first one a file `claims` decodes it.
PROFILES: dict[str, Profile] = {p.name: p for p in (sogv2.PROFILE, native.PROFILE, playcanvas.PROFILE)}
#: older names that still select a profile (``sog`` was the native profile's name)
ALIASES: dict[str, str] = {"sog": "native"}
#: the profile `CompressOptions` and ``sog compress`` use when none is named
DEFAULT_PROFILE = "sogv2"

__all__ = ["PROFILES", "ALIASES", "DEFAULT_PROFILE", "Layer", "Profile", "get_profile",
           "profile_of", "decode_container"]


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (or an alias of it); `SogError` naming the choices otherwise."""
    profile = PROFILES.get(ALIASES.get(name, name))
    if profile is None:
        raise SogError(f"unknown profile {name!r} (choose from {', '.join([*PROFILES, *ALIASES])})")
    return profile


def profile_of(meta: dict) -> Profile:
    """The profile whose file ``meta`` (a container's meta.json) is."""
    if not isinstance(meta, dict):
        raise SogError("meta.json is not a JSON object")
    for profile in PROFILES.values():
        if profile.claims(meta):
            return profile
    raise SogError(f"unknown .sog profile {meta.get('profile')!r}")


def decode_container(meta: dict, read) -> Splats:
    """Decode a container's planes with the profile its ``meta.json`` belongs to (SOG v2 when it names none)."""
    return profile_of(meta).decode(meta, read)
