"""Limits bound the whole of ``ea.optimize``, and the input is always a candidate (issue 10,
parts 3 and 4): measurements.

Two parts, each ``ea.optimize`` call in a fresh subprocess (a hard wall-clock timeout and an
address-space cap of ``--memory`` GiB guard the machine, they are not the limits measured):

* **pathological shapes** under limits: one-line conditional programs and their higher
  derivatives, a product of powers extracted with the DAG extractor, a 9-step chain of
  dual-number lets, and an associative-commutative blow-up from a user rule file.  For each:
  the limits given, the wall time of the whole ``ea.optimize`` call (its numeric check
  included), the e-nodes the run reached against the node limit, the most one iteration
  added, the e-nodes after finishing substitutions, the stop reason, which candidate was
  returned and the peak resident memory of the subprocess;
* **never worse**: every corpus program (``eqsat_ad/bench/corpus.py``) and suite program
  (``eqsat_ad/bench/specs.py``) under the default limits, with the tree and DAG extractors:
  how often the input was returned because the extracted program cost more (or a limit left
  none), and that no result costs more than its input.

Writes ``benchmarks/results/limits.json`` and ``benchmarks/results/limits.md``.

    python benchmarks/bench_limits.py              # both parts (about 5 minutes)
    python benchmarks/bench_limits.py --quick      # the pathological shapes only
    python benchmarks/bench_limits.py --render benchmarks/results/limits.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

# -- the shapes ------------------------------------------------------------------------------
COND = "(fun ((w real)) (if (< w 0.0) (* w (exp w)) (pow (+ 1.5 (* w w)) 0.5)))"
# a one-line conditional whose second derivative blows up under the default schedule (found by
# a random search over one-line conditionals: one iteration goes from 17,852 to 269,132 e-nodes)
COND2 = ("(fun ((w real)) (+ (if (< (- (* (sin 2.0) (pow (+ 1.5 (* 2.0 1.5)) 0.5)) (/ (/ w (+ 1.5 (* w 0.5))) "
         "(+ 1.5 (* (if (< w 0.0) w 2.0) (pow (+ 1.5 (* w w)) 0.5))))) 0.0) (if (< (pow (+ 1.5 (* (- 0.5 1.5) "
         "(* 1.5 w))) 0.5) 0.0) (* (pow (+ 1.5 (* 1.5 w)) 0.5) (pow (+ 1.5 (* 2.0 w)) 0.5)) (pow (+ 1.5 (* (if "
         "(< w 0.0) w 0.5) (if (< w 0.0) 0.5 w))) 0.5)) (tanh (* (pow (+ 1.5 (* w w)) 0.5) (* w w)))) (/ (pow "
         "(+ 1.5 (* (if (< (/ 2.0 (+ 1.5 (* 0.5 1.5))) 0.0) (* w w) (if (< w 0.0) 2.0 w)) (sin (* w w)))) 0.5) "
         "(+ 1.5 (* (- (pow (+ 1.5 (* (if (< 1.5 0.0) 1.5 2.0) (sin w))) 0.5) (* (neg 2.0) (* 2.0 0.5))) (* (* "
         "(* 2.0 2.0) (* w 2.0)) (* (* 2.0 w) (/ 1.5 (+ 1.5 (* 2.0 2.0))))))))))")
POW = "(fun ((w real)) (* (pow (+ 1.5 (* w w)) 0.5) (pow (+ 1.5 (* w w)) 0.5)))"
# one line that blows up under schedule 'all' (its second derivative: 53k e-nodes in ~1 s)
POW3 = "(fun ((w real)) (* (/ (pow (+ 1.5 (* 1.5 0.5)) 0.5) (+ 1.5 (* (sin w) (- 2.0 w)))) (tanh (* w 0.5))))"


def chain_text(k: int = 9) -> str:
    binds, prev = [], "w"
    for i in range(1, k + 1):
        binds.append(f"(a{i} (* {prev} (exp (neg {prev}))))" if i % 2 else
                     f"(a{i} (pow (+ 1.5 (* {prev} {prev})) 0.5))")
        prev = f"a{i}"
    return f"(fun ((w real)) (let ({' '.join(binds)}) {prev}))"


AC_NAMES = "abcdefghijkl"


def ac_text() -> str:
    body = AC_NAMES[-1]
    for c in reversed(AC_NAMES[:-1]):
        body = f"(+ {c} {body})"
    return f"(fun ({' '.join(f'({c} real)' for c in AC_NAMES)}) {body})"


def _case(name, text, derivative, limits, schedule=None, extractor="tree", rules=(), shape=""):
    return {"name": name, "shape": shape or name, "text": text, "derivative": derivative, "limits": limits,
            "schedule": schedule, "extractor": extractor, "rules": list(rules)}


AC_RULES = [str(ROOT / "tests" / "data" / "bad" / "ac_blowup.egg")]
SHAPES = [
    _case("cond jvp, 5 s / 10k nodes", COND, "jvp", {"seconds": 5, "nodes": 10_000}, shape="cond"),
    _case("cond jvp, 1 s", COND, "jvp", {"seconds": 1}, shape="cond"),
    _case("cond jvp∘jvp∘jvp, all, 5 s / 10k", COND, "jvp3", {"seconds": 5, "nodes": 10_000}, "all", shape="cond"),
    _case("cond2 deriv∘deriv, 5 s / 10k", COND2, "deriv2", {"seconds": 5, "nodes": 10_000}, shape="cond2"),
    _case("cond2 deriv∘deriv, 1 s", COND2, "deriv2", {"seconds": 1}, shape="cond2"),
    _case("cond2 deriv∘deriv, default limits", COND2, "deriv2", {}, shape="cond2"),
    _case("pow jvp∘jvp, all, dag, 10 s", POW, "jvp2", {"seconds": 10}, "all", "dag", shape="pow"),
    _case("pow derivative, dag, 10 s", POW, "deriv", {"seconds": 10}, None, "dag", shape="pow"),
    _case("pow3 deriv∘deriv, all, dag, 10 s", POW3, "deriv2", {"seconds": 10}, "all", "dag", shape="pow3"),
    _case("pow3 deriv∘deriv, all, ilp, 10 s", POW3, "deriv2", {"seconds": 10}, "all", "ilp", shape="pow3"),
    _case("pow3 deriv∘deriv, all, 10 s / 300 MiB", POW3, "deriv2", {"seconds": 10, "memory": 300}, "all",
          shape="pow3"),
    _case("chain9 jvp, 1 s", chain_text(9), "jvp", {"seconds": 1}, shape="chain9"),
    _case("chain9 jvp, 300 nodes", chain_text(9), "jvp", {"nodes": 300}, shape="chain9"),
    _case("chain9 jvp, 10 iterations", chain_text(9), "jvp", {"iterations": 10}, shape="chain9"),
    _case("ac12 (user AC rules), 20k nodes", ac_text(), "none", {"nodes": 20_000, "seconds": 120},
          "ac", rules=AC_RULES, shape="ac12"),
    _case("ac12 (user AC rules), 2k nodes", ac_text(), "none", {"nodes": 2_000, "seconds": 120},
          "ac", rules=AC_RULES, shape="ac12"),
    _case("ac12 (user AC rules), 1 s", ac_text(), "none", {"seconds": 1}, "ac", rules=AC_RULES, shape="ac12"),
    _case("ac12 (user AC rules), 5 s / 200 MiB", ac_text(), "none", {"seconds": 5, "memory": 200}, "ac",
          rules=AC_RULES, shape="ac12"),
]
#: the largest corpus programs (input size, e-graph, numeric check) under short time limits:
#: here the fixed steps (loading, extraction, the check) are most of the call
CORPUS_LIMITED = [("pipeline20", "tree", 1), ("chain60", "tree", 1), ("chain60", "dag", 2), ("gmm", "tree", 1),
                  ("logreg-hvp", "tree", 1), ("rosenbrock-hvp", "tree", 1), ("bundle-adjust", "dag", 1),
                  ("mlp3", "tree", 1)]
SHAPES += [{**_case(f"corpus {name}, {ex}, {sec} s", "", "none", {"seconds": sec}, extractor=ex, shape=name),
            "corpus": name} for name, ex, sec in CORPUS_LIMITED]


# -- the child: one optimize call ------------------------------------------------------------
def _derive(p, how: str):
    import eqsat_ad as ea
    steps = {"none": [], "jvp": ["jvp"], "jvp2": ["jvp"] * 2, "jvp3": ["jvp"] * 3, "deriv": ["deriv"],
             "deriv2": ["deriv"] * 2}[how]
    for s in steps:
        p = ea.jvp(p, "w") if s == "jvp" else ea.derivative(p, "w")
    return p


def child(spec: dict) -> dict:
    import resource
    import eqsat_ad as ea
    from eqsat_ad.strategy.combinators import run, saturate
    if spec.get("corpus"):
        from eqsat_ad.bench import corpus as C
        e = C.get(spec["corpus"])
        prog, sizes = C.derivative_program(e), dict(e.bench_sizes[-1])
    elif spec.get("suite"):
        from eqsat_ad.bench import specs as S
        sp = next(s for s in S.SUITE if s.name == spec["suite"])
        prog = getattr(ea, sp.kind)(ea.parse(sp.text), sp.wrt)
        sizes = {"n": 1000, "m": 1000}
    else:
        prog, sizes = _derive(ea.parse(spec["text"]), spec["derivative"]), {}
    sched = spec.get("schedule")
    if sched == "ac":
        sched = saturate(run("ac"))
    optimize = ea.optimize      # imports the optimiser (egglog; 0.1-0.2 s once per process)
    t0 = time.perf_counter()
    res = optimize(prog, sizes=sizes or None, schedule=sched, rules=spec.get("rules") or None,
                   extractor=spec.get("extractor", "tree"), limits=spec.get("limits") or None)
    wall = time.perf_counter() - t0
    rep, x = res.report, res.report.extraction
    growth = 0
    for ph in rep.phases:
        seq = [ph.enodes_before] + ph.enodes_per_iteration
        growth = max([growth] + [b - a for a, b in zip(seq, seq[1:])])
    return {"wall": wall, "stop": rep.stop_reason, "iterations": rep.iterations, "run_seconds": rep.seconds,
            "enodes": rep.enodes, "enodes_finished": x.get("enodes_finished"), "max_growth": growth,
            "chosen": x.get("chosen"), "limit_hit_after_run": x.get("limit"), "cost_before": res.cost_before,
            "cost": res.cost, "extracted_cost": x.get("extracted_cost"), "check": rep.check,
            "notes": rep.notes, "egglog_tree": x.get("egglog_tree"),
            "seconds": {k: v for k, v in x.items() if k.startswith("seconds") and isinstance(v, float)},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(spec: dict, timeout: float, memory_gb: float) -> dict:
    def cap():
        import resource
        b = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (b, b))
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                           timeout=timeout, preexec_fn=cap, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout:.0f} s (killed)", "wall_outside": time.perf_counter() - t0}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    last = [ln for ln in (p.stderr or p.stdout).splitlines() if ln.strip()][-1:] or [""]
    return {"error": f"exit {p.returncode}: {last[0].strip()[:300]}", "wall_outside": time.perf_counter() - t0}


# -- the parent ------------------------------------------------------------------------------
def measure_shapes(memory_gb: float) -> list[dict]:
    out = []
    for spec in SHAPES:
        lim = spec["limits"]
        timeout = 3 * lim.get("seconds", 60) + 60
        r = run_child(spec, timeout, memory_gb)
        out.append({**spec, "text": spec["text"] if len(spec["text"]) < 200 else spec["text"][:197] + "...",
                    "result": r})
        print(f"{spec['name']:42} {_short(r)}", flush=True)
    return out


def never_worse(memory_gb: float, extractors=("tree", "dag")) -> list[dict]:
    from eqsat_ad.bench import corpus as C
    from eqsat_ad.bench import specs as S
    jobs = [{"corpus": e.name} for e in C.CORPUS] + [{"suite": s.name} for s in S.SUITE]
    out = []
    for job in jobs:
        for ex in extractors:
            spec = {**job, "extractor": ex, "limits": {}}
            r = run_child(spec, 240, memory_gb)
            out.append({**spec, "result": r})
            print(f"{job.get('corpus') or job.get('suite'):20} {ex:5} {_short(r)}", flush=True)
    return out


def _load():
    try:
        import os
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _short(r: dict) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    return (f"wall {r['wall']:6.2f} s  stop {r['stop']:15} e-nodes {r['enodes']:>7} (+{r['max_growth']}) "
            f"chosen {r['chosen']}  cost {r['cost_before']:.4g} -> {r['cost']:.4g}")


def _fmt_limits(lim: dict) -> str:
    parts = []
    for k, unit in (("seconds", " s"), ("nodes", " nodes"), ("iterations", " iterations"), ("memory", " MiB")):
        if k in lim:
            v = lim[k]
            parts.append(f"{v:,}{unit}" if isinstance(v, int) else f"{v:g}{unit}")
    return ", ".join(parts) or "default (60 s, 200,000 nodes)"


def _check(r: dict) -> str:
    """The numeric check's outcome, short: verified (its seconds), skipped (why, abridged)."""
    chk = r.get("check") or ""
    secs = (r.get("seconds") or {}).get("seconds_check")
    if chk == "verified":
        return f"verified ({secs:.2f} s)" if secs is not None else chk
    if chk.startswith("skipped: the result is the input"):
        return "- (input)"
    return chk[:40]


