"""The realistic-corpus benchmark (issue 10's measuring base): optimise and time every program
of ``eqsat_ad/bench/corpus.py`` and check the targets.

For every corpus program, at each of its benchmark sizes:

* **optimise** the derivative program with each extractor (``tree``, ``dag``, ``ilp``) under
  the default schedule and limits -- one ``ea.optimize`` call, timed as a whole (everything it
  does, its numeric check included; importing the library, once per process, is not part of
  it), in a subprocess with a wall-clock timeout (``timeout``)
  and a memory limit (``memory``); records seconds, stop reason, e-graph size, the sizes of
  the input and extracted programs (characters of ``show_program`` and tree node counts), and
  the costs (``cost_before``, ``cost``, both under the model's DAG measure, and the tree cost);
* **time**, side by side in one subprocess: the plain NumPy function, the hand-written NumPy
  derivative (timed first and last, repeats pooled), the compiled primal program, the
  compiled optimised derivative of each extractor, and the compiled unoptimised derivative
  when the model predicts it runs under ``--unopt-seconds``; every derivative is checked
  against the hand-written one.

Targets (PASS/FAIL in ``corpus.md``): optimise <= 2 s per program (default call: the default
extractor, worst size); extracted program <= 3x the input's size (every extractor and
size; characters and nodes); ILP <= DAG <= tree costs; no result costlier than its input;
Spearman(model cost, measured time) >= 0.95 over all points and >= 0.9 over points of small
cost (the model predicts <= ``SMALL_SECONDS`` a call); gradient time / function time and / hand-written gradient
(reported, no threshold).

    nice python benchmarks/bench_corpus.py                 # full run (long: see --timeout)
    nice python benchmarks/bench_corpus.py --quick         # one size, short timeouts
    python benchmarks/bench_corpus.py --programs mlp2,logreg --extractors tree
    python benchmarks/bench_corpus.py --render benchmarks/results/corpus.json   # only the .md
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
           "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# workers import eqsat_ad from the code snapshot the coordinator made (--code-dir), so that
# every run of one benchmark measures the same code while the working tree changes
_CODE_DIR = sys.argv[sys.argv.index("--code-dir") + 1] if "--code-dir" in sys.argv[:-1] else None
sys.path.insert(0, _CODE_DIR or str(ROOT))

from eqsat_ad.bench import corpus as C  # noqa: E402  (NumPy only at import)
from eqsat_ad.extract import DEFAULT_EXTRACTOR, EXTRACTORS  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
OPT_SECONDS_TARGET = 2.0
SIZE_FACTOR_TARGET = 3.0
SPEARMAN_TARGET = 0.95
SPEARMAN_SMALL_TARGET = 0.9
SMALL_SECONDS = 2e-5      # "small cost": the model predicts under 20 us a call (fixed costs dominate)
REL_TOL = 1e-6            # cost comparisons: closer than this is equal (summation order)


# ======================================================================================
# workers (run in subprocesses)
# ======================================================================================
def _limit_memory(gb: float) -> None:
    if gb and gb > 0:
        import resource
        b = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (b, b))


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return repr(v)


def _emit(d: dict) -> None:
    sys.stdout.write(json.dumps(_jsonable(d)) + "\n")
    sys.stdout.flush()


def worker_opt(name: str, extractor: str, sizes: dict) -> None:
    """One ``ea.optimize`` call; one JSON line on stdout."""
    import eqsat_ad as ea
    e = C.get(name)
    t0 = time.perf_counter()
    g = C.derivative_program(e)
    ad_s = time.perf_counter() - t0
    out = {"ok": False, "program": name, "extractor": extractor, "sizes": sizes, "ad_seconds": ad_s,
           "code": str(Path(ea.__file__).parent.parent),
           "input_chars": len(ea.show_program(g)), "input_nodes": C.node_count(g)}
    optimize = ea.optimize      # imports the optimiser (egglog): once per process, not per call
    t0 = time.perf_counter()
    try:
        res = optimize(g, sizes=sizes, extractor=extractor)
    except Exception as ex:  # noqa: BLE001 - recorded, not hidden
        out.update(seconds=time.perf_counter() - t0, error=f"{type(ex).__name__}: {ex}"[:2000],
                   traceback=traceback.format_exc()[-3000:])
        traceback.print_exc()
        _emit(out)
        return
    secs = time.perf_counter() - t0
    r = res.report
    text = ea.show_program(res.program)
    ext = {k: v for k, v in (r.extraction or {}).items() if k not in ("choice",)}
    out.update(ok=True, seconds=secs, stop_reason=r.stop_reason, iterations=r.iterations,
               enodes=r.enodes, eclasses=r.eclasses, saturation_seconds=r.seconds,
               cost_before=res.cost_before, cost=res.cost, tree_cost=ext.get("tree_cost"),
               output_chars=len(text), output_nodes=C.node_count(res.program),
               extraction=ext, notes=list(r.notes),
               phases=[{"name": p.name, "iterations": p.iterations, "enodes": p.enodes_after,
                        "seconds": p.seconds, "stop": p.stop_reason} for p in r.phases],
               text=text)
    _emit(out)


def worker_time(name: str, sizes: dict, spec_file: str) -> None:
    """Time the methods of one (program, sizes) side by side; one JSON line per method."""
    import eqsat_ad as ea
    from eqsat_ad.bench.protocol import measure
    from eqsat_ad.cost.model import default_cost_model
    spec = json.loads(Path(spec_file).read_text())
    repeats, target, budget = spec["repeats"], spec["target"], spec["budget"]
    e = C.get(name)
    args = C.inputs(e, sizes)
    prim = C.primal_inputs(e, args)
    want = np.asarray(e.numpy_derivative(**args), dtype=float)
    model = default_cost_model()
    unit = float(model.meta.get("unit_seconds", 1.66e-9))
    _emit({"method": "_meta", "unit_seconds": unit})

    def timed(method, fn, cost=None, check=False, extra=None):
        row = {"method": method, "cost": cost, **(extra or {})}
        try:
            t0 = time.perf_counter()
            v = fn()
            first = time.perf_counter() - t0
            if check:
                row["error"] = C.max_rel_error(np.asarray(v, dtype=float), want)
            m = measure(fn, repeats=repeats, target=target, budget=budget, first=first)
            row.update(ok=True, first=first, median=m["median"], times=m["times"], number=m["number"])
        except Exception as ex:  # noqa: BLE001
            row.update(ok=False, error_text=f"{type(ex).__name__}: {ex}"[:1000],
                       traceback=traceback.format_exc()[-3000:])
        _emit(row)

    timed("numpy-grad", lambda: e.numpy_derivative(**args))
    timed("numpy-fn", lambda: e.numpy_fn(**prim))
    p = C.program(e)
    fp = ea.compile(p)
    timed("primal", lambda: fp(**prim), cost=model.dag_cost(p, sizes))
    for label, text in spec["programs"].items():
        q = ea.parse(text)
        cost = model.dag_cost(q, sizes)
        if cost * unit > spec["max_call_seconds"]:
            _emit({"method": label, "ok": False, "cost": cost, "skipped": True,
                   "error_text": f"not run: the model predicts {cost * unit:.3g} s per call"})
            continue
        try:
            fq = ea.compile(q)
        except Exception as ex:  # noqa: BLE001
            _emit({"method": label, "ok": False, "error_text": f"compile: {type(ex).__name__}: {ex}"[:1000]})
            continue
        timed(label, lambda fq=fq: fq(**args), cost=cost, check=True)
    g = C.derivative_program(e)
    cost = model.dag_cost(g, sizes)
    if cost * unit <= spec["unopt_seconds"]:
        fg = ea.compile(g)
        timed("unopt", lambda: fg(**args), cost=cost, check=True)
    else:
        _emit({"method": "unopt", "ok": False, "cost": cost, "skipped": True,
               "error_text": f"not run: the model predicts {cost * unit:.3g} s per call"})
    timed("numpy-grad#2", lambda: e.numpy_derivative(**args))
    timed("numpy-fn#2", lambda: e.numpy_fn(**prim))


# ======================================================================================
# the coordinator
# ======================================================================================
CODE_DIR: str | None = None      # the snapshot the workers import eqsat_ad from (None: the working tree)


def snapshot_head() -> tuple[str, str]:
    """``git archive HEAD eqsat_ad`` (and ``rules`` where a commit still has the rule files
    there) into a temporary directory; returns (dir, commit)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="eqsat_corpus_code_")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=True).stdout.strip()
    paths = [p for p in ("eqsat_ad", "rules") if subprocess.run(
        ["git", "cat-file", "-e", f"{commit}:{p}"], cwd=ROOT, capture_output=True).returncode == 0]
    arch = subprocess.run(["git", "archive", commit, *paths], cwd=ROOT,
                          capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", d], input=arch, check=True)
    return d, commit


def _run(argv: list[str], timeout: float, memory: float) -> tuple[str, list[dict], str, float]:
    """Run this file as a worker; returns (status, JSON lines, stderr tail, seconds)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory", str(memory), *argv]
    if CODE_DIR:
        cmd += ["--code-dir", CODE_DIR]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, cwd=str(ROOT))
    status = "ok"
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        status = "timeout"
    secs = time.perf_counter() - t0
    rows = []
    for line in (out or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    if status == "ok" and p.returncode != 0:
        status = "crash"
        if "MemoryError" in (err or "") or p.returncode in (-9, 137):
            status = "memory"
    return status, rows, (err or "")[-1500:], secs


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "numpy": np.__version__}
    try:
        info["affinity"] = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover
        pass
    try:
        import importlib.metadata as md
        info["egglog"] = md.version("egglog")
        info["scipy"] = md.version("scipy")
    except Exception:  # noqa: BLE001
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                        capture_output=True).stdout.strip()
        info["dirty_paths"] = len(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, text=True,
                                                 capture_output=True).stdout.splitlines())
    except OSError:  # pragma: no cover
        pass
    try:        # other work on the machine slows every optimisation (their limits are wall-clock)
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):  # pragma: no cover
        pass
    return info


def bench_program(e: C.CorpusProgram, cfg: argparse.Namespace, log) -> dict:
    sizes_list = list(e.bench_sizes)
    if cfg.quick:
        sizes_list = [sizes_list[len(sizes_list) // 2]]
    entry = {"name": e.name, "label": e.label, "derivative": e.derivative, "wrt": e.wrt,
             "source": e.source, "doc": e.doc, "tags": list(e.tags), "sizes": []}
    given_up: dict[str, str] = {}
    for sz in sizes_list:
        row = {"sizes": sz, "opt": {}, "time": {}}
        for ex in cfg.extractors:
            if ex in given_up:
                row["opt"][ex] = {"ok": False, "status": "skipped", "error": given_up[ex]}
                continue
            status, rows, err, secs = _run(["--worker-opt", e.name, ex, json.dumps(sz)], cfg.timeout, cfg.memory)
            r = rows[-1] if rows else {"ok": False}
            r["status"] = status if status != "ok" or r.get("ok") else "error"
            r["wall_seconds"] = secs
            if status != "ok":
                r.setdefault("error", f"{status} after {secs:.0f} s" + (f": {err.strip().splitlines()[-1]}"
                                                                          if err.strip() else ""))
                given_up[ex] = f"{status} at {sz}"
            row["opt"][ex] = r
            log(f"  {e.name} {sz} {ex}: {r['status']} "
                + (f"{r['seconds']:.2f} s, cost {r['cost_before']:.4g} -> {r['cost']:.4g}, "
                   f"nodes {r['input_nodes']} -> {r['output_nodes']}, {r['stop_reason']}"
                   if r.get("ok") else r.get("error", "")[:200]))
        # time everything side by side
        progs, alias = {}, {}
        for ex in cfg.extractors:
            r = row["opt"][ex]
            if r.get("ok"):
                for lab, text in progs.items():
                    if text == r["text"]:
                        alias[ex] = lab
                        break
                else:
                    progs[ex] = r["text"]
        row["same_program_as"] = alias
        for ex, lab in alias.items():          # the text is stored once
            row["opt"][ex]["text"] = None
            row["opt"][ex]["text_same_as"] = lab
        spec = {"programs": progs, "repeats": cfg.repeats, "target": cfg.target, "budget": cfg.budget,
                "unopt_seconds": cfg.unopt_seconds, "max_call_seconds": cfg.max_call_seconds}
        spec_file = RESULTS / f".corpus_spec_{os.getpid()}.json"
        spec_file.write_text(json.dumps(spec))
        try:
            status, rows, err, secs = _run(["--worker-time", e.name, json.dumps(sz), str(spec_file)],
                                           cfg.time_timeout, cfg.memory)
        finally:
            spec_file.unlink(missing_ok=True)
        row["time_status"] = status
        if status != "ok":
            row["time_error"] = err.strip().splitlines()[-1] if err.strip() else status
        for r in rows:
            if r["method"] == "_meta":
                row["unit_seconds"] = r["unit_seconds"]
            else:
                row["time"][r["method"]] = r
        for ex, lab in alias.items():
            row["time"][ex] = dict(row["time"].get(lab, {}), same_as=lab)
        _pool(row["time"], "numpy-grad")
        _pool(row["time"], "numpy-fn")
        t = row["time"]

        def med(k):
            return t.get(k, {}).get("median") if t.get(k, {}).get("ok") else None
        log(f"  {e.name} {sz} time: " + ", ".join(
            f"{k} {_fmt_t(med(k))}" for k in ("numpy-fn", "numpy-grad", "primal", *cfg.extractors, "unopt")
            if k in t) + (f" [{status}]" if status != "ok" else ""))
        entry["sizes"].append(row)
    return entry


def _pool(t: dict, key: str) -> None:
    a, b = t.get(key), t.pop(key + "#2", None)
    if a and b and a.get("ok") and b.get("ok"):
        times = a["times"] + b["times"]
        a["times"] = times
        a["median"] = float(np.median(times))


def _fmt_t(s) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


# ======================================================================================
# targets
# ======================================================================================
def _spearman(xs, ys) -> float | None:
    if len(xs) < 3:
        return None
    from scipy.stats import spearmanr
    v = float(spearmanr(xs, ys).statistic)
    return None if np.isnan(v) else v


def evaluate(res: dict) -> dict:
    exs = res["config"]["extractors"]
    progs = res["programs"]
    t = {}
    # 1. optimise time (default call: the default extractor), worst size
    rows = []
    for p in progs:
        secs, bad = [], None
        for s in p["sizes"]:
            r = s["opt"].get(DEFAULT_EXTRACTOR, {})
            if r.get("ok"):
                secs.append(r["seconds"])
            elif bad is None or bad.startswith("skipped"):
                bad = f"{r.get('status', 'missing')} at {_szs(s['sizes'])}"
        worst = max(secs) if secs else None
        ok = bad is None and worst is not None and worst <= OPT_SECONDS_TARGET
        why = bad if bad else (f"{worst:.2f} s" if worst is not None else "no result")
        rows.append({"program": p["name"], "worst_seconds": worst, "failure": bad, "pass": ok, "why": why})
    t["optimise_seconds"] = {"target": f"<= {OPT_SECONDS_TARGET} s per program ({DEFAULT_EXTRACTOR}, the default extractor; default limits, worst size)",
                             "rows": rows, "passed": sum(r["pass"] for r in rows), "of": len(rows)}
    # 2. extracted size <= 3x input (every extractor, every size; chars and nodes)
    rows = []
    for p in progs:
        worst_c = worst_n = 0.0
        missing = []
        for s in p["sizes"]:
            for ex in exs:
                r = s["opt"].get(ex, {})
                if not r.get("ok"):
                    missing.append(ex)
                    continue
                worst_c = max(worst_c, r["output_chars"] / r["input_chars"])
                worst_n = max(worst_n, r["output_nodes"] / r["input_nodes"])
        ok = not missing and worst_c <= SIZE_FACTOR_TARGET and worst_n <= SIZE_FACTOR_TARGET
        why = (f"no result ({', '.join(sorted(set(missing)))})" if missing else
               f"{max(worst_c, worst_n):.2f}x ({'nodes' if worst_n >= worst_c else 'chars'})")
        rows.append({"program": p["name"], "worst_chars_factor": worst_c, "worst_nodes_factor": worst_n,
                     "missing": sorted(set(missing)), "pass": ok, "why": why})
    t["program_size"] = {"target": f"extracted <= {SIZE_FACTOR_TARGET}x the input (characters and nodes)",
                         "rows": rows, "passed": sum(r["pass"] for r in rows), "of": len(rows)}
    # 3. ILP <= DAG <= tree, among the extractors run (EXTRACTORS is in that order, cheapest last)
    run = [ex for ex in EXTRACTORS if ex in exs]
    rows = []
    for p in progs:
        viol, missing = [], False
        for s in p["sizes"]:
            c = {ex: s["opt"].get(ex, {}).get("cost") for ex in exs if s["opt"].get(ex, {}).get("ok")}
            if not all(ex in c for ex in run):
                missing = True
                continue
            for a, b in zip(run, run[1:]):
                if c[b] > c[a] * (1 + REL_TOL):
                    viol.append(f"{_szs(s['sizes'])}: {b} {c[b]:.6g} > {a} {c[a]:.6g}")
        rows.append({"program": p["name"], "violations": viol, "incomplete": missing,
                     "pass": not viol and not missing,
                     "why": "; ".join(viol) if viol else ("a result is missing" if missing else "")})
    order = " <= ".join(ex.upper() if ex != "tree" else ex for ex in reversed(run))
    t["extractor_order"] = {"target": f"{order} (cost of each result under the model's DAG measure"
                                      + ("" if len(run) == len(EXTRACTORS) else f"; extractors run: {', '.join(run)}") + ")",
                            "rows": rows, "passed": sum(r["pass"] for r in rows), "of": len(rows)}
    # 4. no result costlier than its input
    rows = []
    for p in progs:
        viol, missing = [], False
        for s in p["sizes"]:
            for ex in exs:
                r = s["opt"].get(ex, {})
                if not r.get("ok"):
                    missing = True
                    continue
                if r["cost"] > r["cost_before"] * (1 + REL_TOL):
                    viol.append(f"{_szs(s['sizes'])} {ex}: {r['cost']:.6g} > {r['cost_before']:.6g}")
        rows.append({"program": p["name"], "violations": viol, "incomplete": missing,
                     "pass": not viol and not missing,
                     "why": "; ".join(viol) if viol else ("a result is missing" if missing else "")})
    t["not_costlier"] = {"target": "no result costlier than its input",
                         "rows": rows, "passed": sum(r["pass"] for r in rows), "of": len(rows)}
    # 5. Spearman over (model cost, measured time)
    pts = []
    for p in progs:
        for s in p["sizes"]:
            unit = s.get("unit_seconds") or res["meta"].get("unit_seconds") or 1.66e-9
            for m, r in s["time"].items():
                if r.get("ok") and r.get("cost") is not None and not r.get("same_as") \
                        and r.get("median") is not None:
                    pts.append({"program": p["name"], "sizes": s["sizes"], "method": m,
                                "cost": r["cost"], "predicted": r["cost"] * unit, "seconds": r["median"]})
    rho = _spearman([q["cost"] for q in pts], [q["seconds"] for q in pts])
    small = [q for q in pts if q["predicted"] <= SMALL_SECONDS]
    rho_s = _spearman([q["cost"] for q in small], [q["seconds"] for q in small])
    t["spearman"] = {"target": f">= {SPEARMAN_TARGET} over all points", "value": rho, "points": len(pts),
                     "pass": rho is not None and rho >= SPEARMAN_TARGET}
    t["spearman_small"] = {"target": f">= {SPEARMAN_SMALL_TARGET} over points of small cost (predicted "
                                     f"<= {SMALL_SECONDS * 1e6:g} µs a call)",
                           "value": rho_s, "points": len(small),
                           "pass": rho_s is not None and rho_s >= SPEARMAN_SMALL_TARGET}
    by = {}
    for q in pts:
        by.setdefault("optimised" if q["method"] in EXTRACTORS else q["method"], []).append(q)
    t["spearman"]["by_method"] = {k: _spearman([q["cost"] for q in v], [q["seconds"] for q in v])
                                  for k, v in by.items()}
    t["spearman"]["note"] = "by kind of program: " + ", ".join(
        f"{k} {_f(v, '.2f')} ({len(by[k])})" for k, v in t["spearman"]["by_method"].items())
    t["spearman_small"]["note"] = ("there the fixed cost per call dominates; by kind: " + ", ".join(
        f"{k} {len([q for q in small if (q['method'] in EXTRACTORS and k == 'optimised') or q['method'] == k])}"
        for k in ("primal", "optimised", "unopt")))
    t["points"] = pts
    # 6. ratios (reported)
    rows = []
    for p in progs:
        for s in p["sizes"]:
            tt = s["time"]
            fn, hw = tt.get("numpy-fn", {}), tt.get("numpy-grad", {})
            row = {"program": p["name"], "sizes": s["sizes"]}
            for m in (*exs, "unopt", "primal"):
                r = tt.get(m, {})
                if r.get("ok") and fn.get("ok") and hw.get("ok"):
                    row[m] = {"seconds": r["median"], "over_fn": r["median"] / fn["median"],
                              "over_hand": r["median"] / hw["median"], "error": r.get("error")}
            row["numpy_fn"] = fn.get("median") if fn.get("ok") else None
            row["numpy_grad"] = hw.get("median") if hw.get("ok") else None
            rows.append(row)
    t["ratios"] = {"target": "reported: derivative time / function time and / hand-written derivative",
                   "rows": rows}
    last = {}
    for r in rows:
        last[r["program"]] = r
    over = sorted(r[DEFAULT_EXTRACTOR]["over_hand"] for r in last.values() if DEFAULT_EXTRACTOR in r)
    if over:
        t["ratios"]["summary"] = (f"largest size, {DEFAULT_EXTRACTOR} (the default) ÷ hand over {len(over)} programs timed: median "
                                  f"{over[len(over) // 2]:.2f}, best {over[0]:.2f}, worst {over[-1]:.3g}; "
                                  f"within 2x: {sum(v <= 2 for v in over)}")
    # wrong results
    wrong = []
    for p in progs:
        for s in p["sizes"]:
            for m, r in s["time"].items():
                if r.get("ok") and r.get("error") is not None and r["error"] > 1e-6 and not r.get("same_as"):
                    wrong.append(f"{p['name']} {_szs(s['sizes'])} {m}: max rel error {r['error']:.3g}")
    t["wrong_results"] = wrong
    return t


def _szs(sz: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sz.items())


# ======================================================================================
# Markdown
# ======================================================================================
def _pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _f(v, spec=".3g") -> str:
    return "-" if v is None else format(v, spec)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_docs_section(res: dict, docs: Path = DOCS) -> None:
    """The targets of this run as the ``corpus-targets`` section of docs/benchmarks.md (only
    that section is written; the hand-written text around it stays)."""
    from eqsat_ad.bench.report import write_section
    lines = markdown(res).splitlines()
    a, b = lines.index("## Targets"), lines.index("## Per program")
    m = res["meta"]
    head = (f"Full run of {m['date']} measuring {m.get('code', '?')} on {m.get('cpu', '?')} "
            f"({m.get('cpu_count')} CPUs), wall time {m.get('wall_seconds', 0):.0f} s; "
            "`benchmarks/results/corpus.md` has every number.")
    write_section(docs, "corpus-targets", "\n".join([head, ""] + lines[a + 2:b]).strip(),
                  "benchmarks/bench_corpus.py")


def markdown(res: dict) -> str:
    t = res.get("targets") or evaluate(res)
    m = res["meta"]
    exs = res["config"]["extractors"]
    code = m.get("code") or (f"the working tree at commit `{m.get('commit', '?')}` (`{m.get('commit_end', '?')}` "
                             f"at the end; {m.get('dirty_paths', '?')} paths modified at the start)")
    L = ["# Realistic corpus benchmark", "",
         f"Run of {m['date']} measuring {code}, {m.get('cpu', '?')}, {m.get('cpu_count')} CPUs, python {m['python']}, "
         f"numpy {m['numpy']}, egglog {m.get('egglog', '?')}.  Mode: {'quick' if res['config']['quick'] else 'full'}; "
         f"optimisation timeout {res['config']['timeout']:.0f} s and memory limit {res['config']['memory']:g} GiB "
         f"per run; extractors {', '.join(exs)}; wall time {m.get('wall_seconds', 0):.0f} s"
         + (f"; load average {m['loadavg'][0]} at the start, {(m.get('loadavg_end') or ['?'])[0]} at the end "
            f"(other work on the machine slows every step)" if m.get("loadavg") else "") + ".  "
         "Programs: `eqsat_ad/bench/corpus.py`; script: `benchmarks/bench_corpus.py`.  Timing workers keep "
         "freed memory in the process (`protocol.keep_freed_memory`: no page faults per call that depend on "
         "what ran before).", "",
         "## Targets", "",
         "| target | result | measured | failing programs |", "|---|---|---|---|"]
    for key in ("optimise_seconds", "program_size", "extractor_order", "not_costlier"):
        x = t[key]
        failing = "; ".join(f"{r['program']}: {r.get('why', '')}" for r in x["rows"] if not r["pass"])
        L.append(f"| {x['target']} | **{_pf(x['passed'] == x['of'])}** | {x['passed']}/{x['of']} programs pass "
                 f"| {failing or '-'} |")
    for key in ("spearman", "spearman_small"):
        x = t[key]
        L.append(f"| Spearman(model cost, time) {x['target']} | **{_pf(x['pass'])}** | "
                 f"{_f(x['value'], '.3f')} over {x['points']} points | {x.get('note', '')} |")
    L.append(f"| {t['ratios']['target']} | reported | see the tables below | {t['ratios'].get('summary', '')} |")
    L.append(f"| derivative values (max rel. error <= 1e-6 vs hand-written) | "
             f"**{_pf(not t['wrong_results'])}** | {len(t['wrong_results'])} wrong | "
             f"{'; '.join(t['wrong_results'])[:500] or '-'} |")
    L += ["", "## Per program", "",
          "Optimisation at the largest size run (default schedule and limits).  *opt s*: one "
          "`ea.optimize` call; *nodes*/*chars*: input -> extracted (tree extractor); costs: the "
          "model's DAG measure, input -> result for each extractor.", "",
          "| program | derivative | sizes | opt s tree / dag / ilp | stop | e-nodes | nodes in -> out (x) | "
          "chars in -> out (x) | cost input | cost tree | cost dag | cost ilp |",
          "|---|---|---|---|---|---:|---|---|---:|---:|---:|---:|"]
    for p in res["programs"]:
        s = p["sizes"][-1]
        o = s["opt"]
        tr = o.get("tree", {})

        def secs(ex):
            r = o.get(ex, {})
            return f"{r['seconds']:.2f}" if r.get("ok") else (r.get("status") or "-")
        base = next((r for r in o.values() if r.get("input_nodes")), {})
        nodes = (f"{tr['input_nodes']} -> {tr['output_nodes']} ({tr['output_nodes'] / tr['input_nodes']:.2f})"
                 if tr.get("ok") else f"{base.get('input_nodes', '-')} -> -")
        chars = (f"{tr['input_chars']} -> {tr['output_chars']} ({tr['output_chars'] / tr['input_chars']:.2f})"
                 if tr.get("ok") else f"{base.get('input_chars', '-')} -> -")
        cb = next((r["cost_before"] for r in o.values() if r.get("ok")), None)
        L.append(f"| {p['name']} | {p['derivative']} {p['wrt']} | {_szs(s['sizes'])} | "
                 f"{' / '.join(secs(ex) for ex in exs)} | {tr.get('stop_reason', '-')} | "
                 f"{tr.get('enodes', '-')} | {nodes} | {chars} | {_f(cb, '.4g')} | "
                 + " | ".join(_f(o.get(ex, {}).get('cost') if o.get(ex, {}).get('ok') else None, '.4g')
                              for ex in ("tree", "dag", "ilp")) + " |")
    L += ["", f"### Optimise seconds ({DEFAULT_EXTRACTOR}, the default extractor) at every size", "",
          "| program | " + " | ".join(f"size {i + 1}" for i in range(3)) + " |", "|---|---|---|---|"]
    for p in res["programs"]:
        cells = []
        for s in p["sizes"]:
            r = s["opt"].get(DEFAULT_EXTRACTOR, {})
            cells.append(f"{_szs(s['sizes'])}: " + (f"{r['seconds']:.2f} s" if r.get("ok")
                                                    else (r.get("status") or "-")))
        L.append(f"| {p['name']} | " + " | ".join(cells + [""] * (3 - len(cells))) + " |")
    L += ["", "## Time per call, side by side", "",
          "*fn*: the plain NumPy function; *hand*: the hand-written NumPy derivative; *primal*: the "
          "compiled primal program; *tree*/*dag*/*ilp*: the compiled optimised derivative; *unopt*: the "
          "compiled unoptimised derivative (run only where the model predicts under "
          f"{res['config']['unopt_seconds']:g} s).  Ratios: derivative time ÷ fn and ÷ hand.", "",
          "| program | sizes | fn | hand | primal | tree | tree ÷ fn | tree ÷ hand | dag ÷ hand | ilp ÷ hand | "
          "unopt | unopt ÷ hand |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in res["programs"]:
        for s in p["sizes"]:
            tt = s["time"]

            def med(k):
                r = tt.get(k, {})
                return r["median"] if r.get("ok") else None

            def ratio(k, base):
                a, b = med(k), med(base)
                return f"{a / b:.2f}" if a is not None and b else "-"
            un = tt.get("unopt", {})
            un_cell = _fmt_t(med("unopt")) if un.get("ok") else ("skipped" if un.get("skipped") else
                                                               (un.get("error_text", "-")[:40] if un else "-"))
            tr = tt.get("tree")
            if tr is None:
                tree_cell = "opt " + (s["opt"].get("tree", {}).get("status") or "-")
            elif tr.get("ok"):
                tree_cell = _fmt_t(tr["median"])
            elif tr.get("skipped"):
                tree_cell = "not run (predicted " + _fmt_t(tr["cost"] * (s.get("unit_seconds") or 1.66e-9)) + ")"
            else:
                tree_cell = (tr.get("error_text") or "error").split(":")[0]
            L.append(f"| {p['name']} | {_szs(s['sizes'])} | {_fmt_t(med('numpy-fn'))} | "
                     f"{_fmt_t(med('numpy-grad'))} | {_fmt_t(med('primal'))} | {tree_cell} | "
                     f"{ratio('tree', 'numpy-fn')} | {ratio('tree', 'numpy-grad')} | {ratio('dag', 'numpy-grad')} | "
                     f"{ratio('ilp', 'numpy-grad')} | {un_cell} | {ratio('unopt', 'numpy-grad')} |")
    L += ["", "## Failures", ""]
    fails = []
    for p in res["programs"]:
        for s in p["sizes"]:
            for ex, r in s["opt"].items():
                if not r.get("ok") and r.get("status") != "skipped":
                    fails.append(f"- {p['name']} {_szs(s['sizes'])} optimise/{ex}: {r.get('status')} — "
                                 f"{(r.get('error') or '')[:300]}")
            for mth, r in s["time"].items():
                if not r.get("ok") and not r.get("skipped") and not r.get("same_as"):
                    fails.append(f"- {p['name']} {_szs(s['sizes'])} time/{mth}: {(r.get('error_text') or '')[:300]}")
            if s.get("time_status", "ok") != "ok":
                fails.append(f"- {p['name']} {_szs(s['sizes'])} timing run: {s['time_status']} "
                             f"{s.get('time_error', '')[:200]}")
    fails += [f"- wrong value: {w}" for w in t["wrong_results"]]
    for key in ("extractor_order", "not_costlier"):
        for r in t[key]["rows"]:
            for v in r["violations"]:
                fails.append(f"- {key}: {r['program']} {v}")
    L += fails or ["none"]
    L.append("")
    return "\n".join(L)


# ======================================================================================
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one size per program, short timeouts, few repeats")
    ap.add_argument("--programs", help="comma-separated corpus names (default: all)")
    ap.add_argument("--extractors", default=",".join(EXTRACTORS))
    ap.add_argument("--timeout", type=float, default=None, help="seconds per optimisation run (120; quick 60)")
    ap.add_argument("--time-timeout", type=float, default=None, help="seconds per timing run (600; quick 180)")
    ap.add_argument("--memory", type=float, default=6.0, help="GiB of address space per worker (0: none)")
    ap.add_argument("--unopt-seconds", type=float, default=None, help="time the unoptimised derivative "
                    "where the model predicts under this many seconds per call (0.5; quick 0.05)")
    ap.add_argument("--max-call-seconds", type=float, default=20.0, help="do not time an optimised "
                    "derivative the model predicts to run longer than this per call")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/corpus.json; "
                    "quick: corpus_quick.json)")
    ap.add_argument("--render", metavar="JSON", help="only write the Markdown of an existing JSON")
    ap.add_argument("--docs", action="store_true", help="with --render: also write the targets "
                    "section of docs/benchmarks.md (a complete full run writes it anyway)")
    ap.add_argument("--code", choices=("head", "worktree"), default="head",
                    help="measure the committed HEAD (a snapshot made at the start: default) or the "
                    "working tree as it is while the run goes")
    ap.add_argument("--code-dir", help=argparse.SUPPRESS)
    ap.add_argument("--worker-opt", nargs=3, metavar=("NAME", "EXTRACTOR", "SIZES"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-time", nargs=3, metavar=("NAME", "SIZES", "SPEC"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker_opt or a.worker_time:
        _limit_memory(a.memory)
        if a.worker_opt:
            worker_opt(a.worker_opt[0], a.worker_opt[1], json.loads(a.worker_opt[2]))
        else:
            from eqsat_ad.bench.protocol import keep_freed_memory
            keep_freed_memory()      # no page faults per call that depend on what ran before
            worker_time(a.worker_time[0], json.loads(a.worker_time[1]), a.worker_time[2])
        return 0
    if a.render:
        res = json.loads(Path(a.render).read_text())
        res["targets"] = evaluate(res)
        Path(a.render).with_suffix(".md").write_text(markdown(res))
        print(Path(a.render).with_suffix(".md").read_text())
        if a.docs:
            write_docs_section(res)
        return 0
    a.timeout = a.timeout or (60.0 if a.quick else 120.0)
    a.time_timeout = a.time_timeout or (180.0 if a.quick else 600.0)
    a.unopt_seconds = a.unopt_seconds if a.unopt_seconds is not None else (0.05 if a.quick else 0.5)
    a.repeats, a.target, a.budget = (3, 0.01, 1.0) if a.quick else (7, 0.05, 5.0)
    a.extractors = tuple(x for x in a.extractors.split(",") if x)
    names = a.programs.split(",") if a.programs else C.NAMES
    out = Path(a.out) if a.out else RESULTS / ("corpus_quick.json" if a.quick else "corpus.json")
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    global CODE_DIR
    measured = "working tree"
    if a.code == "head":
        CODE_DIR, commit = snapshot_head()
        measured = f"commit {commit} (snapshot of HEAD)"
    res = {"meta": {**machine(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "code": measured},
           "config": {"quick": a.quick, "timeout": a.timeout, "time_timeout": a.time_timeout,
                      "memory": a.memory, "unopt_seconds": a.unopt_seconds, "repeats": a.repeats,
                      "target": a.target, "budget": a.budget, "extractors": list(a.extractors),
                      "max_call_seconds": a.max_call_seconds, "small_seconds": SMALL_SECONDS},
           "programs": []}

    def log(msg):
        print(msg, flush=True)
    for name in names:
        e = C.get(name)
        log(f"[{time.time() - t0:6.0f} s] {e.label}")
        res["programs"].append(bench_program(e, a, log))
        res["meta"]["wall_seconds"] = time.time() - t0
        end = machine()
        res["meta"]["commit_end"] = end.get("commit")
        res["meta"]["loadavg_end"] = end.get("loadavg")
        if CODE_DIR and not Path(CODE_DIR, "eqsat_ad").is_dir():      # pragma: no cover
            raise SystemExit("the code snapshot disappeared")
        res["targets"] = evaluate(res)
        out.write_text(json.dumps(_jsonable(res), indent=1))
        out.with_suffix(".md").write_text(markdown(res))
    md = markdown(res)
    print(md)
    if not a.programs and not a.quick and a.out is None:       # a complete full run: the docs' table
        write_docs_section(res)
    if CODE_DIR:
        import shutil
        shutil.rmtree(CODE_DIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
