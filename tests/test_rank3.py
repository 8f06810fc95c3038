"""Arrays of rank 3 and more as differentiable parameters (issue 12): ``grad``, ``jvp``,
``derivative`` and the front end's ``grad_fn`` w.r.t. an array of matrices (and rank 4),
forward and reverse (transposed fold), checked against central finite differences and the
reference interpreter, naive and optimised, interpreted and compiled."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.errors import ADError, EqsatError
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.testing import check_grads, differentiable_params, finite_difference_gradient

RNG = np.random.default_rng(0)
T3 = RNG.uniform(-1, 1, (2, 3, 4))
W = RNG.uniform(-1, 1, 4)

# f(T, w) = sum_i sin(sum_jl w_l T_ijl^2): every axis of T matters
QUAD = ea.parse("(fun ((T (array (mat n k) m)) (w (vec k)))"
                " (sum m (lambda (i) (sin (sum n (lambda (j) (sum k (lambda (l)"
                "   (* (get w l) (* (get (get (get T i) j) l) (get (get (get T i) j) l)))))))))))")
# a recurrence whose step s reads its own weight matrix W[s] (an RNN with one matrix per step)
RNN = ea.parse("(fun ((Ws (array (mat n n) s)) (h0 (vec n)))"
               " (let ((h (ifold (lambda (h l) (build n (lambda (i) (tanh (sum n (lambda (j)"
               "     (* (get (get (get Ws l) i) j) (get h j)))))))) h0 s)))"
               "   (sum n (lambda (i) (* (get h i) (get h i))))))")
# rank 4: an array of arrays of matrices
RANK4 = ea.parse("(fun ((Q (array (array (mat a b) c) d)))"
                 " (sum d (lambda (p) (sum c (lambda (q) (sum a (lambda (r) (sum b (lambda (t)"
                 "   (let ((v (get (get (get (get Q p) q) r) t))) (* v (cos v))))))))))))")
Q4 = RNG.uniform(-1, 1, (2, 3, 2, 2))
WS = RNG.uniform(-1, 1, (3, 4, 4))
H0 = RNG.uniform(-1, 1, 4)

CASES = [("quad", QUAD, "T", {"T": T3, "w": W}, {"m": 2, "n": 3, "k": 4}),
         ("rnn", RNN, "Ws", {"Ws": WS, "h0": H0}, {"n": 4, "s": 3}),
         ("rank4", RANK4, "Q", {"Q": Q4}, {"a": 2, "b": 2, "c": 3, "d": 2})]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name, prog, wrt, inputs, sizes", CASES, ids=[c[0] for c in CASES])
def test_grad_against_finite_differences_and_compiled(name, prog, wrt, inputs, sizes, mode):
    g = ea.grad(prog, wrt, mode=mode)
    got = np.asarray(evaluate(g, **inputs))
    fd = finite_difference_gradient(lambda v: evaluate(prog, **{**inputs, wrt: v}), inputs[wrt])
    assert got.shape == inputs[wrt].shape
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)
    res = ea.optimize(g, sizes=sizes)
    np.testing.assert_allclose(ea.compile(res.program)(**inputs), got, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ea.compile(g)(**inputs), got, rtol=1e-10, atol=1e-12)


def test_a_fold_over_a_weight_stack_is_transposed():
    """grad's default mode transposes the recurrence (a backward scan), as for a matrix."""
    assert "scan" in ea.show_program(ea.grad(RNN, "Ws"))


@pytest.mark.parametrize("name, prog, wrt, inputs, sizes", CASES, ids=[c[0] for c in CASES])
def test_jvp_and_derivative(name, prog, wrt, inputs, sizes):
    """check_grads: jvp along a random direction, derivative contracted with it, grad . v."""
    check_grads(prog, wrt=wrt, inputs=inputs, modes=("jvp", "derivative", "grad"))


def test_derivative_of_an_array_output_has_shape_wrt_then_output():
    prog = ea.parse("(fun ((T (array (mat n k) m))) (build k (lambda (l) (sum m (lambda (i)"
                    " (sum n (lambda (j) (exp (get (get (get T i) j) l)))))))))")
    d = np.asarray(evaluate(ea.derivative(prog, "T"), T=T3))
    assert d.shape == (2, 3, 4, 4)
    want = np.zeros((2, 3, 4, 4))
    for i, j, l in np.ndindex(2, 3, 4):
        want[i, j, l, l] = np.exp(T3[i, j, l])
    np.testing.assert_allclose(d, want, rtol=1e-12)
    with pytest.raises(ADError, match="expected real or vec"):
        ea.jacobian(prog, "T")


def test_grad_fn_of_a_numpy_function_of_a_3d_array():
    def loss(T, w):
        return ea.sum(ea.tanh(T * 2.0) * w) + ea.mean(ea.sum(T, axis=0) ** 2) + ea.sum(ea.max(T, axis=1))

    g = ea.grad_fn(loss)(T3, W)
    prog = ea.trace(loss, T=T3, w=W)
    fd = finite_difference_gradient(lambda t: evaluate(prog, T=t, w=W), T3)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    value, g2 = ea.value_and_grad_fn(loss)(T3, W)
    assert value == pytest.approx(evaluate(prog, T=T3, w=W))
    np.testing.assert_allclose(g2, g, rtol=1e-12)
    dT = RNG.uniform(-1, 1, T3.shape)
    jv = ea.jvp_fn(loss)(T3, W, dT)
    jv = jv[-1] if isinstance(jv, tuple) else jv
    assert float(jv) == pytest.approx(float(np.sum(fd * dT)), rel=1e-6)


def test_rank4_through_the_front_end():
    def loss(Q):
        return ea.sum(ea.sin(Q) * Q)

    g = ea.grad_fn(loss)(Q4)
    np.testing.assert_allclose(g, np.sin(Q4) + Q4 * np.cos(Q4), rtol=1e-10)


def test_what_cannot_be_differentiated_is_named():
    assert differentiable_params(QUAD) == ["T", "w"]
    prog = ea.parse("(fun ((P (array (pair real real) n))) (sum n (lambda (i) (fst (get P i)))))")
    with pytest.raises(ADError, match="expected real or an array of reals"):
        ea.grad(prog, "P")


def test_an_input_of_the_wrong_rank_names_the_parameter():
    g = ea.compile(ea.grad(QUAD, "T"))
    with pytest.raises(EqsatError, match="'T'"):
        g(T=T3[0], w=W)
