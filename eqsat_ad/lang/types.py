"""Types of the array language.

``real``, ``index``, ``size``, ``bool``, arrays with a size (``(vec n)`` is an array of reals,
``(mat m n)`` an array of ``(vec n)``), and pairs.  Sizes in types are a name (``"n"``), an
integer, or ``None`` when the checker cannot name it (e.g. ``(build (+ n 1) ...)``).

>>> vec("n")
ArrayT(elem=RealT(), size='n')
>>> show_type(mat("m", 3))
'(mat m 3)'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

SizeLike = Union[str, int, None]


class Type:
    """Base class of types (immutable, hashable)."""

    def __str__(self) -> str:  # pragma: no cover - trivial
        return show_type(self)


@dataclass(frozen=True)
class RealT(Type):
    pass


@dataclass(frozen=True)
class IndexT(Type):
    pass


@dataclass(frozen=True)
class SizeT(Type):
    pass


@dataclass(frozen=True)
class BoolT(Type):
    pass


@dataclass(frozen=True)
class ArrayT(Type):
    elem: Type
    size: SizeLike


@dataclass(frozen=True)
class PairT(Type):
    fst: Type
    snd: Type


REAL, INDEX, SIZE, BOOL = RealT(), IndexT(), SizeT(), BoolT()
NUMERIC = (REAL, INDEX, SIZE)


def vec(n: SizeLike) -> ArrayT:
    """``(vec n)``: an array of ``n`` reals."""
    return ArrayT(REAL, n)


def mat(m: SizeLike, n: SizeLike) -> ArrayT:
    """``(mat m n)``: ``m`` rows of ``(vec n)``."""
    return ArrayT(ArrayT(REAL, n), m)


def show_size(s: SizeLike) -> str:
    return "?" if s is None else str(s)


def show_type(t: Type) -> str:
    """Print a type in program-text syntax."""
    if isinstance(t, RealT):
        return "real"
    if isinstance(t, IndexT):
        return "index"
    if isinstance(t, SizeT):
        return "size"
    if isinstance(t, BoolT):
        return "bool"
    if isinstance(t, PairT):
        return f"(pair {show_type(t.fst)} {show_type(t.snd)})"
    if isinstance(t, ArrayT):
        if t.elem == REAL:
            return f"(vec {show_size(t.size)})"
        if isinstance(t.elem, ArrayT) and t.elem.elem == REAL:
            return f"(mat {show_size(t.size)} {show_size(t.elem.size)})"
        return f"(array {show_type(t.elem)} {show_size(t.size)})"
    raise TypeError(f"not a type: {t!r}")


def size_names(t: Type) -> list[str]:
    """Size names mentioned in a type, outermost first (``(mat m n)`` -> ``['m', 'n']``)."""
    out: list[str] = []
    while True:
        if isinstance(t, ArrayT):
            if isinstance(t.size, str) and t.size not in out:
                out.append(t.size)
            t = t.elem
        elif isinstance(t, PairT):
            for n in size_names(t.fst) + size_names(t.snd):
                if n not in out:
                    out.append(n)
            return out
        else:
            return out


def array_rank(t: Type) -> int:
    """Number of array levels of a type whose leaves are scalars (``(mat m n)`` -> 2)."""
    r = 0
    while isinstance(t, ArrayT):
        r, t = r + 1, t.elem
    return r


def array_sizes(t: Type) -> list:
    """The size of each array level, outermost first (``(mat m n)`` -> ``['m', 'n']``; a
    size is a name, an int, or None where unknown; ``[]`` for a scalar)."""
    out = []
    while isinstance(t, ArrayT):
        out.append(t.size)
        t = t.elem
    return out


def scalar_leaf(t: Type) -> Type:
    """The element type under all array levels (``(mat m n)`` -> ``real``)."""
    while isinstance(t, ArrayT):
        t = t.elem
    return t
