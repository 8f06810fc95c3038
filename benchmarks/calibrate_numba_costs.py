"""Calibrate the cost table of the fused Numba backend (``eqsat_ad/cost/opcosts-numba.json``).

The fused backend computes every node of a program inside its loop nest, one scalar
operation per element and no call of its own, so the cost model's formula ``op x W +
overhead x calls`` (``eqsat_ad/cost/model.py``) describes it with

* ``opcost``: the *marginal* time of one more operation inside a fused loop, per element, in
  units of one float add (= 1): the time of a kernel computing ``k`` independent terms
  ``op(x_i * a_j)`` minus that of the same kernel without ``op``, over ``k n``.  Loads
  (``GetAxis``: a read along a loop index), stores (``Build``), a bounds-checked gather
  (``Get``), a branch (``If``), a real ``sum`` (``Sum``), an ``ifold`` iteration (``Loop``)
  are timed the same way;
* no per-operation overhead (``overhead`` = 0: an operation is no call), and
  ``call_overhead["Entry"]``: the fixed cost of one call of a compiled program (the input
  checks of the wrapper and the call into the kernel);
* the NumPy backend's pseudo-constructors that are plain loops here (``Dot``, ``Gemv``,
  ``Gemm``, ``EinsumLoop``: a multiply and an add per element; ``Prod``/``Max``: a
  sequential multiply / compare; ``DiagFill``: a branch and a store) priced from those.

Single-threaded (``NUMBA_NUM_THREADS=1``).  Every figure is the difference of two sizes
(the fixed cost of a call cancels): arithmetic on arrays that fit in the L2 cache (4096 and
16384 elements -- on larger ones a loop waits for memory and extra arithmetic looks free),
loads and stores on ``n/4`` and ``n = 2**20`` elements (the benchmark's sizes); the median
of several runs (the machine is shared).

    python benchmarks/calibrate_numba_costs.py                 # writes the JSON
    python benchmarks/calibrate_numba_costs.py --runs 1 --out /tmp/opcosts-numba.json
    python benchmarks/calibrate_numba_costs.py --only Sin,Cos   # just these, against Log's entry
"""
from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from calibrate_costs import _cpu, combine, timeit

import eqsat_ad as ea
from eqsat_ad.backend import numba_backend as nb

OUT = ROOT / "eqsat_ad" / "cost" / "opcosts-numba.json"
K = 8                                  # independent terms per kernel
UNARY = {"Exp": "exp", "Log": "log", "Sin": "sin", "Cos": "cos", "Tan": "tan", "Sqrt": "sqrt",
         "Tanh": "tanh", "Log1p": "log1p", "Abs": "abs", "Sign": "sign", "Neg": "neg"}
BINARY = {"Div": "/", "Pow": "pow", "Maximum": "max", "Minimum": "min", "Sub": "-"}
COMPARE = {"Lt": "<", "Le": "<=", "Eq": "="}


def _prog(body: str, params: str = "(x (vec n)) (y (vec n))") -> ea.Program:
    return ea.parse(f"(fun ({params}) {body})")


def _terms(make, k: int = K) -> str:
    """``(+ t_1 (+ t_2 ...))`` of ``k`` terms ``make(a_j)`` (distinct constants: no sharing)."""
    out = make(1.0)
    for j in range(1, k):
        out = f"(+ {make(1.0 + j / 256)} {out})"
    return out


def _build(make, k: int = K) -> str:
    return f"(build n (lambda (i) {_terms(make, k)}))"


#: arithmetic is timed on arrays that fit in the L2 cache (else a loop waits for memory and
#: extra arithmetic looks free); loads and stores on ``n`` elements (the benchmark's sizes)
IN_CACHE = (4096, 16384)


