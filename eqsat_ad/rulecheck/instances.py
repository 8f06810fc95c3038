"""Random well-typed instances of a rule's pattern variables.

:class:`Instantiator` takes one :class:`~eqsat_ad.rulecheck.rules.Equation`, infers the
types of its pattern variables by unification (``types`` below), and then, for each attempt,

1. draws the types left open (``real`` most often; also indices, vectors, matrices, pairs),
   concrete sizes (``n``, ``m`` in 0..4: empty and one-element loops are common) and concrete
   binder names (about one in three *colliding* with one another or with an outer index name,
   to exercise shadowing and capture), and types the right-hand side against the left;
2. computes, for every pattern variable, the names in scope at each of its occurrences on the
   left-hand side (binders of the pattern, the outer context) and keeps those in scope at all
   of them, minus the names a ``set-not-contains`` condition forbids;
3. generates a random term of the right type over those names (a small random program of the
   e-graph language: arithmetic, ``if``, ``let``, ``build``, ``sum``, ``ifold``, ``get``, pairs,
   index arithmetic ``n-1``, ``n-1-i``, ``div``/``mod`` by a literal; a ``get`` index always in range, no division by zero,
   no log of a non-positive number, loop bodies that mostly use their index -- :data:`USE_INDEX`)
   -- and where nothing promises a range, values past it: the rule's own index variables
   (:data:`EDGE_INDEX`), free index names no ``ext`` bounds, extents shorter than their size
   (:data:`SHORT_EXTENT`), short arrays (:data:`SHORT_ARRAY`), size-typed values that are no
   extent;
4. instantiates both sides and checks every side condition on the instance.

The outer context of every instance: inputs ``x, y : (vec n)``, ``z : (vec m)``,
``M : (mat m n)``, ``w, v : real``, sizes ``n, m``, and index variables ``p < n``, ``q < m``
bound around the rule (the e-graph mode wraps them in ``build``s), plus one outer variable per
free name of the rule (e.g. the ``r`` of ``(ext r n)``, an index below ``n``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from ..egraph.encode import egg_float, egg_string
from ..lang.primitives import PRIMITIVES
from .rules import App, Equation, PVar, pattern_vars

_REAL_RESULT_CTORS = frozenset(p.ctor for p in PRIMITIVES.values() if p.typing == "real")
_INT_DIVISION_CTORS = frozenset(p.ctor for p in PRIMITIVES.values() if p.typing == "intdiv")


class NoInstance(Exception):
    """This attempt cannot produce a valid instance (the message says why)."""


class TypeClash(Exception):
    pass


class PrimitiveFails(Exception):
    """A primitive of the right-hand side fails on the instance's literals (egglog stops the
    run with a panic when the rule fires there)."""


# --------------------------------------------------------------------------------------
# types: tuples ('real',) ('bool',) ('idx', sym) ('size', sym) ('arr', elem, sym)
# ('pair', a, b); sym is a str size name ('n', 'm') or an int; TVar while unknown
# --------------------------------------------------------------------------------------
class TVar:
    __slots__ = ("ref", "kind", "id")
    _n = 0

    def __init__(self, kind=None):
        TVar._n += 1
        self.ref, self.kind, self.id = None, kind, TVar._n

    def __repr__(self):
        return f"?{self.id}{':' + self.kind if self.kind else ''}"


REAL, BOOL = ("real",), ("bool",)
_KIND_CONS = {None: None, "num": {"real", "idx", "size"}, "int": {"idx", "size"}, "sym": set()}


def find(t):
    while isinstance(t, TVar) and t.ref is not None:
        t = t.ref
    return t


def _merge_kinds(a, b):
    if a is None:
        return b
    if b is None or a == b:
        return a
    if {a, b} == {"num", "int"}:
        return "int"
    raise TypeClash(f"{a} vs {b}")


def unify(a, b) -> None:
    a, b = find(a), find(b)
    if a is b:
        return
    if isinstance(a, TVar) and isinstance(b, TVar):
        b.kind = _merge_kinds(a.kind, b.kind)
        a.ref = b
        return
    if isinstance(b, TVar):
        a, b = b, a
    if isinstance(a, TVar):
        if a.kind == "sym":
            if isinstance(b, tuple):
                raise TypeClash("size vs type")
        elif isinstance(b, tuple):
            allowed = _KIND_CONS[a.kind]
            if allowed is not None and b[0] not in allowed:
                raise TypeClash(f"{a.kind} vs {b[0]}")
        else:
            raise TypeClash("type vs size")
        a.ref = b
        return
    if isinstance(a, tuple) and isinstance(b, tuple):
        if {a[0], b[0]} == {"idx", "size"}:
            # a size used as an index ((Subst e j n), (Sub n (Var j))) or an index as an
            # extent: the language allows both (index arithmetic is integer arithmetic); the
            # two range over the same extent
            unify(a[1], b[1])
            return
        if a[0] != b[0] or len(a) != len(b):
            raise TypeClash(f"{a[0]} vs {b[0]}")
        for x, y in zip(a[1:], b[1:]):
            unify(x, y)
        return
    if a != b:
        raise TypeClash(f"size {a} vs {b}")


def sym():
    return TVar("sym")




class Inference:
    """Types of the pattern variables of one equation (Term variables: their type; String
    variables: the type of the variable they name)."""

    def __init__(self, eq: Equation, rhs: bool = True):
        self.eq = eq
        self.tv: dict[str, object] = {}        # Term var -> type
        self.vt: dict[str, object] = {}        # String var -> type of the named variable
        self.bound: set[str] = set()           # String vars bound by a binder of the LHS
        self.lit_strings: dict[str, object] = {}
        self.dim_vars: dict[str, object] = {}  # String var of a (Dim d) -> its size symbol
        self.lit_extents: dict[str, list] = {}  # i64 var k of an extent (Int k) -> size symbols
        self.infer(eq.lhs, lhs=True)
        for c in eq.conditions:
            self.condition(c)
        if rhs:
            self.check_rhs()

    def check_rhs(self) -> None:
        """Type the right-hand side against the left (TypeClash: it has another type, or
        uses a variable at another type, than the left-hand side and conditions give)."""
        unify(self.type_of_top, self.infer(self.eq.rhs, top=False))

    def _literal_extent(self, p, s) -> None:
        """An ``Int`` literal directly in an extent slot (``(IFold a i b z (Int 0))``) is that
        extent (for ``(Int k)``, whatever ``k`` is drawn).  Only there: a literal inside extent
        arithmetic (``(Sub n (Int 1))``) says nothing about ``n``."""
        if isinstance(p, App) and p.head == "Int" and isinstance(p.args[0], int):
            unify(s, p.args[0])
        elif isinstance(p, App) and p.head == "Int" and isinstance(p.args[0], PVar):
            self.lit_extents.setdefault(p.args[0].name, []).append(s)

    @property
    def type_of_top(self):
        return self._top

    def name_type(self, s):
        if isinstance(s, PVar):
            return self.vt.setdefault(s.name, TVar())
        if isinstance(s, str):
            return self.lit_strings.setdefault(s, TVar())
        return TVar()

    def bind(self, s, lhs: bool):
        if lhs and isinstance(s, PVar):
            self.bound.add(s.name)

    def infer(self, p, lhs: bool = False, top: bool = True):
        t = self._infer(p, lhs)
        if top and lhs:
            self._top = t
        return t

    def _infer(self, p, lhs):
        inf = lambda q: self.infer(q, lhs, top=False)   # noqa: E731
        if isinstance(p, PVar):
            srt = self.eq.sorts.get(p.name, "Term")
            if srt == "Term":
                return self.tv.setdefault(p.name, TVar())
            return TVar()
        if not isinstance(p, App):
            return TVar()
        h, a = p.head, p.args
        if h == "Num":
            return REAL
        if h == "Int":
            return TVar("int")
        if h in ("BTrue", "BFalse"):
            return BOOL
        if h == "Input":
            return self.name_type(a[0])
        if h == "Dim":
            if isinstance(a[0], PVar):          # (Dim d): d names a size of the context
                return ("size", self.dim_vars.setdefault(a[0].name, sym()))
            return ("size", a[0] if isinstance(a[0], str) else sym())
        if h == "Var":
            return self.name_type(a[0])
        if h == "Acc":
            unify(self.name_type(a[1]), ("idx", sym()))
            return self.name_type(a[0])
        if h in ("Add", "Sub", "Mul"):
            t = TVar("num")
            unify(inf(a[0]), t)
            unify(inf(a[1]), t)
            return t
        if h in _INT_DIVISION_CTORS:         # div / mod: integer operands, an integer result
            t = TVar("int")
            unify(inf(a[0]), t)
            unify(inf(a[1]), t)
            return t
        if h in _REAL_RESULT_CTORS:          # / pow and the real functions (lang/primitives.py)
            for x in a:
                unify(inf(x), REAL)
            return REAL
        if h == "ToReal":
            unify(inf(a[0]), TVar("int"))
            return REAL
        if h in ("Eq", "Lt", "Le"):
            unify(inf(a[0]), TVar("num"))
            unify(inf(a[1]), TVar("num"))
            return BOOL
        if h in ("And", "Or"):
            unify(inf(a[0]), BOOL)
            unify(inf(a[1]), BOOL)
            return BOOL
        if h == "Not":
            unify(inf(a[0]), BOOL)
            return BOOL
        if h == "Len":
            s = sym()
            unify(inf(a[0]), ("arr", TVar(), s))
            return ("size", s)
        if h in ("Fst", "Snd"):
            x, y = TVar(), TVar()
            unify(inf(a[0]), ("pair", x, y))
            return x if h == "Fst" else y
        if h == "Get":
            s, e = sym(), TVar()
            unify(inf(a[0]), ("arr", e, s))
            unify(inf(a[1]), ("idx", s))
            return e
        if h == "Pair":
            return ("pair", inf(a[0]), inf(a[1]))
        if h == "If":
            unify(inf(a[0]), BOOL)
            t = inf(a[1])
            unify(inf(a[2]), t)
            return t
        if h in ("Build", "Sum"):
            s = sym()
            unify(inf(a[1]), ("size", s))
            self._literal_extent(a[1], s)
            self.bind(a[0], lhs)
            unify(self.name_type(a[0]), ("idx", s))
            b = inf(a[2])
            if h == "Build":
                return ("arr", b, s)
            unify(b, TVar("num"))
            return b
        if h == "Let":
            self.bind(a[0], lhs)
            unify(self.name_type(a[0]), inf(a[1]))
            return inf(a[2])
        if h == "IFold":
            s = sym()
            unify(inf(a[4]), ("size", s))
            self._literal_extent(a[4], s)
            self.bind(a[0], lhs)
            self.bind(a[1], lhs)
            unify(self.name_type(a[1]), ("idx", s))
            t = inf(a[3])
            unify(self.name_type(a[0]), t)
            unify(inf(a[2]), t)
            return t
        if h == "Subst":
            self.bind(a[1], lhs)
            unify(self.name_type(a[1]), inf(a[2]))
            return inf(a[0])
        if h in ("+", "-", "*", "/", "neg", "to-f64", "min", "max", "abs", "to-i64", "fv"):
            for x in a:
                inf(x)
            return TVar()
        return TVar()

    def condition(self, c: App) -> None:
        if c.head == "ext":
            s = sym()
            unify(self.name_type(c.args[0]), ("idx", s))
            unify(self.infer(c.args[1], top=False), ("size", s))
        elif c.head == "real-term":
            unify(self.infer(c.args[0], top=False), REAL)
        elif c.head == "real-array":
            unify(self.infer(c.args[0], top=False), ("arr", REAL, sym()))
        elif c.head == "=":
            unify(self.infer(c.args[0], top=False), self.infer(c.args[1], top=False))
        elif c.head in ("set-contains", "set-not-contains", "set-empty", "set-nonempty"):
            self.infer(c.args[0], top=False)


# --------------------------------------------------------------------------------------
# resolving open types at random
# --------------------------------------------------------------------------------------
class Resolver:
    def __init__(self, rng: random.Random, sizes: dict[str, int]):
        self.rng, self.sizes = rng, sizes

    def sym(self, s):
        s = find(s)
        if isinstance(s, TVar):
            v = self.rng.choice(["n", "n", "n", "m", "m", 0, 1, 2, 3])
            s.ref = v
            return v
        return s

    def type(self, t):
        t = find(t)
        if isinstance(t, TVar):
            k = t.kind
            r = self.rng.random()
            if k == "sym":
                return self.sym(t)
            if k == "int":
                c = ("idx", TVar("sym"))
            elif k == "num":
                c = REAL if r < 0.8 else ("idx", TVar("sym"))
            else:
                opts = [REAL] * 8 + [BOOL, ("arr", REAL, TVar("sym")), ("arr", REAL, TVar("sym")),
                                      ("pair", REAL, REAL), ("pair", REAL, ("arr", REAL, TVar("sym"))),
                                      ("arr", ("arr", REAL, "n"), "m"), ("idx", TVar("sym"))]
                c = self.rng.choice(opts)
            t.ref = c
            return self.type(c)
        if t[0] in ("real", "bool"):
            return t
        if t[0] in ("idx", "size"):
            return (t[0], self.sym(t[1]))
        if t[0] == "arr":
            return ("arr", self.type(t[1]), self.sym(t[2]))
        if t[0] == "pair":
            return ("pair", self.type(t[1]), self.type(t[2]))
        raise TypeClash(f"unknown type {t!r}")


def show_t(t) -> str:
    if t[0] in ("real", "bool"):
        return t[0]
    if t[0] == "idx":
        return f"(index < {t[1]})"
    if t[0] == "size":
        return f"(size {t[1]})"
    if t[0] == "arr":
        return f"(array {show_t(t[1])} {t[2]})"
    return f"(pair {show_t(t[1])} {show_t(t[2])})"


# --------------------------------------------------------------------------------------
# terms
# --------------------------------------------------------------------------------------
def egg_text(t) -> str:
    """An instantiated term as egglog text."""
    if isinstance(t, App):
        return "(" + " ".join([t.head] + [egg_text(a) for a in t.args]) + ")" if t.args else f"({t.head})"
    if isinstance(t, bool):
        return "true" if t else "false"
    if isinstance(t, float):
        return egg_float(t)
    if isinstance(t, int):
        return str(t)
    if isinstance(t, str):
        return egg_string(t)
    raise TypeError(f"not a term: {t!r}")


def term_size(t) -> int:
    if isinstance(t, App):
        return 1 + sum(term_size(a) for a in t.args)
    return 0


def egg_fv(t) -> frozenset:
    """Free bound-variable names of an instantiated term, as ``fv.egg`` computes them
    (syntactically; ``(Acc a i)`` has ``{a, i}``)."""
    if not isinstance(t, App):
        return frozenset()
    h, a = t.head, t.args
    if h == "Var":
        return frozenset([a[0]])
    if h == "Acc":
        return frozenset([a[0], a[1]])
    if h in ("Build", "Sum", "Let"):
        return egg_fv(a[1]) | (egg_fv(a[2]) - {a[0]})
    if h == "IFold":
        return egg_fv(a[3]) | egg_fv(a[4]) | (egg_fv(a[2]) - {a[0], a[1]})
    if h == "Subst":
        fa = egg_fv(a[0])
        return (fa - {a[1]}) | egg_fv(a[2]) if a[1] in fa else fa
    out = frozenset()
    for x in a:
        out |= egg_fv(x)
    return out


def loop_index_use(t, out=None) -> list:
    """``[loops, loops whose body mentions their index]`` over the ``Build``/``Sum``/``IFold``
    nodes of an instantiated term (a measure of the generator: a body that ignores its index
    cannot show an off-by-one)."""
    out = [0, 0] if out is None else out
    if isinstance(t, App):
        if t.head in ("Build", "Sum", "IFold"):
            j, body = (t.args[0], t.args[2]) if t.head != "IFold" else (t.args[1], t.args[2])
            out[0] += 1
            out[1] += j in egg_fv(body)
        for a in t.args:
            loop_index_use(a, out)
    return out


def to_expr(t):
    """An instantiated e-graph term as an :class:`Expr` (``Subst`` done by capture-avoiding
    substitution, :func:`eqsat_ad.lang.binders.subst`)."""
    from ..egraph.decode import _build
    from ..lang.binders import subst
    if not isinstance(t, App):
        return t
    if t.head == "Subst":
        return subst(to_expr(t.args[0]), t.args[1], to_expr(t.args[2]))
    return _build(t.head, [to_expr(a) for a in t.args])


@dataclass
class Entry:
    """A name in scope while generating: how to refer to it and its type."""
    kind: str            # var | index | acc | input | dim
    type: tuple
    index: str = ""      # for acc: the fold's index name
    ranged: bool = True  # an index known to be in range (False: a free index name of a rule
                         # that no (ext r n) bounds: its value may be anything)

    def ref(self, name: str) -> App:
        if self.kind == "acc":
            return App("Acc", (name, self.index))
        if self.kind == "input":
            return App("Input", (name,))
        if self.kind == "dim":
            return App("Dim", (name,))
        return App("Var", (name,))


OUTER_INPUTS = {"x": ("arr", REAL, "n"), "y": ("arr", REAL, "n"), "z": ("arr", REAL, "m"),
                "M": ("arr", ("arr", REAL, "n"), "m"), "w": REAL, "v": REAL}
OUTER_INDICES = {"p": "n", "q": "m"}
_LITS = (0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 1.5, 0.25, -0.5, 3.0)
_I64 = (0, 1, 2, 3, -1, 5)


class TermGen:
    """Random closed-over-``env`` terms of a given (resolved) type."""

    def __init__(self, rng: random.Random, sizes: dict, fresh_prefix: str = "g", prefer=()):
        self.rng, self.sizes = rng, sizes
        self.k = 0
        self.prefix = fresh_prefix
        self.prefer = set(prefer)      # names to mention often (set-contains conditions)
        self.smooth = False            # True: no if / comparisons (differentiable programs)
        # the rule checker's settings (off for the pipeline fuzzer, whose programs must not
        # fail): ``edges`` -- index arithmetic (i+1, i-1, n-1-i, n-1), boundary values and,
        # where a value cannot fail (comparisons, casts, the rule's own index variables),
        # indices out of range; ``use_index`` -- how often a generated loop body must mention
        # its loop index (retries, then a term using it is added)
        self.edges = False
        self.use_index = 0.0

    def fresh(self) -> str:
        self.k += 1
        return f"{self.prefix}{self.k}"

    def conc(self, s) -> int:
        return self.sizes[s] if isinstance(s, str) else int(s)

    def choose(self, opts):
        return self.rng.choice(opts)()

    # -- leaves ------------------------------------------------------------------------
    def refs(self, t, env: dict) -> list:
        out = []
        for n, e in sorted(env.items()):
            if e.type == t:
                out += [lambda n=n, e=e: e.ref(n)] * (6 if n in self.prefer else 1)
        return out

    def size(self, s, env) -> App:
        opts = []
        if isinstance(s, int):
            opts.append(lambda: App("Int", (s,)))
        for n, e in sorted(env.items()):
            if e.kind == "dim" and e.type == ("size", s):
                opts += [lambda n=n: App("Dim", (n,))] * 2
            if e.type[0] == "arr" and e.type[2] == s and e.kind == "input":
                opts.append(lambda n=n: App("Len", (App("Input", (n,)),)))
            if self.edges and e.kind in ("var", "index") and e.type == ("size", s):
                opts += [lambda n=n: App("Var", (n,))] * (6 if n in self.prefer else 1)
            if self.edges and e.type[0] == "arr" and e.type[2] == s and e.kind in ("var", "acc"):
                opts += [lambda n=n, e=e: App("Len", (e.ref(n),))] * (6 if n in self.prefer else 1)
        if not opts:
            opts.append(lambda: App("Int", (self.conc(s),)))
        t = self.choose(opts)
        pref = [n for n, e in sorted(env.items()) if n in self.prefer and e.type[0] == "idx"
                and e.kind in ("index", "var")]
        if pref and self.rng.random() < 0.5:       # the same size, mentioning a wanted index name
            t = App("Add", (t, App("Mul", (App("Int", (0,)), App("Var", (self.rng.choice(pref),))))))
        return t

    def extent(self, s, env) -> App:
        """A rule variable's loop extent: mostly the size ``s``; else shorter -- ``n-1``,
        ``n-2`` (negative for small ``n``: an empty loop) or ``n-i`` for an index in scope.  A
        shorter loop keeps its index in range for everything typed with ``s``."""
        if not self.edges or self.rng.random() >= SHORT_EXTENT:
            return self.size(s, env)
        opts = [lambda: App("Sub", (self.size(s, env), App("Int", (self.rng.choice([1, 2]),))))]
        idx = [n for n, e in sorted(env.items()) if e.kind in ("index", "var") and e.type[0] == "idx" and e.ranged]
        pref = [n for n in idx if n in self.prefer]
        opts += [lambda n=n: App("Sub", (self.size(s, env), App("Var", (n,)))) for n in (pref or idx)]
        return self.choose(opts)

    def any_size(self, s, env) -> App:
        """An integer of a size's type that need not be that size (a rule variable that is
        never an extent: ``n``, ``n+1``, ``n-1``, a small literal, an index)."""
        opts = [lambda: self.size(s, env)] * 3
        opts += [lambda: App("Add", (self.size(s, env), App("Int", (1,)))),
                 lambda: App("Sub", (self.size(s, env), App("Int", (1,)))),
                 lambda: App("Int", (self.rng.choice([0, 1, 2, 3, 5]),))]
        opts += [lambda n=n: App("Var", (n,)) for n, e in sorted(env.items())
                 if e.kind in ("index", "var") and e.type[0] in ("idx", "size")]
        return self.choose(opts)

    def index(self, s, env) -> App:
        """An index below ``s`` (always in range: used by ``get``)."""
        opts = []
        c = self.conc(s)
        in_range = [n for n, e in sorted(env.items())
                    if e.kind in ("index", "var") and e.type == ("idx", s) and e.ranged]
        for n in in_range:
            opts += [lambda n=n: App("Var", (n,))] * (12 if n in self.prefer else 3)
        opts += [(lambda c=c: App("Int", (c,))) for c in range(min(c, 3))]
        if self.edges and c > 0:
            last = lambda: App("Sub", (self.size(s, env), App("Int", (1,))))   # noqa: E731
            opts += [lambda: App("Int", (c - 1,)), last]               # the boundaries
            for n in in_range:                                         # n-1-i: reversal
                opts += [lambda n=n: App("Sub", (last(), App("Var", (n,))))] * 2
        if not opts:
            raise NoInstance(f"no index below {s} (= {self.conc(s)}) in scope")
        return self.choose(opts)

    def any_index(self, s, env, edge: float = 0.4) -> App:
        """An index term of the extent ``s`` that may be out of range (with probability
        ``edge`` when ``edges`` is on): ``n``, ``-1``, ``n+1``, ``i+1``, ``i-1``, ``n-1`` at
        ``n = 0``, or an unbounded free index.  For places where no range is promised: the
        rule's own index variables, comparisons, casts."""
        if not self.edges or self.rng.random() >= edge:
            try:
                return self.index(s, env)
            except NoInstance:
                if not self.edges:
                    raise
        c = self.conc(s)
        opts = [lambda: App("Int", (c,)), lambda: App("Int", (-1,)), lambda: App("Int", (c + 1,)),
                lambda: self.size(s, env), lambda: App("Sub", (self.size(s, env), App("Int", (1,))))]
        for n, e in sorted(env.items()):
            if e.kind in ("index", "var") and e.type[0] == "idx":
                if e.type[1] == s or not e.ranged:
                    opts += [lambda n=n: App("Add", (App("Var", (n,)), App("Int", (1,)))),
                             lambda n=n: App("Sub", (App("Var", (n,)), App("Int", (1,))))]
                if not e.ranged:
                    opts += [lambda n=n: App("Var", (n,))] * 2
        return self.choose(opts)

    def uses(self, names, make, tries: int = 3):
        """``make()`` (a term generator), retried while the term mentions none of ``names``
        -- with probability ``use_index`` (``None`` when it still does not)."""
        if not names or self.use_index <= 0 or self.rng.random() >= self.use_index:
            return make()
        saved = self.prefer
        self.prefer = saved | set(names)
        try:
            for _ in range(tries):
                t = make()
                if egg_fv(t) & set(names):
                    return t
            return t if self.rng.random() < 0.2 else None
        finally:
            self.prefer = saved

    def body(self, j, t, env, d):
        """A loop body of type ``t`` over the index ``j`` (mentioning it ``use_index`` of the
        time: a real body that does not is combined with a term that does)."""
        b = self.uses([j], lambda: self.gen(t, env, d))
        if b is not None:
            return b
        b = self.gen(t, env, d)
        if t == REAL:
            return App(self.rng.choice(["Add", "Mul", "Sub"]), (b, self.mention(j, env)))
        return b

    def mention(self, j, env) -> App:
        """A small real term that depends on the index ``j``."""
        e = env[j]
        opts = [lambda: App("ToReal", (App("Var", (j,)),))]
        if e.ranged:
            opts += [lambda n=n, x=x: App("Get", (x.ref(n), App("Var", (j,))))
                     for n, x in sorted(env.items()) if x.type == ("arr", REAL, e.type[1])] * 2
        if self.edges:
            opts.append(lambda: App("ToReal", (App("Sub", (self.size(e.type[1], env), App("Var", (j,)))),)))
        return self.choose(opts)

    def pos(self, env, d) -> App:
        e = self.real(env, d - 1)
        return App("Add", (App("Num", (1.0,)), App("Mul", (e, e))))

    def real_leaf(self, env) -> App:
        opts = [lambda: App("Num", (self.rng.choice(_LITS),))] * 3 + [lambda: App("Num", (0.0,))]
        opts += self.refs(REAL, env) * 3
        for n, e in sorted(env.items()):
            t = e.type
            w = 4 if n in self.prefer else 1
            if t[0] == "arr" and t[1] == REAL:
                opts += [lambda n=n, e=e: App("Get", (e.ref(n), self.index(e.type[2], env)))] * 3 * w
            if t[0] == "arr" and t[1][0] == "arr" and t[1][1] == REAL:
                opts.append(lambda n=n, e=e: App("Get", (App("Get", (e.ref(n), self.index(e.type[2], env))),
                                                        self.index(e.type[1][2], env))))
            if t[0] == "idx" and e.kind in ("index", "var"):
                opts += [lambda n=n: App("ToReal", (App("Var", (n,)),))] * w
                if self.edges:          # index arithmetic, any value (a cast cannot fail)
                    opts += [lambda n=n, e=e: App("ToReal", (self.rng.choice([
                        App("Add", (App("Var", (n,)), App("Int", (1,)))),
                        App("Sub", (App("Var", (n,)), App("Int", (1,)))),
                        App("Sub", (self.size(e.type[1], env), App("Var", (n,)))),
                        App("Mul", (App("Var", (n,)), App("Var", (n,)))),
                        App("FloorDiv", (App("Sub", (App("Var", (n,)), App("Int", (2,)))),
                                         App("Int", (self.rng.choice([2, -3]),)))),
                        App("Mod", (App("Sub", (App("Var", (n,)), App("Int", (2,)))),
                                    App("Int", (self.rng.choice([2, -3]),))))]),))] * w
            if t[0] == "pair":
                if t[1] == REAL:
                    opts += [lambda n=n, e=e: App("Fst", (e.ref(n),))] * 2 * w
                if t[2] == REAL:
                    opts += [lambda n=n, e=e: App("Snd", (e.ref(n),))] * 2 * w
        for _ in range(4):
            try:
                return self.choose(opts)
            except NoInstance:
                continue
        return App("Num", (1.0,))

    # -- by type -----------------------------------------------------------------------
    def gen(self, t, env: dict, d: int):
        k = t[0]
        if k == "real":
            return self.real(env, d)
        if k == "bool":
            return self.bool(env, d)
        if k == "idx":
            return self.index(t[1], env)
        if k == "size":
            return self.size(t[1], env)
        if k == "arr":
            return self.array(t, env, d)
        if k == "pair":
            return self.pair(t, env, d)
        raise NoInstance(f"cannot generate {t}")

    def generic(self, t, env, d) -> list:
        """Forms for any type: if, let, ifold, fst of a pair."""
        if d <= 0:
            return []
        return ([] if self.smooth else [
            lambda: App("If", (self.bool(env, d - 1), self.gen(t, env, d - 1), self.gen(t, env, d - 1)))]) + [
            lambda: self.let(t, env, d),
            lambda: self.ifold(t, env, d),
            lambda: App("Fst", (App("Pair", (self.gen(t, env, d - 1), self.real(env, 0))),)),
        ]

    def let(self, t, env, d):
        vt = self.rng.choice([REAL, REAL, ("arr", REAL, "n")])
        x = self.fresh()
        val = self.gen(vt, env, d - 1)
        return App("Let", (x, val, self.gen(t, {**env, x: Entry("var", vt)}, d - 1)))

    def ifold(self, t, env, d):
        s = self.rng.choice(["n", "m", 2])
        a, i = self.fresh(), self.fresh()
        inner = {**env, a: Entry("acc", t, i), i: Entry("index", ("idx", s))}
        if t == REAL:
            e = self.body(i, REAL, inner, d - 1)
            body = self.rng.choice([App("Add", (App("Acc", (a, i)), e)), App("Add", (e, App("Acc", (a, i)))),
                                    App("Mul", (App("Acc", (a, i)), App("Cos", (e,)))), e])
        else:
            body = self.body(i, t, inner, d - 1)
        return App("IFold", (a, i, body, self.gen(t, env, d - 1), self.size(s, env)))

    def real(self, env, d) -> App:
        if d <= 0:
            return self.real_leaf(env)
        r = lambda: self.real(env, d - 1)   # noqa: E731
        opts = [lambda: self.real_leaf(env)] * 3
        opts += [lambda op=op: App(op, (r(), r())) for op in ("Add", "Sub", "Mul")] * 2
        opts += [lambda op=op: App(op, (r(),)) for op in ("Neg", "Sin", "Cos", "Tanh")]
        # the non-smooth primitives; ties (max x x) are drawn by the collisions of the leaves
        opts += [lambda op=op: App(op, (r(),)) for op in ("Abs", "Sign")]
        opts += [lambda op=op: App(op, (r(), r())) for op in ("Maximum", "Minimum")]
        opts.append(lambda: App("Log1p", (self.pos(env, d),)))
        opts += [
            lambda: App("Exp", (App("Tanh", (r(),)),)),
            lambda: App("Log", (self.pos(env, d),)),
            lambda: App("Sqrt", (self.pos(env, d),)),
            lambda: App("Tan", (App("Mul", (App("Num", (0.5,)), App("Tanh", (r(),)))),)),
            lambda: App("Pow", (self.pos(env, d), App("Num", (self.rng.choice([2.0, 0.5, 3.0, -1.0, 1.0, 0.0]),)))),
            lambda: App("Div", (r(), self.pos(env, d))),
            lambda: self.sum(env, d), lambda: self.sum(env, d),
            lambda: App("Get", (self.array(("arr", REAL, "n"), env, d - 1), self.index("n", env))),
        ]
        if not self.smooth:
            opts.append(lambda: App("If", (self.bool(env, d - 1), r(), App("Num", (0.0,)))))   # one-hot shape
        opts += self.generic(REAL, env, d)
        for _ in range(6):
            try:
                return self.choose(opts)
            except NoInstance:
                continue
        return self.real_leaf(env)

    def sum(self, env, d) -> App:
        s = self.rng.choice(["n", "m", 2])
        j = self.fresh()
        return App("Sum", (j, self.size(s, env), self.body(j, REAL, {**env, j: Entry("index", ("idx", s))}, d - 1)))

    def bool(self, env, d) -> App:
        opts = [lambda: App("BTrue", ()), lambda: App("BFalse", ()),
                lambda: App(self.rng.choice(["Lt", "Le"]), (self.real(env, d - 1), self.real(env, d - 1)))]
        idx = [(n, e) for n, e in sorted(env.items()) if e.type[0] == "idx" and e.kind in ("index", "var")]
        if idx:
            def onehot():
                n, e = self.rng.choice(idx)
                return App("Eq", (App("Var", (n,)), self.any_index(e.type[1], env)))
            opts += [onehot] * 3
        if d > 0:
            opts += [lambda: App(self.rng.choice(["And", "Or"]), (self.bool(env, d - 1), self.bool(env, d - 1))),
                     lambda: App("Not", (self.bool(env, d - 1),))]
        opts += self.refs(BOOL, env)
        return self.choose(opts)

    def array(self, t, env, d) -> App:
        elem, s = t[1], t[2]
        opts = self.refs(t, env) * 3
        for n, e in sorted(env.items()):
            u = e.type
            if u[0] == "arr" and u[1] == t:
                opts += [lambda n=n, e=e: App("Get", (e.ref(n), self.index(e.type[2], env)))] * 2

        def build():
            j = self.fresh()
            return App("Build", (j, self.size(s, env), self.body(j, elem, {**env, j: Entry("index", ("idx", s))}, d - 1)))
        opts += [build] * 2
        opts += self.generic(t, env, d)
        for _ in range(6):
            try:
                return self.choose(opts)
            except NoInstance:
                continue
        return build()

    def pair(self, t, env, d) -> App:
        opts = [lambda: App("Pair", (self.gen(t[1], env, d - 1), self.gen(t[2], env, d - 1)))] * 3
        opts += self.refs(t, env) * 2
        opts += self.generic(t, env, d)
        return self.choose(opts)


