"""Compile a program to straight-line, vectorised NumPy code (see ``docs/backend.md``).

**Layout.**  Every sub-expression is computed as one ndarray whose axes are the index
variables it depends on: an index variable bound at nesting depth ``d`` (the outermost
``build``/``sum`` is depth 1) is the axis at position ``-d``, the data dimensions of an
array-valued expression come first, and depths the value does not depend on have extent
1.  So scalar expressions broadcast against each other with no reshaping, a ``build``
over ``i`` just renames the axis of ``i`` into a data dimension, a ``sum`` over ``i`` is a
reduction along it, and ``get x i`` is ``x`` itself (a view).

**Hoisting.**  A value's shape only has the axes of the index variables it depends on,
and compiled sub-expressions are memoised by (structure, bindings of their free
variables), so a sub-term that does not depend on an index variable is computed once,
at the level where its operands exist -- also out of sequential loops.

**Loops.**  ``ifold`` is a reduction when its body is ``acc + e`` (``e + acc``,
``acc - e``, ``acc * e``, ``if c (acc + e) acc``, or a max/min selection) with ``acc`` not
free in ``e``; pair accumulators are split into independent components first.  Only a
genuinely sequential recurrence becomes a Python ``for`` loop, whose body is still
vectorised over the other index axes.

**Conditionals.**  A scalar condition is a Python ``if``; a condition that varies along
an axis is ``np.where`` over both branches, each evaluated *guarded*: an index out of
range where the guard is false is clipped instead of raising (the check itself is a
cheap min/max; the mask is only consulted when it fails).

>>> from eqsat_ad.lang.syntax import parse
>>> f = compile(parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"))
>>> f(x=[1.0, 2.0, 3.0])
14.0
"""
from __future__ import annotations

import builtins
import re
import keyword
import math
from typing import Any

import numpy as np

from .. import runtime as _runtime
from ..errors import EqsatError, EvalError, ShapeError
from ..lang.ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,
                        Prim, Program, Snd, Sum, Var, iter_nodes, scoped_children)
from ..lang.types import (ArrayT, BoolT, IndexT, PairT, RealT, SizeT, Type, array_rank,
                          scalar_leaf)
from . import _helpers as H

__all__ = ["compile", "CompiledProgram", "generate_source"]


class _Unsupported(Exception):
    """The program needs something the vectorised backend does not do (ragged arrays)."""


# ---------------------------------------------------------------------------------------
# compile-time values
# ---------------------------------------------------------------------------------------
class Block:
    """A straight-line block of generated code: the function body, a loop body or an
    ``if`` branch.  Values defined in a closed block are dead."""
    __slots__ = ("lines", "parent", "kind", "open", "level")

    def __init__(self, parent: "Block | None", kind: str):
        self.lines: list[str] = []
        self.parent, self.kind, self.open = parent, kind, True
        self.level = 0 if parent is None else parent.level + 1


class V:
    """A value of the generated code: a Python expression (usually a temporary's name),
    the depths of the index axes it varies along, its array rank, element kind
    ('f' real, 'i' integer, 'b' bool), static sizes of its data dims (size names / ints /
    None), the block defining it, and for integers a static size key."""
    __slots__ = ("code", "S", "rank", "dt", "dims", "block", "skey", "const", "ro", "ub")

    def __init__(self, code, S, rank, dt, dims, block, skey=None, const=None, ro=False, ub=None):
        self.code, self.S, self.rank, self.dt = code, S, rank, dt
        self.dims = dims if dims is not None else (None,) * rank
        self.block, self.skey, self.const, self.ro = block, skey, const, ro
        self.ub = ub    # a loop index: known to be in 0 <= v < (size with this key)

    @property
    def p(self) -> int:
        return max(self.S) if self.S else 0


class PairV:
    """A pair: kept apart at compile time (arrays of pairs are pairs of arrays)."""
    __slots__ = ("fst", "snd")

    def __init__(self, fst, snd):
        self.fst, self.snd = fst, snd


class IdxV:
    """The index variable of a ``build``/``sum`` at depth ``d`` (materialised lazily)."""
    __slots__ = ("d", "ext", "mat")

    def __init__(self, d: int, ext: V):
        self.d, self.ext, self.mat = d, ext, None


def _alive(v) -> bool:
    if isinstance(v, PairV):
        return _alive(v.fst) and _alive(v.snd)
    if isinstance(v, IdxV):
        return v.ext.block.open
    return v.block.open


def _leaves(v) -> list:
    return _leaves(v.fst) + _leaves(v.snd) if isinstance(v, PairV) else [v]


def _rebuild(shape, leaves: list):
    """A value of the pair structure of ``shape`` from a flat list of leaves."""
    it = iter(leaves)

    def go(s):
        return PairV(go(s.fst), go(s.snd)) if isinstance(s, PairV) else next(it)
    return go(shape)


_UNIT_AXES = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*)\[:(?:, None)+\]$")


def _flat(code: str, d: int) -> str:
    """A value varying only along depth ``d`` (shape ``(n, 1, ..., 1)``) as a 1-D array."""
    if d == 1:
        return code
    m = _UNIT_AXES.match(code)
    return m.group(1) if m and code.count("None") == d - 1 else f"{code}.ravel()"


def _lit(v: float) -> str:
    if math.isnan(v):
        return "_nan"
    if math.isinf(v):
        return "_inf" if v > 0 else "(-_inf)"
    return repr(float(v))


def _show(e: Expr, limit: int = 70) -> str:
    from ..lang.interp import show
    return show(e, limit)


def _pyname_ok(name: str) -> bool:
    return (name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
            and name not in ("self",) and not hasattr(builtins, name))


def _int_exponent(e: Expr) -> int | None:
    if isinstance(e, Int):
        k = e.value
    elif isinstance(e, Num) and float(e.value).is_integer():
        k = int(e.value)
    elif isinstance(e, Prim) and e.op == "real" and isinstance(e.args[0], Int):
        k = e.args[0].value
    else:
        return None
    return k if abs(k) <= 4 else None


def _expand_pow(base: Expr, k: int) -> Expr:
    """``(pow b k)`` for small integer ``k`` as multiplications (np.power is ~60x slower)."""
    if k == 0:
        return Num(1.0)
    m = abs(k)
    sq = Prim("*", (base, base))
    pos = {1: base, 2: sq, 3: Prim("*", (sq, base)), 4: Prim("*", (sq, sq))}[m]
    return Prim("/", (Num(1.0), pos)) if k < 0 else pos


