"""The loop generator of the Numba backend: the program's loops become Python loops that
Numba compiles (``docs/backend-numba.md``).

The language is loop nests, so the translation is direct: ``build n (λi. e)`` is a
preallocated output and ``for i in range(n)``, ``sum`` an accumulator loop, ``ifold`` a
sequential loop, ``let`` a local, ``if`` a branch, ``get`` indexing, pairs are split at
compile time (an array of pairs is a pair of arrays).  Every sub-term is one assignment to a
scalar local, so an elementwise chain and its reduction are one loop with no temporary
arrays.  A real ``sum``'s accumulator is the one add that may be reassociated
(``_numba_math.sum_add``: LLVM keeps partial sums in vector registers); loop indices read
arrays as ``uint64`` (see ``Gen.unsigned``).

**Placement (loop-invariant code motion).**  Every sub-term is generated in the outermost
block where its free variables are defined: a term inside ``build n (λi. ...)`` that does
not mention ``i`` (nor anything bound inside that loop) is computed once, before the loop --
so ``(build n (λi. (/ (get x i) (sum n ...))))`` stays O(n).  Two limits keep this safe: a
term that may raise (a ``get`` whose index is not a loop index over the array's own length)
never leaves its loop or branch, and a term leaves an ``if`` branch only when it also
leaves a loop (then it is computed once instead of once per iteration; otherwise it stays
in the branch and runs only when taken).  Sub-terms are memoised by structure up to the
names of their variables and by the bindings of their free variables, so a repeated term --
also one an optimised program repeats under other binder names -- is computed once per block.

**Gradient shapes.**  A transposed program reads values of an inner index inside loops over
other indices.  An expensive term of an inner loop's index alone -- directly or through
``let``-bound values made of that index -- is computed once per index into an array
(``materialised``), keyed by the terms that made it, so every loop over that size shares it.
An expensive term that may raise (a ``get`` not provably in range, e.g. a scan's
``acc[l - 1]`` under ``l != 0``) is not moved as is: it is computed out of the loops by a
function of its own (``_spec<k>``) that *returns* its error, and every use raises that error
first (``speculate``; per element for a materialised term), so the kernel raises exactly
where the program evaluates a failing term.  Scratch vectors and arrays of sibling values
that only live for one iteration are allocated once, outside the loops (``hoist_scratch``).

>>> from eqsat_ad.lang.syntax import parse
>>> src = generate_kernel(parse(
...     "(fun ((x (vec n))) (build n (lambda (i) (/ (get x i) (sum n (lambda (j) (get x j)))))))"))
>>> print(src.source.split("def _kernel")[1])          # the sum is hoisted out of the build
(x, n, _lim, _pool0):
    _t5 = 0.0
    for j in range(n):
        _u3 = np.uint64(j)
        _t4 = x[_u3]
        _t5 = _radd(_t5, _t4)
    if n > _lim: raise MemoryError(n, 0)
    _o7 = _pool0 if _pool0.shape[0] == n else np.empty((n,), np.float64)
    for i in range(n):
        _u1 = np.uint64(i)
        _t2 = x[_u1]
        _t6 = (_t2 / _t5)
        _o7[i] = _t6
    return (_o7,)
<BLANKLINE>
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..cost.semantics import fold_shape
from ..lang import ast as _ast
from ..lang.ast import (
    BoolLit,
    Build,
    Expr,
    Fst,
    Get,
    If,
    IFold,
    Int,
    Length,
    Let,
    Num,
    Pair,
    Prim,
    Program,
    Snd,
    Sum,
    Var,
    iter_nodes,
    scoped_children,
)
from ..lang.binders import free_vars, free_vars_table, subst
from ..lang.folds import peel_lets
from ..lang.primitives import ARG_EXTREMES, REAL_FNS
from ..lang.types import (
    ArrayT,
    BoolT,
    IndexT,
    PairT,
    RealT,
    SizeT,
    Type,
    array_sizes,
    scalar_leaf,
)
from ._values import _int_exponent, _pyname_ok, _show, _Unsupported, default_names

__all__ = ["Kernel", "generate_kernel"]

_Scan = getattr(_ast, "Scan", None)      # (scan ...): the states of an ifold
_LOOPS = (Build, Sum, IFold) + ((_Scan,) if _Scan is not None else ())
#: the nodes ``_Gen.term_id`` numbers by their sub-terms, and those sub-terms' fields
_TERM_FIELDS = {If: ("cond", "then", "else_"), Get: ("array", "index"), Length: ("array",),
                Pair: ("fst", "snd"), Fst: ("pair",), Snd: ("pair",)}

# names the generated module binds (a loop index of the program is renamed rather than shadow one)
# operations that make a term worth computing once into an array (Gen.materialised)
_COSTLY = frozenset({"exp", "log", "sin", "cos", "tan", "tanh", "log1p", "pow", "sqrt"})
_MODULE_NAMES = frozenset({"math", "np", "njit", "prange", "range", "max", "float", "abs"})
_DTYPE = {"f": "np.float64", "i": "np.int64", "b": "np.bool_"}
_ZERO = {"f": "0.0", "i": "0", "b": "False"}
_CMP = {"=": "==", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
#: the vectorisable functions of _numba_math.py a kernel module imports, each as ``_v<name>``
_VEC_MATH = ("exp", "log", "tanh", "sin", "cos", "tan", "log1p", "pow")
# the real functions on scalars inside a kernel (_v...: vectorisable ones, _numba_math.py;
# math.sqrt: an instruction; maximum/minimum/sign: NumPy's NaN rules)
_SCALAR_FN = {"exp": "_vexp", "log": "_vlog", "sin": "_vsin", "cos": "_vcos",
              "tan": "_vtan", "sqrt": "math.sqrt", "tanh": "_vtanh", "log1p": "_vlog1p",
              "abs": "abs", "sign": "np.sign", "max": "np.maximum", "min": "np.minimum"}
# np.argmax / np.argmin's result (the first extreme; the first nan, if any; 0 for an empty
# vector) by a plain loop: Numba's np.argmax is a generic iteration costing ~0.1 us a call
# on a short row, a log-sum-exp's max per data point
_ARG_EXTREME = """def {name}(a):
    n = a.shape[0]
    if n == 0:
        return 0
    best, k = a[0], 0
    if best != best:
        return 0
    for i in range(1, n):
        v = a[i]
        if v != v:
            return i
        if v {cmp} best:
            best, k = v, i
    return k
"""
# helpers the generated module defines when a kernel uses them (compiled with the kernel)
_HELPERS = {
    "sum_add": ("_radd", "from eqsat_ad.backend._numba_math import sum_add as _radd\n"),
    "argmax": ("_argmax", _ARG_EXTREME.format(name="_argmax", cmp=">")),
    "argmin": ("_argmin", _ARG_EXTREME.format(name="_argmin", cmp="<")),
}


# ---------------------------------------------------------------------------------------
# blocks and compile-time values
# ---------------------------------------------------------------------------------------
class Scope:
    """A block of generated lines: the kernel body, a loop body or an ``if`` branch.  Lines
    are strings or ``(header, Scope)`` for a nested block.  ``memo`` holds the values
    computed here (visible to the blocks nested inside, while they are generated)."""
    __slots__ = ("borrowed", "depth", "index", "kind", "lines", "loops", "memo", "parent", "raise_ok", "siblings",
                 "spec")

    def __init__(self, parent: Scope | None, kind: str):
        self.parent, self.kind = parent, kind
        self.lines: list = []
        self.memo: dict = {}
        self.depth = 0 if parent is None else parent.depth + 1
        self.loops: list = []         # the loops emitted here (_Loop), for sibling reuse
        self.siblings: list = []      # a loop: the earlier loops over the same range beside it
        self.index = None             # a loop: its index (S)
        self.borrowed: list = []      # a loop: the arrays of sibling values it reads (_Loop.stored)
        self.spec = None              # a "try" block (_Gen.speculate): its _Spec
        self.raise_ok = False         # a loop a term that may raise may leave (_Gen.interchanged)

    def emit(self, line) -> None:
        self.lines.append(line)

    def chain(self) -> list[Scope]:
        """This scope and its ancestors, innermost first."""
        out, s = [], self
        while s is not None:
            out.append(s)
            s = s.parent
        return out


@dataclass(eq=False)
class S:
    """A scalar: code (a name or literal), kind 'f' real / 'i' integer / 'b' bool, the
    scope defining it; for a loop index, the loop's size (its code and expression)."""
    code: str
    dt: str
    scope: Scope
    bound: str | None = None
    size_expr: Expr | None = None
    ucode: str | None = None          # a loop index as uint64, for indexing (see Gen.unsigned)
    size: S | None = None             # a loop index: its loop's size


@dataclass(eq=False)
class Arr:
    """An array: ``base[idx...]`` (a row of a matrix is the matrix and an index, no view
    is made), its remaining rank, element kind, extents (scalars), defining scope, and
    whether it is freshly allocated by the kernel (else an input or a view of one)."""
    base: str
    idx: tuple
    rank: int
    dt: str
    dims: tuple
    scope: Scope
    fresh: bool

    @property
    def code(self) -> str:
        return self.base if not self.idx else f"{self.base}[{', '.join(self.idx)}]"


@dataclass(eq=False)
class P:
    """A pair, split at compile time."""
    a: object
    b: object


def size_code(size: Expr, env: dict, shadow: frozenset) -> str | None:
    """The kernel's code of a loop extent that is a size name or a literal, else None."""
    if isinstance(size, Int) and size.value >= 0:
        return str(size.value)
    if isinstance(size, Var) and size.name not in shadow and isinstance(env.get(size.name), S):
        return env[size.name].code
    return None


def _leaves(v, path=()):
    if isinstance(v, P):
        return _leaves(v.a, path + (0,)) + _leaves(v.b, path + (1,))
    return [(path, v)]


def _deepest(*scopes: Scope) -> Scope:
    return max(scopes, key=lambda s: s.depth)


def _scope_of(v) -> Scope:
    if isinstance(v, P):
        return _deepest(_scope_of(v.a), _scope_of(v.b))
    return v.scope


@dataclass(eq=False)
class _Loop:
    """A loop emitted in a scope: its size (code), index variable and value, the scope of
    its body (where values computed per element are memoised), the line holding it in the
    enclosing scope, and the arrays its body was made to store values into (Gen.sibling)."""
    size: str
    var: str
    index: S
    body: Scope
    line: tuple
    extent: str
    stored: dict = field(default_factory=dict)     # term number (Gen.term_id) -> array name
    canon: dict | None = None                      # term number -> value of its body (Gen.sibling)


@dataclass(eq=False)
class _Spec:
    """A speculated term (``_Gen.speculate``), computed by a function of its own: its name,
    the variables receiving its error (kind, -1 for none, and three arguments), its value
    (variables of the block calling it), its body (a Scope) and results (variable, code in
    the body, placeholder when it fails).  In a block's lines it is the call."""
    name: str
    err: tuple
    value: object = None
    body: object = None
    results: list = field(default_factory=list)


# the placeholders of a speculated term's results, in a statement returning its error
_PLACEHOLDERS = "__placeholders__"


def _try_of(s: Scope):
    """The speculated term's block ``s`` is in (None: the kernel's own code)."""
    while s is not None and s.kind != "try":
        s = s.parent
    return s