# --------------------------------------------------------------------------------------
# one instance of an equation
# --------------------------------------------------------------------------------------
@dataclass
class Instance:
    """A concrete instance: the binding of every pattern variable, sizes, the outer variables
    (name -> (type, value)), and both sides as terms."""
    bindings: dict
    sizes: dict
    outer: dict               # free names of the rule -> Entry
    lhs: App
    rhs: object
    types: dict = field(default_factory=dict)
    envs: dict = field(default_factory=dict)       # var -> generation env (for shrinking)
    depth: int = 0
    rhs_type_error: str = ""     # the right-hand side has another type than the left (why)
    rhs_primitive_fails: str = ""   # a primitive of the right-hand side fails (which)

    @property
    def size(self) -> int:
        return sum(term_size(v) for v in self.bindings.values())


def outer_env(sizes: dict) -> dict:
    env = {n: Entry("input", t) for n, t in OUTER_INPUTS.items()}
    env["n"] = Entry("dim", ("size", "n"))
    env["m"] = Entry("dim", ("size", "m"))
    for p, s in OUTER_INDICES.items():
        if sizes[s] > 0:
            env[p] = Entry("index", ("idx", s))
    return env


def substitute(p, b: dict):
    """Instantiate a pattern with bindings (computing primitive applications on literals)."""
    if isinstance(p, PVar):
        if p.name not in b:
            raise NoInstance(f"variable {p.name} has no value")
        return b[p.name]
    if isinstance(p, App):
        args = tuple(substitute(a, b) for a in p.args)
        h = p.head
        if h in ("+", "-", "*", "/", "neg", "to-f64", "to-i64", "min", "max", "abs"):
            return _prim(h, args)
        return App(h, args)
    return p


