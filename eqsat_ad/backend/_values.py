"""Compile-time values of the NumPy backend's code generator: blocks of generated code,
values (``V``: Python code + index axes + rank + kind), pairs, index variables, and small
helpers shared by :mod:`._codegen` and :mod:`._folds`.
"""
from __future__ import annotations

import builtins
import keyword
import math
import re

from ..lang.ast import Expr, Num, Prim


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
    __slots__ = ("code", "S", "rank", "dt", "dims", "block", "skey", "const", "ro", "ub", "ew")

    def __init__(self, code, S, rank, dt, dims, block, skey=None, const=None, ro=False, ub=None):
        self.code, self.S, self.rank, self.dt = code, S, rank, dt
        self.dims = dims if dims is not None else (None,) * rank
        self.block, self.skey, self.const, self.ro = block, skey, const, ro
        self.ub = ub    # a loop index: known to be in 0 <= v < (size with this key)
        # How to compute this (fresh) array again in another axis order: (make, operands,
        # shape) with make(operand codes, layout) -> code; operands are rank-0 values
        # broadcast against this one; shape: the extents' code per position (or None).
        # A build that would transpose the result recomputes it in the new order instead,
        # so results come back C-ordered (see _codegen.relayout).
        self.ew = None

    @property
    def p(self) -> int:
        return max(self.S) if self.S else 0


class PairV:
    """A pair: kept apart at compile time (arrays of pairs are pairs of arrays)."""
    __slots__ = ("fst", "snd")

    def __init__(self, fst, snd):
        self.fst, self.snd = fst, snd


class IdxV:
    """The index variable of a ``build``/``sum`` at depth ``d`` (materialised lazily): position
    ``p = 0 .. ext - 1`` along the axis of depth ``d`` has the value ``p + off`` (``off`` None:
    0; a scalar integer value otherwise -- an index shifted by a ``let``, ``(let ((t (- i 1)))
    ..)``, or the index restricted to the sub-range where a range guard holds, see
    ``_codegen.range_if``)."""
    __slots__ = ("d", "ext", "mat", "off")

    def __init__(self, d: int, ext: V, off: "V | None" = None):
        self.d, self.ext, self.mat, self.off = d, ext, None, off


def _alive(v) -> bool:
    if isinstance(v, PairV):
        return _alive(v.fst) and _alive(v.snd)
    if isinstance(v, IdxV):
        return v.ext.block.open and (v.off is None or v.off.block.open)
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


_INDEXED = re.compile(r"^(.*)\[((?::|None|0)(?:, (?::|None|0))*)\]$")


def _drop_unit_axes(code: str, keep: list) -> str:
    """``code`` (an array of ``len(keep)`` dims) with the dims where ``keep`` is false --
    of extent 1 -- dropped; undoes a trailing ``[:, None]`` instead of indexing it.

    >>> _drop_unit_axes("W.transpose(1, 0)[:, :, None]", [True, True, False])
    'W.transpose(1, 0)'
    >>> _drop_unit_axes("_t3", [False, True])
    '_t3[0, :]'
    """
    if all(keep):
        return code
    m = _INDEXED.match(code)
    if m and "0" not in m.group(2).split(", "):
        items = m.group(2).split(", ")
        if len(items) == len(keep) and all((it == ":") == k for it, k in zip(items, keep)):
            return m.group(1)
    return f"{code}[{', '.join(':' if k else '0' for k in keep)}]"


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


# which pow becomes multiplications is declared once, with its cost (cost/semantics.py)
from ..cost.semantics import small_int_exponent as _int_exponent  # noqa: E402,F401


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


def default_names(prog) -> tuple[dict, dict]:
    """Python names of the parameters and size names in generated code: their own where all
    are safe identifiers, else ``_p<k>`` / ``_n<k>`` (every backend names them this way)."""
    from ..lang.types import size_names
    names = [p.name for p in prog.params]
    sizes: list[str] = []
    for p in prog.params:
        for s in size_names(p.type):
            if s not in sizes:
                sizes.append(s)
    safe = all(_pyname_ok(n) for n in names + sizes)
    return ({n: (n if safe else f"_p{k}") for k, n in enumerate(names)},
            {s: (s if safe else f"_n{k}") for k, s in enumerate(sizes)})
