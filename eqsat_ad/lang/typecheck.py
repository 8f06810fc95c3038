"""Type checking and elaboration of the array language.

Rules in brief (``docs/language.md`` has the full table):

* numbers: ``1.0`` is ``real``; ``3`` (an ``Int``) is an ``index`` that fits wherever a
  ``real``, ``index`` or ``size`` is expected.  ``index``/``size`` combined with ``real``
  gives ``real``; ``index`` with ``size`` gives ``index``; ``size`` with ``size`` gives ``size``.
  ``/``, ``pow`` and the unary operators (``neg exp log sin cos tan sqrt tanh``) always
  give ``real``; ``(real e)`` casts an index/size to real.
* ``build``/``sum`` sizes are ``size`` or ``index``; the bound variable is an ``index``.
* ``get a i`` needs an array and an index (or size); ``length a`` is a ``size``.
* ``if`` needs a ``bool`` condition and branches of one type (numbers are joined);
  array sizes that are both known must agree.

:func:`elaborate` makes every numeric promotion explicit (``Int`` -> ``Num`` in a real
context, ``(real e)`` around an index/size expression), so later passes see operands of
one type.

>>> from eqsat_ad.lang.syntax import parse, show_expr
>>> p = parse("(fun ((x (vec n))) (sum n (lambda (i) (* 2 (+ (get x i) i)))))")
>>> show_type(check_program(p))
'real'
>>> show_expr(elaborate(p).body)
'(sum n (lambda (i) (* 2.0 (+ (get x i) (real i)))))'
"""
from __future__ import annotations

from ..errors import TypeCheckError
from .primitives import ARG_EXTREMES, INT_DIVISION, REAL_RESULT
from .ast import (COMPARISONS, PRIM_ARITY, Build, BoolLit, Expr, Fst,
                  Get, If, IFold, Int, Length, Let, Num, Pair, Prim, Program, Scan, Snd, Sum, Var)
from .binders import call_deep
from .types import (BOOL, INDEX, REAL, SIZE, ArrayT, PairT, SizeLike, Type, show_type,
                    size_names)

__all__ = ["type_of", "check_program", "elaborate", "elaborate_expr", "annotate",
           "program_env", "numeric_join"]

_NUMERIC = (REAL, INDEX, SIZE)
_NOT_SIZE = object()   # marks a let/loop-bound name that shadows a size name
_MAX_SHOWN = 80


def _show(e: Expr) -> str:
    from .syntax import show_flat
    return show_flat(e, limit=_MAX_SHOWN)


def _a(t: Type) -> str:
    """``real`` -> ``a real``, ``index`` -> ``an index``."""
    s = show_type(t)
    return ("an " if s[0] in "aeiou" else "a ") + s


def numeric_join(t1: Type, t2: Type) -> Type:
    """The type two numeric operands are promoted to.

    >>> show_type(numeric_join(INDEX, SIZE)), show_type(numeric_join(SIZE, REAL))
    ('index', 'real')
    """
    if t1 == REAL or t2 == REAL:
        return REAL
    if t1 == INDEX or t2 == INDEX:
        return INDEX
    return SIZE


def _coerce(e: Expr, frm: Type, to: Type) -> Expr:
    """Make the promotion of ``e : frm`` to ``to`` explicit."""
    if frm == to or to != REAL:
        return e           # index <-> size needs no cast (both are integers)
    if isinstance(e, Int):
        return Num(float(e.value))
    return Prim("real", (e,))


def _unify_shape(t1: Type, t2: Type) -> Type | None:
    """Unify two types up to array sizes (a known size wins over an unknown one); None if
    they are incompatible."""
    if t1 == t2:
        return t1
    if isinstance(t1, ArrayT) and isinstance(t2, ArrayT):
        elem = _unify_shape(t1.elem, t2.elem)
        if elem is None:
            return None
        if t1.size is not None and t2.size is not None and t1.size != t2.size:
            return None
        return ArrayT(elem, t1.size if t1.size is not None else t2.size)
    if isinstance(t1, PairT) and isinstance(t2, PairT):
        a, b = _unify_shape(t1.fst, t2.fst), _unify_shape(t1.snd, t2.snd)
        return None if a is None or b is None else PairT(a, b)
    return None