def _prim(h, a):
    if h == "+":
        return a[0] + a[1]
    if h == "-":
        return a[0] - a[1]
    if h == "*":
        return a[0] * a[1]
    if h == "/":
        if a[1] == 0:          # egglog's f64 and i64 division fail there (the run stops)
            raise PrimitiveFails(f"(/ {egg_text(a[0])} {egg_text(a[1])})")
        return a[0] / a[1] if isinstance(a[0], float) or isinstance(a[1], float) else int(a[0] / a[1])
    if h == "neg":
        return -a[0]
    if h == "to-f64":
        return float(a[0])
    if h == "to-i64":
        return int(a[0])
    if h == "min":
        return min(a)
    if h == "max":
        return max(a)
    return abs(a[0])


#: the distribution of the sizes ``n`` and ``m`` of an instance (empty and one-element loops
#: included: range and off-by-one errors show there)
SIZES, SIZE_WEIGHTS = (0, 1, 2, 3, 4), (2, 4, 4, 4, 2)
#: how often a generated loop body (and a rule variable under a binder of the rule) must
#: mention its index / the binder's name
USE_INDEX = 0.85
#: how often a rule variable of index type is drawn possibly out of range (n, -1, i+1, ...)
EDGE_INDEX = 0.35
#: how often a rule variable that is a loop extent is shorter than its size (n-1, n-2, n-i)
SHORT_EXTENT = 0.25
#: how often a rule variable of array type is an array one element shorter than its size
SHORT_ARRAY = 0.15


