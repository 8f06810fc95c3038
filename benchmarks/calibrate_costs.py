"""Calibrate the cost model's operation costs by timing NumPy (single-threaded).

For each operation the NumPy backend emits (``eqsat_ad/backend/numpy_backend.py``) this
times the operation per element at a large n, normalised to a float add = 1, plus

* ``overhead``: the fixed cost of issuing one NumPy operation (a ufunc on a tiny array);
* ``Loop``: one iteration of a sequential Python ``for`` loop (a non-additive ``ifold``);
* ``scalar_overhead``: one operation on scalars (Python floats and NumPy scalars: what a loop
  body over scalars does);
* the operations of :mod:`eqsat_ad.cost.semantics` (``Prod``, ``Max`` reductions, ``Dot``,
  ``Gemv``, ``Gemm`` and ``EinsumLoop`` contractions, ``Extreme``) per element, and the fixed
  costs that differ from one plain call (``call_overhead``: an unplanned ``einsum`` call, the
  path planning of ``einsum(..., optimize=True)``, ``fold_extreme``);

and writes ``eqsat_ad/cost/opcosts.json`` (small; committed; read by ``default_cost_model``).

    python benchmarks/calibrate_costs.py            # n = 2**18, writes the JSON
    python benchmarks/calibrate_costs.py --n 1000000 --out /tmp/opcosts.json --quick
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "eqsat_ad" / "cost" / "opcosts.json"


def timeit(fn, repeat: int = 7, min_time: float = 0.02) -> float:
    """Median seconds per call (each sample runs ``fn`` enough times to last min_time)."""
    fn()
    k = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or k >= 1 << 20:
            break
        k *= 2
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        samples.append((time.perf_counter() - t0) / k)
    return statistics.median(samples)


def per_element(fn_big, fn_small, n_big: int, n_small: int, repeat: int) -> float:
    """Seconds per element with the fixed per-call part removed (two sizes)."""
    tb = timeit(fn_big, repeat)
    ts = timeit(fn_small, repeat)
    return max((tb - ts) / (n_big - n_small), 0.0)


#: the per-element costs are measured again on arrays of this many elements (64 KiB: they fit
#: in the L2 cache), where an add or a where is cheaper per element than at ``n``
IN_CACHE_N = 1 << 13


def _per_element_costs(n: int, rng, repeat: int, quick: bool) -> dict[str, float]:
    """Seconds per element of every operation at ``n`` elements (the per-call part removed)."""
    ops, sizes = _element_ops(n, rng, quick)
    return {name: per_element(big, sm, *sizes.get(name, (n, 16)), repeat) for name, (big, sm) in ops.items()}


def _element_ops(n: int, rng, quick: bool) -> tuple[dict, dict]:
    """The per-element measurements at ``n`` elements (against 16): ``{name: (big, small)}``
    callables and ``{name: (elements big, elements small)}`` where they are not ``(n, 16)``."""
    small = 16

    def arrays(m):
        a = rng.uniform(0.5, 1.5, m)
        b = rng.uniform(0.5, 1.5, m)
        return a, b

    A, B = arrays(n)
    a, b = arrays(small)
    Ai = rng.integers(0, n, n)
    ai = rng.integers(0, small, small)
    C = A < B
    c = a < b
    side = int(round(n ** 0.5))
    M = rng.uniform(0.5, 1.5, (side, side))
    m = rng.uniform(0.5, 1.5, (4, 4))
    ops = {
        "Add": (lambda: A + B, lambda: a + b),
        "Sub": (lambda: A - B, lambda: a - b),
        "Mul": (lambda: A * B, lambda: a * b),
        "Div": (lambda: A / B, lambda: a / b),
        "Neg": (lambda: -A, lambda: -a),
        "Exp": (lambda: np.exp(A), lambda: np.exp(a)),
        "Log": (lambda: np.log(A), lambda: np.log(a)),
        "Sin": (lambda: np.sin(A), lambda: np.sin(a)),
        "Cos": (lambda: np.cos(A), lambda: np.cos(a)),
        "Tan": (lambda: np.tan(A), lambda: np.tan(a)),
        "Sqrt": (lambda: np.sqrt(A), lambda: np.sqrt(a)),
        "Tanh": (lambda: np.tanh(A), lambda: np.tanh(a)),
        "Pow": (lambda: np.float_power(A, B), lambda: np.float_power(a, b)),
        "Lt": (lambda: A < B, lambda: a < b),
        "Le": (lambda: A <= B, lambda: a <= b),
        "Eq": (lambda: A == B, lambda: a == b),
        "And": (lambda: C & C, lambda: c & c),
        "Or": (lambda: C | C, lambda: c | c),
        "Not": (lambda: ~C, lambda: ~c),
        "If": (lambda: np.where(C, A, B), lambda: np.where(c, a, b)),
        "ToReal": (lambda: Ai.astype(np.float64), lambda: ai.astype(np.float64)),
        "Get": (lambda: A[Ai], lambda: a[ai]),                      # gather at computed indices
        "Fill": (lambda: np.full(n, 1.5), lambda: np.full(small, 1.5)),
        # a reduction along the last and along the first axis (the backend's axes vary)
        "Sum": (lambda: (np.add.reduce(M, 1), np.add.reduce(M, 0)),
                lambda: (np.add.reduce(m, 1), np.add.reduce(m, 0))),
        # a build/get along an axis are views: transposes and slices (per call only)
        "GetAxis": (lambda: M.transpose(1, 0)[:, None], lambda: m.transpose(1, 0)[:, None]),
    }
    # reductions of a product / max / min ifold (values near 1: no overflow or denormals)
    P = rng.uniform(0.99, 1.01, (side, side))
    p = rng.uniform(0.99, 1.01, (4, 4))
    ops["Prod"] = (lambda: (np.multiply.reduce(P, 1), np.multiply.reduce(P, 0)),
                   lambda: (np.multiply.reduce(p, 1), np.multiply.reduce(p, 0)))
    ops["Max"] = (lambda: (np.fmax.reduce(M, 1), np.fmax.reduce(M, 0)),
                  lambda: (np.fmax.reduce(m, 1), np.fmax.reduce(m, 0)))
    from eqsat_ad.backend import _helpers as H
    ops["Extreme"] = (lambda: H.fold_extreme(A, B, True), lambda: H.fold_extreme(a, b, True))
    # contractions: np.dot of vectors (per element), matrix-vector (per matrix element),
    # einsum planned -> BLAS (per multiply-add), einsum's own loop (per multiply-add)
    v, vs = rng.uniform(0.5, 1.5, side), rng.uniform(0.5, 1.5, 4)
    g = 64 if quick else 128
    G1, G2 = rng.uniform(0.5, 1.5, (g, g)), rng.uniform(0.5, 1.5, (g, g))
    g1, g2 = rng.uniform(0.5, 1.5, (4, 4)), rng.uniform(0.5, 1.5, (4, 4))
    ops["Dot"] = (lambda: np.dot(A, B), lambda: np.dot(a, b))
    ops["Gemv"] = (lambda: np.dot(M, v), lambda: np.dot(m, vs))
    ops["Gemm"] = (lambda: np.einsum("ab,bc->ac", G1, G2, optimize=True),
                   lambda: np.einsum("ab,bc->ac", g1, g2, optimize=True))
    ops["EinsumLoop"] = (lambda: np.einsum("ab,ab->b", M, M, optimize=False),
                         lambda: np.einsum("ab,ab->b", m, m, optimize=False))
    ops["Copy"] = (lambda: np.array(A), lambda: np.array(a))         # a result that aliases an input

    # issue 11 (cost.semantics): a range guard's select (a fresh array, a fill of each side, the
    # range assigned), a shifted read's padded copy under a where guard, a sliding window read
    def select(X, k):
        out = np.empty(k)
        out[:1] = 0.0
        out[k - 1:] = 0.0
        out[1:k - 1] = X[1:k - 1]
        return out
    ops["RangeSelect"] = (lambda: select(A, n), lambda: select(a, small))
    ops["EdgeRows"] = (lambda: H.edge_rows(A, -1, n), lambda: H.edge_rows(a, -1, small))
    q = n // 4
    ops["Window"] = (lambda: np.ascontiguousarray(H.window(A, 0, (4, q), (2, 1), "w")),
                     lambda: np.ascontiguousarray(H.window(a, 0, (4, 4), (2, 1), "w")))
    sizes = {"Sum": (side * side * 2, 32), "GetAxis": (side * side, 16), "Prod": (side * side * 2, 32),
             "Max": (side * side * 2, 32), "Gemv": (side * side, 16), "Gemm": (g ** 3, 64),
             "EinsumLoop": (side * side, 16), "Window": (4 * q, 16)}
    return ops, sizes


def calibrate(n: int = 1 << 18, repeat: int = 7, quick: bool = False) -> dict:
    rng = np.random.default_rng(0)
    if quick:
        repeat = 3
    small = 16

    raw = _per_element_costs(n, rng, repeat, quick)
    t_add = raw["Add"]
    # the same on arrays that fit in cache: per element, as a fraction of the figure at n
    cached = _per_element_costs(IN_CACHE_N, rng, repeat, quick)
    in_cache = {k: round(min(max(cached[k] / v, 0.05), 2.0), 3) for k, v in raw.items()
                if v > 0 and k in cached and k not in ("GetAxis",)}
    # the arrays the large measurement needs, for the fixed costs below
    a, b = rng.uniform(0.5, 1.5, small), rng.uniform(0.5, 1.5, small)
    c = a < b
    m = rng.uniform(0.5, 1.5, (4, 4))
    g1, g2 = rng.uniform(0.5, 1.5, (4, 4)), rng.uniform(0.5, 1.5, (4, 4))
    from eqsat_ad.backend import _helpers as H
    # fixed cost of one NumPy call: small-array ufuncs (add, multiply, exp, where)
    calls = [timeit(lambda: a + b, repeat), timeit(lambda: a * b, repeat), timeit(lambda: np.exp(a), repeat),
             timeit(lambda: np.where(c, a, b), repeat), timeit(lambda: np.add.reduce(m, 1), repeat)]
    t_call = statistics.median(calls)
    # one iteration of a Python for loop that rebinds an accumulator
    N = 20000

    def loop():
        acc = 0.0
        for _i in range(N):
            acc = _i
        return acc
    t_loop = timeit(loop, repeat) / N
    # one operation on scalars, as a loop over scalars runs them: Python floats (a vector read
    # with .tolist()), NumPy scalars, ufuncs on floats
    xs = rng.uniform(0.5, 1.5, 64)
    s1, s2 = xs[3], xs[5]
    f1, f2 = float(s1), float(s2)
    xl = xs.tolist()
    t_scalar = statistics.median([timeit(lambda: s1 + s2, repeat), timeit(lambda: s1 * s2, repeat),
                                  timeit(lambda: f1 * f2, repeat), timeit(lambda: np.exp(f1), repeat),
                                  timeit(lambda: xl[7], repeat)])
    # fixed costs that differ from one plain call
    t_einsum = timeit(lambda: np.einsum("ab,bc->ac", g1, g2, optimize=False), repeat)
    t_plan = max(timeit(lambda: np.einsum("ab,bc->ac", g1, g2, optimize=True), repeat) - t_einsum, 0.0)
    t_extreme = timeit(lambda: H.fold_extreme(a, b, True), repeat)
    t_copy = timeit(lambda: H.unalias(a, (a, b)), repeat)
    # the calls of a range select, of a guarded shifted read's check and padded copy, of a window

    def select_calls():
        out = np.empty(small)
        out[:1] = 0.0
        out[small - 1:] = 0.0
        out[1:small - 1] = a[1:small - 1]
        return out
    t_select = timeit(select_calls, repeat)
    t_edge = timeit(lambda: (H.span_needed(-1, small, small, 1, True, c), H.edge_rows(a, -1, small)), repeat)
    t_window = timeit(lambda: H.window(a, 0, (2, 8), (2, 1), "w"), repeat)
    # a call over several broadcast axes: small 2-D and 3-D ufuncs minus a 1-D one, per extra axis
    v8, M8, T8 = a[:8], rng.uniform(0.5, 1.5, (8, 8)), rng.uniform(0.5, 1.5, (8, 8, 8))
    t_1d = statistics.median([timeit(lambda: v8 * v8, repeat), timeit(lambda: v8 + v8, repeat)])
    t_nd = statistics.median([timeit(lambda: M8 * v8, repeat) - t_1d, timeit(lambda: v8[:, None] * v8, repeat) - t_1d,
                              (timeit(lambda: T8 * v8, repeat) - t_1d) / 2])
    # calling a compiled program (programs that do nothing else): the call, and binding and
    # checking each input (one input and six: the difference, per input)
    import eqsat_ad as ea
    entry = ea.compile(ea.parse("(fun ((x (vec n))) (get x 0))"))
    entry6 = ea.compile(ea.parse("(fun (" + " ".join(f"(x{k} (vec n))" for k in range(6)) + ") (get x0 0))"))
    t_entry1 = timeit(lambda: entry(a), repeat)
    t_param = max((timeit(lambda: entry6(a, a, a, a, a, a), repeat) - t_entry1) / 5, 0.0)
    t_entry = max(t_entry1 - t_param, 0.0)
    # making a view (what the backend emits for a get along an index axis): a transpose, a new
    # axis, a reshape of a small matrix
    t_view = statistics.median([timeit(lambda: M8.transpose(1, 0), repeat), timeit(lambda: v8[:, None], repeat),
                                timeit(lambda: M8.reshape(-1), repeat)])
    opcost = {k: round(v / t_add, 3) for k, v in raw.items()}
    opcost["GetAxis"] = 0.0                 # a view: no per-element work
    opcost["Build"] = 0.0                   # renames an axis (a view)
    opcost["Len"] = opcost["Fst"] = opcost["Snd"] = opcost["Pair"] = opcost["Let"] = 0.0
    opcost["Loop"] = round(t_loop / t_add, 1)
    overhead = round(t_call / t_add, 1)
    # the in-egglog ifold cost (per iteration; egglog cannot add per-call terms)
    opcost["IFold"] = round((t_loop + t_call) / t_add, 1)
    return {
        "note": "op cost per element, float add = 1 (benchmarks/calibrate_costs.py); overhead: one NumPy call",
        "machine": f"{platform.node()} {platform.machine()} {_cpu()} ({platform.system()} {platform.release()})",
        "python": sys.version.split()[0], "numpy": np.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "n": n, "threads": 1,
        "unit_seconds": t_add,
        "overhead_seconds": t_call,
        "loop_seconds": t_loop,
        "scalar_overhead": round(t_scalar / t_add, 1),
        "opcost": dict(sorted(opcost.items())),
        # per element on arrays that fit in cache (in_cache_n elements), as a fraction of opcost
        "in_cache_n": IN_CACHE_N,
        "in_cache": dict(sorted(in_cache.items())),
        "overhead": overhead,
        "call_overhead": {"EinsumLoop": round(t_einsum / t_add, 1), "EinsumPlan": round(t_plan / t_add, 1),
                          "Extreme": round(t_extreme / t_add, 1), "Copy": round(t_copy / t_add, 1),
                          "Entry": round(t_entry / t_add, 1), "EntryParam": round(t_param / t_add, 1),
                          "GetAxis": round(t_view / t_add, 1), "NdCall": round(max(t_nd, 0.0) / t_add, 1),
                          "RangeSelect": round(t_select / t_add, 1), "EdgeRows": round(t_edge / t_add, 1),
                          "Window": round(t_window / t_add, 1)},
    }


def combine(runs: list[dict]) -> dict:
    """The median of every numeric figure over several calibrations (the first run's text)."""
    def med(vals):
        return statistics.median(vals)
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("n", "threads"):
            out[k] = med([r[k] for r in runs])
        elif isinstance(v, dict) and all(isinstance(x, (int, float)) for x in v.values()):
            out[k] = {kk: round(med([r[k][kk] for r in runs]), 3) for kk in v}
    out["runs"] = len(runs)
    return out


def _cpu() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1 << 18)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3,
                    help="calibrate this many times and keep the median of every figure (shared machines)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    runs = [calibrate(args.n, args.repeat, args.quick) for _ in range(max(1, args.runs))]
    res = combine(runs)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    w = max(len(k) for k in res["opcost"])
    print(f"float add: {res['unit_seconds'] * 1e9:.3f} ns/element (= 1); one NumPy call = {res['overhead']} "
          f"({res['overhead_seconds'] * 1e6:.2f} us); loop iteration = {res['opcost']['Loop']}; "
          f"scalar op = {res['scalar_overhead']}; calls: {res['call_overhead']}")
    for k, v in res["opcost"].items():
        print(f"  {k:<{w}}  {v:8.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
