"""Does the optimised gradient cost a constant times the function? (issue 11)

For the corpus programs with shifted/ranged indices, max/min folds and non-smooth primitives
(``eqsat_ad/bench/corpus.py``, tag list below), at growing sizes:

* the model cost of the optimised gradient / the model cost of the function (``ratio``), and
  how it grows from one size to the next (target: <= 1.5x from 100 to 1000, and from 1000 to
  10^4 where the program is O(n)); the naive gradient's ratio for comparison;
* the optimisation time, e-nodes and stop reason;
* measured NumPy time of the compiled optimised gradient and of the hand-written NumPy
  gradient, interleaved in one process, at 10^4 and 10^5 (target: within 1.5x).

Run: ``.venv/bin/python benchmarks/bench_scaling.py [--quick] [--only NAME ...]``; writes
``benchmarks/results/scaling.json`` and ``scaling.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# one BLAS/OpenMP thread, as every other benchmark's workers (eqsat_ad.bench.specs.THREAD_ENV):
# set before NumPy loads its BLAS, which reads them once (a threaded matrix-vector product on
# this 2-core VM took 22 ms instead of 0.4 ms under load)
for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_k] = "1"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import eqsat_ad as ea  # noqa: E402
from eqsat_ad.bench import corpus as C  # noqa: E402
from eqsat_ad.bench.protocol import interleaved  # noqa: E402

#: program -> the size that scales (the others stay at the program's first benchmark size)
PROGRAMS = {"fd-penalty": "n", "second-diff": "n", "conv3-signal": "n", "convk-signal": "n",
            "lse-max": "n", "softmax-max": "n", "kmeans": "N", "hinge": "N", "l1-regression": "N",
            # reductions feeding back (issue 11's O(n^2) list)
            "layernorm": "n", "chain60": "n"}
COST_SIZES = (100, 1000, 10_000, 100_000)
TIME_SIZES = (10_000, 100_000)


def sizes_at(e, key: str, s: int) -> dict:
    out = dict(e.bench_sizes[0])
    out[key] = s
    return out


def best_times(calls, budget: float = 0.3, reps: int = 15) -> list[float]:
    """Best-of-``reps`` seconds per call of each ``(fn, args)``, timed side by side
    (:func:`eqsat_ad.bench.protocol.interleaved`)."""
    return interleaved([lambda fn=fn, args=args: fn(**args) for fn, args in calls], reps, budget,
                       reduce=min)["seconds"]


def measure(name: str, key: str, quick: bool) -> dict:
    e = C.get(name)
    f, g = C.program(e), C.derivative_program(e)
    row: dict = {"program": name, "doc": e.doc, "scales": key, "costs": []}
    sizes = COST_SIZES[:3] if quick else COST_SIZES
    for s in sizes:
        sz = sizes_at(e, key, s)
        t0 = time.perf_counter()
        res = ea.optimize(g, sizes=sz, check=False)
        opt_s = time.perf_counter() - t0
        fc = ea.optimize(f, sizes=sz, check=False).cost
        row["costs"].append({"size": s, "grad": res.cost, "naive": res.cost_before, "function": fc,
                             "ratio": res.cost / fc, "naive_ratio": res.cost_before / fc,
                             "optimize_s": round(opt_s, 3), "enodes": res.report.enodes,
                             "stop": res.report.stop_reason})
        if s == 1000:
            row["program_text"] = ea.show_program(res.program)
            row["_prog"] = res.program
    cs = row["costs"]
    row["growth"] = {f"{a['size']}->{b['size']}": b["ratio"] / a["ratio"] for a, b in zip(cs, cs[1:])}
    fast = ea.compile(row.pop("_prog"))
    row["times"] = []
    for s in (TIME_SIZES[:1] if quick else TIME_SIZES):
        args = C.inputs(e, sizes_at(e, key, s))
        try:
            got = fast(**args)
        except Exception as exc:   # e.g. an n^2 intermediate refused by the memory limit
            row["times"].append({"size": s, "error": f"{type(exc).__name__}: {str(exc)[:160]}"})
            continue
        hand = e.numpy_derivative(**args)
        err = C.max_rel_error(got, hand)
        t_opt, t_hand, t_fn = best_times([(fast, args), (e.numpy_derivative, args),
                                          (e.numpy_fn, C.primal_inputs(e, args))])
        row["times"].append({"size": s, "optimised_s": t_opt, "hand_s": t_hand, "function_s": t_fn,
                             "optimised_over_hand": t_opt / t_hand, "max_rel_error": err})
    return row


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "eqsat_ad"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (" (uncommitted changes under eqsat_ad/)" if dirty else "")
    except Exception:
        return "unknown"


def to_markdown(rep: dict) -> str:
    out = ["# Gradient cost / function cost as sizes grow (issue 11)", "",
           f"Generated by `benchmarks/bench_scaling.py` at {rep['commit']} on {rep['machine']}, "
           f"{rep['date']}. Model costs in add-units (`eqsat_ad/cost`); times: best of 15, "
           "one process, optimised gradient, hand-written NumPy gradient and function interleaved "
           "rep by rep, freed memory kept in the process (`protocol.keep_freed_memory`) "
           "(the machine is shared: expect noise).", "",
           "## Model cost ratio gradient / function", "",
           "| program | size | naive ratio | optimised ratio | growth | optimise s | e-nodes | stop |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rep["rows"]:
        prev = None
        for c in r["costs"]:
            growth = "" if prev is None else f"{c['ratio'] / prev:.2f}x"
            out.append(f"| {r['program']} | {r['scales']}={c['size']} | {c['naive_ratio']:.4g} | "
                       f"{c['ratio']:.3g} | {growth} | {c['optimize_s']:.2f} | {c['enodes']} | {c['stop']} |")
            prev = c["ratio"]
    out += ["", "## NumPy time: optimised gradient vs hand-written gradient", "",
            "| program | size | optimised ms | hand-written ms | optimised / hand | function ms | max rel. error |",
            "|---|---|---|---|---|---|---|"]
    for r in rep["rows"]:
        if "error" in r:
            out.append(f"| {r['program']} | | error: {r['error'][:200]} | | | | |")
        for t in r["times"]:
            if "error" in t:
                out.append(f"| {r['program']} | {r['scales']}={t['size']} | error: {t['error']} | | | | |")
                continue
            out.append(f"| {r['program']} | {r['scales']}={t['size']} | {t['optimised_s'] * 1e3:.3g} | "
                       f"{t['hand_s'] * 1e3:.3g} | {t['optimised_over_hand']:.2f} | "
                       f"{t['function_s'] * 1e3:.3g} | {t['max_rel_error']:.1e} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes up to 10^4, times at 10^4 only")
    ap.add_argument("--only", nargs="*", default=None, help="these programs only")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling"))
    a = ap.parse_args(argv)
    from eqsat_ad.bench.protocol import keep_freed_memory
    from eqsat_ad.bench.specs import THREAD_ENV
    assert all(os.environ.get(k) == THREAD_ENV[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"))
    keep_freed_memory()              # no page faults per call that depend on what ran before
    names = [n for n in PROGRAMS if a.only is None or n in a.only]
    rows = []
    for n in names:
        print(f"-- {n}", file=sys.stderr, flush=True)
        try:
            rows.append(measure(n, PROGRAMS[n], a.quick))
        except Exception as exc:      # one program's failure is reported, the others still run
            rows.append({"program": n, "scales": PROGRAMS[n], "error": f"{type(exc).__name__}: {exc}",
                         "costs": [], "times": []})
    rep = {"commit": _commit(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
           "python": platform.python_version(), "numpy": np.__version__,
           "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "quick": a.quick, "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(rep, indent=1))
    Path(a.out + ".md").write_text(to_markdown(rep))
    print(to_markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
