"""Random *well-typed* programs of the array language, for differential testing.

One generator serves two drivers: the hypothesis strategies of ``tests/gen.py`` (which
shrink) and the seeded fuzzers of :mod:`eqsat_ad.fuzz` (which need no test extras).  The
generator only asks its driver for "a number in ``range(k)``" (:class:`ProgramGen`'s
``choose``), so both see the same distribution.

What the programs contain (the shapes executors get wrong, not only the common ones):

* real arithmetic, ``neg sin cos tanh log1p`` anywhere, ``abs sign max min`` unless ``smooth``; ``exp log sqrt tan pow /`` only in safe
  shapes (``(exp (tanh e))``, ``(log (+ 1.0 (* e e)))``, ``(/ e (+ 1.0 (* d d)))``, ...);
* ``build``/``sum``/``ifold`` over size names, ``(length a)``, ``(- n 1)`` (with ``(get x
  (+ i 1))`` inside), an outer index (``(+ k 1)``, ``k``: triangular loops, empty loops);
* ``scan`` (every state of a real ``ifold``), read at its last state or summed;
* ``ifold`` with real, vector and **pair accumulators** (nested pairs too), whose components
  add, multiply, select a max, add under a condition, keep, or depend on each other (dual
  numbers); an argmax fold with an *index* component used as an index; a counting fold;
  ``(get v (argmax v))`` with the argmax/argmin primitives;
  inner folds read outer accumulators and loop indices;
* ``get`` with indices that are in range by construction (loop variables, literals,
  ``(- (- n 1) i)``, ``(+ i 1)`` under ``(- n 1)``, with ``int_division`` integer division
  ``(div i 2)``, ``(mod (* 3 k) n)``) and **guarded** ones that are out of
  range in the branch not taken (``(if (> i 0) (get x (- i 1)) e)``, ``(if (< i (length
  z)) (get z i) e)``);
* ``let`` of reals, vectors and pairs, names reused so that shadowing happens (loop indices,
  accumulators and lets share a name pool); ``if`` on comparisons, ``and``/``or``/``not``,
  one-hot tests ``(= i j)``; arrays of pairs; ``Int`` literals in real contexts.

``smooth=True`` leaves out ``if`` and comparisons (and so the forms built on them), for
finite differences.  Programs are in range for the concrete sizes given, and larger ones.
"""
from __future__ import annotations

from typing import Callable

from .lang.ast import (Build, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Param,
                       Prim, Scan, Snd, Sum, Var)
from .lang.types import INDEX, REAL, SIZE, ArrayT, PairT, Type, mat, size_names, vec

__all__ = ["ProgramGen", "Names", "PARAM_POOL", "LITERALS", "generate", "choose_params"]

LITERALS = (1.0, 0.5, 2.0, -1.0, -0.5, 1.5, 3.0, 0.25)
# always x : (vec n), then some of these
PARAM_POOL = (Param("y", vec("n")), Param("w", REAL), Param("M", mat("m", "n")),
              Param("z", vec("m")), Param("v", REAL))


class Names:
    """The name pools binders draw from; they overlap on purpose (shadowing, capture)."""

    def __init__(self, index=("i", "j", "k", "r"), acc=("acc", "s", "p", "acc3", "acc4"),
                 let=("a", "b", "c", "t", "acc1", "acc2")):
        self.index, self.acc, self.let = tuple(index), tuple(acc), tuple(let)


class _Ctx:
    """What is in scope: typed values, loop indices (the size each one is an index of, and
    how far it may be shifted up and stay in range), and the concrete sizes."""

    def __init__(self, values: dict, indices: dict, sizes: dict, depth_in_loops: int = 0):
        self.values, self.indices, self.sizes = values, indices, sizes
        self.loops = depth_in_loops

    def bind_value(self, name: str, t: Type) -> "_Ctx":
        v = dict(self.values)
        v[name] = t
        return _Ctx(v, {k: s for k, s in self.indices.items() if k != name}, self.sizes, self.loops)

    def bind_index(self, name: str, size, room: int = 0) -> "_Ctx":
        v = {k: t for k, t in self.values.items() if k != name}
        ix = dict(self.indices)
        ix[name] = (size, room)
        return _Ctx(v, ix, self.sizes, self.loops + 1)

    def concrete(self, s) -> int:
        return s if isinstance(s, int) else self.sizes[s]


