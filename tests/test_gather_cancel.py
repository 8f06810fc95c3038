"""Start term => goal term for gather.egg (a scalar factor of a product chain joins the chain's
other scalar) and cancel.egg (a common factor of a quotient of quotients or products), and the
default extractor.

Each start term is the shape a realistic gradient leaves (the corpus program it comes from is
named); the goal is a hand-written program, and the optimised program must cost no more than it
under the model (the DAG measure) and agree with the reference interpreter."""
from __future__ import annotations

import numpy as np

import eqsat_ad as ea
from eqsat_ad.bench import corpus as C
from eqsat_ad.cost.model import default_cost_model
from eqsat_ad.extract import DEFAULT_EXTRACTOR
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.strategy.combinators import phases_of, seq
from eqsat_ad.strategy.defaults import default_schedule

RNG = np.random.default_rng(3)
N = {"n": 10_000}


def _cost(src_or_prog, sizes=N) -> float:
    p = ea.parse(src_or_prog) if isinstance(src_or_prog, str) else src_or_prog
    return default_cost_model().dag_cost(p, sizes)


def _agrees(prog, start, inputs):
    want = evaluate(start, **inputs)
    assert np.allclose(evaluate(prog, **inputs), want)
    assert np.allclose(ea.compile(prog)(**inputs), want)


def test_a_scalar_joins_the_scalar_of_the_chain_it_multiplies():
    # layer normalisation's gradient: s * ((((c g_i) D_i) t_i) - b), s, c, b scalars
    start = ea.parse("""(fun ((x (vec n)) (g (vec n)) (t (vec n)))
      (let ((s (sqrt (sum n (lambda (j) (* (get x j) (get x j))))))
            (c (/ 1.0 (* s s)))
            (b (sum n (lambda (j) (get g j)))))
        (build n (lambda (i)
          (* s (- (* (* (* c (get g i)) (tanh (get x i))) (get t i)) b))))))""")
    goal = """(fun ((x (vec n)) (g (vec n)) (t (vec n)))
      (let ((s (sqrt (sum n (lambda (j) (* (get x j) (get x j))))))
            (b (sum n (lambda (j) (get g j))))
            (k (/ s (* s s)))
            (sb (* s b)))
        (build n (lambda (i) (- (* (* (* k (get g i)) (tanh (get x i))) (get t i)) sb)))))"""
    res = ea.optimize(start, sizes=N)
    assert res.cost <= _cost(goal) * (1 + 1e-9), (res.cost, _cost(goal), ea.show_program(res.program))
    without = seq(*[ph for ph in phases_of(default_schedule()) if ph.name != "gather"])
    assert res.cost < ea.optimize(start, sizes=N, schedule=without).cost
    x = RNG.uniform(0.5, 1.5, 7)
    _agrees(res.program, start, dict(x=x, g=RNG.normal(size=7), t=RNG.normal(size=7)))


def test_the_cross_entropy_of_a_softmax_reaches_the_hand_written_gradient():
    # traced-xent: log(e_i / s) differentiated leaves (e_i / s^2) / (e_i / s) for every i
    e = C.get("traced-xent")
    start = C.derivative_program(e)
    goal = """(fun ((x (vec n)) (t (vec n)))
      (let ((s (sum n (lambda (i) (exp (get x i)))))
            (st (sum n (lambda (i) (get t i))))
            (k (/ st s)))
        (build n (lambda (i) (- (* (exp (get x i)) k) (get t i))))))"""
    res = ea.optimize(start, sizes=N)
    assert res.cost <= _cost(goal) * 1.01, (res.cost, _cost(goal), ea.show_program(res.program))
    x, t = RNG.normal(size=6), RNG.uniform(0.1, 1.0, 6)
    _agrees(res.program, start, dict(x=x, t=t))
    np.testing.assert_allclose(evaluate(res.program, x=x, t=t), e.numpy_derivative(x=x, t=t), rtol=1e-9)


def test_the_default_extractor_is_dag_and_never_costlier_than_the_tree():
    assert DEFAULT_EXTRACTOR == "dag"
    e = C.get("weightnorm")        # a norm used in several places: a tree pays it once per use
    g = C.derivative_program(e, mode="forward")
    d = ea.optimize(g, sizes=e.bench_sizes[0])
    t = ea.optimize(g, sizes=e.bench_sizes[0], extractor="tree")
    assert d.report.extraction["extractor"] == "dag"
    assert d.cost <= t.cost * (1 + 1e-9)
