"""The ``scan`` form (every state of a fold) and gradients through folds by transposition
(``eqsat_ad/ad/transpose.py``): each checked against the reference interpreter and central
finite differences."""
from __future__ import annotations

import random

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.cost.model import default_cost_model
from eqsat_ad.errors import TypeCheckError
from eqsat_ad.gradbench.programs import ode_objective
from eqsat_ad.lang.ast import Scan, iter_nodes
from eqsat_ad.lang.normalize import normalize_program
from eqsat_ad.lang.typecheck import check_program
from eqsat_ad.testing import check_grads

POLY_SCAN = "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 n))"

SCANS = [
    POLY_SCAN,
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (+ a (get c i))) t n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (* (get c i) a)) t n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (- a (exp (get c i)))) t n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (if (> (get c i) 0.0) (+ a i) a)) 0 n))",
    "(fun ((c (vec n)) (t real)) (build 3 (lambda (j) (scan (lambda (a i) (+ (* a (real j)) (get c i))) t n))))",
    "(fun ((c (vec n)) (t real)) (build 3 (lambda (j) (get (scan (lambda (a i) (+ (* a t) (get c i))) (real j) n) j))))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (pair (+ (fst a) (snd a)) (* (snd a) t))) (pair 0.0 1.0) n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (build n (lambda (k) (tanh (+ (get a k) (* t (get c i))))))) c n))",
    "(fun ((c (vec n)) (t real)) (length (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 (- n 1))))",
]


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    return np.asarray(a).shape == np.asarray(b).shape and np.allclose(a, b, rtol=1e-12, atol=1e-12)


# -- the scan form ------------------------------------------------------------------------
def test_scan_states_and_type():
    p = ea.parse(POLY_SCAN)
    assert str(check_program(p)) == "(vec ?)"
    states = ea.evaluate(p, c=[1.0, 2.0, 3.0], t=2.0)
    assert list(states) == [0.0, 1.0, 4.0, 11.0]         # init first, then every step
    assert ea.parse(str(p)) == p                          # prints and parses back
    assert str(check_program(ea.parse(
        "(fun ((c (vec n))) (scan (lambda (a i) (+ a (get c i))) 0.0 3))"))) == "(vec 4)"


def test_scan_type_errors():
    with pytest.raises(TypeCheckError, match="the body of scan"):
        check_program(ea.parse("(fun ((c (vec n))) (scan (lambda (a i) (pair a a)) 0.0 n))"))
    with pytest.raises(ea.ParseError, match="scan"):
        ea.parse("(fun ((c (vec n))) (scan (lambda (a) a) 0.0 n))")


@pytest.mark.parametrize("text", SCANS)
def test_scan_backend_matches_interpreter(text):
    p = ea.parse(text)
    rng = np.random.default_rng(0)
    for n in (0, 1, 5):
        c, t = rng.normal(size=n), 0.7
        fn = ea.compile(p)
        assert fn.fallback is None
        try:
            want = ea.evaluate(p, c=c, t=t)
        except ea.EvalError:                  # out of range for this n: the same error
            with pytest.raises(ea.EvalError):
                fn(c=c, t=t)
            continue
        assert _same(fn(c=c, t=t), want)
        assert normalize_program(p) is not None


def test_scalar_scans_are_numpy_accumulates():
    src = ea.compile(ea.parse(SCANS[2])).source
    assert "multiply.accumulate" in src and "for " not in src
    assert "add.accumulate" in ea.compile(ea.parse(SCANS[1])).source
    assert "for " in ea.compile(ea.parse(POLY_SCAN)).source     # affine: a loop storing states


def test_scan_cost():
    m = default_cost_model()
    loop = ea.parse(POLY_SCAN.replace("scan", "ifold"))
    cum = ea.parse(SCANS[2])
    assert m.dag_cost(ea.parse(POLY_SCAN), {"n": 1000}) > m.dag_cost(loop, {"n": 1000})
    assert m.dag_cost(cum, {"n": 1000}) < m.dag_cost(loop, {"n": 1000}) / 10


def test_scan_derivatives():
    p = ea.parse("(fun ((c (vec n)) (t real)) (let ((s (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 n)))"
                 " (sum (length s) (lambda (k) (* (get s k) (get s k))))))")
    check_grads(p)


