"""The default schedule's placement of shipped rule files, and negdiv.egg's start => goal.

A rule file added to ``eqsat_ad/rules/`` declares its phase with ``;; @phase NAME``; one that
declares none runs in ``user`` (before, it ran in no phase at all: the report's "loaded but not
run" note was the only trace).  negdiv moves a negation out of a quotient so that the invariant
factor under it leaves the sum (the Gaussian-mixture gradient's shape).  The finish phase's
growth bound lets it saturate on the Rosenbrock Hessian-vector product."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import eqsat_ad as ea
import eqsat_ad.egraph.session as session_mod
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.errors import RuleFileError
from eqsat_ad.strategy.combinators import phases_of, rulesets_used, seq, to_egglog
from eqsat_ad.strategy.defaults import SHIPPED_RULESETS, default_schedule, shipped_placements

optimize_mod = importlib.import_module("eqsat_ad.optimize")    # the module, not the function

SQUARE = '(rewrite (Mul a a) (Pow a (Num 2.0)) :ruleset {rs} :name "square-{rs}")\n'
PROG = "(fun ((x (vec n))) (sum n (lambda (i) (* (exp (get x i)) (exp (get x i))))))"


def _ship(monkeypatch, tmp_path, banner: str, rs: str):
    """Make ``rs.egg`` (with ``banner``) one of the shipped rule files for this test."""
    f = tmp_path / f"{rs}.egg"
    f.write_text(banner + f"(ruleset {rs})\n" + SQUARE.format(rs=rs))
    shipped = list(session_mod.default_rule_files())
    monkeypatch.setattr(session_mod, "default_rule_files", lambda: shipped + [f])
    monkeypatch.setattr(optimize_mod, "default_rule_files", lambda: shipped + [f])
    return f


def _where(rs: str, schedule) -> list[str]:
    return [ph.name for ph in phases_of(schedule) if rs in rulesets_used(ph.body)]


def test_a_shipped_file_without_a_pragma_runs_in_the_user_phase(monkeypatch, tmp_path):
    _ship(monkeypatch, tmp_path, ";; squares, no phase\n", "newfile")
    assert shipped_placements()["newfile"] == "user"
    assert _where("newfile", default_schedule()) == ["user", "split"]     # split reruns what user runs
    res = ea.optimize(ea.parse(PROG), sizes={"n": 10})
    assert not [n for n in res.report.notes if n.startswith("loaded but not run")], res.report.notes
    user = next(ph for ph in res.report.phases if ph.name == "user")
    assert user.matches.get("square-newfile", 0) >= 1


def test_a_shipped_file_with_a_pragma_runs_in_its_phase(monkeypatch, tmp_path):
    _ship(monkeypatch, tmp_path, ";; squares\n;; @phase finish\n", "newfile2")
    assert shipped_placements()["newfile2"] == "finish"
    # (lincomb runs finish's rulesets too: strategy.defaults.ALSO_RUNS)
    assert _where("newfile2", default_schedule()) == ["finish", "lincomb"]


def test_the_rulesets_the_phases_always_run_are_not_sent_to_user():
    placed = shipped_placements()
    assert not [r for r in SHIPPED_RULESETS if placed.get(r) == "user"]
    assert placed["negdiv"] == "algebra"


def test_a_negation_in_a_quotient_no_longer_hides_an_invariant_factor():
    # the Gaussian-mixture gradient's shape: sum_k ((-(a_k t) c_k) / s_k) with t invariant in k
    # (it depends on the outer i only); t leaves the sum, so the loop over k is no longer
    # inside the loop over i for the t part
    src = ("(fun ((a (vec n)) (c (vec n)) (s (vec n)) (u (vec m)))"
           " (build m (lambda (i) (sum n (lambda (k)"
           " (/ (* (neg (* (get a k) (exp (get u i)))) (get c k)) (get s k)))))))")
    res = ea.optimize(ea.parse(src), sizes={"n": 1000, "m": 1000})
    text = ea.show_expr(res.program.body)
    # the sum over k does not depend on i: it is computed once, outside the build
    assert res.cost < res.cost_before / 50, (res.cost_before, res.cost, text)
    rng = np.random.default_rng(3)
    inputs = dict(a=rng.uniform(-1, 1, 7), c=rng.uniform(-1, 1, 7), s=rng.uniform(1, 2, 7), u=rng.uniform(-1, 1, 5))
    want = evaluate(ea.parse(src), **inputs)
    assert np.allclose(evaluate(res.program, **inputs), want)
    assert np.allclose(ea.compile(res.program)(**inputs), want)


def test_the_algebra_phase_sees_through_a_negation_in_a_quotient():
    # negdiv runs with deepinv and invariant: the phases up to algebra already take t out of
    # the sum (placed after them, only the growth-bounded commute and split phases reran the
    # algebra on what it exposed, and on the Gaussian-mixture gradient they stopped short)
    src = ("(fun ((a (vec n)) (c (vec n)) (s (vec n)) (u (vec m)))"
           " (build m (lambda (i) (sum n (lambda (k)"
           " (/ (* (neg (* (get a k) (exp (get u i)))) (get c k)) (get s k)))))))")
    phases = phases_of(default_schedule())
    upto = phases[:[ph.name for ph in phases].index("algebra") + 1]
    assert "negdiv" in rulesets_used(upto[-1].body)
    res = ea.optimize(ea.parse(src), sizes={"n": 1000, "m": 1000}, schedule=seq(*upto))
    assert res.cost < res.cost_before / 50, (res.cost_before, res.cost, ea.show_expr(res.program.body))


def test_a_bounded_phase_whose_first_iteration_explodes_is_undone(monkeypatch):
    # the first iteration of a growth-bounded phase runs on a snapshot (egglog push/pop) and is
    # undone when it passes UNDO_FACTOR times the bound; with a tiny factor every such iteration
    # is, and the e-graph is exactly as the phase found it; the next phase runs the same rulesets
    # (their combined ruleset, declared outside the snapshot, survives the pop)
    import eqsat_ad.driver as D
    from eqsat_ad.strategy.combinators import phase, run, saturate, seq
    rs = ("let", "tuple", "fuse", "fission", "ring", "cond", "fold", "motion", "comm")
    # (only after a phase that ended at a bound: here inline's iteration cap)
    s = seq(phase("inline", saturate(run("let", "tuple", "fuse", "fission", "ring")), iterations=2),
            phase("grow", saturate(run(*rs)), growth=1.5),
            phase("again", saturate(run(*rs)), iterations=3))
    prog = ea.parse("(fun ((x (vec n)) (y (vec n))) (sum n (lambda (i) (* (exp (get x i)) (+ (get y i) 1.0)))))")
    monkeypatch.setattr(D, "UNDO_FACTOR", 1e-6)
    res = ea.optimize(prog, sizes={"n": 10}, schedule=s)
    inline, grow, again = res.report.phases
    assert inline.stop_reason == "iteration limit"
    assert (grow.iterations, grow.stop_reason) == (0, "node limit")
    assert grow.enodes_after == grow.enodes_before == inline.enodes_after
    assert any("first iteration" in n and "undone" in n for n in res.report.notes), res.report.notes
    assert again.iterations >= 1 and again.enodes_after > grow.enodes_after
    assert res.report.check == "verified"
    monkeypatch.setattr(D, "UNDO_FACTOR", 1e6)
    res2 = ea.optimize(prog, sizes={"n": 10}, schedule=s)
    assert res2.report.phases[1].iterations >= 1
    assert not any("undone" in n for n in res2.report.notes)
    # after a saturated phase there is no snapshot
    monkeypatch.setattr(D, "UNDO_FACTOR", 1e-6)
    s3 = seq(phase("inline", saturate(run("let", "tuple", "fuse", "fission", "ring"))), *s.steps[1:])
    res3 = ea.optimize(prog, sizes={"n": 10}, schedule=s3)
    assert res3.report.phases[0].stop_reason == "saturated" and res3.report.phases[1].iterations >= 1


def test_a_guarded_phase_tries_every_iteration_on_a_snapshot(monkeypatch, tmp_path):
    # ``guarded=true`` (a schedule file's phase pragma; Limits.guarded): every iteration of the
    # phase runs on a snapshot first, also after a saturated phase -- where an unguarded phase
    # runs none -- and is undone past UNDO_FACTOR times the bound
    import eqsat_ad.driver as D
    from eqsat_ad.strategy.combinators import Limits
    from eqsat_ad.strategy.schedule_file import load_schedule
    f = tmp_path / "guarded.egg"
    f.write_text("(unstable-combined-ruleset inl let tuple fuse fission ring)\n"
                 "(unstable-combined-ruleset more let tuple fuse fission ring cond fold motion comm)\n"
                 ";; @phase inline\n(run-schedule (saturate (run inl)))\n"
                 ";; @phase grow growth=1.5 guarded=true\n(run-schedule (saturate (run more)))\n")
    s = load_schedule(f)
    assert s.steps[1].limits == Limits(growth=1.5, guarded=True)
    assert "guarded=true" in to_egglog(s) and Limits(guarded=True).tighter(Limits()).guarded
    prog = ea.parse("(fun ((x (vec n)) (y (vec n))) (sum n (lambda (i) (* (exp (get x i)) (+ (get y i) 1.0)))))")
    monkeypatch.setattr(D, "UNDO_FACTOR", 1e-6)
    res = ea.optimize(prog, sizes={"n": 10}, schedule=s)
    inline, grow = res.report.phases
    assert inline.stop_reason == "saturated"
    assert (grow.iterations, grow.stop_reason) == (0, "node limit"), res.report.notes
    assert any("first iteration" in n and "undone" in n for n in res.report.notes), res.report.notes
    # unguarded, after a saturated phase, the same phase runs without a snapshot
    f.write_text(f.read_text().replace(" guarded=true", ""))
    res2 = ea.optimize(prog, sizes={"n": 10}, schedule=load_schedule(f))
    assert res2.report.phases[1].iterations >= 1 and not any("undone" in n for n in res2.report.notes)
    with pytest.raises(RuleFileError, match="guarded=true"):
        f.write_text(";; @phase grow guarded=yes\n(run-schedule (run ring))\n")
        load_schedule(f)


def test_the_finish_phase_saturates_on_the_rosenbrock_hessian_vector_product():
    # factoring and constant folding saturate there at 1.56x the e-graph finish starts with; with
    # a growth bound of 1.5x the phase stopped after one iteration, 3 % costlier than the finish
    # phase run to saturation and than saturating every ruleset (benchmarks/results/strategies.md)
    from eqsat_ad.bench import corpus as C
    from eqsat_ad.strategy.combinators import phase, run, saturate
    e = C.get("rosenbrock-hvp")
    g = C.derivative_program(e)
    res = ea.optimize(g, sizes=e.bench_sizes[1])
    assert [ph.stop_reason for ph in res.report.phases if ph.name == "finish"] == ["saturated"]
    phases = phases_of(default_schedule())
    k = [ph.name for ph in phases].index("finish")
    unbounded = seq(*phases[:k], phase("finish", saturate(run(*rulesets_used(phases[k].body)))), *phases[k + 1:])
    ref = ea.optimize(g, sizes=e.bench_sizes[1], schedule=unbounded)
    assert res.cost <= ref.cost * (1 + 1e-9), (res.cost, ref.cost)
    rng = np.random.default_rng(5)
    inputs = dict(x=rng.uniform(-1, 1, 6), dx=rng.uniform(-1, 1, 6))
    assert np.allclose(evaluate(res.program, **inputs), evaluate(g, **inputs))