class ProgramGen:
    """Random expressions by type.  ``choose(k)`` returns a number in ``range(k)``."""

    def __init__(self, choose: Callable[[int], int], smooth: bool = False,
                 names: Names | None = None, int_division: bool = False, range_guards: bool = False):
        self.choose, self.smooth = choose, smooth
        self.names = names or Names()
        # div/mod in indices: off by default while not every backend compiles them (the
        # Numba backend falls back to NumPy on them, and its tests require no fallback)
        self.int_division = int_division
        # shifted reads under range guards on the index, as gradients of stencils have them
        # (:meth:`range_guarded`): off by default, so that other tests' seeds keep their programs
        self.range_guards = range_guards

    # -- helpers -----------------------------------------------------------------------
    def pick(self, options: list):
        return options[self.choose(len(options))]

    def one_of(self, options: list) -> Expr:
        return self.pick(options)()

    def lit(self) -> Expr:
        return Num(self.pick(list(LITERALS)))

    def size_names(self, ctx: _Ctx) -> list:
        return [s for s in ctx.sizes if isinstance(s, str) and ctx.values.get(s) == SIZE] or [3]

    def size_expr(self, s, ctx: _Ctx) -> Expr:
        """An expression for size ``s``: the size name, ``(length a)``, or an Int."""
        if isinstance(s, int):
            return Int(s)
        opts: list[Expr] = [Var(s)]
        for name, t in sorted(ctx.values.items()):
            if isinstance(t, ArrayT):
                if t.size == s:
                    opts.append(Length(Var(name)))
                if isinstance(t.elem, ArrayT) and t.elem.size == s:
                    opts.append(Length(Get(Var(name), Int(0))))
        return self.pick(opts)

    def loop_range(self, ctx: _Ctx):
        """(size expression, size the index is an index of, shift room) of a new loop:
        a whole size, one less (so ``(+ i 1)`` is in range), or up to an outer index."""
        s = self.pick(self.size_names(ctx))
        opts = [lambda: (self.size_expr(s, ctx), s, 0)] * 4
        if isinstance(s, str):
            opts.append(lambda: (Prim("-", (Var(s), Int(1))), s, 1))
        outer = [(n, sz) for n, (sz, room) in sorted(ctx.indices.items())]
        if outer:                     # triangular (and, at k = 0, empty) loops
            def upto():
                k, sz = self.pick(outer)
                return self.pick([Prim("+", (Var(k), Int(1))), Var(k)]), sz, 0
            opts += [upto] * 3
        return self.one_of(opts)

    def index(self, s, ctx: _Ctx) -> Expr:
        """An index certainly in range for arrays of size ``s``."""
        here = [(n, room) for n, (sz, room) in sorted(ctx.indices.items()) if sz == s]
        opts: list = [lambda n=n: Var(n) for n, _ in here] * 3
        opts += [lambda k=k: Int(k) for k in range(min(ctx.concrete(s), 3))]
        if isinstance(s, str) and ctx.values.get(s) == SIZE:
            # reversed: (- (- n 1) i)
            opts += [lambda n=n: Prim("-", (Prim("-", (Var(s), Int(1))), Var(n))) for n, _ in here]
        opts += [lambda n=n: Prim("+", (Var(n), Int(1))) for n, room in here if room >= 1]
        # integer division: i // 2 <= i; (3 k) mod s for an index k of any loop (a packed or
        # wrapped position)
        if self.int_division:
            opts += [lambda n=n: Prim("div", (Var(n), Int(2))) for n, _ in here]
        if self.int_division and ctx.concrete(s) >= 1:
            opts += [lambda k=k: Prim("mod", (Prim("*", (Int(3), Var(k))), self.size_expr(s, ctx)))
                     for k in sorted(ctx.indices)]
        if not self.smooth and ctx.loops < 3 and self.choose(5) == 0:
            vecs = [m for m, t in sorted(ctx.values.items()) if t == vec(s)]
            if vecs:                  # the position of the largest element (an argmax fold)
                return Snd(self.argmax(Var(self.pick(vecs)), s, ctx))
        return self.one_of(opts)

    def pos(self, ctx: _Ctx, d: int) -> Expr:
        """A real expression that is >= 1: ``(+ 1.0 (* e e))``."""
        e = self.real(ctx, d - 1)
        return Prim("+", (Num(1.0), Prim("*", (e, e))))

    # -- by type -----------------------------------------------------------------------
    def gen(self, t: Type, ctx: _Ctx, d: int) -> Expr:
        if t == REAL:
            return self.real(ctx, d)
        if isinstance(t, ArrayT):
            return self.array(t, ctx, d)
        if isinstance(t, PairT):
            return self.pair(t, ctx, d)
        raise ValueError(f"cannot generate {t}")

    def wrappers(self, t: Type, ctx: _Ctx, d: int) -> list:
        """Forms that produce any type ``t``: let, if, fst/snd of a pair, ifold."""
        out = [lambda: self.let(t, ctx, d), lambda: self.ifold(t, ctx, d),
               lambda: Fst(Pair(self.gen(t, ctx, d - 1), self.real(ctx, 0))),
               lambda: Snd(Pair(self.real(ctx, 0), self.gen(t, ctx, d - 1)))]
        if not self.smooth:
            out.append(lambda: If(self.cond(ctx, d - 1), self.gen(t, ctx, d - 1),
                                  self.gen(t, ctx, d - 1)))
        return out

    def let(self, t: Type, ctx: _Ctx, d: int) -> Expr:
        name = self.pick(list(self.names.let))
        vt = self.value_type(ctx)
        value = self.gen(vt, ctx, d - 1)
        return Let(name, value, self.gen(t, ctx.bind_value(name, vt), d - 1))

    def value_type(self, ctx: _Ctx) -> Type:
        names = self.size_names(ctx)
        opts: list[Type] = [REAL, REAL] + [vec(s) for s in names] + [PairT(REAL, REAL)]
        if len(names) > 1:
            opts.append(mat(names[0], names[1]))
        return self.pick(opts)

    # -- reals -------------------------------------------------------------------------
    def real_leaf(self, ctx: _Ctx) -> Expr:
        opts: list = [self.lit, self.lit]
        reals = [n for n, t in sorted(ctx.values.items()) if t == REAL]
        if reals:
            opts += [lambda: Var(self.pick(reals))] * 4
        pairs = [(n, t) for n, t in sorted(ctx.values.items()) if isinstance(t, PairT)]
        for n, t in pairs:            # components of a pair in scope (an accumulator, a let)
            for proj, part in ((Fst, t.fst), (Snd, t.snd)):
                if part == REAL:
                    opts += [lambda n=n, proj=proj: proj(Var(n))] * 2
                elif isinstance(part, PairT) and part.fst == REAL:
                    opts.append(lambda n=n, proj=proj: Fst(proj(Var(n))))
        vecs = [(n, t.size) for n, t in sorted(ctx.values.items())
                if isinstance(t, ArrayT) and t.elem == REAL]
        if vecs:
            def get_vec():
                n, s = self.pick(vecs)
                return Get(Var(n), self.index(s, ctx))
            opts += [get_vec] * 5
            if not self.smooth and ctx.indices:
                opts += [lambda: self.guarded_get(ctx, vecs)] * 2
        mats = [(n, t.size, t.elem.size) for n, t in sorted(ctx.values.items())
                if isinstance(t, ArrayT) and isinstance(t.elem, ArrayT)]
        if mats:
            def get_mat():
                n, s1, s2 = self.pick(mats)
                return Get(Get(Var(n), self.index(s1, ctx)), self.index(s2, ctx))
            opts += [get_mat] * 3
        if ctx.indices:
            opts.append(lambda: Prim("real", (Var(self.pick(sorted(ctx.indices))),)))
        return self.one_of(opts)

    def guarded_get(self, ctx: _Ctx, vecs: list) -> Expr:
        """A ``get`` whose index is out of range exactly where the ``if`` does not take it."""
        i, (s, _) = self.pick(sorted(ctx.indices.items()))
        same = [n for n, sz in vecs if sz == s]
        other = self.real_leaf_plain(ctx)
        opts = []
        if same:
            x = Var(self.pick(same))
            c = self.pick([1, 2])
            opts += [lambda: If(Prim(">=", (Var(i), Int(c))), Get(x, Prim("-", (Var(i), Int(c)))), other),
                     lambda: If(Prim("<", (Prim("+", (Var(i), Int(c))), Length(x))),
                                Get(x, Prim("+", (Var(i), Int(c)))), other),
                     lambda: If(Prim("and", (Prim(">", (Var(i), Int(0))), self.cond(ctx, 0))),
                                Get(x, Prim("-", (Var(i), Int(1)))), other)]
        if same and self.range_guards:
            opts += [lambda: self.range_guarded(ctx, i, s, Var(self.pick(same)), other)] * 4
        # an index over one size into an array of another: in range only below its length
        y = Var(self.pick(vecs)[0])
        opts.append(lambda: If(Prim("<", (Var(i), Length(y))), Get(y, Var(i)), other))
        return self.one_of(opts)

    def range_guarded(self, ctx: _Ctx, i: str, s, x: Var, other: Expr) -> Expr:
        """Shifted reads ``x[i + k]``, ``-lo <= k <= hi``, under a guard that holds exactly
        where all are in range: ``lo <= i < n - hi`` written in the ways gradients of stencils
        write it (``(<= 1 i)``, ``(< i (- n 2))``, ``(< (+ i 1) (length x))``, conjunctions,
        ``not``, the complement as ``or`` with the branches swapped, nested guards, the index
        shifted by a ``let``), sometimes with a guard of another kind or an inner guard that
        is only part of the range."""
        lo, hi = self.pick([0, 1, 1, 2]), self.pick([0, 1, 1, 2])
        n_expr = Var(s) if isinstance(s, str) else Length(x)
        taken = set(ctx.values) | set(ctx.indices) | {x.name, i}
        free = [nm for nm in self.names.let if nm not in taken]
        t, sh = (self.pick(free), self.pick([-1, 1])) if free and self.choose(3) == 0 else (None, 0)
        # t = i + sh: reads and comparisons may use it (i = t - sh)

        def idx(k: int) -> Expr:
            base, k2 = (Var(t), k - sh) if t is not None and self.choose(2) else (Var(i), k)
            if k2 == 0:
                return base
            return self.pick([Prim("+", (base, Int(k2))), Prim("-", (base, Int(-k2))),
                              Prim("+", (Int(k2), base))])

        def lower(c: int) -> Expr:          # i >= c
            if t is not None and self.choose(2):
                v, c = Var(t), c + sh
            else:
                v = Var(i)
            return self.pick([Prim("<=", (Int(c), v)), Prim(">=", (v, Int(c))), Prim(">", (v, Int(c - 1))),
                              Prim("not", (Prim("<", (v, Int(c))),))])

        def upper(h: int) -> Expr:          # i + h < n
            return self.pick([Prim("<", (Prim("+", (Var(i), Int(h))), n_expr)),
                              Prim("<", (Var(i), Prim("-", (n_expr, Int(h))))),
                              Prim("<=", (Var(i), Prim("-", (n_expr, Int(h + 1))))),
                              Prim(">", (Prim("-", (n_expr, Int(h))), Var(i))),
                              # reversed: (n - 1 - i) >= h
                              Prim(">=", (Prim("-", (Prim("-", (n_expr, Int(1))), Var(i))), Int(h)))])

        def reads(lo_: int, hi_: int) -> Expr:
            ks = [self.pick(list(range(-lo_, hi_ + 1))) for _ in range(self.pick([1, 2, 2, 3]))]
            e = Get(x, idx(ks[0]))
            for k in ks[1:]:
                e = Prim(self.pick(["+", "-", "*"]), (e, Prim("*", (self.lit(), Get(x, idx(k))))))
            return e
        body = reads(lo, hi)
        conds = ([lower(lo)] if lo or self.choose(2) else []) + ([upper(hi)] if hi or self.choose(2) else [])
        if not conds:
            conds = [lower(0)]
        form = self.choose(5)
        if form == 0 and len(conds) == 2:        # nested: the outer guard, then the inner one
            inner_other = Prim("*", (Num(0.5), Get(x, idx(0)))) if self.choose(2) else other
            e = If(conds[0], If(conds[1], body, inner_other), other)
        elif form == 1:                          # the complement, branches swapped
            neg = [Prim("not", (c,)) for c in conds]
            c = neg[0] if len(neg) == 1 else Prim("or", (neg[0], neg[1]))
            e = If(c, other, body)
        elif form == 2:                          # a guard of another kind too: np.where
            c = conds[0] if len(conds) == 1 else Prim("and", (conds[0], conds[1]))
            e = If(Prim("and", (c, self.cond(ctx, 0))), body, other)
        else:
            c = conds[0] if len(conds) == 1 else Prim("and", (conds[0], conds[1]))
            if self.choose(3) == 0:              # an inner guard on part of the range
                body = Prim("+", (body, If(lower(lo + 1), Get(x, idx(-lo - 1)), Num(0.0))))
            e = If(c, body, other)
        return Let(t, Prim("+", (Var(i), Int(sh))), e) if t is not None else e

    def real_leaf_plain(self, ctx: _Ctx) -> Expr:
        reals = [n for n, t in sorted(ctx.values.items()) if t == REAL]
        return self.pick([self.lit(), self.lit()] + [Var(n) for n in reals])

    def real(self, ctx: _Ctx, d: int) -> Expr:
        if d <= 0:
            return self.real_leaf(ctx)
        r = lambda: self.real(ctx, d - 1)          # noqa: E731
        binop = lambda op: lambda: Prim(op, (r(), r()))   # noqa: E731
        opts: list = [lambda: self.real_leaf(ctx)] * 2 + [binop("+"), binop("*"), binop("-")]
        # an Int literal in a real context (elaboration turns it into a Num)
        opts.append(lambda: Prim(self.pick(["*", "+"]), (Int(self.pick([1, 2, 3])), r())))
        opts += [
            lambda: Prim(self.pick(["neg", "sin", "cos", "tanh"]), (r(),)),
            lambda: Prim("log1p", (self.pos(ctx, d),)),
            lambda: Prim("exp", (Prim("tanh", (r(),)),)),
            lambda: Prim("exp", (Prim("neg", (Prim("*", (self.real(ctx, d - 2),) * 2),)),)),
            lambda: Prim("log", (self.pos(ctx, d),)),
            lambda: Prim("sqrt", (self.pos(ctx, d),)),
            lambda: Prim("tan", (Prim("*", (Num(0.5), Prim("tanh", (r(),)))),)),
            lambda: Prim("pow", (self.pos(ctx, d), Num(self.pick([2.0, 0.5, 3.0, -1.0])))),
            lambda: Prim("/", (r(), self.pos(ctx, d))),
            lambda: self.sum(ctx, d), lambda: self.sum(ctx, d),
            lambda: self.get_of_array(ctx, d),
            lambda: self.pair_fold(ctx, d), lambda: self.pair_fold(ctx, d),
            lambda: self.get_of_pairs(ctx, d), lambda: self.scan_read(ctx, d),
        ]
        if not self.smooth:      # the non-smooth primitives (kinks, and ties when operands collide)
            opts += [lambda: Prim(self.pick(["abs", "sign"]), (r(),)),
                     lambda: Prim(self.pick(["max", "min"]), (r(), r()))]
        if not self.smooth:
            opts.append(lambda: self.counting_fold(ctx, d))
            vecs = [n for n, t in sorted(ctx.values.items()) if isinstance(t, ArrayT) and t.elem == REAL]
            if vecs:
                def argmax_value():
                    n = self.pick(vecs)
                    return Fst(self.argmax(Var(n), ctx.values[n].size, ctx))
                opts.append(argmax_value)

                def arg_extreme_get():       # the primitive: (get v (argmax v)), guarded for empty v
                    v = Var(self.pick(vecs))
                    k = Prim(self.pick(["argmax", "argmin"]), (v,))
                    return If(Prim("<", (Int(0), Length(v))), Get(v, k), Num(0.0))
                opts.append(arg_extreme_get)
        opts += self.wrappers(REAL, ctx, d)
        return self.one_of(opts)

    def sum(self, ctx: _Ctx, d: int) -> Expr:
        size, s, room = self.loop_range(ctx)
        i = self.pick(list(self.names.index))
        return Sum(size, i, self.real(ctx.bind_index(i, s, room), d - 1))

    def get_of_array(self, ctx: _Ctx, d: int) -> Expr:
        """``(get <vector expression> i)``: the pattern get-of-build rewrites."""
        s = self.pick(self.size_names(ctx))
        return Get(self.array(vec(s), ctx, d - 1), self.index(s, ctx))

    def get_of_pairs(self, ctx: _Ctx, d: int) -> Expr:
        """A component of an element of an array of pairs (a pair of arrays in the backend)."""
        s = self.pick(self.size_names(ctx))
        i = self.pick(list(self.names.index))
        inner = ctx.bind_index(i, s)
        arr = Build(self.size_expr(s, ctx), i, Pair(self.real(inner, d - 2), self.real(inner, d - 2)))
        return self.pick([Fst, Snd])(Get(arr, self.index(s, ctx)))

    def cond(self, ctx: _Ctx, d: int) -> Expr:
        opts: list = [lambda: Prim(self.pick(["<", ">", "<=", ">="]),
                                   (self.real(ctx, d), self.real(ctx, d)))]
        idx = sorted(ctx.indices.items())
        if idx:
            def onehot():
                n, (s, _) = self.pick(idx)
                return Prim("=", (Var(n), self.index(s, ctx)))
            opts += [onehot] * 2
        if d > 0:
            opts += [lambda: Prim(self.pick(["and", "or"]), (self.cond(ctx, d - 1),
                                                             self.cond(ctx, d - 1))),
                     lambda: Prim("not", (self.cond(ctx, d - 1),))]
        return self.one_of(opts)

    # -- arrays --------------------------------------------------------------------------
    def array(self, t: ArrayT, ctx: _Ctx, d: int) -> Expr:
        same = [Var(n) for n, u in sorted(ctx.values.items()) if u == t]
        rows = [(n, u.size) for n, u in sorted(ctx.values.items())
                if isinstance(u, ArrayT) and u.elem == t]
        parts = [(n, proj) for n, u in sorted(ctx.values.items()) if isinstance(u, PairT)
                 for proj, part in ((Fst, u.fst), (Snd, u.snd)) if part == t]
        opts: list = []
        if same:
            opts += [lambda: self.pick(same)] * 3
        if rows:
            def row():
                n, s = self.pick(rows)
                return Get(Var(n), self.index(s, ctx))
            opts += [row] * 2
        if parts:
            opts.append(lambda: (lambda n, proj: proj(Var(n)))(*self.pick(parts)))
        i = self.pick(list(self.names.index))
        opts.append(lambda: Build(self.size_expr(t.size, ctx), i,
                                  self.gen(t.elem, ctx.bind_index(i, t.size), d - 1)))
        if d > 0:
            opts.append(opts[-1])
            opts += self.wrappers(t, ctx, d)
        return self.one_of(opts)

    def pair(self, t: PairT, ctx: _Ctx, d: int) -> Expr:
        opts: list = [lambda: Pair(self.gen(t.fst, ctx, d - 1), self.gen(t.snd, ctx, d - 1))]
        if d > 0:
            opts += self.wrappers(t, ctx, d)
        return self.one_of(opts)

    # -- folds ---------------------------------------------------------------------------
    def ifold(self, t: Type, ctx: _Ctx, d: int) -> Expr:
        size, s, room = self.loop_range(ctx)
        acc, i = self.pick(list(self.names.acc)), self.pick(list(self.names.index))
        if i == acc:
            i = "i"
        # (an Int init would make the fold index-typed when the body only adds the accumulator
        # to itself: acc + acc; real inits keep the result real)
        init = self.gen(t, ctx, d - 2) if t != REAL else self.one_of(
            [lambda: Num(0.0), lambda: self.real(ctx, d - 2)])
        inner = ctx.bind_value(acc, t).bind_index(i, s, room)
        if t == REAL:
            body = self.component(Var(acc), inner, d, others=())
        elif isinstance(t, ArrayT) and t.elem == REAL:
            j = self.pick([n for n in self.names.index if n not in (i, acc)] + ["q"])
            inner2 = inner.bind_index(j, t.size)
            body = Build(self.size_expr(t.size, inner), j,
                         Prim("+", (Get(Var(acc), Var(j)), self.real(inner2, d - 2))))
        else:
            body = self.gen(t, inner, d - 1)
        return IFold(acc, i, body, init, size)

    def component(self, own: Expr, ctx: _Ctx, d: int, others: tuple) -> Expr:
        """The new value of one real accumulator (component) ``own``: a reduction shape the
        backend recognises, or a sequential recurrence; ``others``: the other components."""
        e = lambda: self.real(ctx, d - 1)    # noqa: E731
        opts: list = [lambda: Prim("+", (own, e())), lambda: Prim("+", (e(), own)),
                      lambda: Prim("-", (own, e())),
                      lambda: Prim("*", (own, Prim("cos", (e(),)))),
                      lambda: Prim("+", (Prim("*", (Num(0.5), own)), e())),
                      lambda: Prim("tanh", (Prim("+", (own, e())),)), e]
        if d > 1:                     # an inner fold, which may read this accumulator
            opts += [lambda: Prim("+", (own, self.ifold(REAL, ctx, d - 1))),
                     lambda: Prim("*", (own, Prim("cos", (self.pair_fold(ctx, d - 1),))))]
        if others:
            opts += [lambda: own,
                     lambda: Prim("+", (Prim("*", (own, Prim("tanh", (e(),)))), self.pick(list(others))))]
        if not self.smooth:
            def select():
                x = e()
                op = self.pick([">", ">=", "<", "<="])
                return If(Prim(op, (x, own)), x, own) if self.choose(2) else If(Prim(op, (own, x)), x, own)
            opts += [select, lambda: If(self.cond(ctx, d - 2), Prim("+", (own, e())), own),
                     lambda: If(self.cond(ctx, d - 2), own, Prim("+", (e(), own)))]
        return self.one_of(opts)

    def pair_fold(self, ctx: _Ctx, d: int) -> Expr:
        """A real read off an ifold with a pair accumulator: ``(fst (ifold (lambda (p k)
        (pair c1 c2)) init n))``; the components may read each other, the body may be under a
        let or be an ``if`` that keeps the whole accumulator."""
        size, s, room = self.loop_range(ctx)
        acc, i = self.pick(list(self.names.acc)), self.pick(list(self.names.index))
        if i == acc:
            i = "i"
        sn = self.pick(self.size_names(ctx))
        shape = self.pick([PairT(REAL, REAL), PairT(REAL, REAL), PairT(REAL, vec(sn)),
                           PairT(PairT(REAL, REAL), REAL)])
        inner = ctx.bind_value(acc, shape).bind_index(i, s, room)
        A = Var(acc)

        def body_of(t: Type, path: Expr, others: tuple, bctx: _Ctx) -> Expr:
            if t == REAL:
                return self.component(path, bctx, d - 1, others)
            if isinstance(t, PairT):
                fst = (Fst(path),) if t.fst == REAL else ()     # (components read by the other)
                snd = (Snd(path),) if t.snd == REAL else ()
                return Pair(body_of(t.fst, Fst(path), others + snd, bctx),
                            body_of(t.snd, Snd(path), others + fst, bctx))
            j = self.pick([n for n in self.names.index if n not in (i, acc)] + ["q"])
            return Build(self.size_expr(t.size, bctx), j,
                         Prim("+", (Get(path, Var(j)), self.real(bctx.bind_index(j, t.size), d - 3))))
        name = self.pick(list(self.names.let))
        if self.choose(4) == 0 and name != acc:
            # a let around the body; its value may read the accumulator
            value = self.real(inner, d - 2)
            body: Expr = Let(name, value, body_of(shape, A, (), inner.bind_value(name, REAL)))
        else:
            body = body_of(shape, A, (), inner)
        if not self.smooth and self.choose(4) == 0:   # keep the whole accumulator sometimes
            c = self.cond(inner, d - 2)
            body = If(c, body, A) if self.choose(2) else If(c, A, body)
        fold: Expr = IFold(acc, i, body, self.gen(shape, ctx, d - 2), size)
        t: Type = shape
        while isinstance(t, PairT):               # down to a real or a vector component
            proj = self.pick([Fst, Snd])
            fold, t = proj(fold), (t.fst if proj is Fst else t.snd)
        return fold if t == REAL else Get(fold, self.index(t.size, ctx))

    def scan_read(self, ctx: _Ctx, d: int) -> Expr:
        """A real read off a ``scan``: its last state, or a weighted sum of every state,
        ``(sum (length st) (lambda (j) (* (get st j) e)))``; the states are those of a real
        :meth:`ifold` (any of its recurrences; empty and triangular loops too)."""
        f = self.ifold(REAL, ctx, d - 1)
        st = Scan(f.acc, f.var, f.body, f.init, f.size)
        if self.choose(2):
            return Get(st, Prim("-", (Length(st), Int(1))))
        # j shadows nothing the weight may read (an outer index would be out of its range)
        j = self.pick([n for n in self.names.index if n not in ctx.values and n not in ctx.indices]
                      or ["%j"])
        return Sum(Length(st), j, Prim("*", (Get(st, Var(j)), self.real(ctx, d - 2))))

    def argmax(self, arr: Expr, s, ctx: _Ctx) -> Expr:
        """``(ifold (lambda (p k) (if (> (get x k) (fst p)) (pair (get x k) k) p)) (pair
        (get x 0) 0) n)``: a (value, index) pair; the index is in range for size ``s``."""
        free = {arr.name} if isinstance(arr, Var) else set()
        acc = self.pick([n for n in self.names.acc if n not in free] or ["%acc"])
        k = self.pick([n for n in self.names.index if n != acc and n not in free] or ["%k"])
        xk = Get(arr, Var(k))
        op = self.pick([">", ">="])
        body = If(Prim(op, (xk, Fst(Var(acc)))), Pair(xk, Var(k)), Var(acc))
        return IFold(acc, k, body, Pair(Get(arr, Int(0)), Int(0)), self.size_expr(s, ctx))

    def counting_fold(self, ctx: _Ctx, d: int) -> Expr:
        """``(real (ifold (lambda (c k) (if cond (+ c 1) c)) 0 n))``: an index accumulator."""
        size, s, room = self.loop_range(ctx)
        acc, i = self.pick(list(self.names.acc)), self.pick(list(self.names.index))
        if i == acc:
            i = "i"
        inner = ctx.bind_value(acc, INDEX).bind_index(i, s, room)
        body = If(self.cond(inner, d - 2), Prim("+", (Var(acc), Int(1))), Var(acc))
        return Prim("real", (IFold(acc, i, body, Int(0), size),))


# --------------------------------------------------------------------------------------
# whole programs
# --------------------------------------------------------------------------------------
def choose_params(choose: Callable[[int], int]) -> tuple[Param, ...]:
    """``x : (vec n)`` plus a random subset of :data:`PARAM_POOL`."""
    return (Param("x", vec("n")),) + tuple(p for p in PARAM_POOL if choose(2))


def generate(choose: Callable[[int], int], params: tuple[Param, ...], result: Type,
             sizes: dict, smooth: bool = False, max_depth: int = 4,
             names: Names | None = None, int_division: bool = False, range_guards: bool = False) -> Expr:
    """A random body of type ``result`` over ``params`` (their size names are in scope),
    in range for the concrete ``sizes``; with ``int_division``, indices computed by
    ``div``/``mod`` too."""
    values: dict = {p.name: p.type for p in params}
    for p in params:
        for n in size_names(p.type):
            values.setdefault(n, SIZE)
    ctx = _Ctx(values, {}, dict(sizes))
    return ProgramGen(choose, smooth, names, int_division, range_guards).gen(result, ctx, max_depth)