def test_scan_through_the_optimiser():
    p = ea.parse("(fun ((c (vec n)) (t real)) (let ((s (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 n)))"
                 " (sum n (lambda (k) (* (get s k) (get c k))))))")
    res = ea.optimize(p, sizes={"n": 50})
    assert any(isinstance(x, Scan) for x in iter_nodes(res.program.body))
    c = np.linspace(-1, 1, 7)
    assert np.isclose(ea.compile(res.program)(c=c, t=0.3), ea.evaluate(p, c=c, t=0.3))


def test_random_programs_with_scans():
    """The fuzzer's programs read scans; backend and interpreter agree on them."""
    from eqsat_ad.fuzz import backend_case
    found = 0
    for seed in range(200):
        prog, _, problems, _, _ = backend_case(seed)
        if any(isinstance(x, Scan) for x in iter_nodes(prog.body)):
            found += 1
            assert not problems, (seed, problems)
    assert found >= 5


# -- gradients through folds, transposed ------------------------------------------------------
POLY = "(fun ((c (vec n)) (t real)) (ifold (lambda (a i) (+ (* a t) (get c i))) 0.0 n))"
PROD = "(fun ((x (vec n))) (ifold (lambda (a i) (* a (get x i))) 1.0 n))"
EMA = ("(fun ((x (vec n)) (al real)) "
       "(ifold (lambda (a i) (+ (* al a) (* (- 1.0 al) (get x i)))) (get x 0) n))")
RNN = """(fun ((W (mat m m)) (U (mat m d)) (X (mat n d)) (h0 (vec m)))
  (let ((hT (ifold (lambda (h t)
                     (build m (lambda (p) (tanh (+ (sum m (lambda (q) (* (get (get W p) q) (get h q))))
                                                   (sum d (lambda (q) (* (get (get U p) q) (get (get X t) q)))))))))
                   h0 n)))
    (sum m (lambda (p) (* (get hT p) (get hT p))))))"""
# two folds, the second seeded by the first; a fold under a let, read twice
CHAIN = """(fun ((x (vec n)) (w real))
  (let ((a (ifold (lambda (s i) (sin (+ s (get x i)))) w n))
        (b (ifold (lambda (s i) (* s (+ 1.0 (* 0.1 (get x i))))) a n)))
    (+ (* a b) (* b b))))"""

# a pair state (a value and a running sum of squares), the adjoint put back together as a pair
PAIR_STATE = """(fun ((x (vec n)) (W (mat m m)))
  (let ((r (ifold (lambda (p t)
                     (let ((h (fst p)))
                       (pair (build m (lambda (k) (tanh (+ (get x t) (sum m (lambda (q) (* (get (get W k) q) (get h q))))))))
                             (+ (* 0.5 (snd p)) (sum m (lambda (k) (* (get h k) (get h k))))))))
                   (pair (build m (lambda (k) 0.1)) 0.0) n)))
    (+ (snd r) (get (fst r) 0))))"""


def _has(prog, cls) -> bool:
    return any(isinstance(x, cls) for x in iter_nodes(prog.body))


@pytest.mark.parametrize("text", [POLY, PROD, EMA, RNN, CHAIN, PAIR_STATE])
def test_transposed_gradient_matches_forward_and_differences(text):
    p = ea.parse(text)
    check_grads(p)              # grad (transposed for arrays) against central differences
    from eqsat_ad.testing import random_inputs
    inputs = random_inputs(p, {"n": 5, "m": 3, "d": 2}, seed=2)
    transposed = 0
    for q in p.params:
        if str(q.type) == "real":
            continue
        rev = ea.grad(p, q.name)
        transposed += _has(rev, Scan)
        fwd = ea.grad(p, q.name, mode="forward")
        assert np.allclose(ea.evaluate(rev, **inputs), ea.evaluate(fwd, **inputs), rtol=1e-9, atol=1e-12)
    assert transposed


@pytest.mark.parametrize("text,wrt", [(POLY, "c"), (POLY, "t"), (PROD, "x"), (EMA, "x"), (EMA, "al")])
def test_transposed_gradient_optimised_and_compiled(text, wrt):
    p = ea.parse(text)
    g = ea.grad(p, wrt, mode="reverse")
    res = ea.optimize(g, sizes={"n": 1000})
    assert res.cost <= res.cost_before    # (equal: w.r.t. a real, the adjoint step came optimised)
    fn = ea.compile(res.program)
    x = np.random.default_rng(0).uniform(0.5, 1.0, 9)
    inputs = {q.name: (x if q.name in ("c", "x") else 0.7) for q in p.params}
    assert np.allclose(fn(**inputs), ea.evaluate(g, **inputs), rtol=1e-10)