class _Timer:
    def __init__(self, n: int, repeat: int):
        rng = np.random.default_rng(0)
        self.n, self.repeat = n, repeat
        # positive, away from the poles: every function stays finite (no slow special values)
        self.x = rng.uniform(0.2, 0.9, n)
        self.y = rng.uniform(0.2, 0.9, n)

    def per_element(self, body: str, memory: bool = False) -> float:
        """Seconds per element of the kernel of ``body``: the difference of two sizes (the
        fixed cost of a call cancels)."""
        fn = nb.compile(_prog(body))
        assert fn.fallback is None, fn.fallback
        small, big = (self.n // 4, self.n) if memory else IN_CACHE
        xs, ys, xb, yb = self.x[:small], self.y[:small], self.x[:big], self.y[:big]
        ts = timeit(lambda: fn(xs, ys), self.repeat)
        tb = timeit(lambda: fn(xb, yb), self.repeat)
        return max(tb - ts, 0.0) / (big - small)


def calibrate(n: int = 1 << 20, repeat: int = 7) -> dict:
    t = _Timer(n, repeat)
    xi = "(get x i)"
    base = t.per_element(_build(lambda a: f"(* {xi} {a})"))             # K muls + K-1 adds
    # one add: 64 more adds in a kernel of 64 terms (a large difference: adds are cheap here)
    wide = t.per_element(_build(lambda a: f"(* {xi} {a})", 64))
    wide2 = t.per_element(_build(lambda a: f"(+ (* {xi} {a}) {a})", 64))
    unit = max((wide2 - wide) / 64, 1e-12)
    cost: dict[str, float] = {"Add": 1.0, "Mul": 1.0}

    def marginal(body: str, extra_ops: float = 0.0) -> float:
        """Per operation, in adds: (time - base) / K, less ``extra_ops`` adds per term."""
        return max((t.per_element(body) - base) / K / unit - extra_ops, 0.05)

    for ctor, op in UNARY.items():
        cost[ctor] = round(marginal(_build(lambda a, op=op: f"({op} (* {xi} {a}))")), 3)
    for ctor, op in BINARY.items():
        cost[ctor] = round(marginal(_build(lambda a, op=op: f"({op} (* {xi} {a}) (get y i))")), 3)
    for ctor, op in COMPARE.items():
        # a comparison feeding a branch: (if (op u y) u y)
        cost[ctor] = round(marginal(_build(lambda a, op=op: f"(let ((u (* {xi} {a}))) (if ({op} u (get y i)) u 0.5))")) / 2, 3)
    cost["If"] = cost["Lt"]
    # memory: one more read along the loop index; a store (the build of the baseline);
    # a bounds-checked read at a computed index
    # (on n elements: what a load or a store costs at the benchmark's sizes)
    # a copy loop is a load and a store: half each
    one = t.per_element(f"(build n (lambda (i) {xi}))", memory=True)
    cost["GetAxis"] = cost["Build"] = round(max(one / unit / 2, 0.05), 3)
    cost["Fill"] = round(t.per_element("(build n (lambda (i) 1.5))", memory=True) / unit, 3)
    gather = t.per_element("(build n (lambda (i) (get x (- (- n 1) i))))", memory=True)
    cost["Get"] = round(max((gather - one) / unit + cost["GetAxis"], 0.05), 3)
    # a real sum (a reassociated, vectorised accumulator), a sequential ifold iteration, a product fold
    cost["Sum"] = round(max(t.per_element(f"(sum n (lambda (i) {xi}))", memory=True) / unit
                            - cost["GetAxis"], 0.05), 3)
    loop = t.per_element(f"(ifold (lambda (acc i) (+ (* acc 0.5) {xi})) 0.0 n)")
    cost["Loop"] = round(max(loop / unit - cost["GetAxis"] - 2.0, 0.05), 3)
    cost["Prod"] = round(max(t.per_element(f"(ifold (lambda (acc i) (* acc {xi})) 1.0 n)") / unit
                             - cost["GetAxis"], 0.05), 3)
    cost["Max"] = round(max(t.per_element(f"(ifold (lambda (acc i) (if (> {xi} acc) {xi} acc)) 0.0 n)")
                            / unit - cost["GetAxis"], 0.05), 3)
    cost["IFold"] = cost["Loop"]
    cost["ToReal"] = round(marginal(_build(lambda a: f"(* (real i) {a})")), 3)
    # the NumPy backend's BLAS / einsum / diagonal shapes are plain fused loops here
    for c in ("Dot", "Gemv", "Gemm", "EinsumLoop"):
        cost[c] = round(cost["Mul"] + cost["Sum"], 3)
    cost["DiagFill"] = round(cost["If"] + cost["Build"], 3)
    cost["DiagSet"] = round(cost["Build"], 3)
    cost["Copy"] = round(cost["GetAxis"] + cost["Build"], 3)
    # compile-time and free nodes; the combination of a fold with its initial value
    for c in ("Let", "Pair", "Fst", "Snd", "Len", "Extreme", "NdCall"):
        cost[c] = 0.0
    cost["And"] = cost["Or"] = cost["Not"] = cost["If"]
    cost["Pow"] = max(cost["Pow"], cost["Exp"])          # (a non-integer exponent: the C library)
    # the fixed cost of one call: a program with two vector inputs and a trivial body
    call = nb.compile(_prog("(get x 0)"))
    x2, y2 = t.x[:4].copy(), t.y[:4].copy()
    t_entry = timeit(lambda: call(x2, y2), repeat)
    import numba
    return {
        "note": ("op cost per element inside a fused loop, float add = 1 "
                 "(benchmarks/calibrate_numba_costs.py); overhead 0: an operation is no call; "
                 "call_overhead Entry: one call of a compiled program"),
        "machine": f"{platform.node()} {platform.machine()} {_cpu()} ({platform.system()} {platform.release()})",
        "python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "n": n, "threads": 1,
        "unit_seconds": unit,
        "entry_seconds": t_entry,
        "opcost": dict(sorted(cost.items())),
        "overhead": 0.0,
        "scalar_overhead": 0.0,
        "call_overhead": {"Entry": round(t_entry / unit, 1)},
    }


def recalibrate(ops: list[str], anchor: str = "Log", runs: int = 3, repeat: int = 7,
                path: Path = OUT) -> dict:
    """Re-measure the unary operations ``ops`` only, against ``anchor`` (an entry of the table
    that did not change): each one's marginal time over the anchor's, timed side by side in
    each of ``runs`` runs (median), times the anchor's entry.  For a change to one function
    (``sin`` made vectorisable) without a full calibration (whose unit, one add, moves with
    the machine's load)."""
    table = json.loads(Path(path).read_text())
    t = _Timer(IN_CACHE[-1], repeat)
    xi = "(get x i)"

    def body(op: str) -> str:
        return _build(lambda a, op=op: f"({op} (* {xi} {a}))")
    ratios: dict[str, list[float]] = {c: [] for c in ops}
    for _ in range(max(1, runs)):
        base = t.per_element(_build(lambda a: f"(* {xi} {a})"))
        ref = t.per_element(body(UNARY[anchor])) - base
        times = {c: t.per_element(body(UNARY[c])) - base for c in ops}
        if ref > 0:                   # (a run disturbed by another process can time 0 or less)
            for c in ops:
                ratios[c].append(times[c] / ref)
    old = {c: table["opcost"][c] for c in ops}
    if not ratios[ops[0]]:
        raise RuntimeError(f"no run timed {anchor} above the baseline (a busy machine?)")
    for c in ops:
        table["opcost"][c] = round(float(np.median(ratios[c])) * table["opcost"][anchor], 3)
    table["note"] += (f"; {datetime.datetime.now().isoformat(timespec='minutes')}: "
                      f"{', '.join(ops)} re-measured against {anchor} (median of {runs} side-by-side runs "
                      f"x {anchor}'s entry; --only)")
    return {"table": table, "old": old, "ratios": ratios}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1 << 20, help="elements for the memory figures")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3, help="median of this many calibrations")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--only", help="comma-separated unary entries (e.g. Sin,Cos): re-measure just these "
                                   "against --anchor and update the table at --out in place")
    ap.add_argument("--anchor", default="Log", help="the unchanged entry --only measures against")
    args = ap.parse_args(argv)
    if args.only:
        ops = args.only.split(",")
        bad = [c for c in ops + [args.anchor] if c not in UNARY]
        if bad:
            ap.error(f"not a unary entry: {', '.join(bad)} (one of {', '.join(UNARY)})")
        r = recalibrate(ops, args.anchor, args.runs, args.repeat, Path(args.out))
        Path(args.out).write_text(json.dumps(r["table"], indent=1) + "\n")
        for c in ops:
            print(f"  {c:<6} {r['old'][c]:9.3f} -> {r['table']['opcost'][c]:9.3f}  "
                  f"(x {args.anchor}: {', '.join(f'{v:.3f}' for v in r['ratios'][c])})")
        print(f"wrote {args.out}")
        return 0
    res = combine([calibrate(args.n, args.repeat) for _ in range(max(1, args.runs))])
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"float add in a fused loop: {res['unit_seconds'] * 1e9:.3f} ns/element (= 1); "
          f"one call: {res['call_overhead']['Entry']} ({res['entry_seconds'] * 1e6:.2f} us)")
    w = max(len(k) for k in res["opcost"])
    for k, v in res["opcost"].items():
        print(f"  {k:<{w}}  {v:8.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
