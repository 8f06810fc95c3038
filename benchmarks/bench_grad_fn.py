"""``ea.grad_fn``: what the first call costs, what a new process pays when the disk cache
has the result, and the per-call overhead over the compiled function alone.

    python benchmarks/bench_grad_fn.py            # writes benchmarks/results/grad_fn.{json,md}
    python benchmarks/bench_grad_fn.py --src DIR  # time the eqsat_ad package found in DIR

For each program, in fresh processes sharing one empty cache directory:

1. **first call**: ``ea.grad_fn(f)`` then one call (trace, derivative, optimise, compile);
2. **new process, disk cache**: the same in a second process, which finds the optimised
   program in the cache (parse, type-check, compile);
3. **per-call overhead**: in that process, ``g(*args)`` against ``compiled(*args)`` (the
   compiled function alone, ``g.specializations[shapes].compiled``), interleaved rounds of
   calls; the ratio of the best rounds.  Target (issue 14): <= 1.2.

Each time also counts ``import eqsat_ad`` in the process (reported apart).  No timing is
asserted anywhere; the numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


# --------------------------------------------------------------------------------------
# the programs (module level: the worker processes import them from this file)
# --------------------------------------------------------------------------------------
def logistic(w, X, y):
    import eqsat_ad as ea
    p = ea.sigmoid(X @ w)
    return -ea.mean(y * ea.log(p) + (1 - y) * ea.log(1 - p))


def ridge(w, X, y):
    import eqsat_ad as ea
    r = X @ w - y
    return 0.5 * ea.mean(r ** 2) + 0.1 * ea.sum(w ** 2)


def softmax_regression(W, X, Y):
    import eqsat_ad as ea
    Z = X @ W.T
    return ea.mean(ea.log(ea.sum(ea.exp(Z), axis=1)) - ea.sum(Y * Z, axis=1))


def mlp(W1, w2, X, y):
    import eqsat_ad as ea
    H = ea.tanh(X @ W1.T)
    return ea.mean((H @ w2 - y) ** 2)


LOGSUMEXP = "(fun ((x (vec n))) (log (sum n (lambda (i) (exp (get x i))))))"


def inputs(name: str):
    """(function or program text, wrt, arguments) of a case."""
    import numpy as np
    rng = np.random.default_rng(0)
    if name.startswith("ridge-tiny"):
        return ridge, None, (rng.normal(size=3), rng.normal(size=(8, 3)), rng.normal(size=8))
    n, d = 1000, 20
    X = rng.normal(size=(n, d))
    if name == "logistic":
        return logistic, None, (0.1 * rng.normal(size=d), X, (rng.random(n) < 0.5).astype(float))
    if name == "ridge":
        return ridge, None, (rng.normal(size=d), X, rng.normal(size=n))
    if name == "softmax":
        k = 5
        return softmax_regression, None, (0.1 * rng.normal(size=(k, d)), X,
                                          np.eye(k)[rng.integers(0, k, size=n)])
    if name == "mlp":
        h = 16
        return mlp, ("W1", "w2"), (0.3 * rng.normal(size=(h, d)), 0.3 * rng.normal(size=h), X,
                                   rng.normal(size=n))
    if name == "logsumexp-text":
        return LOGSUMEXP, "x", (rng.normal(size=10_000),)
    raise KeyError(name)


CASES = ("ridge-tiny (n=8, d=3)", "logistic", "ridge", "softmax", "mlp", "logsumexp-text")
#: rounds of calls per function in the overhead measurement (the best round of each counts)
ROUNDS = 15


def worker(name: str, overhead: bool) -> dict:
    """One process: import, grad_fn, first call (and the overhead rounds)."""
    t0 = time.perf_counter()
    import numpy as np
    import eqsat_ad as ea
    t_import = time.perf_counter() - t0
    f, wrt, args = inputs(name)
    t1 = time.perf_counter()
    g = ea.grad_fn(f, wrt=wrt)
    g(*args)
    t_first = time.perf_counter() - t1
    shapes = tuple(np.shape(a) for a in args)
    spec = g.specializations[shapes]
    out = {"import_s": t_import, "first_call_s": t_first, "origin": spec.origin,
           "cost_before": spec.cost_before, "cost_after": spec.cost,
           "stop_reason": getattr(spec.report, "stop_reason", None)}
    if overhead:
        import timeit
        from eqsat_ad.bench.protocol import interleaved
        compiled = spec.compiled
        r = interleaved([lambda: g(*args), lambda: compiled(*args)], ROUNDS, 0.1 * ROUNDS, reduce=min)
        (ours, alone), calls = r["seconds"], r["number"][1]
        # the dispatch alone: the same lookup in front of a function that does nothing
        real = g._fast[shapes]
        g._fast[shapes] = lambda *a: None
        dispatch = min(timeit.repeat(lambda: g(*args), number=10_000, repeat=5)) / 10_000
        g._fast[shapes] = real
        out.update({"call_s": ours, "compiled_call_s": alone,
                    "overhead_ratio": ours / alone, "calls_per_round": calls,
                    "dispatch_s": dispatch})
    return out


def _run_worker(name: str, overhead: bool, env: dict) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"from bench_grad_fn import worker\n"
            f"print(json.dumps(worker({name!r}, {overhead!r})))")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    return out


def measure(src: str | None = None) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, EQSAT_AD_CACHE_DIR=cache)
        # as an installed package is used: Python's compiled modules are kept (here in a
        # temporary folder), so a new process does not compile eqsat_ad's sources again
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(cache, "pycache")
        if src:
            env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve())]
                                                + [p for p in [env.get("PYTHONPATH")] if p])
        for name in CASES:
            first = _run_worker(name, False, env)
            second = _run_worker(name, True, env)
            rows[name] = {"first": first, "second": second}
            print(f"{name}: {json.dumps(rows[name])}", file=sys.stderr)
    return rows


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "eqsat_ad"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (" (with uncommitted changes under eqsat_ad/)" if dirty else "")
    except OSError:
        return "unknown"


def _ms(v) -> str:
    return "-" if v is None else f"{v * 1e3:.0f} ms" if v >= 0.01 else f"{v * 1e6:.1f} us"


def write(rows: dict, src: str | None) -> None:
    meta = {"machine": platform.machine(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "commit": _commit() if not src else f"the package of {src}", "src": src, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "grad_fn.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["# ea.grad_fn: first call, disk cache, per-call overhead", "",
             f"{meta['date']}, {'commit ' if not src else ''}{meta['commit']}, Python {meta['python']}, {meta['cpus']} CPUs, "
             f"load average {meta['load_average']:.1f} at the start. "
             "Written by `benchmarks/bench_grad_fn.py`.", "",
             "| program | first call (optimise + compile) | new process: first call (disk cache) | "
             "import eqsat_ad | grad_fn call | compiled alone | overhead ratio | dispatch alone |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        a, b = r["first"], r["second"]
        if "error" in a or "error" in b:
            lines.append(f"| {name} | error: {a.get('error') or b.get('error')} | | | | | | |")
            continue
        lines.append(f"| {name} | {_ms(a['first_call_s'])} ({a['origin']}) | "
                     f"{_ms(b['first_call_s'])} ({b['origin']}) | {_ms(b['import_s'])} | "
                     f"{_ms(b['call_s'])} | {_ms(b['compiled_call_s'])} | "
                     f"{b['overhead_ratio']:.3f} | {_ms(b['dispatch_s'])} |")
    lines += ["", "The overhead ratio is `grad_fn` call / compiled function alone, best of "
              f"{ROUNDS} interleaved rounds; the target is <= 1.2.  \"new process\" is a second process with "
              "the same cache directory: its first call parses, type-checks and compiles the "
              "stored program instead of optimising.  \"dispatch alone\" is the lookup by "
              "shapes in front of a function that does nothing: what `grad_fn` adds to a call.  "
              "The processes keep Python's compiled modules (a temporary PYTHONPYCACHEPREFIX), as "
              "an installed package does; the first process writes them."]
    (RESULTS / "grad_fn.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", help="a folder holding the eqsat_ad package to time")
    ap.add_argument("--describe", help="what --src holds, for the table (e.g. 'git archive of abc123')")
    args = ap.parse_args(argv)
    rows = measure(args.src)
    write(rows, args.src and (args.describe or args.src))
    print((RESULTS / "grad_fn.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
