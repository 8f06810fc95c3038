"""The fused Numba backend against the NumPy backend, hand-written NumPy and jax.grad+jit
(issue 15), on the suite's and the realistic corpus's elementwise-chain programs.

For each program and n (10**5 and 10**6 by default), single-threaded (``NUMBA_NUM_THREADS``,
BLAS/OpenMP pools and XLA set to one thread), in one run:

* the derivative optimised for the Numba backend (``ea.optimize(..., backend="numba")``) on
  the Numba backend -- and its first compile time;
* the derivative optimised for NumPy on the NumPy backend (what eqsat-ad ran before);
* the hand-written NumPy derivative (``specs.numpy_grad`` / ``corpus.numpy_derivative``);
* jax.grad+jit (``jax.jvp`` of ``jax.grad`` for an hvp) of the same function (the suite's
  peer functions, ``eqsat_ad/bench/peers``; the corpus's NumPy functions traced on
  ``jax.numpy``), in a process of its own as the peer baselines run it (in one process with
  egglog and Numba, XLA's calls were 2-40x slower, erratically);

the first three timed side by side (``protocol.interleaved``); in JAX's process, JAX side by
side with the hand-written derivative and the Numba kernel (loaded from the disk cache: no
egglog there), which gives Numba / JAX directly.  (Before, Numba / JAX was taken through the
hand-written derivative both processes time -- Numba / hand x hand / JAX -- which is biased
where the hand-written code's time depends on the process's allocator state: its 8 MB
temporaries; that estimate is kept in the JSON as ``numba_over_jax_via_hand``.)  Then a second process loads
every compiled kernel from the disk cache and reports its start time per function.  Writes
``benchmarks/results/fused.json``, ``fused.md`` and the table of ``docs/backend-numba.md``.

    python benchmarks/bench_fused.py                   # ~5 min
    python benchmarks/bench_fused.py --quick           # n = 10**4, two programs
    python benchmarks/bench_fused.py --fuzz 300        # differential run on random programs
"""
from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"
from eqsat_ad.bench.specs import THREAD_ENV

os.environ.update(THREAD_ENV)

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "backend-numba.md"

# (name, group, elementwise operations per element of the forward chain)
PROGRAMS = [
    ("sumsq", "suite", 1), ("sigmoid-sum", "suite", 4), ("logsumexp", "suite", 2), ("poly", "suite", 4),
    # (not chain60, layernorm, traced-xent, softmax-max: their optimised gradients are still
    # O(n^2) with either cost table -- a sum over j inside the build over i keeps a factor of
    # i that linearity would take out -- seconds to minutes per call at n = 10**5 on any backend)
    ("pipeline20", "corpus", 22), ("lse-hvp", "corpus", 2), ("normalize", "corpus", 3),
]
SIZES = (10 ** 5, 10 ** 6)


# ---------------------------------------------------------------------------------------
# the programs
# ---------------------------------------------------------------------------------------
def case(name: str, group: str, n: int) -> dict:
    """The derivative program, its sizes, inputs and the hand-written NumPy derivative."""
    import eqsat_ad as ea
    if group == "suite":
        from eqsat_ad.bench import specs
        s = specs.get("suite", name)
        args = specs.inputs(s, n)
        return {"program": ea.grad(ea.parse(s.text), s.wrt), "sizes": s.sizes(n), "args": args,
                "hand": lambda: s.numpy_grad(*[args[p] for p in s.params])}
    from eqsat_ad.bench import corpus as C
    e = C.get(name)
    sizes = {"n": n}
    args = C.inputs(e, sizes)
    return {"program": C.derivative_program(e), "sizes": sizes, "args": args,
            "hand": lambda: e.numpy_derivative(**args)}


