"""What the NumPy backend does with each shape of term, declared once.

The cost of a program is the cost of the NumPy code the backend (``eqsat_ad/backend``,
docs/backend.md) generates for it.  This module states the backend's decisions:

* which nodes issue no NumPy call (views, compile-time pairs, names): :data:`NO_CALL`;
* which ``ifold`` bodies become one vectorised reduction instead of a Python loop, and which
  reduction: :func:`fold_shape` and :data:`FOLD_REDUCTION` / :data:`FOLD_COMBINE`;
* which ``sum``\\ s of a product become one BLAS or ``einsum`` call, and whether ``einsum``
  plans its contraction path (a fixed cost of tens of microseconds):
  :func:`contraction` and :func:`contraction_terms`;
* which ``pow``\\ s become multiplications: :func:`small_int_exponent` and :data:`POW_MULS`.

These facts drive every cost in the project: the whole-program measure
(``CostModel.dag_cost``, :mod:`eqsat_ad.cost.model`), the e-node costs that the Python
extractors optimise (``EGraphView.assign_costs``, :mod:`eqsat_ad.extract.graph`) and through
them every extractor's choice.  A cost is always asked of ``CostModel.node_cost(ctor,
weight, calls)`` with one of the constructor names below, so a user model that overrides
``node_cost`` prices these cases too.

Pseudo-constructors (cost-table names that are not e-graph constructors):

==============  ==========================================================================
``GetAxis``     ``(get x i)`` with ``i`` an index axis: a view (slice / transpose): no work per
                element; its fixed cost (``call_overhead["GetAxis"]`` when calibrated) is
                making the view object, a fraction of a NumPy call
``Fill``        a ``build`` whose body ignores its index: ``np.full`` / broadcast
``Loop``        one iteration of a sequential ``ifold`` (a Python ``for`` loop)
``Store``       storing one state of a ``scan`` loop
``Prod``        ``np.multiply.reduce`` (a product ``ifold``), per element
``Max``         ``np.fmax.reduce`` / ``np.fmin.reduce`` (a max / min ``ifold``), per element
``Extreme``     combining a max / min ``ifold``'s initial value with its reduction
``Dot``         ``np.dot`` of two vectors (a ``sum`` of a product), per element
``Gemv``        matrix-vector product (BLAS), per element of the matrix
``Gemm``        ``einsum`` done by BLAS (planned, no shared output axis), per multiply-add
``EinsumLoop``  ``einsum``'s own loop (unplanned, or an output axis both factors share),
                per multiply-add; its call overhead is an unplanned ``einsum`` call
``EinsumPlan``  ``einsum(..., optimize=True)`` path planning: a fixed cost per call
``Entry``       calling a compiled program: a fixed cost
``EntryParam``  binding and checking one input of a compiled program (its type, rank and
                shape): a fixed cost per parameter per call
``Copy``        copying a result that is an input or a view of one, per element
``NdCall``      the extra fixed cost of a NumPy call over several axes: paid (k - 1) times by a
                call whose operands broadcast over k >= 2 index axes (NumPy's iterator over
                several strided axes: a small 2-D ``A * b`` takes ~4x a 1-D ``a * b``)
``DiagFill``    a diagonal select's fresh array filled with the off-diagonal branch, per element
``DiagSet``     setting its diagonal (a gather and a scatter), per diagonal element; its call
                overhead is the helper's few NumPy calls
==============  ==========================================================================

The backend reads its own copies of some of these decisions today; the constants and
functions here are written so that it can import them instead (``fold_shape`` takes the
same arguments as the backend's ``fold_pattern`` tests, ``EINSUM_PLAN_MIN`` is the threshold
of ``backend._helpers.contract``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..lang.ast import Expr, Get, If, Int, Let, Num, Prim, Var

# -- calls -----------------------------------------------------------------------------------
#: Constructors that issue no NumPy call of their own (views, compile-time pairs, names; a
#: loop iteration's own cost is the ``Loop`` table entry, its body's operations pay their calls).
NO_CALL = frozenset({"Len", "Fst", "Snd", "Pair", "Let", "GetAxis", "Build", "Loop", "Entry", "EntryParam"})
#: A node with no vectorised axis (a scalar: outside every ``build``/``sum``, or in a Python loop
#: over scalars) is one Python / NumPy-scalar operation, not a NumPy call on an array: it pays
#: the model's ``scalar_overhead`` per call instead of ``overhead``.  ``node_cost`` sees it as
#: ``weight <= calls`` (every element is a loop iteration).

#: Cost-table entries for the pseudo-constructors above (per element, float add = 1).  Rough
#: values; the calibrated table (``opcosts.json``) overrides them.
EXTRA_OPCOST: dict[str, float] = {
    "GetAxis": 0.0, "Fill": 1.0, "Loop": 0.0, "Prod": 1.0, "Max": 1.0, "Extreme": 2.0,
    "Dot": 0.5, "Gemv": 0.5, "Gemm": 0.1, "EinsumLoop": 1.0, "EinsumPlan": 0.0,
    "Entry": 0.0, "EntryParam": 0.0, "Copy": 1.0, "DiagFill": 1.0, "DiagSet": 8.0, "NdCall": 0.0,
}
#: A ``scan`` loop stores each state (a list append for a scalar state, an array store else):
#: per element like a copy, per call one plain (or scalar) operation.
EXTRA_OPCOST["Store"] = 1.0
#: Per-call costs of the pseudo-constructors that differ from one plain NumPy call, as
#: multiples of the model's ``overhead`` (used when the calibrated table has no figure).
EXTRA_CALLS: dict[str, float] = {"EinsumLoop": 2.0, "EinsumPlan": 20.0, "Extreme": 2.0, "DiagSet": 8.0,
                                  "NdCall": 0.9}

#: The pseudo-constructor paid (k - 1) times per call by a call over k >= 2 vectorised axes.
ND_CALL = "NdCall"


def extra_axes(ctor: str, vectorised_axes: int) -> int:
    """How many times a call of ``ctor`` over that many vectorised index axes pays
    :data:`ND_CALL` (views, compile-time values and names issue no call: 0)."""
    if ctor in NO_CALL or ctor in _OWN_CALLS or vectorised_axes < 2:
        return 0
    return vectorised_axes - 1


#: Calls whose fixed cost is priced on its own (BLAS / einsum, helpers, loops): no ND_CALL.
_OWN_CALLS = frozenset({ND_CALL, "Dot", "Gemv", "Gemm", "EinsumLoop", "EinsumPlan", "Entry", "EntryParam",
                        "Copy", "DiagFill", "DiagSet", "Extreme", "Loop"})


# -- the call of a compiled program ---------------------------------------------------------------
#: Calling a compiled program, once per call: a fixed cost (``call_overhead["Entry"]``; 0 in
#: an uncalibrated model) ...
ENTRY = "Entry"
#: ... and binding and checking each of its inputs (type, rank, shape: a few Python statements
#: per parameter in the generated entry), once per parameter (``call_overhead["EntryParam"]``).
#: A program of six inputs pays it six times: at small sizes that is what tells programs apart.
ENTRY_PARAM = "EntryParam"
#: Results never share memory with an input: an array of the result that is an input, a view
#: of one (``get`` along an axis or at a constant index, ``build`` renaming axes) or a
#: read-only broadcast (a ``build`` whose body ignores its index, unless it is ``np.full`` of
#: a scalar) is copied before it is returned (``backend._helpers.unalias``): ``Copy`` per
#: element of it, plus its call.
RESULT_COPY = "Copy"


# -- pow ---------------------------------------------------------------------------------------
#: ``(pow b k)`` with an integer ``|k| <= 4`` is multiplications (``1 / ...`` for k < 0).
POW_MULS = {0: 0, 1: 0, 2: 1, 3: 2, 4: 2}


def small_int_exponent(e: Expr) -> int | None:
    """``k`` when ``e`` is an integer literal (``3``, ``3.0``, ``(real 3)``) with ``|k| <= 4``
    (the backend expands such a ``pow`` into multiplications), else None."""
    if isinstance(e, Int):
        k = e.value
    elif isinstance(e, Num) and float(e.value).is_integer():
        k = int(e.value)
    elif isinstance(e, Prim) and e.op == "real" and isinstance(e.args[0], Int):
        k = e.args[0].value
    else:
        return None
    return k if abs(k) <= 4 else None


# -- ifold shapes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoldShape:
    """How the backend computes an ``ifold`` whose body (under the lets that do not read the
    accumulator) has a recognised shape.

    ``kind``:

    * ``identity`` -- the body is the accumulator: the result is the initial value;
    * ``sum`` -- ``acc + t`` / ``t + acc`` or ``if c (acc + t) acc`` (either branch): the
      backend computes ``init + (sum n (lambda (i) term))`` (just the sum when ``init`` is the
      literal 0), so the sum may itself become a BLAS dot (:func:`contraction`);
    * ``sub`` -- ``acc - t``: ``init - (sum n (lambda (i) term))``;
    * ``prod`` -- ``acc * t`` / ``t * acc``: ``init * np.multiply.reduce(t over i)``;
    * ``max`` / ``min`` -- ``if (cmp t acc) t acc`` with a strict or non-strict comparison and
      a scalar ``init``: ``fold_extreme(init, np.fmax.reduce(t over i))``.

    ``term`` is the element (``t``; for the ``if`` shape ``(if c t 0)``) without the lets."""
    kind: str
    term: Expr | None = None


#: Fold bodies of each vectorised shape, written with the accumulator ``acc``, the element
#: ``t`` and a condition ``c`` (neither reads ``acc``).  :func:`fold_shape` is the definition;
#: these forms are what code that cannot call it matches -- the in-egglog costs
#: (``egraph/costrules.py``) -- and ``tests/test_cost.py`` checks them against it.
FOLD_BODY_FORMS: tuple[tuple[str, str], ...] = (
    ("(+ acc t)", "sum"), ("(+ t acc)", "sum"), ("(- acc t)", "sub"),
    ("(* acc t)", "prod"), ("(* t acc)", "prod"),
    ("(if c (+ acc t) acc)", "sum"), ("(if c (+ t acc) acc)", "sum"),
    ("(if c acc (+ acc t))", "sum"), ("(if c acc (+ t acc))", "sum"),
    ("(if (< acc t) t acc)", "max"), ("(if (<= acc t) t acc)", "max"),
    ("(if (< t acc) t acc)", "min"), ("(if (<= t acc) t acc)", "min"),
    ("(max acc t)", "maximum"), ("(max t acc)", "maximum"),
    ("(min acc t)", "minimum"), ("(min t acc)", "minimum"),
)
#: The reduction each shape runs over the fold's index (a pseudo-constructor / table name).
FOLD_REDUCTION = {"sum": "Sum", "sub": "Sum", "prod": "Prod", "max": "Max", "min": "Max",
                  "maximum": "Max", "minimum": "Max"}
#: The operation that combines the initial value with the reduction.
FOLD_COMBINE = {"sum": "Add", "sub": "Sub", "prod": "Mul", "max": "Extreme", "min": "Extreme",
                "maximum": "Maximum", "minimum": "Minimum"}

#: The ``scan`` shapes the backend computes as one NumPy ``ufunc.accumulate`` over
#: ``[init, t_0, t_1, ...]`` (a scalar state; the loop's own order of operations) instead of a
#: Python loop: kind (:func:`fold_shape`) -> ufunc.  They are priced like the fold's reduction.
SCAN_ACCUMULATE = {"sum": "add", "sub": "subtract", "prod": "multiply"}


def fold_shape(core: Expr, acc: str, free: Callable[[Expr], bool], scalar_init: bool = True,
               zero: Expr = Num(0.0)) -> FoldShape | None:
    """The :class:`FoldShape` of a fold body ``core`` (the body with the lets that do not read
    ``acc`` peeled off, :func:`eqsat_ad.lang.folds.peel_lets`), or None for a genuinely
    sequential fold (a Python loop).  ``free(x)``: ``acc`` is not free in ``x``;
    ``scalar_init``: the initial value is a scalar (max/min need one); ``zero``: the literal
    0 of the accumulator's type (``Int(0)`` for an integer fold).

    >>> from eqsat_ad.lang.syntax import parse_expr
    >>> from eqsat_ad.lang.binders import free_vars
    >>> fs = lambda s: fold_shape(parse_expr(s), "a", lambda x: "a" not in free_vars(x))
    >>> [fs(s).kind for s in ("(+ (exp (get x i)) a)", "(* a (get x i))", "(- a 1.0)",
    ...                      "(if (< a (get x i)) (get x i) a)", "a")]
    ['sum', 'prod', 'sub', 'max', 'identity']
    >>> fs("(+ (* 0.5 a) (get x i))") is None
    True
    """
    A = Var(acc)
    b = core
    if b == A:
        return FoldShape("identity")
    if type(b) is Prim and b.op in ("+", "-", "*"):
        x, y = b.args
        if b.op != "-" and y == A and free(x):
            x, y = y, x
        if x == A and free(y):
            return FoldShape({"+": "sum", "-": "sub", "*": "prod"}[b.op], y)
    if type(b) is If and free(b.cond):
        t, f = b.then, b.else_
        for this, other, flip in ((t, f, False), (f, t, True)):
            if other == A and type(this) is Prim and this.op == "+":
                x, y = this.args
                if y == A:
                    x, y = y, x
                if x == A and free(y):
                    return FoldShape("sum", If(b.cond, zero, y) if flip else If(b.cond, y, zero))
    if type(b) is If and type(b.cond) is Prim and b.cond.op in ("<", ">", "<=", ">=") \
            and b.else_ == A and free(b.then) and scalar_init:
        x, y = b.cond.args
        t = b.then
        if x == t and y == A:
            return FoldShape("max" if b.cond.op in (">", ">=") else "min", t)
        if x == A and y == t:
            return FoldShape("max" if b.cond.op in ("<", "<=") else "min", t)
    if type(b) is Prim and b.op in ("max", "min") and scalar_init:
        # the max/min primitives (NumPy's maximum/minimum: a nan propagates, unlike fmax)
        x, y = b.args
        if y == A and free(x):
            x, y = y, x
        if x == A and free(y):
            return FoldShape("maximum" if b.op == "max" else "minimum", y)
    return None


def is_literal_zero(e: Expr) -> bool:
    """Does the backend see ``e`` as the constant 0 (an additive fold then skips ``init +``)?"""
    return isinstance(e, (Num, Int)) and not isinstance(e.value, bool) and e.value == 0


# -- contractions ------------------------------------------------------------------------------
#: ``np.einsum(..., optimize=a.size * b.size > EINSUM_PLAN_MIN)`` (``backend._helpers.contract``):
#: large operands get a planned path (BLAS where possible), small ones skip the planning.
EINSUM_PLAN_MIN = 1 << 14


def einsum_planned(size_a: float, size_b: float) -> bool:
    """Does ``einsum`` plan its path for operands of these sizes (elements)?"""
    return size_a * size_b > EINSUM_PLAN_MIN


def contraction(u_axes: frozenset, w_axes: frozenset, d) -> str | None:
    """How the backend computes ``(sum n (lambda (d) (* u w)))`` (also ``(pow u 2)``, through
    lets) when its extent does not vary along an axis and both factors are real scalars per
    element: ``u_axes`` / ``w_axes`` are the factors' *vectorised* axes (index variables of
    ``build``/``sum``/reductions -- not sequential loop indices).

    ``"dot"`` (both only along ``d``: ``np.dot``), ``"gemv"`` (one only along ``d``: a
    matrix-vector product), ``"einsum"`` (both along other axes too), or None when a factor
    does not depend on ``d`` (then it is ``n * body`` or a product and a reduction)."""
    if d not in u_axes or d not in w_axes:
        return None
    one = frozenset([d])
    if u_axes == one and w_axes == one:
        return "dot"
    if u_axes == one or w_axes == one:
        return "gemv"
    return "einsum"


def contraction_terms(kind: str, u_axes: frozenset, w_axes: frozenset, d,
                      size: Callable[[frozenset], float]) -> list[tuple[str, frozenset]]:
    """The priced parts of a contraction: ``[(pseudo-constructor, axes)]``; each is paid as
    ``node_cost(ctor, product of the axes' extents, calls)``.  ``size(axes)`` is the number
    of elements of an operand with those (vectorised) axes."""
    both = u_axes | w_axes
    if kind == "dot":
        return [("Dot", both)]
    if kind == "gemv":
        return [("Gemv", both)]
    planned = einsum_planned(size(u_axes), size(w_axes))
    batch = (u_axes & w_axes) - {d}          # an output axis both factors share: no BLAS
    out = [("Gemm" if planned and not batch else "EinsumLoop", both)]
    if planned:
        out.append(("EinsumPlan", both - {d}))
    return out


# -- diagonals ---------------------------------------------------------------------------------
def diagonal_select(cond: Expr, axis: Callable[[str], object]) -> tuple[str, str] | None:
    """``(i, j)`` when ``(if cond a b)`` selects the diagonal of two index axes: ``cond`` is
    ``(= i j)`` with ``axis(i)`` and ``axis(j)`` both true (vectorised index axes; the caller
    also checks that their extents are equal).  The backend then computes ``b`` over both
    axes, writes it into a fresh array (``DiagFill`` per element: ``np.zeros`` for a literal
    0) and sets the diagonal to ``a`` with ``j := i`` (equal there), computed along one axis
    only (``DiagSet`` per diagonal element) -- no n^2 mask, no n^2 ``where``, ``a`` paid for n
    elements instead of n^2."""
    if type(cond) is Prim and cond.op == "=" and len(cond.args) == 2:
        x, y = cond.args
        if type(x) is Var and type(y) is Var and x.name != y.name and axis(x.name) and axis(y.name):
            return x.name, y.name
    return None


# -- range guards, shifted reads, windows, summed builds (issue 11) ------------------------------
#: ``(if c a b)`` where ``c`` holds exactly on a range ``lo <= i < hi`` of one vectorised index
#: (:func:`range_condition`): ``a`` is computed on the sub-range only (shifted reads inside are
#: plain slices, views) and written into a fresh array holding ``b`` elsewhere: per element one
#: write (``np.empty``, a fill of each side, the assignment of the range), per call those few
#: statements.  Under a sum (``+``/``-``) with ``b`` the literal 0 the term is instead added into
#: the slice of its range (``out[lo:hi] += a``): the sum's own ``Add``, no select.
RANGE_SELECT = "RangeSelect"
#: A read ``(get x (+ i k))`` shifted along a vectorised index under a vectorised ``where`` guard
#: (not inside the sub-range of a range guard): the rows that stick out are clamped to the edge
#: row -- a padded copy (``_helpers.edge_rows``) per element, the guard test at the few rows that
#: stick out (``span_needed``) per call.
EDGE_ROWS = "EdgeRows"
#: ``(get x (+ i k))`` for two vectorised indices: a sliding-window view of ``x`` (as_strided,
#: ``_helpers.window``): no index array, no gather; what reads it reads strided memory (a matrix
#: product copies it), so it is priced like a copy per element, with the helper's call.
WINDOW = "Window"
EXTRA_OPCOST.update({RANGE_SELECT: 1.0, EDGE_ROWS: 1.0, WINDOW: 1.0})
EXTRA_CALLS.update({RANGE_SELECT: 3.0, EDGE_ROWS: 6.0, WINDOW: 6.0})
_OWN_CALLS = _OWN_CALLS | {RANGE_SELECT, EDGE_ROWS, WINDOW}

_FLIP = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def linear_index(e: Expr, axis: Callable[[str], object], scalar: Callable[[Expr], bool]):
    """``e`` as ``sum(coef * index) + sum(sign * scalar term) + const``: ``({name: coef},
    [(sign, term)], const)`` over the names ``axis`` says are vectorised indices (anything not
    None), with every other term an integer ``scalar(term)`` accepts (it varies along no axis);
    None otherwise."""
    if isinstance(e, Int):
        return {}, [], int(e.value)
    if isinstance(e, Var) and axis(e.name) is not None:
        return {e.name: 1}, [], 0
    if isinstance(e, Prim) and e.op in ("+", "-") and len(e.args) == 2:
        x, y = linear_index(e.args[0], axis, scalar), linear_index(e.args[1], axis, scalar)
        if x is None or y is None:
            return None
        sg = 1 if e.op == "+" else -1
        coefs = dict(x[0])
        for k, c in y[0].items():
            coefs[k] = coefs.get(k, 0) + sg * c
        return ({k: c for k, c in coefs.items() if c}, x[1] + [(sg * s, a) for s, a in y[1]], x[2] + sg * y[2])
    if scalar(e):
        return {}, [(1, e)], 0
    return None


def range_facts(c: Expr, axis: Callable[[str], object], scalar: Callable[[Expr], bool],
                neg: bool = False) -> list | None:
    """The half-lines ``(name, kind, terms, const)`` -- the index ``name`` is ``>= X`` (kind
    ``"lo"``) or ``< X`` (``"hi"``), ``X = sum(sign * term) + const`` -- whose conjunction is
    ``c`` (``not c`` when ``neg``): comparisons (``< <= > >= =``) affine in one index with
    coefficient +-1, ``and``, ``not``, ``or`` under a negation; None when ``c`` is none of these."""
    out: list = []

    def go(c: Expr, neg: bool) -> bool:
        if not isinstance(c, Prim):
            return False
        op, args = c.op, c.args
        if op == "not":
            return go(args[0], not neg)
        if (op == "and" and not neg) or (op == "or" and neg):
            return all(go(a, neg) for a in args)
        if op not in ("<", "<=", ">", ">=", "=") or len(args) != 2:
            return False
        if neg:
            if op == "=":
                return False
            op = _FLIP[op]
        lx, ly = linear_index(args[0], axis, scalar), linear_index(args[1], axis, scalar)
        if lx is None or ly is None:
            return False
        coefs = dict(lx[0])
        for k, v in ly[0].items():
            coefs[k] = coefs.get(k, 0) - v
        coefs = {k: v for k, v in coefs.items() if v}
        if len(coefs) != 1:
            return False
        (name, coef), = coefs.items()
        if coef not in (1, -1):
            return False
        # coef * v + S  op  0 with S = scalar(lhs) - scalar(rhs); X = -S
        terms = [(-sg, a) for sg, a in lx[1]] + [(sg, a) for sg, a in ly[1]]
        const = ly[2] - lx[2]
        kinds = {"<": [("hi", 0)], "<=": [("hi", 1)], ">": [("lo", 1)], ">=": [("lo", 0)],
                 "=": [("lo", 0), ("hi", 1)]}[op]
        for kind, plus in kinds:
            if coef == 1:
                out.append((name, kind, terms, const + plus))
            else:      # -v < X: v >= -X + 1;  -v >= X: v < -X + 1
                out.append((name, "lo" if kind == "hi" else "hi", [(-sg, a) for sg, a in terms],
                            -(const + plus) + 1))
        return True
    return out if go(c, neg) else None


def range_condition(cond: Expr, axis: Callable[[str], object], scalar: Callable[[Expr], bool]):
    """``(swapped, facts)`` when ``(if cond a b)`` may be a range guard: ``facts``
    (:func:`range_facts`; the caller checks that they name one axis), the branch taken on the
    range is ``a`` (``b`` when ``swapped``: ``cond`` is the complement of a range); None
    otherwise."""
    for swapped in (False, True):
        facts = range_facts(cond, axis, scalar, swapped)
        if facts:
            return swapped, facts
    return None


def window_read(idx: Expr, axis: Callable[[str], object]) -> tuple[str, str] | None:
    """``(i, k)`` when ``(get x idx)`` reads ``x[i + k]`` for two vectorised indices of
    different loops (:data:`WINDOW`); None otherwise."""
    if isinstance(idx, Prim) and idx.op == "+" and len(idx.args) == 2:
        x, y = idx.args
        if isinstance(x, Var) and isinstance(y, Var) and x.name != y.name and axis(x.name) is not None \
                and axis(y.name) is not None:
            return x.name, y.name
    return None


def summed_build(body: Expr, var: str, let_value: Callable[[str], object]):
    """The let-bound name ``v`` when ``(sum k (lambda (var) body))`` sums the elements of it,
    ``body = (get v var)`` (``let_value(v)``: the build it is bound to, or None): the backend
    computes the sum of the build's body instead -- a dot / matrix-vector product, not the
    product array reduced -- where ``k`` is the build's extent."""
    if isinstance(body, Get) and isinstance(body.array, Var) and isinstance(body.index, Var) \
            and body.index.name == var and let_value(body.array.name) is not None:
        return body.array.name
    return None


#: The operations a stencil (:func:`stencil_form`) may apply: they cannot fail.
STENCIL_OPS = frozenset({"+", "-", "*", "/", "pow", "neg", "exp", "log", "sin", "cos", "tan", "sqrt", "tanh",
                         "log1p", "abs", "sign", "max", "min"})


def _stencil_canon(e: Expr, sub: dict, J: str, array: Callable[[str], object], scalar: Callable[[str], bool],
                   reads: list):
    """``e`` with every read at a shifted index written ``(get a (+ J c))``, the reads noted in
    ``reads``; None when ``e`` is no stencil (see :func:`stencil_form`)."""
    if isinstance(e, (Num, Int)):
        return e
    if isinstance(e, Var):
        return None if e.name in sub or not scalar(e.name) else e
    if isinstance(e, Get):
        if not isinstance(e.array, Var) or array(e.array.name) is None:
            return None
        idx, c = e.index, None
        if isinstance(idx, Var) and idx.name in sub:
            c = sub[idx.name]
        elif isinstance(idx, Prim) and idx.op in ("+", "-") and len(idx.args) == 2:
            x, y = idx.args
            if idx.op == "+" and isinstance(y, Var) and y.name in sub:
                x, y = y, x
            if isinstance(x, Var) and x.name in sub and isinstance(y, Int):
                c = sub[x.name] + (y.value if idx.op == "+" else -y.value)
        if c is not None:
            reads.append((e.array.name, c))
            return Get(e.array, Prim("+", (Var(J), Int(c))))
        n = array(e.array.name)
        if isinstance(idx, Int) and isinstance(n, int) and not isinstance(n, bool) and 0 <= idx.value < n:
            return e
        return None
    if isinstance(e, Let):
        v, c = e.value, None
        if isinstance(v, Var) and v.name in sub:
            c = sub[v.name]
        elif isinstance(v, Prim) and v.op in ("+", "-") and len(v.args) == 2 and isinstance(v.args[0], Var) \
                and v.args[0].name in sub and isinstance(v.args[1], Int):
            c = sub[v.args[0].name] + (v.args[1].value if v.op == "+" else -v.args[1].value)
        return None if c is None else _stencil_canon(e.body, {**sub, e.name: c}, J, array, scalar, reads)
    if isinstance(e, Prim) and e.op in STENCIL_OPS:
        args = [_stencil_canon(a, sub, J, array, scalar, reads) for a in e.args]
        return None if any(a is None for a in args) else Prim(e.op, tuple(args))
    return None


def stencil_factors(e: Expr, shifts: dict, J: str, array: Callable[[str], object],
                    scalar: Callable[[str], bool]) -> tuple[Expr, list]:
    """``(core, factors)``: ``e`` is ``core`` times each of ``factors`` (outermost first), each a
    term that reads no shifted index and cannot fail (a scalar, a literal, an in-range constant
    read; see :func:`stencil_form`).  The same stencil scaled in one use and not in another (a
    convolution's gradient: ``w_2 * (if g r 0)`` and ``(if g (* r w_2) 0)``) is then one stencil,
    computed once, each use a scaled slice of it."""
    factors: list = []

    def plain(x: Expr, sub: dict) -> bool:
        reads: list = []
        return _stencil_canon(x, sub, J, array, scalar, reads) is not None and not reads

    def peel(e: Expr, sub: dict) -> Expr:
        if isinstance(e, Let):      # a shifted index, let-bound: the factors of its body
            body = peel(e.body, {**sub, e.name: 0})
            return e if body is e.body else Let(e.name, e.value, body)
        while isinstance(e, Prim) and e.op == "*" and len(e.args) == 2:
            a, b = e.args
            if plain(b, sub):
                factors.append(b)
                e = a
            elif plain(a, sub):
                factors.append(a)
                e = b
            else:
                break
        return e
    return peel(e, dict(shifts)), factors


def stencil_form(e: Expr, shifts: dict, J: str, array: Callable[[str], object],
                 scalar: Callable[[str], bool]):
    """``(canonical, kmin, reads)`` when ``e`` is a **stencil** along one index: a function of
    reads ``(get a (+ i c))`` (``shifts``: the names standing for that index, each with its
    constant shift ``c``; index lets inlined) of vectors ``a`` that do not vary along it
    (``array(a)``: its static length, an int, or True; None: not such a vector), of scalars
    that do not vary along any axis (``scalar(name)``), of constant reads in range of a static
    length, combined by :data:`STENCIL_OPS` -- nothing that can fail.  ``canonical`` is ``e``
    with every read written ``(get a (+ J (c - kmin)))``: the value of ``e`` at index ``v`` is
    ``canonical`` at ``J = v + kmin``, so the same stencil read at other shifts (the gradient of
    a convolution reads its residual at i, i - 1, i - 2) has the same canonical form, and the
    backend computes it once (a slice of it per use).  ``reads``: the ``(a, c - kmin)``.
    None: not a stencil."""
    reads: list = []
    canon = _stencil_canon(e, dict(shifts), J, array, scalar, reads)
    if canon is None or not reads:
        return None
    kmin = min(c for _, c in reads)

    def shift(e: Expr) -> Expr:
        if isinstance(e, Get) and isinstance(e.index, Prim) and e.index.op == "+" \
                and e.index.args[0] == Var(J) and isinstance(e.index.args[1], Int):
            return Get(e.array, Prim("+", (Var(J), Int(e.index.args[1].value - kmin))))
        if isinstance(e, Prim):
            return Prim(e.op, tuple(shift(a) for a in e.args))
        return e
    return shift(canon), kmin, sorted({(a, c - kmin) for a, c in reads})


# -- taps: a sum whose range guards move with its index (issue 11) ----------------------------
#: ``(sum m (lambda (j) body))`` where a term of ``body`` is range-guarded along another index
#: ``i`` with bounds that move with ``j`` (:func:`tap_sum`): a K-tap convolution's gradient,
#: ``g_i = sum_j w_j (if (j <= i < j + t0) r[i - j] 0)``.  Vectorised over ``(j, i)`` that is a
#: gather of ``r`` at ``i - j`` and two ``where`` over ``m x n`` elements; the backend instead
#: runs a Python loop over ``j`` (a scalar there), each step adding the term into the slice of its
#: range (``out[j:j + t0] += w[j] * r``, a shifted slice per tap, as NumPy code writes it): the
#: sequential loop of an ``ifold`` of ``acc + body`` (``Loop`` per step, the body's operations
#: paid per step with their calls).
TAP_LOOP = "TapLoop"


def _flat_terms(e: Expr, out: list) -> list:
    if isinstance(e, Prim) and e.op in ("+", "-") and len(e.args) == 2:
        _flat_terms(e.args[0], out)
        _flat_terms(e.args[1], out)
    elif isinstance(e, Prim) and e.op == "neg":
        _flat_terms(e.args[0], out)
    else:
        out.append(e)
    return out


def tap_sum(body: Expr, var: str, axis: Callable[[str], object], scalar: Callable[[Expr], bool],
            free: Callable[[Expr], "frozenset | set | tuple"]) -> bool:
    """Does the backend compute ``(sum m (lambda (var) body))`` as a loop over ``var``
    (:data:`TAP_LOOP`)?  Yes when a term of ``body`` (its ``+``/``-``/``neg`` operands) is
    ``(if c a 0.0)``, alone or times a factor, where ``c`` is a range condition
    (:func:`range_condition`, ``var`` counted as a scalar) of ONE index axis other than ``var``
    whose bounds mention ``var`` and whose width does not stay constant (a one-hot ``(= i j)``, a
    range ``j <= i < j + 2``: O(1) elements a step).  ``axis(name)``: a vectorised index other than ``var`` (not
    None); ``scalar(x)``: ``x`` varies along no axis but ``var``; ``free(x)``: its free names."""
    for t in _flat_terms(body, []):
        core = t
        if isinstance(t, Prim) and t.op == "*" and len(t.args) == 2:
            core = t.args[1] if isinstance(t.args[1], If) else t.args[0]
        if not (isinstance(core, If) and isinstance(core.else_, Num) and core.else_.value == 0.0):
            continue
        facts = range_facts(core.cond, axis, scalar)
        if not facts or len({name for name, *_ in facts}) != 1 or any(name == var for name, *_ in facts):
            continue
        if not any(var in free(x) for _, _, terms, _ in facts for _, x in terms):
            continue
        # a range of constant width (a one-hot (= i j), j <= i < j + 2): O(1) elements a tap --
        # a loop of m steps for m elements is no better than the vectorised select
        key = lambda terms: sorted((sg, repr(x)) for sg, x in terms)      # noqa: E731
        los = [key(terms) for _, kind, terms, _ in facts if kind == "lo"]
        if any(key(terms) in los for _, kind, terms, _ in facts if kind == "hi"):
            continue
        return True
    return False