# ---------------------------------------------------------------------------------------
# the code generator
# ---------------------------------------------------------------------------------------
class _Gen:
    def __init__(self, prog: Program):
        self.prog = prog
        self.root = Block(None, "root")
        self.barrier = self.root
        self.cur = self.root
        self.memo: dict = {}
        self.fvc: dict = {}
        self.getc: dict = {}
        self.ntmp = 0
        self.depth = 0
        self.ext: dict[int, V] = {}
        self.guard: tuple = ()        # ((code, block), ...) conditions under which we run
        self.idx_intern: dict = {}
        self.consts: dict[str, Any] = {}
        self.keep: list = []          # keep compile-time objects alive (ids in memo keys)
        self.checked: set = set()

    # -- bookkeeping -----------------------------------------------------------------
    def tmp(self, base: str = "_t") -> str:
        self.ntmp += 1
        return f"{base}{self.ntmp}"

    def const(self, value: Any, base: str = "_c") -> str:
        name = self.tmp(base)
        self.consts[name] = value
        return name

    def fv(self, e: Expr) -> tuple:
        r = self.fvc.get(e)
        if r is None:
            t = type(e)
            if t is Var:
                r = (e.name,)
            elif t is Num or t is Int or t is BoolLit:
                r = ()
            else:
                s: set = set()
                for c, bound in scoped_children(e):
                    f = self.fv(c)
                    s.update(n for n in f if n not in bound) if bound else s.update(f)
                r = tuple(sorted(s))
            self.fvc[e] = r
        return r

    def has_get(self, e: Expr) -> bool:
        r = self.getc.get(e)
        if r is None:
            r = type(e) is Get or any(self.has_get(c) for c in e.children())
            self.getc[e] = r
        return r

    def target(self, deps, mayfail: bool = False) -> Block:
        b = self.barrier
        for v in deps:
            for leaf in _leaves(v):
                blk = leaf.ext.block if isinstance(leaf, IdxV) else leaf.block
                if blk.level > b.level:
                    b = blk
        if mayfail:
            for _, blk in self.guard:
                if blk.level > b.level:
                    b = blk
        return b

    def emit(self, code: str, deps, S, rank, dt, dims=None, mayfail=False, skey=None,
             comment=None, ro=False, pre=()) -> V:
        b = self.target(deps, mayfail)
        name = self.tmp()
        if S:
            self.check_size(frozenset(S), b)
        if comment:
            b.lines.append(f"# {comment}")
        b.lines.extend(pre)
        b.lines.append(f"{name} = {code}")
        return V(name, frozenset(S), rank, dt, dims, b, skey, ro=ro)

    def check_size(self, S, b: Block) -> None:
        """Before the first array with index axes ``S`` in block ``b``: refuse it if it
        would exceed the memory limit (not needed when an input is at least as big)."""
        key = (S, id(b))
        if key in self.checked:
            return
        self.checked.add(key)
        exts = [self.ext[d] for d in sorted(S)]
        keys = sorted(str(x.skey) for x in exts)
        if all(isinstance(x.skey, str) for x in exts) and any(
                all(keys.count(k) <= dims.count(k) for k in keys) for dims in self.param_dims):
            return
        if len(exts) == 1 and exts[0].const is not None and exts[0].const < 10 ** 7:
            return
        b.lines.append(f"_check_elems({' * '.join(x.code for x in exts)}, "
                       f"{self.const(f'an intermediate array over {len(exts)} index axes', '_w')})")

    def guards_code(self) -> str:
        return "".join(", " + c for c, _ in self.guard)

    # -- entry -------------------------------------------------------------------------
    def ev(self, e: Expr, env: dict):
        names = self.fv(e)
        try:
            fk = tuple(id(env[n]) for n in names)
        except KeyError:
            missing = [n for n in names if n not in env]
            raise EvalError(f"unbound variable '{missing[0]}' in {_show(e)}") from None
        if self.has_get(e):
            g = tuple(c for c, _ in self.guard)
            for k in range(len(g), -1, -1):
                v = self.memo.get((e, fk, g[:k]))
                if v is not None and _alive(v):
                    return v
            key = (e, fk, g)
        else:
            key = (e, fk)
            v = self.memo.get(key)
            if v is not None and _alive(v):
                return v
        v = self._ev(e, env)
        self.memo[key] = v
        return v

    def _ev(self, e: Expr, env: dict):
        t = type(e)
        if t is Num:
            return V(_lit(e.value), frozenset(), 0, "f", (), self.root, const=float(e.value))
        if t is Int:
            return V(repr(int(e.value)), frozenset(), 0, "i", (), self.root, skey=int(e.value),
                     const=int(e.value))
        if t is BoolLit:
            return V(repr(bool(e.value)), frozenset(), 0, "b", (), self.root, const=bool(e.value))
        if t is Var:
            v = env[e.name]
            return self.materialise(v) if isinstance(v, IdxV) else v
        if t is Prim:
            return self.prim(e, env)
        if t is Let:
            v = self.ev(e.value, env)
            env2 = dict(env)
            env2[e.name] = v
            return self.ev(e.body, env2)
        if t is If:
            return self.if_(e, env)
        if t is Pair:
            return PairV(self.ev(e.fst, env), self.ev(e.snd, env))
        if t is Fst or t is Snd:
            p = self.ev(e.pair, env)
            if not isinstance(p, PairV):
                raise EvalError(f"fst/snd of a non-pair in {_show(e)}")
            return p.fst if t is Fst else p.snd
        if t is Length:
            return self.length(self.ev(e.array, env))
        if t is Get:
            return self.get(e, env)
        if t is Build:
            return self.build(e, env)
        if t is Sum:
            return self.reduce("sum", e.size, e.var, e.body, env, e)
        if t is IFold:
            return self.ifold(e, env)
        raise EvalError(f"cannot compile {e!r}")

    def materialise(self, iv: IdxV) -> V:
        if iv.mat is None or not iv.mat.block.open:
            n, d = iv.ext.code, iv.d
            code = f"_arange({n})" + (f"[:{', None' * (d - 1)}]" if d > 1 else "")
            iv.mat = self.emit(code, [iv.ext], {d}, 0, "i")
        return iv.mat

    # -- scalars ---------------------------------------------------------------------
    def prim(self, e: Prim, env: dict) -> V:
        op, args = e.op, e.args
        if op == "and":
            return self.if_(If(args[0], args[1], BoolLit(False)), env)
        if op == "or":
            return self.if_(If(args[0], BoolLit(True), args[1]), env)
        if op == "pow":
            k = _int_exponent(args[1])
            if k is not None:
                return self.ev(_expand_pow(args[0], k), env)
        vs = [self.ev(a, env) for a in args]
        for v in vs:
            if isinstance(v, PairV) or v.rank:
                raise EvalError(f"operator {op} applied to a pair or array in {_show(e)}")
        S = frozenset().union(*(v.S for v in vs))
        scalar = not S
        a = vs[0]
        if op == "not":
            return self.emit(f"(not {a.code})" if scalar else f"(~{a.code})", vs, S, 0, "b")
        if op == "neg":
            if a.dt == "f":
                return self.emit(f"(-{a.code})", vs, S, 0, "f")
            code = f"(-float({a.code}))" if scalar else f"(-{a.code}.astype(_f64))"
            return self.emit(code, vs, S, 0, "f")
        if op == "real":
            if a.dt == "f":
                return a
            code = f"float({a.code})" if scalar else f"{a.code}.astype(_f64)"
            return self.emit(code, vs, S, 0, "f")
        if op in ("exp", "log", "sin", "cos", "tan", "sqrt", "tanh"):
            return self.emit(f"_{op}({a.code})", vs, S, 0, "f")
        b = vs[1]
        if op in ("+", "-", "*"):
            dt = "f" if "f" in (a.dt, b.dt) else "i"
            return self.emit(f"({a.code} {op} {b.code})", vs, S, 0, dt)
        if op == "/":
            if scalar and not (b.const is not None and b.const != 0 and b.dt == "f"):
                return self.emit(f"_div({a.code}, {b.code})", vs, S, 0, "f")
            return self.emit(f"({a.code} / {b.code})", vs, S, 0, "f")
        if op == "pow":
            return self.emit(f"_pow({a.code}, {b.code})", vs, S, 0, "f")
        if op in ("=", "<", ">", "<=", ">="):
            pop = "==" if op == "=" else op
            return self.emit(f"({a.code} {pop} {b.code})", vs, S, 0, "b")
        raise EvalError(f"unknown operator {op!r} in {_show(e)}")

    # -- arrays ----------------------------------------------------------------------
    def length(self, a) -> V:
        leaf = _leaves(a)[0]
        if isinstance(leaf, IdxV) or leaf.rank == 0:
            raise EvalError("length of a non-array")
        k = leaf.dims[0]
        if isinstance(k, str) and k in self.size_py:
            return V(self.size_py[k], frozenset(), 0, "i", (), self.root, skey=k)
        if isinstance(k, int):
            return V(repr(k), frozenset(), 0, "i", (), self.root, skey=k, const=k)
        return self.emit(f"{leaf.code}.shape[0]", [leaf], (), 0, "i")

    def extent(self, n: V, e: Expr) -> V:
        if isinstance(n, PairV) or n.rank or n.dt == "f" or n.dt == "b":
            raise EvalError(f"size is not an integer in {_show(e)}")
        return n

    def open_scope(self, ext: V, what: Expr):
        d = self.depth + 1
        key = (d, ext.code, id(ext.block))
        iv = self.idx_intern.get(key)
        if iv is None or not _alive(iv):
            iv = self.idx_intern[key] = IdxV(d, ext)
        prev = (self.depth, self.guard)
        self.depth = d
        self.ext[d] = ext
        if not (ext.const is not None and ext.const > 0):
            self.guard = self.guard + ((f"({ext.code} > 0)", ext.block),)
        return iv, prev

    def close_scope(self, prev):
        self.depth, self.guard = prev

    def build(self, e: Build, env: dict):
        n = self.extent(self.ev(e.size, env), e)
        if n.S:
            raise _Unsupported(f"build whose size depends on an index variable (a ragged array): "
                               f"{_show(e)}")
        iv, prev = self.open_scope(n, e)
        env2 = dict(env)
        env2[e.var] = iv
        body = self.ev(e.body, env2)
        self.close_scope(prev)
        return self.build_result(body, iv, n, e)

    def build_result(self, body, iv: IdxV, n: V, e: Expr):
        if isinstance(body, PairV):
            return PairV(self.build_result(body.fst, iv, n, e), self.build_result(body.snd, iv, n, e))
        if isinstance(body, IdxV):
            body = self.materialise(body)
        d, r = iv.d, body.rank
        dims = (n.skey,) + tuple(body.dims)
        if d in body.S:
            S2 = body.S - {d}
            q = max(S2) if S2 else 0
            stale = d - 1 - q
            code = body.code
            if r:
                perm = [r] + list(range(r)) + list(range(r + 1, r + d))
                code = f"{code}.transpose({', '.join(map(str, perm))})"
            if stale:
                code = f"{code}[{', '.join([':'] * (r + 1) + ['0'] * stale)}]"
            if code == body.code:
                return V(body.code, S2, r + 1, body.dt, dims, body.block, ro=body.ro)
            return self.emit(code, [body], S2, r + 1, body.dt, dims, ro=body.ro)
        if r == 0 and not body.S:
            return self.emit(f"_full({n.code}, {body.code})", [body, n], (), 1, body.dt, dims,
                             comment=_show(e))
        code = f"_broadcast_to({body.code}, ({n.code},) + _shape({body.code}))"
        return self.emit(code, [body, n], body.S, r + 1, body.dt, dims, ro=True, comment=_show(e))

    # -- get ---------------------------------------------------------------------------
    def get(self, e: Get, env: dict):
        a = self.ev(e.array, env)
        idx = e.index
        iv, off = None, None
        if type(idx) is Var and isinstance(env.get(idx.name), IdxV):
            iv, off = env[idx.name], V("0", frozenset(), 0, "i", (), self.root, const=0)
        elif type(idx) is Prim and idx.op in ("+", "-"):
            x, y = idx.args
            if idx.op == "+" and type(y) is Var and isinstance(env.get(y.name), IdxV) and not (
                    type(x) is Var and isinstance(env.get(x.name), IdxV)):
                x, y = y, x
            if type(x) is Var and isinstance(env.get(x.name), IdxV):
                o = self.ev(y, env)
                if isinstance(o, V) and not o.S and o.rank == 0 and o.dt == "i":
                    iv = env[x.name]
                    if idx.op == "-":
                        o = (V(repr(-o.const), frozenset(), 0, "i", (), self.root, const=-o.const)
                             if o.const is not None else self.emit(f"(-{o.code})", [o], (), 0, "i"))
                    off = o
        if iv is not None:
            return self.get_axis(a, iv, off, e)
        k = self.ev(idx, env)
        if isinstance(k, PairV) or k.rank or k.dt not in ("i",):
            raise EvalError(f"index is not an integer in {_show(e)}")
        return self.get_general(a, k, e)

    def _check_lines(self, cond: str, kcode: str, acode: str, e: Expr, gather_code: str,
                     result: str, fast_code: str) -> list[str]:
        """Bounds-check lines: raise (unguarded) or clip where masked (guarded)."""
        msg = self.const(_show(e, 100), "_w")
        if not self.guard:
            return [f"if {cond}: _raise_oob({kcode}, {acode}.shape[0], {msg})",
                    f"{result} = {fast_code}"]
        return [f"if {cond}:",
                f"    _kk = {kcode}",
                f"    if _needed(_badmask(_kk, {acode}.shape[0]){self.guards_code()}): "
                f"_raise_oob(_kk, {acode}.shape[0], {msg})",
                f"    _kk, _aa = _clip_idx(_kk, {acode})",
                f"    {result} = {gather_code}",
                "else:",
                f"    {result} = {fast_code}"]

    def get_axis(self, a, iv: IdxV, off: V, e: Expr):
        """``get a (i + off)`` for the axis variable ``i``: a view (slice + transpose)."""
        if isinstance(a, PairV):
            return PairV(self.get_axis(a.fst, iv, off, e), self.get_axis(a.snd, iv, off, e))
        if isinstance(a, IdxV) or a.rank == 0:
            raise EvalError(f"get of a non-array in {_show(e)}")
        d = iv.d
        if d in a.S:
            k = self.materialise(iv)
            if off.const != 0:
                k = self.emit(f"({k.code} + {off.code})", [k, off], k.S, 0, "i")
            return self.get_general(a, k, e)
        n, L, r, pa = iv.ext, a.dims[0], a.rank, a.p
        static_ok = (off.const == 0 and L is not None and L == n.skey) or (
            off.const is not None and off.const >= 0 and isinstance(L, int)
            and isinstance(n.skey, int) and off.const + n.skey <= L)
        src = a.code
        if not static_ok:
            src = f"{a.code}[:{n.code}]" if off.const == 0 else f"{a.code}[{off.code}:{off.code} + {n.code}]"
        # relayout: data dim 0 becomes the axis of depth d
        if d > pa:
            perm = list(range(1, r)) + [0] + list(range(r, r + pa))
            code = src if perm == sorted(perm) else f"{src}.transpose({', '.join(map(str, perm))})"
            k = d - 1 - pa
            if k:
                code = f"{code}[{', '.join([':'] * r + ['None'] * k)}]"
        else:
            slot = r + (pa - d)
            perm = list(range(1, r)) + list(range(r, slot)) + [0] + list(range(slot, r + pa))
            code = src if perm == sorted(perm) else f"{src}.transpose({', '.join(map(str, perm))})"
            code = f"{code}[{', '.join([':'] * slot + ['0'])}]"
        S = a.S | {d}
        dims = tuple(a.dims[1:])
        if static_ok:
            if code == a.code or a.code.isidentifier():   # a view: no temporary needed
                return V(code, S, r - 1, a.dt, dims, a.block, ro=a.ro)
            return self.emit(code, [a, n], S, r - 1, a.dt, dims, mayfail=True, ro=a.ro)
        cond = (f"{n.code} > {a.code}.shape[0]" if off.const == 0 else
                f"{off.code} < 0 or {off.code} + {n.code} > {a.code}.shape[0]")
        kcode = f"_arange_at({n.code}, {d})" + ("" if off.const == 0 else f" + {off.code}")
        gather = self.gather_code("_aa", "_kk", r, pa, d, a.S, frozenset({d}))
        b = self.target([a, n, off], mayfail=True)
        name = self.tmp()
        b.lines.extend(self._check_lines(cond, kcode, a.code, e, gather, name, code))
        return V(name, S, r - 1, a.dt, dims, b, ro=a.ro)

    @staticmethod
    def gather_code(acode, kcode, r, pa, pk, Sa, Sk) -> str:
        if not Sk:
            return f"{acode}[{kcode}]"
        if not Sa:
            if r == 1:
                return f"{acode}[{kcode}]"
            perm = list(range(1, r)) + [0]
            return f"{acode}.transpose({', '.join(map(str, perm))})[..., {kcode}]"
        return f"_gather({acode}, {kcode}, {r}, {pa}, {pk})"

    def get_general(self, a, k: V, e: Expr):
        if isinstance(a, PairV):
            return PairV(self.get_general(a.fst, k, e), self.get_general(a.snd, k, e))
        if isinstance(a, IdxV) or a.rank == 0:
            raise EvalError(f"get of a non-array in {_show(e)}")
        r, L = a.rank, a.dims[0]
        S = a.S | k.S
        dims = tuple(a.dims[1:])
        fast = self.gather_code(a.code, k.code, r, a.p, k.p, a.S, k.S)
        gather = self.gather_code("_aa", "_kk", r, a.p, k.p, a.S, k.S)
        if (k.const is not None and isinstance(L, int) and 0 <= k.const < L) or (
                k.ub is not None and k.ub == L):
            return self.emit(fast, [a, k], S, r - 1, a.dt, dims, mayfail=True, ro=a.ro)
        cond = (f"not 0 <= {k.code} < {a.code}.shape[0]" if not k.S
                else f"_oob({k.code}, {a.code}.shape[0])")
        b = self.target([a, k], mayfail=True)
        name = self.tmp()
        b.lines.extend(self._check_lines(cond, k.code, a.code, e, gather, name, fast))
        return V(name, S, r - 1, a.dt, dims, b, ro=a.ro)

    # -- conditionals ----------------------------------------------------------------
    def if_(self, e: If, env: dict):
        c = self.ev(e.cond, env)
        if isinstance(c, PairV) or c.rank or c.dt != "b":
            raise EvalError(f"condition is not a bool in {_show(e)}")
        if c.const is not None:
            return self.ev(e.then if c.const else e.else_, env)
        if not c.S:
            return self.scalar_if(c, e, env)
        saved = self.guard
        self.guard = saved + ((c.code, c.block),)
        a = self.ev(e.then, env)
        self.guard = saved + ((f"(~{c.code})", c.block),)
        b = self.ev(e.else_, env)
        self.guard = saved
        return self.where(c, a, b, e)

    def where(self, c: V, a, b, e: Expr):
        if isinstance(a, PairV) or isinstance(b, PairV):
            if not (isinstance(a, PairV) and isinstance(b, PairV)):
                raise EvalError(f"if branches of different types in {_show(e)}")
            return PairV(self.where(c, a.fst, b.fst, e), self.where(c, a.snd, b.snd, e))
        a = self.materialise(a) if isinstance(a, IdxV) else a
        b = self.materialise(b) if isinstance(b, IdxV) else b
        S = c.S | a.S | b.S
        if a.rank != b.rank:
            raise EvalError(f"if branches of different types in {_show(e)}")
        if a.dt == "b" and b.dt == "b" and a.rank == 0:
            if a.const is True:
                return self.emit(f"({c.code} | {b.code})", [c, b], S, 0, "b")
            if b.const is False:
                return self.emit(f"({c.code} & {a.code})", [c, a], S, 0, "b")
            if a.const is False:
                return self.emit(f"(~{c.code} & {b.code})", [c, b], S, 0, "b")
            if b.const is True:
                return self.emit(f"(~{c.code} | {a.code})", [c, a], S, 0, "b")
        dt = "f" if "f" in (a.dt, b.dt) else a.dt
        r = a.rank
        if r == 0:
            return self.emit(f"_where({c.code}, {a.code}, {b.code})", [c, a, b], S, 0, dt)
        p = max(S)
        ac, bc = (self.lift(v.code, r, p - v.p) for v in (a, b))
        pre = []
        if not (a.dims == b.dims and None not in a.dims):
            pre = [f"if {a.code}.shape[:{r}] != {b.code}.shape[:{r}]: "
                   f"_ragged({self.const(_show(e, 100), '_w')})"]
        dims = a.dims if a.dims == b.dims else (None,) * r
        return self.emit(f"_where({c.code}, {ac}, {bc})", [c, a, b], S, r, dt, dims, pre=pre)

    @staticmethod
    def lift(code: str, r: int, k: int) -> str:
        """Insert ``k`` unit axes after the ``r`` data dims (for broadcasting arrays)."""
        if k <= 0:
            return code
        return f"{code}[{', '.join([':'] * r + ['None'] * k)}]"

    def axes_shape(self, S) -> str:
        p = max(S) if S else 0
        parts = [self.ext[d].code if d in S else "1" for d in range(p, 0, -1)]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def conform(self, v: V, S) -> str:
        """Code for ``v`` broadcast to the axes ``S`` (a superset of ``v.S``)."""
        if v.S == S:
            return v.code
        return f"_expand({v.code}, {v.rank}, {v.p}, {self.axes_shape(S)})"

    def scalar_if(self, c: V, e: If, env: dict):
        outer_cur, outer_barrier = self.cur, self.barrier
        branches = []
        for sub in (e.then, e.else_):
            blk = Block(outer_cur, "branch")
            self.cur = self.barrier = blk
            v = self.ev(sub, env)
            blk.open = False
            branches.append((blk, v))
        self.cur, self.barrier = outer_cur, outer_barrier
        (bt, a), (be, b) = branches
        la, lb = _leaves(a), _leaves(b)
        if len(la) != len(lb):
            raise EvalError(f"if branches of different types in {_show(e)}")
        la = [self.materialise(x) if isinstance(x, IdxV) else x for x in la]
        lb = [self.materialise(x) if isinstance(x, IdxV) else x for x in lb]
        out = []
        if not bt.lines and not be.lines and all(x.S == y.S for x, y in zip(la, lb)):
            for x, y in zip(la, lb):
                out.append(self.emit(f"({x.code} if {c.code} else {y.code})", [c, x, y], x.S,
                                     x.rank, "f" if "f" in (x.dt, y.dt) else x.dt,
                                     x.dims if x.dims == y.dims else None))
            return _rebuild(a, out)
        names = []
        for x, y in zip(la, lb):
            if x.rank != y.rank:
                raise EvalError(f"if branches of different types in {_show(e)}")
            S = x.S | y.S
            name = self.tmp("_r")
            bt.lines.append(f"{name} = {self.conform(x, S)}")
            be.lines.append(f"{name} = {self.conform(y, S)}")
            names.append((name, x, y, S))
        tgt = self.cur
        tgt.lines.append(f"if {c.code}:")
        tgt.lines.extend("    " + ln for ln in bt.lines)
        tgt.lines.append("else:")
        tgt.lines.extend("    " + ln for ln in be.lines)
        for name, x, y, S in names:
            out.append(V(name, S, x.rank, "f" if "f" in (x.dt, y.dt) else x.dt,
                         x.dims if x.dims == y.dims else None, tgt, ro=x.ro or y.ro))
        return _rebuild(a, out)

    # -- reductions ----------------------------------------------------------------------
    _IDENT = {"sum": "0", "prod": "1", "max": "(-_inf)", "min": "_inf"}
    _RED = {"sum": "_addr", "prod": "_mulr", "max": "_fmaxr", "min": "_fminr"}

    def reduce(self, kind: str, size_e: Expr, var: str, body_e: Expr, env: dict, node: Expr):
        n = self.extent(self.ev(size_e, env), node)
        masked = bool(n.S)
        ext = self.emit(f"_max_extent({n.code})", [n], (), 0, "i") if masked else n
        iv, prev = self.open_scope(ext, node)
        d = iv.d
        if masked:
            mask = self.emit(f"({self.materialise(iv).code} < {n.code})", [iv.mat, n],
                             n.S | {d}, 0, "b")
            self.guard = self.guard + ((mask.code, mask.block),)
        env2 = dict(env)
        env2[var] = iv
        res = None
        if kind == "sum" and not masked:
            res = self.contraction(body_e, env2, iv, node)
        if res is None:
            body = self.ev(body_e, env2)
        self.close_scope(prev)
        if res is not None:
            return res
        return self.reduce_result(kind, body, iv, n, mask if masked else None, node)

    def reduce_result(self, kind, body, iv: IdxV, n: V, mask, node):
        if isinstance(body, PairV):
            return PairV(self.reduce_result(kind, body.fst, iv, n, mask, node),
                         self.reduce_result(kind, body.snd, iv, n, mask, node))
        if isinstance(body, IdxV):
            body = self.materialise(body)
        d, r = iv.d, body.rank
        if mask is not None:
            if r:
                raise _Unsupported(f"masked reduction of arrays: {_show(node)}")
            body = self.emit(f"_where({mask.code}, {body.code}, {self._IDENT[kind]})",
                             [mask, body], mask.S | body.S, 0, body.dt)
        if d not in body.S:
            if kind == "sum":
                return self.emit(f"_mul_n({body.code}, {n.code})", [body, n], body.S, r, body.dt,
                                 body.dims)
            if kind == "prod":
                return self.emit(f"_pow({body.code}, {n.code})", [body, n], body.S, r, "f", body.dims)
            return self.emit(f"({body.code} if {n.code} > 0 else {self._IDENT[kind]})", [body, n],
                             body.S, r, body.dt, body.dims)
        S2 = body.S - {d}
        q = max(S2) if S2 else 0
        axes = list(range(r, r + d - q))
        ax = str(axes[0]) if len(axes) == 1 else "(" + ", ".join(map(str, axes)) + ")"
        extra = f", initial={self._IDENT[kind]}" if kind in ("max", "min") else ""
        return self.emit(f"{self._RED[kind]}({body.code}, {ax}{extra})", [body], S2, r, body.dt,
                         body.dims, comment=_show(node))

    def contraction(self, body_e: Expr, env: dict, iv: IdxV, node: Expr):
        """``sum_i u*w`` as a BLAS dot / vector-matrix product when the layouts allow."""
        b = body_e
        while type(b) is Let:          # sum (let ((t ..)) (* t t)) -- see through lets
            v = self.ev(b.value, env)
            env = dict(env)
            env[b.name] = v
            b = b.body
        if type(b) is Prim and b.op == "pow" and _int_exponent(b.args[1]) == 2:
            b = Prim("*", (b.args[0], b.args[0]))
        if not (type(b) is Prim and b.op == "*"):
            return None
        u, w = (self.ev(x, env) for x in b.args)
        if any(isinstance(x, (PairV, IdxV)) or x.rank or x.dt != "f" for x in (u, w)):
            return None
        d = iv.d
        one = frozenset({d})
        if u.S != one and w.S == one:
            u, w = w, u
        if d not in u.S or d not in w.S:
            return None
        if u.S != one:
            return self.einsum(u, w, d, node)
        uf, wf = _flat(u.code, d), _flat(w.code, d)
        if w.S == one:
            return self.emit(f"_dot({uf}, {wf})", [u, w], (), 0, "f", comment=_show(node))
        S2 = w.S - {d}
        q = max(S2)
        if d == 2:
            wt = w.code[: -len(".transpose(1, 0)")] if w.code.endswith(".transpose(1, 0)") \
                else f"{w.code}.T"
            code = f"_dot({wt}, {uf})"
        else:
            code = f"_dot({uf}, {w.code}.reshape({w.code}.shape[0], -1)).reshape({w.code}.shape[1:])"
        if d - 1 - q:
            code = f"{code}[{', '.join(['0'] * (d - 1 - q))}]"
        return self.emit(code, [u, w], S2, 0, "f", comment=_show(node))

    def einsum(self, u: V, w: V, d: int, node: Expr) -> V:
        """``sum_i u*w`` with both factors varying along other axes too (e.g. matmul)."""
        def operand(v: V) -> tuple[str, str]:
            idx = [":" if dd in v.S else "0" for dd in range(v.p, 0, -1)]
            code = v.code if "0" not in idx else f"{v.code}[{', '.join(idx)}]"
            return code, "".join(chr(96 + dd) for dd in range(v.p, 0, -1) if dd in v.S)
        (uc, us), (wc, ws) = operand(u), operand(w)
        S2 = (u.S | w.S) - {d}
        outs = "".join(chr(96 + dd) for dd in sorted(S2, reverse=True))
        code = f"_contract('{us},{ws}->{outs}', {uc}, {wc})"
        q = max(S2) if S2 else 0
        idx = [":" if dd in S2 else "None" for dd in range(q, 0, -1)]
        if "None" in idx:
            code = f"{code}[{', '.join(idx)}]"
        return self.emit(code, [u, w], S2, 0, "f", comment=_show(node))

    # -- ifold ---------------------------------------------------------------------------
    def ifold(self, e: IFold, env: dict):
        init = self.ev(e.init, env)
        if isinstance(init, PairV):
            return self.ifold_pair(e, init, env)
        r = self.fold_pattern(e.acc, e.var, e.body, e.init, e.size, init, env, e)
        if r is not None:
            return r
        return self.loop(e, [(e.acc, None)], [init], [e.body], env, init)

    def fold_pattern(self, acc, var, body, init_e, size, init: V, env, node):
        lets = []
        b = body
        while type(b) is Let and b.name != acc and acc not in self.fv(b.value):
            lets.append(b)
            b = b.body

        def wrap(x: Expr) -> Expr:
            for lt in reversed(lets):
                x = Let(lt.name, lt.value, x)
            return x

        A = Var(acc)
        free = lambda x: acc not in self.fv(x)  # noqa: E731
        zero = Int(0) if isinstance(init, V) and init.dt == "i" else Num(0.0)
        if b == A:
            return init
        if type(b) is Prim and b.op in ("+", "-", "*"):
            x, y = b.args
            if b.op != "-" and y == A and free(x):
                x, y = y, x
            if x == A and free(y):
                if b.op == "*":
                    red = self.reduce("prod", size, var, wrap(y), env, node)
                    return self.emit(f"({init.code} * {red.code})", [init, red], init.S | red.S,
                                     init.rank, "f", init.dims)
                if b.op == "+" and init.const == 0:
                    return self.ev(Sum(size, var, wrap(y)), env)
                return self.ev(Prim(b.op, (init_e, Sum(size, var, wrap(y)))), env)
        if type(b) is If and free(b.cond):
            t, f = b.then, b.else_
            for this, other, flip in ((t, f, False), (f, t, True)):
                if other == A and type(this) is Prim and this.op == "+":
                    x, y = this.args
                    if y == A:
                        x, y = y, x
                    if x == A and free(y):
                        term = If(b.cond, zero, y) if flip else If(b.cond, y, zero)
                        if init.const == 0:
                            return self.ev(Sum(size, var, wrap(term)), env)
                        return self.ev(Prim("+", (init_e, Sum(size, var, wrap(term)))), env)
        if type(b) is If and type(b.cond) is Prim and b.cond.op in ("<", ">", "<=", ">=") \
                and b.else_ == A and free(b.then) and init.rank == 0:
            x, y = b.cond.args
            t = b.then
            is_max = None
            if x == t and y == A:
                is_max = b.cond.op in (">", ">=")
            elif x == A and y == t:
                is_max = b.cond.op in ("<", "<=")
            if is_max is not None:
                red = self.reduce("max" if is_max else "min", size, var, wrap(t), env, node)
                return self.emit(f"_fold_extreme({init.code}, {red.code}, {is_max})", [init, red],
                                 init.S | red.S, 0, "f")
        return None

    def ifold_pair(self, e: IFold, init: PairV, env: dict):
        """Split a pair accumulator into components; independent ones are folded (and
        pattern-matched) separately, the rest share one sequential loop."""
        paths: list[tuple] = []

        def walk(v, path):
            if isinstance(v, PairV):
                walk(v.fst, path + (0,))
                walk(v.snd, path + (1,))
            else:
                paths.append(path)
        walk(init, ())
        names = {p: self.tmp("acc") for p in paths}   # fresh language-level names
        acc = e.acc

        def project(b: Expr, path: tuple) -> Expr:
            if not path:
                return b
            if type(b) is Pair:
                return project(b.fst if path[0] == 0 else b.snd, path[1:])
            if type(b) is Let and b.name != acc:
                return Let(b.name, b.value, project(b.body, path))
            if type(b) is If:
                return If(b.cond, project(b.then, path), project(b.else_, path))
            return project(Fst(b) if path[0] == 0 else Snd(b), path[1:])

        def tree(prefix: tuple) -> Expr:
            if prefix in names:
                return Var(names[prefix])
            return Pair(tree(prefix + (0,)), tree(prefix + (1,)))

        def subst(b: Expr, used: set) -> Expr:
            """Replace projections of the accumulator by the component variables."""
            chain: list[int] = []
            x = b
            while type(x) in (Fst, Snd):
                chain.append(0 if type(x) is Fst else 1)
                x = x.pair
            if type(x) is Var and x.name == acc:
                path = tuple(reversed(chain))
                for k in range(len(path), -1, -1):
                    if path[:k] in names:
                        used.add(path[:k])
                        out: Expr = Var(names[path[:k]])
                        for bit in path[k:]:
                            out = Fst(out) if bit == 0 else Snd(out)
                        return out
                used.update(p for p in names if p[:len(path)] == path)
                return tree(path)
            if acc not in self.fv(b):
                return b
            if acc in b.binds():           # shadowed in the body
                return b.with_children([c if acc in bound else subst(c, used)
                                        for c, bound in scoped_children(b)])
            return b.with_children([subst(c, used) for c in b.children()])

        comps, deps = {}, {}
        for p in paths:
            used: set = set()
            comps[p] = subst(project(e.body, p), used)
            deps[p] = used
        loop_set = {p for p in paths if deps[p] - {p}}
        changed = True
        while changed:
            changed = False
            for p in list(loop_set):
                for q in deps[p]:
                    if q not in loop_set:
                        loop_set.add(q)
                        changed = True
        leaves_init = dict(zip(paths, _leaves(init)))
        results = {}

        def proj_init(p):
            x = e.init
            for bit in p:
                x = Fst(x) if bit == 0 else Snd(x)
            return x
        for p in paths:
            if p in loop_set:
                continue
            sub = IFold(names[p], e.var, comps[p], proj_init(p), e.size)
            r = self.fold_pattern(names[p], e.var, comps[p], proj_init(p), e.size, leaves_init[p],
                                  env, e)
            results[p] = r if r is not None else self.loop(
                sub, [(names[p], None)], [leaves_init[p]], [comps[p]], env, leaves_init[p])
        if loop_set:
            lp = [p for p in paths if p in loop_set]
            outs = self.loop(e, [(names[p], None) for p in lp], [leaves_init[p] for p in lp],
                             [comps[p] for p in lp], env, None)
            for p, v in zip(lp, outs if isinstance(outs, list) else [outs]):
                results[p] = v
        return _rebuild(init, [results[p] for p in paths])

    def loop(self, e: IFold, accs, inits: list, bodies: list, env: dict, single):
        """A sequential Python loop; the body is vectorised over the other index axes."""
        n = self.extent(self.ev(e.size, env), e)
        masked = bool(n.S)
        ext = self.emit(f"_max_extent({n.code})", [n], (), 0, "i") if masked else n
        S_acc = [v.S | n.S for v in inits]
        parent = self.cur
        for _attempt in range(self.depth + 2):
            blk = Block(parent, "loop")
            self.cur = blk
            ivar = self.tmp("_i")
            iV = V(ivar, frozenset(), 0, "i", (), blk, ub=None if masked else n.skey)
            anames = [self.tmp("_a") for _ in inits]
            aVs = [V(nm, S, v.rank, v.dt, v.dims, blk) for nm, S, v in zip(anames, S_acc, inits)]
            env2 = dict(env)
            env2[e.var] = iV
            for (name, _), av in zip(accs, aVs):
                env2[name] = av
            saved = self.guard
            if not (ext.const is not None and ext.const > 0):
                self.guard = self.guard + ((f"({ext.code} > 0)", ext.block),)
            if masked:
                self.guard = self.guard + ((f"({ivar} < {n.code})", blk),)
            res = [self.ev(b, env2) for b in bodies]
            self.guard = saved
            self.cur = parent
            blk.open = False
            for rv in res:
                if isinstance(rv, PairV):
                    raise _Unsupported("nested pair accumulator")
            res = [self.materialise(x) if isinstance(x, IdxV) else x for x in res]
            new_S = [s | rv.S for s, rv in zip(S_acc, res)]
            if new_S == S_acc:
                break
            S_acc = new_S
        else:  # pragma: no cover
            raise _Unsupported("loop accumulator shape does not settle")
        lines = parent.lines
        lines.append(f"# {_show(e)}")
        for nm, v, S in zip(anames, inits, S_acc):
            lines.append(f"{nm} = {self.conform(v, S)}")
        lines.append(f"for {ivar} in range({ext.code}):")
        lines.extend("    " + ln for ln in blk.lines)
        news = []
        for nm, rv, S in zip(anames, res, S_acc):
            code = self.conform(rv, S)
            if masked:
                code = f"_where({ivar} < {n.code}, {code}, {nm})"
            news.append(code)
        lines.append(f"    {', '.join(anames)} = {', '.join(news)}"
                     + ("," if len(anames) == 1 else ""))
        if len(anames) == 1:
            lines[-1] = f"    {anames[0]} = {news[0]}"
        outs = [V(nm, S, v.rank, v.dt, v.dims, parent, ro=v.ro or S != v.S)
                for nm, v, S in zip(anames, inits, S_acc)]
        return outs[0] if single is not None else outs