def test_gradient_cost_is_a_constant_times_the_function():
    """Model cost of the optimised gradient / model cost of the function, n = 10^3 and 10^4."""
    m = default_cost_model()
    for text, wrt in [(POLY, "c"), (PROD, "x"), (EMA, "x")]:
        p = ea.parse(text)
        g = ea.optimize(ea.grad(p, wrt), sizes={"n": 1000}).program
        ratios = [m.dag_cost(g, {"n": n}) / m.dag_cost(p, {"n": n}) for n in (1000, 10000)]
        assert ratios[1] <= 1.5 * ratios[0] and ratios[1] < 10, (text, ratios)


def test_forward_form_kept_where_it_is_already_linear():
    for text in ["(fun ((x (vec n)) (w (vec n))) (ifold (lambda (acc i) (+ acc (* (get x i) (get w i)))) 0.0 n))",
                 "(fun ((x (vec n))) (ifold (lambda (m i) (max m (get x i))) -inf n))"]:
        p = ea.parse(text)
        assert ea.grad(p, "x") == ea.grad(p, "x", mode="forward")
    # a real parameter: one direction, forward mode is already as cheap as the function
    assert not _has(ea.grad(ea.parse(POLY), "t"), Scan)
    assert _has(ea.grad(ea.parse(POLY), "t", mode="reverse"), Scan)
    # a state with as many components as directions (the RNN's initial state h0: m and m)
    rnn = ea.parse(RNN)
    assert not _has(ea.grad(rnn, "h0"), Scan) and _has(ea.grad(rnn, "W"), Scan)
    assert _has(ea.grad(rnn, "h0", mode="reverse"), Scan)


def test_folds_reading_lets_are_transposed():
    """A fold reading a let of parameters (an ODE's step h = 2 / s) is closed by substituting
    the let; one reading a loop index is not."""
    p = ea.parse("""(fun ((x (vec n)) (s size))
      (let ((h (/ 2.0 (real s))))
        (ifold (lambda (y k) (+ y (* h (sin (* y (get x k)))))) 0.5 n)))""")
    assert _has(ea.grad(p, "x"), Scan)
    check_grads(p, wrt=["x"])
    inner = ea.parse("""(fun ((x (vec n)))
      (sum n (lambda (j) (ifold (lambda (y k) (* y (+ (get x k) (real j)))) 1.0 n))))""")
    assert not _has(ea.grad(inner, "x"), Scan)


def test_grad_mode_errors():
    with pytest.raises(ea.ADError, match="mode"):
        ea.grad(ea.parse(POLY), "c", mode="backwards")


def test_transposed_gradients_nest():
    """A transposed gradient is a program with scans: it differentiates again."""
    p = ea.parse("(fun ((x (vec n))) (ifold (lambda (a i) (sin (+ (* a 0.9) (get x i)))) 0.5 n))")
    check_grads(p, order=2)


def test_random_programs_transposed():
    """Smooth random programs with folds: the transposed gradient against central differences."""
    from eqsat_ad.ad.transpose import transposable_fold
    from eqsat_ad.fuzz import rich_program
    from eqsat_ad.lang.typecheck import elaborate
    done = 0
    for seed in range(400):
        prog, _ = rich_program(random.Random(seed), smooth=True)
        if str(check_program(prog)) != "real":
            continue
        if transposable_fold(elaborate(prog), "x") is None:
            continue
        check_grads(prog, wrt=["x"])
        done += 1
        if done == 12:
            break
    assert done >= 6


# -- fold bodies that are chains of lets: reverse mode over the bindings ---------------------------
# an RK4 step of y' = f(y), f(y)_0 = x_0, f(y)_i = x_i y_{i-1} (GradBench's ode, n coefficients, s
# steps): four stages, each reading the one before through a shifted index; the sum of squares
# of the final state
RK4 = ode_objective("(sum n (lambda (i) (* (get yT i) (get yT i))))")
# an LSTM cell: a pair state (h, c), gates let-bound, the weights read in several gates
LSTM_CELL = """(fun ((W (mat 4 m)) (X (mat n m)) (h0 (vec m)))
  (let ((r (ifold (lambda (s t)
              (let ((h (fst s))
                    (c (snd s))
                    (x (get X t))
                    (f (build m (lambda (i) (sigmoid (+ (* (get (get W 0) i) (get x i)) (get h i))))))
                    (g (build m (lambda (i) (tanh (+ (* (get (get W 1) i) (get h i)) (get x i))))))
                    (o (build m (lambda (i) (sigmoid (* (get (get W 2) i) (+ (get x i) (get h i)))))))
                    (cn (build m (lambda (i) (+ (* (get f i) (get c i)) (* (get (get W 3) i) (get g i)))))))
                (pair (build m (lambda (i) (* (get o i) (tanh (get cn i))))) cn)))
            (pair h0 h0) n)))
    (sum m (lambda (i) (* (get (fst r) i) (get (snd r) i))))))"""


