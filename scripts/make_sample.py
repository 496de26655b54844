"""Make the small sample scene that ships in data/ (`sog.datasets.synthetic_scene`: procedural, SH degree 3).

    python scripts/make_sample.py [--n 10000] [--seed 0] [--out data/sample.ply]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sog.datasets import synthetic_scene
from sog.io import write_ply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data" / "sample.ply"))
    args = parser.parse_args()
    write_ply(synthetic_scene(args.n, args.seed), args.out, overwrite=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
