"""Binder utilities: free variables, capture-avoiding substitution, fresh names, renaming.

The language has five binding forms: ``let`` (binds its name in the body), ``build`` and
``sum`` (bind the index in the body) and ``ifold``/``scan`` (bind the accumulator and the
index in the body).  Everything here is iterative (explicit stacks), so it works on expressions
thousands of levels deep.

>>> from eqsat_ad.lang.ast import Build, Var, Prim, Length
>>> e = Build(Length(Var("x")), "i", Prim("+", (Var("i"), Var("k"))))
>>> sorted(free_vars(e))
['k', 'x']
>>> subst(e, "k", Var("i"))            # the binder i is renamed, the free i is not captured
Build(size=Length(array=Var(name='x')), var='i_1', body=Prim(op='+', args=(Var(name='i_1'), Var(name='i'))))
"""
from __future__ import annotations

import re
import sys
from dataclasses import replace
from typing import Callable, Iterable

from ..errors import EqsatError
from .ast import FOLDS, Build, Expr, Let, Program, Sum, Var, scoped_children

__all__ = ["free_vars", "free_vars_table", "subst", "subst_all", "fresh", "rename_unique",
           "alpha_eq", "canonical_names", "bound_names", "all_names", "struct_eq",
           "with_binders", "call_deep", "cache_hashes"]

_BINDERS = (Let, Build, Sum) + FOLDS


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def call_deep(fn: Callable, *args, what: str = "expression", **kwargs):
    """Run a recursive helper ``fn`` with a raised recursion limit (for deep terms).

    A :class:`RecursionError` becomes ``EqsatError("expression too deep ...")``.
    Python 3.11 runs Python-to-Python calls without using the C stack, so a high limit
    is safe for plain recursive functions.

    >>> call_deep(lambda n: n + 1, 1)
    2
    """
    old = sys.getrecursionlimit()
    if old < 60000:
        sys.setrecursionlimit(60000)
    try:
        return fn(*args, **kwargs)
    except RecursionError:
        raise EqsatError(f"{what} too deep to process (nesting beyond the recursion limit)") from None
    finally:
        if old < 60000:
            sys.setrecursionlimit(old)


def with_binders(e: Expr, names: tuple[str, ...]) -> Expr:
    """The binder node ``e`` with its bound names replaced (same order as ``e.binds()``).

    >>> with_binders(Let("x", Var("a"), Var("x")), ("y",)).name
    'y'
    """
    if isinstance(e, Let):
        return e if e.name == names[0] else replace(e, name=names[0])
    if isinstance(e, (Build, Sum)):
        return e if e.var == names[0] else replace(e, var=names[0])
    if isinstance(e, FOLDS):
        if (e.acc, e.var) == tuple(names):
            return e
        return replace(e, acc=names[0], var=names[1])
    if names:
        raise TypeError(f"{type(e).__name__} binds no names")
    return e


def _body_of(e: Expr) -> Expr:
    """The child in which a binder node's names are bound (``body`` for every binder)."""
    return e.body  # type: ignore[attr-defined]


def cache_hashes(e: Expr) -> Expr:
    """Compute and cache the hash of every node bottom-up, so that ``hash(e)`` and ``==``
    on a deep term built by hand do not recurse through thousands of levels.  Returns ``e``.

    >>> cache_hashes(Var("x")) == Var("x")
    True
    """
    for n in _postorder(e):
        hash(n)
    return e


def _postorder(e: Expr) -> list[Expr]:
    """Distinct nodes (by identity) of ``e`` in post-order (children before parents)."""
    out: list[Expr] = []
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(e, False)]
    while stack:
        n, done = stack.pop()
        if done:
            out.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        for c in n.children():
            if id(c) not in seen:
                stack.append((c, False))
    return out