# ---------------------------------------------------------------------------------------
# whole programs
# ---------------------------------------------------------------------------------------
_GLOBALS = {
    "_np": np, "_f64": np.dtype(np.float64), "_i64": np.dtype(np.int64), "_nd": np.ndarray,
    "_inf": math.inf, "_nan": math.nan, "_arange": np.arange, "_full": np.full,
    "_broadcast_to": np.broadcast_to, "_shape": np.shape, "_where": np.where,
    "_exp": np.exp, "_log": np.log, "_sin": np.sin, "_cos": np.cos, "_tan": np.tan,
    "_sqrt": np.sqrt, "_tanh": np.tanh, "_div": np.true_divide, "_pow": np.float_power,
    "_dot": np.dot, "_addr": np.add.reduce, "_mulr": np.multiply.reduce,
    "_fmaxr": np.fmax.reduce, "_fminr": np.fmin.reduce,
    "_gather": H.gather, "_oob": H.oob, "_badmask": H.badmask, "_needed": H.needed,
    "_raise_oob": H.raise_oob, "_clip_idx": H.clip_idx, "_arange_at": H.arange_at,
    "_expand": H.expand, "_mul_n": H.mul_n, "_max_extent": H.max_extent,
    "_fold_extreme": H.fold_extreme, "_contract": H.contract, "_check_elems": H.check_elems, "_ragged": H.ragged,
    "_out_array": H.out_array, "_fp_set": getattr(_runtime._FP_CV, "set", None),
    "_fp_reset": getattr(_runtime._FP_CV, "reset", None), "_FP_IGNORE": _runtime.FP_IGNORE_OBJ,
    "_errstate": np.errstate, "_float": float,
}


