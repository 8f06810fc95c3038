"""Reverse mode over let chains of element-wise builds and reductions that feed back
(eqsat_ad.ad.elementwise): the 60-node chain's gradient is O(n), not O(n^2); values against
the interpreter, central differences and the hand-written gradient; the chains it declines."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.ad.api import prepare
from eqsat_ad.ad.elementwise import feedback_depth, grad_elementwise
from eqsat_ad.bench import corpus as C
from eqsat_ad.cost.model import default_cost_model
from eqsat_ad.lang.ast import Sum, iter_nodes
from eqsat_ad.testing import check_grads

# two layers of "reduce, feed back": a reduction of a vector made from an earlier reduction
TWO_LAYERS = """(fun ((x (vec n)) (w (vec n)) (a real))
  (let ((s1 (/ (sum n (lambda (i) (* (get x i) (get x i)))) (real n)))
        (u (build n (lambda (i) (if (< (get x i) 0.0) (* a (get x i)) (sin (+ (* (get w i) (get x i)) s1))))))
        (s2 (log (+ 1.0 (sum n (lambda (i) (exp (neg (* (get u i) (get u i)))))))))
        (v (build n (lambda (i) (/ (get u i) (sqrt (+ s2 (* s1 s1)))))))
        (m (max s1 s2)))
    (+ (sum n (lambda (i) (* (get w i) (tanh (get v i))))) (* m (pow s2 3)))))"""


def test_two_layers_match_finite_differences_and_the_forward_gradient():
    p = ea.parse(TWO_LAYERS)
    assert feedback_depth(prepare(p), "x") == 2
    g = ea.grad(p, "x")
    assert g == grad_elementwise(prepare(p), "x")            # auto mode takes this path
    rng = np.random.default_rng(3)
    args = {"x": rng.normal(size=7), "w": rng.normal(size=7), "a": 0.3}
    fwd = ea.evaluate(ea.grad(p, "x", mode="forward"), **args)
    np.testing.assert_allclose(ea.evaluate(g, **args), fwd, rtol=1e-10, atol=1e-12)
    check_grads(p, "x", args, modes=("grad",))


def test_the_gradient_is_a_chain_of_single_loops():
    g = ea.grad(ea.parse(TWO_LAYERS), "x")
    for x in iter_nodes(g.body):                 # no loop inside a loop: O(n) per binding
        if hasattr(x, "var") and hasattr(x, "size") and hasattr(x, "body"):
            assert not any(isinstance(y, Sum) or type(y).__name__ == "Build"
                           for y in iter_nodes(x.body)), x


def test_chain60_gradient_is_o_n_and_agrees_with_the_hand_written_one():
    e = C.get("chain60")
    p = C.program(e)
    g = ea.grad(p, e.wrt)
    cm = default_cost_model()
    ratios = [cm.dag_cost(g, {"n": n}) / cm.program_cost(p, {"n": n}) for n in (1000, 10_000, 100_000)]
    assert max(ratios) < 5 and ratios[-1] / ratios[0] < 1.5, ratios      # was 10^2 .. 10^4 x f
    args = C.inputs(e, e.test_sizes)
    assert C.max_rel_error(ea.evaluate(g, **args), e.numpy_derivative(**args)) < 1e-9
    f = ea.compile(g)
    assert C.max_rel_error(f(**args), e.numpy_derivative(**args)) < 1e-9


@pytest.mark.parametrize("text", [
    # one level of feedback: the rules already make these O(n); forward mode is kept
    ("(fun ((x (vec n))) (let ((r (sqrt (sum n (lambda (i) (* (get x i) (get x i)))))))"
     " (sum n (lambda (i) (tanh (/ (get x i) r))))))"),
    # a shifted read, a matrix, a fold: not an element-wise chain
    ("(fun ((x (vec n))) (let ((s (sum n (lambda (i) (get x i)))) (u (build n (lambda (i) (* s (get x (- n (+ i 1)))))))"
     " (t (sum n (lambda (i) (get u i))))) (* t s)))"),
    ("(fun ((x (vec n)) (A (mat n n))) (let ((s (sum n (lambda (i) (get x i)))) "
     "(u (build n (lambda (i) (* s (get (get A i) i))))) (t (sum n (lambda (i) (* (get u i) (get x i)))))) (* t s)))"),
])
def test_other_programs_keep_their_gradient(text):
    p = prepare(ea.parse(text))
    assert feedback_depth(p, "x") < 2 or grad_elementwise(p, "x") is None
    check_grads(ea.parse(text), "x", modes=("grad",))


def test_a_constant_exponent_of_zero_has_a_zero_tangent_at_zero():
    # p ** 0 is the constant 1: its tangent 0 * p^-1 would be NaN at p = 0 (the dual numbers'
    # rule, dual._jvp_pow_const, shared)
    p = ea.parse("""(fun ((x (vec n)))
      (let ((s1 (sum n (lambda (i) (* (get x i) (get x i)))))
            (u (build n (lambda (i) (* s1 (pow (get x i) 0.0)))))
            (s2 (sum n (lambda (i) (* (get u i) (get u i))))))
        (* s2 s1)))""")
    x = np.array([0.0, 1.0, 2.0])
    got = ea.evaluate(ea.grad(p, "x"), x=x)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ea.evaluate(ea.grad(p, "x", mode="forward"), x=x), rtol=1e-12)
