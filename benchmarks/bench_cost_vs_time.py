"""Does the cost model rank programs the way NumPy runs them?

For the suite programs (the derivative as produced by AD -- unoptimised -- and the
programs extracted by the tree, DAG and ILP extractors) at several sizes, compare the
model's cost (``CostModel.dag_cost``: what the backend computes once, paid once) with the
measured time of ``ea.compile(program)`` (median of repeats, single-threaded) and report
the Spearman rank correlation (target >= 0.9).  Writes
``benchmarks/results/cost_vs_time.json`` and prints a table.

    python benchmarks/bench_cost_vs_time.py            # n = 10 ... 10^4
    python benchmarks/bench_cost_vs_time.py --quick    # fewer sizes and repeats
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import eqsat_ad as ea  # noqa: E402
from eqsat_ad.bench import specs as _bench_specs  # noqa: E402
from eqsat_ad.cost.model import default_cost_model  # noqa: E402

# the suite programs of the benchmarks (one definition: eqsat_ad/bench/specs.py)
SUITE = {sp.name: (sp.text, sp.wrt, sp.kind) for sp in _bench_specs.SUITE}
SIZES = (10, 30, 100, 300, 1000, 3000, 10000)
MAX_PREDICTED_SECONDS = 1.0      # skip a (program, n) the model predicts to run longer


def inputs_for(prog, n: int, rng) -> dict:
    from eqsat_ad.lang.types import ArrayT
    out = {}
    for p in prog.params:
        t = p.type
        shape = []
        while isinstance(t, ArrayT):
            shape.append(n)
            t = t.elem
        out[p.name] = rng.uniform(-1.0, 1.0, size=shape) if shape else float(rng.uniform(-1, 1))
    return out


def measure(fn, inputs: dict, repeat: int, budget: float = 0.3) -> float:
    """Median seconds per call; each sample loops enough calls to last ~budget/repeat."""
    fn(**inputs)
    t0 = time.perf_counter()
    fn(**inputs)
    one = time.perf_counter() - t0
    k = max(1, int(budget / repeat / max(one, 1e-7)))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(k):
            fn(**inputs)
        samples.append((time.perf_counter() - t0) / k)
    return statistics.median(samples)


def run(sizes=SIZES, repeat: int = 5, extractors=("tree", "dag", "ilp"), names=None, out=None,
        verbose: bool = True, costs: str | None = None) -> dict:
    from scipy.stats import spearmanr
    import dataclasses
    from eqsat_ad.cost.model import CostModel
    model = CostModel.from_json(costs) if costs else default_cost_model()
    # the same model without per-call costs
    model0 = dataclasses.replace(model, overhead=0.0, scalar_overhead=0.0, call_overhead={})
    unit = float(model.meta.get("unit_seconds", 1e-9))
    rng = np.random.default_rng(0)
    rows = []
    extraction = []
    for name in names or SUITE:
        text, wrt, kind = SUITE[name]
        d = getattr(ea, kind)(ea.parse(text), wrt)
        variants = {"unoptimised": d}
        for ex in extractors:
            t0 = time.perf_counter()
            res = ea.optimize(d, sizes={"n": 1000, "m": 1000}, extractor=ex, check=True, cost_model=model)
            info = res.report.extraction
            extraction.append({"program": name, "extractor": ex, "seconds": info.get("seconds"),
                               "cost": info.get("cost", res.cost), "tree_cost": info.get("tree_cost"),
                               "egglog_cost": info.get("egglog_cost"), "optimize_seconds": time.perf_counter() - t0,
                               "fallback": info.get("fallback"), "lets": info.get("lets"),
                               "dag_cost_of_program": model.dag_cost(res.program, {"n": 1000, "m": 1000})})
            variants[ex] = res.program
        sources = {}
        for vname, prog in variants.items():
            fn = ea.compile(prog)
            # variants that compile to the same NumPy code are one program: one point
            if fn.source in sources:
                for r in rows:
                    if r["program"] == name and r["variant"] == sources[fn.source]:
                        r.setdefault("same_as", []).append(vname)
                continue
            sources[fn.source] = vname
            for n in sizes:
                sz = {"n": n, "m": n}
                cost = model.dag_cost(prog, sz)
                tree = model.program_cost(prog, sz)
                if cost * unit > MAX_PREDICTED_SECONDS:
                    continue
                try:
                    t = measure(fn, inputs_for(prog, n, rng), repeat)
                except ea.ResourceLimitError as e:
                    if verbose:
                        print(f"{name:11s} {vname:12s} n={n:6d}  skipped: {str(e)[:100]}")
                    continue
                rows.append({"program": name, "variant": vname, "n": n, "cost": cost, "tree_cost": tree,
                             "cost_no_overhead": model0.dag_cost(prog, sz),
                             "seconds": t, "predicted_seconds": cost * unit})
                if verbose:
                    print(f"{name:11s} {vname:12s} n={n:6d}  cost {cost:12.4g}  tree {tree:12.4g}  "
                          f"time {t * 1e6:12.1f} us  predicted {cost * unit * 1e6:12.1f} us", flush=True)
    costs = [r["cost"] for r in rows]
    times = [r["seconds"] for r in rows]
    rho = float(spearmanr(costs, times).statistic)
    rho_tree = float(spearmanr([r["tree_cost"] for r in rows], times).statistic)
    rho0 = float(spearmanr([r["cost_no_overhead"] for r in rows], times).statistic)
    per_program = {}
    for name in {r["program"] for r in rows}:
        sub = [r for r in rows if r["program"] == name]
        if len(sub) > 2:
            per_program[name] = float(spearmanr([r["cost"] for r in sub], [r["seconds"] for r in sub]).statistic)
    per_n = {}
    for n in sorted({r["n"] for r in rows}):
        sub = [r for r in rows if r["n"] == n]
        if len(sub) > 2:
            per_n[str(n)] = float(spearmanr([r["cost"] for r in sub], [r["seconds"] for r in sub]).statistic)
    result = {"spearman": rho, "spearman_tree_cost": rho_tree, "spearman_without_overhead": rho0,
              "points": len(rows),
              "spearman_per_program": per_program, "spearman_per_size": per_n,
              "model": {"costs": costs or "eqsat_ad/cost/opcosts.json", "overhead": model.overhead,
                        "unit_seconds": unit,
                        "machine": model.meta.get("machine"), "calibrated": model.meta.get("date")},
              "extraction": extraction, "rows": rows}
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1) + "\n")
    if verbose:
        print(f"\nSpearman(cost, time) = {rho:.4f} over {len(rows)} points "
              f"(tree cost: {rho_tree:.4f}; without the per-call overhead: {rho0:.4f})")
        print("per program:", {k: round(v, 3) for k, v in sorted(per_program.items())})
        print("per size:   ", {k: round(v, 3) for k, v in per_n.items()})
        print("\nextraction (sizes n=m=1000):")
        print(f"{'program':11s} {'extractor':9s} {'cost':>12s} {'tree cost':>12s} {'seconds':>8s}  fallback")
        for e in extraction:
            print(f"{e['program']:11s} {e['extractor']:9s} {e['dag_cost_of_program']:12.5g} "
                  f"{(e['tree_cost'] or float('nan')):12.5g} {e['seconds']:8.3f}  {e['fallback'] or ''}")
    return result


def corpus_points(corpus_json: str, model) -> list[dict]:
    """The timed points of a ``bench_corpus.py`` run (``corpus.json``: programs, sizes, the
    measured median seconds per call of each compiled variant), priced again with ``model``:
    the same programs and times, so two cost tables are compared on the same measurements
    without timing anything again.  ``primal`` and ``unopt`` are rebuilt from the corpus
    (``eqsat_ad/bench/corpus.py``), the optimised variants parsed from the recorded text."""
    from eqsat_ad.bench import corpus as C
    data = json.loads(Path(corpus_json).read_text())
    unit = float(model.meta.get("unit_seconds", 1e-9))
    pts = []
    for p in data["programs"]:
        e = C.get(p["name"])
        for s in p["sizes"]:
            for m, r in s["time"].items():
                if not (r.get("ok") and r.get("cost") is not None and not r.get("same_as")
                        and r.get("median") is not None):
                    continue
                if m == "primal":
                    prog = C.program(e)
                elif m == "unopt":
                    prog = C.derivative_program(e)
                else:
                    prog = ea.parse(s["opt"][m]["text"])
                cost = model.dag_cost(prog, s["sizes"])
                pts.append({"program": p["name"], "sizes": s["sizes"], "method": m, "cost": cost,
                            "predicted": cost * unit, "recorded_cost": r["cost"],
                            "recorded_predicted": r["cost"] * (s.get("unit_seconds") or unit),
                            "seconds": r["median"]})
    return pts


def corpus_fidelity(corpus_json: str, costs: str | None = None, small_seconds: float = 2e-5,
                    verbose: bool = True) -> dict:
    """Spearman(model cost, measured time) over the points of a corpus run (see
    :func:`corpus_points`), over all of them and over the points of small cost: predicted
    (this model's cost x its add time) at most ``small_seconds`` a call, and, for a
    comparison on the same points whatever the table, recorded so in the run itself."""
    from scipy.stats import spearmanr
    from eqsat_ad.cost.model import CostModel
    model = CostModel.from_json(costs) if costs else default_cost_model()
    pts = corpus_points(corpus_json, model)

    def rho(sub):
        return float(spearmanr([q["cost"] for q in sub], [q["seconds"] for q in sub]).statistic) \
            if len(sub) > 2 else None
    small = [q for q in pts if q["predicted"] <= small_seconds]
    small_rec = [q for q in pts if q["recorded_predicted"] <= small_seconds]
    out = {"costs": costs or "eqsat_ad/cost/opcosts.json", "points": len(pts), "spearman": rho(pts),
           "small_points": len(small), "spearman_small": rho(small),
           "small_points_as_recorded": len(small_rec), "spearman_small_as_recorded": rho(small_rec)}
    if verbose:
        print(json.dumps(out, indent=1))
        # the small points the model ranks worst: rank by cost vs rank by time
        from scipy.stats import rankdata
        if len(small) > 2:
            rc, rt = rankdata([q["cost"] for q in small]), rankdata([q["seconds"] for q in small])
            worst = sorted(range(len(small)), key=lambda k: -abs(rc[k] - rt[k]))[:15]
            print(f"{'program':20s} {'method':7s} {'sizes':28s} {'rank cost':>9s} {'rank time':>9s} "
                  f"{'predicted us':>12s} {'measured us':>11s}")
            for k in worst:
                q = small[k]
                print(f"{q['program']:20s} {q['method']:7s} {str(q['sizes'])[:28]:28s} {rc[k]:9.0f} {rt[k]:9.0f} "
                      f"{q['predicted'] * 1e6:12.2f} {q['seconds'] * 1e6:11.2f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--programs", nargs="*")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cost_vs_time.json"))
    ap.add_argument("--corpus", metavar="JSON", help="no timing: price the points of this bench_corpus.py "
                    "run again and report Spearman(cost, its measured time), all and small-cost points")
    ap.add_argument("--costs", metavar="FILE", help="the cost table to optimise and price with "
                    "(default: eqsat_ad/cost/opcosts.json)")
    args = ap.parse_args(argv)
    if args.corpus:
        corpus_fidelity(args.corpus, args.costs)
        return 0
    sizes = (10, 100, 1000, 10000) if args.quick else SIZES
    run(sizes, 3 if args.quick else args.repeat, names=args.programs, out=args.out, costs=args.costs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