# --------------------------------------------------------------------------------------
# free variables
# --------------------------------------------------------------------------------------
def free_vars_table(e: Expr) -> dict[int, frozenset[str]]:
    """Free variables of every sub-expression of ``e``, keyed by ``id(node)``.

    Useful when many free-variable questions are asked about one term (keep ``e`` alive
    while using the table).

    >>> e = Let("x", Var("a"), Var("x"))
    >>> sorted(free_vars_table(e)[id(e)])
    ['a']
    """
    table: dict[int, frozenset[str]] = {}
    empty: frozenset[str] = frozenset()
    for n in _postorder(e):
        if isinstance(n, Var):
            table[id(n)] = frozenset((n.name,))
            continue
        acc: frozenset[str] | set[str] = empty
        first = True
        for c, bound in scoped_children(n):
            fc = table[id(c)]
            if bound and not fc.isdisjoint(bound):
                fc = fc.difference(bound)
            if not fc:
                continue
            if first:
                acc, first = fc, False
            else:
                if isinstance(acc, frozenset):
                    if fc <= acc:
                        continue
                    acc = set(acc)
                acc |= fc
        table[id(n)] = acc if isinstance(acc, frozenset) else frozenset(acc)
    return table


def free_vars(e: Expr) -> frozenset[str]:
    """Names occurring free in ``e``.

    >>> from eqsat_ad.lang.ast import Sum, Get
    >>> sorted(free_vars(Sum(Var("n"), "i", Get(Var("x"), Var("i")))))
    ['n', 'x']
    """
    return free_vars_table(e)[id(e)]


def bound_names(e: Expr) -> frozenset[str]:
    """Every name bound by some binder inside ``e``.

    >>> sorted(bound_names(Let("x", Var("a"), Var("x"))))
    ['x']
    """
    out: set[str] = set()
    for n in _postorder(e):
        out.update(n.binds())
    return frozenset(out)


def all_names(e: Expr) -> frozenset[str]:
    """Every variable name occurring in ``e``, free or bound (handy as an ``avoid`` set).

    >>> sorted(all_names(Let("x", Var("a"), Var("x"))))
    ['a', 'x']
    """
    out: set[str] = set()
    for n in _postorder(e):
        out.update(n.binds())
        if isinstance(n, Var):
            out.add(n.name)
    return frozenset(out)


# --------------------------------------------------------------------------------------
# fresh names
# --------------------------------------------------------------------------------------
_SUFFIX = re.compile(r"^(.*?)_(\d+)$")


def fresh(base: str, avoid: Iterable[str]) -> str:
    """A name like ``base`` that is not in ``avoid``: ``base`` itself when free, otherwise
    ``stem_1``, ``stem_2``, ... (a trailing ``_<digits>`` of ``base`` is dropped first).

    >>> fresh("i", {"x"}), fresh("i", {"i", "i_1"}), fresh("i_4", {"i_4"})
    ('i', 'i_2', 'i_1')
    """
    avoid = avoid if isinstance(avoid, (set, frozenset, dict)) else set(avoid)
    if base and base not in avoid:
        return base
    m = _SUFFIX.match(base)
    stem = m.group(1) if m and m.group(1) else (base or "v")
    k = 1
    while f"{stem}_{k}" in avoid:
        k += 1
    return f"{stem}_{k}"


