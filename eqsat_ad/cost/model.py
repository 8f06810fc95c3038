"""The shape-specialised cost model (DESIGN.md principle 3).

The NumPy backend evaluates every sub-expression as an array whose axes are its free index
variables, so a node costs (its operation's cost) x (product of the extents of the index
variables free in it).  A ``build``/``sum`` node pays for every element of its loop; an
``ifold`` runs as a Python loop, so its per-iteration cost is large.

The same formula is computed inside egglog (``eqsat_ad/egraph/costrules.py``) to guide
egglog's extractor, and here in Python to report ``cost`` and ``cost_before`` in one unit.

>>> from eqsat_ad.lang.syntax import parse
>>> p = parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))")
>>> default_cost_model().program_cost(p, {"n": 1000})
6000.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..lang.ast import Build, Expr, Get, IFold, Let, Prim, Program, Sum, Var
from ..egraph.constructors import PRIM_TO_CTOR

# Operation cost per element, in units of one float add.  Rough defaults; the calibrated
# table (benchmarks/calibrate_costs.py) overrides them when present.
DEFAULT_OPCOST: dict[str, float] = {
    "Add": 1.0, "Sub": 1.0, "Mul": 1.0, "Div": 1.5, "Pow": 15.0, "Neg": 1.0,
    "Exp": 6.0, "Log": 6.0, "Sin": 8.0, "Cos": 8.0, "Tan": 10.0, "Sqrt": 2.0, "Tanh": 8.0,
    "ToReal": 1.0, "Eq": 1.0, "Lt": 1.0, "Le": 1.0, "And": 1.0, "Or": 1.0, "Not": 1.0,
    "Len": 0.1, "Fst": 0.1, "Snd": 0.1, "Pair": 0.1, "Get": 2.0, "If": 3.0,
    "Build": 1.0, "Sum": 1.0, "Let": 0.1, "IFold": 500.0,
}


def _ctor(e: Expr) -> str:
    if isinstance(e, Prim):
        return PRIM_TO_CTOR.get(e.op, "Lt" if e.op in (">", ">=") else e.op)
    name = type(e).__name__
    return {"Length": "Len"}.get(name, name)


@dataclass
class CostModel:
    """Per-operation costs plus the axis rule.  Pass your own to ``ea.optimize(cost_model=...)``.

    ``opcost`` maps e-graph constructor names (``Add``, ``Exp``, ``Build``, ...) to a cost per
    element; ``default_size`` is used for a size whose value is not known.
    """
    opcost: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OPCOST))
    default_size: int = 1000

    def op(self, e: Expr) -> float:
        return self.opcost.get(_ctor(e), 1.0)

    def program_cost(self, prog: Program, sizes: dict[str, int] | None = None) -> float:
        """Tree cost of ``prog``: every node's op cost times the extents of its free index axes."""
        sizes = dict(sizes or {})
        env: dict[str, frozenset] = {}     # name -> the index axes its value varies over
        ext: dict[str, int] = {}

        params = {p.name: p.type for p in prog.params}
        total = 0.0
        shapes: dict[str, list] = {}       # let/param name -> extents of its array levels

        def type_shape(t) -> list:
            from ..lang.types import ArrayT
            out = []
            while isinstance(t, ArrayT):
                s = t.size
                out.append(s if isinstance(s, int) else int(sizes.get(s, self.default_size)) if s else None)
                t = t.elem
            return out

        for name, t in params.items():
            shapes[name] = type_shape(t)

        def shape(e: Expr) -> list:
            """Extents of the array levels of ``e`` (None where unknown)."""
            from ..lang.ast import Fst, Get, If, Snd
            if isinstance(e, Var):
                return shapes.get(e.name, [])
            if isinstance(e, Build):
                return [extent(e.size)] + shape(e.body)
            if isinstance(e, Get):
                return shape(e.array)[1:]
            if isinstance(e, Let):
                return shape(e.body)
            if isinstance(e, If):
                return shape(e.then) or shape(e.else_)
            if isinstance(e, (Fst, Snd)):
                return []
            return []

        def extent(n: Expr) -> int:
            from ..lang.ast import Int, Length
            if isinstance(n, Int):
                return max(int(n.value), 0)
            if isinstance(n, Var) and n.name in sizes:
                return int(sizes[n.name])
            if isinstance(n, Length):
                sh = shape(n.array)
                if sh and sh[0] is not None:
                    return int(sh[0])
            if isinstance(n, Prim) and n.op in ("+", "-", "*") and len(n.args) == 2:
                a, b = extent(n.args[0]), extent(n.args[1])
                return max(0, a + b if n.op == "+" else a - b if n.op == "-" else a * b)
            return self.default_size

        # post-order walk carrying scopes; returns the index axes each node varies over
        def walk(e: Expr, scope: dict) -> frozenset:
            nonlocal total
            if isinstance(e, Var):
                return scope.get(e.name, frozenset())
            if isinstance(e, Let):
                va = walk(e.value, scope)
                saved = shapes.get(e.name)
                shapes[e.name] = shape(e.value)
                ba = walk(e.body, {**scope, e.name: va})
                if saved is None:
                    shapes.pop(e.name, None)
                else:
                    shapes[e.name] = saved
                total += self.op(e) * _w(va | ba)
                return va | ba
            if isinstance(e, (Build, Sum)):
                na = walk(e.size, scope)
                ext[e.var] = extent(e.size)
                ba = walk(e.body, {**scope, e.var: frozenset([e.var])})
                own = na | ba | {e.var}
                total += self.op(e) * _w(own)
                return na | (ba - {e.var})
            if isinstance(e, IFold):
                za = walk(e.init, scope)
                na = walk(e.size, scope)
                ext[e.var] = extent(e.size)
                ba = walk(e.body, {**scope, e.var: frozenset([e.var]), e.acc: frozenset([e.var]) | za})
                own = za | na | ba | {e.var}
                total += self.op(e) * _w(own)
                return za | na | (ba - {e.var})
            kids = e.children()
            if not kids:
                return frozenset()
            ax = frozenset().union(*[walk(c, scope) for c in kids])
            total += self.op(e) * _w(ax)
            return ax

        def _w(axes) -> float:
            return float(math.prod(ext.get(a, self.default_size) for a in axes))

        walk(prog.body, {})
        return total


_DEFAULT: CostModel | None = None


def default_cost_model() -> CostModel:
    """The default model (calibrated op costs when ``eqsat_ad/cost/opcosts.json`` exists)."""
    global _DEFAULT
    if _DEFAULT is None:
        import json
        from pathlib import Path
        p = Path(__file__).with_name("opcosts.json")
        table = dict(DEFAULT_OPCOST)
        if p.exists():
            table.update(json.loads(p.read_text()).get("opcost", {}))
        _DEFAULT = CostModel(table)
    return _DEFAULT
