"""The shape-specialised cost model (docs/cost-and-extraction.md).

The NumPy backend evaluates every sub-expression as an array whose axes are its free index
variables (a ``build``/``sum`` index is an axis; the index of a sequential ``ifold`` is a
Python ``for`` loop).  So one node costs

    op[ctor] x W  +  overhead[ctor] x L

* ``W`` -- the product of the extents of the index variables free in the node (plus the
  binder's own index for ``build``/``sum``/``ifold``): the number of elements it computes,
  summed over the iterations of the sequential loops it sits in;
* ``L`` -- the number of times its NumPy operation is issued: the product of the extents
  of the *sequential* loop indices among them (1 outside loops);
* ``op`` -- calibrated seconds per element, ``overhead`` -- calibrated seconds per call,
  both in units of one float add per element (``benchmarks/calibrate_costs.py``).

What the backend does with each shape of term -- a view, a fill, a vectorised reduction
(``sum``, and the ``ifold`` shapes it recognises: sums, products, max/min), a BLAS or
``einsum`` call with its fixed overhead, a Python loop -- is declared once, in
:mod:`eqsat_ad.cost.semantics`.  The whole-program costs below and the e-node costs of the
Python extractors (``EGraphView.assign_costs``) both follow it, and both price every part
with :meth:`CostModel.node_cost`, so a model that overrides it changes every cost.  egglog's
in-graph costs (``eqsat_ad/egraph/costrules.py``) are the ``op x W`` part only; they guide
egglog's own extractor, one candidate among others (``eqsat_ad/extract``).

:meth:`CostModel.dag_cost` is **the** cost of a program: what ``optimize`` reports and what
every extractor's result is judged by.  It pays once for sub-terms the backend computes once:
the backend memoises compiled sub-expressions by (structure, bindings of their free
variables), where an index variable's binding is its nesting depth and extent, a ``let``
name's is its value's.  :meth:`CostModel.program_cost` is the tree cost (a repeated sub-term
is paid each time), reported for comparison.

>>> from eqsat_ad.lang.syntax import parse
>>> m = CostModel(overhead=0.0)
>>> p = parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))")
>>> m.program_cost(p, {"n": 1000})           # Exp 6 x 1000 + Sum 1 x 1000; the get is a view
7000.0
>>> q = parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))")
>>> m.dag_cost(q, {"n": 1000})               # one np.dot: Dot 0.5 x 1000
500.0
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..lang.ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Prim,
                        Program, Scan, Snd, Sum, Var)
from ..lang.binders import all_names, fresh
from ..egraph.constructors import PRIM_TO_CTOR
from ..lang.primitives import PRIMITIVES
from ..errors import EqsatError

# Operation cost per element, in units of one float add per element.  Rough defaults; the
# calibrated table (benchmarks/calibrate_costs.py -> opcosts.json) overrides them.
# The operators' defaults are declared with them (lang/primitives.py).
DEFAULT_OPCOST: dict[str, float] = {
    **{p.ctor: p.cost for p in PRIMITIVES.values() if p.ctor is not None},
    "Len": 0.1, "Fst": 0.1, "Snd": 0.1, "Pair": 0.1, "Get": 2.0, "If": 3.0,
    "Build": 1.0, "Sum": 1.0, "Let": 0.1, "IFold": 500.0, "Scan": 500.0,
}
# What the backend does with each shape of term (views, fills, reductions, BLAS / einsum
# calls, loops) is declared once, in semantics.py: NO_CALL (no NumPy call of its own) and the
# table entries of the pseudo-constructors (GetAxis, Fill, Loop, Prod, Max, Dot, Gemv, ...).
from .semantics import (ENTRY, ENTRY_PARAM, EXTRA_CALLS, EXTRA_OPCOST, FOLD_COMBINE, FOLD_REDUCTION,  # noqa: E402
                        NO_CALL, POW_MULS as _POW_MULS, RESULT_COPY, SCAN_ACCUMULATE, contraction,
                        contraction_terms,
                        ND_CALL, EDGE_ROWS, RANGE_SELECT, WINDOW, diagonal_select, extra_axes, fold_shape,
                        range_condition, stencil_factors, stencil_form, summed_build, tap_sum, window_read,
                        is_literal_zero, small_int_exponent as _int_exponent)

OPCOSTS_JSON = Path(__file__).with_name("opcosts.json")


def _ctor(e: Expr) -> str:
    if isinstance(e, Prim):
        return PRIM_TO_CTOR.get(e.op, "Lt" if e.op == ">" else "Le" if e.op == ">=" else e.op)
    name = type(e).__name__
    return {"Length": "Len"}.get(name, name)



@dataclass
class CostModel:
    """Per-operation costs plus the axis rule.  Pass your own to ``ea.optimize(cost_model=...)``
    -- an instance with other numbers, or a subclass overriding :meth:`node_cost`.

    * ``opcost``: constructor name (``Add``, ``Exp``, ``Sum``, ``GetAxis``, ...) -> cost per
      element (float add = 1); a missing name costs 1;
    * ``overhead``: the fixed cost of issuing one NumPy operation (same unit), paid once per
      node outside loops and once per iteration inside a sequential ``ifold``;
      ``call_overhead`` overrides it per constructor;
    * ``scalar_overhead``: the fixed cost of one operation on scalars (Python floats / NumPy
      scalars: a node with no vectorised axis, e.g. the body of a loop over scalars); None:
      the same as ``overhead``;
    * ``default_size``: the extent assumed for a size whose value is not known;
    * ``meta``: free-form provenance (machine, date, calibration figures);
    * ``in_cache``: constructor -> its cost per element on arrays that fit in cache (calibrated
      at ``meta["in_cache_n"]`` elements) as a fraction of ``opcost`` (calibrated at
      ``meta["n"]``); between the two sizes the fraction goes to 1 linearly in log(size).  A
      ``where`` on 8,192 elements costs ~8x less per element than on 262,144, an add ~2x less,
      an ``exp`` the same; empty: one cost per element at every size.
    """
    opcost: dict[str, float] = field(default_factory=lambda: {**DEFAULT_OPCOST, **EXTRA_OPCOST})
    default_size: int = 1000
    overhead: float = 0.0
    call_overhead: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    scalar_overhead: float | None = None
    in_cache: dict[str, float] = field(default_factory=dict)

    # -- the node formula (override in a subclass to change the model) ------------------
    def op_cost(self, ctor: str, elements: float | None = None) -> float:
        """Cost per element of ``ctor``; on ``elements`` elements per call, when given (see
        ``in_cache``)."""
        c = self.opcost.get(ctor)
        if c is None:
            c = EXTRA_OPCOST.get(ctor, 1.0)
        if elements is not None and ctor in self.in_cache:
            c *= self.cache_factor(ctor, elements)
        return float(c)

    def cache_factor(self, ctor: str, elements: float) -> float:
        """The fraction of ``opcost[ctor]`` one element costs in a call on ``elements``
        elements: ``in_cache[ctor]`` up to ``meta["in_cache_n"]`` elements, 1 from ``meta["n"]``
        on, linear in log(elements) between."""
        f = float(self.in_cache.get(ctor, 1.0))
        lo = float(self.meta.get("in_cache_n") or 0)
        hi = float(self.meta.get("n") or 0)
        if f == 1.0 or not 0 < lo < hi or elements >= hi:
            return 1.0
        if elements <= lo:
            return f
        t = (math.log(elements) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return f + (1.0 - f) * t

    def op(self, e: Expr) -> float:   # kept for older callers
        return self.op_cost(_ctor(e))

    def calls_overhead(self, ctor: str) -> float:
        """The fixed cost of one call of ``ctor``'s NumPy operation: ``call_overhead[ctor]``,
        else a multiple of ``overhead`` for the calls that cost more than one plain call
        (an ``einsum`` and its path planning, :data:`~eqsat_ad.cost.semantics.EXTRA_CALLS`),
        else 0 for views and compile-time values, else ``overhead``."""
        if ctor in self.call_overhead:
            return float(self.call_overhead[ctor])
        if ctor in EXTRA_CALLS:
            return EXTRA_CALLS[ctor] * float(self.overhead)
        return 0.0 if ctor in NO_CALL else float(self.overhead)

    def scalar_calls_overhead(self, ctor: str) -> float:
        """The fixed cost of one call of ``ctor`` on scalars (``scalar_overhead``; views and the
        special calls as in :meth:`calls_overhead`)."""
        if self.scalar_overhead is None or ctor in NO_CALL or ctor in EXTRA_CALLS or ctor in self.call_overhead:
            return self.calls_overhead(ctor)
        return float(self.scalar_overhead)

    def node_cost(self, ctor: str, weight: float, calls: float = 1.0) -> float:
        """Cost of one node: ``op x weight + overhead x calls`` -- ``weight`` elements computed
        by ``calls`` operations (``weight <= calls``: every operation is on a scalar)."""
        per_call = self.calls_overhead(ctor) if weight > calls else self.scalar_calls_overhead(ctor)
        return self.op_cost(ctor, weight / calls if calls > 0 else weight) * weight + per_call * calls

    def leaf_cost(self, ctor: str) -> float:
        """Literals, inputs and variables cost nothing (they are names in the generated code)."""
        return 0.0

    def egglog_opcost(self) -> dict[str, float]:
        """The per-element table for the in-egglog costs (constructor names only)."""
        return {k: v for k, v in self.opcost.items() if k not in EXTRA_OPCOST}

    # -- whole programs ---------------------------------------------------------------------
    def program_cost(self, prog: Program, sizes: dict[str, int] | None = None) -> float:
        """Tree cost of ``prog``: every node (every occurrence) paid by the formula above."""
        return self._walked(prog, sizes, dag=False).total

    def dag_cost(self, prog: Program, sizes: dict[str, int] | None = None,
                 deadline: float | None = None) -> float:
        """Cost with sub-terms the backend computes once paid once (see module doc).
        ``deadline`` (a ``time.perf_counter()`` value): past it, :class:`PricingTimeout`."""
        return self._walked(prog, sizes, dag=True, deadline=deadline).total

    def breakdown(self, prog: Program, sizes: dict[str, int] | None = None, dag: bool = True) -> dict[str, float]:
        """Cost per constructor (for reports and for fitting op costs)."""
        return dict(self._walked(prog, sizes, dag=dag).by_ctor)

    def features(self, prog: Program, sizes: dict[str, int] | None = None, dag: bool = True) -> dict:
        """``{ctor: total weight}`` and ``{"calls:"+ctor: total calls}`` (linear features of the
        cost: ``cost = sum op[c] * weight[c] + overhead[c] * calls[c]``)."""
        w = self._walked(prog, sizes, dag=dag)
        return {**w.weights, **{"calls:" + k: v for k, v in w.calls.items()}}

    def _walked(self, prog: Program, sizes, dag: bool, deadline: float | None = None) -> "_Walk":
        """The pass that prices ``prog``: a second one when a stencil's computation was priced
        at an occurrence other than its canonical one (:meth:`_Walk._stencil_seen`), so that
        the order of the terms does not change the cost."""
        from ..lang.binders import call_deep
        w = _Walk(self, prog, sizes, dag=dag, deadline=deadline)
        call_deep(w.run, what="program")
        if any(w.stencil_canonical.values()):
            w = _Walk(self, prog, sizes, dag=dag, deadline=deadline, stencil_at=w.stencil_canonical)
            call_deep(w.run, what="program")
        return w

    # -- persistence ---------------------------------------------------------------------------
    @classmethod
    def from_json(cls, path: "str | Path", **kw) -> "CostModel":
        data = json.loads(Path(path).read_text())
        table = {**DEFAULT_OPCOST, **EXTRA_OPCOST, **data.get("opcost", {})}
        so = data.get("scalar_overhead")
        return cls(table, overhead=float(data.get("overhead", 0.0)),
                   call_overhead=dict(data.get("call_overhead", {})),
                   meta={k: v for k, v in data.items()
                         if k not in ("opcost", "overhead", "call_overhead", "scalar_overhead", "in_cache")},
                   scalar_overhead=None if so is None else float(so),
                   in_cache={k: float(v) for k, v in data.get("in_cache", {}).items()}, **kw)

    def to_json(self) -> dict:
        return {**self.meta, "opcost": self.opcost, "overhead": self.overhead,
                "call_overhead": self.call_overhead, "scalar_overhead": self.scalar_overhead,
                "in_cache": self.in_cache}


# ---------------------------------------------------------------------------------------------
class PricingTimeout(EqsatError):
    """Pricing a program ran past its deadline (``dag_cost(..., deadline=)``)."""


class _Walk:
    """One pass over a program computing its cost (tree or DAG)."""

    def __init__(self, model: CostModel, prog: Program, sizes, dag: bool, deadline: float | None = None,
                 stencil_at: dict | None = None):
        self.deadline, self._steps = deadline, 0
        self.m = model
        self.prog = prog
        self.sizes = dict(sizes or {})
        self.dag = dag
        self.total = 0.0
        self.by_ctor: dict[str, float] = {}
        self.weights: dict[str, float] = {}
        self.calls: dict[str, float] = {}
        self.ext: dict[str, int] = {}
        self.seq: set[str] = set()               # sequential loop indices
        self.memo: dict = {}
        self._vids: dict = {}
        self.shapes: dict[str, list] = {}
        self.nfold = 0
        # issue 11: shifted index lets (name -> True), let-bound builds (name -> (build, scope,
        # depth)), ifs summed into slices, axes whose sub-range we are in, inside a where branch
        self.shifted: set = set()
        self.shift_of: dict = {}          # shifted index let -> its constant shift (or None)
        self.let_sizes: dict = {}         # let name -> its value, an integer of sizes and literals
        # stencils (:meth:`_stencil_seen`): occurrences met so far, per canonical form; the
        # occurrence that is the canonical form itself (its reads unshifted), the first one met;
        # the occurrence to price the computation at (the previous pass's canonical ones)
        self.stencil_seen: dict = {}
        self.stencil_canonical: dict = {}
        self.stencil_at: dict = dict(stencil_at or {})
        self.let_builds: dict = {}
        self.summed_ifs: set = set()
        self.range_axes: frozenset = frozenset()
        self.in_where = 0
        self._fv: dict = {}
        for p in prog.params:
            self.shapes[p.name] = self._type_shape(p.type)

    def fv(self, e: Expr) -> frozenset:
        """Free variables, memoised by structure (iterative: deep terms are fine)."""
        from ..lang.ast import scoped_children
        memo = self._fv
        if e in memo:
            return memo[e]
        stack = [e]
        while stack:
            x = stack[-1]
            if x in memo:
                stack.pop()
                continue
            kids = list(scoped_children(x))
            todo = [c for c, _ in kids if c not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if isinstance(x, Var):
                memo[x] = frozenset([x.name])
            else:
                out: set = set()
                for c, bound in kids:
                    out.update(memo[c] - set(bound) if bound else memo[c])
                memo[x] = frozenset(out)
        return memo[e]

    def run(self) -> float:
        # the result is demanded in full (the backend returns it)
        self.force_all(self.walk(self.prog.body, {}, 0))
        # the call itself (binding and checking the inputs), and a copy of every array of the
        # result that is an input, a view of one or a read-only broadcast (semantics.RESULT_COPY)
        self.pay_weight(ENTRY, 1.0, 1.0)
        self.pay_weight(ENTRY_PARAM, 0.0, float(len(self.prog.params)))
        for leaf in self._result_views(self.prog.body, {}):
            w = 1.0
            for x in self.shape(leaf):
                w *= float(x if x is not None else self.m.default_size)
            self.pay_weight(RESULT_COPY, w, 1.0)
        return self.total

    def _result_views(self, e: Expr, lets: dict) -> list:
        """The array leaves of the result that the backend copies before returning them."""
        if isinstance(e, Let):
            return self._result_views(e.body, {**lets, e.name: e.value})
        if isinstance(e, Pair):
            return self._result_views(e.fst, lets) + self._result_views(e.snd, lets)
        if isinstance(e, (Fst, Snd)):
            p = e.pair
            while isinstance(p, Var) and p.name in lets:
                p = lets[p.name]
            if isinstance(p, Pair):
                return self._result_views(p.fst if isinstance(e, Fst) else p.snd, lets)
            return []
        return [e] if self.shape(e) and self._is_view(e, lets, frozenset()) else []

    def _is_view(self, e: Expr, lets: dict, axes: frozenset) -> bool:
        """Is the backend's value of ``e`` an input, a view of one, or a read-only broadcast?"""
        if isinstance(e, Var):
            if e.name in lets:
                return self._is_view(lets[e.name], lets, axes)
            return e.name in self.shapes and bool(self.shapes[e.name]) and e.name not in axes
        if isinstance(e, Let):
            return self._is_view(e.body, {**lets, e.name: e.value}, axes)
        if isinstance(e, Get):
            i = e.index
            if isinstance(i, Prim) and i.op in ("+", "-") and len(i.args) == 2:
                i = i.args[0] if isinstance(i.args[0], Var) and i.args[0].name in axes else i.args[1]
            if isinstance(i, Int) or isinstance(i, Var) and i.name in axes:
                return self._is_view(e.array, lets, axes)
            return False
        if isinstance(e, Build):
            from ..lang.binders import free_vars
            if e.var in free_vars(e.body):
                return self._is_view(e.body, lets, axes | {e.var})
            # np.full of a scalar is a fresh array; a broadcast of anything else is read-only
            return bool(self.shape(e.body)) or bool(free_vars(e.body) & axes)
        if isinstance(e, IFold):
            shape = _fold_shape(e)
            return shape is not None and shape.kind == "identity" and self._is_view(e.init, lets, axes)
        return False

    def pay_weight(self, ctor: str, w: float, calls: float) -> None:
        c = self.m.node_cost(ctor, w, calls)
        if not c:
            return
        self.total += c
        self.by_ctor[ctor] = self.by_ctor.get(ctor, 0.0) + c
        self.weights[ctor] = self.weights.get(ctor, 0.0) + w
        self.calls[ctor] = self.calls.get(ctor, 0.0) + calls

    # -- shapes and extents (follow array shapes through lets) ------------------------------
    def _type_shape(self, t) -> list:
        from ..lang.types import ArrayT
        out = []
        while isinstance(t, ArrayT):
            s = t.size
            out.append(s if isinstance(s, int) else int(self.sizes.get(s, self.m.default_size)) if s else None)
            t = t.elem
        return out

    def shape(self, e: Expr) -> list:
        if isinstance(e, Var):
            return self.shapes.get(e.name, [])
        if isinstance(e, Build):
            return [self.extent(e.size)] + self.shape(e.body)
        if isinstance(e, Get):
            return self.shape(e.array)[1:]
        if isinstance(e, Let):
            return self.shape(e.body)
        if isinstance(e, If):
            return self.shape(e.then) or self.shape(e.else_)
        if isinstance(e, (Fst, Snd)) and isinstance(e.pair, Pair):
            return self.shape(e.pair.fst if isinstance(e, Fst) else e.pair.snd)
        if isinstance(e, Scan):
            return [self.extent(e.size) + 1] + self.shape(e.init)
        return []

    def extent(self, n: Expr) -> int:
        if isinstance(n, Int):
            return max(int(n.value), 0)
        if isinstance(n, Var) and n.name in self.sizes:
            return int(self.sizes[n.name])
        if isinstance(n, Var) and n.name in self.let_sizes:
            # a let-bound size ((let ((t0 (+ (- n K) 1))) (build t0 ..))): its value's extent,
            # not the default (a convolution's residual was priced over 1000 rows at any n)
            return self.extent(self.let_sizes[n.name])
        if isinstance(n, Length):
            sh = self.shape(n.array)
            if sh and sh[0] is not None:
                return int(sh[0])
        if isinstance(n, Prim) and n.op in ("+", "-", "*") and len(n.args) == 2:
            a, b = self.extent(n.args[0]), self.extent(n.args[1])
            return max(0, a + b if n.op == "+" else a - b if n.op == "-" else a * b)
        return self.m.default_size

    # -- values: axes (computed), lazy (computed when demanded: the backend's dead-code
    #    elimination drops what is never used) or pairs (split at compile time) -------------
    def force(self, v):
        while isinstance(v, _Lazy):
            v = v.get()
        return v

    def ax(self, v) -> frozenset:
        """Axes of a value, paying for it (both halves of a pair)."""
        v = self.force(v)
        if isinstance(v, _PairVal):
            return self.ax(v.a) | self.ax(v.b)
        return v

    force_all = ax

    def lift(self, v, fn):
        """Apply ``fn`` (axes -> value) componentwise to a possibly-pair value, lazily."""
        v = self.force(v)
        if isinstance(v, _PairVal):
            return _PairVal(_Lazy(lambda: self.lift(v.a, fn)), _Lazy(lambda: self.lift(v.b, fn)))
        return fn(v)

    # -- the walk -------------------------------------------------------------------------
    def pay(self, ctor: str, axes, times: float = 1.0) -> None:
        w = 1.0
        calls = 1.0
        for a in axes:
            x = float(self.ext.get(a, self.m.default_size))
            w *= x
            if a in self.seq:
                calls *= x
        c = self.m.node_cost(ctor, w * times, calls * times)
        self.total += c
        self.by_ctor[ctor] = self.by_ctor.get(ctor, 0.0) + c
        self.weights[ctor] = self.weights.get(ctor, 0.0) + w * times
        if self.m.calls_overhead(ctor) or ctor not in NO_CALL:
            self.calls[ctor] = self.calls.get(ctor, 0.0) + calls * times
        k = extra_axes(ctor, len(frozenset(axes) - self.seq))
        if k:
            # a call over several broadcast axes costs more than one over a vector
            self.pay_weight(ND_CALL, 0.0, calls * times * k)

    def walk(self, e: Expr, scope: dict, depth: int):
        if self.deadline is not None:
            self._steps += 1
            if not self._steps & 1023 and time.perf_counter() > self.deadline:
                raise PricingTimeout("time limit: pricing the program was cut short")
        if isinstance(e, (Num, Int, BoolLit)):
            return frozenset()
        if isinstance(e, Var):
            return scope[e.name][0] if e.name in scope else frozenset()
        key = None
        if self.dag:
            fvs = self.fv(e)
            key = (e, tuple(sorted((v, scope[v][1]) for v in fvs if v in scope)))
            hit = self.memo.get(key)
            if hit is not None:
                return hit
        v = self._node(e, scope, depth)
        if key is not None:
            self.memo[key] = v
        return v

    def _bind(self, e: Let, scope: dict, depth: int) -> dict:
        """The scope of a ``let``'s body: its name bound to its value, walked when demanded."""
        vid = ("let", e.value, tuple(sorted((v, scope[v][1]) for v in self.fv(e.value) if v in scope)))
        # interned: a vid nests the vids of the lets its value reads, so along a chain of lets
        # hashing the memo keys grew with the chain (60 lets: 18 s; interned: 0.1 s, same cost)
        vid = ("let", self._vids.setdefault(vid, len(self._vids)))
        alias = self._shifted_axis(e.value, scope)
        if alias is not None:
            # an index shifted by a scalar stays an index in the backend (slices are views)
            if alias[1]:
                self.shifted.add(e.name)
            v = e.value
            base = v if isinstance(v, Var) else v.args[0] if isinstance(v.args[0], Var) and \
                self._is_axis(v.args[0], scope) else v.args[1]
            k = 0 if isinstance(v, Var) else next((a.value for a in v.args if isinstance(a, Int)), None)
            if k is not None and isinstance(v, Prim) and v.op == "-":
                k = -k
            b0 = self.shift_of.get(base.name, 0)
            self.shift_of[e.name] = None if k is None or b0 is None else b0 + k
            self.shapes[e.name] = []
            return {**scope, e.name: scope[alias[0]]}
        if isinstance(e.value, Build):
            self.let_builds[e.name] = (e.value, scope, depth)
        if self._size_expr(e.value, scope):
            self.let_sizes[e.name] = e.value
        lazy = _Lazy(lambda: self._walk_let(e.value, scope, depth))
        # kept after the body (lazy parts of it are walked later); names are unique
        self.shapes[e.name] = self.shape(e.value)
        return {**scope, e.name: (lazy, vid)}

    def _size_expr(self, e: Expr, scope: dict) -> bool:
        """Is ``e`` an integer made of size names, literals, lengths and let-bound sizes with
        ``+ - *`` (what :meth:`extent` can evaluate)?"""
        if isinstance(e, (Int, Length)):
            return True
        if isinstance(e, Var):
            return (e.name in self.sizes and e.name not in scope) or e.name in self.let_sizes
        if isinstance(e, Prim) and e.op in ("+", "-", "*") and len(e.args) == 2:
            return all(self._size_expr(a, scope) for a in e.args)
        return False

    def _walk_let(self, value: Expr, scope: dict, depth: int):
        """A let's value, walked when first demanded -- possibly inside a loop whose index has
        the name of one of the value's own loops (binders are renamed by nesting level: the
        attention gradient's ``sum T (i)`` forced inside ``build d (i)``).  Extents are keyed by
        index name, so the names' extents are restored afterwards; without that the rest of the
        outer loop was priced over T instead of d (a matrix-vector product 16x too dear)."""
        saved = dict(self.ext)
        try:
            return self.walk(value, scope, depth)
        finally:
            self.ext.update(saved)

    def _node(self, e: Expr, scope: dict, depth: int):
        if isinstance(e, Let):
            return self.walk(e.body, self._bind(e, scope, depth), depth)
        if isinstance(e, Pair):
            return _PairVal(_Lazy(lambda: self.walk(e.fst, scope, depth)),
                            _Lazy(lambda: self.walk(e.snd, scope, depth)))
        if isinstance(e, (Fst, Snd)):
            p = self.force(self.walk(e.pair, scope, depth))
            if isinstance(p, _PairVal):
                return p.a if isinstance(e, Fst) else p.b
            return p
        if isinstance(e, (Build, Sum)):
            na = self.ax(self.walk(e.size, scope, depth))
            n = self.extent(e.size)
            self.ext[e.var] = n
            bid = ("ix", depth + 1, e.size)
            inner = {**scope, e.var: (frozenset([e.var]), bid)}
            is_build = isinstance(e, Build)
            masked = bool(na - self.seq)        # the extent varies along an axis: a masked reduction
            bv = None
            name = None if is_build or masked else summed_build(e.body, e.var, self.let_builds.get)
            if name is not None and name in scope and self.extent(self.let_builds[name][0].size) == n:
                # the sum of a let-bound build's elements is the sum of its body (a dot / gemv)
                b, bscope, bdepth = self.let_builds[name]
                return self.walk(Sum(b.size, b.var, b.body), bscope, bdepth)
            if not is_build and not masked and tap_sum(
                    e.body, e.var, lambda v: v if v != e.var and self._is_axis(Var(v), scope) else None,
                    lambda x: all(v == e.var or v in scope for v in self.fv(x)) and self._scalar(x, scope),
                    self.fv):
                # semantics.TAP_LOOP: a loop over the taps, the moving range guards of its body
                # range guards of one axis (the sequential loop of ifold of acc + body)
                acc = fresh("%tap", set(all_names(e.body)) | {e.var})
                return self._loop(IFold(acc, e.var, Prim("+", (Var(acc), e.body)), Num(0.0), e.size),
                                  frozenset(), na, scope, depth)
            if not is_build and not masked:
                bv = self._contraction(e, inner, depth + 1, na)
                if isinstance(bv, tuple):       # a BLAS / einsum call: paid, done
                    return bv[0]
            if bv is None:
                bv = self.walk(e.body, inner, depth + 1)

            def done(ba):
                own = na | (ba - {e.var})
                if e.var in ba:
                    self.pay("Build" if is_build else "Sum", na | ba)
                    if masked and not is_build:
                        self.pay("If", na | ba)                 # where(i < n, body, 0)
                elif is_build:
                    self.pay("Fill", own | {e.var})         # np.full / broadcast of the body
                else:
                    self.pay("Mul", own)                    # n * body
                return own
            return self.lift(bv, done)
        if isinstance(e, IFold):
            return self._ifold(e, scope, depth)
        if isinstance(e, Scan):
            return self._scan(e, scope, depth)
        if isinstance(e, Get):
            av = self.walk(e.array, scope, depth)
            idx = e.index
            iv = self._axis_index(idx, scope, depth)
            if iv is not None:
                iv, shifted = iv
                ia = frozenset([iv])
                # a shifted read under a vectorised where (not in a sub-range of its axis) is a
                # padded copy of the rows (semantics.EDGE_ROWS)
                edge = shifted and self.in_where and iv not in self.range_axes

                def get_axis(aa):
                    # a view (slice / transpose), unless the array varies along that axis itself
                    self.pay("Get" if iv in aa else EDGE_ROWS if edge else "GetAxis", aa | ia)
                    return aa | ia
                return self.lift(av, get_axis)
            ik = window_read(idx, lambda v: v if self._is_axis(Var(v), scope) else None)
            if ik is not None:
                ia = frozenset(self._axis_of(v, scope) for v in ik)

                def window(aa):
                    self.pay(WINDOW if not aa and len(ia) == 2 else "Get", aa | ia)
                    return aa | ia
                return self.lift(av, window)
            ia = self.ax(self.walk(idx, scope, depth))

            def gather(aa):
                self.pay("Get", aa | ia)
                return aa | ia
            return self.lift(av, gather)
        if isinstance(e, If):
            from ..lang.binders import subst as _subst
            diag = diagonal_select(e.cond, lambda v: self._is_axis(Var(v), scope))
            if diag is not None and scope[diag[0]][1][2] == scope[diag[1]][1][2]:
                # semantics.diagonal_select: the off-diagonal branch fills a fresh array, the
                # diagonal is set from the other branch with j := i (along one axis)
                lo, hi = sorted(diag, key=lambda v: scope[v][1][1])
                ta = self.ax(self.walk(_subst(e.then, hi, Var(lo)), scope, depth))
                ea_ = self.ax(self.walk(e.else_, scope, depth))
                full = ta | ea_ | frozenset(diag)
                self.pay("DiagFill", full)
                self.pay("DiagSet", full - {hi})
                return full
            r = self._range_if(e, scope, depth)
            if r is not None:
                return r
            ca = self.ax(self.walk(e.cond, scope, depth))
            vec = bool(ca - self.seq)
            self.in_where += vec
            try:
                tv = self.walk(e.then, scope, depth)
                ev = self.walk(e.else_, scope, depth)
            finally:
                self.in_where -= vec
            return self._where(ca, tv, ev)
        if isinstance(e, Length):
            sh = self.shape(e.array)
            if sh and sh[0] is not None:
                # a static length (a size name / constant in the array's type): the backend
                # reads it at compile time -- no axes (no masked reductions over it), no call
                return frozenset()
        if isinstance(e, Prim) and e.op == "pow":
            k = _int_exponent(e.args[1])
            if k is not None:
                ba = self.ax(self.walk(e.args[0], scope, depth))
                muls = _POW_MULS[abs(k)]
                if muls:
                    self.pay("Mul", ba, muls)
                if k < 0:
                    self.pay("Div", ba)
                return ba
        kids = e.children()
        if isinstance(e, Prim) and e.op in ("+", "-"):
            for c in kids:       # (if c a 0.0) terms of a sum are added into slices (RANGE_SELECT)
                if isinstance(c, Prim) and c.op == "*" and len(c.args) == 2:
                    c = c.args[0] if isinstance(c.args[0], If) else c.args[1]
                if isinstance(c, If):
                    self.summed_ifs.add(id(c))
        ax = frozenset().union(*[self.ax(self.walk(c, scope, depth)) for c in kids]) if kids else frozenset()
        ctor = _ctor(e)
        if ctor in ("And", "Or"):
            ctor = "If"
        self.pay(ctor, ax)
        return ax

    def _where(self, ca, tv, ev):
        tv, ev = self.force(tv), self.force(ev)
        if isinstance(tv, _PairVal) and isinstance(ev, _PairVal):
            return _PairVal(_Lazy(lambda: self._where(ca, tv.a, ev.a)), _Lazy(lambda: self._where(ca, tv.b, ev.b)))
        ta, ea_ = self.ax(tv), self.ax(ev)
        # a scalar condition is a Python branch in the backend, not an element-wise where: one
        # scalar operation (priced over the branches' axes, a max fold's one-hot gradient cost
        # an np.where over n per call: softmax-max's model cost grew 2.5x from n = 1e4 to 1e5)
        self.pay("If", ca | ta | ea_ if ca else frozenset())
        return ca | ta | ea_

    def _shifted_axis(self, e: Expr, scope: dict):
        """``(axis variable, shifted?)`` when ``e`` is an index ``i`` or ``i +- k`` with ``k`` a
        scalar integer (the backend binds a let of it as a shifted index), else None."""
        if isinstance(e, Var) and self._is_axis(e, scope):
            return e.name, e.name in self.shifted
        if isinstance(e, Prim) and e.op in ("+", "-") and len(e.args) == 2:
            x, y = e.args
            if e.op == "+" and isinstance(y, Var) and self._is_axis(y, scope) and not self._is_axis(x, scope):
                x, y = y, x
            if isinstance(x, Var) and self._is_axis(x, scope) and self._intish(y, scope) and not any(
                    self._is_axis(Var(v), scope) for v in self.fv(y)) and all(
                    v not in scope or isinstance(scope[v][1], tuple) and scope[v][1][0] == "fold"
                    and len(scope[v][1]) == 2 for v in self.fv(y)):
                return x.name, True
        return None

    def _axis_of(self, name: str, scope: dict) -> str:
        """The axis (index variable) a name bound to an index stands for (itself, or the index
        a shifted-index let aliases)."""
        return next(iter(scope[name][0]))

    def _scalar(self, x: Expr, scope: dict) -> bool:
        """Does ``x`` vary along no axis?  (Its lets are walked: the backend computes them.)"""
        for v in self.fv(x):
            if v in scope and (self._is_axis(Var(v), scope) or self.ax(scope[v][0]) - self.seq):
                return False
        return True

    def _range_if(self, e: If, scope: dict, depth: int):
        """A range guard (:func:`~eqsat_ad.cost.semantics.range_condition`): the branch taken on
        the range priced on it, the other everywhere, one select (``RangeSelect``) -- none under
        a sum with the other branch the literal 0 (added into the slice: the sum's ``Add``)."""
        rc = range_condition(e.cond, lambda v: v if self._is_axis(Var(v), scope) else None,
                             lambda x: self._scalar(x, scope))
        if rc is None:
            return None
        swapped, facts = rc
        axes = {self._axis_of(name, scope) for name, *_ in facts}
        if len(axes) != 1:
            return None
        axis = next(iter(axes))
        if axis in self.seq:
            return None
        for _, _, terms, _ in facts:
            for _, t in terms:
                self.ax(self.walk(t, scope, depth))
        # the bounds, clamped to the axis: a few scalar operations
        self.pay("Lt", frozenset(), 2 + len(facts))
        then, other = (e.else_, e.then) if swapped else (e.then, e.else_)
        factors = self._stencil_seen(then, axis, scope)
        if factors is not None:
            ta = frozenset([axis])              # a slice of the stencil computed before, scaled
            self.pay("GetAxis", ta)
            for f in factors:
                self.ax(self.walk(f, scope, depth))
                self.pay("Mul", ta)
            if isinstance(other, Num) and other.value == 0.0 and id(e) in self.summed_ifs:
                return ta
            self.in_where += 1
            try:
                oa = self.ax(self.walk(other, scope, depth))
            finally:
                self.in_where -= 1
            self.pay(RANGE_SELECT, ta | oa)
            return ta | oa
        saved = self.range_axes, self.in_where
        self.range_axes, self.in_where = self.range_axes | {axis}, 0
        try:
            ta = self.ax(self.walk(then, scope, depth))
        finally:
            self.range_axes, self.in_where = saved
        if isinstance(other, Num) and other.value == 0.0 and id(e) in self.summed_ifs:
            return ta | {axis}
        self.in_where += 1
        try:
            oa = self.ax(self.walk(other, scope, depth))
        finally:
            self.in_where -= 1
        full = ta | oa | {axis}
        self.pay(RANGE_SELECT, full)
        return full

    def _stencil_seen(self, then: Expr, axis: str, scope: dict) -> list | None:
        """Is ``then`` a stencil along ``axis`` (:func:`~eqsat_ad.cost.semantics.stencil_form`),
        times scalar factors (:func:`~eqsat_ad.cost.semantics.stencil_factors`), whose
        computation is priced at another occurrence (the backend computes its canonical form
        once, slices it for every occurrence and scales the slice)?  The factors, or None;
        notes the stencil.  The computation is priced at the occurrence that is the canonical
        form (its reads unshifted: what the backend computes) where there is one, else at the
        first: not at whichever comes first, which made ``r(i) + r(i - 1)`` and
        ``r(i - 1) + r(i)`` cost differently -- the shifted occurrence's reads are other reads,
        shared with other terms -- and extraction, blind to the order of operands, kept either
        (``stencil_at``: the previous pass's canonical occurrences, :meth:`CostModel._walked`)."""
        shifts = {}
        for v in self.fv(then):
            if v in scope and self._is_axis(Var(v), scope) and self._axis_of(v, scope) == axis:
                k = self.shift_of.get(v, 0)
                if k is None:
                    return None
                shifts[v] = k

        def array(name):
            if name in scope:
                return None
            sh = self.shapes.get(name) or []
            return (sh[0] if sh[0] is not None else True) if len(sh) == 1 else None

        def scalar(name):
            return name not in scope or (not self._is_axis(Var(name), scope)
                                         and not (self.ax(scope[name][0]) - self.seq) and not self.shapes.get(name))
        if not shifts:
            return None
        core, factors = stencil_factors(then, shifts, "%J", array, scalar)
        r = stencil_form(core, shifts, "%J", array, scalar)
        if r is None:
            return None
        key = (r[0], tuple(sorted((v, scope[v][1]) for v in self.fv(r[0]) if v in scope)))
        k = self.stencil_seen[key] = self.stencil_seen.get(key, -1) + 1
        if r[1] == 0:
            self.stencil_canonical.setdefault(key, k)
        return factors if k != self.stencil_at.get(key, 0) else None

    @staticmethod
    def _is_axis(x: Expr, scope: dict) -> bool:
        b = scope.get(x.name) if isinstance(x, Var) else None
        return b is not None and isinstance(b[1], tuple) and b[1][0] == "ix"

    def _axis_index(self, idx: Expr, scope: dict, depth: int):
        """The axis ``i`` when ``(get a idx)`` is a view along it (semantics: ``idx`` is ``i``,
        or ``i + k`` / ``i - k`` with ``k`` a scalar integer -- a slice), else None.  The
        offset ``k`` is paid here."""
        if self._is_axis(idx, scope):
            return self._axis_of(idx.name, scope), idx.name in self.shifted
        if isinstance(idx, Prim) and idx.op in ("+", "-") and len(idx.args) == 2:
            x, y = idx.args
            if idx.op == "+" and self._is_axis(y, scope) and not self._is_axis(x, scope):
                x, y = y, x
            if self._is_axis(x, scope) and self._intish(y, scope) and all(
                    v not in scope or isinstance(scope[v][1], tuple) and scope[v][1][0] == "fold"
                    and len(scope[v][1]) == 2 for v in self.fv(y)):
                self.ax(self.walk(y, scope, depth))
                zero = isinstance(y, Int) and y.value == 0 and x.name not in self.shifted
                return self._axis_of(x.name, scope), not zero
        return None

    def _intish(self, e: Expr, scope: dict) -> bool:
        """Is ``e`` an integer (index arithmetic)?  Such a product is no BLAS contraction."""
        if isinstance(e, (Int, Length)):
            return True
        if isinstance(e, Var):
            b = scope.get(e.name)
            if b is None:
                return e.name in self.sizes
            bid = b[1]          # ("ix", depth, size): an index; ("fold", k): a loop index
            return isinstance(bid, tuple) and (bid[0] == "ix" or bid[0] == "fold" and len(bid) == 2)
        if isinstance(e, Prim) and e.op in ("+", "-", "*") and len(e.args) == 2:
            return self._intish(e.args[0], scope) and self._intish(e.args[1], scope)
        return False

    def _contraction(self, e: Sum, scope: dict, depth: int, na: frozenset):
        """``(sum n (lambda (i) (* u w)))`` (through lets; ``(pow u 2)`` too), as the backend
        computes it (semantics.contraction): ``(axes,)`` when it is one BLAS / einsum call
        (paid here), else the body's value (the product paid, the sum not yet) or None when
        the body is no product (nothing walked)."""
        b, sc = e.body, scope
        while isinstance(b, Let):
            sc = self._bind(b, sc, depth)
            b = b.body
        if isinstance(b, Prim) and b.op == "*" and len(b.args) == 2:
            u_e, w_e = b.args
        elif isinstance(b, Prim) and b.op == "pow" and _int_exponent(b.args[1]) == 2:
            u_e = w_e = b.args[0]
        else:
            return None
        if self._intish(u_e, sc) or self._intish(w_e, sc):
            return None
        key = None
        if self.dag:
            key = (b, tuple(sorted((v, sc[v][1]) for v in self.fv(b) if v in sc)))
        ua, wa = self.ax(self.walk(u_e, sc, depth)), self.ax(self.walk(w_e, sc, depth))
        seq = self.seq
        kind = contraction(ua - seq, wa - seq, e.var)
        if kind is not None:
            def size(axes):
                w = 1.0
                for a in axes:
                    w *= float(self.ext.get(a, self.m.default_size))
                return w
            # the operands as laid out: their vectorised axes; the loops they sit in repeat the call
            for ctor, axes in contraction_terms(kind, ua - seq, wa - seq, e.var, size):
                self.pay(ctor, axes | ((ua | wa) & seq))
            return (na | ((ua | wa) - {e.var}),)
        # no contraction: the product is an array, then reduced (paid by the caller)
        if key is not None and key in self.memo:
            return self.memo[key]
        pa = ua | wa
        self.pay("Mul", pa)
        if key is not None:
            self.memo[key] = pa
        return pa

    def _ifold(self, e: IFold, scope: dict, depth: int):
        zv = self.force(self.walk(e.init, scope, depth))
        if isinstance(zv, _PairVal):
            comps = _split_pair_fold(e)
            if comps is not None:
                return self._pair_tree(comps, scope, depth)
        shape = _fold_shape(e, self.shape(e.init) == [], self._intish(e.init, scope))
        if shape is not None and shape.kind == "identity":
            return zv
        if shape is not None and shape.kind in ("sum", "sub"):
            # the backend computes init +/- (sum n (lambda (i) term)): walk that sum (it may be
            # a BLAS dot), then the combination (none for a sum from the literal 0)
            s = self.ax(self.walk(Sum(e.size, e.var, shape.term), scope, depth))
            if shape.kind == "sum" and is_literal_zero(e.init):
                return s
            za = self.ax(zv)
            self.pay(FOLD_COMBINE[shape.kind], za | s)
            return za | s
        za = self.ax(zv)
        na = self.ax(self.walk(e.size, scope, depth))
        n = self.extent(e.size)
        self.ext[e.var] = n
        if shape is not None:
            # product / max / min: one vectorised reduction over a new axis, then the combination
            bid = ("ix", depth + 1, e.size)
            ba = self.ax(self.walk(shape.term, {**scope, e.var: (frozenset([e.var]), bid)}, depth + 1))
            red = na | (ba - {e.var})
            if e.var in ba:
                self.pay(FOLD_REDUCTION[shape.kind], na | ba)
                if na - self.seq:
                    self.pay("If", na | ba)                 # masked: where(i < n, t, identity)
            elif shape.kind == "prod":
                self.pay("Pow", red)                        # t ** n
            self.pay(FOLD_COMBINE[shape.kind], za | red)
            return za | red
        return self._loop(e, za, na, scope, depth)

    def _loop(self, e: "IFold | Scan", za: frozenset, na: frozenset, scope: dict, depth: int,
              states: bool = False) -> frozenset:
        """A sequential Python loop (a scan's also stores every state: one store a step)."""
        self.nfold += 1
        fid = ("fold", self.nfold)
        self.seq.add(e.var)
        acc_axes = za | frozenset([e.var])
        ba = self.ax(self.walk(e.body, {**scope, e.var: (frozenset([e.var]), fid),
                                        e.acc: (acc_axes, fid + ("acc",))}, depth))
        own = za | na | (ba - {e.var})
        self.pay("Loop", frozenset([e.var]) | (na - {e.var}))
        if states:
            self.pay("Store", own | {e.var})
        return own

    def _scan(self, e: Scan, scope: dict, depth: int):
        """A scan: one ``ufunc.accumulate`` over the terms of a scalar additive or
        multiplicative recurrence (semantics.SCAN_ACCUMULATE), else the fold's loop storing
        its states."""
        zv = self.force(self.walk(e.init, scope, depth))
        za = self.ax(zv)
        na = self.ax(self.walk(e.size, scope, depth))
        self.ext[e.var] = self.extent(e.size)
        scalar = not isinstance(zv, _PairVal) and self.shape(e.init) == [] and not za
        shape = _fold_shape(e, True, self._intish(e.init, scope)) if scalar else None
        if shape is not None and shape.kind in SCAN_ACCUMULATE and not na:
            bid = ("ix", depth + 1, e.size)
            ba = self.ax(self.walk(shape.term, {**scope, e.var: (frozenset([e.var]), bid)}, depth + 1))
            if ba <= {e.var}:
                self.pay(FOLD_REDUCTION[shape.kind], frozenset([e.var]))
                return frozenset()
        return self._loop(e, za, na, scope, depth, states=True)

    def _pair_tree(self, comps, scope, depth):
        if isinstance(comps, tuple):
            a, b = comps
            return _PairVal(_Lazy(lambda: self._pair_tree(a, scope, depth)),
                            _Lazy(lambda: self._pair_tree(b, scope, depth)))
        return self.walk(comps, scope, depth)


