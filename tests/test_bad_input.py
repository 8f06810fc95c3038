"""A catalogue of bad input: each case ends in a clear error of the EqsatError family (with
file:line where a file is involved) or in documented behaviour -- never a crash from deep
inside, never a hang.  The table is in docs/trust.md.  Cases where another module does not
behave yet are strict xfails with the reason."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.errors import (EqsatError, ParseError, ResourceLimitError, RuleFileError, ShapeError,
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
    # at most one iteration past the limit; an iteration predicted to go far past it is not run
    ph = res.report.phases[0]
    growth = max(b - a for a, b in zip([ph.enodes_before] + ph.enodes_per_iteration, ph.enodes_per_iteration))
    assert res.report.enodes <= 20_000 + growth
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
    assert ea.optimize(q, sizes={"n": 12}).report.check.startswith("skipped: ")


# ---------------------------------------------------------------------------------------
# the numeric check of optimize: runs wherever it can, says when it could not
# ---------------------------------------------------------------------------------------
def _prog(name: str):
    return ea.parse((BAD / name).read_text(), file=name)


def test_unsound_rule_caught_when_program_fails_at_small_sizes():
    # defined only for n >= 5: the check used to try n = 3, 4 only, skip, and let a wrong
    # program through; now it tries 1..8 and finds the disagreement at n = 5
    with pytest.raises(EqsatError, match=r"disagrees with the input program.*'n': 5"):
        ea.optimize(_prog("needs_n5.ad"), rules=[BAD / "unsound_sin.egg"])


def test_unsound_rule_caught_at_a_larger_size_when_small_ones_fail():
    p = ea.parse("(fun ((x (vec n))) (sin (get x 40)))")
    with pytest.raises(EqsatError, match="disagrees"):
        ea.optimize(p, rules=[BAD / "unsound_sin.egg"])          # checked at n = 64


def test_check_status_in_the_report():
    assert ea.optimize(SUM).report.check == "verified"
    assert ea.optimize(SUM, check=False).report.check == "disabled"
    res = ea.optimize(_prog("needs_n101.ad"), rules=[BAD / "unsound_sin.egg"])
    assert res.report.check.startswith("skipped: the input program fails")   # never "verified"
    assert "index 100 out of range" in res.report.check
    assert res.report.to_dict()["check"] == res.report.check
    assert any(n.startswith("numeric check skipped") for n in res.report.notes)


def test_check_uses_different_sizes_per_size_name():
    from eqsat_ad.optimize import _check_plans
    plans = _check_plans(["m", "n"], 3, None)
    assert plans[0] == {"m": 3, "n": 4}                   # a transposed index shows
    assert {"m": 5, "n": 5} in plans                      # programs that need m = n
    assert {v for d in plans for v in d.values()} >= set(range(1, 9))


def test_check_runs_the_compiled_program(monkeypatch):
    import eqsat_ad.backend as backend
    real = backend.compile

    def wrong(prog):                # a backend bug: the compiled program is off by one
        fn = real(prog)
        return lambda *a, **k: fn(*a, **k) + 1.0
    monkeypatch.setattr(backend, "compile", wrong)
    with pytest.raises(EqsatError, match="compiled by the NumPy backend disagrees"):
        ea.optimize(ea.grad(SUM, "x"), sizes={"n": 10})

    def crashing(prog):
        def fn(*a, **k):
            raise IndexError("boom")
        return fn
    monkeypatch.setattr(backend, "compile", crashing)
    with pytest.raises(EqsatError, match="compiled by the NumPy backend fails.*IndexError: boom"):
        ea.optimize(ea.grad(SUM, "x"), sizes={"n": 10})


def test_check_compares_shapes_and_structure():
    from eqsat_ad.optimize import _close
    assert not _close(np.ones(3), 1.0, 1e-7, 1e-9)             # no broadcasting
    assert not _close((1.0, 2.0), np.array([1.0, 2.0]), 1e-7, 1e-9)
    assert _close([np.ones(1), np.ones(2)], [np.ones(1), np.ones(2)], 1e-7, 1e-9)   # ragged
    assert _close(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), 1e-7, 1e-9)


# ---------------------------------------------------------------------------------------
# sizes: validated up front, never a Rust panic
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes,message", [
    ({"n": -1}, "positive"),                  # used to panic in egglog ("cost >= 0")
    ({"n": 0}, "positive"),
    ({"N": 10}, "unknown size name 'N'; the program's size names are: n"),
    ({"n": 10 ** 400}, "too large"),
    ({"n": 2 ** 63}, "too large"),
    ({"n": 2.5}, "positive integer"),
    ({"n": float("inf")}, "positive integer"),
    ({"n": True}, "bool"),
    ({"n": "10"}, "str"),
    ({"n": None}, "NoneType"),
])
def test_bad_sizes_are_clear_errors(sizes, message):
    try:
        ea.optimize(ea.grad(SUM, "x"), sizes=sizes)
    except EqsatError as e:
        assert message in str(e) and "n" in str(e)
    except BaseException as e:  # noqa: BLE001 - the point: nothing else escapes
        pytest.fail(f"{type(e).__name__} escaped: {e}")
    else:
        pytest.fail("bad sizes accepted")


def test_good_sizes_and_sizes_for_other_programs():
    g = ea.grad(SUM, "x")
    assert ea.optimize(g, sizes={"n": 1e3}).report.sizes == {"n": 1000}
    # one sizes dict for several programs: names a program lacks are ignored when its own
    # names all have a value
    assert ea.optimize(g, sizes={"n": 50, "m": 7}).report.sizes == {"n": 50}
    assert ea.optimize(g, sizes={"n": 2 ** 63 - 1}).cost < float("inf")


def test_size_parameter_names_are_known_sizes():
    p = ea.parse("(fun ((k size) (x (vec n))) (sum k (lambda (i) (get x i))))")
    assert ea.optimize(p, sizes={"k": 5, "n": 10}).report.sizes["n"] == 10


# ---------------------------------------------------------------------------------------
# the reader: size and depth caps before the parsing work grows; 64-bit integers
# ---------------------------------------------------------------------------------------
def _nested_lets(n: int) -> str:
    return ("(fun ((x real)) " + "".join(f"(let ((a{k} (+ x {k}.0))) " for k in range(n)) + "x"
            + ")" * n + ")")


def test_ten_thousand_nested_lets_refused_by_the_reader():
    # used to take 1.3 GB before "too deep to encode"; now refused in the linear reading pass
    text = _nested_lets(10_000)
    with pytest.raises(ParseError, match=r"lets\.ad:1:\d+: nesting deeper than 10000 levels"):
        ea.parse(text, file="lets.ad")
    assert ea.parse(_nested_lets(200), file="lets.ad")                     # real programs: fine
    from eqsat_ad.lang.syntax import set_parse_limits
    old = set_parse_limits(max_depth=100)
    try:
        with pytest.raises(ParseError, match="deeper than 100 levels"):
            ea.parse(_nested_lets(200))
        assert ea.parse(_nested_lets(200), max_depth=300)                 # per call
    finally:
        set_parse_limits(*old)


def test_huge_program_text_refused_before_parsing():
    # 11 MB: used to take 240 s and 1.6 GB before "too deep"; refused by the size cap
    text = "(fun ((x real)) (+ " + " ".join("(* x 1.5)" for _ in range(1_100_000)) + "))"
    with pytest.raises(ParseError, match=r"big\.ad:1: the text is 11000020 characters long, "
                                         r"more than the reader's limit of 4194304"):
        ea.parse(text, file="big.ad")


def test_wide_variadic_sum_counts_as_deep():
    # (+ t1 ... t20000) folds into a chain 20000 deep: refused while reading
    text = "(fun ((x real)) (+ " + " ".join("x" for _ in range(20_000)) + "))"
    with pytest.raises(ParseError, match="nesting deeper than 10000"):
        ea.parse(text)
    assert ea.parse("(fun ((x real)) (+ " + " ".join("x" for _ in range(500)) + "))")


def test_depth_counts_expressions_not_parentheses():
    from eqsat_ad.lang.syntax import _read_all
    # a lambda, a binding list and a parameter list add no expression level; the second
    # binding nests (fun 1, sum 2, let 3, let b 4, * 5)
    text = "(fun ((x (vec n))) (sum n (lambda (i) (let ((a (get x i)) (b 2.0)) (* a b)))))"
    _read_all(text, None, max_depth=5)
    with pytest.raises(ParseError, match=r"^1:68: nesting deeper than 4 levels"):
        _read_all(text, None, max_depth=4)


@pytest.mark.parametrize("literal", [str(10 ** 400), "9" * 5000, str(2 ** 63), str(-2 ** 63 - 1)])
def test_integer_literals_must_fit_in_64_bits(literal):
    with pytest.raises(ParseError, match="out of range: integers must fit in 64 bits"):
        ea.parse(f"(fun ((x (vec n))) (get x {literal}))")
    with pytest.raises(ParseError, match="out of range"):
        ea.parse(f"(fun ((x (vec {literal}))) (get x 0))")
    assert ea.parse(f"(fun ((x (vec n))) (get x {2 ** 63 - 1}))")


def test_huge_int_literal_file():
    with pytest.raises(ParseError, match=r"huge_int_literal\.ad:1:\d+: integer literal 1000.*\(401 digits\)"):
        ea.parse((BAD / "huge_int_literal.ad").read_text(), file="huge_int_literal.ad")


# ---------------------------------------------------------------------------------------
# inputs: nothing is lost silently (complex, bool, strings, a scalar for an array)
# ---------------------------------------------------------------------------------------
VS = ea.parse("(fun ((x (vec n)) (s real)) (* s (sum n (lambda (i) (get x i)))))")


@pytest.mark.parametrize("inputs,message", [
    (dict(x=np.array([1 + 2j, 3.0]), s=1.0), r"input 'x' .*complex"),
    (dict(x=np.array([True, False]), s=1.0), r"input 'x' .*bool"),
    (dict(x=[True, 2.0], s=1.0), r"input 'x' .*bool element"),
    (dict(x=[1j, 2.0], s=1.0), r"input 'x' .*complex element"),
    (dict(x=3.0, s=1.0), r"input 'x' should be \(vec n\) \(rank 1\), got a scalar"),
    (dict(x=np.array(["1.0", "2.0"]), s=1.0), r"input 'x' .*string"),
    (dict(x=[1.0], s=1 + 2j), r"input 's' should be real, got a complex number"),
    (dict(x=[1.0], s=np.complex128(1 + 2j)), r"input 's' should be real, got a complex number"),
    (dict(x=[1.0], s=True), r"input 's' .*bool"),
    (dict(x=[1.0], s="2.5"), r"input 's' .*string"),
    (dict(x=[1.0], s=[1.0]), r"input 's' should be real \(a scalar\)"),
    (dict(x=[1.0], s=10 ** 400), r"input 's' .*too large"),
    (dict(x=[10 ** 400], s=1.0), r"input 'x'"),
])
def test_lossy_inputs_are_refused(inputs, message):
    fn = ea.compile(VS)
    for run in (lambda: ea.evaluate(VS, **inputs), lambda: fn(**inputs)):
        with pytest.raises(ShapeError, match=message):
            run()


def test_dtype_policy_float64_out():
    fn = ea.compile(VS)
    x32 = np.ones(3, dtype=np.float32)
    assert ea.evaluate(VS, x=x32, s=np.float32(2.0)) == fn(x=x32, s=np.float32(2.0)) == 6.0
    g = ea.compile(ea.parse("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (get x i)))))"))
    assert g(x=x32).dtype == np.float64                              # float32 in, float64 out
    assert g(x=np.array([1, 2], dtype=np.int32)).tolist() == [2.0, 4.0]   # integers: converted
    assert g(x=np.array([1, 2], dtype=np.uint8)).dtype == np.float64


def test_index_and_size_inputs():
    p = ea.parse("(fun ((x (vec n)) (i index) (k size)) (* (get x i) k))")
    fn = ea.compile(p)
    for run in (lambda **kw: ea.evaluate(p, **kw), fn):
        assert run(x=[1.0, 2.0], i=1, k=3) == 6.0
        assert run(x=[1.0, 2.0], i=np.int64(1), k=3.0) == 6.0        # integral float: fine
        with pytest.raises(ShapeError, match="input 'i' .*bool"):
            run(x=[1.0, 2.0], i=True, k=3)
        with pytest.raises(ShapeError, match="input 'k' should be size .*non-negative"):
            run(x=[1.0, 2.0], i=0, k=-1)
        with pytest.raises(ShapeError, match="input 'k' .*64-bit"):
            run(x=[1.0, 2.0], i=0, k=10 ** 30)


# ---------------------------------------------------------------------------------------
# parameter names: any name the language allows works in keyword calls
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["self", "prog", "args", "inputs", "kwargs", "class", "def",
                                  "_M", "_more", "_extra", "np", "print"])
def test_any_parameter_name_works_by_keyword(name):
    p = ea.parse(f"(fun (({name} (vec n)) (y real)) (* y (sum n (lambda (i) (get {name} i)))))")
    assert ea.compile(p)(**{name: [1.0, 2.0], "y": 2.0}) == 6.0
    assert ea.compile(p)([1.0, 2.0], y=2.0) == 6.0
    assert ea.evaluate(p, **{name: [1.0, 2.0], "y": 2.0}) == 6.0
    ragged = ea.parse(f"(fun (({name} (vec n))) (build n (lambda (i) (build i (lambda (j) (get {name} j))))))")
    out = ea.compile(ragged)(**{name: [1.0, 2.0]})                # interpreter fallback
    assert [a.tolist() for a in out] == [[], [1.0]]


def test_language_keywords_are_not_parameter_names():
    for name in ("lambda", "fun", "let", "if"):
        with pytest.raises(ParseError, match="cannot be used as a parameter name"):
            ea.parse(f"(fun (({name} real)) 1.0)")


# ---------------------------------------------------------------------------------------
# the array limit is per thread (a contextvars variable): no spurious ResourceLimitErrors
# ---------------------------------------------------------------------------------------
def test_array_limit_is_per_thread():
    import threading
    from eqsat_ad import runtime
    p = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) (* (get x i) (get x j)))))))")
    fn = ea.compile(p)
    x = np.ones(300)                                    # 703 KiB results
    entered, done = threading.Event(), threading.Event()
    seen: dict = {}

    def tight():
        with array_limit(1024):
            entered.set()
            seen["tight limit"] = runtime.max_array_bytes()
            for run in (lambda: ea.evaluate(p, x=x), lambda: fn(x=x)):
                try:
                    run()
                except ResourceLimitError:
                    seen.setdefault("tight refused", 0)
                    seen["tight refused"] += 1
            done.wait(30)

    def other():
        entered.wait(30)
        try:
            seen["other limit"] = runtime.max_array_bytes()
            seen["other"] = [float(ea.evaluate(p, x=x)[0, 0]), float(fn(x=x)[0, 0])]
        except ResourceLimitError as e:                 # the old global limit did this
            seen["other"] = e
        finally:
            done.set()

    ts = [threading.Thread(target=tight), threading.Thread(target=other)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert seen["other"] == [1.0, 1.0], seen
    assert seen["other limit"] == runtime.max_array_bytes() == 2 * 2 ** 30
    assert seen["tight limit"] == 1024 and seen["tight refused"] == 2


def test_set_max_array_bytes_is_the_process_default():
    import threading
    from eqsat_ad import runtime
    old = runtime.set_max_array_bytes(1 << 20)
    try:
        got = []
        t = threading.Thread(target=lambda: got.append(runtime.max_array_bytes()))
        t.start()
        t.join()
        assert got == [1 << 20] and runtime.MAX_ARRAY_BYTES == 1 << 20
        with array_limit(4096):
            assert runtime.MAX_ARRAY_BYTES == 4096      # the limit in force here
        assert runtime.max_array_bytes() == 1 << 20
    finally:
        runtime.set_max_array_bytes(old)
    with pytest.raises(ValueError):
        runtime.set_max_array_bytes(-1)


# ---------------------------------------------------------------------------------------
# egglog commands in a rule file: refused before egglog runs them
# ---------------------------------------------------------------------------------------
def test_fail_include_rule_file_refused():
    with pytest.raises(RuleFileError, match=r"fail_include\.egg:3:1:.*'fail'"):
        ea.optimize(SUM, rules=[BAD / "fail_include.egg"])