# --------------------------------------------------------------------------------------
# the renaming/substitution engine
# --------------------------------------------------------------------------------------
def _rewrite_names(e: Expr, sigma: dict[str, Expr],
                   pick: Callable[[Expr, dict[str, Expr], int], tuple[str, ...]],
                   fv: dict[int, frozenset[str]] | None) -> Expr:
    """Simultaneous substitution ``sigma`` over ``e``, renaming binders with ``pick``.

    ``pick(node, sigma, level)`` returns the new names for ``node.binds()``; ``level`` is
    the number of binders enclosing ``node``.  When ``fv`` (a :func:`free_vars_table` of
    ``e``) is given, sub-terms with no free variable in ``dom(sigma)`` are reused as is.
    Identity mappings are represented by absence from ``sigma``.
    """
    sigma = {k: v for k, v in sigma.items() if not (isinstance(v, Var) and v.name == k)}
    out: list[Expr] = []
    level = 0
    # frames: (0, node) visit | (1, node, new_names) rebuild | (2, name, new) bind | (3, name, old) unbind
    stack: list[tuple] = [(0, e)]
    MISSING = _MISSING
    while stack:
        fr = stack.pop()
        tag = fr[0]
        if tag == 0:
            n = fr[1]
            if isinstance(n, Var):
                out.append(sigma.get(n.name, n))
                continue
            if fv is not None and fv[id(n)].isdisjoint(sigma):
                out.append(n)
                continue
            kids = list(scoped_children(n))
            if not kids:
                out.append(n)
                continue
            new_names = pick(n, sigma, level) if isinstance(n, _BINDERS) else ()
            stack.append((1, n, new_names, len(kids)))
            rename = dict(zip(n.binds(), new_names))
            for c, bound in reversed(kids):
                for b in bound:
                    stack.append((3, b, sigma.get(b, MISSING)))
                stack.append((0, c))
                for b in reversed(bound):
                    stack.append((2, b, rename[b]))
        elif tag == 1:
            _, n, new_names, k = fr
            new_kids = out[len(out) - k:]
            del out[len(out) - k:]
            old_kids = n.children()
            if all(a is b for a, b in zip(new_kids, old_kids)):
                r = n
            else:
                r = n.with_children(new_kids)
            if new_names:
                r = with_binders(r, new_names)
            hash(r)  # fill the hash cache bottom-up (hashing a deep term lazily would recurse)
            out.append(r)
        elif tag == 2:
            _, b, nb = fr
            level += 1
            if nb == b:
                sigma.pop(b, None)
            else:
                sigma[b] = _var(nb)
        else:
            _, b, old = fr
            level -= 1
            if old is MISSING:
                sigma.pop(b, None)
            else:
                sigma[b] = old
    assert len(out) == 1
    return out[0]


_MISSING = object()


def _var(name: str) -> Var:
    v = Var(name)
    hash(v)
    return v


def subst_all(e: Expr, mapping: dict[str, Expr]) -> Expr:
    """Simultaneous capture-avoiding substitution of every ``name -> value`` in ``mapping``.

    >>> from eqsat_ad.lang.ast import Prim
    >>> subst_all(Prim("+", (Var("a"), Var("b"))), {"a": Var("b"), "b": Var("a")})
    Prim(op='+', args=(Var(name='b'), Var(name='a')))
    """
    if not mapping:
        return e
    fv = free_vars_table(e)
    if fv[id(e)].isdisjoint(mapping):
        return e
    value_fv = {k: free_vars(v) for k, v in mapping.items()}

    def pick(n: Expr, sigma: dict[str, Expr], level: int) -> tuple[str, ...]:
        body_fv = fv[id(_body_of(n))]
        binds = n.binds()
        live = [k for k in sigma if k in body_fv and k not in binds]
        if not live:
            return binds
        range_fv: set[str] = set()
        for k in live:
            v = sigma[k]
            range_fv |= value_fv[k] if k in value_fv and v is mapping.get(k) else free_vars(v)
        names = []
        taken = set(range_fv) | set(body_fv) | set(sigma)
        for b in binds:
            if b in range_fv:
                nb = fresh(b, taken)
                taken.add(nb)
                names.append(nb)
            else:
                names.append(b)
        return tuple(names)

    return _rewrite_names(e, dict(mapping), pick, fv)


def subst(e: Expr, name: str, value: Expr) -> Expr:
    """``e[name := value]``, renaming binders of ``e`` that would capture free variables of
    ``value``.

    >>> from eqsat_ad.lang.ast import Sum, Get
    >>> subst(Sum(Var("n"), "i", Get(Var("x"), Var("i"))), "x", Var("y"))
    Sum(size=Var(name='n'), var='i', body=Get(array=Var(name='y'), index=Var(name='i')))
    """
    return subst_all(e, {name: value})


