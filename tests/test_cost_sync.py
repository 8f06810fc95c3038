"""One cost: the backend, the cost model and egglog's in-graph costs read the same declarations
(eqsat_ad/cost/semantics.py).  These tests fail when one of them grows its own copy."""
import inspect

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.backend import _folds, _helpers, _values
from eqsat_ad.cost import default_cost_model, semantics
from eqsat_ad.egraph import costrules
from eqsat_ad.lang.binders import free_vars
from eqsat_ad.lang.syntax import parse_expr


@pytest.mark.parametrize("form,kind", semantics.FOLD_BODY_FORMS)
def test_fold_body_forms_are_what_fold_shape_says(form, kind):
    shape = semantics.fold_shape(parse_expr(form), "acc", lambda x: "acc" not in free_vars(x))
    assert shape is not None and shape.kind == kind


def test_every_vectorised_fold_shape_has_a_form_and_an_egglog_rule():
    kinds = {k for _, k in semantics.FOLD_BODY_FORMS}
    assert kinds == set(semantics.FOLD_REDUCTION)
    text = costrules.cost_rules_text(default_cost_model().egglog_opcost(),
                                     fold_costs=costrules.fold_shape_costs(default_cost_model()))
    for k, (_, kind) in enumerate(semantics.FOLD_BODY_FORMS):
        assert f'"fold-{kind}-{k}"' in text


def test_the_backend_reads_the_declarations():
    # the backend's decisions are the semantics' functions, not copies of them
    assert _values._int_exponent is semantics.small_int_exponent
    assert _folds.fold_shape is semantics.fold_shape and _folds.contraction is semantics.contraction
    assert "einsum_planned(" in inspect.getsource(_helpers.contract)
    assert "1 << 14" not in inspect.getsource(_helpers)


@pytest.mark.parametrize("body,init", [("(+ acc (exp (get x i)))", "1.0"), ("(* (exp (get x i)) acc)", "2.0"),
                                       ("(if (< acc (get x i)) (get x i) acc)", "0.0"),
                                       ("(- acc (get x i))", "0.5")])
def test_a_vectorised_fold_is_no_loop_for_egglog_either(body, init):
    """egglog's own tree extractor prices a fold the backend vectorises as that reduction:
    the in-graph cost of the program is far below a Python loop over n."""
    from eqsat_ad.egraph.costrules import COST_SCALE
    prog = ea.parse(f"(fun ((x (vec n))) (ifold (lambda (acc i) {body}) {init} n))")
    n = 10_000
    res = ea.optimize(prog, sizes={"n": n}, keep_egraph=True)
    _, egg = res.session.extract_root()
    loop = default_cost_model().op_cost("IFold") * n
    assert egg / COST_SCALE < loop / 10
    fn = ea.compile(res.program)
    assert "for " not in fn.source
    x = np.linspace(-1, 1, 9)
    assert np.isclose(fn(x=x), ea.evaluate(res.program, x=x))


def test_a_static_length_is_no_masked_reduction():
    """(length v) of a built row has the row's static size: the backend reads it at compile
    time, so the sum over it is a plain reduction -- no where over a mask is paid."""
    prog = ea.parse("(fun ((X (mat N d)) (w (vec d))) (sum N (lambda (n) (let ((v (build (length (get X n)) "
                    "(lambda (i) (* (get (get X n) i) (get w i)))))) (sum (length v) (lambda (i) (get v i)))))))")
    assert "If" not in default_cost_model().breakdown(prog, {"N": 100, "d": 10})
    assert "_where" not in ea.compile(prog).source


def test_the_backend_reads_the_range_window_and_summed_build_declarations():
    from eqsat_ad.backend import _codegen
    from eqsat_ad.cost import model
    for mod in (_codegen, model):
        assert mod.range_condition is semantics.range_condition
        assert mod.window_read is semantics.window_read
    # summed builds are compiled by the fold mixin (_folds), not by _codegen itself
    assert model.summed_build is semantics.summed_build and _folds.summed_build is semantics.summed_build
    assert "def _range_facts" not in inspect.getsource(_codegen) and "def _linear" not in inspect.getsource(_codegen)
