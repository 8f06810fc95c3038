"""eqsat-ad through its GradBench tool vs jax.grad+jit, at GradBench's default sizes.

For each implemented eval, the inputs are generated as GradBench's eval generates them (same
generators and seeds; lstm's text is replaced by random bits, b = 7 as for ASCII text), each
function is answered by the tool in-process (``eqsat_ad.gradbench.tool.Tool``: optimise for the
sizes, compile, then runs until ``--seconds``) and by a JAX worker (GradBench's JAX tool code
for lse, llsq, kmeans, gmm, ode; the same objectives written in JAX for lstm and det), run
side by side in one run, one thread each.  The outputs of both are compared with GradBench's
tolerance (ba: GradBench's JAX tool has none; a vmap of jacfwd over the 15 local parameters of
each observation).  The largest sizes of kmeans, ode, lstm and gmm (whose derivatives are
transposed or reverse mode: a constant times the function) are left out for the run's time and
memory and listed as skipped with the reason.  Results:
``benchmarks/results/gradbench.json`` and ``.md``.

    python benchmarks/bench_gradbench.py --jax-python /path/to/venv-with-jax/bin/python
    python benchmarks/bench_gradbench.py --quick          # the smallest size of each eval
    python benchmarks/bench_gradbench.py --backends numpy numba   # our backends side by side
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# one thread for eqsat-ad as for the JAX worker: BLAS, and Numba (its parallel kernels, which
# a large call would otherwise compile and use inside a timed run, are off)
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# --code-dir DIR: import eqsat_ad from a snapshot (git archive), so that a run measures one
# version of the code while the working tree changes under it
_CODE = sys.argv[sys.argv.index("--code-dir") + 1] if "--code-dir" in sys.argv[:-1] else str(ROOT)
sys.path.insert(0, _CODE)

# GradBench's default sizes (evals/*/run.py), and the part of them this benchmark runs
#: gmm's sizes run (d k at most this): its jacobian is reverse mode (a constant times the
#: objective); every default size runs (each is optimised and, on Numba, compiled on its own)
GMM_MAX_DK = 6400
#: kmeans' sizes run (k n d at most this): the (n, k, d) arrays of the largest size (160 M
#: elements) do not fit this machine's memory several times over
KMEANS_MAX_KND = 16_000_000
#: sizes left out to bound the run's time (the derivative is transposed: a constant times f)
TIME_REASON = "not run (time: the run is bounded; the derivative costs a constant times f here)"


def cases(quick: bool, gradbench: Path | None = None, ba_max: int = 3):
    """(eval, description, input, run?) in GradBench's order."""
    out = []
    np.random.seed(31337)
    for n in [2500, 5000, 10000, 20000, 40000, 80000, 160000, 320000, 640000, 1280000]:
        out.append(("lse", f"n={n}", {"x": np.random.rand(n).tolist()}, True))
    np.random.seed(31337)
    for n in [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8196, 16392]:
        out.append(("llsq", f"n={n},m=128", {"x": np.random.rand(128).tolist(), "n": n}, True))
    np.random.seed(31337)
    for k, n, d in sorted([(k, n, d) for k in [10, 100, 1000] for n in [1000, 10000] for d in [8, 16]],
                          key=lambda v: v[0] * v[1] * v[2]):
        pts = np.random.rand(n, d).tolist()
        out.append(("kmeans", f"k={k},n={n},d={d}", {"points": pts, "centroids": pts[-k:]},
                    True if k * n * d <= KMEANS_MAX_KND else TIME_REASON))
    for d, k in sorted([(d, k) for d in [2, 10, 20, 32, 64] for k in [5, 10, 25, 50, 100]], key=lambda v: v[0] * v[1]):
        rng = np.random.default_rng(31337)
        inp = {"d": d, "k": k, "n": 1000, "x": [list(rng.normal(size=d)) for _ in range(1000)], "m": 0,
               "gamma": 1.0, "alpha": list(rng.normal(size=k)), "mu": [list(rng.uniform(size=d)) for _ in range(k)],
               "q": [list(rng.normal(size=d)) for _ in range(k)],
               "l": [list(rng.normal(size=d * (d - 1) // 2)) for _ in range(k)]}
        out.append(("gmm", f"d={d},k={k},n=1000", inp, True if d * k <= GMM_MAX_DK else TIME_REASON))
    np.random.seed(31337)
    for n, s in sorted([(n, s) for n in [1000, 10000, 100000] for s in [1, 10, 100]], key=lambda v: v[0] * v[1]):
        out.append(("ode", f"n={n},s={s}", {"x": np.random.rand(n).tolist(), "s": s},
                    True if n * s <= 1_000_000 else TIME_REASON))
    rng = np.random.default_rng(31337)
    for l, c in sorted([(l, c) for l in [2, 4, 6] for c in [1024, 4096, 8192]], key=lambda v: v[0] * v[1]):
        b = 7
        inp = {"main_params": rng.random((2 * l, 4 * b)).tolist(), "extra_params": rng.random((3, b)).tolist(),
               "state": rng.random((2 * l, b)).tolist(),
               "sequence": rng.integers(0, 2, (c, b)).astype(float).tolist()}
        out.append(("lstm", f"l={l},c={c},b={b}", inp, True if l * c <= 8192 else TIME_REASON))
    for i in range(1, 15):                     # ba1 .. ba14, the eval's default --min 1 --max 14
        f = next(Path(gradbench, "evals", "ba", "data").glob(f"ba{i}_*.txt"), None) if gradbench else None
        if f is None:
            continue
        lines = f.read_text().splitlines()
        n, m, p = (int(v) for v in lines[0].split())
        inp = {"n": n, "m": m, "p": p, "cam": [float(v) for v in lines[1].split()],
               "x": [float(v) for v in lines[2].split()], "w": float(lines[3]),
               "feat": [float(v) for v in lines[4].split()]}
        out.append(("ba", f.stem, inp, i <= ba_max))
    np.random.seed(31337)
    for ell in [5, 6, 7, 8, 9, 10, 11]:
        out.append(("det", f"ell={ell}", {"A": np.random.rand(ell * ell).tolist(), "ell": ell}, True))
    if quick:
        seen, q = set(), []
        for c in out:
            if c[0] not in seen and c[3] is True:
                seen.add(c[0])
                q.append(c)
        return q
    return out


FUNCTIONS = {"lse": ("primal", "gradient"), "llsq": ("primal", "gradient"), "kmeans": ("cost", "dir"),
             "gmm": ("objective", "jacobian"), "ode": ("primal", "gradient"),
             "lstm": ("objective", "jacobian"), "det": ("primal", "gradient"), "ba": ("objective", "jacobian")}


# -- the JAX worker (run with an interpreter that has jax) ------------------------------------------

def jax_worker() -> None:
    # one core, as eqsat-ad's side runs: XLA's CPU runtime runs its own thread pool whatever
    # XLA_FLAGS say (bench_fused saw three of its threads busy at n = 1e6); pinned before jax loads
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp as jlse, multigammaln
    jax.config.update("jax_enable_x64", True)

    def lse(x):
        m = jnp.max(x)
        return jnp.log(jnp.sum(jnp.exp(x - m))) + m

    def llsq(x, n):
        m = x.shape[0]

        def f(i):
            ti = -1.0 + (i * 2.0) / (n - 1.0)
            muls = jnp.cumprod(jnp.full(m, ti).at[0].set(1))
            return (jnp.sign(ti) + jnp.sum(-x * muls)) ** 2
        return jnp.sum(jax.vmap(f)(jnp.arange(n))) / 2.0

    def kmeans(points, centers):
        a_sqr = jnp.sum(points ** 2, 1)[None, :]
        b_sqr = jnp.sum(centers ** 2, 1)[:, None]
        diff = jnp.matmul(points, centers.T).T
        return jnp.min(a_sqr + b_sqr - 2 * diff, axis=0).sum()

    def kmeans_dir(points, centers):
        f_diff = jax.grad(lambda cs: kmeans(points, cs))
        d, hes = jax.jvp(f_diff, [centers], [jnp.ones(shape=centers.shape)])
        return d / hes

    def gmm(alpha, mu, q, l, x, m, gamma):
        n, d = x.shape
        k = alpha.shape[0]
        Qdiags, sum_qs = jnp.exp(q), jnp.sum(q, axis=1)
        cols = jnp.repeat(jnp.arange(d - 1), jnp.arange(d - 1, 0, -1), total_repeat_length=d * (d - 1) // 2)
        rows = jnp.concatenate([jnp.arange(c + 1, d) for c in range(d - 1)])
        Ls = jnp.zeros((k, d, d), dtype=l.dtype).at[:, rows, cols].set(l)
        xc = x[:, None, :] - mu[None, ...]
        Lxc = Qdiags * xc + jnp.einsum("ijk,mik->mij", Ls, xc)
        inner = alpha + sum_qs - 0.5 * jnp.sum(Lxc ** 2, axis=2)
        nn = d + m + 1
        out = jnp.sum(0.5 * gamma * gamma * (jnp.sum(Qdiags ** 2, axis=1) + jnp.sum(l ** 2, axis=1)) - m * sum_qs)
        prior = -out + k * (nn * d * jnp.log(gamma / math.sqrt(2)) - multigammaln(0.5 * nn, d))
        return (-n * d * 0.5 * math.log(2 * math.pi) + jnp.sum(jlse(inner, axis=1))
                - n * jlse(alpha, axis=0) + prior)

    def ode(x, s):
        def f(y):
            return jnp.where(jnp.arange(x.shape[0]) == 0, x, x * jnp.roll(y, 1))
        h = 2.0 / s

        def body(y, _):
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            return y, None
        return jax.lax.scan(body, jnp.zeros_like(x), None, length=s)[0]

    def lstm(main, extra, state, seq):
        l2, b = state.shape
        sig = jax.nn.sigmoid

        def step(carry, t):
            S, total = carry
            x = seq[t] * extra[0]
            for j in range(l2 // 2):
                w, bi, h, cl = main[2 * j], main[2 * j + 1], S[2 * j], S[2 * j + 1]
                cn = cl * sig(x * w[:b] + bi[:b]) + sig(h * w[b:2 * b] + bi[b:2 * b]) * jnp.tanh(h * w[3 * b:] + bi[3 * b:])
                hn = sig(x * w[2 * b:3 * b] + bi[2 * b:3 * b]) * jnp.tanh(cn)
                S = S.at[2 * j].set(hn).at[2 * j + 1].set(cn)
                x = hn
            yp = x * extra[1] + extra[2]
            return (S, total + jnp.sum(seq[t + 1] * (yp - jnp.log(jnp.sum(jnp.exp(yp)) + 2)))), None
        (S, total), _ = jax.lax.scan(step, (state, 0.0), jnp.arange(seq.shape[0] - 1))
        return -total / ((seq.shape[0] - 1) * b)

    def ba_residual(cam, X, w, feat):            # one observation (ADBench's ba)
        rot, Xo = cam[:3], X - cam[3:6]
        sq = jnp.sum(rot ** 2)
        th = jnp.sqrt(jnp.where(sq == 0, 1.0, sq))
        u = rot / th
        turned = Xo * jnp.cos(th) + jnp.cross(u, Xo) * jnp.sin(th) + u * jnp.dot(u, Xo) * (1 - jnp.cos(th))
        Xc = jnp.where(sq == 0, Xo + jnp.cross(rot, Xo), turned)
        pr = Xc[:2] / Xc[2]
        rsq = jnp.sum(pr ** 2)
        return w * (pr * (1 + cam[9] * rsq + cam[10] * rsq * rsq) * cam[6] + cam[7:9] - feat)

    def ba_inputs(i):
        obs = np.arange(i["p"])
        return (A(np.tile(i["cam"], (i["n"], 1))), A(np.tile(i["x"], (i["m"], 1))), A(np.full(i["p"], i["w"])),
                A(np.tile(i["feat"], (i["p"], 1))), jnp.asarray(obs % i["n"]), jnp.asarray(obs % i["m"]))

    def ba_objective(cams, X, w, feats, oc, op):
        return jax.vmap(ba_residual)(cams[oc], X[op], w, feats), 1 - w ** 2

    def ba_jacobian(cams, X, w, feats, oc, op):
        V = jnp.concatenate([cams[oc], X[op], w[:, None]], axis=1)
        J = jax.vmap(jax.jacfwd(lambda v, f: ba_residual(v[:11], v[11:14], v[14], f)))(V, feats)
        return J, -2 * w                          # (p, 2, 15) blocks, d(1 - w^2)/dw

    def ba_objective_post(r):
        return {"reproj_error": {"elements": np.asarray(r[0][0]).tolist(), "repeated": int(r[0].shape[0])},
                "w_err": {"element": float(r[1][0]), "repeated": int(r[1].shape[0])}}

    def ba_jacobian_post(i):
        def post(r):
            J, wd = np.asarray(r[0]), np.asarray(r[1])
            n, m, p = i["n"], i["m"], i["p"]
            rows = np.concatenate([np.arange(2 * p + 1) * 15, 30 * p + np.arange(1, p + 1)])
            block = list(range(11)) + [11 * n + c for c in range(3)] + [11 * n + 3 * m]
            return {"rows": [int(v) for v in rows[:30]] + [int(rows[-1])],
                    "cols": block + block + [11 * n + 3 * m + p - 1],
                    "vals": J[0, 0].tolist() + J[0, 1].tolist() + [float(wd[-1])]}
        return post

    A = lambda v: jnp.asarray(np.asarray(v, dtype=np.float64))  # noqa: E731
    fns = {
        ("lse", "primal"): lambda i: (jax.jit(lse), (A(i["x"]),), float),
        ("lse", "gradient"): lambda i: (jax.jit(jax.grad(lse)), (A(i["x"]),), lambda r: np.asarray(r).tolist()),
        ("llsq", "primal"): lambda i: (jax.jit(lambda x: llsq(x, i["n"])), (A(i["x"]),), float),
        ("llsq", "gradient"): lambda i: (jax.jit(jax.grad(lambda x: llsq(x, i["n"]))), (A(i["x"]),),
                                         lambda r: np.asarray(r).tolist()),
        ("kmeans", "cost"): lambda i: (jax.jit(kmeans), (A(i["points"]), A(i["centroids"])), float),
        ("kmeans", "dir"): lambda i: (jax.jit(kmeans_dir), (A(i["points"]), A(i["centroids"])),
                                      lambda r: np.asarray(r).tolist()),
        ("gmm", "objective"): lambda i: (jax.jit(lambda *a: gmm(*a, i["m"], i["gamma"])),
                                         tuple(A(i[k]) for k in ("alpha", "mu", "q", "l", "x")), float),
        ("gmm", "jacobian"): lambda i: (jax.jit(jax.grad(lambda *a: gmm(*a, i["m"], i["gamma"]), argnums=(0, 1, 2, 3))),
                                        tuple(A(i[k]) for k in ("alpha", "mu", "q", "l", "x")),
                                        lambda r: dict(zip(("alpha", "mu", "q", "l"), (np.asarray(v).tolist() for v in r)))),
        ("ode", "primal"): lambda i: (jax.jit(lambda x: ode(x, i["s"])), (A(i["x"]),), lambda r: np.asarray(r).tolist()),
        ("ode", "gradient"): lambda i: (jax.jit(jax.grad(lambda x: ode(x, i["s"])[-1])), (A(i["x"]),),
                                        lambda r: np.asarray(r).tolist()),
        ("lstm", "objective"): lambda i: (jax.jit(lstm), tuple(A(i[k]) for k in ("main_params", "extra_params", "state", "sequence")), float),
        ("lstm", "jacobian"): lambda i: (jax.jit(jax.grad(lstm, argnums=(0, 1))),
                                         tuple(A(i[k]) for k in ("main_params", "extra_params", "state", "sequence")),
                                         lambda r: np.concatenate([np.ravel(r[0]), np.ravel(r[1])]).tolist()),
        ("ba", "objective"): lambda i: (jax.jit(ba_objective), ba_inputs(i), ba_objective_post),
        ("ba", "jacobian"): lambda i: (jax.jit(ba_jacobian), ba_inputs(i), ba_jacobian_post(i)),
        ("det", "primal"): lambda i: (jax.jit(jnp.linalg.det), (A(i["A"]).reshape(i["ell"], i["ell"]),), float),
        ("det", "gradient"): lambda i: (jax.jit(jax.grad(jnp.linalg.det)), (A(i["A"]).reshape(i["ell"], i["ell"]),),
                                        lambda r: np.ravel(r).tolist()),
    }
    for line in sys.stdin:
        job = json.loads(line)
        fn, args, post = fns[job["eval"], job["function"]](job["input"])
        r = jax.block_until_ready(fn(*args))           # compile
        times, total = [], 0.0
        while len(times) < 1 or total < job["seconds"]:
            t0 = time.perf_counter_ns()
            r = jax.block_until_ready(fn(*args))
            times.append(time.perf_counter_ns() - t0)
            total += times[-1] / 1e9
        print(json.dumps({"seconds": statistics.median(times) / 1e9, "output": post(r)}), flush=True)


# -- the run -------------------------------------------------------------------------------

def close(expected, actual, tolerance=1e-4) -> bool:
    """GradBench's comparison: |x - y| / max(1, |x| + |y|) <= tolerance everywhere."""
    if isinstance(expected, dict):
        return set(expected) == set(actual) and all(close(expected[k], actual[k], tolerance) for k in expected)
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    return e.shape == a.shape and bool(np.all(np.abs(e - a) / np.clip(np.abs(e) + np.abs(a), 1, None) <= tolerance))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the smallest size of each eval only")
    ap.add_argument("--evals", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--seconds", type=float, default=0.5, help="minimum seconds of runs per function (GradBench: 1)")
    ap.add_argument("--optimize-seconds", type=float, default=120.0)
    ap.add_argument("--jax-python", default=sys.executable, help="an interpreter that can import jax")
    ap.add_argument("--gradbench", type=Path, default=None,
                    help="a GradBench checkout: ba's data files (evals/ba/data); without it ba is not run")
    ap.add_argument("--ba-max", type=int, default=3, help="run ba1 .. baN (the eval's default goes to 14)")
    ap.add_argument("--jax-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--code-dir", default=None, help="import eqsat_ad from this snapshot of the code")
    ap.add_argument("--docs", action="store_true", help="also rewrite the GradBench section of docs/benchmarks.md")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="no run: rewrite the reports (and with --docs the docs section) from this run's JSON")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gradbench")
    ap.add_argument("--note", default="", help="a sentence for the docs section (what this run left out and why)")
    ap.add_argument("--backends", nargs="+", default=["numpy"], metavar="NAME",
                    help="eqsat-ad backends to time side by side (default: numpy), e.g. numpy numba")
    a = ap.parse_args()
    if a.jax_worker:
        jax_worker()
        return
    if a.from_json is not None:
        doc = json.loads(a.from_json.read_text())
        names = doc.get("backends") or list(next((r["backends"] for r in doc["rows"] if "backends" in r), {"numpy": 0}))
        write_reports(doc, names, a.out, ROOT / "docs" / "benchmarks.md" if a.docs else None)
        return
    from eqsat_ad.gradbench.tool import Tool
    tools = {b: Tool(seconds=a.optimize_seconds, backend=b) for b in a.backends}
    jax_ok = subprocess.run([a.jax_python, "-c", "import jax"], capture_output=True).returncode == 0
    worker = (subprocess.Popen([a.jax_python, __file__, "--jax-worker"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu",
                                                                           XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"))
              if jax_ok else None)
    rows = []
    for ev, desc, inp, run in cases(a.quick, a.gradbench, a.ba_max):
        if ev not in a.evals:
            continue
        for fn in FUNCTIONS[ev]:
            row = {"eval": ev, "function": fn, "sizes": desc}
            if run is not True:
                rows.append({**row, "skipped": run if isinstance(run, str) else "not run (time): --ba-max"})
                continue
            r = None
            for b, tool in tools.items():
                rb = tool.handle({"id": 0, "kind": "evaluate", "module": ev, "function": fn,
                                  "input": {**inp, "min_runs": 1, "min_seconds": a.seconds}})
                if not rb["success"]:
                    row.setdefault("errors", {})[b] = rb["error"]
                    print(ev, fn, desc, b, "error:", rb["error"][:200], flush=True)
                    continue
                runs = [t["nanoseconds"] / 1e9 for t in rb["timings"] if t["name"] == "evaluate"]
                row.setdefault("backends", {})[b] = {
                    "seconds": statistics.median(runs), "runs": len(runs),
                    "optimize_seconds": sum(t["nanoseconds"] for t in rb["timings"] if t["name"] == "optimize") / 1e9,
                    "compile_seconds": sum(t["nanoseconds"] for t in rb["timings"] if t["name"] == "compile") / 1e9}
                r = r or rb
            if r is None:
                rows.append({**row, "error": "; ".join(f"{b}: {e}" for b, e in row["errors"].items())})
                continue
            first = row["backends"][next(iter(row["backends"]))]
            row.update(eqsat_seconds=first["seconds"], runs=first["runs"], optimize_seconds=first["optimize_seconds"])
            if worker is not None:
                worker.stdin.write(json.dumps({"eval": ev, "function": fn, "input": inp, "seconds": a.seconds}) + "\n")
                worker.stdin.flush()
                j = json.loads(worker.stdout.readline())
                row.update(jax_seconds=j["seconds"], ratio=row["eqsat_seconds"] / j["seconds"],
                           agrees_with_jax=close(j["output"], r["output"]))
                for rb in row["backends"].values():
                    rb["ratio"] = rb["seconds"] / j["seconds"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    if worker is not None:
        worker.stdin.close()
        worker.wait()
    doc = {"what": "median seconds of one evaluation through the GradBench tool, jax.grad+jit side by side",
           "code": _CODE,
           "seconds_per_function": a.seconds, "jax": jax_ok, "load_average": os.getloadavg(),
           "backends": a.backends, "note": a.note, "rows": rows}
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    write_reports(doc, a.backends, a.out, ROOT / "docs" / "benchmarks.md" if a.docs else None)


def write_reports(doc: dict, names: list, out: Path, docs: Path | None) -> None:
    """The full table (``out``.md) and, with ``docs``, the summary in docs/benchmarks.md's
    GradBench section (between its markers), both from one run's JSON."""
    rows = doc["rows"]
    lines = ["| eval | function | sizes | " + " | ".join(f"eqsat-ad {b} s" for b in names)
             + " | jax.grad+jit s | " + " | ".join(f"{b} / jax" for b in names) + " | agrees | optimise s |",
             "|---|---|---|" + "---:|" * (2 * len(names) + 1) + "---|---:|"]
    for r in rows:
        if "skipped" in r or "error" in r:
            why = (("skipped (time)" if r["skipped"].startswith("not run") else "skipped") if "skipped" in r
                   else "error: " + r["error"][:60])
            lines.append(f"| {r['eval']} | {r['function']} | {r['sizes']} | {why} |" + " |" * (2 * len(names) + 2))
            continue
        per = r.get("backends") or {names[0]: {"seconds": r["eqsat_seconds"], "ratio": r["ratio"]}}
        secs = " | ".join(f"{per[b]['seconds']:.3g}" if b in per else "error" for b in names)
        ratios = " | ".join(f"{per[b]['ratio']:.3g}" if "ratio" in per.get(b, {}) else "-" for b in names)
        j = f"{r['jax_seconds']:.3g}" if "jax_seconds" in r else "-"
        ag = ("yes" if r["agrees_with_jax"] else "NO") if "agrees_with_jax" in r else "-"
        lines.append(f"| {r['eval']} | {r['function']} | {r['sizes']} | {secs} | {j} | {ratios} | {ag} | "
                     f"{r['optimize_seconds']:.1f} |")
    md = ("# eqsat-ad on GradBench's evals (benchmarks/bench_gradbench.py)\n\n" + "\n".join(lines)
          + "\n\nskipped: the run's time bound (kmeans, ode, lstm, gmm, ba).  "
          f"Load average {doc['load_average'][0]:.1f}.\n")
    out.with_suffix(".md").write_text(md)
    print(md)
    if docs is not None:
        text = docs.read_text()
        a, b = text.index(DOCS_BEGIN), text.index(DOCS_END)
        docs.write_text(text[:a + len(DOCS_BEGIN)] + "\n" + summary(doc, names) + text[b:])


DOCS_BEGIN, DOCS_END = "<!-- gradbench table: begin -->", "<!-- gradbench table: end -->"
#: the evals with a target (issue 12): within 3x of jax.grad+jit at GradBench's default sizes
TARGET = ("lse", "llsq", "kmeans", "gmm", "ode", "lstm", "ba")


def summary(doc: dict, names: list | None = None) -> str:
    """One row per eval: sizes run and, per backend, the ranges of eqsat-ad time / JAX time
    and how many sizes of the derivative are within 3x; agreement with JAX under GradBench's
    tolerance.  The run's note (``--note``: what it left out) follows the table."""
    names = names or ["numpy"]
    out = [f"Generated by `benchmarks/bench_gradbench.py --docs` from the run in "
           f"`benchmarks/results/gradbench.md` (load average {doc['load_average'][0]:.1f}; "
           f"backend{'s' if len(names) > 1 else ''} {', '.join(names)}, one thread, jax.grad+jit side by side).", ""]
    head = "| eval | sizes run |"
    for b in names:
        head += f" {b}: function ÷ JAX | {b}: derivative ÷ JAX | {b}: derivative within 3x |"
    out += [head + " agrees with JAX |", "|---|---|" + "---|" * (3 * len(names)) + "---|"]
    evs = list(dict.fromkeys(r["eval"] for r in doc["rows"]))
    for ev in evs:
        rows = [r for r in doc["rows"] if r["eval"] == ev]
        fn_name, der_name = FUNCTIONS[ev]
        sizes = list(dict.fromkeys(r["sizes"] for r in rows))
        ran = [r for r in rows if "ratio" in r]
        ran_sizes = list(dict.fromkeys(r["sizes"] for r in ran))

        def ratio(r, b):
            per = r.get("backends")
            if per is None:
                return r["ratio"] if b == names[0] else None
            return per.get(b, {}).get("ratio")

        def rng(name, b):
            v = [x for x in (ratio(r, b) for r in ran if r["function"] == name) if x is not None]
            return f"{min(v):.3g} – {max(v):.3g}" if len(v) > 1 else f"{v[0]:.3g}" if v else "-"
        cells = ""
        for b in names:
            der = [x for x in (ratio(r, b) for r in ran if r["function"] == der_name) if x is not None]
            cells += f" {rng(fn_name, b)} | {rng(der_name, b)} | {sum(x <= 3 for x in der)} of {len(der)} |"
        errors = [r for r in rows if "error" in r or "errors" in r]
        agree = all(r.get("agrees_with_jax") for r in ran) and not errors
        out.append(f"| {ev}{' (target)' if ev in TARGET else ''} | {len(ran_sizes)} of {len(sizes)} |{cells} "
                   f"{'yes' if agree else 'NO'}{f' ({len(errors)} with errors)' if errors else ''} |")
    if doc.get("note"):
        out += ["", doc["note"]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
