"""The long, on-demand fuzzing run (not part of the test suite).

    python benchmarks/fuzz_long.py --minutes 50 --programs 5000 --jobs 2 [--seed S]

1. rule soundness: every shipped rule on ``--rules-examples`` random instances (direct mode),
   plus the e-graph mode (``--no-rules`` skips it);
2. the NumPy backend against the reference interpreter on random programs that stress it
   (pair accumulators, nested folds, guarded gets, ...; ``eqsat_ad.fuzz.fuzz_backend``) for
   ``--backend-minutes``;
3. the pipeline matrix for the rest of the time, or until ``--programs`` programs ran: each
   random program's gradient or JVP through ``ea.optimize`` with every schedule
   (``--schedules``, default ``default,all``; ``random`` adds random phases and limits) and
   every extractor (``--extractors``), each result run by the interpreter and the backend and
   compared with the interpreter on the unoptimised derivative (``eqsat_ad.fuzz.matrix_case``).

Prints the programs, the checks by (schedule, extractor, executor), the mismatches, and every
failure with the call that replays it.  Exit status 1 when something failed.
"""
from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eqsat_ad.fuzz import (BackendReport, MatrixReport, extractors, fuzz_backend,  # noqa: E402
                           matrix_case)
from eqsat_ad.rulecheck import check_rules, check_rules_egraph  # noqa: E402

BACKEND_CHUNK = 200       # backend programs per task


def _backend_chunk(seed: int) -> BackendReport:
    return fuzz_backend(cases=BACKEND_CHUNK, seed=seed)


def _pool_run(jobs: int, task, seeds, until: float, limit: int | None, on_result) -> None:
    """Run ``task(seed)`` for successive seeds on ``jobs`` processes until the time
    ``until`` or ``limit`` results; a few tasks in flight at a time (the seeds are endless)."""
    done = 0
    ctx = multiprocessing.get_context("spawn")     # (fork after egglog/BLAS threads can hang)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        running = set()
        while True:
            while len(running) < 2 * jobs and time.time() < until and (
                    limit is None or done + len(running) < limit):
                running.add(pool.submit(task, next(seeds)))
            if not running:
                return
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                on_result(f.result())
                done += 1


def _seeds(start: int, step: int = 1):
    k = start
    while True:
        yield k
        k += step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="the whole run (default 10)")
    ap.add_argument("--programs", type=int, default=None, help="stop the matrix after this many programs")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument("--rules-examples", type=int, default=500)
    ap.add_argument("--no-rules", action="store_true", help="skip the rule soundness check")
    ap.add_argument("--backend-minutes", type=float, default=None,
                    help="backend vs interpreter (default: a tenth of the run)")
    ap.add_argument("--schedules", default="default,all")
    ap.add_argument("--extractors", default=",".join(extractors()))
    ap.add_argument("--depth", type=int, default=3, help="nesting budget of the random programs")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    a = ap.parse_args(argv)
    t_start = time.time()
    t_end = t_start + a.minutes * 60
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip() or "? (not a git checkout)"
    except OSError:
        commit = "?"
    schedules = tuple(s for s in a.schedules.split(",") if s)
    exs = tuple(e for e in a.extractors.split(",") if e)
    print(f"fuzz_long: seed {a.seed}, {a.minutes} minutes, {a.jobs} jobs, commit {commit}, "
          f"schedules {schedules}, extractors {exs}", flush=True)
    bad = False
    if not a.no_rules:
        rep = check_rules(examples=a.rules_examples, seed=a.seed)
        print(rep.summary(), flush=True)
        erep = check_rules_egraph(examples=max(4, a.rules_examples // 50), seed=a.seed)
        print(erep.summary(), flush=True)
        bad |= not rep.ok or not erep.ok

    # the backend against the interpreter
    b_minutes = a.backend_minutes if a.backend_minutes is not None else a.minutes / 10
    brep = BackendReport()
    t0 = time.time()
    _pool_run(a.jobs, _backend_chunk, _seeds(a.seed * 1_000_000, BACKEND_CHUNK),
              min(t_end, t0 + b_minutes * 60), None, brep.merge)
    brep.seconds = time.time() - t0
    print(brep.summary(), flush=True)
    bad |= bool(brep.failures)

    # the pipeline matrix
    mrep = MatrixReport()
    t0 = time.time()

    def on_result(r):
        mrep.add(r)
        if r.problems:
            print(f"  problem in case seed={r.seed}: {r.problems[0].splitlines()[0]}", flush=True)
        if mrep.programs % 100 == 0:
            print(f"  ... {mrep.programs} programs, {sum(mrep.checks.values())} checks, "
                  f"{sum(mrep.mismatches.values())} mismatches, {(time.time() - t0) / 60:.1f} min",
                  flush=True)

    _pool_run(a.jobs, _MatrixTask(schedules, exs, a.depth), _seeds(a.seed * 10_000), t_end,
              a.programs, on_result)
    mrep.seconds = time.time() - t0
    print(mrep.summary(), flush=True)
    bad |= bool(mrep.failures)
    print(f"fuzz_long: done in {(time.time() - t_start) / 60:.1f} min", flush=True)
    return 1 if bad else 0


class _MatrixTask:
    """``matrix_case`` with fixed options (a picklable callable for the worker processes)."""

    def __init__(self, schedules, exs, depth):
        self.schedules, self.exs, self.depth = schedules, exs, depth

    def __call__(self, seed: int):
        return matrix_case(seed, self.schedules, self.exs, self.depth)


if __name__ == "__main__":
    sys.exit(main())
