#!/usr/bin/env python
"""Run the eqsat-ad benchmarks (same as ``eqsat-ad bench``); see docs/benchmarks.md.

    python benchmarks/run_bench.py            # full run -> benchmarks/results/, docs/benchmarks.md
    python benchmarks/run_bench.py --quick    # reduced run, prints the tables
    python benchmarks/run_bench.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eqsat_ad.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
