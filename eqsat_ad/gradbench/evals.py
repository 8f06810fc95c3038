"""What each GradBench eval asks for, as programs of the language: for every module and
function, the program to optimise and compile (a derivative made from the objective of
:mod:`eqsat_ad.gradbench.programs` by ``grad``/``jvp``), how an eval's JSON input becomes the
program's inputs, the sizes the optimiser is told (they also key the cache), and how the
result becomes the JSON output the eval checks."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable

import numpy as np

from ..errors import EqsatError
from . import programs as P


class BadInput(EqsatError):
    """An evaluate message whose input does not have the eval's fields, shapes or types."""


@dataclass(frozen=True)
class Function:
    program: Callable[[], Any]              # -> Program (built once, then cached)
    inputs: Callable[[Any], dict]           # JSON input -> keyword inputs of the program
    sizes: Callable[[dict], dict]           # program inputs -> sizes (optimiser, cache key)
    output: Callable[[Any, dict], Any]      # result, inputs -> JSON output
    #: optimise binding by binding (``optimize_bindings``): the program is reverse mode's
    #: statements (``ad.loopnest``), each materialised once and read by several adjoints
    bindings: bool = False


# -- reading inputs ------------------------------------------------------------------------

def _field(inp: Any, name: str) -> Any:
    if not isinstance(inp, dict):
        raise BadInput(f"the input should be an object with field {name!r}, got {type(inp).__name__}")
    if name not in inp:
        raise BadInput(f"the input has no field {name!r} (fields: {', '.join(sorted(inp)) or 'none'})")
    return inp[name]