class CompiledProgram:
    """A program compiled to NumPy: call it with the inputs, positionally (parameter
    order) or by keyword.  ``source`` is the generated Python, ``program`` the (elaborated)
    program; ``fallback`` is None, or why it runs with the reference interpreter.

    >>> from eqsat_ad.lang.syntax import parse
    >>> f = compile(parse("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (get x i)))))"))
    >>> f([1.0, 2.0])
    array([2., 4.])
    >>> "def " in f.source
    True
    """
    source: str
    program: Program
    fallback: str | None

    def _bad_inputs(self, args: tuple, kwargs: dict) -> None:
        _runtime.bind_inputs(self.program, args, kwargs)     # raises the detailed error
        raise ShapeError("inputs do not match the parameter types")  # pragma: no cover

    def _recall(self, vals: tuple, more: tuple, extra: dict):
        if more:
            return self._generic(tuple(vals) + tuple(more), extra)
        kw = {p.name: v for p, v in zip(self.program.params, vals) if v is not _MISSING}
        kw.update(extra)
        return self._generic((), kw)

    def _generic(self, args: tuple, kwargs: dict):
        env = _runtime.bind_inputs(self.program, args, kwargs)
        return self._positional(*[env[p.name] for p in self.program.params])

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.program.params)
        return f"<CompiledProgram ({names})" + (" interpreted>" if self.fallback else ">")


