"""Seeing what happened: the e-graph of a (small) run as Graphviz DOT, and a plot of the
run (e-graph size per iteration per phase, best cost per phase).

* :func:`egraph_dot` writes the term e-graph from egglog's serialized JSON: one cluster per
  e-class (the root's drawn bold), one box per e-node, literals and names inlined into the
  label, an edge from each e-node to the e-class of each child.  Analysis and cost tables
  are left out; ``Subst`` e-nodes (unextractable) are grey, subsumed e-nodes dashed.
* :func:`render` runs Graphviz ``dot`` when it is installed (returns False otherwise).
* :func:`plot_report` draws the run with matplotlib (returns False when matplotlib is
  not installed).
* :func:`best_cost_per_phase` extracts the best program after each phase by re-running the
  prefixes of the schedule (the driver is deterministic, so each prefix reaches exactly the
  e-graph the full run had at that point).

>>> import eqsat_ad as ea
>>> p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))")
>>> res = ea.optimize(ea.grad(p, "x"), sizes={"n": 10}, keep_egraph=True)
>>> print(egraph_dot(res.session).splitlines()[0])
digraph egraph {
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from .errors import EqsatError

__all__ = ["egraph_dot", "egraph_summary", "write_dot", "render", "plot_report", "best_cost_per_phase",
           "root_eclass"]

RENDER_FORMATS = ("svg", "png", "pdf")


# -- DOT ----------------------------------------------------------------------------------------

def _q(s: str) -> str:
    """A DOT double-quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def root_eclass(session) -> str | None:
    """The serialized e-class id (``Term-21``) of the program root ``$root``, if known."""
    try:
        fr = session.eg.freeze()
        rows = fr.functions["$root"].rows
        m = re.fullmatch(r"Value\((\d+)\)", str(rows[0].output))
        return f"Term-{m.group(1)}" if m else None
    except Exception:  # noqa: BLE001 -- best effort: the drawing works without it
        return None


def _term_nodes(session) -> tuple[dict, dict]:
    from .egraph.constructors import TERM_CTORS
    data = json.loads(session.serialize_json())
    nodes = data.get("nodes", {})
    terms = {nid: n for nid, n in nodes.items()
             if not nid.startswith("primitive-") and n.get("op") in TERM_CTORS}
    return terms, nodes


def egraph_summary(session) -> dict:
    """``{"enodes": N, "eclasses": M, "ops": {op: count}}`` of the term e-graph."""
    terms, _ = _term_nodes(session)
    ops: dict[str, int] = {}
    for n in terms.values():
        ops[n["op"]] = ops.get(n["op"], 0) + 1
    return {"enodes": len(terms), "eclasses": len({n["eclass"] for n in terms.values()}), "ops": ops}


def egraph_dot(session, max_nodes: int = 2000, title: str | None = None) -> str:
    """The term e-graph of ``session`` (an :class:`~eqsat_ad.egraph.session.EGraphSession`, e.g.
    ``optimize(..., keep_egraph=True).session``) as Graphviz DOT text.

    Raises :class:`EqsatError` when the e-graph has more than ``max_nodes`` e-nodes: a drawing
    is for small runs (use small sizes and a short schedule to look at one)."""
    if session is None:
        raise EqsatError("no e-graph to draw: run optimize(..., keep_egraph=True)")
    terms, nodes = _term_nodes(session)
    if len(terms) > max_nodes:
        raise EqsatError(f"the e-graph has {len(terms)} e-nodes, more than {max_nodes}; a drawing is "
                         "meant for small runs (raise the limit with max_nodes / --dot-max-nodes, or "
                         "use --limit iterations=N)")
    root = root_eclass(session)
    classes: dict[str, list[str]] = {}
    for nid, n in terms.items():
        classes.setdefault(n["eclass"], []).append(nid)
    ids = {nid: f"n{k}" for k, nid in enumerate(sorted(terms))}
    out = ["digraph egraph {",
           "  compound=true;",
           "  rankdir=TB;",
           "  fontname=helvetica; fontsize=10;",
           '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=helvetica, fontsize=10];',
           "  edge [arrowsize=0.6];"]
    if title:
        out.append(f"  label={_q(title)}; labelloc=t;")
    edges = []
    for ci, (cls, members) in enumerate(sorted(classes.items(), key=lambda kv: _class_key(kv[0]))):
        is_root = cls == root
        out.append(f"  subgraph {_q('cluster_' + cls)} {{")
        out.append(f"    label={_q(cls + (' (root)' if is_root else ''))};")
        out.append('    style="rounded,bold"; color=red;' if is_root else
                   '    style="rounded,dashed"; color=gray50;')
        for nid in sorted(members):
            n = terms[nid]
            label = [n["op"]]
            term_children = []
            for c in n.get("children", []):
                child = nodes.get(c)
                if c.startswith("primitive-") or child is None or c not in terms:
                    label.append(child["op"] if child else c)
                else:
                    term_children.append(c)
            attrs = [f"label={_q(' '.join(label))}"]
            if n["op"] == "Subst":
                attrs.append("fillcolor=gray90, fontcolor=gray30")
            if n.get("subsumed"):
                attrs.append('style="rounded,dashed,filled"')
            out.append(f"    {ids[nid]} [{', '.join(attrs)}];")
            for k, c in enumerate(term_children):
                tgt_cls = terms[c]["eclass"]
                tgt = ids[sorted(classes[tgt_cls])[0]]
                lab = f", taillabel={_q(str(k))}" if len(term_children) > 1 else ""
                edges.append(f"  {ids[nid]} -> {tgt} [lhead={_q('cluster_' + tgt_cls)}{lab}];")
        out.append("  }")
    out.extend(edges)
    out.append("}")
    return "\n".join(out) + "\n"