@dataclass
class _Dest:
    """The outputs of a build being generated: one array per leaf of its element (pairs
    are split), allocated once before the outermost loop with the extents of the nested
    builds it was written through."""
    scope: Scope                                   # where the outputs are allocated
    leaves: dict = field(default_factory=dict)     # path -> (name, dt, extents)


# ---------------------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------------------
@dataclass
class Kernel:
    """The generated kernel module: ``source`` (a Python module defining ``_kernel``),
    ``args`` (the kernel's parameters: the program's leaves then its size names, in order,
    then ``_lim``, then the pool's arrays), ``arg_types`` (per argument: ('f'|'i'|'b', rank)), ``out`` (the result's
    shape: a tree of ('f'|'i'|'b', rank) leaves, tuples for pairs), ``gets`` (the source of
    the ``get`` each bounds check belongs to, by number) and ``allocs`` (what each
    allocation builds, by number)."""
    source: str
    args: list
    arg_types: list
    out: object
    gets: list
    allocs: list
    parallel: bool
    divs: list = field(default_factory=list)
    #: the arrays the kernel allocates once per call (before every loop): per slot its kind
    #: and rank, and where the kernel returns it -- the index of the result leaf it is, or
    #: None (a scratch array, returned after the results).  The kernel takes one argument
    #: per slot (``_pool<k>``, after ``_lim``): an array of that shape is used instead of a new
    #: one (numba_backend reuses an earlier call's array that nothing else refers to any more).
    pool: list = field(default_factory=list)