def _prologue(prog: Program, py: dict[str, str], size_py: dict[str, str]) -> tuple[list[str], dict]:
    """Input conversion/validation lines; they assume the parameters are bound to ``py``."""
    lines: list[str] = []
    consts: dict[str, Any] = {}
    bound: set[str] = set()
    args_tuple = "(" + ", ".join(py[p.name] for p in prog.params) + ("," if len(prog.params) == 1 else "") + ")"
    bad = f"self._bad_inputs({args_tuple}, {{}})"
    for k, p in enumerate(prog.params):
        name, t = py[p.name], p.type
        tn = f"_T{k}"
        consts[tn] = t
        cin = f"{name} = _cin({p.name!r}, {tn}, {name}, {{}})"
        if isinstance(t, RealT):
            lines.append(f"if type({name}) is not float: {cin}")
        elif isinstance(t, (IndexT, SizeT)):
            lines.append(f"if type({name}) is not int: {cin}")
        elif isinstance(t, BoolT):
            lines.append(f"if type({name}) is not bool: {cin}")
        elif isinstance(t, ArrayT):
            leaf = scalar_leaf(t)
            dt = "_f64" if isinstance(leaf, RealT) else "_i64" if isinstance(leaf, (IndexT, SizeT)) else None
            if dt is None:
                lines.append(cin)
            else:
                lines.append(f"if type({name}) is not _nd or {name}.dtype is not {dt}: {cin}")
            r = array_rank(t)
            sizes, tt = [], t
            while isinstance(tt, ArrayT):
                sizes.append(tt.size)
                tt = tt.elem
            checks = [f"{name}.ndim != {r}"]
            binds = []
            for ax, s in enumerate(sizes):
                if isinstance(s, int):
                    checks.append(f"{name}.shape[{ax}] != {s}")
                elif isinstance(s, str):
                    if s in bound:
                        checks.append(f"{name}.shape[{ax}] != {size_py[s]}")
                    elif s not in [b for b, _ in binds]:
                        binds.append((s, ax))
            lines.append(f"if {' or '.join(checks)}: {bad}")
            for s, ax in binds:
                lines.append(f"{size_py[s]} = {name}.shape[{ax}]")
                bound.add(s)
            # a size name used twice in one type, e.g. (mat n n)
            for ax, s in enumerate(sizes):
                if isinstance(s, str) and (s, ax) not in binds and s in [b for b, _ in binds]:
                    lines.append(f"if {name}.shape[{ax}] != {size_py[s]}: {bad}")
        else:
            lines.append(cin)
    return lines, consts