def _array(inp: Any, name: str, ndim: int) -> np.ndarray:
    v = _field(inp, name)
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"field {name!r} should be {'a number' if ndim == 0 else f'an array of rank {ndim}'} "
                       f"of numbers") from None
    if a.ndim != ndim:
        raise BadInput(f"field {name!r} should have rank {ndim}, got rank {a.ndim} (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise BadInput(f"field {name!r} has a non-finite number")
    return a


def _count(inp: Any, name: str, least: int = 0) -> int:
    v = _field(inp, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or int(v) < least:
        raise BadInput(f"field {name!r} should be an integer >= {least}, got {v!r}")
    return int(v)


def _real(inp: Any, name: str) -> float:
    return float(_array(inp, name, 0))


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise BadInput(msg)


def _list(v) -> Any:
    return np.asarray(v, dtype=np.float64).tolist()


# -- the programs ------------------------------------------------------------------------------

@cache
def _parsed(name: str):
    from ..lang.syntax import parse
    return parse(P.SOURCES[name], file=f"gradbench/{name}")


@cache
def _grad(name: str, wrt) -> Any:
    from ..ad import grad
    return grad(_parsed(name), list(wrt) if isinstance(wrt, tuple) else wrt)


@cache
def _ode_last_grad():
    """Gradient of the last element of the ODE's final state."""
    from ..ad import grad
    from ..lang.ast import Get, Int, Prim, Program, Var
    p = _parsed("ode")
    return grad(Program(p.params, Get(p.body, Prim("-", (Var("n"), Int(1))))), "x")


@cache
def _kmeans_dir():
    """Newton direction of k-means: gradient / Hessian diagonal w.r.t. the centroids.  The
    Hessian is diagonal, so its diagonal is the Hessian-vector product with all ones: a jvp of
    the gradient in the direction of ones gives both in one program."""
    from ..ad import jvp
    from ..lang.ast import Build, Fst, Get, Let, Num, Prim, Program, Snd, Var
    from ..lang.binders import all_names, fresh
    g = _grad("kmeans", "C")
    used = set(all_names(g.body)) | {"P", "C", "n", "d", "k"}
    dname = fresh("dC", used)
    used.add(dname)
    hv = jvp(g, "C", tangent=dname, with_primal=True)
    gh, j, c = fresh("gh", used), fresh("j", used | {"gh"}), fresh("c", used | {"gh", "j"})
    ones = Build(Var("k"), j, Build(Var("d"), c, Num(1.0)))
    ratio = Build(Var("k"), j, Build(Var("d"), c, Prim("/", (
        Get(Get(Fst(Var(gh)), Var(j)), Var(c)), Get(Get(Snd(Var(gh)), Var(j)), Var(c))))))
    return Program(g.params, Let(dname, ones, Let(gh, hv.body, ratio)))


@cache
def _ba_jacobian():
    """The Jacobian blocks of bundle adjustment: for each local direction q (the 11 parameters
    of an observation's camera, the 3 of its point, its weight), the jvp of the residuals with
    q seeded in *every* camera (point, weight) at once.  Each residual depends on one camera,
    one point and one weight, so that jvp is column q of every observation's 2x15 block
    (a column-compressed Jacobian): 15 forward passes for the whole sparse Jacobian."""
    from ..ad import jvp
    from ..lang.ast import Build, If, Int, Let, Num, Prim, Program, Var
    from ..lang.binders import all_names, fresh
    prog = _parsed("ba")
    used = set(all_names(prog.body)) | {"cams", "X", "w", "feats", "oc", "op", "n", "m", "p", "C", "D", "E"}
    names = []
    for base in ("dcams", "dX", "dw", "q", "a", "j"):
        names.append(fresh(base, used))
        used.add(names[-1])
    dc, dX, dw, q, a, j = names
    jp = jvp(prog, ["cams", "X", "w"], tangent=[dc, dX, dw])

    def one_at(e):
        return If(Prim("=", (e, Var(q))), Num(1.0), Num(0.0))
    C, D = Var("C"), Var("D")
    seed_c = Build(Var("n"), a, Build(C, j, one_at(Var(j))))
    seed_x = Build(Var("m"), a, Build(D, j, one_at(Prim("+", (Var(j), C)))))
    seed_w = Build(Var("p"), a, one_at(Prim("+", (C, D))))
    body = Let(dc, seed_c, Let(dX, seed_x, Let(dw, seed_w, jp.body)))
    return Program(prog.params, Build(Prim("+", (Prim("+", (C, D)), Int(1))), q, body))


# -- per eval ------------------------------------------------------------------------------------

def _hello_inputs(inp):
    _need(isinstance(inp, (int, float)) and not isinstance(inp, bool), f"hello takes a number, got {inp!r}")
    return {"x": float(inp)}


def _vec_x(inp):
    x = _array(inp, "x", 1)
    _need(x.size > 0, "field 'x' is empty")
    return {"x": x}


def _llsq_inputs(inp):
    d = _vec_x(inp)
    d["n"] = _count(inp, "n", 2)
    return d


def _kmeans_inputs(inp):
    pts, cen = _array(inp, "points", 2), _array(inp, "centroids", 2)
    _need(pts.shape[0] > 0 and cen.shape[0] > 0, "points and centroids must not be empty")
    _need(pts.shape[1] == cen.shape[1], f"points have {pts.shape[1]} coordinates, centroids {cen.shape[1]}")
    return {"P": pts, "C": cen}


def _ode_inputs(inp):
    d = _vec_x(inp)
    d["s"] = _count(inp, "s", 1)
    return d


def multigammaln(a: float, p: int) -> float:
    """log of the multivariate gamma function Gamma_p(a) (scipy.special.multigammaln)."""
    return p * (p - 1) / 4 * math.log(math.pi) + sum(math.lgamma(a + (1 - j) / 2) for j in range(1, p + 1))


def _gmm_inputs(inp):
    x, alpha = _array(inp, "x", 2), _array(inp, "alpha", 1)
    mu, q, l = _array(inp, "mu", 2), _array(inp, "q", 2), _array(inp, "l", 2)
    m, gamma = _count(inp, "m"), _real(inp, "gamma")
    n, d = x.shape
    k = alpha.shape[0]
    _need(n > 0 and k > 0 and d > 0, "gmm needs at least one point, component and dimension")
    _need(mu.shape == (k, d) and q.shape == (k, d), f"mu and q should be {k}x{d}, got {mu.shape}, {q.shape}")
    _need(l.shape == (k, d * (d - 1) // 2), f"l should be {k}x{d * (d - 1) // 2}, got {l.shape}")
    nn = d + m + 1
    const = (-n * d * 0.5 * math.log(2 * math.pi)
             + k * (nn * d * math.log(gamma / math.sqrt(2)) - multigammaln(0.5 * nn, d)))
    return {"alpha": alpha, "mu": mu, "q": q, "l": l, "x": x, "m": float(m), "gamma": gamma, "const": const}


def _gmm_jacobian_output(r, _inp):
    a, (mu, (q, l)) = r
    return {"alpha": _list(a), "mu": _list(mu), "q": _list(q), "l": _list(l)}


def _lstm_inputs(inp):
    main, extra = _array(inp, "main_params", 2), _array(inp, "extra_params", 2)
    state, seq = _array(inp, "state", 2), _array(inp, "sequence", 2)
    L2, b = state.shape
    _need(L2 > 0 and L2 % 2 == 0, f"state should have 2 rows per layer, got {L2}")
    _need(main.shape == (L2, 4 * b), f"main_params should be {L2}x{4 * b}, got {main.shape}")
    _need(extra.shape == (3, b), f"extra_params should be 3x{b}, got {extra.shape}")
    _need(seq.shape[0] >= 2 and seq.shape[1] == b, f"sequence should be c x {b} with c >= 2, got {seq.shape}")
    return {"main": main, "extra": extra, "state": state, "seq": seq, "l": L2 // 2}


def _lstm_sizes(d):
    L2, b = d["state"].shape
    return {"L2": L2, "B4": 4 * b, "b": b, "c": d["seq"].shape[0], "l": d["l"]}


def _det_inputs(inp):
    a = _array(inp, "A", 1)
    ell = _count(inp, "ell", 1)
    _need(a.size == ell * ell, f"A should have ell^2 = {ell * ell} elements, got {a.size}")
    return {"A": a.reshape(ell, ell)}


def _ba_inputs(inp):
    """GradBench's ba input is one camera, point, weight and feature and the counts n, m, p:
    the tool duplicates them (observation i sees camera i mod n and point i mod m), as
    GradBench asks, and computes on the full problem."""
    n, m, p = _count(inp, "n", 1), _count(inp, "m", 1), _count(inp, "p", 1)
    cam, x, feat = _array(inp, "cam", 1), _array(inp, "x", 1), _array(inp, "feat", 1)
    w = _real(inp, "w")
    _need(cam.size == 11 and x.size == 3 and feat.size == 2,
          f"cam, x and feat should have 11, 3 and 2 numbers, got {cam.size}, {x.size}, {feat.size}")
    obs = np.arange(p)
    return {"cams": np.tile(cam, (n, 1)), "X": np.tile(x, (m, 1)), "w": np.full(p, w),
            "feats": np.tile(feat, (p, 1)), "oc": obs % n, "op": obs % m}


def _ba_sizes(d):
    return {"n": d["cams"].shape[0], "m": d["X"].shape[0], "p": d["w"].shape[0], "C": 11, "D": 3, "E": 2}


def _ba_objective_output(r, _inp):
    reproj, werr = np.asarray(r[0]), np.asarray(r[1])
    return {"reproj_error": {"elements": reproj[0].tolist(), "repeated": int(reproj.shape[0])},
            "w_err": {"element": float(werr[0]), "repeated": int(werr.shape[0])}}


def _ba_jacobian_output(r, d):
    """The sparse Jacobian as GradBench's reference (ADBench's BASparseMat, CSR): rows are row
    pointers (2p rows of 15 entries, then p rows of one), cols and vals row by row; only the
    first 30 entries and the last one of each are sent."""
    jr, jw = np.asarray(r[0]), np.asarray(r[1])        # (15, p, 2), (15, p)
    n, m, p = d["cams"].shape[0], d["X"].shape[0], d["w"].shape[0]
    rows = np.concatenate([np.arange(2 * p + 1) * 15, 30 * p + np.arange(1, p + 1)])
    first = int(min(p, 1 + 30 // 30))                  # the observations the first 30 entries cover
    cols, vals = [], []
    for o in range(first):
        block = np.concatenate([11 * d["oc"][o] + np.arange(11), 11 * n + 3 * d["op"][o] + np.arange(3),
                                [11 * n + 3 * m + o]])
        for k in range(2):
            cols.extend(block.tolist())
            vals.extend(jr[:, o, k].tolist())
    return {"rows": [int(v) for v in rows[:30]] + [int(rows[-1])],
            "cols": [int(v) for v in cols[:30]] + [11 * n + 3 * m + p - 1],
            "vals": [float(v) for v in vals[:30]] + [float(jw[-1, p - 1])]}


def _shape_sizes(**axes):
    """sizes from the inputs' shapes: ``n=("x", 0)`` -> n = x.shape[0]"""
    return lambda d: {name: d[p].shape[ax] for name, (p, ax) in axes.items()}


EVALS: dict[str, dict[str, Function]] = {
    "hello": {
        "square": Function(lambda: _parsed("hello"), _hello_inputs, lambda d: {}, lambda r, _: float(r)),
        "double": Function(lambda: _grad("hello", "x"), _hello_inputs, lambda d: {}, lambda r, _: float(r)),
    },
    "lse": {
        "primal": Function(lambda: _parsed("lse"), _vec_x, _shape_sizes(n=("x", 0)), lambda r, _: float(r)),
        "gradient": Function(lambda: _grad("lse", "x"), _vec_x, _shape_sizes(n=("x", 0)), lambda r, _: _list(r)),
    },
    "llsq": {
        "primal": Function(lambda: _parsed("llsq"), _llsq_inputs,
                           lambda d: {"m": d["x"].shape[0], "n": d["n"]}, lambda r, _: float(r)),
        "gradient": Function(lambda: _grad("llsq", "x"), _llsq_inputs,
                             lambda d: {"m": d["x"].shape[0], "n": d["n"]}, lambda r, _: _list(r)),
    },
    "kmeans": {
        "cost": Function(lambda: _parsed("kmeans"), _kmeans_inputs,
                         _shape_sizes(n=("P", 0), d=("P", 1), k=("C", 0)), lambda r, _: float(r)),
        "dir": Function(_kmeans_dir, _kmeans_inputs,
                        _shape_sizes(n=("P", 0), d=("P", 1), k=("C", 0)), lambda r, _: _list(r)),
    },
    "ode": {
        "primal": Function(lambda: _parsed("ode"), _ode_inputs,
                           lambda d: {"n": d["x"].shape[0], "s": d["s"]}, lambda r, _: _list(r)),
        "gradient": Function(_ode_last_grad, _ode_inputs,
                             lambda d: {"n": d["x"].shape[0], "s": d["s"]}, lambda r, _: _list(r)),
    },
    "gmm": {
        "objective": Function(lambda: _parsed("gmm"), _gmm_inputs,
                              _shape_sizes(k=("alpha", 0), d=("mu", 1), L=("l", 1), n=("x", 0)),
                              lambda r, _: float(r)),
        "jacobian": Function(lambda: _grad("gmm", ("alpha", "mu", "q", "l")), _gmm_inputs,
                             _shape_sizes(k=("alpha", 0), d=("mu", 1), L=("l", 1), n=("x", 0)),
                             _gmm_jacobian_output, bindings=True),
    },
    "lstm": {
        "objective": Function(lambda: _parsed("lstm"), _lstm_inputs, _lstm_sizes, lambda r, _: float(r)),
        "jacobian": Function(lambda: _grad("lstm", ("main", "extra")), _lstm_inputs, _lstm_sizes,
                             lambda r, _: np.concatenate([np.ravel(r[0]), np.ravel(r[1])]).tolist()),
    },
    "ba": {
        "objective": Function(lambda: _parsed("ba"), _ba_inputs, _ba_sizes, _ba_objective_output),
        "jacobian": Function(_ba_jacobian, _ba_inputs, _ba_sizes, _ba_jacobian_output),
    },
    "det": {
        "primal": Function(lambda: _parsed("det"), _det_inputs, _shape_sizes(ell=("A", 0)),
                           lambda r, _: float(r)),
        "gradient": Function(lambda: _grad("det", "A"), _det_inputs, _shape_sizes(ell=("A", 0)),
                             lambda r, _: _list(np.ravel(r))),
    },
}

#: evals of GradBench this tool does not implement, and why (docs/gradbench.md has more)
NOT_IMPLEMENTED = {
    "ht": "hand tracking needs a skinned mesh with data-dependent indexing of triangles (its rank-3 "
          "parameters, the bone transforms, are differentiable); not attempted",
    "particle": "needs nested AD with an argmin over a time of impact (a root-finding loop whose trip "
                "count depends on the data); not attempted",
    "saddle": "needs nested gradient descent (AD of an optimiser's inner loop); not attempted",
}
