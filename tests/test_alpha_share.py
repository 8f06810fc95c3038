"""The NumPy backend computes a one-index sub-term once whatever its index and its inner
binders are called and at whatever depth it stands: the optimiser names binders by nesting
level, so the same matrix-vector product at two depths has two spellings (mlp3's gradient
computed W1 @ x three times and W2 @ a1 twice).  Values against the reference interpreter."""
import numpy as np

import eqsat_ad as ea
from eqsat_ad.testing import assert_matches_interpreter

TEXT = """(fun ((W (mat h d)) (x (vec d)) (V (mat h h)))
  (build h (lambda (i)
    (* (tanh (sum d (lambda (j) (* (get (get W i) j) (get x j)))))
       (sum h (lambda (k) (* (get (get V i) k)
                             (sum d (lambda (l) (* (get (get W k) l) (get x l)))))))))))"""


def test_alpha_equivalent_sums_at_two_depths_are_computed_once():
    p = ea.parse(TEXT)
    fn = ea.compile(p)
    assert fn.source.count("_dot(W, x)") == 1, fn.source
    rng = np.random.default_rng(0)
    for h, d in [(0, 0), (1, 1), (3, 4), (5, 2)]:
        args = {"W": rng.standard_normal((h, d)), "x": rng.standard_normal(d), "V": rng.standard_normal((h, h))}
        assert_matches_interpreter(p, fn, args)


def test_mlp3_gradient_computes_each_forward_product_once():
    from eqsat_ad.bench import corpus as C
    e = C.get("mlp3")
    g = C.derivative_program(e)
    res = ea.optimize(g, sizes={"h": 32, "d": 32, "o": 8}, check=False)
    fn = ea.compile(res.program)
    assert fn.source.count("_dot(W1, x)") == 1
    args = C.inputs(e, {"h": 5, "d": 4, "o": 3})
    np.testing.assert_allclose(fn(**args), e.numpy_derivative(**args), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fn(**args), ea.evaluate(g, **args), rtol=1e-10, atol=1e-12)


ATT = """(fun ((K (mat T d)) (q (vec d)))
  (let ((z (sum T (lambda (i) (exp (sum d (lambda (j) (* (get (get K i) j) (get q j)))))))))
    (build d (lambda (i) (/ (sum T (lambda (j)
      (* (get (get K j) i) (exp (sum d (lambda (k) (* (get (get K j) k) (get q k)))))))) z)))))"""


def test_a_term_of_a_lets_loop_is_shared_inside_a_loop_nested_otherwise():
    """The let's loop over T runs under the guard (T > 0); the same term inside build d then sum
    T runs under ((d > 0), (T > 0)), not a prefix of it: shared all the same (a subset)."""
    p = ea.parse(ATT)
    fn = ea.compile(p)
    assert fn.source.count("_dot(K, q)") == 1, fn.source
    rng = np.random.default_rng(2)
    for T, d in [(0, 0), (0, 3), (3, 0), (1, 1), (4, 3)]:
        args = {"K": rng.standard_normal((T, d)) * 0.3, "q": rng.standard_normal(d)}
        assert_matches_interpreter(p, fn, args)