# ---------------------------------------------------------------------------------------
# the JAX worker (its own process: one thread pool, no Numba next to XLA)
# ---------------------------------------------------------------------------------------
def pin_one_cpu() -> int | None:
    """Pin this process to one CPU (the last it may run on); returns it (None: not possible).

    XLA's CPU runtime splits a large loop fusion into parts (``outer_dimension_partitions``)
    that its own thread pool runs in parallel, whatever ``XLA_FLAGS`` say
    (``--xla_cpu_multi_thread_eigen=false`` is Eigen's pool only; ``intra_op_parallelism_threads``
    is no XLA flag): with the flags alone, three of its threads were seen busy on a sin/cos
    chain at n = 10**6.  Pinned, the process -- JAX and the Numba kernel timed beside it --
    runs on one core, as the single-threaded targets mean; before, JAX used both cores when the
    machine was quiet and one when it was busy (one cause of Numba / jax moving with the load)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    return cpus[-1]


def jax_worker(jobs: list) -> dict:
    """jax.grad+jit of each job, timed side by side with the Numba backend's kernel (loaded
    from the disk cache the main process filled: no egglog in this process) and the
    hand-written NumPy derivative.  Numba / JAX is the median of per-repeat ratios of calls
    timed side by side here; the hand-written derivative is the baseline both processes time
    (the older, indirect ratio: Numba / hand there x hand / JAX here)."""
    os.environ.setdefault("JAX_ENABLE_X64", "1")
    pin_one_cpu()
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    import eqsat_ad as ea
    from eqsat_ad.backend import numba_backend as nb
    from eqsat_ad.bench import corpus as C
    from eqsat_ad.bench import protocol
    out = {}
    for name, group, n, text in jobs:
        key = f"{name}/{n}"
        try:
            fn, args = _jax_function(name, group, n, jax, jnp)
            jitted = jax.jit(fn)
            result = np.asarray(jax.block_until_ready(jitted(*args)))
            C.np = np                     # the hand-written derivative: NumPy again
            C.__dict__.pop("float", None)
            c = case(name, group, n)
            calls = [lambda f=jitted, a=args: jax.block_until_ready(f(*a)), c["hand"]]
            if text:
                f_nb = nb.compile(ea.parse(text))
                calls.append(lambda f=f_nb, a=c["args"]: f(**a))
            # (more, shorter repeats than the main process: the median of per-repeat ratios is
            # what is reported, and the machine's load changes by the second)
            t = protocol.interleaved(calls, repeats=21, budget=3.0 if text else 1.0)
            out[key] = {"seconds": t["seconds"][0], "hand": t["seconds"][1],
                        "over_hand": 1.0 / t["ratios"][1], "result": result}
            if text:
                out[key].update({"numba": t["seconds"][2], "numba_over_jax": t["ratios"][2]})
        except Exception as exc:      # noqa: BLE001 - a program JAX cannot run: reported, not fatal
            out[key] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return out


def _jax_function(name: str, group: str, n: int, jax, jnp):
    """jax.grad (or the hvp) of the program's function, and its arguments (JAX arrays)."""
    if group == "suite":
        from eqsat_ad.bench import specs
        from eqsat_ad.bench.peers import _common
        _common.define(jnp)
        s = specs.get("suite", name)
        f = _common.PEER_FUNCTIONS[s.peer]
        args = specs.inputs(s, n)
        k = s.params.index(s.wrt)
        return jax.grad(f, argnums=k), [jnp.asarray(args[p]) for p in s.params]
    from eqsat_ad.bench import corpus as C
    # the corpus's NumPy functions, run on jax.numpy: the module's np (and float, which would
    # make a traced value concrete) are swapped in this worker process only
    C.np = np                             # (the inputs: NumPy's generator)
    e = C.get(name)
    inputs = C.inputs(e, {"n": n})
    C.np = jnp                            # (traced at the first call, right after this)
    C.float = lambda v: v
    names = [k for k in inputs if k != "d" + e.wrt]
    fargs = {k: jnp.asarray(v) for k, v in inputs.items() if k in names}

    def f(v, *rest):
        return e.numpy_fn(**{e.wrt: v, **dict(zip([k for k in names if k != e.wrt], rest))})
    rest = [fargs[k] for k in names if k != e.wrt]
    g = jax.grad(f)
    if e.derivative == "hvp":
        d = jnp.asarray(inputs["d" + e.wrt])
        return (lambda v, *r: jax.jvp(lambda u: g(u, *r), (v,), (d,))[1]), [fargs[e.wrt]] + rest
    return g, [fargs[e.wrt]] + rest