class _Gen:
    def __init__(self, prog: Program, parallel: bool):
        self.prog = prog
        self.parallel = parallel
        self.n = 0
        self.fv_table = free_vars_table(prog.body)
        self.gets: list[str] = []
        self.divs: list[str] = []
        self.allocs: list[str] = []
        self.helpers: set[str] = set()
        self.keep: list = []            # values kept alive (their ids are in memo keys)
        self.root = Scope(None, "root")
        self._raise_memo: dict = {}
        self._expensive: dict = {}
        self.param_dims: dict[str, list] = {}
        self.param_values: dict[str, object] = {}
        self._prebound: dict = {}        # id(Let) -> (value, bindings): a sum fused with an earlier one
        self.pool: list = []             # (array name, kind, rank): allocations in the kernel's top block
        self.read_deep: set = set()      # arrays of sibling values read in a nested loop (reusable)
        self.alias: dict = {}            # an output written into a sibling array -> that array
        self._recompute: dict = {}       # id(term) -> its cost per element (the cost table)
        self.origin: dict = {}           # id(value) -> (term, env) that computed it
        self.sib_allocs: list = []       # the arrays of sibling values (hoist_scratch)
        self._hc: dict = {}              # hash-consed terms (hc): node -> number
        self._hc_dep: list = []          # number -> whether it reads a loop's index
        self._vid: dict = {}             # id(loop) -> {id(value): its number there} (value_id; -1: none)
        self._normal: dict = {}          # id(term) -> its normal form (key)
        self.loop_allocs: list = []      # the builds' arrays allocated inside a block (hoist_scratch)
        self.types: dict = {}            # id(node) -> its type (generate_kernel)

    # -- names -------------------------------------------------------------------------
    def tmp(self, prefix: str = "_t") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def fv(self, e: Expr) -> frozenset:
        r = self.fv_table.get(id(e))
        return r if r is not None else free_vars(e)

    def let_scalar(self, code: str, dt: str, scope: Scope) -> S:
        t = self.tmp()
        scope.emit(f"{t} = {code}")
        return S(t, dt, scope)

    # -- placement -----------------------------------------------------------------------
    def place(self, e: Expr, env: dict, cur: Scope) -> Scope:
        """The outermost open scope ``e`` may be generated in (module docstring)."""
        target = self.root
        for v in self.fv(e):
            b = env.get(v)
            if b is not None:
                s = _scope_of(b)
                if s.depth > target.depth:
                    target = s
        if target is cur:
            return cur
        if self.may_raise(e, env):
            while cur.depth > target.depth and cur.kind == "loop" and cur.raise_ok:
                cur = cur.parent
            return cur
        return self.lift(target, cur)

    @staticmethod
    def lift(target: Scope, cur: Scope) -> Scope:
        """The outermost scope between ``target`` (an ancestor of ``cur``) and ``cur`` that
        a term may move to: it leaves an ``if`` branch only when it also leaves a loop
        enclosing that branch."""
        between = [s for s in cur.chain() if s.depth > target.depth]      # innermost first
        result, seen_loop = target, False
        for s in reversed(between):                                   # outermost first
            if s.kind == "loop":
                seen_loop = True
            elif s.kind == "branch" and not seen_loop:
                result, seen_loop = s, False
        return result

    def materialised(self, e: Expr, env: dict, where: Scope, cur: Scope):
        """An expensive term pinned to a loop only by that loop's index ``i``, with another
        loop between its other variables' scope and that loop (``(build m (λj. (sum n (λi.
        (* (f i) (g i j))))))`` with ``f i`` a sum or an ``exp``): computed once for every
        ``i`` into an array, outside the loops it does not depend on, and read at ``i`` --
        what the NumPy backend's layout does by construction; recomputing it in every
        iteration of the outer loop would multiply its cost by that loop's extent.  None when
        that does not apply.

        A term of the indices of directly nested loops (``exp q[j][r]`` or the triangular
        factor ``(if (< c r) l[j][...] 0.0)`` of GradBench's gmm, inside its loop over data
        points) is computed once for every tuple of them, into an array of that rank, by
        loops nested the same way; such a term also when, expensive or not, recomputing it
        costs more than the load that replaces it (the cost table: it is stored once per
        element, and read in every iteration of the loops it leaves) -- the ``if``, the index
        arithmetic and the bounds check leave the innermost loop, which then vectorises.

        A term that may raise (a ``get`` the generator cannot prove in range) is computed in
        the array's loop by a function of its own per element (``speculate``), which returns
        its error instead of raising it: the error is stored with the element, and reading
        the element raises it -- so the kernel raises where the program evaluates the term
        at an element where it fails, as the interpreter does (and not for elements no one
        reads)."""
        if where.kind != "loop":
            return None
        costly = self.expensive(e)
        if not costly and self.recompute_cost(e) <= self.load_cost():
            return None
        raises = self.may_raise(e, env)
        if raises and where is not cur:
            return None
        found = self.nest_roots([env[v] for v in self.fv(e) if v in env], where)
        if found is None or (not costly and len(found[0]) == 1):
            return None
        roots, target, raises2 = found
        raises = raises or raises2
        for r in roots:
            if r.size.scope.depth > target.depth:
                target = r.size.scope
        top = roots[0].scope                # the outermost of the loops whose indices it reads
        if target.depth >= top.depth:
            return None
        out = self.lift(target, top.parent)
        s = top.parent
        while s is not out and s.kind != "loop":
            s = s.parent
        if s is out:                      # no loop to leave: nothing saved
            return None
        levels = tuple(r.scope for r in roots)
        # the same term of the same indices' values (made by the same terms) is the same
        # array, whichever loops over those sizes ask for it
        canon: dict = {}
        key = ("materialised",) + self.normal(e, env, lambda x: self.canon(x, levels, tuple(roots), canon))
        hit = None
        s = out
        while s is not None and hit is None:
            hit = s.memo.get(key)
            s = s.parent
        if hit is None:
            dest = _Dest(out)
            nest, block, rebound = [], out, {}
            for r in roots:               # the same loops, nested the same way, at out
                loop = Scope(block, "loop")
                j = self.index(self.fresh_name(f"_m{r.code}"), r.size, r.size_expr, loop)
                self.open_loop(block, r.size, j, loop)
                nest.append((block, loop, j, r))
                rebound[id(r)] = j
                block = loop
            loop = block
            body, errs = loop, None
            if raises:
                k = self.n + 1
                self.n = k
                rec = _Spec(f"_spec{k}", tuple(f"_se{k}_{x}" for x in range(4)))
                body = Scope(loop, "try")
                body.spec, rec.body = rec, body
                self.keep.append(rec)
            env2 = {**env, **{v: self.rebind(env[v], levels, body, rebound) for v in self.fv(e) if v in env}}
            exts = tuple(self.extent(r.size, out) for r in roots)
            self.into(e, env2, body, dest, (), tuple(j.code for _b, _l, j, _r in nest), exts)
            arr = self.allocate(dest, out)
            if raises:
                fe, anyf = self.tmp("_fe"), self.tmp("_fa")
                errs = (fe, anyf)
                self.allocs.append("the errors of a term computed for every element")
                for ln in self.alloc_lines(fe, "i", [x.code for x in exts] + ["4"], out):
                    out.emit(ln)
                out.emit(f"{anyf} = False")         # (any element failed: readers test it first)
                loop.emit(rec)
                # the errors are read only once one element failed: no stores until then, and
                # then every element marked as not failed (-1) before the first error is stored
                at = ", ".join(j.code for _b, _l, j, _r in nest)
                failed = Scope(loop, "branch")
                failed.emit(f"if not {anyf}: {fe}.fill(-1)")
                failed.emit(f"{anyf} = True")
                for x in range(4):
                    failed.emit(f"{fe}[{at}, {x}] = {rec.err[x]}")
                loop.emit((f"if {rec.err[0]} >= 0:", failed))
            for block, lp, j, r in reversed(nest):       # (inner loops first: their lines are done)
                line = (f"for {j.code} in range({r.size.code}):", lp)
                block.emit(line)
                self.register_loop(block, r.size, j.code, j, lp, line)
            hit = (arr, errs)
            out.memo[key] = hit
            self.keep.append(hit)
        arr, errs = hit
        i = roots[-1]
        if errs is not None:          # (where is cur: a term that may raise is not moved)
            fe, anyf = errs           # (a loop-invariant test first: the loop can be unswitched)
            at = ", ".join(r.code for r in roots)
            self.reraise(cur, *(f"{fe}[{at}, {x}]" for x in range(4)), guard=anyf)
        # read at the outer indices, then at i, which runs over range(size): no bounds check
        # (the extent is max(size, 0))
        outer = tuple(self.unsigned(r) for r in roots[:-1])
        m = len(outer)
        arr = _tree({path: Arr(a.base, a.idx + outer, a.rank - m, a.dt, (i.size,) + a.dims[m + 1:],
                               _deepest(a.scope, *(r.scope for r in roots[:-1])), a.fresh)
                     for path, a in _leaves(arr)}, ())
        self.keep.append(arr)
        return self.get(Get(Var("(materialised)"), Var(i.code)), arr, i, where)

    def interchanged(self, e: Sum, env: dict, where: Scope):
        """A real ``(sum n (λp. B))`` read at ``j`` in the loop over ``j`` (``where``), whose
        ``B`` reads rows at ``p`` and their elements at ``j`` (``(get (get A p) j)``: ``A^T x``
        in a gradient): the sums for every ``j`` are computed before that loop with the loops
        interchanged -- ``acc[j] += B(p, j)``, ``j`` innermost --, so the inner loop reads
        rows contiguously and vectorises, and what depends on ``p`` alone is computed once per
        ``p`` instead of once per ``(j, p)``.  Each ``acc[j]`` adds its terms in the order of
        ``p``, as the loop over ``p`` would.  Only when no term of ``B`` that depends on ``j``
        may raise: the ``(p, j)`` order then raises the error the ``(j, p)`` order would (the
        first ``p`` where a term of ``p`` alone fails; those may leave the loop over ``j``,
        ``raise_ok``, which runs at least once: the loops are under ``if`` the extent
        ``> 0``).  None when that does not apply or does not pay."""
        if where.kind != "loop" or _try_of(where) is not None or not isinstance(self.types.get(id(e)), RealT):
            return None
        pins = [v for v in self.fv(e) if v in env and _scope_of(env[v]) is where]
        if not pins:
            return None
        found = self.index_roots([env[v] for v in pins], where)
        if found is None or found[2]:
            return None
        i, target, _ = found
        if i.size_expr is None or not self._interchange_pays(e, set(pins), i, env):
            return None
        for v in list(self.fv(e)) + [None]:         # (the sum's size too)
            sc = i.size.scope if v is None else _scope_of(env[v]) if v in env and v not in pins else self.root
            if sc.depth > target.depth:
                target = sc
        if target.depth >= where.depth:
            return None
        out = self.lift(target, where.parent)
        if self.parallel and out is self.root:
            return None                     # (the kernel's loop over j is a prange: keep it parallel)
        canon: dict = {}
        key = ("interchanged",) + self.normal(e, env, lambda x: self.canon(x, where, i, canon))
        s, arr = out, None
        while s is not None and arr is None:
            arr = s.memo.get(key)
            s = s.parent
        if arr is None:
            ext = self.extent(i.size, out)
            guard = Scope(out, "branch")
            n = self.size(e.size, env, guard)
            ploop = Scope(guard, "loop")
            p = self.index(self.fresh_name(e.var), n, e.size, ploop)
            self.open_loop(guard, n, p, ploop)
            jloop = Scope(ploop, "loop")
            jloop.raise_ok = True
            j = self.index(self.fresh_name(f"_m{i.code}"), i.size, i.size_expr, jloop)
            self.open_loop(ploop, i.size, j, jloop)
            rebound: dict = {id(i): j}
            env2 = {**env, e.var: p, **{v: self.rebind(env[v], where, jloop, rebound) for v in pins}}
            v = self.scalar(self.ev(e.body, env2, jloop), "a sum's term")
            acc = self.tmp("_o")
            self.allocs.append("the sums of an interchanged loop")
            lines = self.alloc_lines(acc, "f", [ext.code], out)
            for ln in lines:
                out.emit(ln)
            if out is not self.root:
                self.loop_allocs.append((acc, "f", [ext.code], out, lines, len(self.allocs) - 1,
                                         _deepest(self.root, ext.scope)))
            z, zero = self.tmp("_i"), Scope(out, "loop")
            zero.emit(f"{acc}[{z}] = 0.0")
            out.emit((f"for {z} in range({ext.code}):", zero))
            jloop.emit(f"{acc}[{self.unsigned(j)}] += {self.real(v)}")
            line = (f"for {j.code} in range({i.size.code}):", jloop)
            ploop.emit(line)
            self.register_loop(ploop, i.size, j.code, j, jloop, line)
            line = (f"for {p.code} in range({n.code}):", ploop)
            guard.emit(line)
            self.register_loop(guard, n, e.var, p, ploop, line)
            out.emit((f"if {ext.code} > 0:", guard))
            arr = Arr(acc, (), 1, "f", (i.size,), out, True)
            out.memo[key] = arr
            self.keep.append(arr)
        return self.get(Get(Var("(materialised)"), Var(i.code)), arr, i, where)

    def _interchange_pays(self, e: Sum, jv: set, j: S, env: dict) -> bool:
        """Does ``e``'s term read rows at its index and their elements at ``j`` (the loop
        index ``j``, the names ``jv`` bound to values made of it), and no rows at ``j`` with
        elements at its index -- and may no term that depends on ``j`` raise (a ``get`` at a
        ``j``-dependent index other than ``j`` itself over an array of ``j``'s extent, a
        division, a loop of ``j``-dependent size)?"""
        pv = {e.var}
        binders = set()
        for x in iter_nodes(e.body):
            binders.update(x.binds())
        if binders & jv or e.var in jv:
            return False                    # (a name of j rebound inside: not worth the care)
        for x in iter_nodes(e.body):
            if isinstance(x, Let):          # (scoping ignored: a name counts as dependent if any binding is)
                fx = self.fv(x.value)
                if fx & jv:
                    jv.add(x.name)
                if fx & pv:
                    pv.add(x.name)
        votes = 0
        for x in iter_nodes(e.body):
            if isinstance(x, Get):
                fi = self.fv(x.index)
                if fi & jv and not (isinstance(x.index, Var) and env.get(x.index.name) is j
                                    and self._covers(j.size_expr, x.array, env, frozenset(binders))):
                    return False
                if isinstance(x.array, Get):
                    fa = self.fv(x.array.index)
                    if fi & jv and fa & pv:
                        votes += 1
                    elif fi & pv and fa & jv:
                        return False        # rows at j, elements at p: the loop over p reads them contiguously
            elif (isinstance(x, Prim) and x.op in ("div", "mod") and self.fv(x) & jv) or (
                    isinstance(x, _LOOPS) and self.fv(x.size) & jv):
                return False
        return votes > 0

    def reraise(self, cur: Scope, kind: str, a0: str, a1: str, a2: str, guard: str | None = None) -> None:
        """In ``cur``: raise the error a speculated term returned (``kind`` >= 0; inside
        another speculated term's function, return it)."""
        br = Scope(cur, "branch")
        if _try_of(cur) is not None:
            br.emit(f"return ({kind}, {a0}, {a1}, {a2}, {_PLACEHOLDERS})")
        else:
            br.emit(f"if {kind} == 0: raise IndexError({a0}, {a1}, {a2})")
            br.emit(f"if {kind} == 1: raise ZeroDivisionError({a0})")
            br.emit(f"raise MemoryError({a0}, {a1})")
        cur.emit((f"if {guard + ' and ' if guard else ''}{kind} >= 0:", br))

    def index_roots(self, vals: list, where: Scope):
        """The loop index of ``where`` that the values ``vals`` (bound in ``where``) are made
        of, the innermost scope of the other values they read, following the terms that
        computed them (``origin``): ``t = -1 + 2 j / (n - 1)`` bound by a ``let`` in the loop
        over ``j`` is made of ``j`` alone -- and whether one of those terms may raise.  None
        when they read anything else bound in ``where`` (an accumulator, a value of no known
        term) or more than one index."""
        roots, target, seen, raises = set(), self.root, set(), False
        stack = list(vals)
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if isinstance(v, P):
                stack += [v.a, v.b]
                continue
            sc = _scope_of(v)
            if sc is not where:
                if sc.depth > target.depth:
                    target = sc
                continue
            if isinstance(v, S) and v.size is not None:
                roots.add(v)
                continue
            origin = self.origin.get(id(v))
            if origin is None or len(seen) > 64:      # (rebind and canon recurse along the chain)
                return None
            oe, oenv = origin
            raises = raises or self.may_raise(oe, oenv)
            stack += [oenv[x] for x in self.fv(oe) if x in oenv]
        if len(roots) != 1:
            return None
        i = roots.pop()
        return i, target, raises

    def nest_roots(self, vals: list, where: Scope):
        """``index_roots`` through directly nested loops: the indices, outermost first, of
        ``where`` and of the loops around it whose values ``vals`` read (``exp q[j][r]`` in
        the loop over ``r`` inside the loop over ``j``: ``[j, r]``), following the terms that
        computed them; the innermost scope of the other values they read; whether one of
        those terms may raise.  None when they read, in one of those loops, anything else
        (an accumulator, a value of no known term) or not its index."""
        roots, raises, level, far = [], False, where, []
        vals = list(vals)
        while True:
            mine = [v for v in vals if _scope_of(v) is level]
            far += [v for v in vals if _scope_of(v) is not level]
            found = self.index_roots(mine, level) if mine else None
            if found is None:
                return None
            roots.insert(0, found[0])
            raises = raises or found[2]
            up = level.parent
            seen = far + self._traced_outside(mine, level)
            vals = [v for v in seen if _scope_of(v) is up]         # (the next level's, if a loop)
            far = [v for v in seen if _scope_of(v) is not up]
            if not vals or up is None or up.kind != "loop" or up.index is None:
                far += vals
                break
            level = up
        target = self.root
        for v in far:
            if _scope_of(v).depth > target.depth:
                target = _scope_of(v)
        return roots, target, raises

    def _traced_outside(self, vals: list, where: Scope) -> list:
        """The values outside ``where`` that the values ``vals`` of ``where`` are made of
        (following ``origin`` as ``index_roots`` does)."""
        out, seen, stack = [], set(), list(vals)
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if isinstance(v, P):
                stack += [v.a, v.b]
                continue
            if _scope_of(v) is not where:
                out.append(v)
                continue
            origin = self.origin.get(id(v))
            if origin is not None:
                oe, oenv = origin
                stack += [oenv[x] for x in self.fv(oe) if x in oenv]
        return out

    def canon(self, v, where, i, done: dict):
        """A key for value ``v`` as a function of ``where``'s index ``i`` (``index_roots``):
        the terms that made it, the index as its loop's size, other values by identity.
        ``where`` and ``i`` may be tuples: the nested loops of ``nest_roots`` and their indices."""
        hit = done.get(id(v))
        if hit is not None:
            return hit
        levels = where if isinstance(where, tuple) else (where,)
        roots = i if isinstance(i, tuple) else (i,)
        done[id(v)] = ("value", id(v))          # (while it is being made: a cycle is its identity)
        if isinstance(v, P):
            r = ("pair", self.canon(v.a, where, i, done), self.canon(v.b, where, i, done))
        elif any(v is x for x in roots):
            r = ("index", next(k for k, x in enumerate(roots) if v is x), id(v.size))
        elif not any(_scope_of(v) is x for x in levels):
            r = ("value", id(v))
        else:
            oe, oenv = self.origin[id(v)]
            r = ("term",) + self.normal(oe, oenv, lambda x: self.canon(x, where, i, done))
        done[id(v)] = r
        return r

    def normal(self, e: Expr, env: dict, value) -> tuple:
        """``e`` up to the names of its variables, and ``value`` of what its free variables
        are bound to, in the order they first occur: alpha-equivalent terms of the same
        values (``(sum d (λl. q[k][l]))`` and ``(sum d (λp. q[j][p]))`` with ``k`` and ``j``
        the same index) give the same key."""
        from ..lang.binders import canonical_names
        order = []
        fvs = self.fv(e)
        for x in iter_nodes(e):
            if isinstance(x, Var) and x.name in fvs and x.name in env and x.name not in order:
                order.append(x.name)
        # a free variable is renamed by its position (names no program uses: '%' is no identifier)
        renamed = e
        for k, name in enumerate(order):
            renamed = subst(renamed, name, Var(f"%{k}"))
        self.keep.append(renamed)
        return canonical_names(renamed), tuple(value(env[name]) for name in order)

    def rebind(self, v, where: Scope, loop: Scope, done: dict):
        """Value ``v`` (of ``where``, or of one of a tuple of scopes) computed again in
        ``loop``, with ``where``'s index replaced by ``loop``'s (``done`` maps the values
        already rebound, by id: the indices to their replacements)."""
        hit = done.get(id(v))
        if hit is not None:
            return hit
        if isinstance(v, P):
            r = P(self.rebind(v.a, where, loop, done), self.rebind(v.b, where, loop, done))
        elif not any(_scope_of(v) is x for x in (where if isinstance(where, tuple) else (where,))):
            return v
        else:
            oe, oenv = self.origin[id(v)]
            env2 = dict(oenv)
            for x in self.fv(oe):
                if x in oenv:
                    env2[x] = self.rebind(oenv[x], where, loop, done)
            r = self.ev(oe, env2, loop)
        done[id(v)] = r
        self.keep.append(r)
        return r

    # -- speculation: an expensive term that may raise, out of the loops it does not depend on
    def speculate(self, e: Expr, env: dict, key: tuple, cur: Scope):
        """An expensive term that may raise (a ``get`` the generator cannot prove in range,
        guarded by an ``if`` it does not understand: the transposed RK4's ``(scan ...)``, whose
        body reads ``acc[l - 1]`` when ``l != 0``) but does not depend on the loops around it
        would be computed in every iteration of those loops.  It is computed once, where its
        variables are defined, by a function of its own (``_spec<k>``, compiled with the
        kernel): an error there is returned (its kind and arguments), not raised; every use
        of the value first raises that error when there was one -- so the kernel raises
        exactly when the program evaluates the term and it fails, as the interpreter does.
        The value is visible after the check only (``spec_use``), so nothing computed from it
        leaves the block of the check.  None when this does not apply (the term's own
        operation is cheap -- an expensive term inside it is speculated by itself -- or there
        is no loop to leave)."""
        if not (isinstance(e, (Build, Sum, IFold)) or (_Scan is not None and isinstance(e, _Scan))
                or (isinstance(e, Prim) and e.op in _COSTLY)):
            return None
        target = self.root
        for v in self.fv(e):
            b = env.get(v)
            if b is not None and _scope_of(b).depth > target.depth:
                target = _scope_of(b)
        if target is cur:
            return None
        out = self.lift(target, cur)
        s = cur
        while s is not out and s.kind != "loop":
            s = s.parent
        if s is out or not self.may_raise(e, env):
            return None
        k = self.n + 1
        self.n = k
        rec = _Spec(f"_spec{k}", tuple(f"_se{k}_{j}" for j in range(4)))
        tb = Scope(out, "try")
        tb.spec = rec
        v = self.node(e, env, tb)
        vals = {}
        for path, leaf in _leaves(v):
            vals[path] = self.export(leaf, rec, out)
        rec.value = _tree(vals, ())
        rec.body = tb
        out.emit(rec)
        out.memo[key] = rec
        self.keep.append(rec)
        return self.spec_use(rec, cur)

    def export(self, leaf, rec: _Spec, out: Scope):
        """A leaf computed in a speculated term's function: one of its results, a variable
        of ``out`` (its placeholder when the function fails: a value of its kind)."""
        name = self.tmp("_h")
        if isinstance(leaf, S):
            rec.results.append((name, leaf.code, _ZERO[leaf.dt]))
            return S(name, leaf.dt, out)
        dims = []
        for d in leaf.dims:
            if _scope_of(d).depth > out.depth:
                d = self.export(d, rec, out)
            dims.append(d)
        shape = ", ".join("0" for _ in range(leaf.rank)) + ("," if leaf.rank == 1 else "")
        rec.results.append((name, leaf.code, f"np.empty(({shape}), {_DTYPE[leaf.dt]})"))
        return Arr(name, (), leaf.rank, leaf.dt, tuple(dims), out, leaf.fresh)

    def spec_use(self, rec: _Spec, cur: Scope):
        """The value of a speculated term in ``cur``: after a check that raises its error
        (once per block: a check in an enclosing block ran before this one)."""
        mk = ("spec", id(rec))
        s = cur
        while s is not None:
            hit = s.memo.get(mk)
            if hit is not None:
                return hit
            s = s.parent
        self.reraise(cur, *rec.err)

        def wrap(v):
            if isinstance(v, P):
                return P(wrap(v.a), wrap(v.b))
            if isinstance(v, S):
                return S(v.code, v.dt, cur)
            return Arr(v.base, v.idx, v.rank, v.dt, tuple(wrap(d) for d in v.dims), cur, v.fresh)
        w = wrap(rec.value)
        cur.memo[mk] = w
        self.keep.append(w)
        return w

    @staticmethod
    def raise_stmt(s: Scope, kind: int, *args: str) -> str:
        """The statement raising error ``kind`` (0 IndexError(k, n, which), 1
        ZeroDivisionError(which), 2 MemoryError(count, which)) in block ``s``; inside a
        speculated term's function (``speculate``), returning it."""
        if _try_of(s) is not None:
            a = list(args) + ["0"] * (3 - len(args))
            return f"return ({kind}, {a[0]}, {a[1]}, {a[2]}, {_PLACEHOLDERS})"
        exc = ("IndexError", "ZeroDivisionError", "MemoryError")[kind]
        return f"raise {exc}({', '.join(args)})"

    def expensive(self, e: Expr) -> bool:
        """Does ``e`` contain a loop or a transcendental function (worth an array)?"""
        hit = self._expensive.get(id(e))
        if hit is None:
            hit = any(isinstance(x, (Sum, IFold, Build)) or (_Scan is not None and isinstance(x, _Scan))
                      or (isinstance(x, Prim) and x.op in _COSTLY) for x in iter_nodes(e))
            self._expensive[id(e)] = hit
            self.keep.append(e)
        return hit

    def may_raise(self, e: Expr, env: dict) -> bool:
        """May evaluating ``e`` raise: does it contain a ``get`` whose index is not a loop
        index running over the length of that same array?"""
        loops = {}
        for v in self.fv(e):
            b = env.get(v)
            if isinstance(b, S) and b.size_expr is not None:
                loops[v] = b.size_expr
        key = (e, tuple(sorted((k, id(x)) for k, x in loops.items())))
        hit = self._raise_memo.get(key)
        if hit is None:
            hit = self._raises(e, loops, env, frozenset())
            self._raise_memo[key] = hit
        return hit

    def _raises(self, e: Expr, loops: dict, env: dict, shadow: frozenset) -> bool:
        stack = [(e, loops, shadow)]
        while stack:
            x, lp, sh = stack.pop()
            if isinstance(x, Prim) and x.op in ("div", "mod") and not (
                    isinstance(x.args[1], Int) and x.args[1].value != 0):
                return True                       # a zero divisor raises
            if isinstance(x, Get):
                i = x.index
                if not (isinstance(i, Var) and i.name in lp and self._covers(lp[i.name], x.array, env, sh)):
                    return True
            if isinstance(x, (Build, Sum)):
                stack.append((x.size, lp, sh))
                stack.append((x.body, {**lp, x.var: x.size}, sh | {x.var}))
                continue
            if isinstance(x, IFold):
                stack += [(x.init, lp, sh), (x.size, lp, sh)]
                inner = {k: s for k, s in lp.items() if k != x.acc}
                inner[x.var] = x.size
                stack.append((x.body, inner, sh | {x.acc, x.var}))
                continue
            for c, bound in scoped_children(x):
                if bound:
                    stack.append((c, {k: s for k, s in lp.items() if k not in bound}, sh | set(bound)))
                else:
                    stack.append((c, lp, sh))
        return False

    def _covers(self, size: Expr, arr: Expr, env: dict, shadow: frozenset) -> bool:
        """Does a loop over ``size`` stay inside ``arr``'s first axis (statically)?"""
        if isinstance(size, Length) and size.array == arr:
            return True
        dims = self._static_dims(arr, env, shadow)
        if not dims:
            # an array the kernel made (a let-bound build): its extents are the build's, so a
            # loop over the same size value stays inside it
            codes = self._extent_codes(arr, env, shadow)
            code = size_code(size, env, shadow)
            return bool(codes) and code is not None and code == codes[0]
        d = dims[0]
        if isinstance(size, Var) and isinstance(d, str) and size.name == d and d not in shadow:
            return True
        return isinstance(size, Int) and isinstance(d, int) and 0 <= size.value <= d

    def _extent_codes(self, arr: Expr, env: dict, shadow: frozenset):
        """The codes of the extents of an array value bound in ``env`` (a build's), per axis."""
        if isinstance(arr, Var) and arr.name not in shadow and isinstance(env.get(arr.name), Arr):
            return [d.code for d in env[arr.name].dims]
        if isinstance(arr, Get):
            d = self._extent_codes(arr.array, env, shadow)
            return d[1:] if d else None
        return None

    def _static_dims(self, arr: Expr, env: dict, shadow: frozenset):
        if isinstance(arr, Var) and arr.name not in shadow and arr.name in self.param_dims \
                and env.get(arr.name) is self.param_values.get(arr.name):
            return self.param_dims[arr.name]
        if isinstance(arr, Get):
            d = self._static_dims(arr.array, env, shadow)
            return d[1:] if d else None
        return None

    # -- expressions -----------------------------------------------------------------------
    def ev(self, e: Expr, env: dict, cur: Scope):
        t = type(e)
        if t is Num:
            v = float(e.value)
            code = repr(v) if math.isfinite(v) else ("_nan" if math.isnan(v) else "_inf" if v > 0 else "(-_inf)")
            return S(code, "f", self.root)
        if t is Int:
            return S(str(int(e.value)), "i", self.root) if e.value >= 0 else S(f"({int(e.value)})", "i", self.root)
        if t is BoolLit:
            return S("True" if e.value else "False", "b", self.root)
        if t is Var:
            try:
                return env[e.name]
            except KeyError:
                raise _Unsupported(f"unbound variable '{e.name}'") from None
        key = self.key(e, env)
        s = cur
        while s is not None:
            hit = s.memo.get(key)
            if hit is not None:
                return self.spec_use(hit, cur) if isinstance(hit, _Spec) else hit
            s = s.parent
        where = self.place(e, env, cur)
        if where is cur:
            spec = self.speculate(e, env, key, cur)
            if spec is not None:
                return spec
        v = self.materialised(e, env, where, cur)
        if v is None and t is Sum and where is cur:
            v = self.interchanged(e, env, cur)
        if v is None:
            v = self.sibling(e, env, key, where)
        if v is None:
            v = self.node(e, env, where)
        where.memo[key] = v
        self.keep.append(v)
        if id(v) not in self.origin and not isinstance(e, (Let, Fst, Snd)):
            # how it was made (index_roots, rebind); a let or a projection makes no value (an
            # accumulator's component has no term: it is not a function of the index)
            self.origin[id(v)] = (e, env)
        return v

    def node(self, e: Expr, env: dict, s: Scope):
        if isinstance(e, Prim):
            return self.prim(e, env, s)
        if isinstance(e, Let):
            pre = self._prebound.get(id(e))
            if pre is not None and pre[1] == self.bindings(e.value, env) and any(x is pre[2] for x in s.chain()):
                v = pre[0]
            else:
                v = self.fuse_sums(e, env, s) if isinstance(e.value, Sum) else None
                if v is None:
                    v = self.ev(e.value, env, s)
            return self.ev(e.body, {**env, e.name: v}, s)
        if isinstance(e, Pair):
            return P(self.ev(e.fst, env, s), self.ev(e.snd, env, s))
        if isinstance(e, (Fst, Snd)):
            p = self.ev(e.pair, env, s)
            if not isinstance(p, P):
                raise _Unsupported(f"{'fst' if isinstance(e, Fst) else 'snd'} of a non-pair")
            return p.a if isinstance(e, Fst) else p.b
        if isinstance(e, If):
            return self.if_(e, env, s)
        if isinstance(e, Get):
            return self.get(e, self.ev(e.array, env, s), self.ev(e.index, env, s), s)
        if isinstance(e, Length):
            a = self.ev(e.array, env, s)
            while isinstance(a, P):
                a = a.a
            if not isinstance(a, Arr):
                raise _Unsupported("length of a non-array")
            return a.dims[0]
        if isinstance(e, Build):
            return self.build(e, env, s)
        if isinstance(e, Sum):
            return self.sum(e, env, s)
        if isinstance(e, IFold):
            return self.ifold(e, env, s)
        if _Scan is not None and isinstance(e, _Scan):
            return self.ifold(e, env, s, states=True)
        raise _Unsupported(f"cannot compile {type(e).__name__}")

    def bindings(self, e: Expr, env: dict) -> tuple:
        """What ``e``'s free variables are bound to, in the order they first occur (the memo
        key's second half)."""
        return tuple(id(env[v]) if v in env else None for v in self.normal_form(e)[1])

    def key(self, e: Expr, env: dict) -> tuple:
        """The memo key of ``e`` in ``env``: ``e`` up to the names of its variables, and what
        its free variables are bound to -- alpha-equivalent terms of the same values
        (``(sum d (λl. q[j][l]))`` and ``(sum d (λp. q[k][p]))`` with ``j`` and ``k`` bound to
        the same index: optimised programs repeat sub-terms under other binder names) are
        computed once."""
        return self.normal_form(e)[0], self.bindings(e, env)

    def normal_form(self, e: Expr) -> tuple:
        """``e`` with its free variables renamed by the order they first occur (``%0``,
        ``%1``, ...: no identifier) and its binders by depth, and those free variables' names."""
        hit = self._normal.get(id(e))
        if hit is None:
            from ..lang.binders import _rewrite_names
            fvs = self.fv(e)
            order: list = []
            if fvs:
                for x in iter_nodes(e):
                    if isinstance(x, Var) and x.name in fvs and x.name not in order:
                        order.append(x.name)
                        if len(order) == len(fvs):
                            break
            if isinstance(e, Var) or not (fvs or any(True for _ in _binders_in(e))):
                canon = e
            else:
                canon = _rewrite_names(e, {v: Var(f"%{k}") for k, v in enumerate(order)},
                                       lambda n, sigma, level: tuple(f"v{level + k}" for k in range(len(n.binds()))),
                                       None)
            hit = (canon, tuple(order), e)
            self._normal[id(e)] = hit
        return hit

    # -- loop fusion ---------------------------------------------------------------------
    def fuse_sums(self, e: Let, env: dict, s: Scope):
        """Sibling sums in one loop: ``(let ((a (sum n f)) ... (b (sum n g)) ...) body)`` where
        ``g`` reads nothing bound from ``a`` on is one loop over ``n`` with an accumulator per
        sum (a sum of a pair), so a term both bodies compute (``exp x_i``) is computed once per
        element.  Each sum is summed as alone (its own accumulator);
        the sums must be placed in the same block and must not raise (an error would come
        from another sum than the interpreter's).  Returns the first sum's value (the others
        are bound when their ``let`` is reached), or None."""
        first = e.value
        where = self.place(first, env, s)
        if self.may_raise(first, env) or where.memo.get(self.key(first, env)) is not None:
            return None
        bound, members = {e.name}, []
        x = e.body
        while isinstance(x, Let):
            v = x.value
            if (isinstance(v, Sum) and id(x) not in self._prebound and v.size == first.size
                    and not (self.fv(v) & bound) and (v.var == first.var or first.var not in self.fv(v.body))
                    and self.place(v, env, s) is where and not self.may_raise(v, env)
                    and where.memo.get(self.key(v, env)) is None):
                members.append(x)
            bound.add(x.name)
            x = x.body
        if not members:
            return None
        bodies = [first.body] + [m.value.body if m.value.var == first.var else
                                 subst(m.value.body, m.value.var, Var(first.var)) for m in members]
        tree = bodies[-1]
        for b in reversed(bodies[:-1]):
            tree = Pair(b, tree)
        fused = Sum(first.size, first.var, tree)
        self.keep.append(fused)
        val = self.ev(fused, env, s)
        parts = []
        for _ in members:
            parts.append(val.a)
            val = val.b
        parts.append(val)
        for m, part in zip([e] + members, parts):
            key = self.key(m.value, env)
            home = _scope_of(part)    # (where, unless the fused sum was made an array: then here)
            home.memo[key] = part
            if m is not e:            # (the value, what it was computed for, the block holding it)
                self._prebound[id(m)] = (part, key[1], home)
        self.keep.append(members)
        return parts[0]

    def sibling(self, e: Expr, env: dict, key: tuple, where: Scope):
        """A term of a loop's index that an earlier loop over the same range beside this one
        computed already (``exp x_i`` in the sum of ``(let ((s (sum n (λi. exp x_i)))) (build
        n (λi. (/ (exp x_i) s))))``): that loop stores it into an array as it goes, and this
        loop reads it -- when the cost table prices recomputing it above a store and a load.
        A build that reads such an array writes its result into it (``build`` -> ``allocate``):
        element ``i`` is read before it is overwritten, and no other loop reads it.  None when
        that does not apply."""
        # (also from a speculated term's function: it takes the kernel's arrays it reads as
        # parameters, and is called after the loops before it in the blocks around it)
        loop = next((x for x in where.chain() if x.kind == "loop"), None)
        if loop is None or loop.index is None:
            return None
        cands = self.sibling_loops(loop)
        if not cands:
            return None
        i = loop.index
        if self.recompute_cost(e) <= self.store_cost():
            return None
        # the same term of the same index's values, whatever the loops name them (``term_id``)
        try:
            ck = self.term_id(e, env, loop, {}, self._vid.setdefault(id(loop), {}))
        except KeyError:
            return None
        if not self._hc_dep[ck]:
            return None                      # (not a function of the index)
        for enclosing, rec in cands:
            if rec.canon is None:
                rec.canon, memo = {}, self._vid.setdefault(id(rec.body), {})
                for v in list(rec.body.memo.values()):
                    if isinstance(v, S) and id(v) in self.origin:
                        try:
                            rec.canon.setdefault(self.value_id(v, rec.body, memo), v)
                        except KeyError:
                            pass
            old = rec.canon.get(ck)
            if old is None:
                continue
            k2 = ck
            arr = rec.stored.get(k2)
            if arr is None:
                arr = self.tmp("_s")
                self.allocs.append("the values a loop shares with a later one")
                at = next(k for k, ln in enumerate(enclosing.lines) if ln is rec.line)
                lines = self.alloc_lines(arr, old.dt, [rec.extent], enclosing)
                enclosing.lines[at:at] = lines
                self.sib_allocs.append((arr, old.dt, rec, enclosing, lines, len(self.allocs) - 1))
                rec.body.emit(f"{arr}[{self.unsigned(rec.index)}] = {old.code}")
                rec.stored[k2] = arr
            if enclosing is loop.parent:
                # (a build may write its result into it: read nowhere else -- not so for a
                # loop of an outer block, which later iterations of this one read again)
                loop.borrowed.append((arr, old.dt, rec, k2))
            else:
                # read by a loop nested in another one: every element, in every iteration of
                # the outer loop -- a build over the outer loop must not overwrite it
                self.read_deep.add(arr)
            return self.let_scalar(f"{arr}[{self.unsigned(i)}]", old.dt, where)
        return None

    def hc(self, head: tuple, kids: tuple = ()) -> int:
        """A number for a node (``head``) of numbered children: equal numbers, equal terms."""
        k = (head, kids)
        n = self._hc.get(k)
        if n is None:
            n = self._hc[k] = len(self._hc)
            self._hc_dep.append(head == ("index",) or any(self._hc_dep[c] for c in kids))
        return n

    def term_id(self, e: Expr, env: dict, loop: Scope, local: dict, memo: dict, depth: int = 0) -> int:
        """``e`` as a function of ``loop``'s index (``hc``): variables bound inside the loop
        (its body and branches) stand for the terms that made their values, however a loop
        spells them (inline or ``let``-bound); the index is ``("index",)``; values from
        outside the loop are themselves; a loop's own binders are numbered by their depth
        inside ``e`` (``(sum d (λk. ...))`` and ``(sum d (λc. ...))`` alike), so a term holding
        a loop -- a row's quadratic form -- is found as well.  KeyError for what has no such
        form (a value inside the loop of no known term: an accumulator, an inner loop's index)."""
        t = type(e)
        if t is Var:
            return local[e.name] if e.name in local else self.value_id(env[e.name], loop, memo)
        if t in (Num, Int, BoolLit):
            return self.hc(("lit", t.__name__, repr(e.value)))       # (repr: -0.0 is not 0.0)
        if t is Let:
            v = self.term_id(e.value, env, loop, local, memo, depth)
            return self.term_id(e.body, env, loop, {**local, e.name: v}, memo, depth)
        if t is Prim:
            return self.hc(("prim", e.op), tuple(self.term_id(x, env, loop, local, memo, depth) for x in e.args))
        kids = _TERM_FIELDS.get(t)
        if kids is not None:
            return self.hc((t.__name__,), tuple(self.term_id(getattr(e, f), env, loop, local, memo, depth)
                                                for f in kids))
        if t in _LOOPS:
            outer = [self.term_id(e.size, env, loop, local, memo, depth)]
            if t is not Build and t is not Sum:          # ifold, scan: the initial value too
                outer.append(self.term_id(e.init, env, loop, local, memo, depth))
            inner = dict(local)
            for k, name in enumerate(e.binds()):
                inner[name] = self.hc(("bound", depth + k))
            body = self.term_id(e.body, env, loop, inner, memo, depth + len(e.binds()))
            return self.hc((t.__name__,), (*outer, body))
        raise KeyError(t.__name__)

    def value_id(self, v, loop: Scope, memo: dict) -> int:
        """A value as a function of ``loop``'s index (``term_id``); ``memo``: the numbers
        of the values already seen for that loop (-1: being made, or has none)."""
        hit = memo.get(id(v))
        if hit is not None:
            if hit < 0:
                raise KeyError("cycle")
            return hit
        memo[id(v)] = -1
        self.keep.append(v)                     # (its id stays its own while it is a key)
        if isinstance(v, P):
            r = self.hc(("pair",), (self.value_id(v.a, loop, memo), self.value_id(v.b, loop, memo)))
        elif v is loop.index:
            r = self.hc(("index",))
        elif not isinstance(v, S) or loop not in _scope_of(v).chain():
            r = self.hc(("value", id(v)))
        else:
            oe, oenv = self.origin[id(v)]
            r = self.term_id(oe, oenv, loop, {}, memo)
        memo[id(v)] = r
        return r

    @staticmethod
    def sibling_loops(loop: Scope) -> list:
        """The finished loops over ``loop``'s range whose values ``loop`` may read, latest
        first, with the block holding each: its siblings, then those of the blocks it is
        nested in (a loop over ``b`` inside a loop over rows reads what a loop over ``b``
        before that row loop computed: each row recomputed it otherwise)."""
        out = [(loop.parent, r) for r in reversed(loop.siblings)]
        size = loop.index.size.code if loop.index.size is not None else None
        s = loop.parent
        while s is not None and s.parent is not None and size is not None:
            out += [(s.parent, r) for r in reversed(s.parent.loops) if r.size == size and r.body is not s]
            s = s.parent
        return out

    def hoist_scratch(self) -> None:
        """An array of sibling values (``sibling``) allocated inside a loop is allocated once,
        where its extent is defined, and reused by every iteration (an allocation per
        iteration costs more than the values it saves when the extent is small) -- unless a
        build wrote its result into it (``reusable``): that array is a value, which may
        outlive the iteration.  Not out of a speculated term's function."""
        taken = set(self.alias.values())
        for arr, dt, rec, enclosing, lines, which in self.sib_allocs:
            if arr not in taken and rec.index.size is not None:
                self.move_alloc(arr, dt, [rec.extent], enclosing, lines, which, rec.index.size.scope)
        # a build's vector allocated inside a loop that is only indexed (read, written, its
        # shape, an argmin/argmax of it) -- never bound to another name, passed, stored or
        # returned -- lives for one iteration: one array, reused
        import re
        if not self.loop_allocs:
            return
        text = "\n".join(_render(self.root, 0, []))
        for name, dt, ext, enclosing, lines, which, target in self.loop_allocs:
            ok = True
            for m in re.finditer(rf"\b{name}\b", text):
                after, before = text[m.end():m.end() + 7], text[max(0, m.start() - 8):m.start()]
                if after.startswith("[") or after.startswith(".shape") or after.startswith(" = ") or (
                        after.startswith(")") and before in ("_argmin(", "_argmax(")):
                    continue
                ok = False
                break
            if ok and text.count(f"{name} = ") == 1:
                self.move_alloc(name, dt, ext, enclosing, lines, which, target)

    def move_alloc(self, arr: str, dt: str, ext: list, enclosing: Scope, lines: list, which: int,
                   target: Scope) -> None:
        """Move the allocation ``lines`` of ``arr`` from ``enclosing`` to ``target`` (an
        enclosing block, out of at least one loop, not out of a speculated term's function),
        before the block holding ``enclosing``."""
        chain = enclosing.chain()
        if target not in chain or target is enclosing:
            return
        between = chain[:chain.index(target)]
        if any(x.kind == "try" for x in between) or not any(x.kind == "loop" for x in between):
            return
        child = between[-1]
        at = next((k for k, ln in enumerate(target.lines) if isinstance(ln, tuple) and ln[1] is child), None)
        if at is None or "prange(" in target.lines[at][0]:     # (threads would share it)
            return
        for ln in lines:
            k = next(k for k, x in enumerate(enclosing.lines) if x is ln)
            del enclosing.lines[k]
        msg, self.allocs = self.allocs, self.allocs[:which + 1]      # (the same message number)
        new = self.alloc_lines(arr, dt, ext, target)
        self.allocs = msg
        target.lines[at:at] = new

    def recompute_cost(self, e: Expr) -> float:
        """Per element, what computing ``e`` costs (the backend's cost table: its operations;
        a loop inside is never worth recomputing)."""
        c = self._recompute.get(id(e))
        if c is None:
            model = _cost_model()
            from ..cost.model import _ctor
            c = 0.0
            for x in iter_nodes(e):
                if isinstance(x, (Sum, IFold, Build)) or (_Scan is not None and isinstance(x, _Scan)):
                    c = math.inf
                    break
                if isinstance(x, (Prim, Get)):
                    c += model.op_cost(_ctor(x))
            self._recompute[id(e)] = c
            self.keep.append(e)
        return c

    @staticmethod
    def load_cost() -> float:
        """A value loaded from an array in a loop (the cost table)."""
        return _cost_model().op_cost("GetAxis")

    @staticmethod
    def store_cost() -> float:
        """A value stored into an array in one loop and loaded in another (the cost table)."""
        model = _cost_model()
        return model.op_cost("Build") + model.op_cost("GetAxis")

    def register_loop(self, s: Scope, n: S, var: str, i: S, body: Scope, line: tuple) -> None:
        ext = n.code if (n.code.isdigit() or n.code in self.nonneg) else f"max({n.code}, 0)"
        s.loops.append(_Loop(n.code, var, i, body, line, ext))

    def open_loop(self, s: Scope, n: S, i: S, loop: Scope) -> None:
        """A new loop over ``n`` in ``s``: the earlier loops over ``n`` there are its siblings."""
        loop.index = i
        loop.siblings = [r for r in s.loops if r.size == n.code]

    def scalar(self, v, what: str) -> S:
        if not isinstance(v, S):
            raise _Unsupported(f"{what} of a non-scalar")
        return v

    def prim(self, e: Prim, env: dict, s: Scope):
        op = e.op
        if op in ("and", "or"):
            a = self.scalar(self.ev(e.args[0], env, s), op)
            # short-circuit: the second operand only runs when it decides
            return self.branch(a.code if op == "and" else f"not {a.code}", e.args[1],
                               S("False" if op == "and" else "True", "b", self.root), env, s)
        if op in ARG_EXTREMES:
            a = self.ev(e.args[0], env, s)
            if not isinstance(a, Arr) or a.rank != 1:
                raise _Unsupported(f"{op} of a non-vector")
            self.helpers.add(op)
            return self.let_scalar(f"{_HELPERS[op][0]}({a.code})", "i", s)
        args = [self.scalar(self.ev(a, env, s), op) for a in e.args]
        if op in ("div", "mod"):
            # floor semantics (Python's // and %, as Numba's on int64); a zero divisor is
            # the interpreter's EvalError (ZeroDivisionError(which) -> numba_backend)
            a, b = args
            if not (b.code.isdigit() and int(b.code) != 0):
                self.divs.append(_show(e, 100))
                s.emit(f"if {b.code} == 0: {self.raise_stmt(s, 1, str(len(self.divs) - 1))}")
            return self.let_scalar(f"({a.code} {'//' if op == 'div' else '%'} {b.code})", "i", s)
        if op == "not":
            return self.let_scalar(f"not {args[0].code}", "b", s)
        if op in _CMP:
            return self.let_scalar(f"({args[0].code} {_CMP[op]} {args[1].code})", "b", s)
        if op in ("+", "-", "*"):
            dt = "i" if args[0].dt == "i" and args[1].dt == "i" else "f"
            return self.let_scalar(f"({args[0].code} {op} {args[1].code})", dt, s)
        if op == "/":
            return self.let_scalar(f"({self.real(args[0])} / {self.real(args[1])})", "f", s)
        if op == "real":
            return self.let_scalar(f"float({args[0].code})", "f", s)
        if op == "pow":
            k = _int_exponent(e.args[1])
            b = self.real(args[0])
            if k is not None:
                # small integer powers are multiplications (as the NumPy backend does)
                if k == 0:
                    return S("1.0", "f", self.root)
                sq = self.let_scalar(f"({b} * {b})", "f", s) if abs(k) >= 2 else None
                code = {1: b, 2: sq.code if sq else b, 3: f"({sq.code if sq else b} * {b})",
                        4: f"({sq.code if sq else b} * {sq.code if sq else b})"}[abs(k)]
                return self.let_scalar(code if k > 0 else f"(1.0 / {code})", "f", s)
            return self.let_scalar(f"_vpow({b}, {self.real(args[1])})", "f", s)
        if op == "neg":
            return self.let_scalar(f"(-{self.real(args[0])})", "f", s)
        if op in REAL_FNS and op in _SCALAR_FN:
            return self.let_scalar(f"{_SCALAR_FN[op]}({', '.join(self.real(a) for a in args)})", "f", s)
        raise _Unsupported(f"the operator {op!r}")

    @staticmethod
    def real(a: S) -> str:
        return a.code if a.dt == "f" else f"float({a.code})"

    def branch(self, cond: str, then: Expr, other, env: dict, s: Scope):
        """``if cond then <then> else <other>`` for a scalar result (``other`` a value)."""
        th = Scope(s, "branch")
        tv = self.scalar(self.ev(then, env, th), "a condition")
        r = self.tmp()
        th.emit(f"{r} = {tv.code}")
        el = Scope(s, "branch")
        el.emit(f"{r} = {other.code}")
        s.emit((f"if {cond}:", th))
        s.emit(("else:", el))
        return S(r, "b", s)

    def if_(self, e: If, env: dict, s: Scope):
        c = self.scalar(self.ev(e.cond, env, s), "if")
        th, el = Scope(s, "branch"), Scope(s, "branch")
        tv = self.ev(e.then, env, th)
        evv = self.ev(e.else_, env, el)
        out = self.merge(tv, evv, th, el, s)
        s.emit((f"if {c.code}:", th))
        s.emit(("else:", el))
        return out

    def merge(self, tv, ev, th: Scope, el: Scope, s: Scope):
        """One variable per leaf, assigned in both branches."""
        if isinstance(tv, P) or isinstance(ev, P):
            if not (isinstance(tv, P) and isinstance(ev, P)):
                raise _Unsupported("if with a pair in one branch only")
            return P(self.merge(tv.a, ev.a, th, el, s), self.merge(tv.b, ev.b, th, el, s))
        r = self.tmp()
        if isinstance(tv, S) and isinstance(ev, S):
            dt = tv.dt if tv.dt == ev.dt else "f"
            th.emit(f"{r} = {tv.code if dt == tv.dt else self.real(tv)}")
            el.emit(f"{r} = {ev.code if dt == ev.dt else self.real(ev)}")
            return S(r, dt, s)
        if isinstance(tv, Arr) and isinstance(ev, Arr) and tv.rank == ev.rank and tv.dt == ev.dt:
            th.emit(f"{r} = {tv.code}")
            el.emit(f"{r} = {ev.code}")
            dims = tuple(a if a.code == b.code else S(f"{r}.shape[{k}]", "i", s)
                         for k, (a, b) in enumerate(zip(tv.dims, ev.dims)))
            return Arr(r, (), tv.rank, tv.dt, dims, s, tv.fresh and ev.fresh)
        raise _Unsupported("if with branches of different kinds")

    def get(self, e: Get, a, k, s: Scope):
        if isinstance(a, P):
            return P(self.get(e, a.a, k, s), self.get(e, a.b, k, s))
        if not isinstance(a, Arr):
            raise _Unsupported("get of a non-array")
        k = self.scalar(k, "an index")
        if k.dt != "i":
            raise _Unsupported("a non-integer index")
        n = a.dims[0]
        if k.bound is None or k.bound != n.code:
            # one check per index and extent where an earlier one (in this block or an
            # enclosing one: it ran before) has not passed already -- not for an
            # accumulator (reassigned by its loop)
            ck = ("checked", k.code, n.code)
            seen = _REASSIGNED.search(k.code + " " + n.code) is None and any(ck in x.memo for x in s.chain())
            if not seen:
                self.gets.append(_show(e, 100))
                s.emit(f"if not 0 <= {k.code} < {n.code}: "
                       f"{self.raise_stmt(s, 0, k.code, n.code, str(len(self.gets) - 1))}")
                s.memo[ck] = True
            code = k.code
        else:
            code = self.unsigned(k)
        sc = _deepest(a.scope, k.scope)
        if a.rank == 1:
            return self.let_scalar(f"{a.base}[{', '.join(a.idx + (code,))}]", a.dt, s)
        return Arr(a.base, a.idx + (code,), a.rank - 1, a.dt, a.dims[1:], sc, False)

    def unsigned(self, k: S) -> str:
        """The loop index ``k`` as a uint64, for indexing: Numba adds the length to a negative
        signed index, a test in every iteration that stops LLVM from vectorising the loop
        unless it can prove the index is never negative (it cannot for a loop that starts
        at a chunk's offset); an unsigned index has no such test."""
        if k.ucode is None:
            k.ucode = self.tmp("_u")
            k.scope.lines.insert(0, f"{k.ucode} = np.uint64({k.code})")
        return k.ucode

    # -- loops -------------------------------------------------------------------------
    def size(self, e: Expr, env: dict, s: Scope) -> S:
        n = self.scalar(self.ev(e, env, s), "a size")
        if n.dt != "i":
            raise _Unsupported("a non-integer size")
        return n

    def extent(self, n: S, s: Scope) -> S:
        """``max(n, 0)`` (an allocation's extent; a loop over a negative size is empty), in
        scope ``s``; sizes known to be >= 0 are used as they are."""
        if n.code.isdigit() or n.code in self.nonneg:
            return n
        return self.let_scalar(f"max({n.code}, 0)", "i", s)

    def index(self, code: str, n: S, size: Expr, loop: Scope) -> S:
        i = S(code, "i", loop, bound=n.code, size_expr=size, size=n)
        self.keep.append(i)
        return i

    def loop_header(self, i: S, n: S, s: Scope) -> str:
        rng = "prange" if self.parallel and s is self.root else "range"
        return f"for {i.code} in {rng}({n.code}):"

    def build(self, e: Build, env: dict, s: Scope):
        dest = _Dest(s)
        n = self.size(e.size, env, s)
        loop = Scope(s, "loop")
        i = self.index(self.fresh_name(e.var), n, e.size, loop)
        self.open_loop(s, n, i, loop)
        self.into(e.body, {**env, e.var: i}, loop, dest, (), (i.code,), (self.extent(n, s),))
        out = self.allocate(dest, s, self.reusable(dest, loop))
        line = (self.loop_header(i, n, s), loop)
        s.emit(line)
        self.register_loop(s, n, e.var, i, loop, line)
        return out

    def reusable(self, dest: _Dest, loop: Scope) -> dict:
        """The output a one-dimensional build can write into an array of sibling values it
        reads (``sibling``): element ``i`` of that array is read in iteration ``i`` only,
        before the store.  The array is then no longer the sibling loop's (a later reader
        gets an array of its own)."""
        if len(dest.leaves) != 1 or () not in dest.leaves or not loop.borrowed:
            return {}
        name, dt, ext = dest.leaves[()]
        if len(ext) != 1:
            return {}
        for arr, adt, rec, k2 in loop.borrowed:
            if adt == dt and rec.stored.get(k2) == arr and arr not in self.read_deep:
                del rec.stored[k2]
                return {(): arr}
        return {}

    def fresh_name(self, var: str) -> str:
        """A loop index's name in the kernel: its own when that is free, else a new one
        (shadowed and reused names, names the module uses)."""
        if not _pyname_ok(var) or var in self.used_names:
            return self.tmp("_i")
        self.used_names.add(var)
        return var

    def into(self, e: Expr, env: dict, s: Scope, dest: _Dest, path: tuple, idx: tuple, extents: tuple):
        """Generate ``e`` and store it at ``idx`` of the outputs of ``dest`` (leaf ``path``):
        nested builds write straight into the outermost build's arrays."""
        if isinstance(e, Let):
            v = self.ev(e.value, env, s)
            return self.into(e.body, {**env, e.name: v}, s, dest, path, idx, extents)
        if isinstance(e, Pair):
            self.into(e.fst, env, s, dest, path + (0,), idx, extents)
            self.into(e.snd, env, s, dest, path + (1,), idx, extents)
            return
        if isinstance(e, Build):
            n = self.size(e.size, env, s)
            if n.scope.depth <= dest.scope.depth:
                loop = Scope(s, "loop")
                j = self.index(self.fresh_name(e.var), n, e.size, loop)
                self.open_loop(s, n, j, loop)
                self.into(e.body, {**env, e.var: j}, loop, dest, path, idx + (j.code,),
                          extents + (self.extent(n, dest.scope),))
                s.emit((f"for {j.code} in range({n.code}):", loop))
                return
            raise _Unsupported("a build whose size depends on an index variable (a ragged array)")
        v = self.ev(e, env, s)
        for sub, leaf in _leaves(v):
            self.store(dest, path + sub, idx, extents, leaf, s)

    def store(self, dest: _Dest, path: tuple, idx: tuple, extents: tuple, leaf, s: Scope):
        if isinstance(leaf, Arr):
            if any(d.scope.depth > dest.scope.depth for d in leaf.dims):
                raise _Unsupported("array elements whose shape depends on an index variable")
            ext = extents + leaf.dims
        else:
            ext = extents
        name = self.dest_leaf(dest, path, leaf.dt, ext)
        s.emit(f"{name}[{', '.join(idx)}] = {leaf.code}")     # an array leaf: a row copy

    def dest_leaf(self, dest: _Dest, path: tuple, dt: str, ext: tuple) -> str:
        old = dest.leaves.get(path)
        if old is None:
            name = self.tmp("_o")
            dest.leaves[path] = (name, dt, ext)
            return name
        name, odt, oext = old
        if odt != dt or [x.code for x in oext] != [x.code for x in ext]:
            raise _Unsupported("a build whose elements differ in kind or shape")
        return name

    def allocate(self, dest: _Dest, s: Scope, reuse: dict | None = None):
        vals = {}
        for path, (name, dt, ext) in dest.leaves.items():
            if reuse and path in reuse:
                s.emit(f"{name} = {reuse[path]}")          # (build: reusable)
                self.alias[name] = reuse[path]
                vals[path] = Arr(name, (), len(ext), dt, tuple(ext), s, True)
                continue
            self.allocs.append(f"build of {len(ext)}-d array")
            lines = self.alloc_lines(name, dt, [x.code for x in ext], s)
            for ln in lines:
                s.emit(ln)
            if s is not self.root and len(ext) == 1:     # (a rank-1 array: indexing it gives a scalar, no view)
                target = _deepest(self.root, *(x.scope for x in ext))
                self.loop_allocs.append((name, dt, [x.code for x in ext], s, lines, len(self.allocs) - 1, target))
            vals[path] = Arr(name, (), len(ext), dt, tuple(ext), s, True)
        return _tree(vals, ())

    def alloc_lines(self, name: str, dt: str, ext: list, s: Scope) -> list:
        """The lines allocating array ``name`` (extents ``ext``, code) in ``s``, after the size
        limit check (message: the last entry of ``allocs``).  In the kernel's top block the
        array is a pool slot: the caller's array ``_pool<k>`` when it has that shape."""
        count = " * ".join(ext)
        lines = [f"if {count} > _lim: {self.raise_stmt(s, 2, count, str(len(self.allocs) - 1))}"]
        shape = ", ".join(ext) + ("," if len(ext) == 1 else "")
        fresh = f"np.empty(({shape}), {_DTYPE[dt]})"
        if s is self.root:
            arg = f"_pool{len(self.pool)}"
            self.pool.append((name, dt, len(ext)))
            same = " and ".join(f"{arg}.shape[{k}] == {x}" for k, x in enumerate(ext))
            lines.append(f"{name} = {arg} if {same} else {fresh}")
        else:
            lines.append(f"{name} = {fresh}")
        return lines

    def sum(self, e: Sum, env: dict, s: Scope):
        n = self.size(e.size, env, s)
        loop = Scope(s, "loop")
        i = self.index(self.fresh_name(e.var), n, e.size, loop)
        self.open_loop(s, n, i, loop)
        v = self.ev(e.body, {**env, e.var: i}, loop)
        leaves = _leaves(v)
        vals = {}
        for path, leaf in leaves:
            acc = self.tmp()
            if isinstance(leaf, Arr):
                if any(d.scope.depth > s.depth for d in leaf.dims):
                    raise _Unsupported("a sum of arrays whose shape depends on the index")
                shape = ", ".join(d.code for d in leaf.dims) + ("," if leaf.rank == 1 else "")
                s.emit(f"{acc} = np.zeros(({shape}), {_DTYPE[leaf.dt]})")
                vals[path] = Arr(acc, (), leaf.rank, leaf.dt, leaf.dims, s, True)
                loop.emit(f"{acc} += {leaf.code}")
                continue
            s.emit(f"{acc} = {_ZERO[leaf.dt] if leaf.dt != 'b' else '0'}")
            vals[path] = S(acc, leaf.dt if leaf.dt != "b" else "i", s)
            if leaf.dt == "f":
                # the one add that may be reassociated (_numba_math.sum_add): LLVM keeps
                # several partial sums in vector registers; a strict accumulator would not vectorise
                loop.emit(f"{acc} = _radd({acc}, {leaf.code})")
                self.helpers.add("sum_add")
            else:
                loop.emit(f"{acc} += {leaf.code}")
        line = (f"for {i.code} in range({n.code}):", loop)
        s.emit(line)
        self.register_loop(s, n, e.var, i, loop, line)
        return _tree(vals, ())

    def ifold(self, e: IFold, env: dict, s: Scope, states: bool = False):
        """An ``ifold``: one local per accumulator leaf, updated in a ``for`` loop.  With
        ``states`` (a ``scan``), every state is also stored, in an array of ``n + 1``."""
        init = self.ev(e.init, env, s)
        if not states and isinstance(init, S) and init.dt == "f":
            # (ifold (λacc i. (+ acc t)) init n) with t not reading acc: init + (sum n (λi. t)),
            # as the NumPy backend computes it (cost/semantics.py: fold_shape)
            core, wrap = peel_lets(e.body, e.acc)
            shape = fold_shape(core, e.acc, lambda x: e.acc not in free_vars(x))
            if shape is not None and shape.kind in ("sum", "sub"):
                total = Sum(e.size, e.var, wrap(shape.term))
                self.keep.append(total)
                t = self.ev(total, env, s)
                return self.let_scalar(f"({init.code} {'+' if shape.kind == 'sum' else '-'} {t.code})", "f", s)
        n = self.size(e.size, env, s)
        loop = Scope(s, "loop")
        i = self.index(self.fresh_name(e.var), n, e.size, loop)
        accs, inner, outs = {}, {}, {}
        if states:
            count = self.let_scalar(f"max({n.code}, 0) + 1", "i", s)
            dest = _Dest(s)
        for path, leaf in _leaves(init):
            a = self.tmp("_a")
            s.emit(f"{a} = {leaf.code}")
            if states:
                outs[path] = self.dest_leaf(dest, path, leaf.dt, (count,) + (leaf.dims if isinstance(leaf, Arr) else ()))
            accs[path] = (a, leaf)
            if isinstance(leaf, Arr):
                inner[path] = Arr(a, (), leaf.rank, leaf.dt, leaf.dims, loop, False)
            else:
                inner[path] = S(a, leaf.dt, loop)
        acc_val = _tree(inner, ())
        self.keep.append(acc_val)
        body = self.ev(e.body, {**env, e.acc: acc_val, e.var: i}, loop)
        bl = dict(_leaves(body))
        if set(bl) != set(accs):
            raise _Unsupported("an ifold whose body does not match its accumulator")
        temps = []
        for path, (a, leaf) in accs.items():
            b = bl[path]
            if isinstance(b, Arr) != isinstance(leaf, Arr):
                raise _Unsupported("an ifold whose body does not match its accumulator")
            t = self.tmp()
            code = self.real(b) if isinstance(b, S) and leaf.dt == "f" and b.dt != "f" else b.code
            loop.emit(f"{t} = {code}")
            temps.append((a, t))
        for a, t in temps:
            loop.emit(f"{a} = {t}")
        for path, o in outs.items():
            loop.emit(f"{o}[{i.code} + 1] = {accs[path][0]}")
        if states:
            stored = self.allocate(dest, s)
            for path, o in outs.items():
                s.emit(f"{o}[0] = {accs[path][0]}")
        s.emit((f"for {i.code} in range({n.code}):", loop))
        if states:
            return stored
        out = {}
        for path, (a, leaf) in accs.items():
            b = bl[path]
            if isinstance(leaf, Arr):
                if b.rank != leaf.rank or b.dt != leaf.dt:
                    raise _Unsupported("an ifold whose body does not match its accumulator")
                dims = tuple(x if x.code == y.code else S(f"{a}.shape[{k}]", "i", s)
                             for k, (x, y) in enumerate(zip(leaf.dims, b.dims)))
                out[path] = Arr(a, (), leaf.rank, leaf.dt, dims, s, leaf.fresh and b.fresh)
            else:
                dt = "f" if "f" in (leaf.dt, b.dt) else leaf.dt
                out[path] = S(a, dt, s)
        return _tree(out, ())