def render(data: dict) -> str:
    rows = [f"# Limits and never-worse (issue 10, parts 3 and 4)\n",
            f"Run of {data['date']} at commit `{data.get('commit', '?')}`, {data.get('machine', '')}"
            + (f", load average {data['loadavg_start'][0]} at the start and "
               f"{(data.get('loadavg_end') or ['?'])[0]} at the end (other work on the machine slows "
               f"every step; the limits are on wall-clock time)" if data.get("loadavg_start") else "")
            + ". "
            f"Script: `benchmarks/bench_limits.py`.  Each `ea.optimize` call runs in a fresh subprocess; "
            f"*wall* is the whole call (loading the rules, the run, finishing substitutions, costs, "
            f"extraction, the numeric check; importing the library, once per process, is not part "
            f"of it).\n",
            "## Pathological shapes under limits\n",
            "| shape | limits | schedule / extractor | wall s | wall / limit | run e-nodes (limit) | most added by one iteration "
            "| e-nodes after finishing | stop reason | returned | cost in -> out | check | peak RSS MiB |",
            "|---|---|---|---:|---:|---|---:|---:|---|---|---|---|---:|"]
    for c in data.get("shapes", []):
        r, lim = c["result"], c["limits"]
        if "error" in r:
            rows.append(f"| {c['name']} | {_fmt_limits(lim)} | | **{r['error']}** | | | | | | | | | |")
            continue
        sec = lim.get("seconds", 60)
        nodes = lim.get("nodes", 200_000)
        rows.append(f"| {c['name']} | {_fmt_limits(lim)} | {c.get('schedule') or 'default'} / {c['extractor']} | "
                    f"{r['wall']:.2f} | {r['wall'] / sec:.2f} | {r['enodes']:,} ({nodes:,}) | {r['max_growth']:,} | "
                    f"{r['enodes_finished'] if r['enodes_finished'] is not None else '-':,} | {r['stop']} | "
                    f"{r['chosen']} | {r['cost_before']:.4g} -> {r['cost']:.4g} | {_check(r)} | "
                    f"{r['peak_rss_mb']:.0f} |")
    worst = [c["result"]["wall"] / c["limits"].get("seconds", 60) for c in data.get("shapes", [])
             if "error" not in c["result"]]
    if worst:
        rows.append(f"\nLargest wall / time limit: **{max(worst):.2f}** (target <= 1.10).  Notes of the runs "
                    f"(predicted stops, the input returned) are in `limits.json`.\n")
    nw = data.get("never_worse", [])
    if nw:
        ok = [c for c in nw if "error" not in c["result"]]
        won = [c for c in ok if c["result"]["chosen"] == "input"]
        costlier = [c for c in ok if c["result"]["cost"] > c["result"]["cost_before"] * (1 + 1e-9)]
        rows += ["## Never worse than the input\n",
                 f"{len(ok)} optimisations ({len(nw) - len(ok)} failed to run) of the corpus and suite "
                 f"programs at their largest benchmark size, default schedule and limits, extractors "
                 f"{', '.join(sorted({c['extractor'] for c in nw}))}.  The input was returned in "
                 f"**{len(won)}**; results costlier than their input: **{len(costlier)}**.\n",
                 "| program | extractor | stop | wall s | returned | cost in | extracted | returned cost | why |",
                 "|---|---|---|---:|---|---:|---:|---:|---|"]
        for c in nw:
            r = c["result"]
            name = c.get("corpus") or c.get("suite")
            if "error" in r:
                rows.append(f"| {name} | {c['extractor']} | **error** | | | | | | {r['error'][:120]} |")
                continue
            why = next((n for n in r["notes"] if n.startswith("the input program is returned")), "")
            ext = r["extracted_cost"] if r["extracted_cost"] is not None else r["cost"]
            rows.append(f"| {name} | {c['extractor']} | {r['stop']} | {r['wall']:.2f} | {r['chosen']} | "
                        f"{r['cost_before']:.4g} | {ext:.4g} | {r['cost']:.4g} | "
                        f"{why[len('the input program is returned: '):][:100] if why else ''} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="the pathological shapes only")
    ap.add_argument("--memory", type=float, default=8.0, help="address-space cap per subprocess, GiB")
    ap.add_argument("--render", help="only write the .md from this JSON")
    ap.add_argument("--out", default=str(RESULTS / "limits.json"))
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(json.loads(a.child))))
        return 0
    if a.render:
        data = json.loads(Path(a.render).read_text())
    else:
        data = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}"}
        try:
            data["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                            capture_output=True).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                   text=True, capture_output=True).stdout.split()
            if dirty:
                data["commit"] += f" + uncommitted changes to {', '.join(dirty[1::2])}"
        except OSError:
            pass
        data["loadavg_start"] = _load()
        data["shapes"] = measure_shapes(a.memory)
        if not a.quick:
            data["never_worse"] = never_worse(a.memory)
        data["loadavg_end"] = _load()
        Path(a.out).write_text(json.dumps(data, indent=1))
    md = Path(a.out).with_suffix(".md") if not a.render else Path(a.render).with_suffix(".md")
    md.write_text(render(data))
    print(f"wrote {a.out if not a.render else a.render} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
