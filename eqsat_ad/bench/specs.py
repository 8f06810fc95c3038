"""The benchmark programs: source text, inputs, hand-written NumPy gradients, peer definitions.

This module depends on NumPy only and uses no relative imports, so that the peer workers
(``eqsat_ad/bench/peers/*.py``, run in their own processes) can load it by file path without
importing ``eqsat_ad`` (and egglog) next to JAX or PyTorch.

Every program is a :class:`Spec`.  ``n`` is the benchmark size: the number of
differentiated inputs (for ``mlp`` W is ``10 x n/10``, as in the peer baselines; for
``matvec-jac`` A is ``n x n``).  ``inputs(spec, n)`` makes the same float64 inputs in every
process (a seeded generator), ``spec.numpy_grad`` is the hand-written closed-form gradient
(the baseline every ratio is taken against) and ``spec.peer`` names the function that the
peer workers differentiate (defined there with ``jnp`` / ``torch``).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

MICRO_SIZES = (10, 100, 1_000, 10_000, 100_000, 1_000_000)
SUITE_SIZES = (10, 100, 1_000, 10_000, 100_000)
MATVEC_SIZES = (10, 100, 1_000, 2_000)
QUICK_SIZES = (10, 1_000)
QUICK_MATVEC_SIZES = (10, 100)

THREAD_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
    "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "1",
}
"""Environment for every worker process: one thread in every pool (see the Protocol section
of the peer baselines: several BLAS/XLA pools in one process on 2 shared cores made NumPy
matrix-vector products 10-100x slower)."""


@dataclass(frozen=True)
class Spec:
    name: str
    group: str                      # "micro" | "suite" | "cross"
    text: str                       # program text (ea.parse)
    wrt: str                        # differentiated parameter
    kind: str                       # "grad" | "jacobian"
    params: tuple[str, ...]         # parameter names, in order
    shapes: Callable[[int], dict]   # n -> {param: shape}
    sizes: Callable[[int], dict]    # n -> size names for ea.optimize
    numpy_grad: Callable[..., np.ndarray]
    peer: str                       # key of the peer function (see eqsat_ad/bench/peers)
    bench_sizes: tuple[int, ...] = SUITE_SIZES
    quick_sizes: tuple[int, ...] = QUICK_SIZES
    naive_exponent: int = 2         # work of the unoptimised dual-number program ~ n**e
    doc: str = ""
    extra: dict = field(default_factory=dict)

    def dims(self, n: int) -> int:
        """Number of differentiated scalars (the Jacobian of forward mode has dims x out)."""
        return int(np.prod(self.shapes(n)[self.wrt]))


def _vec(*names):
    return lambda n: {p: (n,) for p in names}


def _n(n):
    return {"n": n}


def _mlp_rows(n):
    return 10 if n >= 10 else 1


def _mlp_shapes(n):
    m = _mlp_rows(n)
    return {"W": (m, max(1, n // m)), "x": (max(1, n // m),), "b": (m,)}


def _sigmoid_grad(x):
    s = 1.0 / (1.0 + np.exp(-x))
    return s * (1.0 - s)


def _lse_grad(x):
    e = np.exp(x)
    return e / e.sum()


def _mlp_grad(W, x, b):
    h = np.tanh(W @ x + b)
    return np.outer(1.0 - h * h, x)


def _cross_grad(a, b):
    return np.array([b[1] - b[2], b[2] - b[0], b[0] - b[1]])


CROSS_TEXT = """(fun ((a (vec 3)) (b (vec 3)))
  (vsum (build 3 (lambda (i)
    (if (= i 0) (- (* (get a 1) (get b 2)) (* (get a 2) (get b 1)))
    (if (= i 1) (- (* (get a 2) (get b 0)) (* (get a 0) (get b 2)))
                (- (* (get a 0) (get b 1)) (* (get a 1) (get b 0)))))))))"""

MICRO = [
    Spec("vsum", "micro", "(fun ((x (vec n))) (vsum x))", "x", "grad", ("x",), _vec("x"), _n,
         lambda x: np.ones_like(x), "vsum", MICRO_SIZES, doc="sum(x); gradient = ones"),
    Spec("dot", "micro", "(fun ((x (vec n)) (w (vec n))) (dot x w))", "x", "grad", ("x", "w"),
         _vec("x", "w"), _n, lambda x, w: w.copy(), "dot", MICRO_SIZES,
         doc="sum(x*w) (library dot); gradient = w (the NumPy baseline copies w)"),
    Spec("sqnorm", "micro", "(fun ((x (vec n))) (sqnorm x))", "x", "grad", ("x",), _vec("x"), _n,
         lambda x: 2.0 * x, "sqnorm", MICRO_SIZES, doc="dot(x, x); gradient = 2x"),
    Spec("add3", "micro", "(fun ((v1 (vec n)) (v2 (vec n)) (v3 (vec n))) (vsum (add v1 (add v2 v3))))",
         "v1", "grad", ("v1", "v2", "v3"), _vec("v1", "v2", "v3"), _n,
         lambda v1, v2, v3: np.ones_like(v1), "add3", MICRO_SIZES,
         doc="dF~ add3: sum(v1+v2+v3) w.r.t. v1; gradient = ones"),
    Spec("cross", "cross", CROSS_TEXT, "a", "grad", ("a", "b"), lambda n: {"a": (3,), "b": (3,)},
         lambda n: {}, _cross_grad, "cross", (3,), (3,),
         doc="dF~ cross: sum of the 3-vector cross product a x b w.r.t. a (n fixed at 3)"),
]

SUITE = [
    Spec("sumsq", "suite", "(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))",
         "x", "grad", ("x",), _vec("x"), _n, lambda x: 2.0 * x, "sumsq", doc="sum(x**2)"),
    Spec("dot", "suite",
         "(fun ((x (vec n)) (w (vec n))) (ifold (lambda (acc i) (+ acc (* (get x i) (get w i)))) "
         "0.0 (length x)))", "x", "grad", ("x", "w"), _vec("x", "w"), _n, lambda x, w: w.copy(), "dot",
         doc="sum(x*w) as an ifold; gradient = w (the NumPy baseline copies w)"),
    Spec("sigmoid-sum", "suite",
         "(fun ((x (vec n))) (sum n (lambda (i) (/ 1.0 (+ 1.0 (exp (neg (get x i))))))))", "x", "grad",
         ("x",), _vec("x"), _n, _sigmoid_grad, "sigmoid", doc="sum(1/(1+exp(-x)))"),
    Spec("logsumexp", "suite", "(fun ((x (vec n))) (log (sum n (lambda (i) (exp (get x i))))))",
         "x", "grad", ("x",), _vec("x"), _n, _lse_grad, "lse", doc="log(sum(exp(x)))"),
    Spec("poly", "suite",
         "(fun ((x (vec n))) (sum n (lambda (i) (+ (+ (pow (get x i) 3) (* 3.0 (pow (get x i) 2))) "
         "(get x i)))))", "x", "grad", ("x",), _vec("x"), _n,
         lambda x: 3.0 * x * x + 6.0 * x + 1.0, "poly", doc="sum(x**3 + 3x**2 + x)"),
    Spec("mlp", "suite",
         "(fun ((W (mat m n)) (x (vec n)) (b (vec m))) (sum m (lambda (k) (tanh (+ (sum n (lambda (j) "
         "(* (get (get W k) j) (get x j)))) (get b k))))))", "W", "grad", ("W", "x", "b"), _mlp_shapes,
         lambda n: {"m": _mlp_rows(n), "n": max(1, n // _mlp_rows(n))}, _mlp_grad, "mlp",
         doc="sum(tanh(W x + b)) w.r.t. W, W is 10 x n/10"),
    Spec("matvec-jac", "suite",
         "(fun ((A (mat m n)) (x (vec n))) (build m (lambda (i) (sum n (lambda (j) "
         "(* (get (get A i) j) (get x j)))))))", "x", "jacobian", ("A", "x"),
         lambda n: {"A": (n, n), "x": (n,)}, lambda n: {"m": n, "n": n}, lambda A, x: A.copy(),
         "matvec", MATVEC_SIZES, QUICK_MATVEC_SIZES, naive_exponent=3,
         doc="Jacobian of A x w.r.t. x (= A; the NumPy baseline copies A), A is n x n"),
]

ALL = MICRO + SUITE


def get(group: str, name: str) -> Spec:
    for s in ALL:
        if s.name == name and (s.group == group or (group == "micro" and s.group == "cross")):
            return s
    raise KeyError(f"no benchmark program {group}/{name}")


def inputs(spec: Spec, n: int) -> dict[str, np.ndarray]:
    """The inputs of ``spec`` at size ``n``: float64, uniform in [-1.5, 1.5), seeded by name and n
    (identical in every worker process)."""
    rng = np.random.default_rng(zlib.crc32(f"{spec.group}/{spec.name}/{n}".encode()))
    return {p: rng.uniform(-1.5, 1.5, size=shape) for p, shape in spec.shapes(n).items()}


def reference(spec: Spec, n: int, args: dict | None = None) -> np.ndarray:
    args = inputs(spec, n) if args is None else args
    return spec.numpy_grad(*[args[p] for p in spec.params])


def max_rel_error(got, want) -> float:
    """max |got - want| / max(1, |want|_inf); ``inf`` if the shapes differ."""
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
