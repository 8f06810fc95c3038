"""The normalisation family (issue 11): a norm computed once and used in every term of a sum over
the data, written as "start => goal".

Weight normalisation's gradient divides the quotient rule's numerator by |v|^2 inside the sum over
the data; with the invariant divisor taken out of the sum (deepinv.egg's inv-dsplit rules) the rest
is a contraction with the data (one BLAS matrix-vector product) minus v_i times a scalar sum:
O(N d) for the whole gradient instead of an N x d temporary per operation (18x the hand-written
gradient at N = 16384, d = 64 before).  The rules are guarded to quotients whose dividend reads a
matrix: layer normalisation's quotient (a one-hot over a vector) is left alone, because there
the extra terms stopped the commute phase early (a costlier program).

Every optimised program is checked against the reference interpreter (``optimize``'s check), the
hand-written NumPy gradient and central differences of the primal program.
"""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.bench import corpus as C
from eqsat_ad.cost.model import default_cost_model
from eqsat_ad.testing import finite_difference_gradient

MODEL = default_cost_model()


def _prog(params: str, body: str):
    return ea.parse(f"(fun {params} {body})")


def test_invariant_divisor_nested_in_a_product_comes_out_and_the_sum_is_a_contraction():
    # sum_j (((X_ji a_j) / c) * b_j): the divisor is one product down, over the outer index's
    # quotient; with it outside, X_ji is contracted with a vector (one BLAS call)
    params = "((X (mat N d)) (a (vec N)) (b (vec N)) (c real))"
    start = _prog(params, "(build d (lambda (i) (sum N (lambda (j) (* (/ (* (get (get X j) i) (get a j)) "
                          "(* c c)) (tanh (get b j)))))))")
    goal = _prog(params, "(build d (lambda (i) (/ (sum N (lambda (j) (* (get (get X j) i) "
                         "(* (get a j) (tanh (get b j)))))) (* c c))))")
    sizes = {"N": 2048, "d": 32}
    res = ea.optimize(start, sizes=sizes)
    assert res.cost <= MODEL.dag_cost(goal, sizes) * (1 + 1e-9), ea.show_program(res.program)
    src = ea.compile(res.program).source
    assert "_dot(" in src, src


def _weightnorm(sizes):
    e = C.get("weightnorm")
    return e, ea.optimize(C.derivative_program(e), sizes=sizes)


def test_weightnorm_gradient_is_linear_in_the_data_and_matches():
    e = C.get("weightnorm")
    small, big = e.bench_sizes[-2], e.bench_sizes[-1]
    costs = []
    for sz in (small, big):
        _, res = _weightnorm(sz)
        elements = max(int(np.prod(s)) for s in C.param_shapes(e, sz).values())   # N x d
        costs.append((res.cost, elements))          # res: the largest size's, after the loop
    (c0, n0), (c1, n1) = costs
    # before: 6.3 N d at the largest size (an N x d temporary per operation); the contraction
    # form is ~1.6 N d.  (At d = 32, N = 1024 the tree extractor still takes the entangled form,
    # 4.9 N d: a tree pays the shared X v once per use, and there the per-call costs of the
    # split's extra operations are not yet amortised; the DAG extractor takes the split, 3.0 N d.)
    assert c1 < 2.5 * n1, ea.show_program(res.program)
    assert c1 / c0 <= 1.5 * n1 / n0                   # grows with N d, at most
    # the values: the hand-written gradient and central differences of the primal program
    f = ea.compile(res.program)
    args = C.inputs(e, e.test_sizes)
    got = np.asarray(f(**args), dtype=float)
    assert C.max_rel_error(got, np.asarray(e.numpy_derivative(**args), dtype=float)) <= 1e-8
    prim = C.program(e)
    pargs = C.primal_inputs(e, args)

    def loss(v):
        return float(ea.evaluate(prim, **{**pargs, "v": v}))
    fd = finite_difference_gradient(loss, args["v"])
    assert np.allclose(got, fd, rtol=1e-5, atol=1e-7), (got, fd)


def test_layernorm_quotient_is_left_alone():
    # layer normalisation's quotient rule divides a one-hot over a vector, not a matrix read:
    # the divisor rules do not start there (their extra terms cost the commute phase its
    # saturation), and the gradient stays O(n) and equal to the hand-written one
    e = C.get("layernorm")
    res = ea.optimize(C.derivative_program(e), sizes=e.bench_sizes[-1])
    fired = {k: v for ph in res.report.phases for k, v in ph.matches.items() if k.startswith("inv-dsplit")}
    assert not fired, fired
    args = C.inputs(e, e.test_sizes)
    got = np.asarray(ea.compile(res.program)(**args), dtype=float)
    assert C.max_rel_error(got, np.asarray(e.numpy_derivative(**args), dtype=float)) <= 1e-8


@pytest.mark.parametrize("name", ["normalize", "traced-normalize", "l1-regression"])
def test_norm_family_gradients_are_linear(name):
    # model cost per input element at two sizes: O(n), not more (the O(n^2) forms cost n x more)
    e = C.get(name)
    per = []
    for sz in e.bench_sizes[-2:]:
        res = ea.optimize(C.derivative_program(e), sizes=sz, check=False)
        elements = max(int(np.prod(s)) for s in C.param_shapes(e, sz).values())
        per.append(res.cost / elements)
    assert per[1] <= 1.5 * per[0], per


def test_a_scalar_condition_over_vector_branches_is_priced_as_a_branch():
    # (if s (exp x) 0) over a vector: the backend picks a branch in Python (no element-wise
    # where), so the model prices it as the branch it computes, not as an np.where over n
    p = _prog("((x (vec n)) (s real))", "(build n (lambda (i) (if (< s 0.0) (exp (get x i)) 0.0)))")
    q = _prog("((x (vec n)) (s real))", "(build n (lambda (i) (exp (get x i))))")
    for n in (10_000, 100_000):
        assert MODEL.dag_cost(p, {"n": n}) < 1.1 * MODEL.dag_cost(q, {"n": n})
    src = ea.compile(p).source
    assert "if (s < 0.0):" in src and "where" not in src, src


@pytest.mark.parametrize("name", ["softmax-max", "lse-max"])
def test_max_fold_gradients_cost_a_constant_times_the_function(name):
    # the max's one-hot gradient is guarded by scalar conditions (the fold ran, the max is
    # finite): priced as an np.where over n it made the model cost ratio grow 2.5-3x from
    # n = 1e4 to 1e5; as the Python branch the backend emits, at most 1.5x (issue 11's target)
    e = C.get(name)
    ratios = []
    for sz in e.bench_sizes[-2:]:
        res = ea.optimize(C.derivative_program(e), sizes=sz, check=False)
        ratios.append(res.cost / MODEL.dag_cost(C.program(e), sz))
    assert ratios[1] <= 1.5 * ratios[0], ratios
