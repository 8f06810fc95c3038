"""eqsat_ad.viz: the e-graph as DOT, rendering with Graphviz when present, the run plot."""
from __future__ import annotations

import json
import os
import re
import stat
import sys

import pytest

import eqsat_ad as ea
from eqsat_ad import viz
from eqsat_ad.cli.progress import Progress
from eqsat_ad.errors import EqsatError

SUMSQ = "(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"


@pytest.fixture(scope="module")
def run():
    p = ea.parse(SUMSQ)
    g = ea.grad(p, "x")
    return g, ea.optimize(g, sizes={"n": 10}, keep_egraph=True)


def test_dot_has_one_cluster_per_eclass_and_marks_the_root(run):
    _, res = run
    dot = viz.egraph_dot(res.session, title="sumsq")
    assert dot.startswith("digraph egraph {") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    summary = viz.egraph_summary(res.session)
    clusters = re.findall(r'subgraph "cluster_([^"]+)"', dot)
    assert len(clusters) == summary["eclasses"] == len(set(clusters))
    nodes = re.findall(r"^\s+n\d+ \[label=", dot, re.M)
    assert len(nodes) == summary["enodes"]
    assert dot.count("(root)") == 1
    root = viz.root_eclass(res.session)
    assert root in clusters
    # every edge points at a node and names the cluster of its target
    ids = set(re.findall(r"^\s+(n\d+) \[", dot, re.M))
    for src, tgt, cl in re.findall(r"^\s+(n\d+) -> (n\d+) \[lhead=\"cluster_([^\"]+)\"", dot, re.M):
        assert src in ids and tgt in ids and cl in clusters
    assert 'label="sumsq"' in dot


def test_dot_leaves_out_analysis_tables_and_inlines_literals(run):
    _, res = run
    dot = viz.egraph_dot(res.session)
    assert "fv" not in re.findall(r'label="(\w+)', dot)
    assert 'Input \\"x\\"' in dot                 # the string argument is in the label
    assert "Subst" in dot and "gray90" in dot      # unextractable substitutions are grey


def test_dot_refuses_big_graphs_and_missing_session(run):
    _, res = run
    with pytest.raises(EqsatError, match="e-nodes"):
        viz.egraph_dot(res.session, max_nodes=3)
    with pytest.raises(EqsatError, match="keep_egraph"):
        viz.egraph_dot(None)


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
    assert len(costs) == len(res.report.phases) == 4
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
    assert [p["name"] for p in d["phases"]] == ["inline", "simplify", "loops", "cleanup"]


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
