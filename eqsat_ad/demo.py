"""The quick-start demo: differentiate -> optimise -> run, with a visible result.

    python -m eqsat_ad.demo            # or: eqsat-ad demo

It takes logsumexp and sum(tanh(W x + b)), builds their naive dual-number gradients, optimises
them by equality saturation, runs them with NumPy, checks them against finite differences and
a hand-written NumPy gradient, and times the three: the naive dual-number gradient, the
optimised one and the hand-written one.  Every term it prints is explained where it is
printed (the words come from :mod:`eqsat_ad.glossary`, the cost unit from
:mod:`eqsat_ad.cost.units`).
"""
from __future__ import annotations

import sys
import textwrap
import time

import numpy as np

import eqsat_ad as ea
from eqsat_ad.cost.units import UNIT, format_seconds, predicted_seconds, unit_meaning
from eqsat_ad.glossary import define
from eqsat_ad.testing import finite_difference_gradient

LOGSUMEXP = "(fun ((x (vec n))) (log (sum n (lambda (i) (exp (get x i))))))"
MLP = """(fun ((W (mat m n)) (x (vec n)) (b (vec m)))
  (sum m (lambda (i) (tanh (+ (sum n (lambda (j) (* (get (get W i) j) (get x j)))) (get b i))))))"""

#: the size the cost model optimises for, and the size of the timing runs
OPT_N, TIME_N = 10_000, 2000
#: the central-difference step and the largest disagreement accepted from finite differences
FD_STEP, FD_TOL = 1e-6, 1e-6
#: ... and from the hand-written gradient (the same formula; only rounding may differ)
HAND_TOL = 1e-10


# -- the hand-written NumPy gradients the optimised ones are compared with -------------------------

def logsumexp_grad_numpy(x):
    """d/dx log(sum(exp(x))) = softmax(x), written by hand (the textbook formula)."""
    e = np.exp(x)
    return e / e.sum()


def mlp_grad_numpy(W, x, b):
    """d/dW sum(tanh(W x + b)) = outer(1 - tanh(W x + b)^2, x), written by hand."""
    return np.outer(1.0 - np.tanh(W @ x + b) ** 2, x)


# -- helpers -------------------------------------------------------------------------------------

def _clock(fn, *args, **kwargs) -> float:
    """Seconds per call: repeated until 0.1 s have passed (at most 1000 calls), best of 3."""
    fn(*args, **kwargs)
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn(*args, **kwargs)
        t = time.perf_counter() - t0
        if t > 0.1 or reps >= 1000:
            break
        reps *= 4
    best = t / reps
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn(*args, **kwargs)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def _short(text: str, lines: int = 12) -> str:
    rows = text.splitlines()
    return "\n".join(rows[:lines] + ([f"  ... ({len(rows) - lines} more lines)"] if len(rows) > lines else []))


def _say(text: str, out) -> None:
    print(textwrap.fill(" ".join(text.split()), width=96, break_on_hyphens=False), file=out)


def _arr(a) -> str:
    return np.array2string(np.asarray(a), precision=4, suppress_small=True, max_line_width=96)


def _times(r: float) -> str:
    return f"{r:,.0f}x" if r >= 100 else f"{r:.2g}x"


def _timing_table(rows, out) -> None:
    """``rows``: (name, seconds per call); the times relative to the hand-written one (last)."""
    hand = rows[-1][1]
    w = max(len(name) for name, _ in rows)
    for name, t in rows:
        rel = "" if t is hand else f"  ({_times(t / hand)} the hand-written time)"
        print(f"  {name:<{w}}  {format_seconds(t):>9} per call{rel}", file=out)


def _table(rows, out) -> None:
    """``name = value`` lines with the ``=`` aligned."""
    w = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{w}} = {value}", file=out)