@pytest.mark.parametrize("text,wrt", [(RK4, "x"), (LSTM_CELL, "W"), (LSTM_CELL, "h0"), (LSTM_CELL, "X")])
def test_let_chain_bodies_transposed(text, wrt):
    """Transposed binding by binding (auto mode too: the state is as large as wrt, or larger):
    against the forward-mode gradient and central differences."""
    from eqsat_ad.testing import random_inputs
    p = ea.parse(text)
    rev = ea.grad(p, wrt)
    assert _has(rev, Scan)
    inputs = random_inputs(p, {"n": 4, "m": 3, "s": 4}, seed=3)
    if "s" in {q.name for q in p.params}:
        inputs["s"] = 4
    fwd = ea.grad(p, wrt, mode="forward")
    assert np.allclose(ea.evaluate(rev, **inputs), ea.evaluate(fwd, **inputs), rtol=1e-9, atol=1e-12)
    check_grads(p, wrt=[wrt], inputs=inputs, modes=("grad",))


def test_rk4_gradient_cost_is_a_constant_times_the_function():
    """The RK4 gradient w.r.t. its n coefficients, optimised: model cost / the function's stays
    flat from 10^3 to 10^4 steps and from 16 to 160 coefficients (each stage's VJP collapses to
    a shifted read), and it agrees with the interpreter once compiled."""
    m = default_cost_model()
    p = ea.parse(RK4)
    g = ea.grad(p, "x")
    ratios = []
    for sizes in ({"s": 1000, "n": 16}, {"s": 10000, "n": 16}, {"s": 1000, "n": 160}):
        res = ea.optimize(g, sizes=sizes)
        ratios.append(m.dag_cost(res.program, sizes) / m.dag_cost(p, sizes))
    assert max(ratios) <= 1.5 * min(ratios) and max(ratios) < 20, ratios
    fn = ea.compile(res.program)
    x = np.random.default_rng(0).uniform(0.0, 1.0, 6)
    assert np.allclose(fn(x=x, s=5), ea.evaluate(ea.grad(p, "x", mode="forward"), x=x, s=5), rtol=1e-10)


def test_let_chain_bindings_are_read_off_a_tape(monkeypatch):
    """With ``transpose.TAPE``, the stages of an RK4 step are computed for every step by one
    build over the steps (the tape, reading the stored states), and the backward fold reads
    them off it instead of computing them again one step at a time; the gradient is the same."""
    from eqsat_ad.ad import transpose
    from eqsat_ad.lang.ast import Build, Fst, Get, IFold, Let, Snd, Var
    monkeypatch.setattr(transpose, "TAPE", True)
    p = ea.parse(RK4)
    g = ea.grad(p, "x")
    x = np.random.default_rng(2).uniform(0.0, 1.0, 5)
    want = ea.evaluate(ea.grad(p, "x", mode="forward"), x=x, s=4)
    assert np.allclose(ea.evaluate(g, x=x, s=4), want, rtol=1e-10)
    fn = ea.compile(ea.optimize(g, sizes={"n": 16, "s": 100}).program)
    assert np.allclose(fn(x=x, s=4), want, rtol=1e-10)
    lets = {x.name: x.value for x in iter_nodes(g.body) if isinstance(x, Let)}
    tapes = [nm for nm, v in lets.items() if isinstance(v, Build) and v.size == Var("s")]
    assert len(tapes) == 1
    (back,) = [x for x in iter_nodes(g.body) if isinstance(x, IFold)]
    inner = {x.name: x.value for x in iter_nodes(back.body) if isinstance(x, Let)}
    for stage in ("k1", "y1", "k2", "y2", "k3", "y3"):
        v = inner[stage]
        while isinstance(v, (Fst, Snd)):
            v = v.pair
        assert isinstance(v, Get) and v.array == Var(tapes[0]), (stage, v)