def rename_unique(p: "Program | Expr", avoid: Iterable[str] = ()) -> "Program | Expr":
    """Give every binder a distinct name that differs from every free name, parameter and
    size name (and from ``avoid``).  The first binder called ``i`` keeps ``i``; later ones
    become ``i_1``, ``i_2``, ...  Returns the same kind of object it was given.

    >>> from eqsat_ad.lang.ast import Sum, Prim
    >>> s = Sum(Var("n"), "i", Var("i"))
    >>> rename_unique(Prim("+", (s, s)))
    Prim(op='+', args=(Sum(size=Var(name='n'), var='i', body=Var(name='i')), Sum(size=Var(name='n'), var='i_1', body=Var(name='i_1'))))
    """
    from .types import size_names
    if isinstance(p, Program):
        outer = set(avoid)
        for prm in p.params:
            outer.add(prm.name)
            outer.update(size_names(prm.type))
        return Program(p.params, rename_unique(p.body, outer))  # type: ignore[arg-type]
    e = p
    taken = set(avoid) | set(free_vars(e))

    def pick(n: Expr, sigma: dict[str, Expr], level: int) -> tuple[str, ...]:
        names = []
        for b in n.binds():
            nb = fresh(b, taken)
            taken.add(nb)
            names.append(nb)
        return tuple(names)

    return _rewrite_names(e, {}, pick, None)


_CANON = re.compile(r"^(v+)\d+$")


def canonical_names(e: Expr) -> Expr:
    """Rename binders deterministically by nesting level (``v0``, ``v1``, ...; a longer
    prefix ``vv0`` ... if free names already look like that), so that alpha-equivalent
    terms become structurally equal.

    >>> from eqsat_ad.lang.ast import Sum
    >>> canonical_names(Sum(Var("n"), "i", Var("i"))) == canonical_names(Sum(Var("n"), "j", Var("j")))
    True
    """
    fvs = free_vars(e)
    longest = max((len(m.group(1)) for m in map(_CANON.match, fvs) if m), default=0)
    prefix = "v" * (longest + 1)

    def pick(n: Expr, sigma: dict[str, Expr], level: int) -> tuple[str, ...]:
        return tuple(f"{prefix}{level + k}" for k in range(len(n.binds())))

    return _rewrite_names(e, {}, pick, None)


def struct_eq(a: Expr, b: Expr) -> bool:
    """Structural equality without recursion (``a == b`` recurses on deep terms).

    >>> struct_eq(Var("x"), Var("x")), struct_eq(Var("x"), Var("y"))
    (True, False)
    """
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if type(x) is not type(y):
            return False
        hx, hy = getattr(x, "_hash", None), getattr(y, "_hash", None)
        if hx is not None and hy is not None and hx != hy:
            return False
        kx, ky = x.children(), y.children()
        if len(kx) != len(ky):
            return False
        # compare the non-expression fields (names, literals, operators)
        for f in x.__dataclass_fields__:  # type: ignore[attr-defined]
            vx, vy = getattr(x, f), getattr(y, f)
            if isinstance(vx, Expr):
                continue
            if isinstance(vx, tuple):
                vx = tuple(v for v in vx if not isinstance(v, Expr))
                vy = tuple(v for v in vy if not isinstance(v, Expr))
            if vx != vy:
                return False
        stack.extend(zip(kx, ky))
    return True


def alpha_eq(a: Expr, b: Expr) -> bool:
    """Equal up to renaming of bound variables.

    >>> from eqsat_ad.lang.ast import Build
    >>> alpha_eq(Build(Var("n"), "i", Var("i")), Build(Var("n"), "j", Var("j")))
    True
    >>> alpha_eq(Build(Var("n"), "i", Var("k")), Build(Var("n"), "j", Var("j")))
    False
    """
    if a is b:
        return True
    if free_vars(a) != free_vars(b):
        return False
    return struct_eq(canonical_names(a), canonical_names(b))