# names the kernel assigns more than once: accumulators (an index check on one is not reused)
_REASSIGNED = __import__("re").compile(r"\b_a\d+")


def _binders_in(e: Expr):
    return (x for x in iter_nodes(e) if x.binds())


def _tree(vals: dict, path: tuple):
    if path in vals:
        return vals[path]
    return P(_tree(vals, path + (0,)), _tree(vals, path + (1,)))


# ---------------------------------------------------------------------------------------
# whole programs
# ---------------------------------------------------------------------------------------
def _kind(t: Type) -> str:
    leaf = scalar_leaf(t)
    if isinstance(leaf, RealT):
        return "f"
    if isinstance(leaf, (IndexT, SizeT)):
        return "i"
    if isinstance(leaf, BoolT):
        return "b"
    raise _Unsupported(f"parameters of type {t}")


def param_leaves(prog: Program, py: dict[str, str]) -> list[tuple[str, str, Type]]:
    """The kernel arguments of the parameters: (parameter, argument name, leaf type);
    a pair parameter gives one argument per component."""
    out = []

    def walk(name: str, code: str, t: Type):
        if isinstance(t, PairT):
            walk(name, code + "_0", t.fst)
            walk(name, code + "_1", t.snd)
        else:
            out.append((name, code, t))
    for p in prog.params:
        walk(p.name, py[p.name], p.type)
    return out