def test_gradbench_lstm_transposed():
    """GradBench's LSTM (layers in an inner fold whose state is a pair, over the steps of an
    outer fold with a pair state): the inner fold is transposed inside the outer one's
    bindings."""
    from eqsat_ad.gradbench.programs import LSTM
    p = ea.parse(LSTM)
    rng = np.random.default_rng(4)
    inputs = {"main": rng.random((4, 8)), "extra": rng.random((3, 2)), "state": rng.random((4, 2)),
              "seq": rng.integers(0, 2, (4, 2)).astype(float), "l": 2}
    rev = ea.grad(p, "main")
    assert _has(rev, Scan)
    want = ea.evaluate(ea.grad(p, "main", mode="forward"), **inputs)
    assert np.allclose(ea.evaluate(rev, **inputs), want, rtol=1e-9, atol=1e-12)
    check_grads(p, wrt=["main"], inputs=inputs, modes=("grad",))
    # both weight matrices through one transposition (one backward fold, two accumulators)
    both = ea.grad(p, ["main", "extra"])
    assert sum(isinstance(x, Scan) for x in iter_nodes(both.body)) < 2 * sum(
        isinstance(x, Scan) for x in iter_nodes(rev.body))
    got = ea.evaluate(both, **inputs)
    want = ea.evaluate(ea.grad(p, ["main", "extra"], mode="forward"), **inputs)
    assert all(np.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(got, want))


def test_map_bindings_split_per_costly_call():
    """A binding that maps an elementwise expression is transposed as one binding per costly
    call and its argument (reverse mode over the elementwise graph); a call under an ``if``
    stays where the branch guards it.  Split or not, the gradient is the same, and matches
    central differences (a log guarded by x > 0 included)."""
    from eqsat_ad.ad import transpose
    from eqsat_ad.lang.ast import Build, Get, Let
    text = """(fun ((W (mat 2 m)) (h0 (vec m)))
      (sum m (lambda (k) (get (ifold (lambda (h t)
        (let ((z (build m (lambda (i) (+ (tanh (+ (* (get (get W 0) i) (get h i)) 0.5))
                                         (if (> (get h i) 0.0) (log (+ (get h i) 1.0)) (get h i))))))
              (y (build m (lambda (i) (* (get (get W 1) i) (exp (neg (get z i))))))))
          y)) h0 3) k))))"""
    p = ea.parse(text)
    names = transpose._Names(p)
    z = next(x for x in iter_nodes(p.body) if isinstance(x, Let) and x.name == "z")
    split = transpose._split_map("z", z.value, names)
    assert [type(v) for _, v in split] == [Build] * 3          # argument, tanh, the map
    assert "tanh" in str(split[1][1]) and "log" in str(split[2][1]) and "tanh" not in str(split[2][1])
    assert isinstance(transpose._split_map("z", Get(z.value, ea.lang.ast.Int(0)), names)[0][1], Get)
    inputs = {"W": np.array([[0.3, -0.7, 0.2], [0.9, 0.4, -0.5]]), "h0": np.array([0.4, -0.3, 0.8])}
    want = ea.evaluate(ea.grad(p, "W", mode="forward"), **inputs)
    for flag in (True, False):
        transpose._TIDY_CACHE.clear()
        old, transpose.SPLIT = transpose.SPLIT, flag
        try:
            g = ea.grad(p, "W")
        finally:
            transpose.SPLIT = old
        assert _has(g, Scan)
        assert np.allclose(ea.evaluate(g, **inputs), want, rtol=1e-9, atol=1e-12)
    check_grads(p, wrt=["W"], inputs=inputs, modes=("grad",))


def test_backward_step_runs_an_inner_fold_once():
    """GradBench's LSTM: the backward step of the steps' fold needs its layers (an inner fold)
    for what reads them, and transposes them; the layers' states ``scan`` is computed once and
    the layers' value read off it -- two loops over the layers per step (states, adjoints), not
    three."""
    from eqsat_ad.gradbench.programs import LSTM
    from eqsat_ad.lang.ast import IFold
    p = ea.parse(LSTM)
    g = ea.grad(p, ["main", "extra"])
    (back,) = [x for x in iter_nodes(g.body) if isinstance(x, IFold)
               and any(isinstance(y, Scan) for y in iter_nodes(x.body))]
    inner = [x for x in iter_nodes(back.body) if isinstance(x, (IFold, Scan))]
    assert len(inner) == 2, inner
    rng = np.random.default_rng(5)
    inputs = {"main": rng.random((4, 8)), "extra": rng.random((3, 2)), "state": rng.random((4, 2)),
              "seq": rng.integers(0, 2, (4, 2)).astype(float), "l": 2}
    got = ea.evaluate(g, **inputs)
    want = ea.evaluate(ea.grad(p, ["main", "extra"], mode="forward"), **inputs)
    assert all(np.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(got, want))
