"""The rule checker's mutation score over every mutant of every shipped rule (on demand; the
test suite runs a fixed sample: tests/test_rule_mutation.py).

    python benchmarks/mutation_score.py [--jobs 2] [--deep-seeds 6] [--deep-examples 600]
                                        [--ops shift,extent] [--json OUT]

1. every mutant of every shipped rule (``eqsat_ad.rulecheck.mutate``: dropped side conditions,
   indices shifted by one, extents off by one, swapped operands, binders, constants,
   variables); the ones egglog refuses are set aside (invalid);
2. the checker at its default effort (100 instances, seed 0) on each -- a mutant it reports
   unsound is *killed*;
3. every survivor searched much harder (``--deep-seeds`` more seeds of ``--deep-examples``
   instances each): a counterexample there proves it unsound (the default run *missed* it);
   a survivor of that search is equivalent if ``mutate.EQUIVALENT`` lists it with its
   argument, else it is printed as *unexplained* (to review: equivalent, or a blind spot);
   a listed mutant the deep search kills is printed as a *wrong equivalence claim*.

The score: killed / (valid mutants that are not equivalent); unexplained survivors count as
unsound (missed), so the score is a lower bound.  Exit status 1 when a listed equivalence is
wrong.
"""
from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eqsat_ad.rulecheck.mutate import (EQUIVALENT, Outcome, all_mutants, check_mutant,  # noqa: E402
                                       loadable, score)


def _default(m):
    return check_mutant(m)


def _deep(args):
    m, seeds, examples = args
    for s in range(1, seeds + 1):
        o = check_mutant(m, examples=examples, seed=s)
        if o.killed:
            return o, s
    return o, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--deep-seeds", type=int, default=6)
    ap.add_argument("--deep-examples", type=int, default=600)
    ap.add_argument("--ops", help="only these operators (comma-separated)")
    ap.add_argument("--json", metavar="OUT", help="write the score as JSON to OUT ('-': stdout)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    ms = all_mutants()
    if a.ops:
        ms = [m for m in ms if m.op in a.ops.split(",")]
    refused = loadable(ms)
    outcomes = [Outcome(m, "refused", refused[m.id]) for m in ms if m.id in refused]
    todo = [m for m in ms if m.id not in refused]
    ctx = multiprocessing.get_context("spawn")     # (fork after egglog/BLAS threads can hang)
    with ProcessPoolExecutor(a.jobs, mp_context=ctx) as ex:
        outcomes += list(ex.map(_default, todo, chunksize=4))
    t1 = time.perf_counter()
    sc = score(outcomes)
    survivors = [o for o in sc.valid if not o.killed and o.status != "no equation"]
    with ProcessPoolExecutor(a.jobs, mp_context=ctx) as ex:
        deep = list(ex.map(_deep, [(o.mutant, a.deep_seeds, a.deep_examples) for o in survivors]))
    t2 = time.perf_counter()
    missed, unexplained, wrong, equivalent = [], [], [], []
    for o, (d, seed) in zip(survivors, deep):
        listed = o.mutant.id in EQUIVALENT
        if seed is not None:
            (wrong if listed else missed).append((o, d, seed))
        elif listed:
            equivalent.append(o)
        else:
            unexplained.append(o)

    print(sc.summary())
    print(f"default effort: {t1 - t0:.0f} s; deep search of {len(survivors)} survivors "
          f"({a.deep_seeds} seeds x {a.deep_examples} instances): {t2 - t1:.0f} s")
    print(f"survivors: {len(missed)} unsound (killed by the deep search: missed at default effort), "
          f"{len(equivalent)} listed equivalent, {len(unexplained)} unexplained (counted unsound)")
    by_op = collections.defaultdict(lambda: [0, 0])
    for o in sc.unsound:
        by_op[o.mutant.op][0] += o.killed
        by_op[o.mutant.op][1] += 1
    print("by operator: " + ", ".join(f"{op} {k}/{n}" for op, (k, n) in sorted(by_op.items())))
    for title, rows in (("MISSED (unsound, not killed at default effort)", missed),
                        ("WRONG EQUIVALENCE CLAIM (killed by the deep search)", wrong)):
        if rows:
            print(f"\n{title}:")
            for o, d, seed in rows:
                print(f"  {o.mutant.id}   [seed {seed}: {d.instances} instances]")
    if unexplained:
        print("\nUNEXPLAINED SURVIVORS (review: add to mutate.EQUIVALENT with the argument, or fix the checker):")
        for o in unexplained:
            print(f"  {o.mutant.id}   [{o.status}{': ' + o.reason[:80] if o.reason else ''}]")
    inv = [o for o in outcomes if o.invalid]
    if inv:
        print(f"\ninvalid ({len(inv)}): " + "; ".join(f"{o.mutant.id} [{o.status}]" for o in inv[:12])
              + (" ..." if len(inv) > 12 else ""))
    if a.json:                          # '-': stdout
        (sys.stdout.write if a.json == "-" else Path(a.json).write_text)(json.dumps({
            "mutants": len(outcomes), "invalid": len(inv), "unsound": len(sc.unsound), "killed": len(sc.killed),
            "score": sc.score, "missed": [o.mutant.id for o, _, _ in missed],
            "unexplained": [o.mutant.id for o in unexplained], "wrong_equivalence": [o.mutant.id for o, _, _ in wrong],
            "seconds": time.perf_counter() - t0}, indent=1))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
