"""Schedules side by side on the realistic corpus: does the default schedule earn its keep?

For every corpus program (``eqsat_ad/bench/corpus.py``) at one of its benchmark sizes, the
derivative program is optimised under each schedule with the same limits, one subprocess per
call (a wall-clock timeout and a memory cap), and the model cost of the result, the e-graph
size, the seconds of the whole ``ea.optimize`` call and the stop reason are recorded:

* ``default`` -- the shipped phase-ordered schedule (``eqsat-ad schedule show``);
* ``all`` -- every loaded ruleset together, to saturation (``--schedule all``);
* ``reversed`` -- the default's phases in reverse order (is the order what matters?);
* ``no-algebra`` -- the default without the phases the guided algebra and ``comm`` run in
  (the default before issue 11).

Results go to ``benchmarks/results/strategies.{json,md}``; ``--docs`` writes the table into
docs/strategies.md between the ``strategies-table`` markers.

    nice python benchmarks/bench_strategies.py                      # every program, middle size
    python benchmarks/bench_strategies.py --programs mlp2,normalize --size 0
    python benchmarks/bench_strategies.py --render benchmarks/results/strategies.json --docs
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eqsat_ad.bench import corpus as C  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "strategies.md"
SCHEDULES = ("default", "all", "reversed", "no-algebra")
REL_TOL = 1e-6          # costs closer than this (relative) are equal (summation order)


def strategy_of(name: str):
    """The strategy a schedule name stands for (``all`` is resolved by ``optimize`` itself)."""
    from eqsat_ad.strategy.combinators import phases_of, seq
    from eqsat_ad.strategy.defaults import default_schedule
    if name in ("default", "all"):
        return None if name == "default" else "all"
    phases = phases_of(default_schedule())
    if name == "reversed":
        return seq(*reversed(phases))
    if name == "no-algebra":
        from eqsat_ad.strategy.combinators import Limits, Phase, rulesets_used, run, saturate
        from eqsat_ad.strategy.defaults import shipped_placements
        placed = set(shipped_placements())
        out = []
        for ph in phases:
            rs = [r for r in rulesets_used(ph.body) if r not in placed or r in ("extreme", "index")]
            if ph.name in ("algebra", "commute") or not rs:
                continue
            out.append(Phase(ph.name, saturate(run(*rs)), Limits(iterations=ph.limits.iterations)))
        return seq(*out)
    raise SystemExit(f"unknown schedule {name!r}")


def derivative_mode(e) -> str:
    """``grad``'s mode for the derivative the schedules are compared on: its default, except
    the dual-number (forward) derivative where the default is reverse mode over loop nests (a
    matrix parameter of a fold-free program: a constant times the function before any
    rewriting, where every schedule finds the same program) -- the rule schedules exist to
    make the dual-number ones fast."""
    from eqsat_ad.ad.api import _by_loopnest
    if e.derivative in ("grad", "hvp") and _by_loopnest(C.program(e), e.wrt) is not None:
        return "forward"
    return "auto"


def worker(name: str, schedule: str, sizes: dict, limits: dict) -> None:
    import eqsat_ad as ea
    e = C.get(name)
    g = C.derivative_program(e, mode=derivative_mode(e))
    t0 = time.perf_counter()
    res = ea.optimize(g, sizes=sizes, schedule=strategy_of(schedule), limits=limits or None)
    secs = time.perf_counter() - t0
    r = res.report
    print(json.dumps({"ok": True, "cost": res.cost, "cost_before": res.cost_before, "enodes": r.enodes,
                      "seconds": secs, "stop_reason": r.stop_reason, "iterations": r.iterations,
                      "check": r.check,
                      "phases": [[p.name, p.iterations, p.enodes_after, round(p.seconds, 3), p.stop_reason]
                                 for p in r.phases]}))


def run_one(name: str, schedule: str, sizes: dict, limits: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, schedule, json.dumps(sizes), json.dumps(limits)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timeout after {timeout:.0f} s", "seconds": time.perf_counter() - t0}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        return {"ok": False, "error": (p.stderr.strip().splitlines() or ["no output"])[-1][:300],
                "seconds": time.perf_counter() - t0}
    return json.loads(lines[-1])


def compare(rows: list[dict]) -> dict:
    """Default vs each other schedule: programs where it is strictly cheaper, equal, costlier."""
    out = {}
    for s in SCHEDULES[1:]:
        better, worse, equal = [], [], []
        for r in rows:
            d, o = r["results"].get("default", {}), r["results"].get(s, {})
            if not d.get("ok"):
                worse.append(r["label"])
                continue
            if not o.get("ok"):
                better.append(r["label"])
                continue
            tol = REL_TOL * max(abs(d["cost"]), abs(o["cost"]), 1.0)
            (better if d["cost"] < o["cost"] - tol else worse if d["cost"] > o["cost"] + tol else equal).append(r["label"])
        out[s] = {"better": better, "worse": worse, "equal": equal}
    return out


def _ratio(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{xs[len(xs) // 2]:.2g}" if xs else "—"


def render(data: dict) -> str:
    rows, cmp_ = data["rows"], data["compare"]
    L = [f"{len(rows)} corpus programs at their middle benchmark size (size index {data['size_index']}), "
         f"limits {data['limits'] or 'the defaults'}; measured {data['date']} ({data['commit']}). "
         "Cost: the model cost of the optimised derivative (DAG measure, add-units); e-nodes at the end of "
         "the run; seconds of the whole `ea.optimize` call; stop reason of the run.", ""]
    for s in SCHEDULES[1:]:
        c = cmp_[s]
        L.append(f"- default vs `{s}`: cheaper on {len(c['better'])}, equal on {len(c['equal'])}, "
                 f"costlier on {len(c['worse'])}" + (f" ({', '.join(c['worse'])})" if c["worse"] else ""))
    en = {s: [] for s in SCHEDULES[1:]}
    tm = {s: [] for s in SCHEDULES[1:]}
    for r in rows:
        d = r["results"].get("default", {})
        for s in SCHEDULES[1:]:
            o = r["results"].get(s, {})
            if d.get("ok") and o.get("ok") and o["enodes"]:
                en[s].append(d["enodes"] / o["enodes"])
                tm[s].append(d["seconds"] / o["seconds"])
    L.append("- median e-nodes default ÷ other: " + ", ".join(f"`{s}` {_ratio(en[s])}" for s in SCHEDULES[1:])
             + "; median seconds default ÷ other: " + ", ".join(f"`{s}` {_ratio(tm[s])}" for s in SCHEDULES[1:]))
    # the "half the e-nodes and time" target, split by how saturation ended: where it hit a limit,
    # and where it saturated (small e-graphs: the run is a small part of the call, the rest --
    # loading the rules, extraction, the numeric check -- is the same for every schedule)
    groups = {"hit a limit": [], "saturated": []}
    for r in rows:
        d, o = r["results"].get("default", {}), r["results"].get("all", {})
        if d.get("ok") and o.get("ok") and o["enodes"]:
            groups["saturated" if o["stop_reason"] == "saturated" else "hit a limit"].append((d, o))
    for g, pairs in groups.items():
        if not pairs:
            continue
        half = sum(d["enodes"] <= 0.5 * o["enodes"] and d["seconds"] <= 0.5 * o["seconds"] for d, o in pairs)
        run_s = [sum(p[3] for p in d.get("phases", [])) / max(1e-9, sum(p[3] for p in o.get("phases", [])))
                 for d, o in pairs]
        L.append(f"- where `all` {g} ({len(pairs)} programs): median e-nodes default ÷ `all` "
                 f"{_ratio([d['enodes'] / o['enodes'] for d, o in pairs])}, seconds "
                 f"{_ratio([d['seconds'] / o['seconds'] for d, o in pairs])} (the e-graph run alone "
                 f"{_ratio(run_s)}); at most half the e-nodes and the time on {half}")
    L += ["", "| program | " + " | ".join(f"{s} cost | e-nodes | s | stop" for s in SCHEDULES) + " |",
          "|---|" + "---:|---:|---:|---|" * len(SCHEDULES)]
    for r in rows:
        cells = []
        best = min((v["cost"] for v in r["results"].values() if v.get("ok")), default=None)
        for s in SCHEDULES:
            v = r["results"].get(s, {})
            if not v.get("ok"):
                cells.append(f"failed: {v.get('error', '?')[:40]} | | |")
                continue
            c = f"{v['cost']:.4g}"
            if best is not None and v["cost"] <= best * (1 + REL_TOL):
                c = f"**{c}**"
            cells.append(f"{c} | {v['enodes']} | {v['seconds']:.2f} | {v['stop_reason']}")
        L.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("Bold: the cheapest cost of the row.")
    return "\n".join(L) + "\n"


def write_docs(md: str) -> None:
    from eqsat_ad.bench.report import write_section
    write_section(DOCS, "strategies-table", md, "benchmarks/bench_strategies.py --docs")
    print(f"wrote the table into {DOCS.relative_to(ROOT)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", help="comma-separated corpus names (default: all)")
    ap.add_argument("--size", type=int, default=1, help="index into each program's bench sizes (default 1)")
    ap.add_argument("--limit", action="append", default=[], metavar="KEY=VALUE",
                    help="optimize limits for every schedule (iterations, nodes, seconds)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per optimize call (subprocess)")
    ap.add_argument("--out", default=str(RESULTS / "strategies.json"))
    ap.add_argument("--render", metavar="JSON", help="only write the Markdown of an existing JSON")
    ap.add_argument("--docs", action="store_true", help="also write the table into docs/strategies.md")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker[0], a.worker[1], json.loads(a.worker[2]), json.loads(a.worker[3]))
        return 0
    if a.render:
        data = json.loads(Path(a.render).read_text())
    else:
        limits = {}
        for kv in a.limit:
            k, _, v = kv.partition("=")
            limits[k] = float(v) if k == "seconds" else int(v)
        names = a.programs.split(",") if a.programs else [e.name for e in C.CORPUS]
        # the commit the run starts from (others may commit while it runs)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "eqsat_ad"], capture_output=True, text=True,
                               cwd=ROOT).stdout.strip()
        rows = []
        for nm in names:
            e = C.get(nm)
            sizes = e.bench_sizes[min(a.size, len(e.bench_sizes) - 1)]
            res = {}
            for s in SCHEDULES:
                res[s] = run_one(nm, s, sizes, limits, a.timeout)
                v = res[s]
                print(f"{e.label:<28} {s:<11} " + (f"cost {v['cost']:<12.6g} e-nodes {v['enodes']:<7} "
                                                    f"{v['seconds']:6.2f} s  {v['stop_reason']}"
                                                    if v.get("ok") else f"FAILED {v.get('error')}"), flush=True)
            rows.append({"label": e.label, "sizes": sizes, "results": res})
        data = {"date": _dt.date.today().isoformat(), "commit": commit + (" + uncommitted changes" if dirty else ""),
                "size_index": a.size, "limits": limits, "rows": rows}
        data["compare"] = compare(rows)
        Path(a.out).write_text(json.dumps(data, indent=1))
    data["compare"] = compare(data["rows"])
    md = render(data)
    out_md = Path(a.render or a.out).with_suffix(".md")
    out_md.write_text("# Schedules on the corpus\n\n" + md)
    print(md)
    if a.docs:
        write_docs(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
