"""Gradients through sequential loops (issue 12, item 1): transposed fold gradients vs the
function and vs hand-written reverse-mode NumPy.

For each recurrence -- polynomial by recurrence ``acc*t + c[i]`` (w.r.t. ``c`` and ``t``),
running product, exponential moving average (w.r.t. ``x`` and ``alpha``), a tanh RNN with
vector state (w.r.t. ``W``), RK4 over n steps of GradBench's ODE with 16 coefficients (w.r.t.
them: the step's four stages are lets, transposed binding by binding), GradBench's LSTM
(2 layers, b = 7, w.r.t. both weight matrices: layers in an inner fold) -- at n = 10^3 and
10^4: ``ea.grad`` (which transposes the fold: a ``scan`` of the states and a backward
``scan`` or fold of the adjoints), optimised for that n and
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
from eqsat_ad.gradbench import programs as gradbench_programs  # noqa: E402

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


def _shift(y):
    """(1, y_0, ..., y_{m-2}): the factor of x in f(y)_i = x_i y_{i-1}, f(y)_0 = x_0."""
    return np.concatenate(([1.0], y[:-1]))


def rk4_grad(x, s):
    """d/dx of y_s[m-1], y by s RK4 steps of y' = f(y) (GradBench's ode) from 0 to t = 2:
    states forward, then every step's four stages recomputed and transposed."""
    n = s
    m, h = len(x), 2.0 / n
    f = lambda y: x * _shift(y)                             # noqa: E731
    back = lambda c: np.concatenate(((c * x)[1:], [0.0]))  # noqa: E731  (VJP of f in y)
    Y = np.empty((n + 1, m))
    y = np.zeros(m)
    Y[0] = y
    for t in range(n):
        k1 = f(y)
        k2 = f(y + h / 2 * k1)
        k3 = f(y + h / 2 * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        Y[t + 1] = y
    lam = np.zeros(m)
    lam[-1] = 1.0
    gx = np.zeros(m)
    for t in range(n - 1, -1, -1):
        y = Y[t]
        k1 = f(y)
        y1 = y + h / 2 * k1
        k2 = f(y1)
        y2 = y + h / 2 * k2
        k3 = f(y2)
        y3 = y + h * k3
        c4, c3, c2, c1 = h / 6 * lam, h / 3 * lam, h / 3 * lam, h / 6 * lam
        gy = lam.copy()
        gx += c4 * _shift(y3)
        g3 = back(c4)
        gy += g3
        c3 = c3 + h * g3
        gx += c3 * _shift(y2)
        g2 = back(c3)
        gy += g2
        c2 = c2 + h / 2 * g2
        gx += c2 * _shift(y1)
        g1 = back(c2)
        gy += g1
        c1 = c1 + h / 2 * g1
        gx += c1 * _shift(y)
        gy += back(c1)
        lam = gy
    return gx


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_grad(main, extra, state, seq, l):
    """d/dmain, d/dextra of ADBench's LSTM loss (GradBench's lstm; the program is
    eqsat_ad/gradbench/programs.py's LSTM): the steps and layers forward, storing the gates,
    then backpropagation through time and the layers."""
    c, b = seq.shape
    S = state.copy()
    tape = []
    total = 0.0
    for t in range(c - 1):
        x = seq[t] * extra[0]
        layers = []
        for j in range(l):
            w, bi, h, cl = main[2 * j], main[2 * j + 1], S[2 * j].copy(), S[2 * j + 1].copy()
            fg = _sig(x * w[:b] + bi[:b])
            ig = _sig(h * w[b:2 * b] + bi[b:2 * b])
            og = _sig(x * w[2 * b:3 * b] + bi[2 * b:3 * b])
            ch = np.tanh(h * w[3 * b:] + bi[3 * b:])
            cn = cl * fg + ig * ch
            tc = np.tanh(cn)
            hn = og * tc
            layers.append((x, h, cl, fg, ig, og, ch, tc))
            S[2 * j], S[2 * j + 1] = hn, cn
            x = hn
        yp = x * extra[1] + extra[2]
        e = np.exp(yp)
        se = 2.0 + e.sum()
        gold = seq[t + 1]
        total += float(gold @ (yp - np.log(se)))
        tape.append((layers, x, e / se, gold))
    gm, ge = np.zeros_like(main), np.zeros_like(extra)
    Sh, Sc = np.zeros((l, b)), np.zeros((l, b))
    g = -1.0 / ((c - 1) * b)
    for t in range(c - 2, -1, -1):
        layers, xo, p, gold = tape[t]
        gy = g * (gold - gold.sum() * p)
        ge[1] += gy * xo
        ge[2] += gy
        gx = gy * extra[1]
        for j in range(l - 1, -1, -1):
            x, h, cl, fg, ig, og, ch, tc = layers[j]
            w = main[2 * j]
            gw, gb = gm[2 * j], gm[2 * j + 1]
            ghn = gx + Sh[j]
            gcn = Sc[j] + ghn * og * (1.0 - tc * tc)
            po = ghn * tc * og * (1.0 - og)
            pf = gcn * cl * fg * (1.0 - fg)
            pi = gcn * ch * ig * (1.0 - ig)
            pc = gcn * ig * (1.0 - ch * ch)
            gw[:b] += pf * x
            gw[b:2 * b] += pi * h
            gw[2 * b:3 * b] += po * x
            gw[3 * b:] += pc * h
            gb[:b] += pf
            gb[b:2 * b] += pi
            gb[2 * b:3 * b] += po
            gb[3 * b:] += pc
            gx = pf * w[:b] + po * w[2 * b:3 * b]
            Sh[j] = pi * w[b:2 * b] + pc * w[3 * b:]
            Sc[j] = gcn * fg
        ge[0] += gx * seq[t]
    return gm, ge


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
    "rk4": dict(
        # GradBench's ODE program (eqsat_ad/gradbench/programs.py), the last element of its
        # final state: n = RNN_M coefficients, s steps
        text=gradbench_programs.ode_objective("(get yT (- n 1))"),
        sizes=lambda n: {"n": RNN_M, "s": n},
        wrt="x", hand=rk4_grad, hand_text="RK4 states by a Python loop; each step's stages recomputed and transposed",
        inputs=lambda n, rng: {"x": rng.uniform(0.0, 1.0, RNN_M), "s": n}),
    "lstm": dict(
        text=gradbench_programs.LSTM, wrt=["main", "extra"], hand=lstm_grad,
        hand_text="ADBench LSTM (2 layers, b = 7): gates stored forward, BPTT through steps and layers",
        sizes=lambda n: {"L2": 4, "B4": 28, "b": 7, "c": n + 1, "l": 2},
        inputs=lambda n, rng: {"main": rng.random((4, 28)), "extra": rng.random((3, 7)),
                               "state": rng.random((4, 7)),
                               "seq": rng.integers(0, 2, (n + 1, 7)).astype(float), "l": 2}),
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
        sizes = spec["sizes"](n) if "sizes" in spec else {"n": n, "m": RNN_M, "d": RNN_D}
        t0 = time.perf_counter()
        res = ea.optimize(g, sizes=sizes)
        opt_s = time.perf_counter() - t0
        gfn = ea.compile(res.program)
        kw = spec["inputs"](n, rng)
        got, want = gfn(**kw), spec["hand"](**kw)
        if not np.allclose(_flat(got), _flat(want), rtol=1e-7, atol=1e-9):
            raise SystemExit(f"{name} n={n}: the gradient differs from the hand-written one")
        if n == SIZES[0]:
            small = spec["inputs"](5, np.random.default_rng(1))
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
