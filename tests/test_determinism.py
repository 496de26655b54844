"""Deterministic: the same input, options and seed give the same bytes on any CPU.

Other CPUs are emulated on this one by environment variables that pick other SIMD code paths, in a child process
each: MKL's instruction set (torch's BLAS and vector maths), torch's kernel capability, numpy's dispatched
features, numba's target CPU, OpenBLAS's kernels (numpy's BLAS) and oneDNN's (torch's float32 convolutions). Every case of `test_profiles`' frozen ones,
and one with the default sorter (ShuffleSoftSort) on a small budget, must be the same bytes under each as in a
plain run. The default run checks a few cases under two variants; the rest are marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sog

#: the checkout whose `sog` the tests import (its data/ and scripts/ too)
ROOT = Path(sog.__file__).resolve().parent.parent

#: variant -> environment of the child process
VARIANTS = {
    "mkl avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "mkl sse4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "mkl avx": {"MKL_ENABLE_INSTRUCTIONS": "AVX"},
    "aten default": {"ATEN_CPU_CAPABILITY": "default"},
    "numpy no avx512/v3": {"NPY_DISABLE_CPU_FEATURES": "AVX512_SPR AVX512_ICL AVX512_SKX AVX512_CLX AVX512_CNL "
                                                      "AVX512CD AVX512F X86_V4 X86_V3"},
    "numba generic": {"NUMBA_CPU_NAME": "generic"},
    "openblas prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "onednn sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
}
#: variants of the default run (the others are slow)
FAST_VARIANTS = ("mkl avx2", "aten default")

#: case -> (source: "sample" = data/sample.ply or "small" = synthetic_scene(3000, seed=1), CompressOptions keywords);
#: the frozen cases of test_profiles plus the default sorter
CASES = {
    "native default": ("sample", dict(profile="sog")),
    "native high": ("sample", dict(profile="sog", quality="high")),
    "playcanvas": ("sample", dict(profile="playcanvas")),
    "native layered": ("small", dict(profile="sog", profile_options={"layers": 3, "layer_min": 1000})),
    "sogv2 default": ("sample", dict(profile="sogv2")),
    "sogv2 layered": ("small", dict(profile="sogv2", profile_options={"layers": 3, "layer_min": 1000})),
    "shufflesoftsort": ("small", dict(profile="sogv2", sort="shufflesoftsort", sort_budget=4)),
}
#: cases of the default run (each a second or two)
FAST_CASES = ("native default", "sogv2 default", "shufflesoftsort")

#: the child: compress each case (JSON on argv) and print {case: sha256} as JSON
CHILD = r"""
import hashlib, json, sys, tempfile
from pathlib import Path
root = Path(sys.argv[1])
import sog  # this checkout's: the child runs in it (python -c puts the working directory first)
from sog.datasets import synthetic_scene
out, tmp = {}, Path(tempfile.mkdtemp())
for case, (source, options) in json.loads(sys.argv[2]).items():
    scene = root / "data" / "sample.ply" if source == "sample" else synthetic_scene(3000, seed=1).with_sh_degree(3)
    sog.compress(scene, tmp / "out.sog", sog.CompressOptions(**{"sort": "morton", **options}), overwrite=True,
                 quiet=True)
    out[case] = hashlib.sha256((tmp / "out.sog").read_bytes()).hexdigest()
print(json.dumps(out))
"""


def child_output(code: str, env: dict[str, str], *argv: str, timeout: int = 1800) -> str:
    """The last line that ``python -c code argv`` prints, run in this checkout with ``env`` added to this process's
    environment (less every variant's own variables); it must exit 0. Other test files' cross-CPU checks use it."""
    base = {k: v for k, v in os.environ.items() if k not in {n for e in VARIANTS.values() for n in e}}
    done = subprocess.run([sys.executable, "-c", code, *argv], env={**base, **env}, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def run_cases(cases: tuple[str, ...], env: dict[str, str]) -> dict[str, str]:
    """{case: sha256 of its file} from a child process with ``env`` added to this one's environment."""
    return json.loads(child_output(CHILD, env, str(ROOT), json.dumps({c: CASES[c] for c in cases})))


@pytest.fixture(scope="module")
def plain():
    """The plain run's hashes, computed once per case set."""
    cache: dict[tuple[str, ...], dict[str, str]] = {}

    def get(cases: tuple[str, ...]) -> dict[str, str]:
        if cases not in cache:
            cache[cases] = run_cases(cases, {})
        return cache[cases]
    return get


@pytest.mark.parametrize("variant", [v if v in FAST_VARIANTS else pytest.param(v, marks=pytest.mark.slow)
                                     for v in VARIANTS])
def test_each_cpu_code_path_writes_the_same_bytes(plain, variant):
    cases = FAST_CASES if variant in FAST_VARIANTS else tuple(CASES)
    expected = plain(cases)
    got = run_cases(cases, VARIANTS[variant])
    assert got == expected, [case for case in cases if got[case] != expected[case]]


@pytest.mark.slow
@pytest.mark.parametrize("variant", FAST_VARIANTS)
def test_the_other_cases_write_the_same_bytes_on_the_fast_variants(plain, variant):
    cases = tuple(c for c in CASES if c not in FAST_CASES)
    expected = plain(tuple(CASES))
    got = run_cases(cases, VARIANTS[variant])
    assert got == {c: expected[c] for c in cases}, [case for case in cases if got[case] != expected[case]]


def test_the_kmeans_assignment_is_the_nearest_centroid_and_the_first_on_a_tie():
    import torch

    from sog.codec.quantize import _assign
    from sog.stable import snap

    gen = torch.Generator().manual_seed(0)
    centroids = torch.randn(64, 45, generator=gen)
    x = torch.randn(3000, 45, generator=gen) * 0.3
    x[:1000] = (centroids[torch.arange(1000) % 32] + centroids[32 + torch.arange(1000) % 32]) / 2  # midpoints
    exact = ((x.double()[:, None, :] - centroids.double()[None]) ** 2).sum(-1)
    got = _assign(x, centroids, chunk=512)
    best = exact.min(1, keepdim=True).values
    assert bool(torch.all(exact.gather(1, got[:, None]) <= best * (1 + 1e-12)))   # a nearest one
    first = (exact <= best * (1 + 1e-12)).int().argmax(1)
    tie = (exact <= best * (1 + 1e-9)).sum(1) > 1
    assert bool(torch.all(got[tie] == first[tie]))                                # the lowest index of a tie
    assert float(snap(1 / 3)) == float(snap(1 / 3 + 2 ** -50)) != 1 / 3          # 20 bits: a last bit gone
