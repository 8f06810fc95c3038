"""The eqsat-ad command line: every subcommand, --help, exit codes (2 usage / 1 failure),
one-line located errors, and the --json contract."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.cli import main
from eqsat_ad.cli.args import UsageError, parse_assignments, parse_inputs, parse_limits

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "docs" / "examples"
DOT = str(EX / "dot.ad")
SUMSQ = str(EX / "sumsq.ad")


def has_backend() -> bool:
    try:
        from eqsat_ad.backend import compile  # noqa: F401
        return True
    except ImportError:
        return False


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("eqsat-ad: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- help -------------------------------------------------------------------------------------

@pytest.mark.parametrize("words", [(), ("optimize",), ("run",), ("explain",), ("rules",), ("rules", "list"),
                                   ("rules", "check"), ("bench",), ("schedule",), ("schedule", "show"), ("demo",)])
def test_help_of_every_command_has_an_example(capsys, words):
    rc, out, err = run(capsys, *words, "--help")
    assert rc == 0
    assert "usage: eqsat-ad" in out
    assert "example" in out and "eqsat-ad " in out.split("example", 1)[1]


def test_no_command_is_a_usage_error(capsys):
    rc, out, err = run(capsys)
    assert rc == 2 and "usage:" in err


def test_version(capsys):
    rc, out, err = run(capsys, "--version")
    assert rc == 0 and ea.__version__ in out


# -- optimize ----------------------------------------------------------------------------------

def test_optimize_dot_grad_json(capsys, tmp_path):
    out_json = tmp_path / "out.json"
    rc, out, err = run(capsys, "optimize", DOT, "--grad", "x", "--size", "n=1000", "--json", out_json)
    assert rc == 0, err
    data = json.loads(out_json.read_text())
    for key in ("cost_before", "cost_after", "program", "report"):
        assert key in data
    assert data["cost_after"] < data["cost_before"]
    prog = ea.parse(data["program"])
    assert ea.show_expr(prog.body) == "w"
    assert data["report"]["phases"] and data["report"]["stop_reason"]
    assert data["report"]["sizes"] == {"n": 1000}
    # stdout: the program, then ';;' report lines -- as a whole still a program file
    assert ea.show_expr(ea.parse(out).body) == "w"
    assert ";; cost:" in out and "stopped:" in out


def test_optimize_json_to_stdout(capsys):
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "--json", "-")
    assert rc == 0, err
    data = json.loads(out)
    assert ea.parse(data["program"]) and data["cost_after"] <= data["cost_before"]


def test_optimize_quiet_limits_and_schedule_all(capsys):
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "-q", "--schedule", "all",
                       "--limit", "iterations=3", "--limit", "nodes=100000")
    assert rc == 0, err
    assert ";;" not in out
    ea.parse(out)


def test_optimize_without_derivative_and_with_user_rules(capsys, tmp_path):
    rules = tmp_path / "mine.egg"
    rules.write_text(";; ruleset mine -- exp of log\n(ruleset mine)\n"
                     '(rewrite (Exp (Log a)) a :ruleset mine :name "exp-log")\n')
    sched = tmp_path / "sched.egg"
    sched.write_text(";; @phase mine iterations=5\n(run-schedule (saturate (run mine)))\n")
    prog = tmp_path / "p.ad"
    prog.write_text("(fun ((x (vec n))) (sum n (lambda (i) (exp (log (get x i))))))")
    rc, out, err = run(capsys, "optimize", prog, "--rules", rules, "--schedule", sched, "--no-check")
    assert rc == 0, err
    assert "(exp" not in out.split(";;")[0]
    assert ";; mine" in out


def test_optimize_progress_only_when_asked_or_tty(capsys):
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "-q")
    assert rc == 0 and err == ""                      # captured stderr is not a terminal
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "-q", "--progress")
    assert rc == 0 and "phase" in err and "e-nodes" in err


@pytest.mark.skipif(not has_backend(), reason="NumPy backend not available")
def test_optimize_emit_numpy(capsys):
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "--emit", "numpy")
    assert rc == 0, err
    assert "def " in out and "# cost:" in out


# -- run ---------------------------------------------------------------------------------------

def test_run_literals_and_npy(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    rc, out, err = run(capsys, "run", DOT, "--input", f"x={tmp_path / 'x.npy'}", "--input", "w=[4,5,6]")
    assert rc == 0, err
    assert float(out) == pytest.approx(32.0)


@pytest.mark.parametrize("extra", [[], ["--optimize"], ["--interpret"]])
def test_run_gradient(capsys, tmp_path, extra):
    out_npy = tmp_path / "g.npy"
    rc, out, err = run(capsys, "run", SUMSQ, "--grad", "x", "--input", "x=[1,2,3]", "-o", out_npy, *extra)
    assert rc == 0, err
    np.testing.assert_allclose(np.load(out_npy), [2.0, 4.0, 6.0])
    assert "2" in out and "6" in out


def test_run_jvp_has_direction_input(capsys):
    rc, out, err = run(capsys, "run", SUMSQ, "--jvp", "x", "--input", "x=[1,2,3]", "--input", "dx=[1,0,0]",
                       "--interpret")
    assert rc == 0, err
    assert float(out) == pytest.approx(2.0)


def test_run_missing_input_is_a_failure(capsys):
    rc, out, err = run(capsys, "run", DOT, "--input", "x=[1,2]", "--interpret")
    assert rc == 1
    assert "missing input 'w'" in one_error_line(err)


def test_run_bad_input_syntax_is_usage(capsys):
    for bad in ("x", "x=[1,2", "x=nofile.npy"):
        rc, out, err = run(capsys, "run", DOT, "--input", bad)
        assert rc == 2, bad
        one_error_line(err)


# -- errors and exit codes ----------------------------------------------------------------------

def test_usage_errors_exit_2(capsys, tmp_path):
    cases = [
        ["optimize", DOT, "--no-such-flag"],
        ["optimize", str(tmp_path / "missing.ad")],
        ["optimize", DOT, "--size", "n"],
        ["optimize", DOT, "--size", "n=lots"],
        ["optimize", DOT, "--limit", "iters=3"],
        ["optimize", DOT, "--rules", str(tmp_path / "missing.egg")],
        ["optimize", DOT, "--schedule", str(tmp_path / "missing.egg")],
        ["optimize", DOT, "--grad", "x", "--jvp", "x"],
        ["optimize", DOT, "--extractor", "best"],
        ["optimize", DOT, "--json", str(tmp_path / "no" / "dir" / "x.json")],
        ["rules", "list", str(tmp_path / "missing.egg")],
    ]
    for argv in cases:
        rc, out, err = run(capsys, *argv)
        assert rc == 2, (argv, err)
        assert "Traceback" not in err


def test_bad_program_one_line_with_file_line_col(capsys, tmp_path):
    prog = tmp_path / "prog.ad"
    prog.write_text("(fun ((x (vec n)))\n  (sum n (lambda (i)\n    (foo (get x i)))))\n")
    rc, out, err = run(capsys, "optimize", prog, "--grad", "x")
    assert rc == 1
    line = one_error_line(err)
    assert f"{prog}:3:5:" in line and "foo" in line


def test_type_error_names_the_file(capsys, tmp_path):
    prog = tmp_path / "prog.ad"
    prog.write_text("(fun ((x (vec n))) (sum n (lambda (i) (get x 1.5))))")
    rc, out, err = run(capsys, "optimize", prog, "--grad", "x")
    assert rc == 1
    line = one_error_line(err)
    assert f"{prog}:" in line and "type error" in line


def test_bad_rule_file_one_line_with_file_line(capsys, tmp_path):
    bad = tmp_path / "bad.egg"
    bad.write_text("(ruleset mine)\n\n(rewrite (Exp (Log a)) a :ruleset mine\n")
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "--rules", bad)
    assert rc == 1
    assert f"{bad}:3:1:" in one_error_line(err)
    bad.write_text("(ruleset mine)\n(rewrite (NoSuchCtor a) a :ruleset mine)\n")
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "--rules", bad)
    assert rc == 1
    assert f"{bad}:2:" in one_error_line(err)
    rc, out, err = run(capsys, "rules", "list", bad.parent / "bad.egg")
    assert rc == 0                     # the listing only reads the text


def test_bad_schedule_file_and_unknown_ruleset(capsys, tmp_path):
    sched = tmp_path / "s.egg"
    sched.write_text("(run-schedule (saturate (run nosuch)))\n")
    rc, out, err = run(capsys, "optimize", SUMSQ, "--schedule", sched)
    assert rc == 1 and "nosuch" in one_error_line(err)
    sched.write_text("(run-schedule (frobnicate ring))\n")
    rc, out, err = run(capsys, "optimize", SUMSQ, "--schedule", sched)
    assert rc == 1 and f"{sched}:1:" in one_error_line(err)


def test_unknown_wrt_is_a_failure(capsys):
    rc, out, err = run(capsys, "optimize", DOT, "--grad", "zz")
    assert rc == 1 and "zz" in one_error_line(err)


def test_missing_extractor_module_is_clear(capsys, monkeypatch):
    import importlib.util
    if importlib.util.find_spec("eqsat_ad.extract") is not None:
        pytest.skip("eqsat_ad.extract is present")
    rc, out, err = run(capsys, "optimize", SUMSQ, "--grad", "x", "--extractor", "dag")
    assert rc == 1 and "extractor" in one_error_line(err)


# -- rules, schedule ------------------------------------------------------------------------------

def test_rules_list_shipped_and_verbose(capsys):
    rc, out, err = run(capsys, "rules", "list")
    assert rc == 0, err
    for rs in ("ring", "fold", "fuse", "subst"):
        assert f"\n{rs}  (" in "\n" + out
    assert "foldConditional" not in out or "fold" in out
    assert "add-zero-r" in out
    rc, out, err = run(capsys, "rules", "list", "-v", ROOT / "rules" / "ring.egg")
    assert rc == 0
    assert "(rewrite (Add a (Num 0.0)) a" in out and re.search(r"ring.egg:\d+\]", out)
    rc, out, err = run(capsys, "rules", "list", "--json", ROOT / "rules" / "ring.egg")
    data = json.loads(out)
    assert data[0]["ruleset"] == "ring" and data[0]["rules"][0]["name"] == "add-zero-r"


def test_rules_list_bad_file_is_located(capsys, tmp_path):
    bad = tmp_path / "b.egg"
    bad.write_text("(ruleset r)\n(rewrite (Exp a) a :ruleset r\n")
    rc, out, err = run(capsys, "rules", "list", bad)
    assert rc == 1 and f"{bad}:2:1:" in one_error_line(err)


def test_rules_check_and_bench_delegate_or_say_missing(capsys, monkeypatch):
    import types
    calls = []
    fake = types.ModuleType("eqsat_ad.rulecheck")
    fake.main = lambda argv: calls.append(("check", argv)) or 0
    fake_b = types.ModuleType("eqsat_ad.bench")
    fake_b.main = lambda argv: calls.append(("bench", argv)) or 3
    monkeypatch.setitem(sys.modules, "eqsat_ad.rulecheck", fake)
    monkeypatch.setitem(sys.modules, "eqsat_ad.bench", fake_b)
    assert run(capsys, "rules", "check", "a.egg", "--trials", "5")[0] == 0
    assert run(capsys, "bench", "--quick")[0] == 3
    assert calls == [("check", ["a.egg", "--trials", "5"]), ("bench", ["--quick"])]
    monkeypatch.setitem(sys.modules, "eqsat_ad.bench", None)     # import fails
    rc, out, err = run(capsys, "bench", "--quick")
    assert rc == 1 and "bench" in one_error_line(err)


def test_schedule_show_round_trips(capsys, tmp_path):
    from eqsat_ad.strategy.defaults import default_schedule
    from eqsat_ad.strategy.schedule_file import parse_schedule
    rc, out, err = run(capsys, "schedule", "show")
    assert rc == 0 and "@phase inline" in out
    assert parse_schedule(out) == default_schedule()
    rc, out, err = run(capsys, "schedule", "show", "all")
    assert rc == 0 and "@phase all" in out and "ring" in out


# -- explain ----------------------------------------------------------------------------------------

def test_explain_phases_rules_growth_costs(capsys, tmp_path):
    rc, out, err = run(capsys, "explain", SUMSQ, "--grad", "x", "--size", "n=100",
                       "--json", tmp_path / "e.json")
    assert rc == 0, err
    for ph in ("inline", "simplify", "loops", "cleanup"):
        assert f" {ph}: (saturate" in out
    assert "matches per rule:" in out and "[fold]" in out
    assert "e-nodes per iteration:" in out and "stopped: saturated" in out
    assert out.count("cost of the best program:") == 4
    assert "cost: " in out and "optimised program:" in out
    data = json.loads((tmp_path / "e.json").read_text())
    assert len(data["phase_costs"]) == 4 and data["phase_costs"][-1] == data["cost_after"]


def test_explain_dot_and_plot(capsys, tmp_path):
    dot = tmp_path / "g.dot"
    png = tmp_path / "g.png"
    rc, out, err = run(capsys, "explain", SUMSQ, "--grad", "x", "--dot", dot, "--plot", png)
    assert rc == 0, err
    text = dot.read_text()
    assert text.startswith("digraph egraph {") and "cluster_" in text and "(root)" in text
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_explain_dot_refuses_big_graphs(capsys, tmp_path):
    rc, out, err = run(capsys, "explain", SUMSQ, "--grad", "x", "--dot", tmp_path / "g.dot",
                       "--dot-max-nodes", "5")
    assert rc == 1 and "e-nodes" in one_error_line(err)


# -- option parsers and the installed entry point -------------------------------------------------

def test_option_parsers():
    assert parse_assignments(["n=3,m=4", "k=5"], "--size") == {"n": 3, "m": 4, "k": 5}
    assert parse_limits(["nodes=1e4"]).nodes == 10000
    with pytest.raises(UsageError):
        parse_assignments(["n=-1"], "--size")
    with pytest.raises(UsageError):
        parse_limits(["seconds=0"])
    assert parse_inputs(["s=2.5", "A=[[1,2],[3,4]]", "b=true"]) == {"s": 2.5, "A": [[1, 2], [3, 4]], "b": True}


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "eqsat_ad.cli", "optimize", SUMSQ, "--no-such"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_gradient_wrt_several_parameters(capsys):
    rc, out, err = run(capsys, "optimize", DOT, "--grad", "x,w", "-q")
    assert rc == 0, err
    assert ea.show_expr(ea.parse(out).body) == "(pair w x)"
    rc, out, err = run(capsys, "run", DOT, "--grad", "x,w", "-i", "x=[1,2]", "-i", "w=[3,4]")
    assert rc == 0 and out.strip() == "([3., 4.], [1., 2.])"