def draw_size(rng: random.Random) -> int:
    return rng.choices(SIZES, SIZE_WEIGHTS)[0]


class Instantiator:
    """Draws instances of one equation (see the module docstring)."""

    def __init__(self, eq: Equation, rng: random.Random, collide: float = 0.3,
                 unique_names: bool = False):
        self.eq, self.rng, self.collide, self.unique = eq, rng, collide, unique_names
        self.name_prefix = ""        # set per instance to keep names unique across instances
        self.fixed_sizes = None      # sizes shared by every instance (the e-graph mode)
        Inference(eq, rhs=False)     # fail early (TypeClash) if the left side cannot be typed
        self.term_vars = sorted(v for v in pattern_vars(eq.lhs) if eq.sorts.get(v, "Term") == "Term")
        # a String variable only the query's other atoms name (the v of (= vb (Build v m b))
        # (set-contains (fv a) v): "a mentions the index of some build") is a free name of
        # the rule too
        cond_vars = {x for c in eq.conditions for arg in c.args for x in pattern_vars(arg)}
        self.string_vars = sorted(v for v, s in eq.sorts.items() if s == "String"
                                  and (v in pattern_vars(eq.lhs) or v in cond_vars))
        self.lit_vars = sorted(v for v in pattern_vars(eq.lhs) if eq.sorts.get(v) in ("f64", "i64"))
        # variables that are an extent somewhere (their value must be the size their type
        # names); another size-typed variable is just an integer (any_size)
        self.extent_vars = _extent_vars(eq)
        self.ext_vars = {c.args[1].name for c in eq.conditions if c.head == "ext" and isinstance(c.args[1], PVar)}

    def draw(self, depth: int) -> Instance:
        rng = self.rng
        inf = Inference(self.eq, rhs=False)    # the right side is typed after drawing (below)
        sizes = {"n": draw_size(rng), "m": draw_size(rng)}
        if self.fixed_sizes:
            sizes = dict(self.fixed_sizes)
        res = Resolver(rng, sizes)
        # names
        names: dict[str, str] = {}
        taken: list[str] = []
        for v, s in sorted(inf.dim_vars.items()):       # (Dim d): d is "n" or "m"
            s = find(s)
            names[v] = s if isinstance(s, str) else rng.choice(["n", "m"])
            if isinstance(s, TVar):
                unify(s, names[v])
            elif not isinstance(s, str):
                raise NoInstance(f"(Dim {v}) would have the literal size {s}")
        for v in self.string_vars:
            if v in inf.dim_vars:
                continue
            pool = taken + ([k for k in OUTER_INDICES if sizes[OUTER_INDICES[k]] > 0]
                            if v in inf.bound else [])
            if not self.unique and pool and rng.random() < self.collide:
                # mostly another name of the rule (capture, shadowing), else an outer index
                names[v] = rng.choice(taken) if taken and rng.random() < 0.6 else rng.choice(pool)
            else:
                names[v] = f"{self.name_prefix}{v}_{len(taken)}" if not self.unique else \
                    f"{self.name_prefix}{v}_u{len(taken)}"
            taken.append(names[v])
        for p in _ifolds(self.eq.lhs):
            a, i = (names.get(x.name) if isinstance(x, PVar) else x for x in p.args[:2])
            if a == i:
                raise NoInstance("an ifold's accumulator and index would have the same name")
        b: dict = dict(names)
        for v in self.lit_vars:
            b[v] = rng.choice(_LITS) if self.eq.sorts[v] == "f64" else rng.choice(_I64)
            for s in inf.lit_extents.get(v, ()):       # (Build s (Int k) b): the extent is k
                if isinstance(find(s), TVar):
                    unify(s, b[v])
                elif find(s) != b[v]:
                    raise NoInstance(f"the literal extent {v} = {b[v]} clashes with another size")
        # outer variables: the free String variables of the rule
        base = outer_env(sizes)
        outer: dict[str, Entry] = {}
        ranged = {c.args[0].name for c in self.eq.conditions if c.head == "ext" and isinstance(c.args[0], PVar)}
        for v in self.string_vars:
            if v not in inf.bound and v not in inf.dim_vars:
                t = res.type(inf.name_type(PVar(v)))
                nm = names[v]
                if nm in outer and outer[nm].type != t:
                    raise NoInstance("two free names collide with different types")
                if t[0] == "idx" and v in ranged and TermGen(rng, sizes).conc(t[1]) == 0:
                    raise NoInstance(f"free index {v} ranges over an empty extent")
                # a free index name is in range only where an (ext r n) condition says so;
                # otherwise it is any integer (outer_values draws -1, n, n+1 too)
                outer[nm] = Entry("index" if t[0] == "idx" else "var", t,
                                  ranged=t[0] != "idx" or v in ranged or nm in OUTER_INDICES)
        env0 = {**base, **outer}
        # scopes of the Term variables on the left-hand side
        scopes: dict[str, dict] = {}
        self._scopes(self.eq.lhs, env0, names, inf, res, scopes)
        excluded = self._excluded(names)
        prefer = {substitute(c.args[1], b) for c in self.eq.conditions if c.head == "set-contains"}
        gen = TermGen(rng, sizes, fresh_prefix=f"{self.name_prefix}g", prefer=prefer)
        gen.edges, gen.use_index = True, USE_INDEX
        pattern_bound = {names[v] for v in inf.bound if v in names}
        types: dict = {}
        envs: dict = {}
        order = sorted(self.term_vars, key=lambda v: 0 if res.type(inf.tv.get(v, TVar()))[0] == "size" else 1)
        for v in order:
            t = res.type(inf.tv.setdefault(v, TVar()))
            env = scopes.get(v, env0)
            ex = excluded.get(v, set())
            env = {n: e for n, e in env.items() if n not in ex and not (e.kind == "acc" and e.index in ex)}
            types[v], envs[v] = t, env
        # the right-hand side must have the left's type with these types (a rule that turns an
        # index into a real, or uses a variable at another type, is wrong even where the
        # interpreter's values agree: the e-graph would merge classes of different types)
        try:
            inf.check_rhs()
            rhs_err = ""
        except TypeClash as ex:
            rhs_err = str(ex)
        # the names the pattern's own binders put in scope of each variable (a loop body of the
        # rule should mostly use its index)
        inner = {v: sorted(n for n, e in envs[v].items() if n in pattern_bound and e.kind in ("index", "var", "acc"))
                 for v in order}
        why = ""
        for _ in range(12):          # regenerate the terms until the side conditions hold
            for v in order:
                b[v] = self._term(v, gen, types[v], envs[v], rng.randint(0, depth) if depth else 0, inner[v])
            inst = self.build(b, sizes, outer, types, envs, depth)
            why = self.violated(inst)
            if not why:
                inst.rhs_type_error = rhs_err
                return inst
        raise NoInstance(why)

    def _term(self, v, gen: "TermGen", t, env, d, inner):
        if t[0] == "idx":            # the rule's own index variables: any index, in range or not
            return gen.any_index(t[1], env, edge=EDGE_INDEX)
        if t[0] == "size" and v not in self.extent_vars:      # a size-typed value, not an extent
            return gen.any_size(t[1], env)
        if t[0] == "arr" and gen.edges and gen.rng.random() < SHORT_ARRAY:
            # an array shorter than its type says (the language allows arrays of unknown size
            # -- (build (- n 1) ...) -- so two arrays of one type may differ in length)
            j = gen.fresh()
            return App("Build", (j, App("Sub", (gen.size(t[2], env), App("Int", (1,)))),
                                 gen.body(j, t[1], {**env, j: Entry("index", ("idx", t[2]))}, d - 1)))
        if t[0] == "size" and v not in self.ext_vars:         # an extent no (ext r n) relies on
            got = gen.uses(inner, lambda: gen.extent(t[1], env), tries=4) if inner else None
            return got if got is not None else gen.extent(t[1], env)
        if inner:
            got = gen.uses(inner, lambda: gen.gen(t, env, d), tries=4)
            if got is not None:
                return got
        return gen.gen(t, env, d)

    def build(self, b, sizes, outer, types, envs, depth) -> Instance:
        b = dict(b)
        failed = ""
        try:
            for v, p in self.eq.rhs_lets.items():
                b[v] = substitute(p, b)
            rhs = substitute(self.eq.rhs, b)
        except PrimitiveFails as ex:
            rhs, failed = App("Num", (float("nan"),)), str(ex)
        lhs = substitute(self.eq.lhs, b)
        inst = Instance(b, sizes, outer, lhs, rhs, types, envs, depth)
        inst.rhs_primitive_fails = failed
        return inst

    def _excluded(self, names) -> dict[str, set]:
        out: dict[str, set] = {}
        for c in self.eq.conditions:
            if c.head == "set-not-contains" and isinstance(c.args[0], PVar):
                s = c.args[1]
                nm = names.get(s.name) if isinstance(s, PVar) else s
                if nm is not None:
                    out.setdefault(c.args[0].name, set()).add(nm)
        return out

    def _scopes(self, p, env, names, inf, res, out) -> None:
        if isinstance(p, PVar):
            if self.eq.sorts.get(p.name, "Term") == "Term":
                if p.name in out:
                    prev = out[p.name]
                    out[p.name] = {k: e for k, e in prev.items() if k in env and env[k] == e}
                else:
                    out[p.name] = dict(env)
            return
        if not isinstance(p, App):
            return
        h, a = p.head, p.args
        nm = lambda s: names.get(s.name) if isinstance(s, PVar) else s   # noqa: E731
        ty = lambda s: res.type(inf.name_type(s))                         # noqa: E731
        if h in ("Build", "Sum"):
            self._scopes(a[1], env, names, inf, res, out)
            self._scopes(a[2], {**env, nm(a[0]): Entry("index", ty(a[0]))}, names, inf, res, out)
        elif h == "Let":
            self._scopes(a[1], env, names, inf, res, out)
            self._scopes(a[2], {**env, nm(a[0]): Entry("var", ty(a[0]))}, names, inf, res, out)
        elif h == "IFold":
            inner = {**env, nm(a[0]): Entry("acc", ty(a[0]), nm(a[1]))}
            inner[nm(a[1])] = Entry("index", ty(a[1]))
            self._scopes(a[2], inner, names, inf, res, out)
            self._scopes(a[3], env, names, inf, res, out)
            self._scopes(a[4], env, names, inf, res, out)
        elif h == "Subst":
            t = ty(a[1])
            kind = "index" if t[0] == "idx" else "var"
            self._scopes(a[0], {**env, nm(a[1]): Entry(kind, t)}, names, inf, res, out)
            self._scopes(a[2], env, names, inf, res, out)
        else:
            for x in a:
                self._scopes(x, env, names, inf, res, out)

    def violated(self, inst: Instance) -> str:
        """Which side condition the instance violates ('' if none)."""
        b = inst.bindings
        for c in self.eq.conditions:
            h = c.head
            if h in ("set-contains", "set-not-contains"):
                f = egg_fv(substitute(c.args[0], b))
                s = substitute(c.args[1], b)
                if (s in f) != (h == "set-contains"):
                    return f"side condition ({h} (fv ...) {s!r}) fails"
            elif h in ("set-empty", "set-nonempty"):
                if bool(egg_fv(substitute(c.args[0], b))) != (h == "set-nonempty"):
                    return f"side condition ({h} (fv ...)) fails"
            elif h in ("!=", "<", ">", "<=", ">="):
                x, y = substitute(c.args[0], b), substitute(c.args[1], b)
                # (!= t a) between terms is an e-class guard ("not already equal"): structurally
                # distinct instances satisfy it; the orderings only compare primitives
                import operator
                ok = {"!=": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le,
                      ">=": operator.ge}[h](x, y)
                if not ok:
                    return f"side condition ({h} {x!r} {y!r}) fails"
            elif h == "ext":
                r = substitute(c.args[0], b)
                if r not in inst.outer and r not in egg_binders(inst.lhs):
                    return f"ext: {r} is not an index variable"
        return ""