class _Checker:
    def __init__(self, env: dict[str, Type], record: bool):
        self.env: dict[str, Type] = dict(env)
        self.alias: dict[str, object] = {}
        self.types: dict[int, Type] | None = {} if record else None

    # -- errors ------------------------------------------------------------------------
    def fail(self, e: Expr, what: str, expected: str, got: Type) -> TypeCheckError:
        return TypeCheckError(f"type error in {_show(e)}: {what} must be {expected}, "
                              f"got {show_type(got)}")

    # -- environment ---------------------------------------------------------------------
    def bind(self, name: str, t: Type, size_value: object = _NOT_SIZE):
        saved = (name, self.env.get(name, _NOT_SIZE), self.alias.get(name, _NOT_SIZE),
                 name in self.env, name in self.alias)
        self.env[name] = t
        self.alias[name] = size_value if t in (SIZE, INDEX) else _NOT_SIZE
        return saved

    def unbind(self, saved) -> None:
        name, t, a, had_t, had_a = saved
        if had_t:
            self.env[name] = t  # type: ignore[assignment]
        else:
            del self.env[name]
        if had_a:
            self.alias[name] = a
        else:
            del self.alias[name]

    def size_value(self, e: Expr, t: Type) -> SizeLike:
        """The static size an index/size expression stands for, when it can be named."""
        if isinstance(e, Int):
            return int(e.value)
        if isinstance(e, Var) and t in (SIZE, INDEX):
            a = self.alias.get(e.name, e.name if t == SIZE else _NOT_SIZE)
            return None if a is _NOT_SIZE else a  # type: ignore[return-value]
        return None

    # -- checking --------------------------------------------------------------------------
    def check(self, e: Expr, parent: Expr) -> tuple[Type, Expr, SizeLike]:
        """Type of ``e``, its elaboration, and (for sizes) the static size it names."""
        t, e2, sv = self._check(e, parent)
        if self.types is not None:
            self.types[id(e)] = t
        return t, e2, sv

    def _size_operand(self, node: Expr, size: Expr):
        ts, s2, sv = self.check(size, node)
        if ts not in (SIZE, INDEX):
            raise self.fail(node, "size", "a size", ts)
        return s2, sv

    def _check(self, e: Expr, parent: Expr) -> tuple[Type, Expr, SizeLike]:
        if isinstance(e, Num):
            return REAL, e, None
        if isinstance(e, Int):
            return INDEX, e, int(e.value)
        if isinstance(e, BoolLit):
            return BOOL, e, None
        if isinstance(e, Var):
            t = self.env.get(e.name)
            if t is None:
                raise TypeCheckError(f"unknown name '{e.name}' in {_show(parent)}")
            return t, e, self.size_value(e, t)
        if isinstance(e, Prim):
            return self.check_prim(e)
        if isinstance(e, If):
            tc, c2, _ = self.check(e.cond, e)
            if tc != BOOL:
                raise self.fail(e, "condition", "a bool", tc)
            ta, a2, _ = self.check(e.then, e)
            tb, b2, _ = self.check(e.else_, e)
            if ta in _NUMERIC and tb in _NUMERIC:
                t = numeric_join(ta, tb)
                a2, b2 = _coerce(a2, ta, t), _coerce(b2, tb, t)
            else:
                t = _unify_shape(ta, tb)  # type: ignore[assignment]
                if t is None:
                    raise self.fail(e, "the else branch", f"of the then branch's type {show_type(ta)}", tb)
            return t, self._rebuild(e, (c2, a2, b2)), None
        if isinstance(e, Let):
            tv, v2, sv = self.check(e.value, e)
            saved = self.bind(e.name, tv, sv)
            try:
                tb, b2, bsv = self.check(e.body, e)
            finally:
                self.unbind(saved)
            return tb, self._rebuild(e, (v2, b2)), None
        if isinstance(e, (Build, Sum)):
            s2, sv = self._size_operand(e, e.size)
            saved = self.bind(e.var, INDEX)
            try:
                tb, b2, _ = self.check(e.body, e)
            finally:
                self.unbind(saved)
            new = self._rebuild(e, (s2, b2))
            if isinstance(e, Build):
                return ArrayT(tb, sv), new, None
            if tb not in _NUMERIC:
                raise self.fail(e, "the body of sum", "a number", tb)
            return tb, new, None
        if isinstance(e, (IFold, Scan)):
            return self.check_ifold(e)
        if isinstance(e, Get):
            ta, a2, _ = self.check(e.array, e)
            if not isinstance(ta, ArrayT):
                raise self.fail(e, "array", "an array", ta)
            ti, i2, _ = self.check(e.index, e)
            if ti not in (INDEX, SIZE):
                raise self.fail(e, "index", "an index", ti)
            return ta.elem, self._rebuild(e, (a2, i2)), None
        if isinstance(e, Length):
            ta, a2, _ = self.check(e.array, e)
            if not isinstance(ta, ArrayT):
                raise self.fail(e, "argument of length", "an array", ta)
            return SIZE, self._rebuild(e, (a2,)), ta.size
        if isinstance(e, Pair):
            t1, a2, _ = self.check(e.fst, e)
            t2, b2, _ = self.check(e.snd, e)
            return PairT(t1, t2), self._rebuild(e, (a2, b2)), None
        if isinstance(e, (Fst, Snd)):
            tp, p2, _ = self.check(e.pair, e)
            if not isinstance(tp, PairT):
                raise self.fail(e, f"argument of {'fst' if isinstance(e, Fst) else 'snd'}",
                                "a pair", tp)
            return (tp.fst if isinstance(e, Fst) else tp.snd), self._rebuild(e, (p2,)), None
        raise TypeCheckError(f"not an expression: {e!r}")

    @staticmethod
    def _rebuild(e: Expr, new: tuple) -> Expr:
        if all(a is b for a, b in zip(new, e.children())):
            return e
        r = e.with_children(new)
        hash(r)
        return r

    def check_prim(self, e: Prim) -> tuple[Type, Expr, SizeLike]:
        op, args = e.op, e.args
        if op not in PRIM_ARITY:
            raise TypeCheckError(f"type error in {_show(e)}: unknown operator '{op}'")
        if len(args) != PRIM_ARITY[op]:
            n = PRIM_ARITY[op]
            raise TypeCheckError(f"type error in {_show(e)}: '{op}' takes {n} argument"
                                 f"{'s' if n != 1 else ''}, got {len(args)}")
        checked = [self.check(a, e) for a in args]
        ts = [c[0] for c in checked]
        new = [c[1] for c in checked]
        if op in ("and", "or", "not"):
            for k, t in enumerate(ts):
                if t != BOOL:
                    raise self.fail(e, f"operand {k + 1} of '{op}'", "a bool", t)
            return BOOL, self._rebuild(e, tuple(new)), None
        if op in ARG_EXTREMES:
            if not (isinstance(ts[0], ArrayT) and ts[0].elem == REAL):
                raise self.fail(e, f"the operand of '{op}'", "a vector of reals", ts[0])
            return INDEX, self._rebuild(e, tuple(new)), None
        if op in INT_DIVISION:
            for k, t in enumerate(ts):
                if t not in (INDEX, SIZE):
                    raise self.fail(e, f"operand {k + 1} of '{op}'", "an index", t)
            return numeric_join(ts[0], ts[1]), self._rebuild(e, tuple(new)), None
        if op == "=" and ts[0] == BOOL and ts[1] == BOOL:
            return BOOL, self._rebuild(e, tuple(new)), None
        for k, t in enumerate(ts):
            if t not in _NUMERIC:
                raise self.fail(e, f"operand {k + 1} of '{op}'", "a number", t)
        if op == "real":
            return REAL, self._rebuild(e, tuple(new)), None
        if op in REAL_RESULT:
            target = REAL
        else:
            target = numeric_join(ts[0], ts[1])
        new = [_coerce(a, t, target) for a, t in zip(new, ts)]
        result = BOOL if op in COMPARISONS else target
        return result, self._rebuild(e, tuple(new)), None

    def check_ifold(self, e: "IFold | Scan") -> tuple[Type, Expr, SizeLike]:
        """An ``ifold``, or a ``scan``: the array of its ``N + 1`` states."""
        ti, i2, _ = self.check(e.init, e)
        s2, sv = self._size_operand(e, e.size)
        acc_t = ti
        for attempt in range(2):
            s_acc = self.bind(e.acc, acc_t, None)
            s_var = self.bind(e.var, INDEX)
            try:
                tb, b2, _ = self.check(e.body, e)
            finally:
                self.unbind(s_var)
                self.unbind(s_acc)
            if acc_t in _NUMERIC and tb in _NUMERIC:
                j = numeric_join(acc_t, tb)
                if j != acc_t and attempt == 0:
                    acc_t = j          # e.g. init 0 with a real body: the accumulator is real
                    continue
                b2 = _coerce(b2, tb, acc_t)
                t = acc_t
            else:
                t = _unify_shape(acc_t, tb)  # type: ignore[assignment]
                if t is None:
                    raise self.fail(e, f"the body of {'scan' if isinstance(e, Scan) else 'ifold'}",
                                    f"of the accumulator's type {show_type(acc_t)}", tb)
            break
        i2 = _coerce(i2, ti, t) if ti in _NUMERIC else i2
        if isinstance(e, Scan):
            states = sv + 1 if isinstance(sv, int) and not isinstance(sv, bool) else None
            return ArrayT(t, states), self._rebuild(e, (b2, i2, s2)), None
        return t, self._rebuild(e, (b2, i2, s2)), None


