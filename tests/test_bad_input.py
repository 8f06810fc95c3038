"""A catalogue of bad input: each case ends in a clear error of the EqsatError family (with
file:line where a file is involved) or in documented behaviour -- never a crash from deep
inside, never a hang.  The table is in docs/trust.md.  Cases where another module does not
behave yet are strict xfails with the reason."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.errors import (EqsatError, ParseError, ResourceLimitError, RuleFileError,
                             ScheduleError)
from eqsat_ad.runtime import array_limit
from eqsat_ad.strategy.combinators import run, saturate

BAD = Path(__file__).resolve().parent / "data" / "bad"
SUM = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))")


# ---------------------------------------------------------------------------------------
# malformed rule files: RuleFileError naming file:line
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,line,message", [
    ("unbalanced.egg", 4, "never closed"),
    ("unknown_constructor.egg", 3, "Unbound function Foo"),
    ("unknown_ruleset.egg", 3, "nosuch"),
    ("run_schedule_in_rules.egg", 4, "run-schedule"),
    ("unterminated_string.egg", 2, "unterminated string"),
    ("stray_text.egg", 2, "outside any form"),
    ("wrong_arity.egg", 2, "Arity mismatch"),
])
def test_malformed_rule_file(name, line, message):
    f = BAD / name
    with pytest.raises(RuleFileError) as ei:
        ea.optimize(SUM, sizes={"n": 3}, rules=[f])
    e = ei.value
    assert e.file == str(f) and e.line == line, str(e)
    assert message in str(e) and str(e).startswith(f"{f}:{line}:")


def test_missing_rule_file():
    with pytest.raises(RuleFileError, match="cannot read rule file"):
        ea.optimize(SUM, rules=[BAD / "does_not_exist.egg"])


def test_malformed_rule_file_in_rule_checker():
    from eqsat_ad.rulecheck import main
    assert main([str(BAD / "unbalanced.egg")]) == 2


def test_malformed_program_file():
    f = BAD / "bad_program.ad"
    with pytest.raises(ParseError, match=r"bad_program\.ad:1:1"):
        ea.parse(f.read_text(), file="bad_program.ad")


# ---------------------------------------------------------------------------------------
# schedules naming rulesets that do not exist: ScheduleError naming it
# ---------------------------------------------------------------------------------------
def test_schedule_with_unknown_ruleset_python():
    with pytest.raises(ScheduleError, match="unknown ruleset 'nosuch'"):
        ea.optimize(SUM, schedule=saturate(run("ring", "nosuch")))


@pytest.mark.parametrize("name", ["unknown_ruleset_schedule.egg", "unknown_ruleset_combined.egg"])
def test_schedule_file_with_unknown_ruleset(name):
    with pytest.raises(ScheduleError, match="nosuch"):
        ea.optimize(SUM, schedule=BAD / name)


def test_schedule_of_wrong_kind():
    with pytest.raises(ScheduleError):
        ea.optimize(SUM, schedule=42)


# ---------------------------------------------------------------------------------------
# rules that never stop growing: stop at the node limit, in bounded time
# ---------------------------------------------------------------------------------------
def test_ac_blowup_stops_at_node_limit():
    names = "abcdefghijkl"                       # a 12-term sum of reals
    body = names[-1]
    for c in reversed(names[:-1]):
        body = f"(+ {c} {body})"
    prog = ea.parse(f"(fun ({' '.join(f'({c} real)' for c in names)}) {body})")
    res = ea.optimize(prog, rules=[BAD / "ac_blowup.egg"], schedule=saturate(run("ac")),
                      limits={"nodes": 20_000, "seconds": 120})
    assert res.report.stop_reason == "node limit"
    assert res.report.enodes >= 20_000          # overshoots by at most one iteration (documented)
    vals = {c: float(k) for k, c in enumerate(names)}
    assert ea.evaluate(res.program, **vals) == sum(vals.values())


# ---------------------------------------------------------------------------------------
# non-differentiable operations: the derivative of the branch taken
# ---------------------------------------------------------------------------------------
def test_if_on_the_input_differentiates_the_taken_branch():
    p = ea.parse("(fun ((x real)) (if (< x 0.0) (neg x) (* x x)))")
    g = ea.grad(p, "x")
    # x < 0: d(-x) = -1; at 0 the else branch is taken: d(x*x) = 2x = 0; x = 3: 6
    assert [ea.evaluate(g, x=v) for v in (-2.0, 0.0, 3.0)] == [-1.0, 0.0, 6.0]
    res = ea.optimize(g)
    assert [ea.evaluate(res.program, x=v) for v in (-2.0, 0.0, 3.0)] == [-1.0, 0.0, 6.0]
    assert [float(ea.compile(res.program)(x=v)) for v in (-2.0, 0.0, 3.0)] == [-1.0, 0.0, 6.0]


def test_relu_gradient_at_the_kink_is_the_else_branch():
    p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (if (> (get x i) 0.0) (get x i) 0.0))))")
    g = ea.grad(p, "x")
    x = np.array([-1.0, 0.0, 2.0])
    assert ea.evaluate(g, x=x).tolist() == [0.0, 0.0, 1.0]
    res = ea.optimize(g, sizes={"n": 100})
    assert ea.evaluate(res.program, x=x).tolist() == [0.0, 0.0, 1.0]


def test_comparison_result_cannot_be_differentiated():
    p = ea.parse("(fun ((x real)) (< x 1.0))")
    with pytest.raises(EqsatError):
        ea.grad(p, "x")


# ---------------------------------------------------------------------------------------
# division by zero, log/sqrt of non-positive numbers: NumPy's inf/nan, everywhere
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,at0,atm1", [
    ("(/ x 0.0)", np.nan, -np.inf),
    ("(/ 1.0 x)", np.inf, -1.0),
    ("(log x)", -np.inf, np.nan),
    ("(sqrt x)", 0.0, np.nan),
    ("(pow x -1.0)", np.inf, -1.0),
    ("(/ 1.0 0.0)", np.inf, np.inf),
    ("(log -1.0)", np.nan, np.nan),
])
def test_ieee_results_like_numpy(text, at0, atm1):
    p = ea.parse(f"(fun ((x real)) {text})")
    res = ea.optimize(p)
    fn = ea.compile(res.program)
    for x, want in ((0.0, at0), (-1.0, atm1)):
        for got in (ea.evaluate(p, x=x), ea.evaluate(res.program, x=x), fn(x=x)):
            assert np.allclose(got, want, equal_nan=True), (text, x, got, want)


def test_gradient_of_log_at_zero_is_inf():
    g = ea.grad(ea.parse("(fun ((x real)) (log x))"), "x")
    assert ea.evaluate(g, x=0.0) == np.inf


# documented behaviour (docs/trust.md): the optimiser assumes no division by zero happens
# (zero-div, onehot-div and sum-factor-div declare "@assume finite"), so 0/x is optimised to 0.0;
# the unoptimised program, the interpreter and the backend give NumPy's nan
def test_zero_divided_by_x_is_optimised_to_zero_assuming_no_division_by_zero():
    p = ea.parse("(fun ((x real)) (/ 0.0 x))")
    assert np.isnan(ea.evaluate(p, x=0.0)) and np.isnan(ea.compile(p)(x=0.0))
    res = ea.optimize(p)
    assert res.program.body == ea.parse_expr("0.0")
    assert ea.evaluate(res.program, x=2.0) == ea.evaluate(p, x=2.0) == 0.0


# ---------------------------------------------------------------------------------------
# sizes that would not fit in memory: refused before allocating, with the estimate
# ---------------------------------------------------------------------------------------
def test_huge_build_refused_by_interpreter_and_backend():
    p = ea.parse("(fun ((x (vec n))) (build 100000 (lambda (i) (build 100000 (lambda (j) (* (get x 0) 2.0))))))")
    for f in (lambda: ea.evaluate(p, x=np.ones(3)), lambda: ea.compile(p)(x=np.ones(3))):
        with pytest.raises(ResourceLimitError, match=r"74\.5 GiB.*limit of 2\.0 GiB"):
            f()


def test_outer_product_over_a_large_input_refused():
    p = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) (* (get x i) (get x j)))))))")
    with array_limit(1 << 20):                       # 1 MiB: a 1000 x 1000 result is 7.6 MiB
        for f in (lambda: ea.evaluate(p, x=np.ones(1000)), lambda: ea.compile(p)(x=np.ones(1000))):
            with pytest.raises(ResourceLimitError, match=r"7\.6 MiB"):
                f()


# regression: sizes of 10**12 used to overflow the i64 cost arithmetic in egglog
def test_huge_sizes_in_the_cost_model_are_just_numbers():
    g = ea.grad(SUM, "x")
    res = ea.optimize(g, sizes={"n": 10 ** 12})
    assert res.cost < res.cost_before


# ---------------------------------------------------------------------------------------
# very deep programs
# ---------------------------------------------------------------------------------------
def _deep(depth: int) -> str:
    text = "x"
    for k in range(depth):
        text = f"(+ 0.5 (* 0.999 {text}))" if k % 2 else f"(sin {text})"
    return f"(fun ((x real)) {text})"


@pytest.fixture(scope="module")
def deep5000():
    return ea.parse(_deep(5000))


def test_deep_program_front_end_and_ad(deep5000):
    p = deep5000
    assert ea.check_program(p) == ea.REAL
    v = ea.evaluate(p, x=0.3)
    g = ea.grad(p, "x")
    d = ea.evaluate(g, x=0.3)
    fd = (ea.evaluate(p, x=0.3 + 1e-6) - ea.evaluate(p, x=0.3 - 1e-6)) / 2e-6
    assert np.isfinite(v) and abs(d - fd) < 1e-5 * max(1.0, abs(fd))
    assert len(ea.show_program(p)) > 5000


def test_deep_program_optimize_gives_result_or_clear_error(deep5000):
    try:
        res = ea.optimize(deep5000, limits={"seconds": 30})
    except EqsatError as e:
        assert "too deep" in str(e)                 # documented limit of the e-graph encoder
    else:
        assert np.isclose(ea.evaluate(res.program, x=0.3), ea.evaluate(deep5000, x=0.3))


def test_deep_program_optimize_no_recursion_error():
    p = ea.parse(_deep(3000))
    try:
        ea.optimize(p, limits={"seconds": 30})
    except EqsatError:
        pass


def test_optimize_check_respects_program_sizes():
    p = ea.parse("(fun ((x (vec n))) (+ (get x 11) (get x 0)))")
    res = ea.optimize(p, sizes={"n": 12})
    assert not res.report.notes                      # checked at n = 12
    q = ea.parse("(fun ((x (vec n))) (get x 1000))")
    assert "numeric check skipped" in ea.optimize(q, sizes={"n": 12}).report.notes[0]
