"""Parsing and printing of program text: round trips, located errors, library macros."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eqsat_ad.errors import EqsatError, ParseError
from eqsat_ad.lang import macros
from eqsat_ad.lang.ast import (Build, BoolLit, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,
                               Param, Prim, Program, Snd, Sum, Var)
from eqsat_ad.lang.binders import free_vars, struct_eq
from eqsat_ad.lang.syntax import (parse, parse_expr, parse_type, show_expr, show_flat,
                                  show_program)
from eqsat_ad.lang.types import INDEX, REAL, ArrayT, PairT, mat, vec

try:
    from tests.gen import programs
except ImportError:  # pragma: no cover
    from gen import programs  # type: ignore

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DOT = """
; the dot product, written with ifold
(fun ((x (vec n)) (w (vec n)))            ; parameters
  (ifold (lambda (acc i) (+ acc (* (get x i) (get w i)))) 0.0 (length x)))
"""


# --------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------
def test_parse_design_example():
    p = parse(DOT)
    assert p.params == (Param("x", vec("n")), Param("w", vec("n")))
    assert p.body == IFold("acc", "i",
                           Prim("+", (Var("acc"), Prim("*", (Get(Var("x"), Var("i")),
                                                             Get(Var("w"), Var("i")))))),
                           Num(0.0), Length(Var("x")))


@pytest.mark.parametrize("text,expected", [
    ("1.0", Num(1.0)), ("1e-3", Num(1e-3)), ("-2.5", Num(-2.5)), (".5", Num(0.5)),
    ("2E3", Num(2000.0)), ("inf", Num(math.inf)), ("-inf", Num(-math.inf)),
    ("3", Int(3)), ("-3", Int(-3)), ("0", Int(0)),
    ("true", BoolLit(True)), ("false", BoolLit(False)),
    ("x_1", Var("x_1")), ("dx~", Var("dx~")),
    ("(neg a)", Prim("neg", (Var("a"),))), ("(- a)", Prim("neg", (Var("a"),))),
    ("(- a b)", Prim("-", (Var("a"), Var("b")))),
    ("(+ a b c)", Prim("+", (Prim("+", (Var("a"), Var("b"))), Var("c")))),
    ("(real i)", Prim("real", (Var("i"),))),
    ("(if (and (< a b) (not c)) a b)",
     If(Prim("and", (Prim("<", (Var("a"), Var("b"))), Prim("not", (Var("c"),)))), Var("a"), Var("b"))),
    ("(let ((a 1.0) (b a)) b)", Let("a", Num(1.0), Let("b", Var("a"), Var("b")))),
    ("(build n (lambda (i) i))", Build(Var("n"), "i", Var("i"))),
    ("(sum 3 (lambda (i) 1.0))", Sum(Int(3), "i", Num(1.0))),
    ("(pair (fst p) (snd p))", Pair(Fst(Var("p")), Snd(Var("p")))),
])
def test_parse_expr_forms(text, expected):
    assert parse_expr(text) == expected


def test_nan_literal():
    e = parse_expr("nan")
    assert isinstance(e, Num) and math.isnan(e.value)
    assert show_expr(e) == "nan"


@pytest.mark.parametrize("text,expected", [
    ("real", REAL), ("(vec n)", vec("n")), ("(vec 3)", vec(3)), ("(mat m n)", mat("m", "n")),
    ("(array index n)", ArrayT(INDEX, "n")),
    ("(pair real (vec n))", PairT(REAL, vec("n"))), ("(vec ?)", vec(None)),
    ("(array (mat 2 k) n)", ArrayT(mat(2, "k"), "n")),
])
def test_parse_types(text, expected):
    assert parse_type(text) == expected


def test_comments_and_whitespace():
    p = parse("; leading comment\n(fun ((x real)) ; trailing\n  ; alone\n  (+ x 1.0)) ; end\n")
    assert p.body == Prim("+", (Var("x"), Num(1.0)))


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------
@SETTINGS
@given(programs(max_depth=5))
def test_round_trip_generated_programs(case):
    prog, _ = case
    text = show_program(prog)
    assert parse(text) == prog
    assert parse_expr(show_expr(prog.body)) == prog.body
    assert parse_expr(show_flat(prog.body)) == prog.body
    assert parse(show_program(prog, width=30)) == prog


@given(st.floats(allow_nan=False))
def test_floats_round_trip_exactly(v):
    e = Prim("+", (Num(v), Var("x")))
    back = parse_expr(show_expr(e))
    assert back == e and repr(back.args[0].value) == repr(v)


@given(st.integers(-2**63, 2**63 - 1))      # integer literals must fit in 64 bits
def test_ints_round_trip(k):
    assert parse_expr(show_expr(Int(k))) == Int(k)


def test_round_trip_hand_written():
    texts = [
        DOT,
        "(fun ((M (mat m n)) (v (vec n))) (build m (lambda (i) (sum n (lambda (j) "
        "(* (get (get M i) j) (get v j)))))))",
        "(fun ((x (vec 3)) (w real)) (let ((a (* w 2)) (b (pair a x))) (if (> (fst b) 0.0) "
        "(get (snd b) 2) (neg a))))",
        "(fun () (ifold (lambda (acc i) (build 2 (lambda (j) (+ (get acc j) (real i))))) "
        "(build 2 (lambda (j) 0.0)) 5))",
        "(fun ((p (pair real (vec n)))) (pow (fst p) -1.5e-10))",
    ]
    for t in texts:
        p = parse(t)
        assert parse(show_program(p)) == p
        assert parse(str(p)) == p


def test_pretty_printing_is_indented_and_narrow():
    p = parse("(fun ((M (mat m n)) (x (vec n)) (w (vec m))) "
              "(let ((y (build m (lambda (i) (sum n (lambda (j) (* (get (get M i) j) (get x j)))))))"
              " (z (ifold (lambda (acc i) (+ acc (* (get y i) (get w i)))) 0.0 (length y))))"
              " (if (> z 0.0) (pair z (tanh z)) (pair (neg z) (exp (- z 1e-3))))))")
    text = show_program(p)
    assert max(len(line) for line in text.splitlines()) <= 90
    assert text.splitlines()[1].startswith("  (let ((y ")
    narrow = show_program(p, width=50)
    assert max(len(line) for line in narrow.splitlines()) <= 50
    assert parse(narrow) == p
    assert show_expr(parse_expr("(+ a b)")) == "(+ a b)"


def test_str_of_program_is_program_text():
    p = parse(DOT)
    assert str(p) == show_program(p)


# --------------------------------------------------------------------------------------
# errors: file, line, column and a clear message
# --------------------------------------------------------------------------------------
def _err(text, parser=parse):
    with pytest.raises(ParseError) as ei:
        parser(text, file="prog.ad")
    e = ei.value
    assert e.file == "prog.ad"
    return e.line, e.column, e.message


def test_error_unclosed_paren_points_at_it():
    line, col, msg = _err("(fun ((x real))\n  (+ x (* x 2.0))")
    assert (line, col) == (1, 1) and "unclosed '('" in msg
    line, col, msg = _err("(fun ((x real))\n  (+ x (* x 2.0)")
    assert (line, col) == (2, 3) and "unclosed" in msg


def test_error_unexpected_close_paren():
    line, col, msg = _err("(fun ((x real)) x))")
    assert (line, col) == (1, 19) and "unexpected ')'" in msg


def test_error_unknown_form():
    line, col, msg = _err("(fun ((x real))\n  (frobnicate x))")
    assert (line, col) == (2, 3)
    assert "unknown form 'frobnicate'" in msg and "neither a core form nor a library function" in msg


@pytest.mark.parametrize("text,where,fragment", [
    ("(fun ((x real)) (build 3 x))", (1, 26), "expected (lambda (...) body) in (build N (lambda (i) e))"),
    ("(fun ((x real)) (build 3))", (1, 17), "'build' expects (build N (lambda (i) e))"),
    ("(fun ((x real)) (sum 3 (lambda (i j) x)))", (1, 32), "takes 1 parameter, got 2"),
    ("(fun ((x real)) (ifold (lambda (a) a) 0.0 3))", (1, 32), "takes 2 parameters, got 1"),
    ("(fun ((x real)) (ifold (lambda (a i) a) 0.0))", (1, 17), "'ifold' expects (ifold (lambda (acc i) e) init N)"),
    ("(fun ((x real))\n  (exp x x))", (2, 3), "'exp' expects 1 argument, got 2"),
    ("(fun ((x real)) (get x))", (1, 17), "'get' expects (get a i)"),
    ("(fun ((x real)) (if x x))", (1, 17), "'if' expects (if c a b)"),
    ("(fun ((x real)) (let (x 1.0) x))", (1, 23), "bad let binding x"),
    ("(fun ((x real)) (let () x))", (1, 22), "at least one binding"),
    ("(fun ((x real)) (lambda (i) x))", (1, 17), "'lambda' is only allowed"),
    ("(fun ((x real)) ())", (1, 17), "empty form"),
    ("(fun ((x real)) ((f) x))", (1, 17), "expected a form or function name"),
    ("(fun ((x real)) (+ x 1.2.3))", (1, 22), "bad number '1.2.3'"),
    ("(fun ((x real)) build)", (1, 17), "'build' is a form, not a value"),
    ("(fun ((x real)) (build 3 (lambda (3) x)))", (1, 35), "'3' cannot be used as a parameter name"),
])
def test_form_errors(text, where, fragment):
    line, col, msg = _err(text)
    assert fragment in msg
    assert (line, col) == where


@pytest.mark.parametrize("text,where,fragment", [
    ("(fun ((x (vecc n))) x)", (1, 10), "bad type (vecc n)"),
    ("(fun ((x reel)) x)", (1, 10), "bad type 'reel'"),
    ("(fun ((x (vec (n)))) x)", (1, 15), "bad size (n)"),
    ("(fun (x real) x)", (1, 7), "bad parameter x: expected (name type)"),
    ("(fun x x)", (1, 6), "bad parameter list x"),
    ("(fun ((x real) (x real)) x)", (1, 16), "declared twice"),
    ("(fun ((x real)))", (1, 1), "'fun' expects (fun ((x type) ...) body)"),
    ("(+ 1 2)", (1, 1), "expected a program"),
    ("(fun ((x real)) x)\n(fun ((y real)) y)", (2, 1), "trailing text after the program"),
    ("", (1, 1), "expected program, got empty text"),
    ("   ; only a comment\n", (1, 1), "empty text"),
])
def test_program_errors(text, where, fragment):
    line, col, msg = _err(text)
    assert fragment in msg
    assert (line, col) == where


def test_parse_expr_errors():
    line, col, msg = _err("(+ a b) c", parse_expr)
    assert (line, col) == (1, 9) and "trailing text after the expression" in msg
    line, col, msg = _err("(fun ((x real)) x)", parse_expr)
    assert "'fun' is only allowed at the top" in msg


def test_error_renders_file_line_col():
    with pytest.raises(EqsatError) as ei:
        parse("(fun ((x real))\n  (foo x))", file="f.ad")
    assert str(ei.value).startswith("f.ad:2:3: unknown form 'foo'")


# --------------------------------------------------------------------------------------
# library macros
# --------------------------------------------------------------------------------------
@pytest.fixture
def test_macros():
    def twice(a):
        return Prim("+", (a, a))

    def tmap(v, f):
        i = macros.fresh_name("i", v, f)
        return Build(Length(v), i, f(Get(v, Var(i))))

    def boom(a):
        raise EqsatError("boom: argument must be a vector")

    macros.register("t_twice", twice, arity=1, doc="(t_twice a): a + a")
    macros.register("t_map", tmap, arity=2, doc="(t_map v (lambda (a) e))")
    macros.register("t_boom", boom, arity=(1, 2))
    yield
    for name in ("t_twice", "t_map", "t_boom"):
        macros.unregister(name)


def test_macro_expands_to_core_forms(test_macros):
    p = parse("(fun ((w real)) (t_twice (* w 2.0)))")
    assert p.body == Prim("+", (Prim("*", (Var("w"), Num(2.0))),) * 2)
    assert "t_twice" not in show_program(p)
    assert parse(show_program(p)) == p


def test_macro_with_lambda_argument_is_capture_free(test_macros):
    # the lambda body mentions a free i: the loop variable of t_map must not capture it
    e = parse_expr("(t_map x (lambda (a) (* a (real i))))")
    assert isinstance(e, Build) and e.var != "i"
    assert e.body == Prim("*", (Get(Var("x"), Var(e.var)), Prim("real", (Var("i"),))))
    # and nested macro calls work (inner ones are expanded first)
    e2 = parse_expr("(t_map (t_map x (lambda (a) (t_twice a))) (lambda (b) (neg b)))")
    assert isinstance(e2, Build) and isinstance(e2.size, Length) and isinstance(e2.size.array, Build)


def test_macro_arity_and_errors(test_macros):
    line, col, msg = _err("(fun ((w real)) (t_twice w w))")
    assert (line, col) == (1, 17) and "'t_twice' expects 1 argument, got 2" in msg
    assert "(t_twice a): a + a" in msg
    line, col, msg = _err("(fun ((w real))\n (t_boom w))")
    assert (line, col) == (2, 2) and "in (t_boom ...): boom" in msg
    line, col, msg = _err("(fun ((w real)) (t_boom))")
    assert "1 or 2 arguments" in msg
    with pytest.raises(EqsatError, match="core form"):
        macros.register("build", lambda *a: a[0])


def test_unknown_form_lists_library_functions(test_macros):
    _, _, msg = _err("(fun ((w real)) (nope w))")
    assert "t_twice" in msg


def test_lambda_application_is_capture_free():
    lam = macros.Lambda(("a",), parse_expr("(sum n (lambda (i) (* a (real i))))"))
    out = lam(Var("i"))
    assert out.var != "i" and "i" in free_vars(out)
    with pytest.raises(EqsatError):
        lam(Var("a"), Var("b"))


# --------------------------------------------------------------------------------------
# deep programs
# --------------------------------------------------------------------------------------
def test_deep_program_parses_and_prints():
    depth = 5000
    text = "(fun ((x real)) " + "(+ 1.0 " * depth + "x" + ")" * depth + ")"
    p = parse(text)
    out = show_program(p)
    back = parse(out)
    assert struct_eq(back.body, p.body) and hash(back.body) == hash(p.body)
    nested = "(fun ((x (vec n))) " + "(sum n (lambda (i) " * 2000 + "(get x i)" + "))" * 2000 + ")"
    q = parse(nested)
    assert struct_eq(parse(show_program(q)).body, q.body)


def test_deep_unclosed_error_is_located():
    with pytest.raises(ParseError) as ei:
        parse("(fun ((x real)) " + "(+ 1.0 " * 3000 + "x" + ")" * 2999 + ")")
    assert ei.value.line == 1


def test_program_with_no_params_and_print():
    p = Program((), If(BoolLit(True), Num(1.0), Num(2.0)))
    assert show_program(p) == "(fun ()\n  (if true 1.0 2.0))"
    assert parse(show_program(p)) == p
