"""Library macros: named functions the parser expands into core forms.

A library (``eqsat_ad/frontend/library.py``) registers functions such as ``dot``::

    from eqsat_ad.lang import macros
    from eqsat_ad.lang.ast import Sum, Length, Get, Prim, Var

    def dot(u, w):
        i = macros.fresh_name("i", u, w)      # a name not free in the arguments: no capture
        return Sum(Length(u), i, Prim("*", (Get(u, Var(i)), Get(w, Var(i)))))

    macros.register("dot", dot, arity=2, doc="(dot u w): sum of u[i]*w[i]")

When the parser meets ``(dot a b)`` it parses the arguments, calls ``dot(a, b)`` and puts
the returned expression in place, so printing shows the expanded core forms (and printing
then parsing gives the same expression back).  An argument written
``(lambda (a b) e)`` is passed as a :class:`Lambda`; ``lam(x, y)`` substitutes the
arguments into its body without capture.

>>> register("twice_", lambda a: Prim("+", (a, a)), arity=1, doc="(twice_ a): a + a")
>>> lookup("twice_").arity
1
>>> unregister("twice_")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import EqsatError
from .ast import Expr, Prim, Var  # noqa: F401  (Prim used in the doctest)

__all__ = ["Lambda", "Macro", "register", "unregister", "lookup", "registered", "fresh_name"]


@dataclass(frozen=True)
class Lambda:
    """A ``(lambda (a ...) body)`` argument of a library function.

    >>> f = Lambda(("a",), Prim("*", (Var("a"), Var("a"))))
    >>> f(Var("x"))
    Prim(op='*', args=(Var(name='x'), Var(name='x')))
    """
    params: tuple[str, ...]
    body: Expr

    def __call__(self, *args: Expr) -> Expr:
        """The body with the parameters replaced by ``args`` (capture-avoiding)."""
        if len(args) != len(self.params):
            raise EqsatError(f"lambda with {len(self.params)} parameter(s) applied to "
                             f"{len(args)} argument(s)")
        from .binders import subst_all
        return subst_all(self.body, dict(zip(self.params, args)))


@dataclass(frozen=True)
class Macro:
    """A registered library function: ``fn(*args) -> Expr``; ``arity`` is an int, a tuple of
    allowed counts, or None (any number)."""
    name: str
    fn: Callable[..., Expr]
    arity: "int | tuple[int, ...] | None"
    doc: str

    def accepts(self, n: int) -> bool:
        if self.arity is None:
            return True
        if isinstance(self.arity, int):
            return n == self.arity
        return n in self.arity

    def arity_text(self) -> str:
        if self.arity is None:
            return "any number of arguments"
        counts = (self.arity,) if isinstance(self.arity, int) else tuple(self.arity)
        txt = " or ".join(str(c) for c in counts)
        return f"{txt} argument{'s' if counts != (1,) else ''}"


_REGISTRY: dict[str, Macro] = {}


def register(name: str, fn: Callable[..., Expr], arity: "int | tuple[int, ...] | None" = None,
             doc: str = "") -> None:
    """Register (or replace) the library function ``name``.

    >>> register("sq_", lambda a: Prim("*", (a, a)), 1, "(sq_ a): a*a"); unregister("sq_")
    """
    from .syntax import CORE_FORMS
    if name in CORE_FORMS:
        raise EqsatError(f"'{name}' is a core form and cannot be a library function")
    _REGISTRY[name] = Macro(name, fn, arity, doc)


def unregister(name: str) -> None:
    """Remove a library function (no error if it is not registered)."""
    _REGISTRY.pop(name, None)


def lookup(name: str) -> Macro | None:
    """The registered library function ``name``, or None.

    >>> lookup("no-such-function") is None
    True
    """
    return _REGISTRY.get(name)


def registered() -> list[Macro]:
    """All registered library functions, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def fresh_name(base: str, *exprs: "Expr | Lambda") -> str:
    """A binder name based on ``base`` that is free in none of ``exprs`` (use it for the
    loop variables a macro introduces around its arguments).

    >>> fresh_name("i", Var("i"), Var("j"))
    'i_1'
    """
    from .binders import free_vars, fresh
    avoid: set[str] = set()
    for e in exprs:
        if isinstance(e, Lambda):
            avoid |= free_vars(e.body) - set(e.params)
        else:
            avoid |= free_vars(e)
    return fresh(base, avoid)
