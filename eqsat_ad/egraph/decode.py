"""Extracted egglog terms -> Programs of the array language.

The inverse of :mod:`eqsat_ad.egraph.encode`: ``(Input "x")`` and ``(Dim "n")`` become names,
``(Acc "a" "i")`` becomes the accumulator name ``a``, ``(Lt a b)`` becomes ``(< a b)``.
Works on the ``TermDag`` the Rust extractor returns, iteratively (safe on deep terms), and
shares decoded sub-terms that the term DAG shares.
"""
from __future__ import annotations

from ..errors import EqsatError
from ..lang.ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Prim, Scan,
                        Snd, Sum, Var)
from .constructors import CTOR_TO_PRIM


def _lit(v):
    return v.value if hasattr(v, "value") else v


def decode_termdag(termdag, root: int) -> Expr:
    """Decode the term ``root`` of an egglog ``TermDag`` into an :class:`Expr`."""
    done: dict[int, object] = {}
    stack = [root]
    while stack:
        tid = stack[-1]
        if tid in done:
            stack.pop()
            continue
        t = termdag.get(tid)
        kind = type(t).__name__
        if kind == "TermLit":
            done[tid] = _lit(t.value)
            stack.pop()
            continue
        if kind != "TermApp":
            raise EqsatError(f"unexpected term in extraction result: {t}")
        missing = [a for a in t.args if a not in done]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        done[tid] = _build(t.name, [done[a] for a in t.args])
    out = done[root]
    if not isinstance(out, Expr):
        raise EqsatError(f"extraction returned a literal, not a term: {out!r}")
    return out


def _build(name: str, a: list) -> Expr:
    if name == "Num":
        return Num(float(a[0]))
    if name == "Int":
        return Int(int(a[0]))
    if name == "BTrue":
        return BoolLit(True)
    if name == "BFalse":
        return BoolLit(False)
    if name in ("Input", "Dim", "Var"):
        return Var(a[0])
    if name == "Acc":
        return Var(a[0])
    if name == "If":
        return If(a[0], a[1], a[2])
    if name == "Let":
        return Let(a[0], a[1], a[2])
    if name == "Build":
        return Build(a[1], a[0], a[2])
    if name == "Sum":
        return Sum(a[1], a[0], a[2])
    if name == "IFold":
        return IFold(a[0], a[1], a[2], a[3], a[4])
    if name == "Scan":
        return Scan(a[0], a[1], a[2], a[3], a[4])
    if name == "Get":
        return Get(a[0], a[1])
    if name == "Len":
        return Length(a[0])
    if name == "Pair":
        return Pair(a[0], a[1])
    if name == "Fst":
        return Fst(a[0])
    if name == "Snd":
        return Snd(a[0])
    if name == "Subst":
        raise EqsatError("extraction returned an unfinished substitution (Subst)")
    op = CTOR_TO_PRIM.get(name)
    if op is not None:
        return Prim(op, tuple(a))
    raise EqsatError(f"unknown constructor {name!r} in extraction result (a user rule file "
                     "may have declared constructors the decoder does not know)")


_INDEX_NAMES = ("i", "j", "k", "l", "p", "q", "r", "s", "t", "u")


def readable_names(prog, share: bool = True):
    """The extracted program as it is returned: with ``share`` (the default) every sub-term
    it computes more than once -- shared in the extracted DAG, or equal up to binder names
    (the e-graph keeps those apart) -- bound once by a ``let``, and loop-invariant loops moved
    out of loops (:func:`eqsat_ad.lang.normalize.share`: linear in the DAG, so an extracted
    DAG never becomes a tree); then binders renamed by nesting level (``i, j, k, ...`` for
    indices, ``acc``/``acc1``... for accumulators, ``t<level>`` for lets), avoiding parameter
    and size names.  Names depend only on the level, so sub-terms that are equal up to binder
    names become structurally equal, and the NumPy backend, which computes structurally equal
    sub-terms once, shares them.
    """
    from ..lang.ast import FOLDS, Let, Program
    from ..lang.binders import _rewrite_names
    from ..lang.types import size_names
    avoid = set()
    for p in prog.params:
        avoid.add(p.name)
        avoid.update(size_names(p.type))
    def ok(name: str) -> str:
        while name in avoid:
            name += "_"
        return name

    def index_name(d: int) -> str:
        return ok(_INDEX_NAMES[d] if d < len(_INDEX_NAMES) else f"i{d}")

    if share:
        from ..lang.ast import Build, Sum
        from ..lang.normalize import share as share_lets
        body = share_lets(prog.body, avoid)
        # names by loop depth (indices, accumulators) and let depth (lets); the shared
        # program is linear in size, each binder node occurs once
        names: dict[int, tuple[str, ...]] = {}
        stack = [(body, 0, 0)]
        while stack:
            n, loops, lets = stack.pop()
            if isinstance(n, Let):
                names.setdefault(id(n), (ok(f"t{lets}"),))
                stack.append((n.value, loops, lets + 1))      # no name reused inside a value
                stack.append((n.body, loops, lets + 1))
            elif isinstance(n, (Build, Sum)):
                names.setdefault(id(n), (index_name(loops),))
                stack.append((n.size, loops, lets))
                stack.append((n.body, loops + 1, lets))
            elif isinstance(n, FOLDS):
                names.setdefault(id(n), (ok("acc" if loops == 0 else f"acc{loops}"), index_name(loops)))
                stack.append((n.init, loops, lets))
                stack.append((n.size, loops, lets))
                stack.append((n.body, loops + 1, lets))
            else:
                stack.extend((c, loops, lets) for c in n.children())
        return Program(prog.params, _rewrite_names(body, {}, lambda n, sigma, level: names[id(n)], None))

    def pick(n, sigma, level):
        if isinstance(n, FOLDS):
            return (ok("acc" if level == 0 else f"acc{level}"),
                    ok(_INDEX_NAMES[level + 1] if level + 1 < len(_INDEX_NAMES) else f"i{level + 1}"))
        if isinstance(n, Let):
            return (ok(f"t{level}"),)
        return (index_name(level),)

    return Program(prog.params, _rewrite_names(prog.body, {}, pick, None))
