"""The realistic corpus: programs people write, each with a hand-written NumPy derivative.

One place declares every corpus program (issue 10's measuring base): its source (program
text, or a Python function traced with :func:`eqsat_ad.trace`), the derivative taken
(``grad`` w.r.t. a parameter, ``jvp`` along a direction, ``jacobian``, ``hvp`` -- a
Hessian-vector product ``jvp(grad(f, x), x)`` -- or ``cjac``, a compressed Jacobian of a
block-diagonal residual), the sizes to run at, the plain NumPy function and a hand-written
NumPy derivative.  ``tests/test_corpus.py`` checks the hand-written derivatives against
central finite differences of the NumPy function and the eqsat-ad derivative against them;
``benchmarks/bench_corpus.py`` optimises and times them.

The programs are written as a user would write them (library functions such as ``dot`` where
they are natural, intermediate values ``let``-bound where a person would name them, values
reused in traced Python code exactly as Python reuses them); they are not shaped to suit the
optimiser.

>>> e = get("logreg")
>>> e.derivative, e.wrt, e.name
('grad', 'w', 'logreg')
>>> len(CORPUS) >= 20
True

Derivative programs and their parameters:

* ``grad``: ``ea.grad(f, wrt)``; parameters those of ``f``.
* ``jvp``: ``ea.jvp(f, wrt)``; one more parameter ``d<wrt>`` (the direction).
* ``hvp``: ``ea.jvp(ea.grad(f, wrt), wrt)``; one more parameter ``d<wrt>``.
* ``jacobian``: ``ea.jacobian(f, wrt)``: ``(mat m n)`` for ``f : (vec n) -> (vec m)``.
* ``cjac``: for ``f : (mat B K) -> (mat B R)`` whose block ``b`` of output depends only on
  row ``b`` of ``wrt``: the compressed Jacobian ``C[c][b][r] = d f[b][r] / d wrt[b][c]``,
  ``K`` jvps seeded with colour ``c`` in every block (the usual column colouring of a
  block-diagonal Jacobian, as in bundle adjustment).

NumPy functions take the inputs as keyword arguments (arrays of shape given by the parameter
types; reals as Python floats); derivative functions also take the direction ``d<wrt>``
where there is one.  Inputs come from :func:`inputs` (seeded, uniform in [-1, 1), then
adjusted per program where the domain requires it: labels, positive parameters, ...).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

DERIVATIVES = ("grad", "jvp", "hvp", "jacobian", "cjac")


@dataclass(frozen=True)
class CorpusProgram:
    name: str
    doc: str
    derivative: str                         # one of DERIVATIVES
    wrt: str
    numpy_fn: Callable                      # the plain function, NumPy, keyword inputs
    numpy_derivative: Callable              # hand-written derivative (takes d<wrt> for jvp/hvp)
    test_sizes: dict                        # small sizes for the tests
    bench_sizes: tuple                      # 2-3 size dicts for the benchmark (small -> large)
    text: str | None = None                 # program text, or
    traced: Callable | None = None          # () -> Program (a Python function traced)
    numpy_inner_grad: Callable | None = None  # hvp only: the hand-written gradient
    adjust: Callable | None = None          # (inputs, rng) -> None: put inputs in the domain
    tags: tuple = ()
    extra: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        return "text" if self.text is not None else "traced"

    @property
    def direction(self) -> str | None:
        return f"d{self.wrt}" if self.derivative in ("jvp", "hvp") else None

    @property
    def label(self) -> str:
        """``name/derivative-wrt``, e.g. ``mlp2/grad-W1``."""
        return f"{self.name}/{self.derivative}-{self.wrt}"


# --------------------------------------------------------------------------------------
# building the eqsat-ad programs (eqsat_ad is imported lazily: the NumPy side needs none)
# --------------------------------------------------------------------------------------
_PROGRAMS: dict[str, object] = {}


def program(e: CorpusProgram):
    """The primal program (parsed or traced, type-checked), cached."""
    if e.name not in _PROGRAMS:
        import eqsat_ad as ea
        p = ea.parse(e.text, file=f"corpus:{e.name}") if e.text is not None else e.traced()
        ea.check_program(p)
        _PROGRAMS[e.name] = p
    return _PROGRAMS[e.name]


def derivative_program(e: CorpusProgram, mode: str = "auto"):
    """The eqsat-ad derivative program (unoptimised), as the AD transform emits it
    (``mode``: ``grad``'s, for ``grad`` and ``hvp``)."""
    import eqsat_ad as ea
    p = program(e)
    if e.derivative == "grad":
        return ea.grad(p, e.wrt, mode=mode)
    if e.derivative == "jvp":
        return ea.jvp(p, e.wrt)
    if e.derivative == "hvp":
        return ea.jvp(ea.grad(p, e.wrt, mode=mode), e.wrt)
    if e.derivative == "jacobian":
        return ea.jacobian(p, e.wrt)
    if e.derivative == "cjac":
        return _compressed_jacobian(p, e.wrt)
    raise ValueError(f"unknown derivative {e.derivative!r}")


def _compressed_jacobian(p, wrt: str):
    """``build K (λc. let d<wrt> = [row b: onehot K c for every block b] in jvp(p, wrt))``."""
    import eqsat_ad as ea
    from eqsat_ad.lang.ast import Build, If, Int, Let, Num, Prim, Program, Var
    from eqsat_ad.lang.binders import all_names, fresh, rename_unique
    from eqsat_ad.lang.types import ArrayT
    t = p.param(wrt).type
    assert isinstance(t, ArrayT) and isinstance(t.elem, ArrayT), "cjac needs a (mat B K) parameter"
    blocks, colours = t.size, t.elem.size
    j = ea.jvp(p, wrt)
    dname = f"d{wrt}"
    avoid = set(all_names(j.body)) | {q.name for q in j.params} | {blocks, colours}
    c = fresh("colour", avoid)
    b = fresh("block", avoid | {c})
    k = fresh("k", avoid | {c, b})
    size = lambda s: Var(s) if isinstance(s, str) else Int(int(s))  # noqa: E731
    seed = Build(size(blocks), b, Build(size(colours), k,
                                        If(Prim("=", (Var(k), Var(c))), Num(1.0), Num(0.0))))
    body = Build(size(colours), c, Let(dname, seed, j.body))
    out = rename_unique(Program(tuple(q for q in j.params if q.name != dname), body))
    ea.check_program(out)
    return out


def param_shapes(e: CorpusProgram, sizes: dict) -> dict[str, tuple]:
    """Shapes of the inputs of the derivative program (primal parameters, then ``d<wrt>``);
    ``()`` for a real."""
    from eqsat_ad.lang.types import ArrayT
    out = {}
    for q in program(e).params:
        shape, t = [], q.type
        while isinstance(t, ArrayT):
            shape.append(int(sizes[t.size]) if isinstance(t.size, str) else int(t.size))
            t = t.elem
        out[q.name] = tuple(shape)
    if e.direction:
        out[e.direction] = out[e.wrt]
    return out


def inputs(e: CorpusProgram, sizes: dict, seed: int = 0) -> dict:
    """Inputs of the derivative program at ``sizes`` (the primal's plus ``d<wrt>``): float64
    uniform in [-1, 1), seeded by name, sizes and ``seed``, then put in the program's domain."""
    key = f"{e.name}/{sorted(sizes.items())}/{seed}".encode()
    rng = np.random.default_rng(zlib.crc32(key))
    out: dict = {}
    for name, shape in param_shapes(e, sizes).items():
        v = rng.uniform(-1.0, 1.0, size=shape)
        out[name] = float(v) if shape == () else v
    if e.adjust is not None:
        e.adjust(out, rng)
    return out


def primal_inputs(e: CorpusProgram, args: dict) -> dict:
    return {k: v for k, v in args.items() if k != e.direction}


# --------------------------------------------------------------------------------------
# finite differences of the NumPy function (the check of every hand-written derivative)
# --------------------------------------------------------------------------------------
def _fd_along(f: Callable, args: dict, name: str, v: np.ndarray, eps: float) -> np.ndarray:
    plus, minus = dict(args), dict(args)
    plus[name] = args[name] + eps * v
    minus[name] = args[name] - eps * v
    return (np.asarray(f(**plus), dtype=float) - np.asarray(f(**minus), dtype=float)) / (2 * eps)


def fd_derivative(e: CorpusProgram, args: dict, eps: float = 1e-6) -> np.ndarray:
    """The derivative ``e`` takes, by central differences of the NumPy function (for ``hvp``:
    of the hand-written gradient, itself checked against differences of the function)."""
    prim = primal_inputs(e, args)
    x = np.asarray(prim[e.wrt], dtype=float)
    if e.derivative in ("jvp", "hvp"):
        f = e.numpy_fn if e.derivative == "jvp" else e.numpy_inner_grad
        return _fd_along(f, prim, e.wrt, np.asarray(args[e.direction]), eps)
    if e.derivative == "cjac":
        B, K = x.shape
        cols = []
        for c in range(K):
            v = np.zeros_like(x)
            v[:, c] = 1.0
            cols.append(_fd_along(e.numpy_fn, prim, e.wrt, v, eps))
        return np.stack(cols)                       # (K, B, R)
    # grad / jacobian: one column per entry of wrt
    cols = []
    for k in range(x.size):
        v = np.zeros(x.size)
        v[k] = 1.0
        cols.append(_fd_along(e.numpy_fn, prim, e.wrt, v.reshape(x.shape), eps))
    d = np.stack(cols)                               # (entries of wrt, *out)
    if e.derivative == "grad":
        return d.reshape(x.shape)
    return d.reshape(x.size, -1).T                   # jacobian (m, n)


def max_rel_error(got, want) -> float:
    """max |got - want| / max(1, |want|_inf); ``inf`` if the shapes differ."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))


def node_count(prog) -> int:
    """Number of nodes of a program's body (as a tree)."""
    from eqsat_ad.lang.ast import iter_nodes
    return sum(1 for _ in iter_nodes(prog.body))


# --------------------------------------------------------------------------------------
# helpers for the NumPy side
# --------------------------------------------------------------------------------------
def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softplus(z):
    return np.log(1.0 + np.exp(z))


def _softmax(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _labels01(key):
    def adjust(a, rng):
        a[key] = (rng.uniform(size=np.shape(a[key])) < 0.5).astype(float)
    return adjust


# ======================================================================================
# 1. neural-network losses
# ======================================================================================
MLP2_TEXT = """; 2-layer perceptron, squared loss; gradient w.r.t. the inner weight matrix W1
(fun ((W1 (mat h d)) (b1 (vec h)) (W2 (mat o h)) (b2 (vec o)) (x (vec d)) (y (vec o)))
  (let ((a1 (build h (lambda (i) (tanh (+ (dot (get W1 i) x) (get b1 i))))))
        (out (build o (lambda (k) (+ (dot (get W2 k) a1) (get b2 k))))))
    (* 0.5 (sum o (lambda (k) (* (- (get out k) (get y k)) (- (get out k) (get y k))))))))"""


def _mlp2_fn(W1, b1, W2, b2, x, y):
    a1 = np.tanh(W1 @ x + b1)
    r = W2 @ a1 + b2 - y
    return 0.5 * float(r @ r)


def _mlp2_grad(W1, b1, W2, b2, x, y):
    a1 = np.tanh(W1 @ x + b1)
    r = W2 @ a1 + b2 - y
    return np.outer((W2.T @ r) * (1.0 - a1 * a1), x)


MLP3_TEXT = """; 3-layer perceptron, squared loss; gradient w.r.t. the innermost weight matrix W1
(fun ((W1 (mat h d)) (b1 (vec h)) (W2 (mat h h)) (b2 (vec h)) (W3 (mat o h)) (b3 (vec o))
      (x (vec d)) (y (vec o)))
  (let ((a1 (build h (lambda (i) (tanh (+ (dot (get W1 i) x) (get b1 i))))))
        (a2 (build h (lambda (i) (tanh (+ (dot (get W2 i) a1) (get b2 i))))))
        (out (build o (lambda (k) (+ (dot (get W3 k) a2) (get b3 k))))))
    (* 0.5 (sum o (lambda (k) (* (- (get out k) (get y k)) (- (get out k) (get y k))))))))"""


def _mlp3_fwd(W1, b1, W2, b2, W3, b3, x, y):
    a1 = np.tanh(W1 @ x + b1)
    a2 = np.tanh(W2 @ a1 + b2)
    return a1, a2, W3 @ a2 + b3 - y


def _mlp3_fn(**a):
    r = _mlp3_fwd(**a)[2]
    return 0.5 * float(r @ r)


def _mlp3_grad(W1, b1, W2, b2, W3, b3, x, y):
    a1, a2, r = _mlp3_fwd(W1, b1, W2, b2, W3, b3, x, y)
    d2 = (W3.T @ r) * (1.0 - a2 * a2)
    d1 = (W2.T @ d2) * (1.0 - a1 * a1)
    return np.outer(d1, x)


def _mlp3_grad_W2(W1, b1, W2, b2, W3, b3, x, y):
    a1, a2, r = _mlp3_fwd(W1, b1, W2, b2, W3, b3, x, y)
    return np.outer((W3.T @ r) * (1.0 - a2 * a2), a1)


def _mlp3_grad_W3(W1, b1, W2, b2, W3, b3, x, y):
    a1, a2, r = _mlp3_fwd(W1, b1, W2, b2, W3, b3, x, y)
    return np.outer(r, a2)


MLP2_OUT_TEXT = """; 2-layer perceptron output (a vector); directional derivative w.r.t. the input x
(fun ((W1 (mat h d)) (b1 (vec h)) (W2 (mat o h)) (x (vec d)))
  (let ((a1 (build h (lambda (i) (tanh (+ (dot (get W1 i) x) (get b1 i)))))))
    (build o (lambda (k) (dot (get W2 k) a1)))))"""


def _mlp2_out_fn(W1, b1, W2, x):
    return W2 @ np.tanh(W1 @ x + b1)


def _mlp2_out_jvp(W1, b1, W2, x, dx):
    a1 = np.tanh(W1 @ x + b1)
    return W2 @ ((1.0 - a1 * a1) * (W1 @ dx))


ATTENTION_TEXT = """; single-query softmax attention, loss = g . (sum_t a_t V_t); gradient w.r.t. the query
(fun ((K (mat T d)) (V (mat T d)) (q (vec d)) (g (vec d)))
  (let ((s (build T (lambda (t) (/ (dot (get K t) q) (sqrt (real d))))))
        (z (sum T (lambda (t) (exp (get s t)))))
        (a (build T (lambda (t) (/ (exp (get s t)) z)))))
    (sum d (lambda (j) (* (get g j) (sum T (lambda (t) (* (get a t) (get (get V t) j)))))))))"""


def _attention_fn(K, V, q, g):
    a = _softmax(K @ q / np.sqrt(K.shape[1]))
    return float(g @ (V.T @ a))


def _attention_grad(K, V, q, g):
    c = 1.0 / np.sqrt(K.shape[1])
    a = _softmax(K @ q * c)
    u = V @ g
    ds = a * (u - a @ u)
    return c * (K.T @ ds)


CONV1D_TEXT = """; valid 1-D convolution, tanh, squared loss against t (n = m + K - 1); gradient w.r.t. the kernel
(fun ((x (vec n)) (w (vec K)) (t (vec m)))
  (sum m (lambda (i)
    (let ((y (sum K (lambda (k) (* (get w k) (get x (+ i k)))))))
      (* 0.5 (pow (- (tanh y) (get t i)) 2))))))"""


def _conv1d_fn(x, w, t):
    y = np.lib.stride_tricks.sliding_window_view(x, w.shape[0])[:t.shape[0]] @ w
    return 0.5 * float(np.sum((np.tanh(y) - t) ** 2))


def _conv1d_grad(x, w, t):
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[0])[:t.shape[0]]
    th = np.tanh(win @ w)
    return win.T @ ((th - t) * (1.0 - th * th))


# ======================================================================================
# 2. regression with a data matrix
# ======================================================================================
SOFTMAX_REG_TEXT = """; softmax (multinomial logistic) regression, one-hot labels Y; gradient w.r.t. the k x d weights
(fun ((W (mat k d)) (X (mat N d)) (Y (mat N k)))
  (sum N (lambda (n)
    (let ((z (build k (lambda (c) (dot (get W c) (get X n))))))
      (- (log (sum k (lambda (c) (exp (get z c)))))
         (sum k (lambda (c) (* (get (get Y n) c) (get z c)))))))))"""


def _softreg_fn(W, X, Y):
    Z = X @ W.T
    return float(np.sum(np.log(np.exp(Z).sum(axis=1))) - np.sum(Y * Z))


def _softreg_grad(W, X, Y):
    return (_softmax(X @ W.T, axis=1) - Y).T @ X


def _onehot_Y(a, rng):
    N, k = a["Y"].shape
    Y = np.zeros((N, k))
    Y[np.arange(N), rng.integers(0, k, size=N)] = 1.0
    a["Y"] = Y


LOGREG_TEXT = """; logistic regression (labels y in {0, 1}); gradient w.r.t. the weights
(fun ((X (mat N d)) (y (vec N)) (w (vec d)))
  (sum N (lambda (n)
    (let ((z (dot (get X n) w)))
      (- (log (+ 1.0 (exp z))) (* (get y n) z))))))"""


def _logreg_fn(X, y, w):
    z = X @ w
    return float(np.sum(_softplus(z) - y * z))


def _logreg_grad(X, y, w):
    return X.T @ (_sig(X @ w) - y)


RIDGE_TEXT = """; ridge regression; gradient w.r.t. the weights
(fun ((X (mat N d)) (y (vec N)) (w (vec d)) (lam real))
  (+ (* 0.5 (sum N (lambda (n) (let ((r (- (dot (get X n) w) (get y n)))) (* r r)))))
     (* (* 0.5 lam) (dot w w))))"""


def _ridge_fn(X, y, w, lam):
    r = X @ w - y
    return 0.5 * float(r @ r) + 0.5 * lam * float(w @ w)


def _ridge_grad(X, y, w, lam):
    return X.T @ (X @ w - y) + lam * w


def _positive_lam(a, rng):
    a["lam"] = 0.1 + abs(a["lam"])


POISSON_TEXT = """; Poisson regression (log link, counts y); gradient w.r.t. the weights
(fun ((X (mat N d)) (y (vec N)) (w (vec d)))
  (sum N (lambda (n)
    (let ((z (dot (get X n) w)))
      (- (exp z) (* (get y n) z))))))"""


def _poisson_fn(X, y, w):
    z = X @ w
    return float(np.sum(np.exp(z) - y * z))


def _poisson_grad(X, y, w):
    return X.T @ (np.exp(X @ w) - y)


def _counts(a, rng):
    a["y"] = rng.poisson(1.5, size=a["y"].shape).astype(float)
    a["w"] = 0.3 * a["w"]


HUBER_TEXT = """; Huber regression (threshold delta); gradient w.r.t. the weights
(fun ((X (mat N d)) (y (vec N)) (w (vec d)) (delta real))
  (sum N (lambda (n)
    (let ((r (- (dot (get X n) w) (get y n))))
      (if (< (* r r) (* delta delta))
          (* 0.5 (* r r))
          (* delta (- (if (> r 0.0) r (neg r)) (* 0.5 delta))))))))"""


def _huber_fn(X, y, w, delta):
    r = X @ w - y
    a = np.abs(r)
    return float(np.sum(np.where(a < delta, 0.5 * r * r, delta * (a - 0.5 * delta))))


def _huber_grad(X, y, w, delta):
    r = X @ w - y
    return X.T @ np.where(np.abs(r) < delta, r, delta * np.sign(r))


def _huber_adjust(a, rng):
    a["delta"] = 0.5
    a["y"] = 2.0 * a["y"]


QUADFORM_TEXT = """; quadratic form 1/2 x'Ax - b'x (A not symmetric); gradient w.r.t. x
(fun ((A (mat n n)) (b (vec n)) (x (vec n)))
  (let ((Ax (matvec A x)))
    (- (* 0.5 (dot x Ax)) (dot b x))))"""


def _quadform_fn(A, b, x):
    return 0.5 * float(x @ (A @ x)) - float(b @ x)


def _quadform_grad(A, b, x):
    return 0.5 * (A @ x + A.T @ x) - b


# ======================================================================================
# 3. normalisation: a norm computed once and reused
# ======================================================================================
NORMALIZE_TEXT = """; normalised vector x/|x| fed into a squared loss; gradient w.r.t. x
(fun ((x (vec n)) (t (vec n)))
  (let ((r (sqrt (dot x x)))
        (u (build n (lambda (i) (/ (get x i) r)))))
    (sum n (lambda (i) (* (- (get u i) (get t i)) (- (get u i) (get t i)))))))"""


def _normalize_fn(x, t):
    u = x / np.linalg.norm(x)
    return float(np.sum((u - t) ** 2))


def _normalize_grad(x, t):
    r = np.linalg.norm(x)
    u = x / r
    gu = 2.0 * (u - t)
    return (gu - u * (u @ gu)) / r


WEIGHTNORM_TEXT = """; weight-normalised regression w = g v/|v| with a norm penalty: |v| computed once, used
; in every term; gradient w.r.t. v
(fun ((v (vec d)) (g real) (X (mat N d)) (y (vec N)))
  (let ((r (sqrt (dot v v))))
    (+ (sum N (lambda (k)
         (let ((z (/ (* g (dot (get X k) v)) r)))
           (* 0.5 (pow (- (tanh z) (get y k)) 2)))))
       (* 0.01 (pow (- r 1.0) 2)))))"""


def _weightnorm_fn(v, g, X, y):
    r = np.linalg.norm(v)
    z = g * (X @ v) / r
    return 0.5 * float(np.sum((np.tanh(z) - y) ** 2)) + 0.01 * (r - 1.0) ** 2


def _weightnorm_grad(v, g, X, y):
    r = np.linalg.norm(v)
    p = X @ v
    th = np.tanh(g * p / r)
    dz = (th - y) * (1.0 - th * th)
    return g * (X.T @ dz) / r - g * (dz @ p) * v / r ** 3 + 0.02 * (r - 1.0) * v / r


LAYERNORM_TEXT = """; layer normalisation (mean and standard deviation computed once, used for every element),
; then tanh and a weighted sum; gradient w.r.t. x
(fun ((x (vec n)) (gam (vec n)) (bet (vec n)) (t (vec n)))
  (let ((mu (/ (sum n (lambda (i) (get x i))) (real n)))
        (var (/ (sum n (lambda (i) (pow (- (get x i) mu) 2))) (real n)))
        (s (sqrt (+ var 1e-05)))
        (y (build n (lambda (i) (+ (* (get gam i) (/ (- (get x i) mu) s)) (get bet i))))))
    (sum n (lambda (i) (* (get t i) (tanh (get y i)))))))"""


def _layernorm_fn(x, gam, bet, t):
    mu = x.mean()
    s = np.sqrt(((x - mu) ** 2).mean() + 1e-5)
    return float(t @ np.tanh(gam * (x - mu) / s + bet))


def _layernorm_grad(x, gam, bet, t):
    mu = x.mean()
    s = np.sqrt(((x - mu) ** 2).mean() + 1e-5)
    xh = (x - mu) / s
    th = np.tanh(gam * xh + bet)
    dxh = t * (1.0 - th * th) * gam
    return (dxh - dxh.mean() - xh * (dxh @ xh) / x.size) / s


# ======================================================================================
# 4. long chains
# ======================================================================================
# (text template of a stage with its input {a}, NumPy forward, NumPy derivative)
_STAGES = [
    ("(* {a} (get w i))", lambda a, w, b: a * w, lambda a, w, b: w),
    ("(+ {a} (get b i))", lambda a, w, b: a + b, lambda a, w, b: np.ones_like(a)),
    ("(tanh {a})", lambda a, w, b: np.tanh(a), lambda a, w, b: 1.0 - np.tanh(a) ** 2),
    ("(* 1.5 {a})", lambda a, w, b: 1.5 * a, lambda a, w, b: np.full_like(a, 1.5)),
    ("(sin {a})", lambda a, w, b: np.sin(a), lambda a, w, b: np.cos(a)),
    ("(log (+ 1.0 (exp {a})))", lambda a, w, b: _softplus(a), lambda a, w, b: _sig(a)),
    ("(- {a} 0.5)", lambda a, w, b: a - 0.5, lambda a, w, b: np.ones_like(a)),
    ("(* {a} {a})", lambda a, w, b: a * a, lambda a, w, b: 2.0 * a),
    ("(exp (neg {a}))", lambda a, w, b: np.exp(-a), lambda a, w, b: -np.exp(-a)),
    ("(/ {a} (+ 1.0 (* {a} {a})))", lambda a, w, b: a / (1.0 + a * a),
     lambda a, w, b: (1.0 - a * a) / (1.0 + a * a) ** 2),
    ("(sqrt (+ 1.0 (* {a} {a})))", lambda a, w, b: np.sqrt(1.0 + a * a),
     lambda a, w, b: a / np.sqrt(1.0 + a * a)),
    ("(cos {a})", lambda a, w, b: np.cos(a), lambda a, w, b: -np.sin(a)),
    ("(* {a} (get w i))", lambda a, w, b: a * w, lambda a, w, b: w),
    ("(/ 1.0 (+ 1.0 (exp (neg {a}))))", lambda a, w, b: _sig(a),
     lambda a, w, b: _sig(a) * (1.0 - _sig(a))),
    ("(+ {a} (* 0.1 {a} {a} {a}))", lambda a, w, b: a + 0.1 * a ** 3, lambda a, w, b: 1.0 + 0.3 * a * a),
    ("(tanh (* 2.0 {a}))", lambda a, w, b: np.tanh(2.0 * a), lambda a, w, b: 2.0 * (1.0 - np.tanh(2.0 * a) ** 2)),
    ("(log (+ 2.0 {a}))", lambda a, w, b: np.log(2.0 + a), lambda a, w, b: 1.0 / (2.0 + a)),
    ("(* {a} (exp {a}))", lambda a, w, b: a * np.exp(a), lambda a, w, b: (1.0 + a) * np.exp(a)),
    ("(+ {a} (get b i))", lambda a, w, b: a + b, lambda a, w, b: np.ones_like(a)),
    ("(sin (* 3.0 {a}))", lambda a, w, b: np.sin(3.0 * a), lambda a, w, b: 3.0 * np.cos(3.0 * a)),
]


def _pipeline20_text() -> str:
    binds, prev = [], "x"
    for k, (tmpl, _, _) in enumerate(_STAGES, start=1):
        binds.append(f"(a{k} (build n (lambda (i) {tmpl.format(a=f'(get {prev} i)')})))")
        prev = f"a{k}"
    sep = "\n        "
    return ("; 20-stage let-bound element-wise pipeline, summed; gradient w.r.t. x\n"
            "(fun ((x (vec n)) (w (vec n)) (b (vec n)))\n"
            f"  (let ({sep.join(binds)})\n"
            f"    (sum n (lambda (i) (get {prev} i)))))")


PIPELINE20_TEXT = _pipeline20_text()


def _pipeline20_fn(x, w, b):
    a = x
    for _, f, _ in _STAGES:
        a = f(a, w, b)
    return float(a.sum())


def _pipeline20_grad(x, w, b):
    acts = [x]
    for _, f, _ in _STAGES:
        acts.append(f(acts[-1], w, b))
    g = np.ones_like(x)
    for (_, _, df), a in zip(reversed(_STAGES), reversed(acts[:-1])):
        g = g * df(a, w, b)
    return g


CHAIN_LAYERS = 10


def _chain60_text(layers: int = CHAIN_LAYERS) -> str:
    """A chain of ``6 * layers`` let-bound nodes, one operation each: per layer
    ``p = w * v``, ``q = p + s`` (the previous reduction fed back), ``u = tanh q``,
    ``s = mean(u * u)`` (a reduction), ``c = sqrt(s + 1)``, ``v = u / c``."""
    binds, v, s = [], "x", "0.0"
    for k in range(1, layers + 1):
        binds += [f"(p{k} (build n (lambda (i) (* (get w i) (get {v} i)))))",
                  f"(q{k} (build n (lambda (i) (+ (get p{k} i) {s}))))",
                  f"(u{k} (build n (lambda (i) (tanh (get q{k} i)))))",
                  f"(s{k} (/ (sum n (lambda (i) (* (get u{k} i) (get u{k} i)))) (real n)))",
                  f"(c{k} (sqrt (+ s{k} 1.0)))",
                  f"(v{k} (build n (lambda (i) (/ (get u{k} i) c{k}))))"]
        v, s = f"v{k}", f"s{k}"
    sep = "\n        "
    return (f"; a chain of {6 * layers} let-bound nodes, one operation each, whose reductions (mean\n"
            "; squares) feed back into the next layer: an RMS-normalised tanh network with shared\n"
            "; weights; gradient w.r.t. x\n"
            "(fun ((x (vec n)) (w (vec n)))\n"
            f"  (let ({sep.join(binds)})\n"
            f"    (sum n (lambda (i) (get {v} i)))))")


CHAIN60_TEXT = _chain60_text()


def _chain_fwd(x, w, layers=CHAIN_LAYERS):
    v, s, tape = x, 0.0, []
    n = x.size
    for _ in range(layers):
        u = np.tanh(w * v + s)
        s2 = float(u @ u) / n
        c = np.sqrt(s2 + 1.0)
        tape.append((v, u, s2, c))
        v, s = u / c, s2
    return v, tape


def _chain60_fn(x, w):
    return float(_chain_fwd(x, w)[0].sum())


def _chain60_grad(x, w):
    _, tape = _chain_fwd(x, w)
    n = x.size
    gv, gs = np.ones_like(x), 0.0          # adjoints of v_k and of s_k (through the next layer)
    for v, u, s2, c in reversed(tape):
        # v_k = u / c, c = sqrt(s_k + 1), s_k = mean(u^2); s_k also feeds the next layer (gs)
        gs_total = gs - float(gv @ u) / (2.0 * c ** 3)
        gu = gv / c + gs_total * 2.0 * u / n
        gq = gu * (1.0 - u * u)            # q = w * v_{k-1} + s_{k-1}
        gv, gs = gq * w, float(gq.sum())
    return gv


RNN_TEXT = """; scalar recurrent cell h <- tanh(a h + x_t) over the sequence, squared loss on the last
; state; gradient w.r.t. the input sequence
(fun ((x (vec T)) (a real) (h0 real) (y real))
  (let ((hT (ifold (lambda (h t) (tanh (+ (* a h) (get x t)))) h0 T)))
    (* 0.5 (* (- hT y) (- hT y)))))"""


def _rnn_states(x, a, h0):
    hs = [h0]
    for xt in x:
        hs.append(np.tanh(a * hs[-1] + xt))
    return hs


def _rnn_fn(x, a, h0, y):
    return 0.5 * (_rnn_states(x, a, h0)[-1] - y) ** 2


def _rnn_grad(x, a, h0, y):
    hs = _rnn_states(x, a, h0)
    g = np.empty_like(x)
    d = hs[-1] - y
    for t in range(x.size - 1, -1, -1):
        dpre = d * (1.0 - hs[t + 1] ** 2)
        g[t] = dpre
        d = dpre * a
    return g


# ======================================================================================
# 5. Hessian-vector products
# ======================================================================================
LSE_TEXT = """; log-sum-exp; Hessian-vector product
(fun ((x (vec n))) (log (sum n (lambda (i) (exp (get x i))))))"""


def _lse_fn(x):
    return float(np.log(np.exp(x).sum()))


def _lse_grad(x):
    return _softmax(x)


def _lse_hvp(x, dx):
    s = _softmax(x)
    return s * dx - s * (s @ dx)


LOGREG_L2_TEXT = """; L2-regularised logistic regression; Hessian-vector product w.r.t. the weights (Newton-CG)
(fun ((X (mat N d)) (y (vec N)) (w (vec d)) (lam real))
  (+ (sum N (lambda (n)
       (let ((z (dot (get X n) w)))
         (- (log (+ 1.0 (exp z))) (* (get y n) z)))))
     (* (* 0.5 lam) (dot w w))))"""


def _logreg_l2_fn(X, y, w, lam):
    return _logreg_fn(X, y, w) + 0.5 * lam * float(w @ w)


def _logreg_l2_grad(X, y, w, lam):
    return _logreg_grad(X, y, w) + lam * w


def _logreg_l2_hvp(X, y, w, lam, dw):
    s = _sig(X @ w)
    return X.T @ (s * (1.0 - s) * (X @ dw)) + lam * dw


def _logreg_l2_adjust(a, rng):
    _labels01("y")(a, rng)
    _positive_lam(a, rng)


ROSENBROCK_TEXT = """; extended Rosenbrock function; Hessian-vector product
(fun ((x (vec n)))
  (sum (- n 1) (lambda (i)
    (+ (* 100.0 (pow (- (get x (+ i 1)) (* (get x i) (get x i))) 2))
       (pow (- 1.0 (get x i)) 2)))))"""


def _rosen_fn(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def _rosen_grad(x):
    a = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] += -400.0 * x[:-1] * a - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * a
    return g


def _rosen_hvp(x, dx):
    xi, xn, vi, vn = x[:-1], x[1:], dx[:-1], dx[1:]
    h = np.zeros_like(x)
    h[:-1] += (1200.0 * xi * xi - 400.0 * xn + 2.0) * vi - 400.0 * xi * vn
    h[1:] += -400.0 * xi * vi + 200.0 * vn
    return h


# ======================================================================================
# 6. Jacobians
# ======================================================================================
PIPE3_TEXT = """; 3-stage vector pipeline: affine map, tanh, linear read-out; Jacobian w.r.t. x
(fun ((A (mat m n)) (b (vec m)) (C (mat k m)) (x (vec n)))
  (let ((u (build m (lambda (i) (+ (dot (get A i) x) (get b i)))))
        (v (build m (lambda (i) (tanh (get u i)))))
        (y (build k (lambda (r) (dot (get C r) v)))))
    y))"""


def _pipe3_fn(A, b, C, x):
    return C @ np.tanh(A @ x + b)


def _pipe3_jac(A, b, C, x):
    v = np.tanh(A @ x + b)
    return (C * (1.0 - v * v)) @ A


SOFTMAX_TEXT = """; softmax (exp, sum, divide); Jacobian w.r.t. the logits
(fun ((x (vec n)))
  (let ((e (build n (lambda (i) (exp (get x i)))))
        (s (sum n (lambda (i) (get e i)))))
    (build n (lambda (i) (/ (get e i) s)))))"""


def _softmax_fn(x):
    return _softmax(x)


def _softmax_jac(x):
    p = _softmax(x)
    return np.diag(p) - np.outer(p, p)


BA_TEXT = """; bundle-adjustment style residual: one block per observation, camera (angle, translation,
; focal length, radial distortion) C[b] and a fixed point X[b]; compressed Jacobian w.r.t. C
(fun ((C (mat B 6)) (X (mat B 3)) (U (mat B 2)))
  (build B (lambda (b)
    (let ((c (get C b))
          (p (get X b))
          (th (get c 0))
          (rx (+ (- (* (cos th) (get p 0)) (* (sin th) (get p 1))) (get c 1)))
          (ry (+ (+ (* (sin th) (get p 0)) (* (cos th) (get p 1))) (get c 2)))
          (rz (+ (get p 2) (get c 3)))
          (px (/ rx rz))
          (py (/ ry rz))
          (r2 (+ (* px px) (* py py)))
          (s (* (get c 4) (+ 1.0 (* (get c 5) r2)))))
      (build 2 (lambda (r)
        (- (* s (if (= r 0) px py)) (get (get U b) r))))))))"""


def _ba_parts(C, X):
    th, t0, t1, t2, f, k = C.T
    x0, x1, x2 = X.T
    rx = np.cos(th) * x0 - np.sin(th) * x1 + t0
    ry = np.sin(th) * x0 + np.cos(th) * x1 + t1
    rz = x2 + t2
    return th, f, k, x0, x1, rx, ry, rz


def _ba_fn(C, X, U):
    th, f, k, x0, x1, rx, ry, rz = _ba_parts(C, X)
    px, py = rx / rz, ry / rz
    s = f * (1.0 + k * (px * px + py * py))
    return np.stack([s * px, s * py], axis=1) - U


def _ba_cjac(C, X, U):
    """Per block, the 2 x 6 Jacobian written out by hand; returned as (6, B, 2)."""
    th, f, k, x0, x1, rx, ry, rz = _ba_parts(C, X)
    px, py = rx / rz, ry / rz
    r2 = px * px + py * py
    s = f * (1.0 + k * r2)
    one, zero = np.ones_like(th), np.zeros_like(th)
    # d(rx, ry, rz) / d(theta, t0, t1, t2) for each block
    drs = [(-np.sin(th) * x0 - np.cos(th) * x1, np.cos(th) * x0 - np.sin(th) * x1, zero),
           (one, zero, zero), (zero, one, zero), (zero, zero, one)]
    out = []
    for drx, dry, drz in drs:
        dpx = (drx - px * drz) / rz
        dpy = (dry - py * drz) / rz
        ds = f * k * 2.0 * (px * dpx + py * dpy)
        out.append(np.stack([ds * px + s * dpx, ds * py + s * dpy], axis=1))
    ds_f = 1.0 + k * r2                                # focal length
    out.append(np.stack([ds_f * px, ds_f * py], axis=1))
    ds_k = f * r2                                      # distortion
    out.append(np.stack([ds_k * px, ds_k * py], axis=1))
    return np.stack(out)


def _ba_adjust(a, rng):
    C, X = a["C"], a["X"]
    C[:, 0] *= 0.5                     # angles
    C[:, 3] = np.abs(C[:, 3])          # depth translation >= 0
    C[:, 4] = 1.0 + 0.5 * np.abs(C[:, 4])   # focal length
    C[:, 5] *= 0.1                     # distortion
    X[:, 2] = 3.0 + X[:, 2]            # points in front of the camera


# ======================================================================================
# 7. a mixture model
# ======================================================================================
GMM_TEXT = """; diagonal Gaussian mixture: log-likelihood of the N x d data X under K components (means
; M, log standard deviations L, unnormalised log weights a); gradient w.r.t. the means
(fun ((X (mat N d)) (M (mat K d)) (L (mat K d)) (a (vec K)))
  (let ((lse_a (log (sum K (lambda (k) (exp (get a k))))))
        (c (* (* 0.5 (real d)) (log (* 2.0 3.141592653589793)))))
    (sum N (lambda (n)
      (log (sum K (lambda (k)
        (exp (- (- (get a k) lse_a)
                (+ c (sum d (lambda (j)
                       (+ (get (get L k) j)
                          (* 0.5 (pow (/ (- (get (get X n) j) (get (get M k) j))
                                         (exp (get (get L k) j)))
                                      2)))))))))))))))"""


def _gmm_logp(X, M, L, a):
    d = X.shape[1]
    lse = np.log(np.exp(a).sum())
    z = (X[:, None, :] - M[None, :, :]) * np.exp(-L)[None, :, :]
    return a[None, :] - lse - 0.5 * d * np.log(2 * np.pi) - L.sum(axis=1)[None, :] - 0.5 * (z * z).sum(axis=2)


def _gmm_fn(X, M, L, a):
    return float(np.sum(np.log(np.exp(_gmm_logp(X, M, L, a)).sum(axis=1))))


def _gmm_grad(X, M, L, a):
    R = _softmax(_gmm_logp(X, M, L, a), axis=1)          # responsibilities (N, K)
    return np.exp(-2.0 * L) * (R.T @ X - R.sum(axis=0)[:, None] * M)


def _gmm_adjust(a, rng):
    a["L"] = 0.25 * (a["L"] + 1.0)     # log std in [0, 0.5): no underflow at the sizes used


# ======================================================================================
# 8. traced from Python, values reused as Python reuses them
# ======================================================================================
def _traced_mlp():
    import eqsat_ad as ea
    from eqsat_ad.frontend.library import dot
    from eqsat_ad.frontend.trace import build, length, sum, tanh

    def loss(W, b, v, x):
        h = build(length(b), lambda i: tanh(dot(W[i], x) + b[i]))      # h is used twice
        return 0.5 * sum(length(b), lambda i: h[i] * h[i]) + sum(length(b), lambda i: v[i] * h[i])
    return ea.trace(loss, W=ea.Mat("m", "n"), b=ea.Vec("m"), v=ea.Vec("m"), x=ea.Vec("n"))


def _tmlp_fn(W, b, v, x):
    h = np.tanh(W @ x + b)
    return 0.5 * float(h @ h) + float(v @ h)


def _tmlp_grad(W, b, v, x):
    h = np.tanh(W @ x + b)
    return np.outer((h + v) * (1.0 - h * h), x)


def _traced_logreg():
    import eqsat_ad as ea
    from eqsat_ad.frontend.library import matvec
    from eqsat_ad.frontend.trace import exp, length, log, sum

    def loss(X, y, w):
        z = matvec(X, w)                                                 # z[n] is used twice
        return sum(length(y), lambda n: log(1.0 + exp(z[n])) - y[n] * z[n])
    return ea.trace(loss, X=ea.Mat("N", "d"), y=ea.Vec("N"), w=ea.Vec("d"))


def _traced_normalize():
    import eqsat_ad as ea
    from eqsat_ad.frontend.library import norm
    from eqsat_ad.frontend.trace import build, length, sum

    def loss(x, t):
        r = norm(x)                                                      # r is used n + 2 times
        u = build(length(x), lambda i: x[i] / r)                         # u[i] twice
        return sum(length(x), lambda i: (u[i] - t[i]) * (u[i] - t[i])) + (r - 1.0) * (r - 1.0)
    return ea.trace(loss, x=ea.Vec("n"), t=ea.Vec("n"))


def _tnorm_fn(x, t):
    r = np.linalg.norm(x)
    return _normalize_fn(x, t) + (r - 1.0) ** 2


def _tnorm_grad(x, t):
    r = np.linalg.norm(x)
    return _normalize_grad(x, t) + 2.0 * (r - 1.0) * x / r


def _traced_xent():
    import eqsat_ad as ea
    from eqsat_ad.frontend.trace import build, exp, length, log, sum

    def loss(x, t):
        e = build(length(x), lambda i: exp(x[i]))
        s = sum(e)                                                       # e and s reused
        p = build(length(x), lambda i: e[i] / s)
        return -sum(length(x), lambda i: t[i] * log(p[i]))
    return ea.trace(loss, x=ea.Vec("n"), t=ea.Vec("n"))


def _xent_fn(x, t):
    return float(-t @ np.log(_softmax(x)))


def _xent_grad(x, t):
    return _softmax(x) * t.sum() - t


def _prob_t(a, rng):
    t = np.abs(a["t"]) + 0.01
    a["t"] = t / t.sum()


# ======================================================================================
# the corpus
# ======================================================================================
def _sz(**kw):
    return dict(kw)


CORPUS: list[CorpusProgram] = [
    # neural networks ------------------------------------------------------------------
    CorpusProgram("mlp2", "2-layer perceptron (tanh), squared loss; grad w.r.t. the inner weights W1 (h x d)",
                  "grad", "W1", _mlp2_fn, _mlp2_grad, _sz(h=4, d=3, o=2),
                  (_sz(h=8, d=8, o=4), _sz(h=32, d=32, o=8), _sz(h=128, d=128, o=16)),
                  text=MLP2_TEXT, tags=("nn",)),
    CorpusProgram("mlp3", "3-layer perceptron (tanh), squared loss; grad w.r.t. the innermost weights W1",
                  "grad", "W1", _mlp3_fn, _mlp3_grad, _sz(h=3, d=3, o=2),
                  (_sz(h=8, d=8, o=4), _sz(h=32, d=32, o=8), _sz(h=128, d=128, o=16)),
                  text=MLP3_TEXT, tags=("nn",)),
    CorpusProgram("mlp3-W2", "3-layer perceptron (tanh), squared loss; grad w.r.t. the weights W2",
                  "grad", "W2", _mlp3_fn, _mlp3_grad_W2, _sz(h=3, d=3, o=2),
                  (_sz(h=8, d=8, o=4), _sz(h=32, d=32, o=8), _sz(h=128, d=128, o=16)),
                  text=MLP3_TEXT, tags=("nn",)),
    CorpusProgram("mlp3-W3", "3-layer perceptron (tanh), squared loss; grad w.r.t. the weights W3",
                  "grad", "W3", _mlp3_fn, _mlp3_grad_W3, _sz(h=3, d=3, o=2),
                  (_sz(h=8, d=8, o=4), _sz(h=32, d=32, o=8), _sz(h=128, d=128, o=16)),
                  text=MLP3_TEXT, tags=("nn",)),
    CorpusProgram("mlp2-out", "2-layer perceptron output vector; jvp w.r.t. the input x",
                  "jvp", "x", _mlp2_out_fn, _mlp2_out_jvp, _sz(h=4, d=3, o=2),
                  (_sz(h=16, d=16, o=4), _sz(h=128, d=128, o=16), _sz(h=512, d=512, o=64)),
                  text=MLP2_OUT_TEXT, tags=("nn",)),
    CorpusProgram("attention", "single-query softmax attention, linear loss; grad w.r.t. the query q",
                  "grad", "q", _attention_fn, _attention_grad, _sz(T=4, d=3),
                  (_sz(T=16, d=8), _sz(T=128, d=32), _sz(T=1024, d=64)),
                  text=ATTENTION_TEXT, tags=("nn",)),
    CorpusProgram("conv1d", "valid 1-D convolution, tanh, squared loss; grad w.r.t. the kernel w",
                  "grad", "w", _conv1d_fn, _conv1d_grad, _sz(n=8, K=3, m=6),
                  (_sz(n=67, K=4, m=64), _sz(n=1031, K=8, m=1024), _sz(n=16399, K=16, m=16384)),
                  text=CONV1D_TEXT, tags=("nn", "index-arith")),
    # regression -----------------------------------------------------------------------
    CorpusProgram("softmax-regression", "softmax regression, k x d weights, data matrix X, one-hot Y; grad w.r.t. W",
                  "grad", "W", _softreg_fn, _softreg_grad, _sz(k=3, d=3, N=4),
                  (_sz(k=4, d=8, N=32), _sz(k=10, d=32, N=256), _sz(k=10, d=64, N=2048)),
                  text=SOFTMAX_REG_TEXT, adjust=_onehot_Y, tags=("regression",)),
    CorpusProgram("logreg", "logistic regression with a data matrix; grad w.r.t. the weights",
                  "grad", "w", _logreg_fn, _logreg_grad, _sz(N=5, d=3),
                  (_sz(N=64, d=8), _sz(N=1024, d=32), _sz(N=16384, d=64)),
                  text=LOGREG_TEXT, adjust=_labels01("y"), tags=("regression",)),
    CorpusProgram("ridge", "ridge regression with a data matrix; grad w.r.t. the weights",
                  "grad", "w", _ridge_fn, _ridge_grad, _sz(N=5, d=3),
                  (_sz(N=64, d=8), _sz(N=1024, d=32), _sz(N=16384, d=64)),
                  text=RIDGE_TEXT, adjust=_positive_lam, tags=("regression",)),
    CorpusProgram("poisson", "Poisson regression (log link); grad w.r.t. the weights",
                  "grad", "w", _poisson_fn, _poisson_grad, _sz(N=5, d=3),
                  (_sz(N=64, d=8), _sz(N=1024, d=32), _sz(N=16384, d=64)),
                  text=POISSON_TEXT, adjust=_counts, tags=("regression",)),
    CorpusProgram("huber", "Huber regression (branches on the residual); grad w.r.t. the weights",
                  "grad", "w", _huber_fn, _huber_grad, _sz(N=6, d=3),
                  (_sz(N=64, d=8), _sz(N=1024, d=32), _sz(N=16384, d=64)),
                  text=HUBER_TEXT, adjust=_huber_adjust, tags=("regression", "if")),
    CorpusProgram("quadform", "quadratic form x'Ax/2 - b'x with a let-bound Ax; grad w.r.t. x",
                  "grad", "x", _quadform_fn, _quadform_grad, _sz(n=4),
                  (_sz(n=16), _sz(n=128), _sz(n=1024)),
                  text=QUADFORM_TEXT, tags=("linear-algebra",)),
    # normalisation ----------------------------------------------------------------------
    CorpusProgram("normalize", "normalised vector x/|x| fed into a squared loss; grad w.r.t. x",
                  "grad", "x", _normalize_fn, _normalize_grad, _sz(n=5),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=NORMALIZE_TEXT, tags=("norm",)),
    CorpusProgram("weightnorm", "weight-normalised regression: |v| computed once, reused in every term; grad w.r.t. v",
                  "grad", "v", _weightnorm_fn, _weightnorm_grad, _sz(d=3, N=4),
                  (_sz(d=8, N=64), _sz(d=32, N=1024), _sz(d=64, N=16384)),
                  text=WEIGHTNORM_TEXT, tags=("norm", "regression")),
    CorpusProgram("layernorm", "layer normalisation (mean and std reused), tanh, weighted sum; grad w.r.t. x",
                  "grad", "x", _layernorm_fn, _layernorm_grad, _sz(n=5),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=LAYERNORM_TEXT, tags=("norm",)),
    # long chains --------------------------------------------------------------------------
    CorpusProgram("pipeline20", "20-stage let-bound element-wise pipeline, summed; grad w.r.t. x",
                  "grad", "x", _pipeline20_fn, _pipeline20_grad, _sz(n=4),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=PIPELINE20_TEXT, tags=("chain",)),
    CorpusProgram("chain60", "a chain of 60 let-bound one-operation nodes, reductions feeding back; grad w.r.t. x",
                  "grad", "x", _chain60_fn, _chain60_grad, _sz(n=4),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=CHAIN60_TEXT, tags=("chain",)),
    CorpusProgram("rnn", "scalar recurrent cell over a sequence (ifold), squared loss; grad w.r.t. the inputs",
                  "grad", "x", _rnn_fn, _rnn_grad, _sz(T=5),
                  (_sz(T=16), _sz(T=128), _sz(T=1024)),
                  text=RNN_TEXT, tags=("chain", "ifold")),
    # Hessian-vector products ---------------------------------------------------------------
    CorpusProgram("lse-hvp", "log-sum-exp; Hessian-vector product", "hvp", "x", _lse_fn, _lse_hvp,
                  _sz(n=5), (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=LSE_TEXT, numpy_inner_grad=_lse_grad, tags=("hvp",)),
    CorpusProgram("logreg-hvp", "L2 logistic regression; Hessian-vector product w.r.t. the weights",
                  "hvp", "w", _logreg_l2_fn, _logreg_l2_hvp, _sz(N=5, d=3),
                  (_sz(N=64, d=8), _sz(N=1024, d=32), _sz(N=16384, d=64)),
                  text=LOGREG_L2_TEXT, numpy_inner_grad=_logreg_l2_grad, adjust=_logreg_l2_adjust,
                  tags=("hvp", "regression")),
    CorpusProgram("rosenbrock-hvp", "extended Rosenbrock (neighbour indices); Hessian-vector product",
                  "hvp", "x", _rosen_fn, _rosen_hvp, _sz(n=5),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=ROSENBROCK_TEXT, numpy_inner_grad=_rosen_grad, tags=("hvp", "index-arith")),
    # Jacobians ------------------------------------------------------------------------------
    CorpusProgram("pipeline3-jac", "3-stage vector pipeline (affine, tanh, linear); Jacobian w.r.t. x",
                  "jacobian", "x", _pipe3_fn, _pipe3_jac, _sz(m=4, n=3, k=2),
                  (_sz(m=16, n=16, k=8), _sz(m=64, n=64, k=32), _sz(m=256, n=256, k=128)),
                  text=PIPE3_TEXT, tags=("jacobian",)),
    CorpusProgram("softmax-jac", "softmax; Jacobian w.r.t. the logits", "jacobian", "x",
                  _softmax_fn, _softmax_jac, _sz(n=4), (_sz(n=16), _sz(n=128), _sz(n=1024)),
                  text=SOFTMAX_TEXT, tags=("jacobian",)),
    CorpusProgram("bundle-adjust", "many-block reprojection residual (camera with distortion); compressed Jacobian "
                  "w.r.t. the cameras (6 colours)", "cjac", "C", _ba_fn, _ba_cjac, _sz(B=3),
                  (_sz(B=16), _sz(B=1024), _sz(B=65536)),
                  text=BA_TEXT, adjust=_ba_adjust, tags=("jacobian", "blocks")),
    # a mixture model ---------------------------------------------------------------------------
    CorpusProgram("gmm", "diagonal GMM log-likelihood; grad w.r.t. the K x d means", "grad", "M",
                  _gmm_fn, _gmm_grad, _sz(N=4, K=2, d=2),
                  (_sz(N=32, K=3, d=4), _sz(N=256, K=8, d=16), _sz(N=2048, K=16, d=32)),
                  text=GMM_TEXT, adjust=_gmm_adjust, tags=("mixture",)),
    # traced ------------------------------------------------------------------------------------
    CorpusProgram("traced-mlp", "traced: tanh layer h used twice (0.5|h|^2 + v.h); grad w.r.t. W",
                  "grad", "W", _tmlp_fn, _tmlp_grad, _sz(m=3, n=3),
                  (_sz(m=8, n=8), _sz(m=64, n=64), _sz(m=256, n=256)),
                  traced=_traced_mlp, tags=("traced", "nn")),
    CorpusProgram("traced-logreg", "traced: logistic regression with z = matvec(X, w) used twice per term; grad w.r.t. w",
                  "grad", "w", _logreg_fn, _logreg_grad, _sz(N=5, d=3),
                  (_sz(N=64, d=8), _sz(N=1024, d=32), _sz(N=16384, d=64)),
                  traced=_traced_logreg, adjust=_labels01("y"), tags=("traced", "regression")),
    CorpusProgram("traced-normalize", "traced: r = norm(x) and u = x/r reused in a loss; grad w.r.t. x",
                  "grad", "x", _tnorm_fn, _tnorm_grad, _sz(n=5),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  traced=_traced_normalize, tags=("traced", "norm")),
    CorpusProgram("traced-xent", "traced: softmax cross-entropy with exp(x) and its sum reused; grad w.r.t. x",
                  "grad", "x", _xent_fn, _xent_grad, _sz(n=5),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  traced=_traced_xent, adjust=_prob_t, tags=("traced",)),
]



# ======================================================================================
# issue 11: shifted and ranged indices, max/min, non-smooth losses
# ======================================================================================
FD_PENALTY_TEXT = """; finite-difference (smoothness) penalty: squared first differences; gradient w.r.t. x
(fun ((x (vec n)))
  (sum (- n 1) (lambda (i) (pow (- (get x (+ i 1)) (get x i)) 2.0))))"""


def _fd_penalty_fn(x):
    return float(np.sum(np.diff(x) ** 2))


def _fd_penalty_grad(x):
    d = 2.0 * np.diff(x)
    g = np.zeros_like(x)
    g[1:] += d
    g[:-1] -= d
    return g


SECOND_DIFF_TEXT = """; second-difference (curvature) penalty; gradient w.r.t. x
(fun ((x (vec n)))
  (sum (- n 2) (lambda (i)
    (pow (+ (- (get x (+ i 2)) (* 2.0 (get x (+ i 1)))) (get x i)) 2.0))))"""


def _second_diff_fn(x):
    return float(np.sum((x[2:] - 2.0 * x[1:-1] + x[:-2]) ** 2))


def _second_diff_grad(x):
    d = 2.0 * (x[2:] - 2.0 * x[1:-1] + x[:-2])
    g = np.zeros_like(x)
    g[2:] += d
    g[1:-1] -= 2.0 * d
    g[:-2] += d
    return g


CONV3_TEXT = """; 3-tap valid convolution of the signal x, squared loss against t; gradient w.r.t. the signal
(fun ((x (vec n)) (w (vec 3)) (t (vec n)))
  (sum (- n 2) (lambda (i)
    (let ((y (+ (+ (* (get w 0) (get x i)) (* (get w 1) (get x (+ i 1)))) (* (get w 2) (get x (+ i 2))))))
      (* 0.5 (pow (- y (get t i)) 2.0))))))"""


def _conv3_fn(x, w, t):
    y = w[0] * x[:-2] + w[1] * x[1:-1] + w[2] * x[2:]
    return 0.5 * float(np.sum((y - t[:-2]) ** 2))


def _conv3_grad(x, w, t):
    r = w[0] * x[:-2] + w[1] * x[1:-1] + w[2] * x[2:] - t[:-2]
    g = np.zeros_like(x)
    g[:-2] += w[0] * r
    g[1:-1] += w[1] * r
    g[2:] += w[2] * r
    return g


CONVK_TEXT = """; K-tap valid convolution of the signal x, squared loss against t; gradient w.r.t. the signal
(fun ((x (vec n)) (w (vec K)) (t (vec n)))
  (sum (+ (- n K) 1) (lambda (i)
    (let ((y (sum K (lambda (k) (* (get w k) (get x (+ i k)))))))
      (* 0.5 (pow (- y (get t i)) 2.0))))))"""


def _convk_fn(x, w, t):
    m = x.shape[0] - w.shape[0] + 1
    y = np.lib.stride_tricks.sliding_window_view(x, w.shape[0])[:m] @ w
    return 0.5 * float(np.sum((y - t[:m]) ** 2))


def _convk_grad(x, w, t):
    m = x.shape[0] - w.shape[0] + 1
    r = np.lib.stride_tricks.sliding_window_view(x, w.shape[0])[:m] @ w - t[:m]
    return np.convolve(r, w)                 # g[j] = sum_k w[k] r[j - k]


LSE_MAX_TEXT = """; log-sum-exp shifted by the maximum, the maximum written as a fold; gradient w.r.t. x
(fun ((x (vec n)))
  (let ((m (ifold (lambda (a i) (max a (get x i))) -inf n)))
    (+ m (log (sum n (lambda (i) (exp (- (get x i) m))))))))"""


def _lse_max_fn(x):
    m = np.max(x)
    return float(m + np.log(np.sum(np.exp(x - m))))


def _lse_max_grad(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


SOFTMAX_MAX_TEXT = """; softmax with the max shift (a fold), weighted by c; gradient w.r.t. the logits x
(fun ((x (vec n)) (c (vec n)))
  (let ((m (ifold (lambda (a i) (max a (get x i))) -inf n))
        (s (sum n (lambda (i) (exp (- (get x i) m))))))
    (sum n (lambda (i) (* (get c i) (/ (exp (- (get x i) m)) s))))))"""


def _softmax_max_fn(x, c):
    e = np.exp(x - np.max(x))
    return float(c @ (e / e.sum()))


def _softmax_max_grad(x, c):
    e = np.exp(x - np.max(x))
    s = e / e.sum()
    return s * (c - s @ c)


KMEANS_TEXT = """; k-means objective: each point's squared distance to its nearest centroid (a min fold);
; gradient w.r.t. the K x d centroids
(fun ((X (mat N d)) (C (mat K d)))
  (sum N (lambda (p)
    (ifold (lambda (m c) (min m (sum d (lambda (j) (pow (- (get (get X p) j) (get (get C c) j)) 2.0)))))
           inf K))))"""


def _kmeans_d2(X, C):
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)


def _kmeans_fn(X, C):
    return float(_kmeans_d2(X, C).min(axis=1).sum())


def _kmeans_grad(X, C):
    a = _kmeans_d2(X, C).argmin(axis=1)
    g = np.zeros_like(C)
    np.add.at(g, a, 2.0 * (C[a] - X))
    return g


HINGE_TEXT = """; hinge loss (linear SVM, labels y in {-1, 1}) with max, plus an L2 term; gradient w.r.t. w
(fun ((X (mat N d)) (y (vec N)) (w (vec d)) (lam real))
  (+ (sum N (lambda (p) (max 0.0 (- 1.0 (* (get y p) (dot (get X p) w))))))
     (* (* 0.5 lam) (dot w w))))"""


def _hinge_fn(X, y, w, lam):
    return float(np.sum(np.maximum(0.0, 1.0 - y * (X @ w))) + 0.5 * lam * (w @ w))


def _hinge_grad(X, y, w, lam):
    active = (1.0 - y * (X @ w)) > 0.0       # ties go to max's first operand, 0: no gradient
    return -(X.T @ (y * active)) + lam * w


def _labels_pm1(a, rng):
    a["y"] = np.where(rng.uniform(size=np.shape(a["y"])) < 0.5, -1.0, 1.0)
    a["lam"] = 0.1


L1_TEXT = """; least squares with an L1 penalty (abs); gradient w.r.t. w
(fun ((X (mat N d)) (y (vec N)) (w (vec d)) (lam real))
  (+ (* 0.5 (sum N (lambda (p) (pow (- (dot (get X p) w) (get y p)) 2.0))))
     (* lam (sum d (lambda (j) (abs (get w j)))))))"""


def _l1_fn(X, y, w, lam):
    return float(0.5 * np.sum((X @ w - y) ** 2) + lam * np.sum(np.abs(w)))


def _l1_grad(X, y, w, lam):
    return X.T @ (X @ w - y) + lam * np.sign(w)


def _positive_lam01(a, rng):
    a["lam"] = 0.1


CORPUS += [
    CorpusProgram("fd-penalty", "finite-difference penalty sum (x[i+1] - x[i])^2 over n-1 terms; grad w.r.t. x",
                  "grad", "x", _fd_penalty_fn, _fd_penalty_grad, _sz(n=6),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=FD_PENALTY_TEXT, tags=("index-arith",)),
    CorpusProgram("second-diff", "second-difference penalty (x[i+2] - 2x[i+1] + x[i])^2; grad w.r.t. x",
                  "grad", "x", _second_diff_fn, _second_diff_grad, _sz(n=7),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=SECOND_DIFF_TEXT, tags=("index-arith",)),
    CorpusProgram("conv3-signal", "3-tap valid convolution, squared loss; grad w.r.t. the signal x",
                  "grad", "x", _conv3_fn, _conv3_grad, _sz(n=7),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=CONV3_TEXT, tags=("index-arith", "nn")),
    CorpusProgram("convk-signal", "K-tap valid convolution, squared loss; grad w.r.t. the signal x",
                  "grad", "x", _convk_fn, _convk_grad, _sz(n=9, K=3),
                  (_sz(n=100, K=5), _sz(n=10_000, K=5), _sz(n=100_000, K=5)),
                  text=CONVK_TEXT, tags=("index-arith", "nn")),
    CorpusProgram("lse-max", "log-sum-exp shifted by its maximum (a max fold); grad w.r.t. x",
                  "grad", "x", _lse_max_fn, _lse_max_grad, _sz(n=6),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=LSE_MAX_TEXT, tags=("max",)),
    CorpusProgram("softmax-max", "softmax with the max shift, weighted sum; grad w.r.t. the logits",
                  "grad", "x", _softmax_max_fn, _softmax_max_grad, _sz(n=6),
                  (_sz(n=100), _sz(n=10_000), _sz(n=100_000)),
                  text=SOFTMAX_MAX_TEXT, tags=("max",)),
    CorpusProgram("kmeans", "k-means objective, min over centroids (a min fold); grad w.r.t. the centroids",
                  "grad", "C", _kmeans_fn, _kmeans_grad, _sz(N=6, K=3, d=2),
                  (_sz(N=100, K=8, d=4), _sz(N=10_000, K=8, d=4), _sz(N=100_000, K=8, d=4)),
                  text=KMEANS_TEXT, tags=("max",)),
    CorpusProgram("hinge", "hinge loss (linear SVM) with max, L2 term; grad w.r.t. the weights",
                  "grad", "w", _hinge_fn, _hinge_grad, _sz(N=6, d=3),
                  (_sz(N=100, d=8), _sz(N=10_000, d=8), _sz(N=100_000, d=8)),
                  text=HINGE_TEXT, adjust=_labels_pm1, tags=("max", "regression")),
    CorpusProgram("l1-regression", "least squares with an L1 penalty (abs); grad w.r.t. the weights",
                  "grad", "w", _l1_fn, _l1_grad, _sz(N=6, d=3),
                  (_sz(N=100, d=8), _sz(N=10_000, d=8), _sz(N=100_000, d=8)),
                  text=L1_TEXT, adjust=_positive_lam01, tags=("abs", "regression")),
]

NAMES = [e.name for e in CORPUS]
assert len(set(NAMES)) == len(NAMES), "corpus names must be unique"


def get(name: str) -> CorpusProgram:
    for e in CORPUS:
        if e.name == name:
            return e
    raise KeyError(f"no corpus program {name!r}; known: {', '.join(NAMES)}")
