"""Expression nodes of the array language (immutable, hashable, structurally compared).

The forms mirror the program text (see ``docs/language.md``)::

    Num(1.5)  Int(3)  BoolLit(True)  Var("x")
    Prim("+", (a, b))        # the operators of primitives.py: + - * / pow exp max ... = < and ...
    If(c, a, b)  Let("x", value, body)
    Build(size, "i", body)   # (build N (lambda (i) body))
    Sum(size, "i", body)     # (sum N (lambda (i) body))
    IFold("acc", "i", body, init, size)   # (ifold (lambda (acc i) body) init N)
    Scan("acc", "i", body, init, size)    # (scan (lambda (acc i) body) init N): every state
    Get(array, index)  Length(array)  Pair(a, b)  Fst(p)  Snd(p)

A whole program is a :class:`Program`: typed parameters and a body.

>>> x, i = Var("x"), Var("i")
>>> e = Sum(Length(x), "i", Prim("*", (Get(x, i), Get(x, i))))
>>> e == Sum(Length(x), "i", Prim("*", (Get(x, i), Get(x, i))))
True
>>> e.children()[0]
Length(array=Var(name='x'))
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Iterator

from .types import Type

class Expr:
    """Base class of expression nodes.

    Subclasses are frozen dataclasses; equality is structural and the hash is cached, so
    expressions can be used as dictionary keys (memo tables, hash-consing) cheaply.
    """

    __slots__ = ("_hash",)

    def _key(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(self) is not type(other):
            return NotImplemented if not isinstance(other, Expr) else False
        if hash(self) != hash(other):
            return False
        return self._key() == other._key()  # type: ignore[union-attr]

    def __ne__(self, other: object) -> bool:
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self) -> int:
        try:
            return self._hash  # type: ignore[attr-defined]
        except AttributeError:
            h = hash((type(self).__name__,) + self._key())
            object.__setattr__(self, "_hash", h)
            return h

    # -- generic traversal -------------------------------------------------------------
    def children(self) -> tuple["Expr", ...]:
        """Sub-expressions, in field order (binder names are not children)."""
        out = []
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Expr):
                out.append(v)
            elif isinstance(v, tuple):
                out.extend(a for a in v if isinstance(a, Expr))
        return tuple(out)

    def with_children(self, new: "tuple[Expr, ...] | list[Expr]") -> "Expr":
        """The same node with its sub-expressions replaced (in :meth:`children` order)."""
        it = iter(new)
        kw = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Expr):
                kw[f.name] = next(it)
            elif isinstance(v, tuple):
                kw[f.name] = tuple(next(it) if isinstance(a, Expr) else a for a in v)
            else:
                kw[f.name] = v
        return type(self)(**kw)

    def binds(self) -> tuple[str, ...]:
        """Names this node binds (in its body; see :func:`scoped_children`)."""
        return ()

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))  # type: ignore[arg-type]
        return f"{type(self).__name__}({args})"

    # -- pickle and copy: nodes are immutable values ----------------------------------------
    def __reduce__(self):
        # rebuilt from the fields (the cached hash is per process: string hashes differ)
        return (type(self), self._key())

    def __copy__(self) -> "Expr":
        return self

    def __deepcopy__(self, memo) -> "Expr":
        return self

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """IPython shows an expression as program text."""
        from .syntax import show_expr
        printer.text(show_expr(self))


def node(cls):
    """Class decorator: a frozen dataclass node with the cached structural hash of :class:`Expr`."""
    cls = dataclass(frozen=True, eq=False, repr=False)(cls)
    return cls


@node
class Num(Expr):
    """A real literal."""
    value: float


@node
class Int(Expr):
    """An integer literal (an index or size; promoted to real where a real is expected)."""
    value: int


@node
class BoolLit(Expr):
    value: bool


@node
class Var(Expr):
    name: str


@node
class Prim(Expr):
    op: str
    args: tuple


@node
class If(Expr):
    cond: Expr
    then: Expr
    else_: Expr


@node
class Let(Expr):
    name: str
    value: Expr
    body: Expr

    def binds(self):
        return (self.name,)


@node
class Build(Expr):
    size: Expr
    var: str
    body: Expr

    def binds(self):
        return (self.var,)


@node
class Sum(Expr):
    size: Expr
    var: str
    body: Expr

    def binds(self):
        return (self.var,)


@node
class IFold(Expr):
    acc: str
    var: str
    body: Expr
    init: Expr
    size: Expr

    def binds(self):
        return (self.acc, self.var)


@node
class Scan(Expr):
    """``(scan (lambda (acc i) body) init N)``: the ``N + 1`` states of the ``ifold`` with
    the same parts, ``init`` first -- element ``k`` is the accumulator before step ``k``
    and element ``N`` the fold's result.  A gradient through a fold reads the states
    (``eqsat_ad/ad/transpose.py``)."""
    acc: str
    var: str
    body: Expr
    init: Expr
    size: Expr

    def binds(self):
        return (self.acc, self.var)


#: the loops with an accumulator: the same binders and children, in the same order
FOLDS = (IFold, Scan)


@node
class Get(Expr):
    array: Expr
    index: Expr


@node
class Length(Expr):
    array: Expr


@node
class Pair(Expr):
    fst: Expr
    snd: Expr


@node
class Fst(Expr):
    pair: Expr


@node
class Snd(Expr):
    pair: Expr


def scoped_children(e: Expr) -> Iterator[tuple[Expr, tuple[str, ...]]]:
    """Each child with the names bound *for that child* by ``e``.

    >>> [(type(c).__name__, b) for c, b in scoped_children(Let("x", Num(1.0), Var("x")))]
    [('Num', ()), ('Var', ('x',))]
    """
    if isinstance(e, Let):
        yield e.value, ()
        yield e.body, (e.name,)
    elif isinstance(e, (Build, Sum)):
        yield e.size, ()
        yield e.body, (e.var,)
    elif isinstance(e, FOLDS):
        yield e.body, (e.acc, e.var)
        yield e.init, ()
        yield e.size, ()
    else:
        for c in e.children():
            yield c, ()


@dataclass(frozen=True)
class Param:
    """A program parameter ``(name type)``."""
    name: str
    type: Type


#: ``repr(program)`` shows at most this many characters of the body
_REPR_LIMIT = 300


def _show_type(t) -> str:
    from .types import show_type
    return show_type(t)


@dataclass(frozen=True, repr=False)
class Program:
    """A whole program: ``(fun ((x (vec n)) ...) body)``.

    Size names that appear in parameter types (``n`` above) are in scope in the body as
    variables of type ``size``; their values come from the shapes of the inputs.
    """
    params: tuple[Param, ...]
    body: Expr

    # -- display: program text, not a dataclass dump ----------------------------------------
    def __repr__(self) -> str:
        from .syntax import show_flat
        text = show_flat(self.body, limit=_REPR_LIMIT)
        params = " ".join(f"({p.name} {_show_type(p.type)})" for p in self.params)
        return f"<Program (fun ({params}) {text})>"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """IPython and Jupyter show the program text, indented."""
        printer.text(str(self))

    def _repr_html_(self) -> str:
        import html
        return f"<pre class='eqsat-ad-program'>{html.escape(str(self))}</pre>"

    # pickle and copy: immutable, so a copy is the program itself (pickle rebuilds the fields)
    def __copy__(self) -> "Program":
        return self

    def __deepcopy__(self, memo) -> "Program":
        return self

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __str__(self) -> str:
        from .syntax import show_program
        return show_program(self)


def map_expr(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """Rebuild ``e`` bottom-up, applying ``f`` to every node after its children (iteratively
    on the children list, so it is cheap to call; recursion depth = expression depth)."""
    kids = e.children()
    if kids:
        new = tuple(map_expr(c, f) for c in kids)
        if any(a is not b for a, b in zip(new, kids)):
            e = e.with_children(new)
    return f(e)


def iter_nodes(e: Expr) -> Iterator[Expr]:
    """Every node of ``e`` (pre-order, iterative: safe on very deep expressions)."""
    stack = [e]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children()))


def depth(e: Expr) -> int:
    """Nesting depth of an expression (iterative)."""
    best, stack = 0, [(e, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in n.children())
    return best


# Primitive operators: declared once, in primitives.py (imported last: its derivative rules
# build nodes of this module).
from .primitives import (BINARY_ARITH, CASTS, COMPARISONS, LOGIC, PRIM_ARITY,  # noqa: E402,F401
                         UNARY_REAL)
