"""Reverse mode over loop nests (eqsat_ad/ad/loopnest.py): every gradient against central
finite differences and the forward-mode gradient, on named shapes (shifted, windowed,
reversed, packed and argmax-picked reads, lets inside loops, rank-3 parameters, several
parameters at once) and on random programs; its cost a constant times the function's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings

import eqsat_ad as ea
from eqsat_ad.ad import grad
from eqsat_ad.ad.loopnest import grad_loopnest
from eqsat_ad.cost import default_cost_model
from eqsat_ad.lang.ast import If, IFold, Let, Prim, Sum, iter_nodes
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.optimize import optimize_bindings
from eqsat_ad.testing import differentiable_params, random_inputs

from gen import programs


def _fd_grad(prog, w, inputs, eps=1e-6):
    """The gradient w.r.t. ``w`` by central differences, one coordinate at a time."""
    x = np.asarray(inputs[w], dtype=np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = 1.0
        f = lambda v: float(evaluate(prog, **{**inputs, w: v}))      # noqa: E731
        out[idx] = (f(x + eps * e) - f(x - eps * e)) / (2 * eps)
    return out


def _check(text, wrt, sizes=None, seed=0, backend=True, **fixed):
    prog = ea.parse(text)
    g = grad_loopnest(prog, wrt)
    assert g is not None, "loop-nest reverse mode should apply"
    inputs = {**random_inputs(prog, sizes, seed), **fixed}
    got = evaluate(g, **inputs)
    wrts = [wrt] if isinstance(wrt, str) else list(wrt)
    parts = [got] if isinstance(wrt, str) else _unpair(got, len(wrts))
    for w, part in zip(wrts, parts):
        np.testing.assert_allclose(np.asarray(part), _fd_grad(prog, w, inputs), rtol=1e-5, atol=1e-6,
                                   err_msg=f"gradient w.r.t. {w}")
    if backend:
        from eqsat_ad.backend import compile as np_compile
        out = np_compile(g)(**inputs)
        for a, b in zip(_unpair(out, len(wrts)) if len(wrts) > 1 else [out], parts):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
    return prog, g


def _unpair(v, k):
    out = []
    for _ in range(k - 1):
        out.append(v[0])
        v = v[1]
    return out + [v]


def _tested_sums(g) -> int:
    """Sums whose body tests an index per element (``if (= ..)``): the reads not collapsed."""
    return sum(1 for x in iter_nodes(g.body) if isinstance(x, Sum)
               and any(isinstance(y, If) and isinstance(y.cond, Prim) and y.cond.op == "="
                       for y in iter_nodes(x.body)))


# -- reads at the loop index, shifted, windowed, reversed: collapsed, no per-element test ----
def test_a_layer_of_matrices_collapses_every_read():
    _, g = _check("""(fun ((W (mat h d)) (V (mat k h)) (x (mat n d)))
      (sum n (lambda (i) (let ((z (build h (lambda (j) (tanh (sum d (lambda (c) (* (get (get W j) c) (get (get x i) c)))))))))
        (sum k (lambda (r) (let ((y (sum h (lambda (j) (* (get (get V r) j) (get z j)))))) (* y y))))))))""",
                  ["W", "V"], {"h": 3, "d": 2, "k": 2, "n": 4})
    assert _tested_sums(g) == 0


@pytest.mark.parametrize("read", ["(get x (+ i 1))", "(get x (- (- n 1) i))", "(get x (- (+ i 2) 1))"])
def test_shifted_and_reversed_reads_are_solved_for_the_loop(read):
    _, g = _check(f"(fun ((x (vec n))) (sum (- n 1) (lambda (i) (let ((d (- {read} (get x i)))) (* d (sin d))))))",
                  "x", {"n": 6})
    assert _tested_sums(g) == 0


def test_a_window_keeps_its_inner_loop_and_solves_the_outer():
    _, g = _check("""(fun ((x (vec n)) (w (vec K)) (t (vec n)))
      (sum (+ (- n K) 1) (lambda (i) (let ((y (sum K (lambda (k) (* (get w k) (get x (+ i k)))))))
        (* 0.5 (pow (- y (get t i)) 2.0))))))""", ["x", "w"], {"n": 7, "K": 3})
    assert _tested_sums(g) == 0


# -- computed indices: tested per element, still right ----------------------------------------
def test_an_argmax_pick_and_a_packed_triangle():
    from eqsat_ad.gradbench.programs import GMM
    rng = np.random.default_rng(3)
    k, d, n = 3, 3, 5
    _check(GMM, ["alpha", "mu", "q", "l"], {"k": k, "d": d, "n": n, "L": d * (d - 1) // 2},
           x=rng.normal(size=(n, d)), m=0.0, gamma=1.0, const=0.0)


def test_a_rank3_parameter_and_a_let_reused_across_loops():
    _check("""(fun ((A (array (mat m n) b)) (v (vec n)))
      (let ((s (sum n (lambda (j) (* (get v j) (get v j))))))
        (sum b (lambda (p) (sum m (lambda (i) (let ((r (sum n (lambda (j) (* (get (get (get A p) i) j) (get v j))))))
          (/ (* r r) (+ 1.0 s)))))))))""", ["A", "v"], {"b": 2, "m": 3, "n": 4})


# -- where it does not apply ---------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "(fun ((x (vec n))) (ifold (lambda (a i) (* a (get x i))) 1.0 n))",
    "(fun ((x (vec n))) (let ((p (pair (get x 0) (get x 1)))) (* (fst p) (snd p))))",
])
def test_folds_and_pairs_are_left_to_the_other_modes(text):
    assert grad_loopnest(ea.parse(text), "x") is None
    check = grad(ea.parse(text), "x")                      # still differentiated
    assert check is not None


def test_auto_mode_takes_it_for_matrices_and_keeps_vectors_forward():
    mlp = "(fun ((W (mat h d)) (x (vec d))) (sum h (lambda (j) (tanh (sum d (lambda (c) (* (get (get W j) c) (get x c))))))))"
    assert grad(ea.parse(mlp), "W") == grad_loopnest(ea.parse(mlp), "W")
    assert grad(ea.parse(mlp), "x") != grad_loopnest(ea.parse(mlp), "x")
    assert grad(ea.parse(mlp), "x", mode="reverse") == grad_loopnest(ea.parse(mlp), "x")


# -- O(f): the gradient's cost over the function's does not grow -----------------------------
def test_gmm_gradient_costs_a_constant_times_the_function():
    from eqsat_ad.gradbench.programs import GMM
    prog = ea.parse(GMM)
    g = grad(prog, ["alpha", "mu", "q", "l"])
    assert not any(isinstance(x, IFold) for x in iter_nodes(g.body))
    model = default_cost_model()
    ratios = []
    for d, k in [(2, 5), (8, 25), (32, 50)]:
        sizes = {"n": 1000, "k": k, "d": d, "L": d * (d - 1) // 2}
        ratios.append(model.program_cost(g, sizes) / model.program_cost(prog, sizes))
    assert max(ratios) / min(ratios) < 1.5, ratios            # forward mode: x (k + 2 k d + k L)


# -- random programs: loop-nest reverse mode == forward mode (itself checked by FD) -----------
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs(real_result=True, smooth=False, max_depth=3))
def test_random_programs_agree_with_forward_mode(case):
    prog, inputs = case
    for w in differentiable_params(prog):
        g = grad_loopnest(prog, w)
        if g is None:
            continue
        try:
            want = np.asarray(evaluate(grad(prog, w, mode="forward"), **inputs), dtype=np.float64)
        except Exception:                    # the function itself fails here (a domain error)
            assume(False)
        assume(np.all(np.isfinite(want)) and np.max(np.abs(want), initial=0.0) < 1e6)
        got = np.asarray(evaluate(g, **inputs), dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def test_random_programs_mostly_apply():
    """The random-program test above is not vacuous: most fold-free programs are handled."""
    import random

    from eqsat_ad.fuzz import random_program
    applied = total = 0
    for seed in range(60):
        prog = random_program(random.Random(seed), smooth=False, vector_result=False)
        if any(type(x).__name__ in ("IFold", "Scan", "Pair") for x in iter_nodes(prog.body)):
            continue
        for w in differentiable_params(prog):
            total += 1
            applied += grad_loopnest(prog, w) is not None
    assert total >= 10 and applied >= 0.8 * total, (applied, total)


# -- optimising binding by binding keeps the statements ---------------------------------------
def test_optimize_bindings_keeps_each_statement_and_agrees():
    from eqsat_ad.gradbench.programs import GMM
    g = grad_loopnest(ea.parse(GMM), ["alpha", "l"])
    sizes = {"n": 40, "k": 3, "d": 3, "L": 3}
    res = optimize_bindings(g, sizes, limits={"seconds": 5})

    def lets(p):
        out, b = [], p.body
        while isinstance(b, Let):
            out.append(b.name)
            b = b.body
        return out
    assert lets(res.program)[:len(lets(g))] == lets(g)       # (the body may bind more)
    assert res.cost <= res.cost_before * 1.0001
    rng = np.random.default_rng(0)
    inputs = {**random_inputs(g, {"n": 40, "k": 3, "d": 3, "L": 3}, 0), "x": rng.normal(size=(40, 3))}
    for a, b in zip(_unpair(evaluate(g, **inputs), 2), _unpair(evaluate(res.program, **inputs), 2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
    assert "binding by binding" in res.report.notes[0]