def _run(e: Expr, env: dict[str, Type], record: bool):
    c = _Checker(env, record)
    t, e2, _ = call_deep(c.check, e, e, what="expression")
    return t, e2, c.types


def type_of(e: Expr, env: dict[str, Type]) -> Type:
    """The type of ``e`` where the free names have the types in ``env``.

    >>> from eqsat_ad.lang.ast import Get
    >>> from eqsat_ad.lang.types import vec
    >>> show_type(type_of(Get(Var("x"), Int(0)), {"x": vec("n")}))
    'real'
    """
    return _run(e, env, False)[0]


def program_env(p: Program) -> dict[str, Type]:
    """Names in scope in a program body: the parameters and (as ``size``) every size name
    of their types.

    >>> from eqsat_ad.lang.ast import Param
    >>> from eqsat_ad.lang.types import mat
    >>> sorted((k, show_type(t)) for k, t in program_env(Program((Param("M", mat("m", "n")),), Var("M"))).items())
    [('M', '(mat m n)'), ('m', 'size'), ('n', 'size')]
    """
    env: dict[str, Type] = {}
    for prm in p.params:
        if prm.name in env:
            raise TypeCheckError(f"parameter '{prm.name}' is declared twice")
        env[prm.name] = prm.type
    for prm in p.params:
        for n in size_names(prm.type):
            if n in env and env[n] != SIZE:
                raise TypeCheckError(f"size name '{n}' in the type of '{prm.name}' clashes with "
                                     f"parameter '{n}' of type {show_type(env[n])}")
            env[n] = SIZE
    return env


