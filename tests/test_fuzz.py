"""Every mutated input of every format sog reads ends in a `SogError` or a valid `Splats`, within a time
and memory bound: no other exception, no hang, no memory blow-up (tests/fuzz_corpus.py makes the seeds
and the mutations; tests/fuzz_readers.py prints the counts of a long run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from fuzz_corpus import FORMATS, fuzz, make_seeds, run_case


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("fuzz_seeds"))


def test_every_seed_is_a_valid_file_of_its_format(seeds):
    assert set(seeds) == set(FORMATS)
    for fmt, path in seeds.items():
        outcome = run_case(path)
        assert outcome.kind == "valid", (fmt, outcome)


def test_quick_fuzz_every_case_ends_in_sog_error_or_valid_splats(seeds, tmp_path):
    results = fuzz(seeds, tmp_path, cases=12, seed=20, seconds=10.0, memory_mb=512.0)
    for fmt, counts in results.items():
        assert counts["cases"] == 12
        assert counts["escape"] == counts["hang"] == counts["memory"] == 0, (fmt, counts["failures"])
    # the mutations reach the readers' checks, not only the magic bytes: both outcomes occur
    assert sum(c["error"] for c in results.values()) > 0 and sum(c["valid"] for c in results.values()) > 0


@pytest.mark.slow
def test_long_fuzz_thousands_of_cases_per_format_under_a_memory_cap(tmp_path):
    out = tmp_path / "fuzz.json"
    subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz_readers.py"), "--cases", "2000", "--seed", "0",
                    "--json", str(out), "--memory-gb", "4"], check=True, timeout=3600)
    results = json.loads(out.read_text())["formats"]
    for fmt in FORMATS:
        counts = results[fmt]
        assert counts["cases"] == 2000
        assert counts["escape"] == counts["hang"] == counts["memory"] == 0, (fmt, counts["failures"])
