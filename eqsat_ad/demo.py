"""The quick-start demo: differentiate -> optimise -> run, with a visible result.

    python -m eqsat_ad.demo            # or: eqsat-ad demo

It takes logsumexp and sum(tanh(W x + b)), builds their naive dual-number gradients
(O(n^2) work), optimises them by equality saturation, checks the results against the
reference interpreter and closed forms, and times the naive and the optimised gradients.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import eqsat_ad as ea

LOGSUMEXP = "(fun ((x (vec n))) (log (sum n (lambda (i) (exp (get x i))))))"
MLP = """(fun ((W (mat m n)) (x (vec n)) (b (vec m)))
  (sum m (lambda (i) (tanh (+ (sum n (lambda (j) (* (get (get W i) j) (get x j)))) (get b i))))))"""


def _clock(fn, **inputs) -> float:
    fn(**inputs)
    reps, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn(**inputs)
        t = (time.perf_counter() - t0) / reps
        if t * reps > 0.2 or reps >= 1000:
            return t
        reps *= 4


def _short(text: str, lines: int = 14) -> str:
    rows = text.splitlines()
    return "\n".join(rows[:lines] + ([f"  ... ({len(rows) - lines} more lines)"] if len(rows) > lines else []))


def main(argv: list[str] | None = None) -> int:
    out = sys.stdout
    rng = np.random.default_rng(0)

    print("== 1. a program: logsumexp ==", file=out)
    p = ea.parse(LOGSUMEXP)
    print(ea.show_program(p), file=out)

    print("\n== 2. its dual-number gradient (naive: one forward pass per input direction, O(n^2)) ==",
          file=out)
    g = ea.grad(p, "x")
    print(_short(ea.show_program(g)), file=out)

    print("\n== 3. optimised by equality saturation (default phase-ordered schedule) ==", file=out)
    res = ea.optimize(g, sizes={"n": 10_000})
    print(ea.show_program(res.program), file=out)
    print(res.report.summary(), file=out)

    print("\n== 4. run it ==", file=out)
    x = rng.standard_normal(5)
    fast = ea.compile(res.program)
    print(f"x                 = {np.array2string(x, precision=4)}", file=out)
    print(f"optimised grad(x) = {np.array2string(fast(x=x), precision=4)}", file=out)
    print(f"naive grad(x)     = {np.array2string(ea.compile(g)(x=x), precision=4)}", file=out)
    print(f"softmax(x)        = {np.array2string(np.exp(x) / np.exp(x).sum(), precision=4)}  (closed form)",
          file=out)

    n = 2000
    xb = rng.standard_normal(n)
    t_naive, t_fast = _clock(ea.compile(g), x=xb), _clock(fast, x=xb)
    print(f"\nat n = {n}: naive {t_naive * 1e3:.2f} ms, optimised {t_fast * 1e6:.1f} us per call "
          f"({t_naive / t_fast:.0f}x faster)", file=out)

    print("\n== 5. a matrix gradient: d/dW sum(tanh(W x + b)) ==", file=out)
    q = ea.parse(MLP)
    rq = ea.optimize(ea.grad(q, "W"), sizes={"m": 300, "n": 300})
    print(ea.show_program(rq.program), file=out)
    print(f"cost {rq.cost_before:.3g} -> {rq.cost:.3g}; stopped: {rq.report.stop_reason}", file=out)
    W, xv, b = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    got = ea.compile(rq.program)(W=W, x=xv, b=b)
    want = np.outer(1 - np.tanh(W @ xv + b) ** 2, xv)
    print(f"matches the closed form outer(1 - tanh^2(Wx+b), x): {np.allclose(got, want)}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
