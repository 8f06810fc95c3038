"""Notebooks and worker processes: Programs, results and reports show as readable text (and
HTML) in IPython; Programs and compiled functions pickle and copy; progress works with
``progress=True`` and only on a terminal."""
from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eqsat_ad as ea

ROOT = Path(__file__).resolve().parents[1]
SUMSQ = "(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.ad"))


def _programs():
    out = [ea.parse(p.read_text()) for p in EXAMPLES]
    out.append(ea.grad(ea.parse(SUMSQ), "x"))
    return out


@pytest.fixture(scope="module")
def result():
    return ea.optimize(ea.grad(ea.parse(SUMSQ), "x"), sizes={"n": 100})


# -- display -----------------------------------------------------------------------------------

def test_program_repr_is_program_text():
    p = ea.parse(SUMSQ)
    r = repr(p)
    assert r.startswith("<Program (fun ((x (vec n))) (sum n") and r.endswith(">")
    assert "params=" not in r and "Param(" not in r
    assert str(p) == ea.show_program(p)


def test_long_program_repr_is_cut():
    p = ea.jacobian(ea.parse((ROOT / "docs" / "examples" / "mlp.ad").read_text()),
                    ea.parse((ROOT / "docs" / "examples" / "mlp.ad").read_text()).params[0].name)
    assert len(str(p)) > 400
    assert len(repr(p)) < 450 and "..." in repr(p)


def test_ipython_pretty_and_html(result):
    pretty = pytest.importorskip("IPython.lib.pretty").pretty
    p = ea.parse(SUMSQ)
    assert pretty(p) == ea.show_program(p)
    assert pretty(p.body).startswith("(sum n")
    html = p._repr_html_()
    assert html.startswith("<pre") and "(fun ((x (vec n)))" in html
    assert "<" not in ea.parse("(fun ((x real)) (if (< x 0.0) x 1.0))")._repr_html_()[5:-6].replace(
        "<pre", "").split(">", 1)[1]                                    # text is escaped
    text = pretty(result)
    assert "phase" in text and "check: verified" in text and "(fun ((x (vec n)))" in text
    assert pretty(result.report) == result.report.summary()
    assert "<pre" in result._repr_html_() and "<pre" in result.report._repr_html_()


def test_result_and_report_reprs_are_one_line(result):
    r = repr(result)
    assert r.startswith("<OptimizeResult cost ") and "\n" not in r and "session=" not in r
    assert repr(result.report).startswith("<RunReport ") and "\n" not in repr(result.report)


# -- pickle and copy ---------------------------------------------------------------------------

@pytest.mark.parametrize("proto", [2, pickle.HIGHEST_PROTOCOL])
def test_programs_pickle_round_trip(proto):
    for p in _programs():
        q = pickle.loads(pickle.dumps(p, protocol=proto))
        assert q == p and hash(q) == hash(p) and q.body == p.body
        assert ea.show_program(q) == ea.show_program(p)


def test_programs_copy_and_deepcopy():
    for p in _programs():
        for q in (copy.copy(p), copy.deepcopy(p), copy.deepcopy([p, p])[0]):
            assert q == p and hash(q) == hash(p)
        assert copy.deepcopy(p.body) == p.body


def test_program_unpickles_in_another_process():
    """String hashes differ between processes: the cached hash must not travel."""
    p = ea.grad(ea.parse(SUMSQ), "x")
    code = ("import pickle, sys, eqsat_ad as ea\n"
            "p = pickle.loads(sys.stdin.buffer.read())\n"
            "print(ea.show_program(p)); print(p == ea.parse(ea.show_program(p)))")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(p), capture_output=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert text.strip().endswith("True") and ea.show_program(p) in text


def test_compiled_functions_pickle_and_copy(result):
    fast = ea.compile(result.program)
    x = np.array([0.5, -1.0, 2.0, 3.0])
    want = fast(x)
    for g in (pickle.loads(pickle.dumps(fast)), copy.copy(fast), copy.deepcopy(fast)):
        np.testing.assert_array_equal(g(x), want)
        np.testing.assert_array_equal(g(x=x), want)
        assert g.source == fast.source and g.program == fast.program


def test_interpreted_fallback_pickles():
    text = "(fun ((x (vec n))) (sum n (lambda (i) (length (build i (lambda (j) (get x j)))))))"
    f = ea.compile(ea.parse(text))
    assert f.fallback
    g = pickle.loads(pickle.dumps(f))
    x = np.arange(4.0)
    assert g.fallback == f.fallback and g(x=x) == f(x=x)


def test_optimize_result_pickles_without_the_egraph():
    res = ea.optimize(ea.grad(ea.parse(SUMSQ), "x"), sizes={"n": 10}, keep_egraph=True)
    assert res.session is not None
    back = pickle.loads(pickle.dumps(res))
    assert back.program == res.program and back.cost == res.cost and back.session is None
    assert back.report.summary() == res.report.summary()


# -- progress ------------------------------------------------------------------------------------

class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_true_works_and_is_silent_off_a_terminal(capsys):
    res = ea.optimize(ea.grad(ea.parse(SUMSQ), "x"), progress=True)
    assert res.report.check == "verified"
    assert capsys.readouterr().err == ""             # captured stderr is not a terminal
    ea.optimize(ea.grad(ea.parse(SUMSQ), "x"), progress=False)
    with pytest.raises(TypeError, match="progress must be"):
        ea.optimize(ea.grad(ea.parse(SUMSQ), "x"), progress="yes")


def test_progress_true_on_a_terminal_shows_every_step(monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    ea.optimize(ea.grad(ea.parse(SUMSQ), "x"), progress=True, extractor="dag")
    text = tty.getvalue()
    for step in ("loading rules", "phase inline", "finishing substitutions", "computing costs",
                 "extracting (dag extractor", "numeric check"):
        assert step in text, step
    assert text.endswith("\r")                        # the line is cleared at the end


def test_rules_check_shows_a_bar_on_a_terminal(monkeypatch, capsys):
    from eqsat_ad.rulecheck import main
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(["rules/tuple.egg", "--examples", "5"]) == 0
    assert "rules check" in tty.getvalue() and "rule" in tty.getvalue()
    assert "rules check" not in capsys.readouterr().out


def test_progress_counter_is_silent_off_a_terminal():
    from eqsat_ad.progress import counter, track
    s = io.StringIO()
    bar = counter(3, "x", stream=s)
    bar.update(); bar.close()
    assert list(track([1, 2], "y", stream=s)) == [1, 2]
    assert s.getvalue() == ""


def test_progress_log_lines_stay_and_are_plain_off_a_terminal():
    from eqsat_ad.progress import Progress
    plain = io.StringIO()
    Progress(plain).log("[   1.0s] one")
    assert plain.getvalue() == "[   1.0s] one\n"
    tty = _Tty()
    p = Progress(tty)
    p.log("[   1.0s] one")
    p.done()
    assert "[   1.0s] one\n" in tty.getvalue() and tty.getvalue().endswith("\r")


def test_rulecheck_report_shows_its_summary():
    from eqsat_ad.egraph.session import rules_dir
    from eqsat_ad.rulecheck import check_rules
    rep = check_rules([rules_dir() / "tuple.egg"], examples=3)
    assert repr(rep).startswith("<rulecheck.Report ") and "results=" not in repr(rep)
    pretty = pytest.importorskip("IPython.lib.pretty").pretty
    assert pretty(rep) == rep.summary()
