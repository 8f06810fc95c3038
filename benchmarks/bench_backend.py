"""NumPy backend vs hand-written NumPy.

For elementwise and reduction programs (sum of squares, dot, sigmoid-sum, logsumexp,
polynomial x^3 + 3x^2 + x summed, matvec) at n = 10, 10^3, 10^6 this times the
``eqsat_ad.compile``d program and the equivalent hand-written NumPy (median of repeated
runs), reports the ratio compiled / hand-written and the fixed per-call overhead at
n = 10 (compiled minus hand-written, in microseconds).  Results go to
``benchmarks/results/backend.json``.

    python benchmarks/bench_backend.py            # full run (about a minute)
    python benchmarks/bench_backend.py --quick    # fewer repeats
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")      # one BLAS thread, as in the benchmark workers

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eqsat_ad.backend import compile  # noqa: E402
from eqsat_ad.bench.protocol import interleaved  # noqa: E402
from eqsat_ad.lang.interp import evaluate  # noqa: E402
from eqsat_ad.lang.syntax import parse  # noqa: E402

PROGRAMS = {
    "sumsq": ("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))",
              lambda x: x @ x, "x @ x"),
    "dot": ("(fun ((x (vec n)) (w (vec n))) (sum n (lambda (i) (* (get x i) (get w i)))))",
            lambda x, w: x @ w, "x @ w"),
    "sigmoid_sum": ("(fun ((x (vec n))) (sum n (lambda (i) (/ 1.0 (+ 1.0 (exp (neg (get x i))))))))",
                    lambda x: np.sum(1.0 / (1.0 + np.exp(-x))), "np.sum(1/(1+np.exp(-x)))"),
    "logsumexp": ("(fun ((x (vec n))) (let ((m (ifold (lambda (m i) (if (> (get x i) m) (get x i) m)) "
                  "(get x 0) n))) (+ m (log (sum n (lambda (i) (exp (- (get x i) m))))))))",
                  lambda x: (lambda m: m + np.log(np.sum(np.exp(x - m))))(np.max(x)),
                  "m = x.max(); m + np.log(np.sum(np.exp(x - m)))"),
    "poly": ("(fun ((x (vec n))) (sum n (lambda (i) (let ((a (get x i))) "
             "(+ (+ (pow a 3) (* 3.0 (pow a 2))) a)))))",
             lambda x: np.sum(x ** 3 + 3.0 * x ** 2 + x), "np.sum(x**3 + 3*x**2 + x)"),
    "matvec": ("(fun ((A (mat m n)) (x (vec n))) (build m (lambda (i) (sum n (lambda (j) "
               "(* (get (get A i) j) (get x j)))))))", lambda A, x: A @ x, "A @ x"),
}
SIZES = (10, 10 ** 3, 10 ** 6)


def inputs(name: str, n: int, rng) -> dict:
    if name == "matvec":
        k = max(2, int(round(n ** 0.5)))
        return {"A": rng.standard_normal((k, k)), "x": rng.standard_normal(k)}
    if name == "dot":
        return {"x": rng.standard_normal(n), "w": rng.standard_normal(n)}
    return {"x": rng.standard_normal(n)}


def paired_times(f1, f2, kwargs, repeats: int, budget: float) -> tuple[float, float, float]:
    """Median seconds per call of ``f1`` and ``f2`` and the median of the per-repeat ratios
    f1/f2, timed side by side (:func:`eqsat_ad.bench.protocol.interleaved`)."""
    r = interleaved([lambda: f2(**kwargs), lambda: f1(**kwargs)], repeats, budget)
    return r["seconds"][1], r["seconds"][0], r["ratios"][1]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "backend.json"))
    args = ap.parse_args(argv)
    repeats, budget = (5, 0.1) if args.quick else (9, 0.4)
    rng = np.random.default_rng(0)
    rows = []
    for name, (text, hand, hand_text) in PROGRAMS.items():
        prog = parse(text)
        fn = compile(prog)
        for n in SIZES:
            kw = inputs(name, n, rng)
            got, want = fn(**kw), hand(**kw)
            if not np.allclose(got, want, rtol=1e-9):
                raise SystemExit(f"{name} n={n}: compiled result differs from hand-written NumPy")
            if n <= 1000:
                assert np.allclose(got, evaluate(prog, **kw), rtol=1e-9)
            tc, th, ratio = paired_times(fn, hand, kw, repeats, budget)
            shape = {k: list(np.shape(v)) for k, v in kw.items()}
            rows.append({"program": name, "n": n, "shapes": shape, "compiled_us": tc * 1e6,
                         "handwritten_us": th * 1e6, "ratio": ratio,
                         "overhead_us": (tc - th) * 1e6, "handwritten": hand_text})
    overhead = {r["program"]: r["overhead_us"] for r in rows if r["n"] == 10}
    # the fixed cost of a call: a program that does (almost) nothing, vs a Python function
    # doing the same thing (input check + floating-point state + result conversion)
    tiny = compile(parse("(fun ((x (vec n)) (w (vec n))) (length x))"))
    kw = {"x": np.ones(10), "w": np.ones(10)}
    tc, th, _ = paired_times(tiny, lambda x, w: x.shape[0], kw, repeats, budget)
    call_overhead = (tc - th) * 1e6
    result = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "protocol": f"compiled and hand-written timed alternately, {repeats} batches each "
                    f"(~{budget:.1f} s per program and size); times are medians per call, ratio is "
                    "the median of the per-batch ratios compiled / hand-written; overhead = "
                    "compiled - hand-written at n = 10; one BLAS thread",
        "load_average": list(os.getloadavg()),
        "rows": rows,
        "overhead_us_at_n10": overhead,
        "fixed_call_overhead_us": call_overhead,
        "max_ratio_at_1e6": max(r["ratio"] for r in rows if r["n"] == 10 ** 6),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'program':12s} {'n':>8s} {'compiled µs':>12s} {'numpy µs':>10s} {'ratio':>6s} {'overhead µs':>12s}")
    for r in rows:
        print(f"{r['program']:12s} {r['n']:8d} {r['compiled_us']:12.2f} {r['handwritten_us']:10.2f} "
              f"{r['ratio']:6.2f} {r['overhead_us']:12.2f}")
    print(f"max ratio at n=1e6: {result['max_ratio_at_1e6']:.2f};  overhead at n=10: "
          + ", ".join(f"{k} {v:.2f} µs" for k, v in overhead.items()))
    print(f"fixed per-call overhead (2 vector inputs, trivial body): {call_overhead:.2f} µs")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
