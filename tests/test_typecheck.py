"""Type checking, elaboration (explicit numeric promotion) and annotation."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from eqsat_ad.errors import TypeCheckError
from eqsat_ad.lang.primitives import ARG_EXTREMES
from eqsat_ad.lang.ast import (BINARY_ARITH, COMPARISONS, Int, Num, Param, Prim, Program, Var,
                               iter_nodes)
from eqsat_ad.lang.syntax import parse, parse_expr, show_expr
from eqsat_ad.lang.typecheck import (annotate, check_program, elaborate, elaborate_expr,
                                     program_env, type_of)
from eqsat_ad.lang.types import (BOOL, INDEX, REAL, SIZE, ArrayT, PairT, mat, show_type, vec)

try:
    from tests.gen import program_env_values, programs, tiny_eval
except ImportError:  # pragma: no cover
    from gen import program_env_values, programs, tiny_eval  # type: ignore

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ENV = {"x": vec("n"), "y": vec("n"), "z": vec("m"), "M": mat("m", "n"), "w": REAL,
       "n": SIZE, "m": SIZE, "i": INDEX, "b": BOOL}


def T(text, env=ENV):
    return show_type(type_of(parse_expr(text), env))


# --------------------------------------------------------------------------------------
# well-typed expressions
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("1.0", "real"), ("3", "index"), ("true", "bool"), ("n", "size"),
    ("(+ w 1.0)", "real"), ("(+ w 1)", "real"), ("(* 2 w)", "real"),
    ("(+ i 1)", "index"), ("(+ i n)", "index"), ("(+ n n)", "size"), ("(+ w i)", "real"),
    ("(/ i 2)", "real"), ("(pow 2 3)", "real"), ("(neg i)", "real"), ("(exp 1)", "real"),
    ("(real i)", "real"), ("(real n)", "real"),
    ("(< w 1)", "bool"), ("(= i n)", "bool"), ("(and (< w 1.0) (not b))", "bool"),
    ("(= b true)", "bool"),
    ("(get x i)", "real"), ("(get x 0)", "real"), ("(get x n)", "real"),
    ("(get M 0)", "(vec n)"), ("(get (get M i) i)", "real"),
    ("(length x)", "size"), ("(length M)", "size"),
    ("(build n (lambda (j) (get x j)))", "(vec n)"),
    ("(build (length x) (lambda (j) 1.0))", "(vec n)"),
    ("(build (length (get M 0)) (lambda (j) 1.0))", "(vec n)"),
    ("(build 3 (lambda (j) 1.0))", "(vec 3)"),
    ("(build i (lambda (j) 1.0))", "(vec ?)"),
    ("(build (+ n 1) (lambda (j) 1.0))", "(vec ?)"),
    ("(build m (lambda (r) (build n (lambda (c) (get (get M r) c)))))", "(mat m n)"),
    ("(build n (lambda (j) j))", "(array index n)"),
    ("(let ((k (length z))) (build k (lambda (j) 0.0)))", "(vec m)"),
    ("(sum n (lambda (j) (get x j)))", "real"),
    ("(sum n (lambda (j) j))", "index"),
    ("(ifold (lambda (acc j) (+ acc (get x j))) 0.0 n)", "real"),
    ("(ifold (lambda (acc j) (+ acc (get x j))) 0 n)", "real"),      # Int init promoted
    ("(ifold (lambda (acc j) (+ acc j)) 0 n)", "index"),
    ("(ifold (lambda (acc j) (build n (lambda (k) (+ (get acc k) 1.0)))) x n)", "(vec n)"),
    ("(if b x y)", "(vec n)"), ("(if b 1 2.0)", "real"),
    ("(if b (build n (lambda (j) 0.0)) (build i (lambda (j) 1.0)))", "(vec n)"),
    ("(pair w x)", "(pair real (vec n))"), ("(fst (pair w x))", "real"),
    ("(snd (pair w x))", "(vec n)"),
    ("(let ((a w) (c (* a 2.0))) (pair a c))", "(pair real real)"),
])
def test_types(text, expected):
    assert T(text) == expected


def test_let_shadowing_a_size_name():
    # inside the let, n is a real: (length x) still names the outer size n in the type
    assert T("(let ((n 1.0)) (build (length x) (lambda (j) n)))") == "(vec n)"
    assert T("(let ((n 3)) (build n (lambda (j) 0.0)))") == "(vec 3)"
    assert T("(build n (lambda (n) (real n)))") == "(vec n)"


def test_check_program_result_types():
    assert check_program(parse("(fun ((x (vec n)) (w (vec n))) "
                               "(ifold (lambda (acc i) (+ acc (* (get x i) (get w i)))) 0.0 (length x)))")) == REAL
    assert check_program(parse("(fun ((M (mat m n))) (build n (lambda (c) (build m (lambda (r) "
                               "(get (get M r) c))))))")) == mat("n", "m")
    assert check_program(parse("(fun ((x (vec 3))) (get x 2))")) == REAL
    assert program_env(parse("(fun ((x (vec n)) (k size)) x)")) == {"x": vec("n"), "n": SIZE, "k": SIZE}


# --------------------------------------------------------------------------------------
# errors name the expression and what was expected
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,message", [
    ("(get x 1.5)", "type error in (get x 1.5): index must be an index, got real"),
    ("(+ x y)", "type error in (+ x y): operand 1 of '+' must be a number, got (vec n)"),
    ("(+ w q)", "unknown name 'q' in (+ w q)"),
    ("q", "unknown name 'q' in q"),
    ("(if 1 w w)", "type error in (if 1 w w): condition must be a bool, got index"),
    ("(if b w x)", "type error in (if b w x): the else branch must be of the then branch's type real, got (vec n)"),
    ("(if b x z)", "the else branch must be of the then branch's type (vec n), got (vec m)"),
    ("(get w 0)", "type error in (get w 0): array must be an array, got real"),
    ("(length w)", "argument of length must be an array, got real"),
    ("(build w (lambda (j) 1.0))", "size must be a size, got real"),
    ("(sum n (lambda (j) x))", "the body of sum must be a number, got (vec n)"),
    ("(ifold (lambda (a j) w) x m)", "the body of ifold must be of the accumulator's type (vec n), got real"),
    ("(ifold (lambda (a j) z) x m)", "got (vec m)"),
    ("(fst w)", "argument of fst must be a pair, got real"),
    ("(and b w)", "operand 2 of 'and' must be a bool, got real"),
    ("(not 1.0)", "operand 1 of 'not' must be a bool, got real"),
    ("(< b 1.0)", "operand 1 of '<' must be a number, got bool"),
    ("(exp x)", "operand 1 of 'exp' must be a number, got (vec n)"),
    ("(let ((a 1.0)) (+ a j))", "unknown name 'j' in (+ a j)"),
    ("(build n (lambda (j) (get x j)))" + "", None),
])
def test_type_errors(text, message):
    if message is None:
        type_of(parse_expr(text), ENV)
        return
    with pytest.raises(TypeCheckError) as ei:
        type_of(parse_expr(text), ENV)
    assert message in str(ei.value)


def test_prim_arity_and_unknown_operator_errors():
    with pytest.raises(TypeCheckError, match="'exp' takes 1 argument, got 2"):
        type_of(Prim("exp", (Num(1.0), Num(2.0))), {})
    with pytest.raises(TypeCheckError, match="unknown operator 'foo'"):
        type_of(Prim("foo", (Num(1.0),)), {})


def test_long_expressions_are_truncated_in_messages():
    body = "(+ " * 30 + "w" + " 1.0)" * 30
    with pytest.raises(TypeCheckError) as ei:
        type_of(parse_expr(f"(get {body} 0)"), ENV)
    msg = str(ei.value)
    assert "..." in msg and len(msg) < 200


def test_program_errors():
    with pytest.raises(TypeCheckError, match="declared twice"):
        check_program(Program((Param("x", REAL), Param("x", REAL)), Var("x")))
    with pytest.raises(TypeCheckError, match="clashes"):
        check_program(Program((Param("n", REAL), Param("x", vec("n"))), Var("x")))
    with pytest.raises(TypeCheckError, match="unknown name 'm'"):
        check_program(parse("(fun ((x (vec n))) (build m (lambda (i) 0.0)))"))


# --------------------------------------------------------------------------------------
# elaboration
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("(* 2 w)", "(* 2.0 w)"),
    ("(+ w i)", "(+ w (real i))"),
    ("(+ i n)", "(+ i n)"),
    ("(/ i 2)", "(/ (real i) 2.0)"),
    ("(exp i)", "(exp (real i))"),
    ("(< i 2.5)", "(< (real i) 2.5)"),
    ("(if b 1 w)", "(if b 1.0 w)"),
    ("(ifold (lambda (acc j) (+ acc (get x j))) 0 n)", "(ifold (lambda (acc j) (+ acc (get x j))) 0.0 n)"),
    ("(ifold (lambda (acc j) (+ acc j)) 0.0 n)", "(ifold (lambda (acc j) (+ acc (real j))) 0.0 n)"),
    ("(get x (+ i 1))", "(get x (+ i 1))"),
    ("(sum n (lambda (j) (* (get x j) j)))", "(sum n (lambda (j) (* (get x j) (real j))))"),
])
def test_elaborate_expr(text, expected):
    assert show_expr(elaborate_expr(parse_expr(text), ENV)) == expected


def test_elaborate_program_and_idempotence():
    p = parse("(fun ((x (vec n)) (w real)) (sum n (lambda (i) (* 2 (+ (get x i) (* i w))))))")
    e = elaborate(p)
    assert show_expr(e.body) == "(sum n (lambda (i) (* 2.0 (+ (get x i) (* (real i) w)))))"
    assert elaborate(e) is e
    q = parse("(fun ((x (vec n))) (get x 0))")
    assert elaborate(q) is q                         # nothing to do: the same object


def _operands_homogeneous(e, types):
    for n in iter_nodes(e):
        if isinstance(n, Prim) and (n.op in BINARY_ARITH or n.op in COMPARISONS):
            a, b = (types[id(x)] for x in n.args)
            # index and size are both integers: mixing them needs no cast, e.g. (- n 1)
            assert a == b or {a, b} == {INDEX, SIZE}, (show_expr(n), a, b)
        if isinstance(n, Prim) and n.op not in ("real", "and", "or", "not", *ARG_EXTREMES) and len(n.args) == 1:
            assert types[id(n.args[0])] == REAL, show_expr(n)


@SETTINGS
@given(programs(max_depth=5))
def test_generated_programs_typecheck_and_elaborate(case):
    prog, inputs = case
    t = check_program(prog)
    e = elaborate(prog)
    assert check_program(e) == t
    assert elaborate(e) == e                                   # idempotent
    types = annotate(e.body, program_env(e))
    assert types[id(e.body)] == t
    assert all(id(n) in types for n in iter_nodes(e.body))
    _operands_homogeneous(e.body, types)
    env = program_env_values(prog, inputs)
    a, b = tiny_eval(prog.body, env), tiny_eval(e.body, env)
    assert repr(a) == repr(b) or a == b


@SETTINGS
@given(programs(real_result=True, smooth=True, max_depth=4))
def test_real_result_programs_are_real(case):
    prog, _ = case
    assert check_program(prog) == REAL
    assert not any(isinstance(n, Prim) and n.op in COMPARISONS for n in iter_nodes(prog.body))


def test_annotate_types_every_node():
    e = parse_expr("(sum n (lambda (j) (* (get x j) 2.0)))")
    types = annotate(e, ENV)
    body = e.body
    assert types[id(e)] == REAL
    assert types[id(body.args[0].array)] == vec("n")
    assert types[id(body.args[0].index)] == INDEX
    assert types[id(e.size)] == SIZE


def test_deep_expression_typechecks():
    e = Var("w")
    for k in range(5000):
        e = Prim("+", (e, Int(1))) if k % 2 else Prim("*", (e, Num(2.0)))
    assert type_of(e, ENV) == REAL
    el = elaborate_expr(e, ENV)
    assert not any(isinstance(n, Int) for n in iter_nodes(el))
    assert isinstance(annotate(el, ENV), dict)


def test_types_of_pairs_and_sizes_are_structural():
    assert type_of(parse_expr("(pair (length x) (build 2 (lambda (j) j)))"), ENV) == \
        PairT(SIZE, ArrayT(INDEX, 2))