def check_program(p: Program) -> Type:
    """Type-check a program and return the type of its result.

    >>> from eqsat_ad.lang.syntax import parse
    >>> show_type(check_program(parse("(fun ((x (vec n))) (build n (lambda (i) (get x i))))")))
    '(vec n)'
    """
    return type_of(p.body, program_env(p))


def elaborate_expr(e: Expr, env: dict[str, Type]) -> Expr:
    """``e`` with its numeric promotions made explicit (see :func:`elaborate`).

    >>> from eqsat_ad.lang.syntax import parse_expr, show_expr
    >>> show_expr(elaborate_expr(parse_expr("(+ x i)"), {"x": REAL, "i": INDEX}))
    '(+ x (real i))'
    """
    return _run(e, env, False)[1]


def elaborate(p: Program) -> Program:
    """The same program with coercions explicit: an ``Int`` literal where a real is
    expected becomes a ``Num``, an index/size expression there is wrapped in ``(real e)``.
    Idempotent; raises :class:`TypeCheckError` on an ill-typed program.

    >>> from eqsat_ad.lang.syntax import parse, show_expr
    >>> show_expr(elaborate(parse("(fun ((w real)) (* w 3))")).body)
    '(* w 3.0)'
    """
    body = elaborate_expr(p.body, program_env(p))
    return p if body is p.body else Program(p.params, body)


def annotate(e: Expr, env: dict[str, Type]) -> dict[int, Type]:
    """The type of every node of ``e``, keyed by ``id(node)`` (keep ``e`` alive while the
    table is used).  Annotate an *elaborated* expression: then every operand already has
    the type its operator works in.  A node object shared between places gets one entry
    (the last one checked); after :func:`rename_unique` shared nodes have one type.

    >>> from eqsat_ad.lang.ast import Prim
    >>> e = Prim("+", (Var("x"), Num(1.0)))
    >>> show_type(annotate(e, {"x": REAL})[id(e)])
    'real'
    """
    return _run(e, env, True)[2]  # type: ignore[return-value]
