"""Free variables, capture-avoiding substitution, fresh names, renaming, alpha-equivalence."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eqsat_ad.errors import EqsatError
from eqsat_ad.lang.ast import (Build, Get, If, IFold, Int, Length, Let, Num, Param, Prim,
                               Program, Sum, Var, iter_nodes)
from eqsat_ad.lang.binders import (alpha_eq, all_names, bound_names, cache_hashes,
                                   canonical_names, free_vars, fresh, rename_unique, struct_eq,
                                   subst, subst_all)
from eqsat_ad.lang.syntax import parse, parse_expr, show_expr
from eqsat_ad.lang.types import REAL, mat, size_names, vec

try:
    from tests.gen import program_env_values, programs, tiny_eval
except ImportError:  # pragma: no cover - when tests/ itself is on sys.path
    from gen import program_env_values, programs, tiny_eval  # type: ignore

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

P = parse_expr


def binders_of(e):
    out = []
    for n in iter_nodes(e):
        out.extend(n.binds())
    return out


# --------------------------------------------------------------------------------------
# free variables
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("x", {"x"}),
    ("(+ x 1.0)", {"x"}),
    ("(let ((x (+ x 1.0))) (* x y))", {"x", "y"}),        # the value is outside the scope
    ("(let ((a 1.0) (b a)) b)", set()),
    ("(build n (lambda (i) (get x i)))", {"n", "x"}),
    ("(build i (lambda (i) i))", {"i"}),                    # the size is outside the scope
    ("(ifold (lambda (acc i) (+ acc (get x i))) acc (length i))", {"x", "acc", "i"}),
    ("(sum n (lambda (j) (sum j (lambda (k) (* (real j) (real k))))))", {"n"}),
    ("(if (< a b) (pair a 1.0) (pair c 2.0))", {"a", "b", "c"}),
])
def test_free_vars(text, expected):
    assert free_vars(P(text)) == frozenset(expected)


def test_bound_and_all_names():
    e = P("(let ((a x)) (build n (lambda (i) (+ a (real i)))))")
    assert bound_names(e) == {"a", "i"}
    assert all_names(e) == {"a", "i", "x", "n"}


# --------------------------------------------------------------------------------------
# fresh
# --------------------------------------------------------------------------------------
def test_fresh_examples():
    assert fresh("i", set()) == "i"
    assert fresh("i", {"i"}) == "i_1"
    assert fresh("i", {"i", "i_1", "i_2"}) == "i_3"
    assert fresh("i_7", {"i_7"}) == "i_1"
    assert fresh("acc", ["acc"]) == "acc_1"


@given(st.text("ij_0123", min_size=1, max_size=4), st.sets(st.text("ij_0123", min_size=1, max_size=4)))
def test_fresh_never_in_avoid(base, avoid):
    name = fresh(base, avoid)
    assert name not in avoid
    if not re.match(r"^[0-9_]", name):
        assert isinstance(P(name), Var)


# --------------------------------------------------------------------------------------
# substitution
# --------------------------------------------------------------------------------------
def test_subst_simple():
    assert subst(P("(+ x y)"), "x", P("(* a b)")) == P("(+ (* a b) y)")


def test_subst_respects_shadowing():
    e = P("(let ((x 1.0)) x)")
    assert subst(e, "x", Var("y")) == e
    assert subst(P("(let ((x x)) x)"), "x", Var("y")) == P("(let ((x y)) x)")
    e = P("(build n (lambda (i) i))")
    assert subst(e, "i", Int(0)) == e
    # the size of build is outside the binder's scope
    assert subst(P("(build i (lambda (i) i))"), "i", Var("m")) == P("(build m (lambda (i) i))")


def test_subst_renames_capturing_binder():
    e = P("(build n (lambda (i) (+ (real i) k)))")
    out = subst(e, "k", Var("i"))
    # the binder had to be renamed, and the substituted i stays free
    assert out.var != "i"
    assert "i" in free_vars(out)
    assert alpha_eq(out, P("(build n (lambda (j) (+ (real j) i)))"))
    assert not alpha_eq(out, P("(build n (lambda (j) (+ (real j) j)))"))


def test_subst_renames_ifold_accumulator():
    e = P("(ifold (lambda (acc i) (+ acc (* w (get x i)))) 0.0 n)")
    out = subst(e, "w", P("(+ acc (real i))"))
    assert isinstance(out, IFold)
    assert out.acc != "acc" and out.var != "i"
    assert free_vars(out) == {"acc", "i", "x", "n"}
    assert alpha_eq(out, P("(ifold (lambda (a j) (+ a (* (+ acc (real i)) (get x j)))) 0.0 n)"))


def test_subst_renamed_binder_avoids_names_free_in_body():
    # renaming i must not pick a name that is already free in the body (i_1 here)
    e = P("(sum n (lambda (i) (+ (real i) (+ k i_1))))")
    out = subst(e, "k", Var("i"))
    assert out.var not in {"i", "i_1"}
    assert alpha_eq(out, P("(sum n (lambda (q) (+ (real q) (+ i i_1))))"))


def test_subst_nested_capture_and_let():
    e = P("(let ((a (* k 2.0))) (sum n (lambda (i) (+ a (+ k (real i))))))")
    out = subst(e, "k", P("(+ a (real i))"))
    expected = P("(let ((b (* (+ a (real i)) 2.0))) "
                 "(sum n (lambda (j) (+ b (+ (+ a (real i)) (real j))))))")
    assert alpha_eq(out, expected)


def test_subst_all_is_simultaneous():
    assert subst_all(P("(pair a b)"), {"a": Var("b"), "b": Var("a")}) == P("(pair b a)")


def test_subst_leaves_untouched_subterms_shared():
    left = P("(sum n (lambda (i) (get x i)))")
    e = Prim("+", (left, Var("k")))
    out = subst(e, "k", Num(1.0))
    assert out.args[0] is left


@SETTINGS
@given(programs(params=(Param("x", vec("n")), Param("w", REAL), Param("M", mat("m", "n"))),
                max_depth=4))
def test_subst_preserves_meaning(case):
    """Substituting w := (+ i acc) where i and acc are free, and then evaluating, gives the
    same as evaluating with w bound to the value of (+ i acc): no capture by the many
    binders called i/acc inside generated programs."""
    prog, inputs = case
    env = program_env_values(prog, inputs)
    value = P("(+ (* 0.5 i) (- acc a))")
    env2 = {**env, "i": 0.25, "acc": -0.75, "a": 0.5}
    expected = tiny_eval(prog.body, {**env2, "w": 0.5 * 0.25 + (-0.75 - 0.5)})
    got = tiny_eval(subst(prog.body, "w", value), env2)
    assert _close(got, expected)


def _close(a, b):
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# --------------------------------------------------------------------------------------
# rename_unique, canonical_names, alpha_eq
# --------------------------------------------------------------------------------------
def test_rename_unique_keeps_first_names():
    e = P("(+ (sum n (lambda (i) (real i))) (sum n (lambda (i) (real i))))")
    r = rename_unique(e)
    assert show_expr(r) == "(+ (sum n (lambda (i) (real i))) (sum n (lambda (i_1) (real i_1))))"


def test_rename_unique_avoids_params_and_sizes():
    prog = parse("(fun ((x (vec n)) (w real)) "
                 "(let ((w (* w 2.0))) (sum n (lambda (n) (* w (get x n))))))")
    r = rename_unique(prog)
    names = binders_of(r.body)
    assert "w" not in names and "n" not in names and "x" not in names
    assert alpha_eq(r.body, prog.body)


@SETTINGS
@given(programs(max_depth=5))
def test_rename_unique_properties(case):
    prog, inputs = case
    r = rename_unique(prog)
    assert isinstance(r, Program) and r.params == prog.params
    names = binders_of(r.body)
    assert len(names) == len(set(names)), names
    outer = {p.name for p in prog.params} | {s for p in prog.params for s in size_names(p.type)}
    assert not (set(names) & (outer | free_vars(prog.body)))
    assert alpha_eq(r.body, prog.body)
    assert rename_unique(r) == r                         # already unique: unchanged
    env = program_env_values(prog, inputs)
    assert _close(tiny_eval(r.body, env), tiny_eval(prog.body, env))


@SETTINGS
@given(programs(max_depth=4))
def test_canonical_names_equal_for_alpha_variants(case):
    prog, _ = case
    r = rename_unique(prog.body, avoid={"zz"})
    variant = subst_all(prog.body, {})  # identity
    assert canonical_names(r) == canonical_names(variant)
    assert alpha_eq(r, prog.body) and alpha_eq(prog.body, r)
    assert canonical_names(canonical_names(r)) == canonical_names(r)


def test_alpha_eq_examples():
    assert alpha_eq(P("(let ((a x)) (+ a a))"), P("(let ((b x)) (+ b b))"))
    assert not alpha_eq(P("(let ((a x)) (+ a a))"), P("(let ((b x)) (+ b a))"))
    assert not alpha_eq(P("(sum n (lambda (i) x))"), P("(sum n (lambda (i) y))"))
    assert alpha_eq(P("(ifold (lambda (a i) (+ a (real i))) 0.0 n)"),
                    P("(ifold (lambda (s k) (+ s (real k))) 0.0 n)"))
    # acc and index play different roles
    assert not alpha_eq(P("(ifold (lambda (a i) (+ a (real i))) 0.0 n)"),
                        P("(ifold (lambda (a i) (+ (real i) a)) 0.0 n)"))
    assert not alpha_eq(P("(ifold (lambda (a i) a) 0.0 n)"), P("(ifold (lambda (a i) i) 0.0 n)"))
    # nested binders with swapped references
    assert not alpha_eq(P("(sum n (lambda (i) (sum n (lambda (j) (real i)))))"),
                        P("(sum n (lambda (i) (sum n (lambda (j) (real j)))))"))


def test_canonical_names_avoid_free_lookalikes():
    e = P("(sum n (lambda (i) (+ v0 (real i))))")
    c = canonical_names(e)
    assert "v0" in free_vars(c) and c.var != "v0"
    assert alpha_eq(c, e)


# --------------------------------------------------------------------------------------
# deep terms
# --------------------------------------------------------------------------------------
def _deep_chain(n: int):
    e = Var("x")
    for k in range(n):
        if k % 3 == 0:
            e = Let(f"a{k % 5}", e, Prim("*", (Var(f"a{k % 5}"), Var("y"))))
        elif k % 3 == 1:
            e = Sum(Var("n"), "i", Prim("+", (e, Prim("real", (Var("i"),)))))
        else:
            e = Prim("+", (e, Num(1.0)))
    return e


def test_deep_terms_do_not_crash():
    e = _deep_chain(5000)
    assert free_vars(e) == {"x", "y", "n"}
    r = rename_unique(e)
    assert len(set(binders_of(r))) == len(binders_of(r))
    assert alpha_eq(r, e)
    s = subst(e, "y", Var("i"))
    assert "i" in free_vars(s)
    assert struct_eq(canonical_names(r), canonical_names(e))
    cache_hashes(e)
    assert hash(e) == hash(e)
    assert struct_eq(parse_expr(show_expr(e)), e)


def test_call_deep_error_is_eqsat_error():
    from eqsat_ad.lang.binders import call_deep

    def forever(n):
        return forever(n + 1)
    with pytest.raises(EqsatError, match="too deep"):
        call_deep(forever, 0)


def test_if_and_get_are_not_binders():
    e = If(Prim("<", (Var("a"), Num(0.0))), Get(Var("x"), Int(0)), Length(Var("x")))
    assert free_vars(e) == {"a", "x"}
    assert binders_of(e) == []
    assert Build(Int(2), "i", Var("i")).binds() == ("i",)
