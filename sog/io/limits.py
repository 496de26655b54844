"""The documented limits on what sog reads, and the checks every reader applies at its boundary.

A reader checks what a file *declares* (counts, image sizes, entry sizes, tree sizes) against these limits
and against the bytes that are really there before it allocates or decodes anything, so memory grows with
the real data, never with what a header claims. Every violation is a `SogError` naming the file and field.

========================  ==============  =========================================================
limit                     value           what it bounds
========================  ==============  =========================================================
``max_gaussians``         33,554,432      Gaussians per file (2^25; ~8 GB as float32 at SH degree 3)
``gaussians_per_byte``    1               Gaussians a ``.sog`` may declare per byte it stores (8 bits
                                          per Gaussian; a trained scene's planes take 40 or more),
``count_slack``           1,048,576       plus this many whatever its size
``max_image_side``        16,383          width and height of an image plane (WebP's own limit)
``plane_slack``           4,194,304       pixels a plane may hold beyond twice the count it serves
``max_abs_value``         1e9             magnitude of any attribute value (positions, log-scales, ...)
``max_json_bytes``        16 MiB          a ``meta.json`` or ``cameras.json``
``max_lod_json_bytes``    32 MiB          a ``lod-meta.json``
``max_json_depth``        256             nesting of any JSON document
``max_lod_nodes``         100,000         nodes of a ``lod-meta.json`` tree
``max_lod_depth``         100             depth of a ``lod-meta.json`` tree
``max_entry_bytes``       1 GiB           one file of a ``.sog`` zip or SOG folder (stored or inflated)
``max_inflate_ratio``     200             inflated / compressed bytes of a deflated zip entry or a
                                          gzip/zstd ``.spz`` (plus ``inflate_slack``)
``inflate_slack``         16 MiB          bytes any compressed input may inflate to regardless of ratio
``max_ply_header_bytes``  256 KiB         a PLY header
``max_render_side``       8,192           ``sog eval --size`` (pixels per side)
``max_views``             1,024           ``sog eval --views``
``max_layers``            16              ``--layers`` and the layers of a native file
``max_seed``              2^31 - 1        ``--seed``
========================  ==============  =========================================================

Values beyond ``max_abs_value`` are finite but absurd (a trained scene's positions stay within ~1e4, its
log-scales within ±30): the codecs square and sum such values in float32, so a file holding them is
refused at load, with the attribute and the first index named, instead of being written to a file that
could not be read back. (The check allows 0.1 % above the limit, so a value written at the limit that decodes a
rounding step above it still reads back; numbers in a ``meta.json`` may reach twice the limit.)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..errors import SogError


@dataclass(frozen=True)
class Limits:
    """Resource limits of the readers (see the module docstring for what each bounds)."""

    max_gaussians: int = 1 << 25
    gaussians_per_byte: int = 1
    count_slack: int = 1 << 20
    max_image_side: int = 16383
    plane_slack: int = 1 << 22
    max_abs_value: float = 1e9
    max_json_bytes: int = 16 << 20
    max_lod_json_bytes: int = 32 << 20
    max_json_depth: int = 256
    max_lod_nodes: int = 100_000
    max_lod_depth: int = 100
    max_entry_bytes: int = 1 << 30
    max_inflate_ratio: int = 200
    inflate_slack: int = 16 << 20
    max_ply_header_bytes: int = 256 << 10
    max_render_side: int = 8192
    max_views: int = 1024
    max_layers: int = 16
    max_seed: int = (1 << 31) - 1

    def plane_pixels(self, count: int) -> int:
        """The most pixels an image plane of a file of ``count`` Gaussians may have."""
        return 2 * int(count) + self.plane_slack

    def stored_count(self, stored_bytes: int) -> int:
        """The most Gaussians a ``.sog`` of ``stored_bytes`` (its zip, or a folder's meta.json and planes) may
        declare: constant image planes of a few KB can declare millions, and decoding them is what costs."""
        return self.gaussians_per_byte * int(stored_bytes) + self.count_slack

    def inflated_bytes(self, compressed: int) -> int:
        """The most bytes ``compressed`` bytes of deflate/gzip/zstd may honestly inflate to."""
        return self.max_inflate_ratio * int(compressed) + self.inflate_slack


LIMITS = Limits()


def read_whole(path, kind: str, limits: Limits = LIMITS) -> bytes:
    """The bytes of a one-piece file (``kind``: its format's name in messages, e.g. ``".spz"``), read at most
    `Limits.max_entry_bytes` of it: a larger file is refused without reading the rest."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_entry_bytes + 1)
    except OSError as exc:
        raise SogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limits.max_entry_bytes:
        raise SogError(f"{path}: {kind} file is larger than the {limits.max_entry_bytes:,} bytes sog reads")
    return data


def check_writable(splats, container: str, max_count: int, max_sh_degree: int) -> None:
    """Validate the `Splats` a writer is given and refuse (`SogError`) what ``container`` (its name in messages,
    e.g. ``"a .glb"``) cannot hold: more than ``max_count`` Gaussians or an SH degree above ``max_sh_degree``."""
    splats.validate("scene to write")
    if len(splats) > max_count:
        raise SogError(f"{container} holds at most {max_count:,} Gaussians, not {len(splats):,}")
    if splats.sh_degree > max_sh_degree:
        raise SogError(f"{container} holds SH degree up to {max_sh_degree}, not {splats.sh_degree}")


def check_count(n, what: str, limits: Limits = LIMITS) -> int:
    """``n`` as a Gaussian count: an integer 1..``max_gaussians``; else a `SogError` naming ``what``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise SogError(f"{what} must be a whole number of Gaussians, not {_show(n)}")
    n = int(n)
    if n <= 0:
        raise SogError(f"{what} holds zero Gaussians" if n == 0 else f"{what} is negative ({n})")
    if n > limits.max_gaussians:
        raise SogError(f"{what} declares {n:,} Gaussians, more than sog's limit of {limits.max_gaussians:,} per file")
    return n


def check_int(value, what: str, lo: int, hi: int) -> int:
    """``value`` as an integer in ``lo..hi`` (a JSON integer, not a bool or float)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SogError(f"{what} must be a whole number, not {_show(value)}")
    if not lo <= int(value) <= hi:
        raise SogError(f"{what} is {_show(value)}, outside {lo}..{hi}")
    return int(value)


def check_number(value, what: str, limit: float | None = None) -> float:
    """``value`` as a finite real number (optionally ``|value| <= limit``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SogError(f"{what} must be a number, not {_show(value)}")
    try:
        x = float(value)
    except OverflowError:
        raise SogError(f"{what} is too large ({_show(value)})") from None
    if not math.isfinite(x) or (limit is not None and abs(x) > limit):
        raise SogError(f"{what} is {_show(value)}, not a finite number" if not math.isfinite(x)
                       else f"{what} is {_show(value)}, beyond ±{limit:g}")
    return x


def check_numbers(values, what: str, length: int | None = None, max_length: int | None = None,
                  limit: float | None = None) -> list[float]:
    """A JSON list of finite numbers (exactly ``length`` or at most ``max_length`` of them)."""
    if not isinstance(values, list):
        raise SogError(f"{what} must be a list of numbers, not {_show(values)}")
    if length is not None and len(values) != length:
        raise SogError(f"{what} must hold {length} numbers, not {len(values)}")
    if max_length is not None and not 1 <= len(values) <= max_length:
        raise SogError(f"{what} must hold 1..{max_length} numbers, not {len(values)}")
    return [check_number(v, f"{what}[{i}]", limit) for i, v in enumerate(values)]


def check_name(name, what: str) -> str:
    """A plain file name (as meta.json names its planes): a string with no folder part."""
    if not isinstance(name, str) or not name or len(name) > 255 or name in (".", "..") \
            or any(c in name for c in "/\\\x00"):
        raise SogError(f"{what} must be a plain file name, not {_show(name)}")
    return name


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def json_depth(doc) -> int:
    """The deepest nesting of lists/objects in a parsed JSON document (walked without recursion)."""
    deepest, stack = 0, [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        values = node.values() if isinstance(node, dict) else node
        stack.extend((v, depth + 1) for v in values if isinstance(v, (dict, list)))
    return deepest


def parse_json(data: bytes | str, what: str, max_bytes: int | None = None, limits: Limits = LIMITS):
    """Parse a JSON document strictly: at most ``max_bytes`` (default ``max_json_bytes``), nested at most
    ``max_json_depth`` deep, numbers finite (no ``NaN``/``Infinity``, no overflowing literals such as ``1e999``:
    the error names the field)."""
    max_bytes = limits.max_json_bytes if max_bytes is None else max_bytes
    if len(data) > max_bytes:
        raise SogError(f"{what} is {len(data):,} bytes, more than the {max_bytes:,} a JSON file may have")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise SogError(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    odd: list[str] = []

    def constant(name: str) -> float:
        odd.append(name)
        return float(name)

    def number(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            odd.append(literal)
        return value

    try:
        doc = json.loads(text, parse_constant=constant, parse_float=number)
    except RecursionError:
        raise SogError(f"{what} is nested more than {limits.max_json_depth} deep") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise SogError(f"{what} is not valid JSON ({_one_line(exc)})") from None
    depth = json_depth(doc)
    if depth > limits.max_json_depth:
        raise SogError(f"{what} is nested {depth} deep, more than the {limits.max_json_depth} sog reads")
    if odd:
        where = first_non_finite(doc)
        raise SogError(f"{what}: {where[0]} is {where[1]}, not a finite number" if where
                       else f"{what} holds {odd[0]}, not a finite number")
    return doc


def first_non_finite(doc) -> tuple[str, str] | None:
    """``(field path, value)`` of the first NaN/Infinity (or overflowing literal such as ``1e999``) in a parsed JSON
    document, walked without recursion; None when every number is finite."""
    stack = [("", doc)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where or "the document", {math.inf: "Infinity", -math.inf: "-Infinity"}.get(node, "NaN")
        if isinstance(node, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(node))))
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


#: the slack `check_magnitudes` allows above ``max_abs_value``: a decoded value may land a quantisation rounding above
#: the value that was written, and a file sog wrote must read back
ROUNDING = 1e-3


def check_magnitudes(splats, what: str, limits: Limits = LIMITS):
    """Refuse a scene holding values beyond ``±max_abs_value`` (finite, but beyond what the codecs can square and
    sum in float32); names the attribute and the first Gaussian. Returns ``splats``."""
    n = len(splats)
    for name, tensor in splats.tensors().items():
        if tensor.numel() == 0:
            continue
        lo, hi = tensor.detach().aminmax()  # one reduction; the (N, C) mask only to name the first Gaussian
        if not bool((-lo).maximum(hi) > limits.max_abs_value * (1 + ROUNDING)):
            continue
        big = tensor.detach().reshape(n, -1).abs() > limits.max_abs_value * (1 + ROUNDING)
        if bool(big.any()):
            rows = big.any(dim=1).nonzero().flatten()
            raise SogError(f"{what}: {name} has {int(rows.numel())} Gaussian(s) with values beyond "
                           f"±{limits.max_abs_value:g} (first at index {int(rows[0])}: "
                           f"{float(tensor.reshape(n, -1)[rows[0]].abs().max()):.3g})")
    return splats