def generate_kernel(prog: Program, parallel: bool = False, names: tuple[dict, dict] | None = None) -> Kernel:
    """The kernel module of an *elaborated* ``prog`` (raises ``_Unsupported`` for what the
    loop generator does not handle).  ``names``: the Python names of the parameters and
    size names (default: their own names where they are safe identifiers)."""
    from ..lang.binders import call_deep
    from ..lang.typecheck import annotate, elaborate, program_env
    prog = elaborate(prog)
    py, size_py = names if names is not None else default_names(prog)
    g = _Gen(prog, parallel)
    g.types = annotate(prog.body, program_env(prog))     # (elaborated: keyed by its nodes' ids)
    g.used_names = set(py.values()) | set(size_py.values()) | _MODULE_NAMES
    g.nonneg = set(size_py.values())
    env: dict = {}
    args, arg_types = [], []
    leaves = param_leaves(prog, py)
    by_param: dict[str, list] = {}
    for name, code, t in leaves:
        by_param.setdefault(name, []).append((code, t))
    for p in prog.params:
        vals = []
        for code, t in by_param[p.name]:
            k = _kind(t)
            if isinstance(t, ArrayT):
                dims = tuple(S(str(d), "i", g.root) if isinstance(d, int) else
                             S(size_py[d], "i", g.root) if isinstance(d, str) else
                             S(f"{code}.shape[{ax}]", "i", g.root) for ax, d in enumerate(array_sizes(t)))
                vals.append(Arr(code, (), len(dims), k, dims, g.root, False))
                arg_types.append((k, len(dims)))
            else:
                vals.append(S(code, k, g.root))
                arg_types.append((k, 0))
            args.append(code)
        env[p.name] = vals[0] if len(vals) == 1 else _pair_of(vals, p.type)
        g.param_values[p.name] = env[p.name]
        if isinstance(p.type, ArrayT):
            g.param_dims[p.name] = array_sizes(p.type)
    for s_name, s_code in size_py.items():
        if s_name not in env:
            env[s_name] = S(s_code, "i", g.root)
        args.append(s_code)
        arg_types.append(("i", 0))
    args.append("_lim")
    arg_types.append(("i", 0))
    result = call_deep(g.ev, prog.body, env, g.root, what="program")
    g.hoist_scratch()
    # results never share memory with an input (nor with another part of the result)
    rets, seen, out_kinds = [], set(), {}
    slot_of = {name: k for k, (name, _, _) in enumerate(g.pool)}
    returned: dict[int, int] = {}
    for path, leaf in _leaves(result):
        if isinstance(leaf, Arr):
            code = leaf.code
            target = g.alias.get(code, code)
            if not leaf.fresh or leaf.idx or code in seen or target in seen:
                code = f"np.copy({code})"
            elif target in slot_of and slot_of[target] not in returned:
                returned[slot_of[target]] = len(rets)
            seen.update((leaf.code, target))
            out_kinds[path] = (leaf.dt, leaf.rank)
        else:
            code = leaf.code
            out_kinds[path] = (leaf.dt, 0)
        rets.append(code)
    pool = []
    extra = []
    for k, (name, dt, rank) in enumerate(g.pool):
        if k in returned:
            pool.append((dt, rank, returned[k]))
        else:
            pool.append((dt, rank, None))
            extra.append(name)
    g.root.emit(f"return ({', '.join(rets + extra)},)")
    for k, (_name, dt, rank) in enumerate(g.pool):
        args.append(f"_pool{k}")
        arg_types.append((dt, rank))
    funcs: list = []
    lines = _render(g.root, 1, funcs)
    flags = "cache=_CACHE, fastmath=False, error_model='numpy'"
    head = ["import math", "import numpy as np", "from numba import njit, prange", "",
            ("from eqsat_ad.backend._numba_math import " + ", ".join(f"{f} as _v{f}" for f in _VEC_MATH)
             + f"  # version {_math_version()}"),
            "_inf = math.inf", "_nan = math.nan", "_CACHE = True", ""]
    helpers = []
    for h in sorted(g.helpers):
        code = _HELPERS[h][1]
        helpers += [code] if code.startswith("from ") else [f"@njit({flags})", code]
    for f in funcs:                 # speculated terms (_Gen.speculate), callees first
        helpers += [f"@njit({flags})", f]
    kflags = flags + (", parallel=True" if parallel else "")
    src = "\n".join(head + helpers + [f"@njit({kflags})",
                                      f"def _kernel({', '.join(args)}):"] + lines) + "\n"
    return Kernel(src, args, arg_types, _out_tree(out_kinds, ()), g.gets, g.allocs, parallel, g.divs, pool)