def generate_source(prog: Program) -> tuple[str, dict[str, Any]]:
    """The generated Python source of ``prog`` and the globals it needs (see :func:`compile`).

    >>> from eqsat_ad.lang.syntax import parse
    >>> src, _ = generate_source(parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))"))
    >>> "_addr(_exp(x), 0)" in src.replace("_t1", "_exp(x)") or "_addr(" in src
    True
    """
    from ..lang.binders import cache_hashes, call_deep
    from ..lang.typecheck import elaborate
    prog = elaborate(prog)
    cache_hashes(prog.body)
    names = [p.name for p in prog.params]
    sizes: list[str] = []
    for p in prog.params:
        for s in _size_names(p.type):
            if s not in sizes:
                sizes.append(s)
    safe = all(_pyname_ok(n) for n in names + sizes)
    py = {n: (n if safe else f"_p{k}") for k, n in enumerate(names)}
    size_py = {s: (s if safe else f"_n{k}") for k, s in enumerate(sizes)}
    g = _Gen(prog)
    g.size_py = size_py
    g.param_dims = [[str(s) for s in _dims_of(p.type)] for p in prog.params]
    env: dict[str, Any] = {}
    pre_lines: list[str] = []
    for p in prog.params:
        env[p.name] = _param_value(p.name, p.type, py[p.name], g, pre_lines)
    for s in sizes:
        if s not in env:
            env[s] = V(size_py[s], frozenset(), 0, "i", (), g.root, skey=s)
    result = call_deep(g.ev, prog.body, env, what="program")
    out = _output(result, g)
    prologue, consts = _prologue(prog, py, size_py)
    body = _inline(_dce(pre_lines + g.root.lines + [f"return {out}"]))
    comment = _show(prog.body, 200).replace("\n", " ")
    if safe:
        sig = ", ".join(f"{py[n]}=_M" for n in names)
        head = [f"def _run(self{', ' if sig else ''}{sig}, *_more, **_extra):",
                f"    # {comment}"]
        missing = " or ".join([f"{py[n]} is _M" for n in names] + ["_more", "_extra"])
        given = ", ".join(py[n] for n in names)
        head += [f"    if {missing}:",
                 f"        return self._recall(({given}{',' if len(names) == 1 else ''}), _more, _extra)"]
    else:
        head = ["def _run(self, *_args, **_kwargs):", f"    # {comment}",
                "    if _kwargs or len(_args) != %d:" % len(names),
                "        return self._generic(_args, _kwargs)"]
        if names:
            head.append(f"    {', '.join(py[n] for n in names)}{',' if len(names) == 1 else ''} = _args")
    lines = head + ["    " + ln for ln in prologue]
    if _GLOBALS["_fp_set"] is not None:
        lines += ["    _tok = _fp_set(_FP_IGNORE)", "    try:"]
        lines += ["        " + ln for ln in body]
        lines += ["    finally:", "        _fp_reset(_tok)"]
    else:  # pragma: no cover
        lines += ["    with _errstate(all='ignore'):"] + ["        " + ln for ln in body]
    src = "\n".join(lines) + "\n"
    glb = dict(_GLOBALS)
    glb.update(g.consts)
    glb.update(consts)
    glb["_M"] = _MISSING
    glb["_cin"] = _runtime.convert_input
    return src, glb