def _extent_vars(eq: Equation) -> set:
    out: set = set()

    def walk(p):
        if isinstance(p, App):
            slot = {"Build": 1, "Sum": 1, "IFold": 4}.get(p.head)
            if slot is not None and isinstance(p.args[slot], PVar):
                out.add(p.args[slot].name)
            for a in p.args:
                walk(a)
    walk(eq.lhs)
    walk(eq.rhs)
    for c in eq.conditions:
        if c.head == "ext" and isinstance(c.args[1], PVar):
            out.add(c.args[1].name)
        for a in c.args:
            walk(a)
    return out


def _ifolds(p):
    if isinstance(p, App):
        if p.head == "IFold":
            yield p
        for a in p.args:
            yield from _ifolds(a)


def egg_binders(t, out=None) -> set:
    out = set() if out is None else out
    if isinstance(t, App):
        if t.head in ("Build", "Sum", "Let"):
            out.add(t.args[0])
        elif t.head == "IFold":
            out.update(t.args[:2])
        for a in t.args:
            egg_binders(a, out)
    return out


# --------------------------------------------------------------------------------------
# values of the outer context
# --------------------------------------------------------------------------------------
def outer_values(inst: Instance, rng: np.random.Generator, sizes: dict | None = None) -> dict:
    """Random values for the inputs, sizes, outer indices and free names of an instance."""
    sz = inst.sizes if sizes is None else sizes
    n, m = sz["n"], sz["m"]
    env: dict = {"n": n, "m": m,
                 "x": rng.uniform(-2, 2, n), "y": rng.uniform(-2, 2, n), "z": rng.uniform(-2, 2, m),
                 "M": rng.uniform(-2, 2, (m, n)), "w": float(rng.uniform(-2, 2)), "v": float(rng.uniform(-2, 2))}
    for p, s in OUTER_INDICES.items():
        if sz[s] > 0:
            env[p] = int(rng.integers(sz[s]))
    for name, e in inst.outer.items():
        if not e.ranged and e.type[0] == "idx":
            c = sz[e.type[1]] if isinstance(e.type[1], str) else e.type[1]
            env[name] = int(rng.choice([-1, c, c + 1]) if c <= 0 or rng.random() < 0.5 else rng.integers(c))
            continue
        env[name] = _value(e.type, sz, rng)
    return env


def _value(t, sizes, rng):
    k = t[0]
    if k == "real":
        return np.float64(rng.uniform(-2, 2))
    if k == "bool":
        return bool(rng.integers(2))
    if k == "idx":
        c = sizes[t[1]] if isinstance(t[1], str) else t[1]
        return int(rng.integers(c)) if c > 0 else 0
    if k == "size":
        return sizes[t[1]] if isinstance(t[1], str) else t[1]
    if k == "pair":
        return (_value(t[1], sizes, rng), _value(t[2], sizes, rng))
    c = sizes[t[2]] if isinstance(t[2], str) else t[2]
    from ..runtime import pack
    return pack([_value(t[1], sizes, rng) for _ in range(c)])
