"""Start term => goal term for the issue-11 split rules: the one-hot split at a sum
(sum-split-onehot, rules/onehotsplit.egg; through + - * / neg and the branches of an if),
index.egg's sum interchange towards a one-hot
(sum-swap-onehot-l/r) and deepinv.egg's invariant factors out of sums at any depth
(inv-split-out-of-sum) and the backprop interchange (sum-swap-split-l/r).

Each start term is the loop shape a realistic gradient leaves (the corpus program it comes from
is named); the goal is stated structurally -- no loop over the summed index is left inside the
loop over the outer index, so the model cost grows like n, not n^2 -- and the optimised program
agrees with the reference interpreter."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.lang.interp import evaluate


def _optimise(src: str, sizes: dict):
    return ea.optimize(ea.parse(src), sizes=sizes)


def _inner_loops(text: str) -> int:
    """How many loops (sum/build) the first (build ...) of the outermost let body holds inside it."""
    k = text.rfind("(build ")
    body = text[k + 1:]
    return body.count("(sum ") + body.count("(build ")


def _agrees(res, src: str, inputs: dict):
    want = evaluate(ea.parse(src), **inputs)
    assert np.allclose(evaluate(res.program, **inputs), want)
    assert np.allclose(ea.compile(res.program)(**inputs), want)


RNG = np.random.default_rng(11)


def test_onehot_nested_in_differences_and_products_splits_off_the_sum():
    # softmax with a max shift (softmax-max): the one-hot sits two levels down in
    # c_j ((t3 (onehot - t5_i) - t7_i) E_j); the split leaves sum_j c_j E_j times an i-only factor
    src = ("(fun ((x (vec n)) (c (vec n)) (y (vec n)) (t3 real))"
           " (build n (lambda (i) (sum n (lambda (j) (* (get c j) (* (- (* t3 (- (if (= j i) 1.0 0.0) (get y i)))"
           " (exp (get y i))) (exp (get x j)))))))))")
    res = _optimise(src, {"n": 1000})
    assert _inner_loops(ea.show_expr(res.program.body)) == 0, ea.show_expr(res.program.body)
    assert res.cost < res.cost_before / 100
    n = 7
    _agrees(res, src, dict(x=RNG.uniform(-1, 1, n), c=RNG.uniform(-1, 1, n), y=RNG.uniform(-1, 1, n), t3=0.7))


def test_one_hot_in_an_inner_tap_loop_collapses_after_the_interchange():
    # a K-tap convolution's tangent (convk-signal): sum_i r_i * sum_k (if i + k = p then w_k else 0);
    # after the interchange the loop over i collapses, r read from one array (the gather)
    src = ("(fun ((x (vec n)) (w (vec K)))"
           " (build n (lambda (p) (sum (+ (- n K) 1) (lambda (i) (* (exp (get x i))"
           " (sum K (lambda (k) (if (= (+ i k) p) (get w k) 0.0)))))))))")
    res = _optimise(src, {"n": 1000, "K": 5})
    text = ea.show_expr(res.program.body)
    assert "(sum K" in text and "(sum (+ (- n K) 1)" not in text, text
    small, big = (_optimise(src, {"n": n, "K": 5}).cost for n in (1000, 10_000))
    assert big / small < 15                       # O(n K): 10x; the window over i would be 100x
    _agrees(res, src, dict(x=RNG.uniform(-1, 1, 9), w=RNG.uniform(-1, 1, 3)))


def test_invariant_factor_four_levels_down_leaves_the_sum():
    # layer normalisation's shape: ((((x_j y_i) / s) g_j) h_j) t_j with y_i four levels down
    src = ("(fun ((x (vec n)) (y (vec n)) (g (vec n)) (h (vec n)) (t (vec n)) (s real))"
           " (build n (lambda (i) (sum n (lambda (j) (* (* (* (/ (* (get x j) (get y i)) s) (get g j)) (get h j))"
           " (get t j)))))))")
    res = _optimise(src, {"n": 1000})
    assert _inner_loops(ea.show_expr(res.program.body)) == 0, ea.show_expr(res.program.body)
    n = 6
    _agrees(res, src, dict(x=RNG.uniform(-1, 1, n), y=RNG.uniform(-1, 1, n), g=RNG.uniform(-1, 1, n),
                           h=RNG.uniform(-1, 1, n), t=RNG.uniform(-1, 1, n), s=1.3))


def test_backprop_interchange_takes_the_outer_index_out():
    # the 3-layer perceptron's gradient (mlp3): sum_j r_j sum_k W3[j][k] (W2[k][i] D_k); after the
    # interchange the sum over j does not mention i: O(o h + h^2) instead of O(o h^2)
    src = ("(fun ((r (vec o)) (W3 (mat o h)) (W2 (mat h h)) (D (vec h)))"
           " (build h (lambda (i) (sum o (lambda (j) (* (get r j) (sum h (lambda (k)"
           " (* (get (get W3 j) k) (* (get (get W2 k) i) (get D k)))))))))))")
    res = _optimise(src, {"h": 256, "o": 64})
    assert res.cost < res.cost_before / 10, (res.cost, res.cost_before)   # o h^2 = 4.2M, o h + h^2 = 82k
    h, o = 5, 4
    _agrees(res, src, dict(r=RNG.uniform(-1, 1, o), W3=RNG.uniform(-1, 1, (o, h)), W2=RNG.uniform(-1, 1, (h, h)),
                           D=RNG.uniform(-1, 1, h)))


@pytest.mark.parametrize("cond, flip", [("(> k 2)", False), ("(> i 2)", False), ("(> k 2)", True)])
def test_onehot_in_both_branches_of_a_conditional_splits_off_the_sum(cond, flip):
    # an elimination step's tangent (GradBench det's adjoint step): the one-hot sits in both
    # branches of (if (> row pivot) (- onehot ...) onehot), whose condition does not mention j
    # (oh-split-if-then/-else); the condition a scalar k or the outer index i
    branches = ["(- (if (= j i) 1.0 0.0) (get y j))", "(if (= j i) (get y i) 0.0)"]
    src = ("(fun ((c (vec n)) (y (vec n)) (k index)) (build n (lambda (i) (sum n (lambda (j) (* (get c j)"
           f" (if {cond} {' '.join(branches[::-1] if flip else branches)})))))))")
    res = _optimise(src, {"n": 1000})
    assert _inner_loops(ea.show_expr(res.program.body)) == 0, ea.show_expr(res.program.body)
    assert res.cost < res.cost_before / 100
    for k in (1, 4):
        _agrees(res, src, dict(c=RNG.uniform(-1, 1, 7), y=RNG.uniform(-1, 1, 7), k=k))


@pytest.mark.parametrize("name", ["softmax-max", "convk-signal", "mlp3", "layernorm"])
def test_corpus_gradients_grow_like_the_function(name):
    from eqsat_ad.bench import corpus as C
    e = C.get(name)
    g = C.derivative_program(e)
    key = {"mlp3": "h"}.get(name, "n")
    base = dict(e.bench_sizes[0])
    ratios = []
    for s in ((100, 1000) if key == "n" else (32, 128)):
        sz = {**base, key: s}
        if name == "mlp3":
            sz["d"] = s
        ratios.append(ea.optimize(g, sizes=sz, check=False).cost / ea.optimize(C.program(e), sizes=sz, check=False).cost)
    assert ratios[1] / ratios[0] <= 1.5, ratios