_ASSIGN = re.compile(r"^(\s*)(_t\d+) = ")
_TMP = re.compile(r"\b_[tr]\d+\b")


def _indent(ln: str) -> int:
    return len(ln) - len(ln.lstrip())


def _dce(lines: list[str]) -> list[str]:
    """Drop single-line assignments to temporaries nobody reads (e.g. the unused half of a
    pair).  Bounds checks are separate lines, so errors are still raised."""
    while True:
        uses: dict[str, int] = {}
        for ln in lines:
            for name in _TMP.findall(ln):
                uses[name] = uses.get(name, 0) + 1
        out = [ln for ln in lines
               if not ((m := _ASSIGN.match(ln)) and uses.get(m.group(2), 0) == 1)]
        if len(out) == len(lines):
            break
        lines = out
    # comments describing code that is gone; blocks left empty
    out = []
    for k, ln in enumerate(lines):
        nxt = lines[k + 1] if k + 1 < len(lines) else ""
        if ln.lstrip().startswith("#") and (nxt.lstrip().startswith("#") or _indent(nxt) < _indent(ln)
                                           or nxt.lstrip().startswith("return")):
            continue
        out.append(ln)
        if ln.rstrip().endswith(":") and not ln.lstrip().startswith("#") and _indent(nxt) <= _indent(ln):
            out.append(" " * (_indent(ln) + 4) + "pass")
    return out


