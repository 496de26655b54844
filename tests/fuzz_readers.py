"""Fuzz sog's readers: seeded mutations of a valid small file of every format, each loaded in-process under
a time bound, with the peak memory measured and the process capped (RLIMIT_AS), so a blow-up is counted,
not a crash of the machine. Prints the per-format counts and writes JSON.

    nice -n 10 python tests/fuzz_readers.py --cases 2000 --seed 0 --json fuzz.json

Columns: cases, clean errors (`SogError`), valid loads (finite `Splats`), escapes (any other exception),
hangs (over --seconds), memory (over --case-mb of RSS growth), the slowest case and the largest RSS growth.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from fuzz_corpus import FORMATS, fuzz, make_seeds  # noqa: E402  (after the thread setting; beside this file)


def _cap_memory(gigabytes: float) -> None:
    """Cap the address space at what the process uses now plus ``gigabytes``."""
    size_kb = 0
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            size_kb = int(line.split()[1])
    limit = size_kb * 1024 + int(gigabytes * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="mutations per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound per case")
    parser.add_argument("--case-mb", type=float, default=1024.0, help="RSS growth bound per case (MB)")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address-space cap above the start (GB)")
    parser.add_argument("--json", default="fuzz_readers.json")
    args = parser.parse_args()

    import sog  # noqa: F401  (torch and friends loaded before the cap is measured)

    with tempfile.TemporaryDirectory(prefix="sog_fuzz_") as tmp:
        seeds = make_seeds(Path(tmp) / "seeds")
        _cap_memory(args.memory_gb)
        t0 = time.perf_counter()

        def progress(fmt, i, outcome):
            if (i + 1) % 500 == 0:
                print(f"  {fmt}: {i + 1} cases", file=sys.stderr, flush=True)

        results = fuzz(seeds, Path(tmp) / "work", args.cases, args.seed, args.formats.split(","), args.seconds,
                       args.case_mb, progress)
        seconds = time.perf_counter() - t0
    header = f"{'format':<16}{'cases':>7}{'errors':>8}{'valid':>7}{'escapes':>9}{'hangs':>7}{'memory':>8}" \
             f"{'slowest s':>11}{'peak MB':>9}"
    print(header)
    for fmt, r in results.items():
        print(f"{fmt:<16}{r['cases']:>7}{r['error']:>8}{r['valid']:>7}{r['escape']:>9}{r['hang']:>7}{r['memory']:>8}"
              f"{r['slowest_s']:>11.3f}{r['peak_mb']:>9.1f}")
    total = {k: sum(r[k] for r in results.values()) for k in ("cases", "error", "valid", "escape", "hang", "memory")}
    print(f"{'total':<16}{total['cases']:>7}{total['error']:>8}{total['valid']:>7}{total['escape']:>9}"
          f"{total['hang']:>7}{total['memory']:>8}   ({seconds:.0f} s)")
    for fmt, r in results.items():
        for bad in r["failures"][:5]:
            print(f"  {fmt} case {bad['case']}: {bad['kind']}: {bad['message']}")
    Path(args.json).write_text(json.dumps({"cases_per_format": args.cases, "seed": args.seed, "seconds": seconds,
                                           "seconds_bound": args.seconds, "case_mb_bound": args.case_mb,
                                           "memory_cap_gb": args.memory_gb, "total": total, "formats": results},
                                          indent=1))
    print(f"wrote {args.json}")
    sys.exit(1 if total["escape"] or total["hang"] or total["memory"] else 0)


if __name__ == "__main__":
    main()