# -- the demo ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every check passed, 1 when one failed, 2 for options (it has none)."""
    if argv:
        print(f"eqsat-ad: error: the demo takes no options (got: {' '.join(argv)})", file=sys.stderr)
        return 2
    out = sys.stdout
    rng = np.random.default_rng(0)

    print("== 1. A program: logsumexp(x) = log(sum_i exp(x[i])) ==", file=out)
    p = ea.parse(LOGSUMEXP)
    print(ea.show_program(p), file=out)

    print("\n== 2. Differentiate: its dual-number gradient ==", file=out)
    _say("Forward-mode AD with dual numbers carries one derivative direction along with each "
         "value, so the gradient of a function of n inputs runs the function n times, once per "
         "input direction: O(n^2) work for an O(n) function. This is that naive gradient:", out)
    g = ea.grad(p, "x")
    print(_short(ea.show_program(g)), file=out)

    print(f"\n== 3. Optimise it by equality saturation (cost model sizes: n = {OPT_N}) ==", file=out)
    _say("Rewrite rules (loop fusion, folding of one-hot conditionals, loop fission, code motion) "
         "add every program they prove equal to the gradient into an e-graph, phase by phase; "
         "then the cheapest program in it is extracted. The result:", out)
    res = ea.optimize(g, sizes={"n": OPT_N})
    print(ea.show_program(res.program), file=out)
    print(res.report.summary(), file=out)
    print("\nWhat these words and numbers mean:", file=out)
    for term in ("e-node", "e-class", "phase", "iteration", "saturated", "seconds", "model cost",
                 "optimised"):
        print(textwrap.fill(define(term), width=96, initial_indent="  ",
                            subsequent_indent="    ", break_on_hyphens=False), file=out)
    print(textwrap.fill(unit_meaning(), width=96, initial_indent="  ", subsequent_indent="    ",
                        break_on_hyphens=False), file=out)
    pb, pa = predicted_seconds(res.cost_before), predicted_seconds(res.cost)
    if pb is not None and pa is not None:
        print(f"  So the model predicts {format_seconds(pb)} per call before and {format_seconds(pa)} "
              f"after, at n = {OPT_N}.", file=out)

    print("\n== 4. Run it, and check it ==", file=out)
    fast, naive, f = ea.compile(res.program), ea.compile(g), ea.compile(p)
    x = rng.standard_normal(5)
    got = fast(x=x)
    fd = finite_difference_gradient(lambda v: f(x=v), x, FD_STEP)
    hand = logsumexp_grad_numpy(x)
    _table([("x", _arr(x)), ("optimised gradient", _arr(got)),
            ("naive dual-number gradient", _arr(naive(x=x))),
            ("hand-written NumPy, softmax(x)", _arr(hand)),
            (f"finite differences (h = {FD_STEP:g})", _arr(fd))], out)
    err_fd, err_hand = float(np.max(np.abs(got - fd))), float(np.max(np.abs(got - hand)))
    ok = err_fd < FD_TOL and err_hand < HAND_TOL
    print(f"largest difference: {err_fd:.1e} from finite differences, {err_hand:.1e} from the "
          f"hand-written gradient -> {'OK' if ok else 'MISMATCH'}", file=out)

    print(f"\n== 5. How fast, at n = {TIME_N} (time per call on this machine, best of 3 runs) ==",
          file=out)
    xb = rng.standard_normal(TIME_N)
    t_naive, t_fast, t_hand = _clock(naive, x=xb), _clock(fast, x=xb), _clock(logsumexp_grad_numpy, xb)
    _timing_table([("naive dual-number gradient, O(n^2)", t_naive),
                   ("optimised gradient (this package)", t_fast),
                   ("hand-written NumPy gradient", t_hand)], out)
    _say(f"The fair comparison is with the hand-written gradient: the optimised gradient does the "
         f"same O(n) work and took {_times(t_fast / t_hand)} its time (the two issue slightly "
         f"different NumPy calls, so either can be a little faster). The naive gradient, "
         f"{_times(t_naive / t_hand)} the hand-written time, only shows what dual numbers cost "
         f"without the optimiser.", out)

    print("\n== 6. A matrix gradient: d/dW sum(tanh(W x + b)) ==", file=out)
    q = ea.parse(MLP)
    rq = ea.optimize(ea.grad(q, "W", mode="forward"), sizes={"m": 300, "n": 300})
    print(ea.show_program(rq.program), file=out)
    print(f"model cost: {rq.cost_before:.4g} -> {rq.cost:.4g} {UNIT}; stopped: {rq.report.stop_reason}",
          file=out)
    W, xv, b = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    fq, gq = ea.compile(q), ea.compile(rq.program)
    got = gq(W=W, x=xv, b=b)
    fd = finite_difference_gradient(lambda M: fq(W=M, x=xv, b=b), W, FD_STEP)
    err_fd = float(np.max(np.abs(got - fd)))
    err_hand = float(np.max(np.abs(got - mlp_grad_numpy(W, xv, b))))
    ok_q = err_fd < FD_TOL and err_hand < HAND_TOL
    print(f"largest difference: {err_fd:.1e} from finite differences, {err_hand:.1e} from the "
          f"hand-written outer(1 - tanh(Wx+b)^2, x) -> {'OK' if ok_q else 'MISMATCH'}", file=out)
    m = n = 300
    Wb, xb, bb = rng.standard_normal((m, n)), rng.standard_normal(n), rng.standard_normal(m)
    print(f"at m = n = {m}:", file=out)
    _timing_table([("optimised gradient (this package)", _clock(gq, W=Wb, x=xb, b=bb)),
                   ("hand-written NumPy gradient", _clock(mlp_grad_numpy, Wb, xb, bb))], out)
    return 0 if ok and ok_q else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
