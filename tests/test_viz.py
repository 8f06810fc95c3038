"""eqsat_ad.viz: the e-graph as DOT, rendering with Graphviz when present, the run plot."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

import eqsat_ad as ea
from eqsat_ad import viz
from eqsat_ad.cli.progress import Progress
from eqsat_ad.errors import EqsatError

ROOT = Path(__file__).resolve().parent.parent
SUMSQ = "(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"


@pytest.fixture(scope="module")
def run():
    p = ea.parse(SUMSQ)
    g = ea.grad(p, "x")
    return g, ea.optimize(g, sizes={"n": 10}, keep_egraph=True)


FULL = dict(scope="all", show_support=True, collapse_leaves=False)


def dot_structure(dot: str) -> dict:
    """Parse the DOT text ``egraph_dot`` writes: braces balance (outside quoted strings), every
    edge joins declared nodes.  Returns clusters, nodes (id -> attribute text) and edges."""
    depth, in_q, esc = 0, False, False
    for ch in dot:
        if in_q:
            esc, in_q = (not esc and ch == "\\"), in_q and not (ch == '"' and not esc)
            continue
        if ch == '"':
            in_q = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            assert depth >= 0, "a closing brace without an opening one"
    assert depth == 0 and not in_q
    assert dot.startswith("digraph egraph {") and dot.rstrip().endswith("}")
    clusters = re.findall(r'subgraph "cluster_([^"]+)"', dot)
    nodes = dict(re.findall(r"^\s+(n\d+|c_\w+) \[(.*)\];$", dot, re.M))
    edges = re.findall(r"^\s+(n\d+) -> (n\d+|c_\w+) \[(.*)\];$", dot, re.M)
    for src, tgt, _ in edges:
        assert src in nodes and tgt in nodes, (src, tgt)
    return {"clusters": clusters, "nodes": nodes, "edges": edges}


def test_dot_has_one_cluster_per_eclass_and_marks_the_root(run):
    _, res = run
    dot = viz.egraph_dot(res.session, title="sumsq", **FULL)
    st = dot_structure(dot)
    summary = viz.egraph_summary(res.session)
    assert len(st["clusters"]) == summary["eclasses"] == len(set(st["clusters"]))
    assert len([n for n in st["nodes"] if n.startswith("n")]) == summary["enodes"]
    assert dot.count("(root)") == 1
    root = viz.root_eclass(res.session)
    assert root in st["clusters"]
    for _, _, attrs in st["edges"]:       # every edge names the cluster of its target
        assert re.search(r'lhead="cluster_([^"]+)"', attrs).group(1) in st["clusters"]
    assert dot.startswith('digraph egraph {') and 'label="sumsq' in dot


def _constructors(prog) -> set[str]:
    """The e-graph constructors a program is made of."""
    from eqsat_ad.egraph.constructors import PRIM_TO_CTOR
    from eqsat_ad.lang.ast import Prim, Var
    params, out, todo = {p.name for p in prog.params}, set(), [(prog.body, frozenset())]
    while todo:
        e, bound = todo.pop()
        if isinstance(e, Var):
            out.add("Var" if e.name in bound else "Input" if e.name in params else "Dim")
            continue
        out.add(PRIM_TO_CTOR[e.op] if isinstance(e, Prim) else type(e).__name__)
        inner = bound | set(getattr(e, "binds", lambda: ())())
        todo.extend((c, inner) for c in e.children())
    return out


def test_dot_marks_the_extracted_program(run):
    _, res = run
    chosen, whole = viz.locate_program(res.session, res.program)
    assert whole and chosen == viz.extracted_nodes(res.session, res.program)
    terms, _ = viz._term_nodes(res.session)
    assert {terms[n]["op"] for n in chosen} == _constructors(res.program)
    st = dot_structure(viz.egraph_dot(res.session, program=res.program, **FULL))
    marked = {k for k, a in st["nodes"].items() if viz.CHOSEN_FILL in a}
    assert len(marked) == len(chosen)
    hot = [(s, t) for s, t, a in st["edges"] if viz.CHOSEN_LINE in a]
    assert all(s in marked and t in marked for s, t in hot)
    root_node = {s for s, _ in hot} - {t for _, t in hot}
    assert len(root_node) == 1 and {t for _, t in hot} == marked - root_node   # one connected path
    assert "the extracted program" in viz.egraph_dot(res.session, program=res.program)
    # the default drawing marks the same program, leaves written into labels
    st = dot_structure(viz.egraph_dot(res.session, program=res.program))
    labels = [re.search(r'label="([^"]*)"', a).group(1) for k, a in st["nodes"].items() if viz.CHOSEN_FILL in a]
    assert "Build(i1, n, _)" in labels and any(lb.startswith("Get(x, i") for lb in labels)


def test_a_reshaped_program_is_marked_in_part():
    """A program whose shape is not in the e-graph as it is: the parts that are are marked."""
    p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))")
    res = ea.optimize(p, sizes={"n": 10}, keep_egraph=True)
    other = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (+ (get x i) 0.5)))))")
    chosen, whole = viz.locate_program(res.session, other)
    assert not whole and chosen
    terms, _ = viz._term_nodes(res.session)
    assert {"Sum", "Exp"} <= {terms[n]["op"] for n in chosen}
    assert "found in the e-graph as they are" in viz.egraph_dot(res.session, program=other)


def test_default_drawing_hides_bookkeeping_and_collapses_leaves(run):
    _, res = run
    full = viz.egraph_dot(res.session, **FULL)
    dot = viz.egraph_dot(res.session)
    st_full, st = dot_structure(full), dot_structure(dot)
    assert len(st["nodes"]) < len(st_full["nodes"]) and len(st["clusters"]) < len(st_full["clusters"])
    assert "Subst" in full and "gray90" in full                 # shown on request, grey
    assert "Subst(" not in dot and "Subst e-nodes (substitution bookkeeping) not drawn" in dot
    assert "written into labels" in dot and "Get(x, i" in dot
    assert "fv" not in re.findall(r'label="(\w+)', full)        # analysis tables never drawn
    assert "rankdir=LR" in dot and "rankdir=TB" in viz.egraph_dot(res.session, rankdir="TB")
    labels = re.findall(r'\[label="([^"]*)"', viz.egraph_dot(res.session, max_label=8))
    assert labels and all(len(lb) <= 8 for lb in labels)


def test_scopes(run):
    _, res = run
    sizes = {}
    for scope in viz.SCOPES:
        st = dot_structure(viz.egraph_dot(res.session, program=res.program, scope=scope))
        sizes[scope] = len(st["clusters"])
    assert sizes["extracted"] <= sizes["reachable"] <= sizes["all"]
    with pytest.raises(EqsatError, match="scope"):
        viz.egraph_dot(res.session, scope="everything")


def test_dot_refuses_big_graphs_and_missing_session(run):
    _, res = run
    with pytest.raises(EqsatError, match="e-nodes"):
        viz.egraph_dot(res.session, max_nodes=3)
    with pytest.raises(EqsatError, match="keep_egraph"):
        viz.egraph_dot(None)


def test_a_few_hundred_e_nodes_stay_drawable():
    mlp = ea.parse(open(ROOT / "docs" / "examples" / "mlp.ad").read())
    res = ea.optimize(ea.grad(mlp, "W", mode="forward"), sizes={"m": 3, "n": 3}, keep_egraph=True, check=False)
    full = dot_structure(viz.egraph_dot(res.session, **FULL))
    dot = viz.egraph_dot(res.session, program=res.program)
    st = dot_structure(dot)
    assert len(full["nodes"]) >= 150
    assert len(st["nodes"]) < 0.7 * len(full["nodes"])      # support and leaves out of the way
    assert viz.CHOSEN_FILL in dot
    small = dot_structure(viz.egraph_dot(res.session, program=res.program, scope="extracted"))
    assert len(small["nodes"]) < len(st["nodes"])


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_render_with_real_graphviz(run, tmp_path):
    _, res = run
    dot = viz.egraph_dot(res.session, program=res.program, title="sumsq")
    assert viz.render(dot, tmp_path / "g.svg") is True
    svg = (tmp_path / "g.svg").read_text()
    assert "<svg" in svg and "cluster_" in svg
    assert viz.render(dot, tmp_path / "g.png") is True
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_matches_the_report(run):
    _, res = run
    s = viz.egraph_summary(res.session)
    assert s["enodes"] == res.report.enodes
    assert s["ops"]["Build"] >= 1


def _fake_dot(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "dot"
    exe.write_text(f"#!{sys.executable}\n"
                   "import sys\n"
                   "args = sys.argv[1:]\n"
                   "src = sys.stdin.read()\n"
                   "assert src.startswith('digraph')\n"
                   "out = args[args.index('-o') + 1]\n"
                   "open(out, 'w').write('rendered ' + args[0])\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))


def test_render_with_and_without_graphviz(run, tmp_path, monkeypatch):
    _, res = run
    dot = viz.egraph_dot(res.session)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert viz.render(dot, tmp_path / "g.svg") is False
    assert not (tmp_path / "g.svg").exists()
    written = viz.write_dot(dot, tmp_path / "g.svg")          # falls back to the .dot file
    assert written == [str(tmp_path / "g.dot")]
    _fake_dot(tmp_path, monkeypatch)
    assert viz.render(dot, tmp_path / "g.png") is True
    assert (tmp_path / "g.png").read_text() == "rendered -Tpng"
    written = viz.write_dot(dot, tmp_path / "h.svg")
    assert written == [str(tmp_path / "h.dot"), str(tmp_path / "h.svg")]
    with pytest.raises(EqsatError, match="svg"):
        viz.render(dot, tmp_path / "g.jpg")


def test_best_cost_per_phase(run):
    g, res = run
    costs = viz.best_cost_per_phase(g, sizes={"n": 10}, final=res)
    assert len(costs) == len(res.report.phases) >= 4      # (one per phase of the default schedule)
    assert costs[-1] == res.cost
    assert all(c >= 0 for c in costs)      # (inlining may raise the cost before loops fold)
    assert viz.best_cost_per_phase(g, sizes={"n": 10}, schedule="all") == \
        [ea.optimize(g, sizes={"n": 10}, schedule="all", check=False).cost]


def test_plot(run, tmp_path):
    pytest.importorskip("matplotlib")
    _, res = run
    out = tmp_path / "run.png"
    assert viz.plot_report(res.report, out, phase_costs=[3.0, 2.0, 1.0, 1.0], title="t") is True
    assert out.read_bytes()[:4] == b"\x89PNG"
    out2 = tmp_path / "run.svg"
    assert viz.plot_report(res.report, out2) is True
    assert "<svg" in out2.read_text()


def test_plot_without_matplotlib(run, tmp_path, monkeypatch):
    _, res = run
    for mod in [m for m in list(sys.modules) if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert viz.plot_report(res.report, tmp_path / "x.png") is False
    assert not (tmp_path / "x.png").exists()


def test_report_json_round_trips(run):
    _, res = run
    d = json.loads(res.report.to_json())
    assert [p["name"] for p in d["phases"]] == [p.name for p in res.report.phases]
    assert [p["name"] for p in d["phases"]][:3] == ["inline", "simplify", "loops"]


# -- progress (cli/progress.py): only on a terminal --------------------------------------------

class _Stream:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_only_on_a_terminal():
    p = ea.parse(SUMSQ)
    quiet, loud = _Stream(False), _Stream(True)
    pq, pl = Progress(quiet), Progress(loud, interval=0.0)
    assert not pq.enabled and pl.enabled
    ea.optimize(ea.grad(p, "x"), progress=pq)
    ea.optimize(ea.grad(p, "x"), progress=pl)
    pl.done()
    assert quiet.text == ""
    assert "phase inline: iteration 1" in loud.text and "e-nodes" in loud.text
    assert loud.text.endswith("\r")                    # the line is cleared at the end


# -- eqsat-ad explain --dot ---------------------------------------------------------------------

def _explain_dot(capsys, *argv):
    from eqsat_ad.cli import main
    rc = main(["explain", str(ROOT / "docs" / "examples" / "sumsq.ad"), "--grad", "x", "--size", "n=10",
               "--no-phase-costs", "--no-legend", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_without_graphviz_writes_the_dot_and_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    rc, out, err = _explain_dot(capsys, "--dot", tmp_path / "g.svg")
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if "Graphviz" in ln]
    assert len(notes) == 1 and "apt install graphviz" in notes[0] and "conda install graphviz" in notes[0]
    assert f"dot -Tsvg {tmp_path / 'g.dot'} -o {tmp_path / 'g.svg'}" in notes[0]
    assert "Traceback" not in err and not (tmp_path / "g.svg").exists()
    st = dot_structure((tmp_path / "g.dot").read_text())
    assert st["clusters"] and any(viz.CHOSEN_FILL in a for a in st["nodes"].values())


def test_cli_dot_options(capsys, tmp_path):
    sizes = {}
    for opts in ((), ("--dot-scope", "all", "--dot-support", "--dot-leaves"), ("--dot-scope", "extracted")):
        rc, out, err = _explain_dot(capsys, "--dot", tmp_path / "g.dot", *opts)
        assert rc == 0, err
        text = (tmp_path / "g.dot").read_text()
        sizes[opts[:2]] = len(dot_structure(text)["nodes"])
        assert viz.CHOSEN_FILL in text
    assert sizes[("--dot-scope", "extracted")] < sizes[()] < sizes[("--dot-scope", "all")]
    rc, out, err = _explain_dot(capsys, "--dot", tmp_path / "g.dot", "--dot-scope", "nope")
    assert rc == 2 and "Traceback" not in err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_cli_renders_svg_and_png_with_graphviz(capsys, tmp_path):
    for suffix, magic in (("svg", b"<"), ("png", b"\x89PNG")):
        rc, out, err = _explain_dot(capsys, "--dot", tmp_path / f"g.{suffix}")
        assert rc == 0, err
        assert (tmp_path / f"g.{suffix}").read_bytes()[:len(magic)] == magic
        assert (tmp_path / "g.dot").exists() and "Graphviz" not in err
