"""Program -> egglog text, with globally unique binder names and sharing kept.

The program is first put in normal form (:func:`eqsat_ad.lang.normalize.normalize_program`:
administrative redexes reduced, common sub-terms up to bound names merged, shared ones
let-bound).  A ``let`` does not become a ``Let`` e-node: its value is encoded once (a global
``(let $sN ...)`` when it is not tiny) and every use of the name refers to it, so the e-graph
holds the program as a DAG -- the same e-class for every use -- and no rewrite ever has to
inline a ``let`` by pushing an explicit substitution through its body (docs/architecture.md,
"Sharing").  A Python object the program uses twice is encoded once in the same scope, too.

Every binder (build/sum/ifold index, ifold accumulator) gets a name that is unique in the
whole program, so no rewrite can capture a variable.  Parameters
become ``(Input "x")``, size names ``(Dim "n")``; an accumulator reference becomes
``(Acc "a" "i")`` (it depends on the iteration of its fold).  Alpha-equivalent programs encode
to the same text, because the unique names are assigned in a fixed traversal order.

Large terms are spilled into ``(let $tN ...)`` globals too, so that no single form is long or
deep (egglog parses big forms slowly and recursively).

>>> from eqsat_ad.lang.ast import *
>>> from eqsat_ad.lang.types import vec
>>> p = Program((Param("x", vec("n")),), Sum(Length(Var("x")), "i", Get(Var("x"), Var("i"))))
>>> enc = encode_program(p)
>>> enc.root
'(Sum "i1" (Len (Input "x")) (Get (Input "x") (Var "i1")))'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import EqsatError
from ..lang.ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Prim, Scan,
                        Program, Snd, Sum, Var)
from ..lang.types import ArrayT, Type
from .constructors import PRIM_TO_CTOR

SPILL_CHARS = 600          # terms longer than this are bound to a global
LET_SPILL_CHARS = 24       # a let-bound value longer than this is bound to a global


def egg_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def egg_float(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = repr(float(x))
    return r if any(c in r for c in ".en") else r + ".0"


@dataclass
class Encoded:
    """The egglog text of a program: ``lets`` (global bindings to run first), ``root`` (the
    root term), ``facts`` (shape facts about inputs) and the binder names used."""
    lets: list[str]
    root: str
    facts: list[str]
    size_names: list[str]
    binder_names: set[str] = field(default_factory=set)
    binder_kinds: dict[str, str] = field(default_factory=dict)   # name -> index | acc | let




class _Encoder:
    def __init__(self, prog: Program):
        self.prog = prog
        self.params = {p.name: p.type for p in prog.params}
        self.sizes: list[str] = []
        for p in prog.params:
            for n in _size_names(p.type):
                if n not in self.sizes:
                    self.sizes.append(n)
        self.used: set[str] = set(self.params) | set(self.sizes)
        self.kinds: dict[str, str] = {}
        self.lets: list[str] = []
        self.memo: dict[str, str] = {}
        self.counter = 0
        self.env: dict = {}
        self.n_shared = 0
        # Python objects the body uses more than once: encoded once per scope
        seen: set[int] = set()
        shared: set[int] = set()
        stack = [prog.body]
        while stack:
            n = stack.pop()
            for c in n.children():
                if id(c) in seen:
                    shared.add(id(c))
                else:
                    seen.add(id(c))
                    stack.append(c)
        self.shared = shared
        self.obj_memo: dict = {}
        self.fv = None
        if shared:
            from ..lang.binders import free_vars_table
            self.fv = free_vars_table(prog.body)

    def fresh(self, name: str, kind: str) -> str:
        """A new binder name that depends only on its kind and the traversal order (not on the
        source name), so alpha-equivalent programs encode to the same text."""
        prefix = {"index": "i", "acc": "a", "let": "t"}[kind]
        while True:
            self.counter += 1
            cand = f"{prefix}{self.counter}"
            if cand not in self.used:
                break
        self.used.add(cand)
        self.kinds[cand] = kind
        return cand

    def share(self, text: str) -> str:
        if len(text) <= SPILL_CHARS:
            return text
        ref = self.memo.get(text)
        if ref is None:
            ref = f"$t{len(self.memo)}"
            self.memo[text] = ref
            self.lets.append(f"(let {ref} {text})")
        return ref

    def bind_value(self, text: str) -> str:
        """A let-bound value: one global, referred to by every use."""
        if len(text) <= LET_SPILL_CHARS or text.startswith("$"):
            return text
        ref = f"$s{self.n_shared}"
        self.n_shared += 1
        self.lets.append(f"(let {ref} {text})")
        return ref

    def enc(self, e: Expr, env: dict | None = None) -> str:
        # depth is bounded by the caller's recursion limit (raised in encode_program); let
        # chains are walked in a loop and spilled terms keep forms short.
        key = None
        if id(e) in self.shared:
            env_ = self.env
            key = (id(e), tuple(env_.get(v) for v in sorted(self.fv[id(e)])))
            r = self.obj_memo.get(key)
            if r is not None:
                return r
        r = self.share(self._enc(e))
        if key is not None:
            self.obj_memo[key] = r
        return r

    def _bind(self, names_vals: list, body: Expr) -> str:
        env = self.env
        saved = [(n, env.get(n, _MISSING)) for n, _ in names_vals]
        for n, v in names_vals:
            env[n] = v
        try:
            return self.enc(body)
        finally:
            for n, old in reversed(saved):
                if old is _MISSING:
                    env.pop(n, None)
                else:
                    env[n] = old

    def _enc(self, e: Expr, env: dict | None = None) -> str:
        if isinstance(e, Num):
            return f"(Num {egg_float(e.value)})"
        if isinstance(e, Int):
            return f"(Int {int(e.value)})"
        if isinstance(e, BoolLit):
            return "(BTrue)" if e.value else "(BFalse)"
        if isinstance(e, Var):
            b = self.env.get(e.name)
            if b is not None:
                if b[0] == "share":
                    return b[1]
                if b[0] == "acc":
                    return f"(Acc {egg_string(b[1])} {egg_string(b[2])})"
                return f"(Var {egg_string(b[1])})"
            if e.name in self.params:
                return f"(Input {egg_string(e.name)})"
            if e.name in self.sizes:
                return f"(Dim {egg_string(e.name)})"
            raise EqsatError(f"unknown name {e.name!r} while encoding the program")
        if isinstance(e, Prim):
            args = [self.enc(a) for a in e.args]
            if e.op in (">", ">="):
                return f"({'Lt' if e.op == '>' else 'Le'} {args[1]} {args[0]})"
            ctor = PRIM_TO_CTOR.get(e.op)
            if ctor is None:
                raise EqsatError(f"operator {e.op!r} has no e-graph form")
            return f"({ctor} {' '.join(args)})"
        if isinstance(e, If):
            return f"(If {self.enc(e.cond)} {self.enc(e.then)} {self.enc(e.else_)})"
        if isinstance(e, Let):
            # sharing, not a Let e-node: the value is encoded once and every use refers to it
            env = self.env
            saved = []
            try:
                while isinstance(e, Let):
                    v = self.bind_value(self.enc(e.value))
                    saved.append((e.name, env.get(e.name, _MISSING)))
                    env[e.name] = ("share", v)
                    e = e.body
                    if id(e) in self.shared:
                        break
                return self.enc(e)
            finally:
                for n, old in reversed(saved):
                    if old is _MISSING:
                        env.pop(n, None)
                    else:
                        env[n] = old
        if isinstance(e, (Build, Sum)):
            n = self.enc(e.size)
            i = self.fresh(e.var, "index")
            b = self._bind([(e.var, ("index", i))], e.body)
            return f"({type(e).__name__} {egg_string(i)} {n} {b})"
        if isinstance(e, (IFold, Scan)):
            z = self.enc(e.init)
            n = self.enc(e.size)
            i = self.fresh(e.var, "index")
            a = self.fresh(e.acc, "acc")
            b = self._bind([(e.var, ("index", i)), (e.acc, ("acc", a, i))], e.body)
            return f"({type(e).__name__} {egg_string(a)} {egg_string(i)} {b} {z} {n})"
        if isinstance(e, Get):
            return f"(Get {self.enc(e.array)} {self.enc(e.index)})"
        if isinstance(e, Length):
            return f"(Len {self.enc(e.array)})"
        if isinstance(e, Pair):
            return f"(Pair {self.enc(e.fst)} {self.enc(e.snd)})"
        if isinstance(e, Fst):
            return f"(Fst {self.enc(e.pair)})"
        if isinstance(e, Snd):
            return f"(Snd {self.enc(e.pair)})"
        raise EqsatError(f"cannot encode {type(e).__name__}")


_MISSING = object()


def _size_names(t: Type) -> list[str]:
    from ..lang.types import size_names
    return size_names(t)


def size_term(s) -> str | None:
    if isinstance(s, str):
        return f"(Dim {egg_string(s)})"
    if isinstance(s, int):
        return f"(Int {s})"
    return None


def shape_facts(name: str, t: Type) -> list[str]:
    """Facts about input ``name``: its lengths at every array level are its declared sizes
    (``(union (Len (Input "x")) (Dim "n"))``; inner levels by a rule on ``(Len (Get ... k))``),
    and it is a real scalar or an array of reals (``real-term`` / ``real-array``)."""
    from ..lang.types import RealT
    facts, level, inner = [], 0, f"(Input {egg_string(name)})"
    pattern = inner
    while isinstance(t, ArrayT):
        st = size_term(t.size)
        if st is not None:
            if level == 0:
                facts.append(f"(union (Len {inner}) {st})")
            else:
                facts.append(f"(rule ((= e (Len {pattern}))) ((union e {st})) :ruleset analysis "
                             f":name \"shape-{name}-{level}\")")
        if isinstance(t.elem, RealT):
            if level == 0:
                facts.append(f"(real-array {inner})")
            else:
                facts.append(f"(rule ((= e {pattern})) ((real-array e)) :ruleset analysis "
                             f":name \"real-{name}-{level}\")")
        pattern = f"(Get {pattern} k{level})"
        t, level = t.elem, level + 1
    if isinstance(t, RealT) and level == 0:
        facts.append(f"(real-term {inner})")
    return facts


def encode_program(prog: Program, normalize: bool = True) -> Encoded:
    """Encode ``prog`` (elaborated: homogeneous operand types) as egglog text; with
    ``normalize`` (the default) its normal form (:func:`~eqsat_ad.lang.normalize.normalize_program`)."""
    import sys
    if normalize:
        from ..lang.normalize import normalize_program
        prog = normalize_program(prog)
    enc = _Encoder(prog)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 60000))
    try:
        root = enc._enc(prog.body)
    except RecursionError:
        raise EqsatError("program too deep to encode into the e-graph") from None
    finally:
        sys.setrecursionlimit(old)
    facts = []
    for p in prog.params:
        facts += shape_facts(p.name, p.type)
    return Encoded(enc.lets, root, facts, enc.sizes, set(enc.kinds), dict(enc.kinds))
