"""Guarded shifted reads in a sequential loop, before/after (issue 12, item 2).

The program: a fold over t whose body builds the next state from the previous one read one
row up, guarded by ``i = 0`` (``(if (= i 0) x[t] (x[t] * (y[i] + y[i-1])))``), summed; its
gradient w.r.t. ``x`` is optimised and compiled at each ``n``.  Before the fix the guarded
read took the backend's slow path every step (an element gather with clipped indices and a
mask check broadcast against the guards); after it, the read is a slice with its edge row
clamped and the guards are tested at the out-of-range position only.

Issue 11: the optimised gradients of the corpus' stencil programs (fd-penalty, second-diff,
conv3-signal), whose guards are ranges of the build index (``(<= 1 i)``, ``(< i (- n 1))``), as
a ratio to the hand-written NumPy gradient at n = 1e4 and 1e5 (timed side by side, best of 15
batches: the machine is shared); before range guards each guarded term was an index array, a
mask, a padded copy and a ``where``.

Both code versions are timed in one run, side by side: ``--before DIR`` is a snapshot of the
old package (``git archive <commit> | tar -x -C DIR``); the current tree is "after".

    python benchmarks/bench_guarded_shift.py --before /tmp/old          # JSON + md in results/
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

ROOT = Path(__file__).resolve().parents[1]
SMOOTH = ("(fun ((x (vec n))) (sum n (lambda (k) (get (ifold (lambda (y t) (build n (lambda (i)"
          " (if (= i 0) (get x t) (* (get x t) (+ (get y i) (get y (- i 1)))))))) x n) k))))")
SIZES = (100, 200, 400)
STENCILS = ("fd-penalty", "second-diff", "conv3-signal")
STENCIL_SIZES = (10_000, 100_000)


def stencil_worker() -> dict:
    """Optimised gradient / hand-written, for each corpus stencil program and size."""
    import numpy as np
    import eqsat_ad as ea
    from eqsat_ad.bench import corpus as C
    from eqsat_ad.bench.protocol import interleaved
    out = {}
    for name in STENCILS:
        e = C.get(name)
        g = C.derivative_program(e)
        for n in STENCIL_SIZES:
            sizes = {"n": n}
            fn = ea.compile(ea.optimize(g, sizes=sizes, check=False).program)
            args = C.inputs(e, sizes)
            np.testing.assert_allclose(fn(**args), e.numpy_derivative(**args), rtol=1e-8, atol=1e-10)
            r = interleaved([lambda: e.numpy_derivative(**args), lambda: fn(**args)], repeats=15, reduce=min)
            out[f"{name}/{n}"] = {"ratio_to_hand": r["ratios"][1], "seconds": r["seconds"][1],
                                  "hand_seconds": r["seconds"][0], "where": "_where(" in fn.source}
    return out


def worker(sizes, repeats: int) -> dict:
    """Time the compiled optimised gradient at each size with the eqsat_ad on sys.path."""
    import numpy as np
    import eqsat_ad as ea
    g = ea.grad(ea.parse(SMOOTH), "x")
    out = {}
    for n in sizes:
        fn = ea.compile(ea.optimize(g, sizes={"n": n}, check=False).program)
        x = np.random.default_rng(0).uniform(0.2, 0.9, n)
        fn(x=x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x=x)
            times.append(time.perf_counter() - t0)
        out[str(n)] = {"seconds": statistics.median(times),
                       "slow_path_gather": "_gather(" in fn.source or "_clip_idx(" in fn.source}
    return out


def run_version(code_dir: Path, sizes, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code_dir))
    cmd = [sys.executable, __file__, "--worker", "--sizes", *map(str, sizes), "--repeats", str(repeats)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="snapshot of the old package to time side by side")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "guarded_shift")
    a = ap.parse_args()
    if a.worker:
        res = worker(a.sizes, a.repeats)
        res["stencils"] = stencil_worker()
        print(json.dumps(res))
        return
    versions = {"after": ROOT}
    if a.before:
        versions = {"before": a.before, "after": ROOT}
    results = {name: run_version(d, a.sizes, a.repeats) for name, d in versions.items()}
    doc = {"program": SMOOTH, "what": "compiled optimised gradient w.r.t. x, median seconds a call",
           "sizes": a.sizes, "repeats": a.repeats, "results": results,
           "load_average": os.getloadavg()}
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    cols = list(results)
    lines = ["| n | " + " | ".join(f"{c} s" for c in cols) + (" | before / after |" if len(cols) == 2 else " |"),
             "|---:|" + "---:|" * (len(cols) + (len(cols) == 2))]
    stencil_lines = ["| gradient | n | " + " | ".join(f"{c}: ÷ hand" for c in cols) + " |",
                     "|---|---:|" + "---:|" * len(cols)]
    for key in results[cols[-1]]["stencils"]:
        name, n = key.split("/")
        stencil_lines.append(f"| {name} | {n} | " + " | ".join(
            f"{results[c]['stencils'][key]['ratio_to_hand']:.2f}" for c in cols) + " |")
    for n in map(str, a.sizes):
        row = [f"{results[c][n]['seconds']:.4f}" for c in cols]
        if len(cols) == 2:
            row.append(f"{results['before'][n]['seconds'] / results['after'][n]['seconds']:.2f}")
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    for c in cols:
        s = [results[c][str(n)]["seconds"] for n in a.sizes]
        if len(s) >= 2:
            import math
            k = math.log(s[-1] / s[0]) / math.log(a.sizes[-1] / a.sizes[0])
            lines.append(f"\n{c}: time ~ n^{k:.2f} from n = {a.sizes[0]} to {a.sizes[-1]}")
    lines.append(f"\nload average {doc['load_average'][0]:.1f} (shared machine: +-20 % noise)")
    md = ("# Guarded shifted read in a sequential loop (issue 12)\n\n" + "\n".join(lines) + "\n"
          "\n# Range-guarded stencil gradients (issue 11): optimised gradient ÷ hand-written NumPy "
          "(best of 15 batches, side by side)\n\n" + "\n".join(stencil_lines) + "\n")
    a.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