def _cost_model():
    """The Numba backend's cost table (``eqsat_ad/cost/opcosts-numba.json``): what the code
    generator's choices (``_Gen.sibling``) are priced by, as the extractor prices programs."""
    global _COSTS
    if _COSTS is None:
        from pathlib import Path

        from ..cost.model import CostModel
        path = Path(__file__).resolve().parent.parent / "cost" / "opcosts-numba.json"
        _COSTS = CostModel.from_json(path) if path.exists() else CostModel()
    return _COSTS


_COSTS = None


def _math_version() -> str:
    """A hash of ``_numba_math.py``: part of every kernel's text, so that a cached kernel
    compiled against other helpers is not used (Numba's cache only watches the kernel's file)."""
    global _MATH_VERSION
    if _MATH_VERSION is None:
        import hashlib
        from pathlib import Path
        _MATH_VERSION = hashlib.sha256(Path(__file__).with_name("_numba_math.py").read_bytes()).hexdigest()[:12]
    return _MATH_VERSION


_MATH_VERSION: str | None = None


def _pair_of(vals: list, t: Type):
    it = iter(vals)

    def walk(tt):
        if isinstance(tt, PairT):
            return P(walk(tt.fst), walk(tt.snd))
        return next(it)
    return walk(t)


def _out_tree(kinds: dict, path: tuple):
    """Leaves ``(kind, rank)``; a pair is a list of two trees."""
    if path in kinds:
        return kinds[path]
    return [_out_tree(kinds, path + (0,)), _out_tree(kinds, path + (1,))]


