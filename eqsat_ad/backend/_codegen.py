"""The code generator of the NumPy backend: compile-time values (`V`: code + index axes +
rank + kind), blocks, and expression compilation (scalars, arrays, ``get``, ``if``).
Reductions and ``ifold`` are in :mod:`._folds`; the layout is described in
:mod:`.numpy_backend` and ``docs/backend.md``.
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import EvalError
from ..lang.primitives import ARG_EXTREMES, COMPARISONS, INT_DIVISION, LOGIC, REAL_FNS
from ..lang.ast import (BoolLit, Build, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,
                        Prim, Program, Scan, Snd, Sum, Var, scoped_children)
from ..lang.binders import all_names, canonical_names, fresh, subst
from ..lang.types import size_names
from ..cost.semantics import (diagonal_select, range_condition, stencil_factors, stencil_form, window_read)
from ._folds import FoldMixin
from ._taps import TapMixin
from ._values import (Block, IdxV, PairV, V, _alive, _drop_unit_axes, _expand_pow, _int_exponent, _leaves, _lit,
                      _rebuild, _show, _Unsupported)


#: the largest sub-term (nodes, as a tree) looked up in the axis memo (see ``_Gen.ev``): its key
#: renames the whole term, so keys for every sub-term of a deep one cost the square of its size
#: (GradBench's bundle-adjustment Jacobian took 100 s to compile); the terms the memo shares in
#: practice -- a product or a sum over one axis -- are a few dozen nodes
AXIS_MEMO_MAX_NODES = 400


class _Gen(FoldMixin, TapMixin):
    #: code for another array namespace (numpy_backend.generate_source(portable=True))
    portable = False

    def __init__(self, prog: Program):
        self.prog = prog
        self.root = Block(None, "root")
        self.barrier = self.root
        self.cur = self.root
        self.memo: dict = {}
        self.fvc: dict = {}
        self.getc: dict = {}
        self.sizec: dict = {}         # term -> its tree size, capped (see small)
        self.ntmp = 0
        self.depth = 0
        self.ext: dict[int, V] = {}
        self.guard: tuple = ()        # ((code, block), ...) conditions under which we run
        self.idx_intern: dict = {}
        self.consts: dict[str, Any] = {}
        self.keep: list = []          # keep compile-time objects alive (ids in memo keys)
        self.checked: set = set()
        self.lists: dict = {}
        self.axis_memo: dict = {}     # one-index sub-terms modulo the index name (see ev)
        self.axis_guards: dict = {}   # axis_memo key without its guards -> the guard tuples stored
        self.op_memo: dict = {}       # (operator, ids of operand values) -> (operands, value): see prim
        self.scaled: dict = {}        # id(array value) -> (it, array, scalar, divided?): see rescale
        self.raise_blk = self.root    # innermost block with checks of the term being compiled
        # Names the generator puts into program terms (split accumulators, the axis
        # placeholder) must not be any name of the program, or an inner binder of that
        # name captures them: a program may well call its accumulator "acc3".
        self.taken: set[str] = set(all_names(prog.body)) | {p.name for p in prog.params}
        self.taken.update(s for p in prog.params for s in size_names(p.type))
        self.axis_name = self.fresh_var("%axis")
        self.scalar_guards: set = set()   # guard codes that vary along no axis
        self.written: set = set()         # arrays written in place after their line (range_sum)
        self.stencil_var = self.fresh_var("%J")
        self.stencil_ext: dict = {}
        self.let_src: dict = {}           # id(value of a let) -> (its build, env)
        self.sub_parent: dict = {}        # id(extent of a sub-range) -> the extent it is part of

    def scalar_guard(self, code: str, v: V) -> str:
        """``code`` (a guard computed from ``v``), noted as scalar when ``v`` varies along no axis."""
        if not v.S:
            self.scalar_guards.add(code)
        return code

    def fresh_var(self, base: str) -> str:
        """A language-level variable name used nowhere in the program (nor given out before)."""
        name = fresh(base, self.taken)
        self.taken.add(name)
        return name

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

    def small(self, e: Expr) -> bool:
        """Has ``e`` at most :data:`AXIS_MEMO_MAX_NODES` nodes, counted as a tree?  (Sizes are
        memoised per term, so asking for every sub-term of a program is linear in it.)"""
        sizes = self.sizec
        if e not in sizes:
            stack = [(e, False)]
            while stack:
                n, done = stack.pop()
                if n in sizes:
                    continue
                if done:
                    sizes[n] = min(AXIS_MEMO_MAX_NODES + 1, 1 + sum(sizes[c] for c in n.children()))
                else:
                    stack.append((n, True))
                    stack.extend((c, False) for c in n.children() if c not in sizes)
        return sizes[e] <= AXIS_MEMO_MAX_NODES

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
                if isinstance(leaf, IdxV) and leaf.off is not None and leaf.off.block.level > blk.level:
                    blk = leaf.off.block
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
        key = (S, id(b), tuple(self.ext[d].code for d in sorted(S)))
        if key in self.checked:
            return
        self.checked.add(key)
        exts = [self.ext[d] for d in sorted(S)]
        for k, x in enumerate(exts):      # a sub-range is no longer than its axis
            while id(x) in self.sub_parent:
                x = self.sub_parent[id(x)]
            exts[k] = x
        keys = sorted(str(x.skey) for x in exts)
        if all(isinstance(x.skey, str) for x in exts) and any(
                all(keys.count(k) <= dims.count(k) for k in keys) for dims in self.param_dims):
            return
        if len(exts) == 1 and exts[0].const is not None and exts[0].const < 10 ** 7:
            return
        self.raising(b).lines.append(f"_check_elems({' * '.join(x.code for x in exts)}, "
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
        # Memo entries are (value, the innermost block holding code of the term that may
        # raise: bounds checks, allocation checks).  Reuse a term only while that block is
        # open, i.e. its checks run before the use.  The value alone can outlive them:
        # (length (get M 0)) is the size n and (fst (pair 1.0 (get x 9))) is 1.0, both
        # valid after the branch that computed them closed -- without the check that raises.
        if self.has_get(e):
            g = tuple(c for c, _ in self.guard)
            for k in range(len(g), -1, -1):
                hit = self.memo.get((e, fk, g[:k]))
                if hit is not None and _alive(hit[0]) and hit[1].open:
                    self.raising(hit[1])
                    return hit[0]
            key = (e, fk, g)
        else:
            key = (e, fk)
            hit = self.memo.get(key)
            if hit is not None and _alive(hit[0]) and hit[1].open:
                self.raising(hit[1])
                return hit[0]
        # A scalar sub-term over ONE index axis is the same 1-D array whatever the index is
        # called and at whatever depth it stands (softmax: exp x[i] over i, exp x[j] over j):
        # compute it once and give it the other axis as a reshaped view.
        akey = None
        idx = [n for n in names if isinstance(env[n], IdxV)]
        if len(idx) == 1 and self.small(e):
            iv = env[idx[0]]
            size = (iv.ext.skey if iv.ext.skey is not None else iv.ext.code,
                    None if iv.off is None else (iv.off.code, id(iv.off.block)))
            others = tuple(id(env[n]) for n in names if n != idx[0])
            g = tuple(c for c, _ in self.guard) if self.has_get(e) else ()
            # binders inside renamed by nesting level as well: the optimiser names them by their
            # depth in the program, so the same sum at two depths has two spellings (mlp3's
            # gradient recomputed W1 @ x three times)
            akey = (canonical_names(subst(e, idx[0], Var(self.axis_name))), size, others, g)
            # computed under fewer guards is fine too: a prefix of these, or for a computed term
            # (not a read: its reshaped view would stand in for a slice the layouts recompute)
            # any subset -- the guards of enclosing loops come in their nesting order, so a term
            # of a let's loop over T read again inside a loop over d has ((T > 0),) then
            # ((d > 0), (T > 0)) (attention's K @ q)
            cands = [g[:k] for k in range(len(g), -1, -1)]
            if type(e) is not Get:
                now = set(g)
                cands += sorted((g0 for g0 in self.axis_guards.get(akey[:3], ()) if set(g0) <= now
                                 and g0 != g[:len(g0)]), key=len, reverse=True)
            for g0 in cands:
                hit = self.axis_memo.get(akey[:3] + (g0,))
                if hit is not None and _alive(hit[0]) and _alive(iv) and hit[1].open:
                    self.raising(hit[1])
                    w = hit[0]
                    if w.S == frozenset({iv.d}):
                        v = w
                    else:
                        shape = "-1" + ", 1" * (iv.d - 1)
                        v = self.emit(f"{w.code}.reshape({shape})", [w, iv.ext], {iv.d}, 0, w.dt,
                                      skey=w.skey)
                    self.memo[key] = (v, hit[1])
                    return v
        start, outer = self.cur, self.raise_blk
        self.raise_blk = self.root
        v = self._ev(e, env)
        # blocks opened inside the term (its loops, branches) are part of its own code
        blk = self.raise_blk if self.raise_blk.level <= start.level else start
        self.raise_blk = outer
        self.raising(blk)
        self.memo[key] = (v, blk)
        if akey is not None and isinstance(v, V) and v.rank == 0 and v.S == frozenset({iv.d}):
            self.axis_memo[akey] = (v, blk)
            self.axis_guards.setdefault(akey[:3], set()).add(akey[3])
        return v

    def raising(self, b: Block) -> Block:
        """Note that code that may raise is in block ``b`` (for the memo of :meth:`ev`)."""
        if b.level > self.raise_blk.level:
            self.raise_blk = b
        return b

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
            v = self.prim(e, env)
            if type(v) is V and v.S and not v.rank and v.ew is None and e.op not in ("and", "or") \
                    and v.code not in self.written:
                self.note_elementwise(v, [self.ev(a, env) for a in e.args])
            return v
        if t is Let:
            # an index shifted by a scalar, (let ((t (- i 1))) ..), stays an index (slices
            # of it are views), not an array of positions (gathers)
            v = self.shifted_index(e.value, env)
            if v is None:
                v = self.ev(e.value, env)
                if type(e.value) is Build and isinstance(v, V):
                    # a sum over its elements is a sum of its body (_folds.reduce)
                    self.let_src[id(v)] = (e.value, env)
                    self.keep.append(v)
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
            r = self.tap_loop(e, env)
            if r is not None:
                return r
            return self.reduce("sum", e.size, e.var, e.body, env, e)
        if t is IFold:
            return self.ifold(e, env)
        if t is Scan:
            return self.scan(e, env)
        raise EvalError(f"cannot compile {e!r}")

    def materialise(self, iv: IdxV) -> V:
        if iv.mat is None or not iv.mat.block.open:
            n, d, o = iv.ext.code, iv.d, iv.off
            code = f"_arange({n})" if o is None else f"_arange({o.code}, {o.code} + {n})"
            code += f"[:{', None' * (d - 1)}]" if d > 1 else ""
            iv.mat = self.emit(code, [iv.ext] + ([o] if o is not None else []), {d}, 0, "i")
        return iv.mat

    # -- shifted indices -------------------------------------------------------------
    def int_const(self, k: int) -> V:
        return V(repr(int(k)), frozenset(), 0, "i", (), self.root, skey=int(k), const=int(k))

    def add_int(self, a: "V | None", b: "V | None") -> "V | None":
        """``a + b`` of scalar integer values (None: 0), folded when both are constants."""
        if a is None or a.const == 0:
            return b
        if b is None or b.const == 0:
            return a
        if a.const is not None and b.const is not None:
            return self.int_const(a.const + b.const)
        return self.emit(f"({a.code} + {b.code})", [a, b], (), 0, "i")

    def axis_offset(self, idx: Expr, env: dict):
        """``(iv, off)`` when ``idx`` is an index variable ``i`` plus or minus a scalar integer
        (``i``, ``(+ i k)``, ``(+ k i)``, ``(- i k)``): the total offset from ``i``'s position,
        ``iv.off`` included (a scalar value; constant 0 for none); else None."""
        iv, off = None, None
        if type(idx) is Var and isinstance(env.get(idx.name), IdxV):
            iv, off = env[idx.name], self.int_const(0)
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
                        o = (self.int_const(-o.const) if o.const is not None
                             else self.emit(f"(-{o.code})", [o], (), 0, "i"))
                    off = o
        if iv is None:
            return None
        return iv, (self.add_int(iv.off, off) or self.int_const(0))

    def shifted_index(self, e: Expr, env: dict) -> "IdxV | None":
        """The index variable ``i`` shifted by a scalar, for ``e`` = ``i`` / ``i +- k``
        (the same object for the same shift: memo keys are ids), else None."""
        if self.portable or type(e) not in (Var, Prim):
            return None
        r = self.axis_offset(e, env)
        if r is None:
            return None
        iv, off = r
        base = iv.off
        if (base is None and off.const == 0) or (base is not None and off is base):
            return iv
        key = (iv.d, id(iv.ext), iv.ext.code, off.code, id(off.block))
        hit = self.idx_intern.get(key)
        if hit is not None and _alive(hit):
            return hit
        nv = self.idx_intern[key] = IdxV(iv.d, iv.ext, None if off.const == 0 else off)
        self.keep.append(nv)
        return nv

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
        if op in ("+", "-") and not self.portable:
            r = self.range_sum(e, env)
            if r is not None:
                return r
        vs = [self.ev(a, env) for a in args]
        if op in ARG_EXTREMES:     # along the vector's axis (the first); loop axes stay
            (a,) = vs
            if isinstance(a, PairV) or a.rank != 1:
                raise EvalError(f"{op} of something other than a vector in {_show(e)}")
            return self.emit(f"{ARG_EXTREMES[op].numpy_name}({a.code})", vs, a.S, 0, "i")
        for v in vs:
            if isinstance(v, PairV) or v.rank:
                raise EvalError(f"operator {op} applied to a pair or array in {_show(e)}")
        if op in INT_DIVISION:
            return self.scalar_op(op, vs, e)
        # value numbering: the same operator on the same values is computed once, whatever
        # the terms were written as (layer normalisation's tanh of the normalised input: one
        # copy reads a let-bound x - mean, the other the same difference inline).  Only operators
        # that cannot fail (division by zero is IEEE here); operand values are immutable once
        # read (an array written in place is written before its first read).
        key = (op, tuple(map(id, vs)))
        hit = self.op_memo.get(key)
        if hit is not None and all(x is y for x, y in zip(hit[0], vs)) and _alive(hit[1]):
            return hit[1]
        v = self.scalar_op(op, vs, e)
        self.op_memo[key] = (vs, v)
        return v

    def scalar_op(self, op: str, vs: list, e: Prim) -> V:
        """The value of ``op`` on the scalar (per-element) values ``vs``."""
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
        if op in REAL_FNS:     # the real functions of lang/primitives.py, by their NumPy names
            return self.emit(f"{REAL_FNS[op].numpy_name}({', '.join(v.code for v in vs)})", vs, S, 0, "f")
        b = vs[1]
        if op in ("*", "/") and not scalar and a.dt == "f" and b.dt == "f":
            r = self.rescale(op, a, b, e)
            if r is not None:
                return r
        if op in ("+", "-", "*"):
            dt = "f" if "f" in (a.dt, b.dt) else "i"
            v = self.emit(f"({a.code} {op} {b.code})", vs, S, 0, dt)
        elif op == "/":
            if scalar and not (b.const is not None and b.const != 0 and b.dt == "f"):
                return self.emit(f"_div({a.code}, {b.code})", vs, S, 0, "f")
            v = self.emit(f"({a.code} / {b.code})", vs, S, 0, "f")
        else:
            v = None
        if v is not None:
            if op in ("*", "/") and v.dt == "f" and a.S and not b.S:
                self.scaled[id(v)] = (v, a, b, op == "/")
            elif op == "*" and v.dt == "f" and b.S and not a.S:
                self.scaled[id(v)] = (v, b, a, False)
            return v
        if op == "pow":
            return self.emit(f"_pow({a.code}, {b.code})", vs, S, 0, "f")
        if op in INT_DIVISION:
            return self.int_division(op, a, b, vs, S, e)
        if op in ("=", "<", ">", "<=", ">="):
            pop = "==" if op == "=" else op
            return self.emit(f"({a.code} {pop} {b.code})", vs, S, 0, "b")
        raise EvalError(f"unknown operator {op!r} in {_show(e)}")

    def rescale(self, op: str, a: V, b: V, e: Prim) -> V | None:
        """``a op b`` where one operand is an array that is itself an array ``A`` scaled by a
        scalar (``A * s1`` or ``A / s1``, noted in :attr:`scaled`) and the other a scalar:
        ``A`` scaled once by the scalars combined, one pass over the array instead of one per
        factor (layer normalisation's gradient multiplied and divided a term by five scalars in
        turn).  Reassociated as the e-graph's constant folds do (finite values assumed).
        None otherwise."""
        if op == "*" and not a.S:
            a, b = b, a
        if b.S or b.rank or a.rank:
            return None
        prev = self.scaled.get(id(a))
        if prev is None or prev[0] is not a or not _alive(prev[1]) or not _alive(prev[2]):
            return None
        _, base, s1, divided = prev
        # A*s1*b = A*(s1*b), A*s1/b = A*(s1/b), A/s1*b = A*(b/s1), A/s1/b = A/(s1*b)
        if op == "*":
            k, final = (self.scalar_op("/", [b, s1], e) if divided else self.scalar_op("*", [s1, b], e)), "*"
        else:
            k, final = (self.scalar_op("*", [s1, b], e), "/") if divided else (self.scalar_op("/", [s1, b], e), "*")
        v = self.emit(f"({base.code} {final} {k.code})", [base, k], base.S, 0, "f")
        self.note_elementwise(v, [base, k])
        self.scaled[id(v)] = (v, base, k, final == "/")
        return v

    def int_division(self, op: str, a: V, b: V, vs, S, e: Prim) -> V:
        """``div``/``mod`` (floor, as Python's ``//``/``%``).  A nonzero literal divisor is
        inline; any other divisor is checked first -- where a guard (an enclosing vectorised
        ``if``, a loop's ``n > 0``) masks a zero out, it is not needed and gives 0."""
        if a.dt != "i" or b.dt != "i":
            raise EvalError(f"operands of {op} are not integers in {_show(e)}")
        sym = "//" if op == "div" else "%"
        if b.const is not None and b.const != 0:
            return self.emit(f"({a.code} {sym} {b.code})", vs, S, 0, "i")
        msg = self.const(_show(e, 100), "_w")
        check = f"if _needed(({b.code}) == 0{self.guards_code()}): _raise_zero_div({msg})"
        fn = "_floordiv" if op == "div" else "_mod"
        v = self.emit(f"{fn}({a.code}, {b.code})", vs, S, 0, "i", mayfail=True, pre=[check])
        self.raising(v.block)
        return v

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
        # A computed extent may be negative ((- n 1) at n = 0): the loop is empty, as in the
        # interpreter, and shapes get 0.  (Per-element extents are clamped by _max_extent.)
        if n.S or isinstance(n.skey, str) or (n.const is not None and n.const >= 0):
            return n
        if n.const is not None:
            return V("0", frozenset(), 0, "i", (), self.root, skey=0, const=0)
        return self.emit(f"max({n.code}, 0)", [n], (), 0, "i")

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
            self.guard = self.guard + ((self.scalar_guard(f"({ext.code} > 0)", ext), ext.block),)
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
                v = V(body.code, S2, r + 1, body.dt, dims, body.block, ro=body.ro)
                v.ew = body.ew
                return v
            if r and body.ew is not None:
                # recompute the elementwise result in the new axis order instead of returning
                # a transposed (Fortran-ordered) view of it: C order, as NumPy code would
                return self.relayout(body, perm, stale, S2, dims)
            return self.emit(code, [body], S2, r + 1, body.dt, dims, ro=body.ro)
        what = self.const(f"build {_show(e, 60)}", "_w")
        if r == 0 and not body.S:
            if not (isinstance(n.skey, str) or n.const is not None and n.const < 10 ** 7):
                self.raising(self.target([body, n])).lines.append(f"_check_elems({n.code}, {what})")
            return self.emit(f"_full({n.code}, {body.code})", [body, n], (), 1, body.dt, dims,
                             comment=_show(e))
        self.raising(self.target([body, n])).lines.append(
            f"_check_elems({n.code} * _size({body.code}), {what})")
        code = f"_broadcast_to({body.code}, ({n.code},) + _shape({body.code}))"
        return self.emit(code, [body, n], body.S, r + 1, body.dt, dims, ro=True, comment=_show(e))

    # -- layouts -----------------------------------------------------------------------
    def note_elementwise(self, v: V, ops: list, make=None, shape=None) -> None:
        """Remember how ``v`` (a fresh array: its line ``v.code = code``) is computed
        elementwise from the rank-0 values ``ops``, so that :meth:`relayout` can compute it
        in another axis order.  ``make(codes, layout)`` gives the code from the operands'
        codes (default: ``code`` with each operand's code replaced)."""
        if any(not isinstance(o, V) or o.rank or o is v for o in ops) or v.code in self.written:
            return
        if make is None:
            prefix = f"{v.code} = "
            for ln in reversed(v.block.lines):
                if ln.startswith(prefix):
                    code = ln[len(prefix):]
                    break
            else:
                return
            olds = sorted({o.code for o in ops}, key=len, reverse=True)
            pat = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, olds)) + r")(?![\w.\[(])")
            spans = [(m.start(), m.end(), m.group(1)) for m in pat.finditer(code)]
            if len(spans) != len(ops):
                return

            def make(cs, layout, code=code, spans=spans, olds=[o.code for o in ops]):
                out, at = [], 0
                for a, b, old in spans:
                    out += [code[at:a], cs[olds.index(old)]]
                    at = b
                return "".join(out) + code[at:]
        v.ew = (make, tuple(ops), shape)

    def relayout(self, body: V, perm: list, stale: int, S2, dims) -> V:
        """``body`` (rank r, an elementwise result, ``body.ew``) with its axes permuted by
        ``perm`` and the ``stale`` unit axes after the first ``r + 1`` dropped, computed
        from its operands laid out that way (views; an operand that is itself an
        elementwise result over several axes is recomputed the same way, else NumPy would
        follow its order) -- a fresh C-ordered array."""
        N = len(perm)
        keep = [k for k in range(N) if not (body.rank + 1 <= k < body.rank + 1 + stale)]
        code, new = self._relaid_ew(body.ew, N, perm, keep)
        v = self.emit(code, list(body.ew[1]), S2, body.rank + 1, body.dt, dims)
        v.ew = new
        return v

    def _relaid_ew(self, ew, N: int, perm: list, keep: list):
        make, ops, shape = ew
        parts = [self._relaid(o, N, perm, keep) for o in ops]
        # shape: the extents' code per position of the value's own frame, None for a unit axis
        new_shape = None if shape is None else [([None] * (N - len(shape)) + shape)[perm[k]] for k in keep]
        layout = {"pos": {perm[k]: i for i, k in enumerate(keep)}, "shape": new_shape, "N": N}

        def again(cs, later, make=make, first=layout):
            """``make`` for the relaid value: positions go through both layouts."""
            pad = later["N"] - len(first["pos"])
            pos = {o: later["pos"][m + pad] for o, m in first["pos"].items() if m + pad in later["pos"]}
            return make(cs, {"pos": pos, "shape": later["shape"], "N": first["N"]})
        return make([c for c, _ in parts], layout), (again, tuple(nv for _, nv in parts), new_shape)

    def _relaid(self, o: V, N: int, perm: list, keep: list):
        """The code of the rank-0 operand ``o`` (broadcast in an ``N``-dim frame) in the new
        axis order, and a value describing it there."""
        if not o.S:
            return o.code, o
        new_n = len(keep)
        pad = N - o.p
        status = {pos: ("real" if (N - pos) in o.S else "unit") for pos in range(pad, N)}
        flags = [status.get(perm[k]) == "real" for k in keep]
        S_new = frozenset(new_n - k for k in range(new_n) if flags[k])
        if o.ew is not None and o.ew[1] and len(o.S) > 1:   # (a contraction is not redone)
            code, new = self._relaid_ew(o.ew, N, perm, keep)
            nv = V(code, S_new, 0, o.dt, (), o.block)
            nv.ew = new
            return code, nv
        base = _drop_unit_axes(o.code, [status[p] == "real" for p in range(pad, N)])
        real_old = [p for p in range(pad, N) if status[p] == "real"]
        seq = [perm[k] for k in keep if status.get(perm[k]) == "real"]
        if seq != real_old:
            base = f"{base}.transpose({', '.join(str(real_old.index(x)) for x in seq)})"
        first = flags.index(True)
        if not all(flags[first:]):
            base = f"{base}[{', '.join(':' if f else 'None' for f in flags[first:])}]"
        return base, V(base, S_new, 0, o.dt, (), o.block)

    # -- get ---------------------------------------------------------------------------
    def get(self, e: Get, env: dict):
        a = self.ev(e.array, env)
        idx = e.index
        r = self.axis_offset(idx, env)
        if r is not None:
            return self.get_axis(a, r[0], r[1], e)
        w = self.window(a, idx, env, e)
        if w is not None:
            return w
        k = self.ev(idx, env)
        if isinstance(k, PairV) or k.rank or k.dt not in ("i",):
            raise EvalError(f"index is not an integer in {_show(e)}")
        return self.get_general(a, k, e)

    def window(self, a, idx: Expr, env: dict, e: Expr):
        """``(get x (+ i k))`` for two index axes ``i``, ``k`` and a vector ``x`` that varies
        along neither: a sliding window of ``x`` (a strided view copied, no index array, no gather:
        a convolution's ``x[i + k]``; :func:`eqsat_ad.cost.semantics.window_read`); where an
        index is out of range, the general guarded read (``_helpers.window``)."""
        ij = None if self.portable else window_read(
            idx, lambda n: env.get(n) if isinstance(env.get(n), IdxV) else None)
        if ij is None:
            return None
        i1, i2 = env[ij[0]], env[ij[1]]
        if i1.d == i2.d or not isinstance(a, V) or a.rank != 1 or a.S:
            return None
        start = self.add_int(i1.off, i2.off) or self.int_const(0)
        S = frozenset({i1.d, i2.d})
        msg = self.const(_show(e, 100), "_w")
        v = self.emit(f"_window({a.code}, {start.code}, {self.axes_shape(S)}, ({i1.d}, {i2.d}), {msg}"
                      f"{self.guards_code()})", [a, start, i1.ext, i2.ext], S, 0, a.dt, mayfail=True)
        self.raising(v.block)
        return v

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
            if iv.off is None:
                k = self.materialise(iv)
                if off.const != 0:
                    k = self.emit(f"({k.code} + {off.code})", [k, off], k.S, 0, "i")
            else:     # off is the total offset: positions + off
                k = self.emit(f"(_arange_at({iv.ext.code}, {d}) + {off.code})", [iv.ext, off], {d}, 0, "i")
            return self.get_general(a, k, e)
        n, L, r, pa = iv.ext, a.dims[0], a.rank, a.p
        static_ok = (off.const == 0 and L is not None and L == n.skey) or (
            off.const is not None and off.const >= 0 and isinstance(L, int)
            and isinstance(n.skey, int) and off.const + n.skey <= L)
        src = a.code
        if not static_ok:
            src = f"{a.code}[:{n.code}]" if off.const == 0 else f"{a.code}[{off.code}:{off.code} + {n.code}]"

        def relayout(src: str) -> str:
            """data dim 0 of ``src`` (rows ``off .. off + n - 1`` of ``a``) becomes the axis of depth d"""
            if d > pa:
                perm = list(range(1, r)) + [0] + list(range(r, r + pa))
                code = src if perm == sorted(perm) else f"{src}.transpose({', '.join(map(str, perm))})"
                k = d - 1 - pa
                if k:
                    code = f"{code}[{', '.join([':'] * r + ['None'] * k)}]"
                return code
            slot = r + (pa - d)
            perm = list(range(1, r)) + list(range(r, slot)) + [0] + list(range(slot, r + pa))
            code = src if perm == sorted(perm) else f"{src}.transpose({', '.join(map(str, perm))})"
            return f"{code}[{', '.join([':'] * slot + ['0'])}]"
        code = relayout(src)
        S = a.S | {d}
        dims = tuple(a.dims[1:])
        if static_ok:
            if code == a.code or a.code.isidentifier():   # a view: no temporary needed
                return V(code, S, r - 1, a.dt, dims, a.block, ro=a.ro)
            return self.emit(code, [a, n], S, r - 1, a.dt, dims, mayfail=True, ro=a.ro)
        cond = (f"{n.code} > {a.code}.shape[0]" if off.const == 0 else
                f"{off.code} < 0 or {off.code} + {n.code} > {a.code}.shape[0]")
        kcode = f"_arange_at({n.code}, {d})" + ("" if off.const == 0 else f" + {off.code}")
        b = self.target([a, n, off], mayfail=True)
        name = self.tmp()
        if not self.guard:
            lines = self._check_lines(cond, kcode, a.code, e, "", name, code)
        else:
            # under a vectorised if (e.g. (if (= i 0) .. (get y (- i 1)))) the rows that stick
            # out are masked out: the guards are tested at those positions of the axis only
            # (not broadcast over the whole range and every other axis), and the read is the
            # same slice with its out-of-range rows clamped to the edge row -- no gather
            msg = self.const(_show(e, 100), "_w")
            lines = [f"if {cond}:",
                     f"    if _span_needed({off.code}, {n.code}, {a.code}.shape[0], {d}"
                     f"{self.guards_code()}): _raise_oob({kcode}, {a.code}.shape[0], {msg})",
                     f"    {name} = {relayout(f'_edge_rows({a.code}, {off.code}, {n.code})')}",
                     "else:",
                     f"    {name} = {code}"]
        self.raising(b).lines.extend(lines)
        return V(name, S, r - 1, a.dt, dims, b, ro=a.ro)

    @staticmethod
    def gather_code(acode, kcode, r, pa, pk, Sa, Sk, portable=False) -> str:
        if not Sk:
            return f"{acode}[{kcode}]"
        if not Sa and portable:     # not every namespace indexes with an array of indices
            return f"_take_rows({acode}, {kcode})"
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
        fast = self.gather_code(a.code, k.code, r, a.p, k.p, a.S, k.S, self.portable)
        gather = self.gather_code("_aa", "_kk", r, a.p, k.p, a.S, k.S, self.portable)
        if (k.const is not None and isinstance(L, int) and 0 <= k.const < L) or (
                k.ub is not None and k.ub == L):
            if k.ub is not None and r == 1 and not a.S and a.dt == "f" and not self.portable:
                # a sequential loop scanning a vector: read Python floats from a list
                # (converted once, before the loop) instead of NumPy scalars (~3x faster)
                lst = self.lists.get(id(a))
                if lst is None or not lst.block.open:
                    lst = self.lists[id(a)] = self.emit(f"{a.code}.tolist()", [a], (), 1, "f")
                    self.keep.append(a)
                return self.emit(f"{lst.code}[{k.code}]", [lst, k], S, 0, "f", mayfail=True)
            return self.emit(fast, [a, k], S, r - 1, a.dt, dims, mayfail=True, ro=a.ro)
        cond = (f"not 0 <= {k.code} < {a.code}.shape[0]" if not k.S
                else f"_oob({k.code}, {a.code}.shape[0])")
        b = self.target([a, k], mayfail=True)
        name = self.tmp()
        self.raising(b).lines.extend(self._check_lines(cond, k.code, a.code, e, gather, name, fast))
        return V(name, S, r - 1, a.dt, dims, b, ro=a.ro)

    # -- conditionals ----------------------------------------------------------------
    def if_(self, e: If, env: dict):
        d = self.diagonal_if(e, env)
        if d is not None:
            return d
        r = self.range_if(e, env)
        if r is not None:
            return r
        c = self.ev(e.cond, env)
        if isinstance(c, PairV) or c.rank or c.dt != "b":
            raise EvalError(f"condition is not a bool in {_show(e)}")
        if c.const is not None:
            return self.ev(e.then if c.const else e.else_, env)
        if not c.S:
            return self.scalar_if(c, e, env)
        return self.where_if(c, e, env)

    def where_if(self, c: V, e: If, env: dict, b=None):
        """``np.where`` over both branches, each evaluated guarded (``b``: the else branch,
        already evaluated under the guard ``not c``)."""
        saved = self.guard
        self.guard = saved + ((c.code, c.block),)
        a = self.ev(e.then, env)
        if b is None:
            self.guard = saved + ((f"(~{c.code})", c.block),)
            b = self.ev(e.else_, env)
        self.guard = saved
        return self.where(c, a, b, e)

    # -- range guards --------------------------------------------------------------------
    def _scalar_term(self, e: Expr, env: dict) -> bool:
        """Does nothing in ``e`` vary along an axis (its free names bound to such values)?"""
        for n in self.fv(e):
            v = env.get(n)
            if v is None or isinstance(v, IdxV) or any(isinstance(x, IdxV) or x.S for x in _leaves(v)):
                return False
        return True

    def range_guard(self, e: If, env: dict):
        """``(then, other, d, facts)`` when ``e``'s condition holds exactly on a range of one
        index axis (of depth ``d``): ``then`` is the branch taken there, ``other`` the one
        elsewhere; None otherwise.  Nothing is emitted."""
        if self.portable or type(e.then) is BoolLit or type(e.else_) is BoolLit:
            return None
        # (if c1 (if c2 a b) b) is (if (and c1 c2) a b): one range, and ``a`` a stencil there
        # (a gradient reads its residual at i - 1 under 1 <= i and i - 1 < n - 2).  Only for an
        # inner comparison of indices, names and literals, which cannot fail where c1 does not
        # hold; when the conjunction is no range, c1 alone may still be one.
        cond, inner = e.cond, e.then
        while type(inner) is If and inner.else_ == e.else_ and _plain_index_test(inner.cond):
            cond, inner = Prim("and", (cond, inner.cond)), inner.then
        if inner is not e.then:
            g = self._range_guard(cond, inner, e.else_, env, nested=True)
            if g is not None:
                return g
        return self._range_guard(e.cond, e.then, e.else_, env)

    def _range_guard(self, cond: Expr, a: Expr, b: Expr, env: dict, nested: bool = False):
        """:meth:`range_guard` of ``(if cond a b)``; ``nested``: ``cond`` is a conjunction of
        nested conditions, whose complement is no range."""
        rc = range_condition(cond, lambda n: env.get(n) if isinstance(env.get(n), IdxV) else None,
                             lambda x: self._scalar_term(x, env))
        if rc is None or (nested and rc[0]):
            return None
        swapped, facts = rc
        then, other = (b, a) if swapped else (a, b)
        ivs = [env[name] for name, *_ in facts]
        iv0 = ivs[0]
        d = iv0.d
        if any(iv.d != d or iv.ext is not iv0.ext for iv in ivs) or iv0.ext is not self.ext.get(d):
            return None
        for name in self.fv(then):
            v = env.get(name)
            if isinstance(v, IdxV) and v.d != d and d in v.ext.S:
                return None
        return then, other, d, list(zip(facts, ivs))

    def range_of(self, facts: list, n: V, env: dict):
        """``(lo, hi, m)``: the positions ``lo <= p < hi`` (``m = hi - lo`` of them) where the
        facts of :meth:`range_guard` hold; None when a bound varies along an axis."""
        lo_parts, hi_parts = [], []
        for (name, kind, terms, const), iv in facts:
            vals = [(sg, self.ev(a, env)) for sg, a in terms]
            if any(isinstance(v, PairV) or isinstance(v, IdxV) or v.S or v.rank or v.dt != "i"
                   for _, v in vals):
                return None
            if iv.off is not None:          # the position is the value minus the shift
                vals.append((-1, iv.off))
            k = const
            code = []
            deps = []
            for sg, v in vals:
                if v.const is not None:
                    k += sg * v.const
                else:
                    code.append(("+ " if sg > 0 else "- ") + v.code)
                    deps.append(v)
            (lo_parts if kind == "lo" else hi_parts).append((k, code, deps))
        return self._range_bounds(lo_parts, hi_parts, n)

    def on_range(self, then: Expr, env: dict, d: int, lo: V, hi: V, m: V):
        """``then`` computed on the positions ``lo .. hi - 1`` of the axis of depth ``d``
        only: the index restricted to them, values varying along the axis cut to them, guards
        too (they are read where a check fails), and the guard ``m > 0``.  A stencil (see
        :meth:`stencil`) is a slice of its values computed once."""
        st = self.stencil(then, env, d, lo, hi, m)
        if st is not None:
            return st
        return self._on_range(then, env, d, lo, hi, m)

    def stencil(self, then: Expr, env: dict, d: int, lo: V, hi: V, m: V):
        """``then`` on the sub-range ``lo .. hi - 1`` when it is a stencil -- a function of
        reads ``x[i + c]`` of arrays that do not vary along the axis, and of values that do
        not either (:func:`~eqsat_ad.cost.semantics.stencil_form`): the same function read at other shifts (the gradient of
        a convolution reads its residual at i, i - 1, i - 2 under three guards) is computed
        once, ``F[J] = f(x[J + c - cmin], ...)`` over every ``J`` where all its reads are in
        range, and each use is a slice of ``F``.  Where the slice would leave ``F`` (a read
        out of range in the guarded range: an error, unless masked) the term is computed on
        the sub-range as it stands, which raises the interpreter's error."""
        if self.portable:
            return None
        sub = {}
        for name in self.fv(then):
            v = env.get(name)
            if isinstance(v, IdxV) and v.d == d:
                if v.off is not None and v.off.const is None:
                    return None
                sub[name] = 0 if v.off is None else v.off.const
        if not sub:
            return None

        def array(name):
            a = env.get(name)
            if not isinstance(a, V) or a.S or a.rank != 1:
                return None
            return a.dims[0] if isinstance(a.dims[0], int) else True
        scalar = lambda name: self._scalar_term(Var(name), env)    # noqa: E731
        # scalar factors apart: the stencil is shared with its unscaled uses, the slice scaled
        core, factors = stencil_factors(then, sub, self.stencil_var, array, scalar)
        r = stencil_form(core, sub, self.stencil_var, array, scalar)
        if r is None:
            return None
        then = core
        canon, kmin, key = r
        key = tuple(key)
        # the extent of F: every J with all reads in range
        ext = self.stencil_ext.get(key)
        if ext is None or not _alive(ext):
            parts = []
            for a, c in key:
                ln = self.length(env[a])
                parts.append((ln, c))
            deps = [ln for ln, _ in parts]
            code = ", ".join(f"{ln.code} - {c}" if c else ln.code for ln, c in parts)
            ext = self.emit(f"max(min({code}), 0)" if len(parts) > 1 or parts[0][1] else code, deps, (), 0, "i")
            self.stencil_ext[key] = ext
            self.sub_parent[id(ext)] = parts[0][0]     # no longer than the array it reads
            self.keep.append(ext)
        jv = self.idx_intern.get(("stencil", d, ext.code, id(ext.block)))
        if jv is None or not _alive(jv):
            jv = self.idx_intern[("stencil", d, ext.code, id(ext.block))] = IdxV(d, ext)
            self.keep.append(jv)
        env_c = {n: env[n] for n in self.fv(canon) if n != self.stencil_var}
        env_c[self.stencil_var] = jv
        saved_ext, saved = self.ext[d], self.guard
        # it cannot fail (an empty F aside): computed under no other guard, shared
        self.ext[d], self.guard = ext, ((self.scalar_guard(f"({ext.code} > 0)", ext), ext.block),)
        try:
            F = self.ev(canon, env_c)
        finally:
            self.ext[d], self.guard = saved_ext, saved
        if not isinstance(F, V) or F.rank or F.S != frozenset({d}):
            return None              # pragma: no cover - a real over the axis
        # J = position + kmin on the sub-range: F[lo + kmin : lo + kmin + m]
        start = self.add_int(lo, self.int_const(kmin)) or self.int_const(0)
        cond = self.emit(f"({m.code} > 0 and ({start.code} < 0 or {start.code} + {m.code} > {ext.code}))",
                         [m, start, ext], (), 0, "b")
        outer_cur, outer_barrier = self.cur, self.barrier
        blk = Block(outer_cur, "branch")
        self.cur = self.barrier = blk
        try:
            a = self._on_range(then, env, d, lo, hi, m)
            a = self.materialise(a) if isinstance(a, IdxV) else a
        finally:
            blk.open = False
            self.cur, self.barrier = outer_cur, outer_barrier
        if not isinstance(a, V) or a.rank:
            return None              # pragma: no cover
        name = self.tmp("_r")
        sl = f"{F.code}[{start.code}:{start.code} + {m.code}]" if start.const != 0 else f"{F.code}[:{m.code}]"
        tgt = self.target([F, start, m, cond])
        if tgt is not outer_cur:
            tgt = outer_cur
        tgt.lines.append(f"if {cond.code}:      # a read out of range in the guarded range")
        tgt.lines.extend("    " + ln for ln in blk.lines + [f"{name} = {a.code}"])
        tgt.lines += ["else:", f"    {name} = {sl}"]
        v = V(name, a.S, 0, a.dt, (), tgt)
        for f in reversed(factors):
            v = self.scalar_op("*", [v, self.ev(f, env)], f)
        return v

    def _on_range(self, then: Expr, env: dict, d: int, lo: V, hi: V, m: V):
        env2 = dict(env)
        for name in self.fv(then):
            v = env.get(name)
            if isinstance(v, IdxV):
                if v.d == d:
                    env2[name] = self.sub_index(v, lo, m)
            elif v is not None and any(d in x.S for x in _leaves(v)):
                env2[name] = _rebuild(v, [self.cut(x, lo, hi, d) for x in _leaves(v)])
        saved_ext, saved = self.ext[d], self.guard
        self.ext[d] = m
        self.guard = tuple((g if g in self.scalar_guards else f"_cut_axis({g}, {lo.code}, {hi.code}, {d})", gb)
                           for g, gb in saved) + ((self.scalar_guard(f"({m.code} > 0)", m), m.block),)
        try:
            return self.ev(then, env2)
        finally:
            self.ext[d], self.guard = saved_ext, saved

    def range_if(self, e: If, env: dict):
        """``(if c a b)`` where ``c`` holds exactly on a range ``lo <= i < hi`` of one index
        axis (affine comparisons of the index with scalars, conjunctions; the else branch on
        the range when ``not c`` is one): ``a`` is computed on the sub-range only -- the index
        restricted to it, shifted reads inside become plain slices, no mask, no where -- and
        written into an array holding ``b`` elsewhere.  None: not such a guard (the caller
        computes ``np.where``)."""
        g = self.range_guard(e, env)
        if g is None:
            return None
        then, other, d, facts = g
        n = self.ext[d]
        r = self.range_of(facts, n, env)
        if r is None:
            return None
        lo, hi, m = r
        split = self.range_split(then, other, env, d, n, lo, hi, m, e)
        if split is not None:
            return split
        # the other branch, everywhere (guarded by "outside the range", a mask made only
        # when a check fails)
        inside = f"_range_mask({lo.code}, {hi.code}, {n.code}, {d})"
        blk = self.target([lo, hi, n])
        saved = self.guard
        self.guard = saved + ((f"(~{inside})", blk),)
        b = self.ev(other, env)
        self.guard = saved
        lb = [self.materialise(x) if isinstance(x, IdxV) else x for x in _leaves(b)]
        if any(x.rank for x in lb):
            # arrays in the branches: np.where after all (b is valid under "not c")
            if then is not e.then and then is not e.else_:
                return None          # a nested range (range_guard): the caller's where
            c = self.ev(e.cond, env)
            if then is e.then:
                return self.where_if(c, e, env, b)
            saved = self.guard
            self.guard = saved + ((f"(~{c.code})", c.block),)
            a = self.ev(e.else_, env)
            self.guard = saved
            return self.where(c, b, a, e)
        a = self.on_range(then, env, d, lo, hi, m)
        la = [self.materialise(x) if isinstance(x, IdxV) else x for x in _leaves(a)]
        if len(la) != len(lb):
            raise EvalError(f"if branches of different types in {_show(e)}")
        out = [self.range_select(x, y, lo, hi, d, e) for x, y in zip(la, lb)]
        return _rebuild(a, out)

    def range_split(self, then: Expr, other: Expr, env: dict, d: int, n: V, lo: V, hi: V, m: V, e: If):
        """The range ``lo .. hi - 1`` starts at 0 or ends at ``n``: its complement is one range
        too, and the other branch is computed there only (:meth:`on_range`), as the range's
        branch is -- ``(if (= i 0) a (* x_i (get y (- i 1))))`` writes ``a`` into ``out[:1]`` and
        ``x[1:] * y[:-1]`` into ``out[1:]``: no mask of the range, no padded copy of ``y``.  None
        when the complement is two ranges or a branch is an array (the caller's ``where``)."""
        if lo.const == 0 and hi is not n:
            lo2, hi2 = hi, n
            m2 = self.emit(f"({n.code} - {hi.code})", [n, hi], (), 0, "i")
        elif hi is n and lo.const != 0:
            lo2, hi2, m2 = self.int_const(0), lo, lo
        else:
            return None
        # (not through :meth:`stencil`: its slow path is a branch in the current block, which
        # keeps a loop-invariant branch -- a read of a parameter -- inside a fold's loop)
        b = self._on_range(other, env, d, lo2, hi2, m2)
        lb = [self.materialise(x) if isinstance(x, IdxV) else x for x in _leaves(b)]
        if any(x.rank for x in lb):
            return None              # the values computed are dead code, dropped
        a = self.on_range(then, env, d, lo, hi, m)
        la = [self.materialise(x) if isinstance(x, IdxV) else x for x in _leaves(a)]
        if len(la) != len(lb) or any(x.rank for x in la):
            raise EvalError(f"if branches of different types in {_show(e)}")
        out = [self.range_select(x, y, lo, hi, d, e, (lo2, hi2)) for x, y in zip(la, lb)]
        return _rebuild(a, out)

    @staticmethod
    def _zero(e: Expr) -> bool:
        return type(e) is Num and e.value == 0.0

    def range_sum(self, e: Prim, env: dict):
        """A sum (``+``/``-``, nested) of terms of which some are range-guarded with 0 elsewhere,
        ``(if c a 0.0)`` times a factor that does not vary along the guarded axis: the other
        terms' sum (or zeros) in a fresh array, then each guarded term added into the slice of
        its range, ``out[lo:hi] += k * a`` -- as NumPy code writes a stencil's gradient, no
        array with a zero fill per term.  None: no such term."""
        terms: list = []

        def flat(x: Expr, sg: int) -> None:
            if type(x) is Prim and x.op in ("+", "-") and len(x.args) == 2:
                flat(x.args[0], sg)
                flat(x.args[1], sg if x.op == "+" else -sg)
            elif type(x) is Prim and x.op == "neg":
                flat(x.args[0], -sg)
            else:
                terms.append((sg, x))
        flat(e, 1)
        guarded, plain, d = [], [], None
        for sg, t in terms:
            core, factor = t, None
            if type(t) is Prim and t.op == "*" and len(t.args) == 2:
                if type(t.args[1]) is If:
                    core, factor = t.args[1], t.args[0]
                elif type(t.args[0]) is If:
                    core, factor = t.args[0], t.args[1]
            g = self.range_guard(core, env) if type(core) is If else None
            if g is not None and self._zero(g[1]) and (d is None or g[2] == d):
                d = g[2]
                guarded.append((sg, factor, g))
            else:
                plain.append((sg, t))
        if not guarded:
            return None
        n = self.ext[d]
        parts = []       # (sign, factor value, a on its range, lo, hi)
        for sg, factor, (then, _, _, facts) in guarded:
            k = self.ev(factor, env) if factor is not None else None
            if k is not None and (not isinstance(k, V) or k.rank or d in k.S):
                return None
            r = self.range_of(facts, n, env)
            if r is None:
                return None
            lo, hi, m = r
            a = self.on_range(then, env, d, lo, hi, m)
            a = self.materialise(a) if isinstance(a, IdxV) else a
            if not isinstance(a, V) or a.rank:
                return None      # pragma: no cover - a real branch (the other one is 0.0)
            parts.append((sg, k, a, lo, hi))
        vs = [(sg, self.ev(t, env)) for sg, t in plain]
        for _, v in vs:
            if not isinstance(v, V) or v.rank:
                return None      # pragma: no cover - the terms of a real sum
        S = frozenset({d}).union(*(v.S for _, v in vs), *(a.S for _, _, a, _, _ in parts),
                                 *(k.S for _, k, _, _, _ in parts if k is not None))
        deps = [v for _, v in vs] + [x for _, k, a, lo, hi in parts for x in (k, a, lo, hi) if x is not None]
        shape = self.axes_shape(S)
        self.check_size(frozenset(S), self.target(deps))
        if not vs:
            out = self.emit(f"_zeros({shape})", deps, S, 0, "f")
        else:
            code = ""
            for sg, v in vs:
                code += (" + " if sg > 0 else " - ") + v.code if code else ("" if sg > 0 else "-") + v.code
            # the result of an operation on an array over all the axes is a fresh array
            fresh = (len(vs) > 1 or vs[0][0] < 0) and frozenset().union(*(v.S for _, v in vs)) == S \
                and any(v.dt == "f" for _, v in vs)
            if fresh:           # the result of an operation on an array over all the axes
                out = self.emit(f"({code})", deps, S, 0, "f")
            else:
                out = self.emit(f"_empty({shape}, _f64)", deps, S, 0, "f")
                out.block.lines.append(f"{out.code}[...] = {code}")
        rest = ", :" * (d - 1)
        ell = "..., " if max(S) > d else ""
        for sg, k, a, lo, hi in parts:
            val = a.code if k is None else f"{k.code} * {a.code}"
            out.block.lines.append(f"{out.code}[{ell}{lo.code}:{hi.code}{rest}] {'+' if sg > 0 else '-'}= {val}")
        self.written.add(out.code)
        return out

    def _range_bounds(self, lo_parts, hi_parts, n: V):
        """The sub-range ``lo <= p < hi`` of positions ``0 .. n-1``: scalar values, clamped
        (``0 <= lo <= hi <= n``), and its extent ``m``."""
        def bound(parts, kind):
            consts = [k for k, code, _ in parts if not code]
            exprs = []
            for k, code, _ in parts:
                if code:
                    x = " ".join(([str(k)] if k else []) + code)
                    exprs.append(x[2:] if x.startswith("+ ") else "-" + x[2:] if x.startswith("- ") else x)
            if consts:
                exprs.append(str(max(consts) if kind == "lo" else min(consts)))
            return exprs, [v for _, _, ds in parts for v in ds], consts
        lex, ldeps, lconst = bound(lo_parts, "lo")
        hex_, hdeps, _ = bound(hi_parts, "hi")
        if not lex or (len(lex) == 1 and lconst and max(lconst) <= 0):
            lo = self.int_const(0)
        elif n.const is not None and len(lex) == 1 and lconst:
            lo = self.int_const(min(max(lconst), n.const))
        elif len(lex) == 1 and lconst:
            lo = self.emit(f"min({lex[0]}, {n.code})", [n], (), 0, "i")
        else:
            lo = self.emit(f"min(max({', '.join(lex + ['0'])}), {n.code})", ldeps + [n], (), 0, "i")
        if not hex_:
            hi = n
        else:
            hi = self.emit(f"max({lo.code}, min({', '.join(hex_ + [n.code])}))", hdeps + [lo, n], (), 0, "i")
        m = self.emit(f"({hi.code} - {lo.code})", [lo, hi], (), 0, "i") if lo.const != 0 else hi
        return lo, hi, m

    def sub_index(self, iv: IdxV, lo: V, m: V) -> IdxV:
        """``iv`` on the positions ``lo .. lo + m - 1`` of its axis: an index of extent ``m``
        whose position 0 has the value ``lo + iv.off``."""
        key = ("sub", iv.d, id(iv.ext), None if iv.off is None else iv.off.code, lo.code, m.code, id(m.block))
        hit = self.idx_intern.get(key)
        if hit is not None and _alive(hit):
            return hit
        nv = self.idx_intern[key] = IdxV(iv.d, m, self.add_int(iv.off, lo))
        self.keep.append(nv)
        if m is not iv.ext:
            self.sub_parent[id(m)] = iv.ext
            self.keep.append(m)
        return nv

    def cut(self, v: V, lo: V, hi: V, d: int) -> V:
        """``v`` (varying along the axis of depth ``d``) on the positions ``lo .. hi - 1`` of it."""
        pos = v.rank + (v.p - d)
        code = f"{v.code}[{', '.join([':'] * pos + [f'{lo.code}:{hi.code}'])}]"
        return self.emit(code, [v, lo, hi], v.S, v.rank, v.dt, v.dims, ro=v.ro)

    def range_select(self, a: V, b: V, lo: V, hi: V, d: int, e: Expr, comp=None) -> V:
        """An array over the axes of ``a`` and ``b`` (rank 0): ``a`` (computed on the positions
        ``lo .. hi - 1`` of the axis of depth ``d``) there, ``b`` elsewhere (``comp``: the
        range ``(lo2, hi2)``, the rest of the axis, on which ``b`` was computed)."""
        S = a.S | b.S | {d}
        dt = "f" if "f" in (a.dt, b.dt) else a.dt
        npdt = {"f": "_f64", "i": "_i64", "b": "_bool"}[dt]
        tgt = self.target([a, b, lo, hi])
        self.check_size(frozenset(S), tgt)
        v = self.emit(f"_empty({self.axes_shape(S)}, {npdt})", [a, b, lo, hi], S, 0, dt)
        rest = ", :" * (d - 1)
        ell = "..., " if max(S) > d else ""

        def at(sl):
            return f"{v.code}[{ell}{sl}{rest}]"
        lines = []
        if comp is not None:
            lines.append(f"{at(comp[0].code + ':' + comp[1].code)} = {b.code}")
        elif d in b.S:
            lines += [f"{at(':' + lo.code)} = {b.code}[{ell}:{lo.code}{rest}]",
                      f"{at(hi.code + ':')} = {b.code}[{ell}{hi.code}:{rest}]"]
        else:
            if lo.const != 0:
                lines.append(f"{at(':' + lo.code)} = {b.code}")
            if hi.code != self.ext[d].code:
                lines.append(f"{at(hi.code + ':')} = {b.code}")
        lines.append(f"{at(lo.code + ':' + hi.code)} = {a.code}")
        v.block.lines.extend(lines)
        return v

    def diagonal_if(self, e: If, env: dict):
        """``(if (= i j) a b)`` for index axes ``i``, ``j`` of one extent
        (:func:`eqsat_ad.cost.semantics.diagonal_select`): ``b`` everywhere, then ``a`` on
        the diagonal only -- ``a`` with ``j := i`` (equal there) is computed along one axis.
        The Jacobian of an elementwise map is ``np.diag`` instead of an n^2 mask and where."""
        axes = diagonal_select(e.cond, lambda name: env.get(name) if isinstance(env.get(name), IdxV)
                               else None)
        if axes is None:
            return None
        ii, jj = (env[x] for x in axes)
        if ii.d == jj.d or not (ii.ext is jj.ext or (ii.ext.skey is not None and ii.ext.skey == jj.ext.skey)):
            return None
        lo, hi = (axes[0], axes[1]) if ii.d < jj.d else (axes[1], axes[0])
        a = self.ev(subst(e.then, hi, Var(lo)), env)      # on the diagonal: every one is taken
        mi, mj = self.materialise(ii), self.materialise(jj)
        saved = self.guard
        off = mi if mi.block.level >= mj.block.level else mj
        self.guard = saved + ((f"({mi.code} != {mj.code})", off.block),)
        b = self.ev(e.else_, env)
        self.guard = saved
        if any(isinstance(x, (PairV, IdxV)) or x.rank or x.dt != "f" for x in (a, b)):
            return None
        S = a.S | b.S | {ii.d, jj.d}
        p = max(S)
        shape = [self.ext[dd].code if dd in S else None for dd in range(p, 0, -1)]

        def make(cs, layout, di=ii.d, dj=jj.d):
            if layout is None:
                pi, pj, sh = p - di, p - dj, shape
            else:
                N, sh = layout["N"], layout["shape"]
                pi, pj = layout["pos"][N - di], layout["pos"][N - dj]
            lead = next(k for k, x in enumerate(sh) if x is not None)    # no leading unit axes
            dims = ", ".join("1" if x is None else x for x in sh[lead:])
            return f"_diag_where({cs[0]}, {cs[1]}, {pi - lead}, {pj - lead}, ({dims},))"
        self.check_size(frozenset(S), self.target([a, b, mi, mj]))
        v = self.emit(make([a.code, b.code], None), [a, b, ii.ext, jj.ext], S, 0, "f")
        self.note_elementwise(v, [a, b], make, shape)
        return v

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
        v = self.emit(f"_where({c.code}, {ac}, {bc})", [c, a, b], S, r, dt, dims, pre=pre)
        if pre:
            self.raising(v.block)
        return v

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


def _plain_index_test(c: Expr) -> bool:
    """Is ``c`` a comparison (or a conjunction, ...) of integer sums of names and literals --
    nothing that can fail to evaluate?"""
    if type(c) in (Var, Int):
        return True
    return type(c) is Prim and c.op in _INDEX_TEST_OPS and all(_plain_index_test(a) for a in c.args)


_INDEX_TEST_OPS = frozenset(COMPARISONS + LOGIC + ("+", "-"))