def run_jax(jobs: list, cache: str | None = None) -> dict:
    """Run the JAX worker in a subprocess (None for every job when JAX is missing); jobs are
    ``(name, group, n, Numba program text or None)``, ``cache`` the kernels' disk cache."""
    import importlib.util
    if importlib.util.find_spec("jax") is None:
        return {}
    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "jobs.json"
        out = Path(d) / "out.npz"
        spec.write_text(json.dumps(jobs))
        env = {**os.environ, "JAX_PLATFORMS": "cpu", **({"EQSAT_AD_CACHE_DIR": cache} if cache else {})}
        r = subprocess.run([sys.executable, __file__, "--jax-worker", str(spec), str(out)], env=env,
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            print("JAX worker failed:", r.stderr[-2000:], file=sys.stderr)
            return {}
        data = np.load(out, allow_pickle=True)
        return data["out"].item()


# ---------------------------------------------------------------------------------------
# the second process: every kernel from the disk cache
# ---------------------------------------------------------------------------------------
_LOADER = """
import json, sys, time
t0 = time.perf_counter()
import numba
t_import = time.perf_counter() - t0
import eqsat_ad as ea
from eqsat_ad.backend import numba_backend as nb
progs = json.load(open(sys.argv[1]))
out = {"import_numba": t_import, "functions": []}
for text in progs:
    p = ea.parse(text)
    t = time.perf_counter()
    fn = nb.compile(p)
    out["functions"].append({"seconds": time.perf_counter() - t, "hit": sum(fn._serial.stats.cache_hits.values())})
print(json.dumps(out))
"""


def second_process(texts: list[str], cache: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "progs.json"
        path.write_text(json.dumps(texts))
        env = {**os.environ, "EQSAT_AD_CACHE_DIR": cache}
        r = subprocess.run([sys.executable, "-c", _LOADER, str(path)], env=env, capture_output=True,
                           text=True, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
def bench(programs: list, sizes: tuple, repeats: int, budget: float) -> dict:
    import eqsat_ad as ea
    from eqsat_ad.backend import numba_backend as nb
    from eqsat_ad.bench import protocol
    cache = tempfile.mkdtemp(prefix="eqsat-ad-fused-")
    os.environ["EQSAT_AD_CACHE_DIR"] = cache           # a fresh cache: first compiles are compiles
    rows, texts, built = [], [], []
    # first every program optimised and compiled (the kernels go to the disk cache, which the
    # JAX worker loads them from), then JAX (its own process), then the timings here
    for name, group, ops in programs:
        for n in sizes:
            c = case(name, group, n)
            t = time.perf_counter()
            r_nb = ea.optimize(c["program"], sizes=c["sizes"], backend="numba")
            t_opt = time.perf_counter() - t
            r_np = ea.optimize(c["program"], sizes=c["sizes"], backend="numpy")
            t = time.perf_counter()
            f_nb = nb.compile(r_nb.program)
            t_compile = time.perf_counter() - t
            f_np = ea.compile(r_np.program)
            text = ea.show_program(r_nb.program)
            texts.append(text)
            built.append((name, group, ops, n, c, f_nb, f_np, t_opt, t_compile, text))
    jax_res = run_jax([(name, group, n, text) for name, group, _, n, *_r, text in built], cache)
    for name, group, ops, n, c, f_nb, f_np, t_opt, t_compile, _text in built:
        args = c["args"]
        want = c["hand"]()
        err = float(np.max(np.abs(np.asarray(f_nb(**args)) - want)) / max(1.0, float(np.max(np.abs(want)))))
        calls = {"numba": lambda f=f_nb, a=args: f(**a), "numpy_backend": lambda f=f_np, a=args: f(**a),
                 "hand": c["hand"]}
        failed = {}
        for key, call in list(calls.items()):
            try:
                call()
            except Exception as exc:      # noqa: BLE001 - e.g. the NumPy backend's n^2 intermediate
                failed[key] = f"{type(exc).__name__}: {str(exc)[:160]}"
                del calls[key]
        tm = protocol.interleaved(list(calls.values()), repeats=repeats, budget=budget)
        sec = dict(zip(calls, tm["seconds"]))
        rat = dict(zip(calls, tm["ratios"]))
        jx = jax_res.get(f"{name}/{n}", {})
        jerr = None
        if "result" in jx:
            jerr = float(np.max(np.abs(jx["result"] - want)) / max(1.0, float(np.max(np.abs(want)))))
        row = {"program": name, "group": group, "ops": ops, "n": n,
               "numba": sec["numba"], "numpy_backend": sec.get("numpy_backend"), "hand": sec["hand"],
               "failed": failed,
               "jax": jx.get("seconds"), "jax_hand": jx.get("hand"), "jax_over_hand": jx.get("over_hand"),
               "jax_process_numba": jx.get("numba"),
               "jax_error": jx.get("error"),
               "compile_seconds": t_compile, "optimize_seconds": t_opt, "max_rel_error": err,
               "jax_max_rel_error": jerr, "fallback": f_nb.fallback}
        # ratios: medians of per-repeat ratios of calls timed side by side.  Numba / JAX: in
        # the JAX process, the kernel timed beside jax (direct); the older estimate through
        # the hand-written derivative both processes time is kept as numba_over_jax_via_hand
        row["numba_over_hand"] = 1.0 / rat["hand"]
        row["numba_over_jax_via_hand"] = (row["numba_over_hand"] / jx["over_hand"]
                                          if "over_hand" in jx else None)
        row["numba_over_jax"] = jx.get("numba_over_jax", row["numba_over_jax_via_hand"])
        rows.append(row)
        print(f"{name:12s} n={n:>8}: numba {row['numba'] * 1e6:9.1f} us  numpy-backend "
              f"{(row['numpy_backend'] or float('nan')) * 1e6:9.1f}  hand {row['hand'] * 1e6:9.1f}  jax "
              f"{(row['jax'] or float('nan')) * 1e6:9.1f} (numba there {(row['jax_process_numba'] or float('nan')) * 1e6:9.1f})"
              f"  numba/jax {row['numba_over_jax'] or float('nan'):.2f}"
              f" (via hand {row['numba_over_jax_via_hand'] or float('nan'):.2f})  compile {t_compile:.2f} s  err {err:.1e}",
              flush=True)
    start = second_process(texts, cache)
    return {"rows": rows, "second_process": start, "meta": _meta(repeats)}


def _meta(repeats: int) -> dict:
    import platform

    import numba

    import eqsat_ad as ea
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "eqsat_ad": ea.__version__,
            "machine": f"{platform.machine()} ({os.cpu_count()} cores)", "threads": 1, "repeats": repeats,
            "load": os.getloadavg()}
    try:
        import jax
        meta["jax"] = jax.__version__
    except ImportError:
        pass
    return meta


def _us(s) -> str:
    if s is None:
        return "—"
    return f"{s * 1e6:,.0f}" if s * 1e6 >= 100 else f"{s * 1e6:.1f}"


def _ratio(r, target) -> str:
    if r is None:
        return "—"
    return f"**{r:.2f}**" if r > target else f"{r:.2f}"


def markdown(res: dict) -> str:
    rows = res["rows"]
    lines = [("| program | ops | n | Numba backend µs | NumPy backend µs | hand-written NumPy µs | jax.grad+jit µs | "
             "Numba / jax (≤ 1.0) | Numba / hand (≤ 0.7 at ≥ 3 ops) | first compile s |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        hand_ratio = r["numba_over_hand"]
        target = 0.7 if r["ops"] >= 3 else float("inf")
        lines.append(f"| {r['program']} | {r['ops']} | {r['n']:.0e} | {_us(r['numba'])} | {_us(r['numpy_backend']) if r['numpy_backend'] else 'fails¹'} | "
                     f"{_us(r['hand'])} | {_us(r['jax']) if r['jax'] else 'n/a'} | "
                     f"{_ratio(r['numba_over_jax'], 1.0)} | {_ratio(hand_ratio, target)} | {r['compile_seconds']:.2f} |")
    sp = res["second_process"]
    fs = [f["seconds"] for f in sp["functions"]]
    hits = sum(1 for f in sp["functions"] if f["hit"])
    m = res["meta"]
    if any(r["failed"] for r in rows):
        lines += ["", "¹ " + "; ".join(sorted({f"{r['program']}: {w}" for r in rows for w in r["failed"].values()}))]
    lines += ["", (f"Ratios over the target are in bold.  Second process (kernels from the disk cache, "
              f"{hits} of {len(fs)} hits): `import numba` {sp['import_numba']:.2f} s, then per function "
              f"the first {fs[0]:.2f} s (Numba's one-time start-up included), the others median "
              f"{float(np.median(fs[1:])) if len(fs) > 1 else float('nan'):.3f} s, max "
              f"{max(fs[1:]) if len(fs) > 1 else float('nan'):.3f} s."),
              "", f"Run of {m['date']}: python {m['python']}, numpy {m['numpy']}, numba {m['numba']}"
              + (f", jax {m['jax']}" if "jax" in m else "") + f"; {m['machine']}, one thread everywhere (JAX's process pinned to one CPU: XLA's own thread pool), "
              f"load average {', '.join(f'{x:.1f}' for x in m['load'])} (a shared machine: ±20 %); "
              f"medians of {m['repeats']} interleaved repeats (21 in JAX's process); ratios are medians of per-repeat ratios of "
              f"calls timed side by side: Numba / jax in JAX's process (the kernel loaded from the disk "
              f"cache, no egglog there), the µs columns and Numba / hand in the main process."]
    return "\n".join(lines)


def fuzz(cases: int) -> int:
    """The differential run: ``cases`` random programs (the backend fuzzer's generator) on
    the Numba backend against the interpreter."""
    import random

    from eqsat_ad.backend import numba_backend as nb
    from eqsat_ad.fuzz import check_backend, rich_program
    from eqsat_ad.testing import random_inputs
    bad = 0
    for seed in range(cases):
        rng = random.Random(seed)
        prog, sizes = rich_program(rng, smooth=rng.random() < 0.2, int_division=seed % 2 == 1)
        nrng = np.random.default_rng(seed)
        fn = nb.compile(prog, cache=False)
        for sz in (sizes, {k: v + rng.choice([1, 2]) for k, v in sizes.items()},
                   {k: rng.choice([0, 1]) for k in sizes}):
            why = check_backend(prog, random_inputs(prog, sz, nrng), fn)
            if why:
                bad += 1
                print(f"seed {seed}: {why}")
                break
    print(f"{cases} random programs, {bad} failures")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fuzz", type=int, default=0, metavar="CASES")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--programs", help="comma-separated names: a partial run, printed only (no files written)")
    ap.add_argument("--sizes", help="comma-separated n (with --programs)")
    ap.add_argument("--jax-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.jax_worker:
        jobs = json.loads(Path(args.jax_worker[0]).read_text())
        np.savez(args.jax_worker[1], out=np.array(jax_worker(jobs), dtype=object))
        return 0
    if args.fuzz:
        return fuzz(args.fuzz)
    programs = PROGRAMS[:2] if args.quick else PROGRAMS
    sizes = (10 ** 4,) if args.quick else SIZES
    if args.programs:
        programs = [p for p in PROGRAMS if p[0] in args.programs.split(",")]
        sizes = tuple(int(float(v)) for v in args.sizes.split(",")) if args.sizes else SIZES
    res = bench(programs, sizes, 5 if args.quick else args.repeats, 0.3 if args.quick else 2.0)
    md = markdown(res)
    if args.programs:
        print(md)
        return 0
    stem = "fused-quick" if args.quick else "fused"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text("# The fused Numba backend (benchmarks/bench_fused.py)\n\n" + md + "\n")
    if not args.quick and DOC.exists():
        from eqsat_ad.bench.report import write_section
        write_section(DOC, "fused-benchmark", md, "benchmarks/bench_fused.py")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