_DEF = re.compile(r"^(\s*)(_t\d+) = (.*)$")
_NON_SSA = re.compile(r"\b(_a\d+|_r\d+|_kk|_aa|_i\d+)\b")
MAX_LINE = 110


def _inline(lines: list[str]) -> list[str]:
    """Substitute a temporary used exactly once into its use on a later line of the same
    block: NumPy then reuses the buffers of the (unnamed) intermediate arrays ("temporary
    elision") and frees them early, which matters for large n.  Temporaries that are
    shared, checked, or would make a line longer than ``MAX_LINE`` stay named."""
    lines = list(lines)
    changed = True
    while changed:
        changed = False
        ndef: dict[str, int] = {}
        uses: dict[str, list[int]] = {}
        for k, ln in enumerate(lines):
            m = _DEF.match(ln)
            if m:
                ndef[m.group(2)] = ndef.get(m.group(2), 0) + 1
            for name in _TMP.findall(ln):
                uses.setdefault(name, []).append(k)
        for k, ln in enumerate(lines):
            m = _DEF.match(ln)
            if not m or ndef.get(m.group(2)) != 1:
                continue
            ind, name, expr = m.groups()
            occ = [j for j in uses.get(name, []) if j != k]
            if len(occ) != 1 or lines[occ[0]].count(name) != 1:
                continue
            j = occ[0]
            if j < k or _indent(lines[j]) != len(ind):
                continue
            if any(_indent(lines[t]) != len(ind) for t in range(k + 1, j)):
                continue
            if _NON_SSA.search(expr) and j != k + 1:
                continue
            new = re.sub(rf"\b{name}\b", lambda _m: expr, lines[j])
            if len(new) > MAX_LINE:
                continue
            lines[j] = new
            del lines[k]
            changed = True
            break
    return lines


def _dims_of(t: Type) -> list:
    out = []
    while isinstance(t, ArrayT):
        out.append(t.size)
        t = t.elem
    return out


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _size_names(t: Type) -> list[str]:
    from ..lang.types import size_names
    return size_names(t)


def _param_value(name: str, t: Type, code: str, g: _Gen, pre: list[str]):
    if isinstance(t, PairT):
        a = _param_value(name, t.fst, f"{code}_0", g, pre)
        b = _param_value(name, t.snd, f"{code}_1", g, pre)
        pre.append(f"{code}_0, {code}_1 = {code}")
        return PairV(a, b)
    if isinstance(t, ArrayT):
        r = array_rank(t)
        dims, tt = [], t
        while isinstance(tt, ArrayT):
            dims.append(tt.size)
            tt = tt.elem
        leaf = scalar_leaf(t)
        dt = "f" if isinstance(leaf, RealT) else "i" if isinstance(leaf, (IndexT, SizeT)) else "b"
        return V(code, frozenset(), r, dt, tuple(dims), g.root)
    dt = "f" if isinstance(t, RealT) else "i" if isinstance(t, (IndexT, SizeT)) else "b"
    return V(code, frozenset(), 0, dt, (), g.root)


def _output(v, g: _Gen) -> str:
    if isinstance(v, PairV):
        return f"({_output(v.fst, g)}, {_output(v.snd, g)})"
    if isinstance(v, IdxV):
        v = g.materialise(v)
    if v.S:
        raise EvalError("the program result depends on an index variable")  # pragma: no cover
    if v.rank == 0:
        return {"f": f"_float({v.code})", "i": f"int({v.code})", "b": f"bool({v.code})"}[v.dt]
    code = v.code
    if v.dt == "f" and v.const is None:
        pass
    return f"_out_array({code})" if v.ro else code


def compile(prog: Program) -> CompiledProgram:   # noqa: A001 - the documented public name
    """Compile ``prog`` to a vectorised NumPy callable (see the module docstring).

    The result takes the inputs positionally or by keyword, validates their shapes
    (:class:`~eqsat_ad.errors.ShapeError`), and returns the same values as
    :func:`eqsat_ad.lang.interp.evaluate` (up to floating-point rounding of reductions).
    Programs the vectorised executor cannot run (a ``build`` whose size depends on an
    index variable, i.e. a ragged array) fall back to the reference interpreter;
    ``fn.fallback`` says why.

    >>> from eqsat_ad.lang.syntax import parse
    >>> f = compile(parse("(fun ((A (mat m n)) (x (vec n))) "
    ...                   "(build m (lambda (i) (sum n (lambda (j) (* (get (get A i) j) (get x j)))))))"))
    >>> f(A=[[1.0, 2.0], [3.0, 4.0]], x=[1.0, 1.0])
    array([3., 7.])
    """
    from ..lang.typecheck import elaborate
    try:
        src, glb = generate_source(prog)
        fallback = None
    except _Unsupported as exc:
        fallback = str(exc)
    if fallback is not None:
        from ..lang.interp import evaluate
        prog2 = elaborate(prog)

        def _run(self, *args, **kwargs):
            return evaluate(prog2, *args, **kwargs)
        src = (f"# The NumPy backend cannot vectorise this program ({fallback});\n"
               f"# it runs with the reference interpreter.\n")
        cls = type("CompiledProgram", (CompiledProgram,), {"__call__": _run})
        obj = cls.__new__(cls)
        obj.source, obj.program, obj.fallback = src, prog2, fallback
        return obj
    ns: dict[str, Any] = {}
    code = builtins.compile(src, "<eqsat_ad generated>", "exec")
    exec(code, glb, ns)                                          # noqa: S102
    fn = ns["_run"]
    cls = type("CompiledProgram", (CompiledProgram,), {"__call__": fn, "_positional": fn})
    obj = cls.__new__(cls)
    obj.source, obj.program, obj.fallback = src, elaborate(prog), None
    return obj
