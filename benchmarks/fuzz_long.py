"""The long, on-demand fuzzing run (not part of the test suite).

    python benchmarks/fuzz_long.py --minutes 30 [--seed S] [--rules-examples N]

1. rule soundness: every shipped rule on ``--rules-examples`` random instances (direct mode),
   plus the e-graph mode;
2. differential fuzzing of the pipeline (eqsat_ad.fuzz) for the rest of the time.

Prints how many rule instances and programs were tried, and every failure (with the seed to
replay it: ``eqsat_ad.fuzz.run_case(seed)``).  Exit status 1 when something failed.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eqsat_ad.fuzz import fuzz  # noqa: E402
from eqsat_ad.rulecheck import check_rules, check_rules_egraph  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument("--rules-examples", type=int, default=500)
    ap.add_argument("--no-rules", action="store_true", help="only the pipeline fuzzer")
    a = ap.parse_args(argv)
    t_end = time.perf_counter() + a.minutes * 60
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    print(f"fuzz_long: seed {a.seed}, {a.minutes} minutes, commit {commit}", flush=True)
    bad = False
    if not a.no_rules:
        rep = check_rules(examples=a.rules_examples, seed=a.seed)
        print(rep.summary(), flush=True)
        erep = check_rules_egraph(examples=max(4, a.rules_examples // 50), seed=a.seed)
        print(erep.summary(), flush=True)
        bad |= not rep.ok or not erep.ok
    left = max(0.0, t_end - time.perf_counter())
    frep = fuzz(seconds=left, seed=a.seed * 10_000)
    print(frep.summary(), flush=True)
    bad |= bool(frep.failures)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
