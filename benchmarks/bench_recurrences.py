"""Gradients through sequential loops (issue 12, item 1): transposed fold gradients vs the
function and vs hand-written reverse-mode NumPy.

For each recurrence -- polynomial by recurrence ``acc*t + c[i]`` (w.r.t. ``c`` and ``t``),
running product, exponential moving average (w.r.t. ``x`` and ``alpha``), a tanh RNN with
vector state (w.r.t. ``W``) -- at n = 10^3 and 10^4: ``ea.grad`` (which transposes the fold:
a ``scan`` of the states and a backward ``scan`` of the adjoints), optimised for that n and
compiled; the function compiled; a hand-written reverse-mode NumPy gradient (in this file).
Reported: gradient cost / function cost by the cost model and measured, the growth of both
from 10^3 to 10^4 (target <= 1.5x), and gradient time / hand-written time (target <= 3x).
Every gradient is checked against the hand-written one (and the interpreter at small n).

    python benchmarks/bench_recurrences.py            # full run (a few minutes)
    python benchmarks/bench_recurrences.py --quick    # fewer repeats
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

import eqsat_ad as ea  # noqa: E402
from eqsat_ad.bench.protocol import interleaved  # noqa: E402
from eqsat_ad.cost.model import default_cost_model  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SIZES = (1000, 10000)
RNN_M, RNN_D = 16, 8


# -- hand-written reverse mode ------------------------------------------------------------------
def poly_grad(c, t):
    """d/dc, d/dt of p = fold(acc*t + c[i], 0): states forward, adjoints t^(n-1-i)."""
    n = len(c)
    p = [0.0]
    a = 0.0
    for ci in c.tolist():
        a = a * t + ci
        p.append(a)
    lam = t ** np.arange(n - 1, -1, -1, dtype=float)        # lambda_{i+1}
    return lam, float(lam @ np.array(p[:n]))


def prod_grad(x):
    """d/dx of prod(x): prefix products times suffix products."""
    pre = np.cumprod(np.concatenate(([1.0], x[:-1])))
    suf = np.cumprod(np.concatenate(([1.0], x[::-1][:-1])))[::-1]
    return pre * suf


def ema_grad(x, al):
    """d/dx, d/dalpha of s_n, s_0 = x[0], s_{i+1} = al s_i + (1 - al) x[i]."""
    n = len(x)
    s = [float(x[0])]
    a = s[0]
    for xi in x.tolist():
        a = al * a + (1.0 - al) * xi
        s.append(a)
    lam = al ** np.arange(n - 1, -1, -1, dtype=float)       # lambda_{i+1}
    gx = (1.0 - al) * lam
    gx[0] += al ** n                                        # through the initial state x[0]
    return gx, float(lam @ (np.array(s[:n]) - x))


def rnn_grad(W, U, X, h0):
    """d/dW of sum(h_n^2), h_{t+1} = tanh(W h_t + U x_t): backpropagation through time."""
    n = X.shape[0]
    H = np.empty((n + 1, len(h0)))
    H[0] = h0
    h = h0
    XU = X @ U.T
    for t in range(n):
        h = np.tanh(W @ h + XU[t])
        H[t + 1] = h
    lam = 2.0 * H[n]
    D = np.empty((n, len(h0)))
    for t in range(n - 1, -1, -1):
        d = lam * (1.0 - H[t + 1] ** 2)
        D[t] = d
        lam = W.T @ d
    return D.T @ H[:n]


CASES = {
    "poly": dict(
        text="(fun ((c (vec n)) (t real)) (ifold (lambda (a i) (+ (* a t) (get c i))) 0.0 n))",
        wrt=["c", "t"], hand=poly_grad, hand_text="states by a Python loop; t ** arange; a dot",
        inputs=lambda n, rng: {"c": rng.uniform(-1, 1, n), "t": 0.999}),
    "running_product": dict(
        text="(fun ((x (vec n))) (ifold (lambda (a i) (* a (get x i))) 1.0 n))",
        wrt="x", hand=prod_grad, hand_text="prefix * suffix cumprod",
        inputs=lambda n, rng: {"x": rng.uniform(0.999, 1.001, n)}),
    "ema": dict(
        text=("(fun ((x (vec n)) (al real)) "
              "(ifold (lambda (a i) (+ (* al a) (* (- 1.0 al) (get x i)))) (get x 0) n))"),
        wrt=["x", "al"], hand=ema_grad, hand_text="states by a Python loop; al ** arange; a dot",
        inputs=lambda n, rng: {"x": rng.uniform(-1, 1, n), "al": 0.99}),
    "rnn": dict(
        text="""(fun ((W (mat m m)) (U (mat m d)) (X (mat n d)) (h0 (vec m)))
  (let ((hT (ifold (lambda (h t)
                     (build m (lambda (p) (tanh (+ (sum m (lambda (q) (* (get (get W p) q) (get h q))))
                                                   (sum d (lambda (q) (* (get (get U p) q) (get (get X t) q)))))))))
                   h0 n)))
    (sum m (lambda (p) (* (get hT p) (get hT p))))))""",
        wrt="W", hand=rnn_grad, hand_text="BPTT: forward and backward Python loops of gemv, one gemm",
        inputs=lambda n, rng: {"W": rng.normal(size=(RNN_M, RNN_M)) * 0.3,
                               "U": rng.normal(size=(RNN_M, RNN_D)) * 0.3,
                               "X": rng.normal(size=(n, RNN_D)), "h0": rng.normal(size=RNN_M) * 0.1}),
}


def _flat(v) -> np.ndarray:
    if isinstance(v, tuple):
        return np.concatenate([_flat(x) for x in v])
    return np.ravel(np.asarray(v, dtype=float))


def run_case(name: str, spec: dict, repeats: int, budget: float, rng) -> list[dict]:
    model = default_cost_model()
    prog = ea.parse(spec["text"])
    g = ea.grad(prog, spec["wrt"])
    f = ea.compile(prog)
    rows = []
    for n in SIZES:
        sizes = {"n": n, "m": RNN_M, "d": RNN_D}
        t0 = time.perf_counter()
        res = ea.optimize(g, sizes=sizes)
        opt_s = time.perf_counter() - t0
        gfn = ea.compile(res.program)
        kw = spec["inputs"](n, rng)
        got, want = gfn(**kw), spec["hand"](**kw)
        if not np.allclose(_flat(got), _flat(want), rtol=1e-7, atol=1e-9):
            raise SystemExit(f"{name} n={n}: the gradient differs from the hand-written one")
        if n == SIZES[0]:
            small = spec["inputs"](7, np.random.default_rng(1))
            assert np.allclose(_flat(gfn(**small)), _flat(ea.evaluate(g, **small)), rtol=1e-9)
        r = interleaved([lambda kw=kw: f(**kw), lambda kw=kw, gfn=gfn: gfn(**kw),
                         lambda kw=kw: spec["hand"](**kw)], repeats, budget)
        tf, tg, th = r["seconds"]
        fcost = model.dag_cost(prog, sizes)
        gcost = model.dag_cost(res.program, sizes)
        fwd_us = None
        if n == SIZES[0]:
            # before: the dual-number gradient (one pass per direction), optimised the same way
            ffn = ea.compile(ea.optimize(ea.grad(prog, spec["wrt"], mode="forward"), sizes=sizes).program)
            assert np.allclose(_flat(ffn(**kw)), _flat(want), rtol=1e-7, atol=1e-9)
            fwd_us = interleaved([lambda kw=kw, ffn=ffn: ffn(**kw)], 1, budget / 3)["seconds"][0] * 1e6
        rows.append({"case": name, "n": n, "wrt": spec["wrt"], "optimize_s": round(opt_s, 2),
                     "forward_mode_us": fwd_us,
                     "model_f": fcost, "model_grad": gcost, "model_ratio": gcost / fcost,
                     "f_us": tf * 1e6, "grad_us": tg * 1e6, "hand_us": th * 1e6,
                     "measured_ratio": r["ratios"][1], "vs_hand": tg / th,
                     "hand_written": spec["hand_text"], "program": str(res.program)})
        print(f"{name:16} n={n:6}  model {gcost / fcost:6.2f}  measured {r['ratios'][1]:6.2f}  "
              f"grad {tg * 1e3:8.3f} ms  hand {th * 1e3:8.3f} ms  grad/hand {tg / th:5.2f}", flush=True)
    return rows


def report(rows: list[dict]) -> str:
    out = ["# Gradients through sequential loops (issue 12, item 1)", "",
           "`ea.grad` transposes the fold (states by a `scan`, adjoints by a backward `scan`); "
           "optimised per n, compiled with the NumPy backend.  Ratios: gradient / function.", "",
           "| case | n | model ratio | measured ratio | grad ms | function ms | hand-written ms | grad / hand "
           "| forward-mode grad ms (before) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fwd = f"{r['forward_mode_us'] / 1e3:.3f}" if r.get("forward_mode_us") else ""
        out.append(f"| {r['case']} | {r['n']} | {r['model_ratio']:.2f} | {r['measured_ratio']:.2f} | "
                   f"{r['grad_us'] / 1e3:.3f} | {r['f_us'] / 1e3:.3f} | {r['hand_us'] / 1e3:.3f} | "
                   f"{r['vs_hand']:.2f} | {fwd} |")
    out += ["", "Targets: the ratio grows <= 1.5x from n = 10^3 to 10^4; within 3x of hand-written at n >= 10^3.", "",
            "| case | model growth | measured growth | max grad / hand | targets |", "|---|---:|---:|---:|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        a, b = [r for r in rows if r["case"] == case][:2]
        mg, tg = b["model_ratio"] / a["model_ratio"], b["measured_ratio"] / a["measured_ratio"]
        vh = max(a["vs_hand"], b["vs_hand"])
        ok = "PASS" if mg <= 1.5 and tg <= 1.5 and vh <= 3 else "FAIL"
        out.append(f"| {case} | {mg:.2f} | {tg:.2f} | {vh:.2f} | {ok} |")
    hands = "; ".join(f"{c}: {r['hand_written']}" for c, r in {r["case"]: r for r in rows}.items())
    out += ["", f"Hand-written gradients (reverse mode, NumPy): {hands}.", "",
            f"load average {os.getloadavg()[0]:.1f} (shared machine: timings +-20 %)", ""]
    return "\n".join(out)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = ap.parse_args(argv)
    repeats, budget = (3, 0.3) if args.quick else (7, 1.0)
    rng = np.random.default_rng(0)
    rows = []
    for name in args.cases:
        rows += run_case(name, CASES[name], repeats, budget, rng)
    meta = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M"), "load": os.getloadavg()[0]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recurrences.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (RESULTS / "recurrences.md").write_text(report(rows))
    print(report(rows))
    return {"meta": meta, "rows": rows}


if __name__ == "__main__":
    main()