class _Lazy:
    __slots__ = ("f", "v", "done")

    def __init__(self, f):
        self.f, self.v, self.done = f, None, False

    def get(self):
        if not self.done:
            self.v = self.f()
            self.done = True
            self.f = None
        return self.v


class _PairVal:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b


def _split_pair_fold(e: IFold):
    """An ifold over a pair accumulator whose body is a pair (through lets) with each
    component depending only on its own part of the accumulator: a tree of independent
    single-accumulator ifolds (the backend folds them separately), else None."""
    from ..lang.binders import free_vars
    from ..lang.folds import peel_lets
    acc = e.acc
    b, wrap = peel_lets(e.body, acc)

    def proj(x: Expr, path: tuple) -> Expr:
        for bit in path:
            if isinstance(x, Pair):
                x = x.fst if bit == 0 else x.snd
            else:
                x = Fst(x) if bit == 0 else Snd(x)
        return x

    def name(path: tuple) -> str:
        return acc + "#" + "".join(map(str, path))

    def subst(x: Expr, path: tuple, ok: list) -> Expr:
        chain = []
        y = x
        while isinstance(y, (Fst, Snd)):
            chain.append(0 if isinstance(y, Fst) else 1)
            y = y.pair
        if isinstance(y, Var) and y.name == acc:
            q = tuple(reversed(chain))
            if q != path:
                ok[0] = False
            return Var(name(q))
        if acc not in free_vars(x):
            return x
        if acc in x.binds():
            ok[0] = False
            return x
        return x.with_children([subst(c, path, ok) for c in x.children()])

    def build(x: Expr, path: tuple):
        if isinstance(x, Pair):
            l_ = build(x.fst, path + (0,))
            r_ = build(x.snd, path + (1,))
            if l_ is None or r_ is None:
                return None
            return (l_, r_)
        ok = [True]
        body = subst(x, path, ok)
        if not ok[0]:
            return None
        return IFold(name(path), e.var, wrap(body), proj(e.init, path), e.size)

    if not isinstance(b, Pair):
        return None
    return build(b, ())


def _fold_shape(e: IFold, scalar_init: bool = True, int_init: bool = False):
    """The backend's shape of this ifold (:func:`eqsat_ad.cost.semantics.fold_shape`), its
    ``term`` wrapped in the lets peeled off the body; None for a sequential loop."""
    from ..lang.binders import free_vars
    from ..lang.folds import peel_lets
    b, wrap = peel_lets(e.body, e.acc)
    shape = fold_shape(b, e.acc, lambda x: e.acc not in free_vars(x), scalar_init,
                       Int(0) if int_init else Num(0.0))
    if shape is None or shape.term is None:
        return shape
    return type(shape)(shape.kind, wrap(shape.term))


_DEFAULT: CostModel | None = None


def default_cost_model() -> CostModel:
    """The default model: calibrated costs from ``eqsat_ad/cost/opcosts.json`` when present."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CostModel.from_json(OPCOSTS_JSON) if OPCOSTS_JSON.exists() else CostModel()
    return _DEFAULT
