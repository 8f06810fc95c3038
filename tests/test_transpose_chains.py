"""Gradients through chained folds (``eqsat_ad/ad/transpose.py``, :func:`_feeds_fold`): a fold
whose result another sequential fold reads is transposed first, even with a state as large as
``wrt`` -- the reader becomes part of the rest of the program and is transposed in turn --
instead of the reader being transposed with the first fold recomputed inside its steps.  Each
gradient against the forward form and central differences; optimised, against the reference
interpreter."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.ad.transpose import transposable_fold
from eqsat_ad.cost.model import default_cost_model
from eqsat_ad.gradbench.programs import DET
from eqsat_ad.lang.ast import Scan, iter_nodes
from eqsat_ad.lang.typecheck import check_program, elaborate
from eqsat_ad.testing import assert_matches_interpreter, check_grads, random_inputs

# a vector-state fold (as many components as x) read by a sequential fold over its entries
VEC_THEN_FOLD = """(fun ((x (vec n)) (w real))
  (let ((v (ifold (lambda (h t) (build n (lambda (k) (tanh (+ (* 0.9 (get h k)) (* w (get x t)))))))
                  x n)))
    (ifold (lambda (p i) (+ (* p 0.5) (* (get v i) (get v i)))) w n)))"""
# the same fold read by a sum (an additive reader: the forward form is kept)
VEC_THEN_SUM = """(fun ((x (vec n)) (w real))
  (let ((v (ifold (lambda (h t) (build n (lambda (k) (tanh (+ (* 0.9 (get h k)) (* w (get x t)))))))
                  x n)))
    (sum n (lambda (i) (* (get v i) (get v i))))))"""
# the reader's step reads the first fold's result loop-invariantly, not through a let
NESTED_INVARIANT = """(fun ((x (vec n)))
  (ifold (lambda (p i)
           (* p (+ 1.0 (* 0.1 (get (ifold (lambda (h t) (build n (lambda (k) (sin (+ (get h k) (get x t))))))
                                           x n)
                                    i)))))
         1.0 n))"""


def _state(prog, wrt):
    p = elaborate(prog)
    fold = transposable_fold(p, wrt)
    return None if fold is None else str(check_program(ea.lang.ast.Program(p.params, fold)))


@pytest.mark.parametrize("text,wrt,state", [(DET, "A", "(mat ell ell)"), (VEC_THEN_FOLD, "x", "(vec n)"),
                                            (NESTED_INVARIANT, "x", "(vec n)"), (VEC_THEN_SUM, "x", None)])
def test_the_first_fold_of_a_chain_is_transposed(text, wrt, state):
    p = ea.parse(text)
    assert _state(p, wrt) == state
    sizes = {"ell": 4, "n": 4}
    inputs = random_inputs(p, sizes, seed=5)
    if "A" in inputs:                   # diagonally dominant: the pivots stay away from 0
        inputs["A"] = inputs["A"] + 4 * np.eye(4)
    g = ea.grad(p, wrt)
    assert any(isinstance(x, Scan) for x in iter_nodes(g.body)) == (state is not None)
    fwd = ea.evaluate(ea.grad(p, wrt, mode="forward"), **inputs)
    assert np.allclose(ea.evaluate(g, **inputs), fwd, rtol=1e-9, atol=1e-12)
    check_grads(p, wrt=[wrt], inputs=inputs, modes=("grad",))
    res = ea.optimize(g, sizes={"ell": 20, "n": 20})
    assert_matches_interpreter(res.program, ea.compile(res.program), inputs, rtol=1e-9)


def test_det_gradient_cost_is_a_constant_times_the_function():
    """det through Gaussian elimination: the elimination transposed, each backward step's VJP
    folded by onehotsplit through the step's branch: model cost / the function's grows less
    than 1.5x from ell = 5 to 20 (it was 28 -> 141 with the product fold transposed and the
    elimination recomputed in forward mode inside it; at ell = 50 it is 30, was 2232)."""
    m = default_cost_model()
    p = ea.parse(DET)
    res = ea.optimize(ea.grad(p, "A"), sizes={"ell": 20})
    ratios = [m.dag_cost(res.program, {"ell": n}) / m.dag_cost(p, {"ell": n}) for n in (5, 20)]
    assert ratios[1] < 1.5 * ratios[0] and max(ratios) < 15, ratios
    A = np.random.default_rng(1).uniform(-1, 1, (6, 6)) + 3 * np.eye(6)
    got = ea.compile(res.program)(A=A)
    assert np.allclose(got, np.linalg.det(A) * np.linalg.inv(A).T, rtol=1e-8)
