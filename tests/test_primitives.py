"""The primitive table (eqsat_ad/lang/primitives.py) is the one declaration of every operator:
each consumer agrees with it, the generated e-graph files are in sync with it, and the
non-smooth primitives follow their documented subgradient rule."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.ad import JVP_BINARY, JVP_UNARY, grad
from eqsat_ad.backend import numpy_backend
from eqsat_ad.cost.model import DEFAULT_OPCOST
from eqsat_ad.egraph import constructors
from eqsat_ad.egraph.session import rules_dir
from eqsat_ad.lang import ast, syntax
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.lang.primitives import PRIMITIVES, REAL_FNS
from eqsat_ad.lang.syntax import parse, parse_expr, show_expr
from eqsat_ad.lang.typecheck import check_program
from eqsat_ad.lang.types import REAL

ROOT = Path(__file__).resolve().parent.parent
EGRAPH = ROOT / "eqsat_ad" / "egraph"


def test_parser_and_printer_know_every_primitive():
    for name, p in PRIMITIVES.items():
        assert ast.PRIM_ARITY[name] == p.arity
        assert name in syntax.CORE_FORMS
        args = " ".join("(get x 0)" if p.typing != "logic" else "true" for _ in range(p.arity))
        e = parse_expr(f"({name} {args})")
        assert parse_expr(show_expr(e)) == e


def test_egraph_constructors_follow_the_table():
    for name, p in PRIMITIVES.items():
        if p.ctor is None:
            continue
        assert constructors.CONSTRUCTORS[p.ctor] == ("op", p.arity)
        assert constructors.PRIM_TO_CTOR[name] == p.ctor
        assert constructors.CTOR_TO_PRIM[p.ctor] == name


def test_generated_egraph_files_are_in_sync():
    """``tools/gen_egg_tables.py`` has been run since the table last changed."""
    schema = (EGRAPH / "schema.egg").read_text()
    assert constructors.schema_text(schema) == schema
    assert (EGRAPH / "fv.egg").read_text() == constructors.fv_rules_text()
    assert (rules_dir() / "subst.egg").read_text() == constructors.subst_rules_text()


def test_cost_backend_interpreter_and_ad_cover_every_real_function():
    for name, p in PRIMITIVES.items():
        if p.ctor is not None:
            assert p.ctor in DEFAULT_OPCOST
        if p.jvp is not None:
            assert (JVP_UNARY if p.arity == 1 else JVP_BINARY)[name] is p.jvp
    for name, p in REAL_FNS.items():
        assert numpy_backend._GLOBALS[p.numpy_name] is p.interp


def _program(name: str, arity: int) -> ast.Program:
    args = " ".join(f"(get x {k})" for k in range(arity))
    return parse(f"(fun ((x (vec n))) ({name} {args}))")


@pytest.mark.parametrize("name", sorted(REAL_FNS))
def test_real_function_typed_interpreted_compiled_and_differentiated(name):
    """Type ``real``; the interpreter and the compiled program agree with NumPy; the
    derivative agrees with central differences at points away from kinks."""
    p = REAL_FNS[name]
    prog = _program(name, p.arity)
    assert check_program(prog) == REAL
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.uniform(0.1, 2.0, size=3) * rng.choice([-1.0, 1.0], size=3)
        if name in ("log", "sqrt"):
            x = np.abs(x)
        want = p.interp(*x[: p.arity])
        assert evaluate(prog, x=x) == pytest.approx(want)
        assert ea.compile(prog)(x=x) == pytest.approx(want)
        g = evaluate(grad(prog, "x"), x=x)
        h = 1e-6
        for k in range(3):
            e = np.zeros(3)
            e[k] = h
            fd = (p.interp(*(x + e)[: p.arity]) - p.interp(*(x - e)[: p.arity])) / (2 * h)
            assert g[k] == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("text, x, want", [
    # ties: max and min give the whole tangent to their first operand
    ("(max (get x 0) (get x 1))", [2.0, 2.0], [1.0, 0.0]),
    ("(max (get x 1) (get x 0))", [2.0, 2.0], [0.0, 1.0]),
    ("(min (get x 0) (get x 1))", [2.0, 2.0], [1.0, 0.0]),
    ("(max (get x 0) (get x 1))", [1.0, 3.0], [0.0, 1.0]),
    ("(min (get x 0) (get x 1))", [1.0, 3.0], [1.0, 0.0]),
    # abs'(0) = 0; sign has tangent 0
    ("(abs (get x 0))", [0.0, 1.0], [0.0, 0.0]),
    ("(abs (get x 0))", [-3.0, 1.0], [-1.0, 0.0]),
    ("(sign (get x 0))", [-3.0, 1.0], [0.0, 0.0]),
])
def test_subgradient_rule_at_kinks(text, x, want):
    prog = parse(f"(fun ((x (vec n))) {text})")
    g = grad(prog, "x")
    assert list(evaluate(g, x=np.array(x))) == want
    res = ea.optimize(g, sizes={"n": 2})
    assert list(ea.compile(res.program)(x=np.array(x))) == want


def test_max_and_min_with_nan_propagate_it():
    prog = _program("max", 2)
    x = np.array([math.nan, 1.0])
    assert math.isnan(evaluate(prog, x=x)) and math.isnan(ea.compile(prog)(x=x))


def test_max_of_indices_is_a_real_after_elaboration():
    prog = parse("(fun ((x (vec n))) (max 0 (length x)))")
    assert check_program(prog) == REAL
    assert evaluate(prog, x=np.zeros(3)) == 3.0


# -- argmax / argmin and the max/min folds (rules/extreme.egg) ---------------------------------
@pytest.mark.parametrize("op, x, want", [
    ("argmax", [1.0, 3.0, 3.0, 2.0], 1), ("argmin", [2.0, 0.5, 3.0, 0.5], 1),   # the first one
    ("argmax", [], 0), ("argmin", [], 0),                                         # empty: 0
    ("argmax", [1.0, math.nan, 5.0], 1),                                          # NumPy's nan rule
])
def test_arg_extremes_interpreted_and_compiled(op, x, want):
    prog = parse(f"(fun ((x (vec n))) ({op} x))")
    assert evaluate(prog, x=np.array(x)) == want
    assert ea.compile(prog)(x=np.array(x)) == want


def test_arg_extreme_along_rows_of_a_matrix():
    prog = parse("(fun ((M (mat m n))) (build m (lambda (i) (argmin (get M i)))))")
    M = np.random.default_rng(0).uniform(size=(5, 7))
    assert list(ea.compile(prog)(M=M)) == list(M.argmin(axis=1)) == list(evaluate(prog, M=M))


MAX_FOLDS = {
    # the max-shifted log-sum-exp (its gradient does not depend on the tie rule: m cancels)
    "lse": "(fun ((x (vec n))) (let ((m (ifold (lambda (a i) ({op} a (get x i))) {init} n))) "
           "(+ m (log (sum n (lambda (i) (exp (- (get x i) m))))))))",
    # the extreme itself, scaled by the sum: the tie rule shows
    "plain": "(fun ((x (vec n))) (* (ifold (lambda (a i) ({op} a (* 2.0 (get x i)))) {init} n) "
             "(sum n (lambda (i) (get x i)))))",
}


# the log-sum-exp's tangent (dx_i - dm) * exp(...) needs the one-hot distributivity of
# rules/distrib.egg (issue 11 item 1) to collapse
_NEEDS_DISTRIB = pytest.mark.skipif(not (rules_dir() / "distrib.egg").exists(),
                                    reason="needs the one-hot distributivity ruleset rules/distrib.egg")


@pytest.mark.parametrize("op, init", [("max", "-inf"), ("min", "inf"), ("max", "0.5"), ("min", "-0.5")])
@pytest.mark.parametrize("prog", [pytest.param("lse", marks=_NEEDS_DISTRIB), "plain"])
def test_max_fold_gradient_becomes_an_argmax(prog, op, init):
    """The dual of a max/min fold is rewritten to argmax/argmin + a gather: O(n), and equal to
    the reference interpreter's naive gradient -- ties (the first position wins, the init wins
    over an equal element), an init larger than every element, n = 0, 1."""
    f = parse(MAX_FOLDS[prog].format(op=op, init=init))
    g = grad(f, "x")
    small = ea.optimize(g, sizes={"n": 100})
    assert f"arg{op}" in syntax.show_program(small.program)
    ratios = []     # O(n): sizes past the cache, where a cost per element does not depend on n
    for n in (10**6, 10**7):
        ratios.append(ea.optimize(g, sizes={"n": n}, check=False).cost
                      / ea.optimize(f, sizes={"n": n}, check=False).cost)
    assert ratios[1] / ratios[0] <= 1.5, ratios
    fast = ea.compile(small.program)
    for x in ([], [0.3], [1.0, 2.0, 2.0, -1.0], [-1.0, -2.0, -2.0, 1.0], [0.25, 0.25], [-0.25, -0.25, 0.1],
              [0.1, -3.0, 0.2]):
        x = np.array(x)
        want = evaluate(g, x=x)
        assert np.allclose(fast(x=x), want, rtol=1e-12, atol=0)
        assert np.allclose(evaluate(small.program, x=x), want, rtol=1e-12, atol=0)