def _class_key(cls: str):
    m = re.search(r"(\d+)$", cls)
    return (int(m.group(1)) if m else 0, cls)


def render(dot_text: str, out: str | Path, fmt: str | None = None, timeout: float = 60.0) -> bool:
    """Render DOT text to ``out`` (format from ``fmt`` or the file suffix: svg, png, pdf) with
    Graphviz ``dot``.  Returns False (and writes nothing) when ``dot`` is not installed."""
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in RENDER_FORMATS:
        raise EqsatError(f"cannot render to {out}: use a .svg, .png or .pdf file")
    exe = shutil.which("dot")
    if exe is None:
        return False
    try:
        proc = subprocess.run([exe, f"-T{fmt}", "-o", str(out)], input=dot_text.encode(),
                              capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EqsatError(f"Graphviz dot failed: {e}") from None
    if proc.returncode != 0:
        raise EqsatError(f"Graphviz dot failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
    return True


def write_dot(dot_text: str, out: str | Path) -> list[str]:
    """Write DOT text to ``out``.  For ``out.svg``/``.png``/``.pdf`` also render it when Graphviz
    is installed (the DOT text goes next to it as ``out.dot``).  Returns the files written."""
    out = Path(out)
    if out.suffix.lower().lstrip(".") in RENDER_FORMATS:
        dot_path = out.with_suffix(".dot")
        dot_path.write_text(dot_text)
        written = [str(dot_path)]
        if render(dot_text, out):
            written.append(str(out))
        else:
            import sys
            print(f"eqsat-ad: note: Graphviz 'dot' is not installed; wrote {dot_path} only "
                  f"(render it with: dot -T{out.suffix.lstrip('.')} {dot_path} -o {out})", file=sys.stderr)
        return written
    out.write_text(dot_text)
    return [str(out)]


# -- plots ----------------------------------------------------------------------------------------

def plot_report(report, out: str | Path, phase_costs: list[float] | None = None,
                title: str | None = None) -> bool:
    """Plot a :class:`~eqsat_ad.driver.RunReport`: e-nodes per iteration (one colour per phase)
    and, when given, the best cost after each phase (log scale).  Writes ``out`` (format from
    the suffix).  Returns False when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    ncols = 2 if phase_costs is not None else 1
    fig = Figure(figsize=(5.5 * ncols, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, ncols, 1)
    it = 0
    for k, ph in enumerate(report.phases):
        ys = [ph.enodes_before] + list(ph.enodes_per_iteration)
        xs = list(range(it, it + len(ys)))
        ax.plot(xs, ys, marker="." if len(ys) < 60 else None, label=ph.name, color=f"C{k % 10}")
        if k:
            ax.axvline(it, color="gray", lw=0.5, ls=":")
        it += len(ph.enodes_per_iteration)
    ax.set_xlabel("iteration")
    ax.set_ylabel("e-nodes")
    ax.set_title("e-graph size per iteration")
    if report.phases:
        ax.legend(fontsize=8)
    if phase_costs is not None:
        cx = fig.add_subplot(1, ncols, 2)
        names = ["start"] + [p.name for p in report.phases]
        before = report.cost_before if report.cost_before is not None else float("nan")
        vals = [before] + list(phase_costs)
        pos = [max(v, 1e-12) if v == v else float("nan") for v in vals]
        cx.plot(range(len(vals)), pos, marker="o", drawstyle="steps-post")
        cx.set_xticks(range(len(vals)))
        cx.set_xticklabels(names, rotation=30, fontsize=8)
        if all(v > 0 for v in pos if v == v):
            cx.set_yscale("log")
        cx.set_ylabel("best cost (cost model)")
        cx.set_title("best cost after each phase")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(str(out))
    return True


def best_cost_per_phase(prog, final=None, **optimize_kwargs) -> list[float]:
    """The cost of the best program after each phase of ``schedule`` (an ``optimize`` keyword,
    default the default schedule).  Re-runs the prefixes of the schedule; ``final`` (the
    result of the full run, if you have it) saves the last run."""
    from .optimize import optimize
    from .strategy.combinators import Strategy, phases_of, seq
    from .strategy.defaults import default_schedule
    from .strategy.schedule_file import load_schedule
    sched = optimize_kwargs.pop("schedule", None)
    if sched is None or sched == "default":
        strat: Strategy | None = default_schedule()
    elif isinstance(sched, Strategy):
        strat = sched
    elif sched in ("all", "saturate-all", "saturate_all"):
        strat = None                    # one phase
    else:
        strat = load_schedule(sched)
    phases = phases_of(strat) if strat is not None else [None]
    optimize_kwargs.setdefault("check", False)
    costs = []
    for k in range(1, len(phases) + 1):
        if k == len(phases) and final is not None:
            costs.append(final.cost)
            break
        s = sched if strat is None else seq(*phases[:k])
        costs.append(optimize(prog, schedule=s, **optimize_kwargs).cost)
    return costs
