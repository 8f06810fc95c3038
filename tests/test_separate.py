"""The separation rules (eqsat_ad/rules/separate.egg), written as "start => goal": a factor over
the outer (build) index, tangled with factors over a summed index under a quotient, an ``if``, a
``neg`` or a product, comes out, so that the sum is a contraction (one BLAS call) instead of an
N x d temporary per operation.

Each start program is optimised with the default schedule; the result costs no more than the goal
under the cost model (it is the goal or as cheap), agrees with the interpreter (``optimize``'s
check) and, where the goal is a contraction, the NumPy code makes the BLAS call.  The rules' guards
keep them off one-hot conditionals (index equalities and ranges), which cond's rules push
products into."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.bench import corpus as C
from eqsat_ad.cost.model import default_cost_model

MODEL = default_cost_model()
SIZES = {"N": 2048, "d": 32}
XS = "(X (mat N d))"

# name: (parameters, start body, goal body)
CASES = {
    # (a * b) / c => a * (b / c): logistic regression's sigmoid
    "quotient": (f"({XS} (z (vec N)))",
                 "(build d (lambda (i) (sum N (lambda (j) (/ (* (get (get X j) i) (exp (get z j))) "
                 "(+ 1.0 (exp (get z j))))))))",
                 "(build d (lambda (i) (sum N (lambda (j) (* (get (get X j) i) "
                 "(/ (exp (get z j)) (+ 1.0 (exp (get z j)))))))))"),
    # the factor on the right of the numerator
    "quotient-r": (f"({XS} (z (vec N)))",
                   "(build d (lambda (i) (sum N (lambda (j) (/ (* (exp (get z j)) (get (get X j) i)) "
                   "(+ 1.0 (get z j)))))))",
                   "(build d (lambda (i) (sum N (lambda (j) (* (get (get X j) i) "
                   "(/ (exp (get z j)) (+ 1.0 (get z j))))))))"),
    # neg (a * b) at an if's branch and (if c 0 (a * b)): the hinge loss
    "if-then0-neg": (f"({XS} (y (vec N)) (m (vec N)))",
                     "(build d (lambda (i) (sum N (lambda (j) (if (<= (get m j) 0.0) 0.0 "
                     "(neg (* (get y j) (get (get X j) i))))))))",
                     "(build d (lambda (i) (sum N (lambda (j) (* (get (get X j) i) "
                     "(if (<= (get m j) 0.0) 0.0 (neg (get y j))))))))"),
    # (if c (a * b) 0) with a data-dependent condition
    "if-else0": (f"({XS} (y (vec N)) (m (vec N)))",
                 "(build d (lambda (i) (sum N (lambda (j) (if (< 0.0 (get m j)) "
                 "(* (get y j) (get (get X j) i)) 0.0)))))",
                 "(build d (lambda (i) (sum N (lambda (j) (* (get (get X j) i) "
                 "(if (< 0.0 (get m j)) (get y j) 0.0))))))"),
    # both branches share the factor, one through a product with a scalar, the other as
    # (if c a (neg a)): the Huber loss
    "if-shared": (f"({XS} (r (vec N)) (delta real))",
                  "(build d (lambda (i) (sum N (lambda (j) (if (< (* (get r j) (get r j)) (* delta delta)) "
                  "(* (get (get X j) i) (get r j)) "
                  "(* delta (if (< 0.0 (get r j)) (get (get X j) i) (neg (get (get X j) i)))))))))",
                  "(build d (lambda (i) (sum N (lambda (j) (* (get (get X j) i) "
                  "(if (< (* (get r j) (get r j)) (* delta delta)) (get r j) "
                  "(* delta (if (< 0.0 (get r j)) 1.0 -1.0))))))))"),
    # a factor two products down in a quotient's numerator: the logistic Hessian-vector product
    "numerator-product": (f"({XS} (a (vec N)) (b (vec N)) (e (vec N)))",
                          "(build d (lambda (i) (sum N (lambda (j) (/ (* (* (get a j) (get (get X j) i)) "
                          "(* (get b j) (get a j))) (* (get e j) (get e j)))))))",
                          "(build d (lambda (i) (sum N (lambda (j) (* (get (get X j) i) "
                          "(/ (* (get a j) (* (get b j) (get a j))) (* (get e j) (get e j))))))))"),
    # a product at a sum's body: the X_ji factor from under a scalar product
    "sum-body-product": (f"({XS} (a (vec N)) (b (vec N)))",
                         "(build d (lambda (i) (sum N (lambda (j) (* (get a j) "
                         "(* (get (get X j) i) (tanh (get b j))))))))",
                         "(build d (lambda (i) (sum N (lambda (j) (* (get (get X j) i) "
                         "(* (get a j) (tanh (get b j))))))))"),
}


def _prog(params: str, body: str):
    return ea.parse(f"(fun {params} {body})")


@pytest.mark.parametrize("name", sorted(CASES))
def test_factor_comes_out_and_the_sum_is_a_contraction(name):
    params, start, goal = CASES[name]
    p, g = _prog(params, start), _prog(params, goal)
    res = ea.optimize(p, sizes=SIZES)
    goal_cost = MODEL.dag_cost(g, SIZES)
    assert res.cost <= goal_cost * (1 + 1e-9), (name, ea.show_program(res.program))
    assert res.cost < res.cost_before
    src = ea.compile(res.program).source
    assert "_dot(" in src, src           # the sum over j: a matrix-vector product (BLAS)


def test_nested_quotients_let_an_outer_factor_out_of_the_sum():
    # traced cross-entropy: (e_j * s_i) / u / (e_j / v) under sum_j -> s_i out of the quotients,
    # then out of the sum (invariant): O(n) instead of O(n^2)
    params = "((x (vec n)) (t (vec n)) (u real) (v real))"
    start = _prog(params, "(build n (lambda (i) (sum n (lambda (j) (* (get t j) "
                          "(/ (/ (* (exp (get x j)) (exp (get x i))) u) (/ (exp (get x j)) v)))))))")
    goal = _prog(params, "(build n (lambda (i) (* (exp (get x i)) (sum n (lambda (j) (* (get t j) "
                         "(/ (/ (exp (get x j)) u) (/ (exp (get x j)) v))))))))")
    for n in (1000, 10000):
        res = ea.optimize(start, sizes={"n": n})
        assert res.cost <= MODEL.dag_cost(goal, {"n": n}) * (1 + 1e-9), ea.show_program(res.program)
    small = ea.optimize(start, sizes={"n": 1000}, check=False)
    big = ea.optimize(start, sizes={"n": 10000}, check=False)
    assert big.cost / small.cost < 12              # linear, not quadratic


@pytest.mark.parametrize("cond", ["(= i j)", "(< j i)"])
def test_one_hot_and_index_range_conditionals_are_left_to_the_loop_rules(cond):
    # an index equality or range is the one-hot shape cond's rules push products INTO; the
    # zero-branch rules only take data-dependent conditions (a comparison of reals)
    p = _prog("((x (vec n)) (y (vec n)) (z (vec n)))",
              f"(build n (lambda (i) (sum n (lambda (j) (if {cond} (* (get x i) (get y j)) 0.0)))))")
    res = ea.optimize(p, sizes={"n": 100})
    fired = {k: v for ph in res.report.phases for k, v in ph.matches.items()
             if k.startswith("sep-if-")}
    assert not fired, fired


def test_a_factor_without_a_build_index_stays():
    # a product of two factors over the summed index only: nothing to separate, no rule fires
    p = _prog("((x (vec n)) (y (vec n)) (z (vec n)))",
              "(sum n (lambda (j) (/ (* (get x j) (exp (get y j))) (+ 1.0 (get z j)))))")
    res = ea.optimize(p, sizes={"n": 100})
    fired = {k: v for ph in res.report.phases for k, v in ph.matches.items() if k.startswith("sep-")}
    assert not fired, fired


#: corpus program -> bound on the optimised gradient's model cost at its largest benchmark size,
#: in units of its largest input's number of elements (an N x d temporary per operation, the
#: entangled form, costs 3.9 (logreg), 4.9 (logreg-hvp), 20 (hinge), 34 (softmax-regression),
#: 37 (huber) and, O(n^2), 3.9e5 (traced-xent) of them)
CORPUS_BOUND = {"logreg": 2, "traced-logreg": 2, "hinge": 5, "huber": 2, "softmax-regression": 8,
                "logreg-hvp": 3, "traced-xent": 30}


@pytest.mark.parametrize("name", sorted(CORPUS_BOUND))
def test_corpus_gradients_contract(name):
    # the optimised gradient's sum over the data is one BLAS call (or, for traced-xent, out of
    # the build entirely), and the values are the hand-written gradient's
    e = C.get(name)
    big = e.bench_sizes[-1]
    res = ea.optimize(C.derivative_program(e), sizes=big)
    f = ea.compile(res.program)
    args = C.inputs(e, e.test_sizes)
    got = np.asarray(f(**args), dtype=float)
    want = np.asarray(e.numpy_derivative(**args), dtype=float)
    assert C.max_rel_error(got, want) <= 1e-8
    elements = max(int(np.prod(s)) for s in C.param_shapes(e, big).values())
    assert MODEL.dag_cost(res.program, big) < CORPUS_BOUND[name] * elements, ea.show_program(res.program)
    if name != "traced-xent":
        assert "_dot(" in f.source or "_contract(" in f.source, f.source


def test_a_quotient_per_outer_index_leaves_the_inner_build():
    # softmax's Jacobian: ((d_ij s - e_j) * e_i) / s^2 over an n x n build -> e_i / s^2 once per
    # row (separate-late's sep-late-div-mul-bl/br): three n^2 passes instead of four
    params = "((x (vec n)) (s real))"
    start = _prog(params, "(build n (lambda (i) (build n (lambda (j) (/ (* (- (if (= i j) s 0.0) "
                          "(exp (get x j))) (exp (get x i))) (* s s))))))")
    goal = _prog(params, "(build n (lambda (i) (build n (lambda (j) (* (- (if (= i j) s 0.0) "
                         "(exp (get x j))) (/ (exp (get x i)) (* s s)))))))")
    res = ea.optimize(start, sizes={"n": 512})
    assert res.cost <= MODEL.dag_cost(goal, {"n": 512}) * (1 + 1e-9), ea.show_program(res.program)
    assert res.cost < res.cost_before
    fired = {k for ph in res.report.phases for k, v in ph.matches.items() if k.startswith("sep-late-div-mul-b") and v}
    assert fired, res.report.phases[-1].matches