def _render(scope: Scope, depth: int, funcs: list | None = None) -> list[str]:
    """The lines of ``scope`` at indentation ``depth``; a speculated term is a call, its
    function's source is appended to ``funcs``."""
    out = []
    pad = "    " * depth
    for ln in scope.lines:
        if isinstance(ln, tuple):
            header, inner = ln
            out.append(pad + header)
            body = _render(inner, depth + 1, funcs)
            out += body if body else [pad + "    pass"]
        elif isinstance(ln, _Spec):
            params, src = _spec_function(ln, funcs)
            names = list(ln.err) + [r[0] for r in ln.results]
            out.append(pad + f"{', '.join(names)}, = {ln.name}({', '.join(params)})")
        else:
            out.append(pad + ln)
    return out


def _spec_function(rec: _Spec, funcs: list) -> tuple[list, str]:
    """The function computing a speculated term (``_Gen.speculate``): its parameters (the
    names its body reads and does not define: the kernel's values) and its source, added
    to ``funcs``.  It returns (-1, 0, 0, 0, results...) or, where the term fails, the
    error's kind and arguments and the results' placeholders."""
    import ast
    import builtins
    body = _render(rec.body, 1, funcs)
    ph = ", ".join(r[2] for r in rec.results)
    body = [ln.replace(_PLACEHOLDERS, ph) for ln in body]
    body.append(f"    return (-1, 0, 0, 0, {', '.join(r[1] for r in rec.results)})")
    loads, stores = set(), set()
    for node in ast.walk(ast.parse("def _f():\n" + "\n".join(body))):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
    glob = set(dir(builtins)) | _MODULE_NAMES | _GLOBALS | {h[0] for h in _HELPERS.values()}
    params = sorted(n for n in loads - stores if n not in glob and not n.startswith("_spec"))
    src = "\n".join([f"def {rec.name}({', '.join(params)}):"] + body)
    if funcs is not None:
        funcs.append(src)
    return params, src


# names the kernel module defines (not parameters of a speculated term's function)
_GLOBALS = frozenset({f"_v{f}" for f in _VEC_MATH} | {"_inf", "_nan", "_CACHE"})
