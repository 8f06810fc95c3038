"""Compile a program to straight-line, vectorised NumPy code (see ``docs/backend.md``).

**Layout.**  Every sub-expression is computed as one ndarray whose axes are the index
variables it depends on: an index variable bound at nesting depth ``d`` (the outermost
``build``/``sum`` is depth 1) is the axis at position ``-d``, the data dimensions of an
array-valued expression come first, and depths the value does not depend on have extent
1.  So scalar expressions broadcast against each other with no reshaping, a ``build``
over ``i`` just renames the axis of ``i`` into a data dimension, a ``sum`` over ``i`` is a
reduction along it, and ``get x i`` is ``x`` itself (a view).

**Hoisting.**  A value's shape only has the axes of the index variables it depends on,
and compiled sub-expressions are memoised by (structure, bindings of their free
variables), so a sub-term that does not depend on an index variable is computed once,
at the level where its operands exist -- also out of sequential loops.

**Loops.**  ``ifold`` is a reduction when its body is ``acc + e`` (``e + acc``,
``acc - e``, ``acc * e``, ``if c (acc + e) acc``, or a max/min selection) with ``acc`` not
free in ``e``; pair accumulators are split into independent components first.  Only a
genuinely sequential recurrence becomes a Python ``for`` loop, whose body is still
vectorised over the other index axes.

**Conditionals.**  A scalar condition is a Python ``if``; a condition that varies along
an axis is ``np.where`` over both branches, each evaluated *guarded*: an index out of
range where the guard is false is clipped instead of raising (the check itself is a
cheap min/max; the mask is only consulted when it fails).

>>> from eqsat_ad.lang.syntax import parse
>>> f = compile(parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"))
>>> f(x=[1.0, 2.0, 3.0])
14.0
"""
from __future__ import annotations

import builtins
import math
import re
from typing import Any

import numpy as np

from .. import runtime as _runtime
from ..errors import EvalError, ShapeError
from ..lang.ast import Program
from ..lang.primitives import ARG_EXTREMES, REAL_FNS
from ..lang.types import ArrayT, BoolT, IndexT, PairT, RealT, SizeT, Type, array_rank, array_sizes, scalar_leaf
from . import _helpers as H
from ._codegen import _Gen
from ._values import IdxV, PairV, V, _leaves, _show, _Unsupported, default_names

__all__ = ["compile", "CompiledProgram", "generate_source"]


# ---------------------------------------------------------------------------------------
# whole programs
# ---------------------------------------------------------------------------------------
_GLOBALS = {
    "_np": np, "_f64": np.dtype(np.float64), "_i64": np.dtype(np.int64), "_nd": np.ndarray,
    "_inf": math.inf, "_nan": math.nan, "_arange": np.arange, "_full": np.full,
    "_broadcast_to": np.broadcast_to, "_shape": np.shape, "_size": np.size, "_where": np.where,
    **{p.numpy_name: p.interp for p in REAL_FNS.values()},
    **{p.numpy_name: p.interp for p in ARG_EXTREMES.values()}, "_div": np.true_divide, "_pow": np.float_power,
    "_dot": np.dot, "_matmul": np.matmul, "_moveaxis": np.moveaxis, "_addr": np.add.reduce, "_mulr": np.multiply.reduce,
    "_fmaxr": np.fmax.reduce, "_fminr": np.fmin.reduce, "_maxr": np.maximum.reduce,
    "_minr": np.minimum.reduce,
    "_gather": H.gather, "_diag_where": H.diag_where, "_oob": H.oob, "_badmask": H.badmask, "_needed": H.needed,
    "_span_needed": H.span_needed, "_edge_rows": H.edge_rows,
    "_raise_oob": H.raise_oob, "_clip_idx": H.clip_idx, "_arange_at": H.arange_at,
    "_expand": H.expand, "_mul_n": H.mul_n, "_max_extent": H.max_extent,
    "_fold_extreme": H.fold_extreme, "_contract": H.contract, "_check_elems": H.check_elems, "_ragged": H.ragged,
    "_out_array": H.out_array, "_unalias": H.unalias, "_fp_set": getattr(_runtime._FP_CV, "set", None),
    "_fp_reset": getattr(_runtime._FP_CV, "reset", None), "_FP_IGNORE": _runtime.FP_IGNORE_OBJ,
    "_errstate": np.errstate, "_float": float,
    "_floordiv": H.floordiv, "_mod": H.mod, "_raise_zero_div": H.raise_zero_div,
}


# what only NumPy code uses (the portable code, for the other namespaces, has no range guards:
# ``_Gen.range_if`` writes into an array, which not every namespace can)
_NUMPY_ONLY = {"_empty": np.empty, "_zeros": np.zeros, "_bool": np.dtype(np.bool_), "_range_mask": H.range_mask,
               "_cut_axis": H.cut_axis, "_window": H.window}


class CompiledProgram:
    """A program compiled to NumPy: call it with the inputs, positionally (parameter
    order) or by keyword.  ``source`` is the generated Python, ``program`` the (elaborated)
    program; ``fallback`` is None, or why it runs with the reference interpreter.

    >>> from eqsat_ad.lang.syntax import parse
    >>> f = compile(parse("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (get x i)))))"))
    >>> f([1.0, 2.0])
    array([2., 4.])
    >>> "def " in f.source
    True
    """
    source: str
    program: Program
    fallback: str | None
    backend = "numpy"

    def _bad_inputs(self, args: tuple, kwargs: dict) -> None:
        _runtime.bind_inputs(self.program, args, kwargs)     # raises the detailed error
        raise ShapeError("inputs do not match the parameter types")  # pragma: no cover

    def _recall(self, vals: tuple, more: tuple, extra: dict):
        if more:
            return self._generic(tuple(vals) + tuple(more), extra)
        kw = {p.name: v for p, v in zip(self.program.params, vals) if v is not _MISSING}
        kw.update(extra)
        return self._generic((), kw)

    def _generic(self, args: tuple, kwargs: dict):
        env = _runtime.bind_inputs(self.program, args, kwargs)
        return self._positional(*[env[p.name] for p in self.program.params])

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.program.params)
        return f"<CompiledProgram ({names})" + (" interpreted>" if self.fallback else ">")

    # pickle and copy (worker processes, joblib, multiprocessing): the generated function is
    # not picklable, so a copy is compiled again from the program (same code, same results)
    def __reduce__(self):
        return (compile, (getattr(self, "_input_program", self.program),))


def _prologue(prog: Program, py: dict[str, str], size_py: dict[str, str]) -> tuple[list[str], dict]:
    """Input conversion/validation lines; they assume the parameters are bound to ``py``."""
    lines: list[str] = []
    consts: dict[str, Any] = {}
    bound: set[str] = set()
    args_tuple = "(" + ", ".join(py[p.name] for p in prog.params) + ("," if len(prog.params) == 1 else "") + ")"
    bad = f"self._bad_inputs({args_tuple}, {{}})"
    for k, p in enumerate(prog.params):
        name, t = py[p.name], p.type
        tn = f"_T{k}"
        consts[tn] = t
        cin = f"{name} = _cin({p.name!r}, {tn}, {name}, {{}})"
        if isinstance(t, RealT):
            lines.append(f"if type({name}) is not float: {cin}")
        elif isinstance(t, (IndexT, SizeT)):
            lo = 0 if isinstance(t, SizeT) else -2 ** 63      # _cin refuses what is out of range
            lines.append(f"if type({name}) is not int or not {lo} <= {name} <= {2 ** 63 - 1}: {cin}")
        elif isinstance(t, BoolT):
            lines.append(f"if type({name}) is not bool: {cin}")
        elif isinstance(t, ArrayT):
            leaf = scalar_leaf(t)
            dt = "_f64" if isinstance(leaf, RealT) else "_i64" if isinstance(leaf, (IndexT, SizeT)) else None
            if dt is None:
                lines.append(cin)
            else:
                lines.append(f"if type({name}) is not _nd or {name}.dtype is not {dt}: {cin}")
            r = array_rank(t)
            sizes = array_sizes(t)
            checks = [f"{name}.ndim != {r}"]
            binds = []
            for ax, s in enumerate(sizes):
                if isinstance(s, int):
                    checks.append(f"{name}.shape[{ax}] != {s}")
                elif isinstance(s, str):
                    if s in bound:
                        checks.append(f"{name}.shape[{ax}] != {size_py[s]}")
                    elif s not in [b for b, _ in binds]:
                        binds.append((s, ax))
            lines.append(f"if {' or '.join(checks)}: {bad}")
            for s, ax in binds:
                lines.append(f"{size_py[s]} = {name}.shape[{ax}]")
                bound.add(s)
            # a size name used twice in one type, e.g. (mat n n)
            for ax, s in enumerate(sizes):
                if isinstance(s, str) and (s, ax) not in binds and s in [b for b, _ in binds]:
                    lines.append(f"if {name}.shape[{ax}] != {size_py[s]}: {bad}")
        else:   # pairs: convert (and check) with the runtime, then bind their size names
            szs = _size_names(t)
            if not szs:
                lines.append(cin)
                continue
            lines.append(f"_sz = {{}}; {name} = _cin({p.name!r}, {tn}, {name}, _sz)")
            for sname in szs:
                if sname in bound:
                    lines.append(f"if _sz[{sname!r}][0] != {size_py[sname]}: {bad}")
                else:
                    lines.append(f"{size_py[sname]} = _sz[{sname!r}][0]")
                    bound.add(sname)
    return lines, consts


def array_namespace():
    """The array module results come in: NumPy."""
    return np


def generate_source(prog: Program, portable: bool = False) -> tuple[str, dict[str, Any]]:
    """The generated Python source of ``prog`` and the globals it needs (see :func:`compile`).

    ``portable=True``: the code for another array namespace (:mod:`eqsat_ad.backend._xp`
    binds the globals): results leave through ``_out_scalar``/``_out_array_xp`` instead of
    NumPy's ``float()``/``.base`` tests, and a loop reads a vector's elements by indexing
    it rather than from a Python list.  Everything else is the NumPy code, line for line.

    >>> from eqsat_ad.lang.syntax import parse
    >>> src, _ = generate_source(parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))"))
    >>> "_addr(_exp(x), 0)" in src
    True
    """
    from ..lang.binders import cache_hashes, call_deep
    from ..lang.typecheck import elaborate
    prog = elaborate(prog)
    cache_hashes(prog.body)
    names = [p.name for p in prog.params]
    py, size_py = default_names(prog)
    sizes = list(size_py)
    safe = all(py[n] == n for n in names) and all(size_py[z] == z for z in sizes)
    g = _Gen(prog)
    g.portable = portable
    g.size_py = size_py
    g.param_dims = [[str(s) for s in array_sizes(p.type)] for p in prog.params]
    env: dict[str, Any] = {}
    pre_lines: list[str] = []
    for p in prog.params:
        env[p.name] = _param_value(p.name, p.type, py[p.name], g, pre_lines)
    for s in sizes:
        if s not in env:
            env[s] = V(size_py[s], frozenset(), 0, "i", (), g.root, skey=s)
    result = call_deep(g.ev, prog.body, env, what="program")
    out_lines: list[str] = []
    inputs = [leaf.code for p in prog.params for leaf in _leaves(env[p.name]) if leaf.rank]
    arrays = sum(1 for leaf in _leaves(result) if isinstance(leaf, V) and leaf.rank)
    out = _output(result, g, inputs, out_lines, alone=arrays == 1, portable=portable)
    prologue, consts = _prologue(prog, py, size_py)
    body = _inline(_dce(pre_lines + g.root.lines + out_lines + [f"return {out}"]))
    comment = _show(prog.body, 200).replace("\n", " ")
    if safe:
        sig = ", ".join(f"{py[n]}=_M" for n in names)
        head = [f"def _run(self{', ' if sig else ''}{sig}, *_more, **_extra):",
                f"    # {comment}"]
        missing = " or ".join([f"{py[n]} is _M" for n in names] + ["_more", "_extra"])
        given = ", ".join(py[n] for n in names)
        head += [f"    if {missing}:",
                 f"        return self._recall(({given}{',' if len(names) == 1 else ''}), _more, _extra)"]
    else:
        # self is positional-only: a parameter may be called "self" (passed by keyword)
        head = ["def _run(self, /, *_args, **_kwargs):", f"    # {comment}",
                "    if _kwargs or len(_args) != %d:" % len(names),
                "        return self._generic(_args, _kwargs)"]
        if names:
            head.append(f"    {', '.join(py[n] for n in names)}{',' if len(names) == 1 else ''} = _args")
    lines = head + ["    " + ln for ln in prologue]
    if _GLOBALS["_fp_set"] is not None:
        lines += ["    _tok = _fp_set(_FP_IGNORE)", "    try:"]
        lines += ["        " + ln for ln in body]
        lines += ["    finally:", "        _fp_reset(_tok)"]
    else:  # pragma: no cover
        lines += ["    with _errstate(all='ignore'):"] + ["        " + ln for ln in body]
    src = "\n".join(lines) + "\n"
    glb = dict(_GLOBALS)
    if not portable:
        glb.update(_NUMPY_ONLY)
    glb.update(g.consts)
    glb.update(consts)
    glb["_M"] = _MISSING
    glb["_cin"] = _runtime.convert_input
    return src, glb


_ASSIGN = re.compile(r"^(\s*)(_t\d+) = ")
_TMP = re.compile(r"\b_[tr]\d+\b")
_WRITE = re.compile(r"^\s*(_t\d+)\[[^=]*\] [+-]?= ")


def _indent(ln: str) -> int:
    return len(ln) - len(ln.lstrip())


def _dce(lines: list[str]) -> list[str]:
    """Drop single-line assignments to temporaries nobody reads (e.g. the unused half of a
    pair), transitively.  Bounds checks are separate lines, so errors are still raised."""
    lines = list(lines)
    uses: dict[str, int] = {}
    defs: dict[str, list[int]] = {}
    writes: dict[str, list[int]] = {}     # _t3[lo:hi] = ... / += ...: writes into an array
    for k, ln in enumerate(lines):
        for name in _TMP.findall(ln):
            uses[name] = uses.get(name, 0) + 1
        m = _ASSIGN.match(ln)
        if m:
            defs.setdefault(m.group(2), []).append(k)
        m = _WRITE.match(ln)
        if m:
            writes.setdefault(m.group(1), []).append(k)

    def dead(n: str) -> bool:
        return len(defs.get(n, ())) == 1 and uses.get(n, 0) == 1 + len(writes.get(n, ()))
    work = [n for n in defs if dead(n)]
    while work:
        name = work.pop()
        k = defs[name][0]
        if lines[k] is None:
            continue
        for kk in [k] + writes.get(name, []):
            for other in _TMP.findall(lines[kk]):
                if other == name:
                    continue
                uses[other] -= 1
                if dead(other):
                    work.append(other)
            lines[kk] = None
    lines = [ln for ln in lines if ln is not None]
    # comments describing code that is gone; blocks left empty
    out = []
    for k, ln in enumerate(lines):
        nxt = lines[k + 1] if k + 1 < len(lines) else ""
        if ln.lstrip().startswith("#") and (nxt.lstrip().startswith("#") or _indent(nxt) < _indent(ln)
                                           or nxt.lstrip().startswith("return")):
            continue
        out.append(ln)
        if ln.rstrip().endswith(":") and not ln.lstrip().startswith("#") and _indent(nxt) <= _indent(ln):
            out.append(" " * (_indent(ln) + 4) + "pass")
    return out


_DEF = re.compile(r"^(\s*)(_t\d+) = (.*)$")
_NON_SSA = re.compile(r"\b(_a\d+|_r\d+|_kk|_aa|_i\d+)\b")
MAX_LINE = 110


def _inline(lines: list[str]) -> list[str]:
    """Substitute a temporary used exactly once into its use on a later line of the same
    block: NumPy then reuses the buffers of the (unnamed) intermediate arrays ("temporary
    elision") and frees them early, which matters for large n.  Temporaries that are
    shared, checked, or would make a line longer than ``MAX_LINE`` stay named.  One
    forward pass."""
    uses: dict[str, int] = {}
    ndef: dict[str, int] = {}
    for ln in lines:
        for name in _TMP.findall(ln):
            uses[name] = uses.get(name, 0) + 1
        m = _DEF.match(ln)
        if m:
            ndef[m.group(2)] = ndef.get(m.group(2), 0) + 1
    out: list = []
    pending: dict[str, tuple[str, int, int, bool]] = {}   # name -> (expr, indent, out index, adjacent only)
    for ln in lines:
        ind = _indent(ln)
        # a line at another indentation (or any line, for non-SSA) ends eligibility
        for name in [n for n, (_, pind, k, adj) in pending.items()
                     if pind != ind or (adj and k != len(out) - 1)]:
            del pending[name]
        names = [n for n in _TMP.findall(ln) if n in pending]
        for name in names:
            expr, _, k, _ = pending.pop(name)
            if ln.count(name) != 1:
                continue
            new = re.sub(rf"\b{name}\b", lambda _m: expr, ln)
            if len(new) > MAX_LINE:
                continue
            ln = new
            out[k] = None
        out.append(ln)
        m = _DEF.match(ln)
        if m and ndef.get(m.group(2)) == 1 and uses.get(m.group(2)) == 2:
            pending[m.group(2)] = (m.group(3), ind, len(out) - 1, bool(_NON_SSA.search(m.group(3))))
    return [ln for ln in out if ln is not None]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _size_names(t: Type) -> list[str]:
    from ..lang.types import size_names
    return size_names(t)


def _param_value(name: str, t: Type, code: str, g: _Gen, pre: list[str]):
    if isinstance(t, PairT):
        a = _param_value(name, t.fst, f"{code}_0", g, pre)
        b = _param_value(name, t.snd, f"{code}_1", g, pre)
        pre.append(f"{code}_0, {code}_1 = {code}")
        return PairV(a, b)
    if isinstance(t, ArrayT):
        r = array_rank(t)
        dims = array_sizes(t)
        leaf = scalar_leaf(t)
        dt = "f" if isinstance(leaf, RealT) else "i" if isinstance(leaf, (IndexT, SizeT)) else "b"
        return V(code, frozenset(), r, dt, tuple(dims), g.root)
    dt = "f" if isinstance(t, RealT) else "i" if isinstance(t, (IndexT, SizeT)) else "b"
    return V(code, frozenset(), 0, dt, (), g.root)


def _output(v, g: _Gen, inputs: list[str], lines: list[str], alone: bool = False,
            portable: bool = False) -> str:
    """The returned expression for ``v``; array results are bound to names in ``lines``
    (and added to ``inputs``: the arrays later parts of the result must not share)."""
    if isinstance(v, PairV):
        return (f"({_output(v.fst, g, inputs, lines, portable=portable)}, "
                f"{_output(v.snd, g, inputs, lines, portable=portable)})")
    if isinstance(v, IdxV):
        v = g.materialise(v)
    if v.S:
        raise EvalError("the program result depends on an index variable")  # pragma: no cover
    if portable:     # the namespace decides what a scalar result is and when to copy
        if v.rank == 0:
            return f"_out_scalar({v.code}, {v.dt!r})"
        name = g.tmp("_o")
        tup = "(" + "".join(f"{x}, " for x in inputs) + ")"
        lines.append(f"{name} = _out_array_xp({v.code}, {tup})")
        inputs.append(name)
        return name
    if v.rank == 0:
        return {"f": f"_float({v.code})", "i": f"int({v.code})", "b": f"bool({v.code})"}[v.dt]
    if not inputs and alone:
        return f"_out_array({v.code})" if v.ro else v.code
    # Never hand the caller memory of an input (the gradient of dot(x, w) is w itself, a
    # transpose is a view) or of another part of the result ((pair b b)): a fresh array
    # owns its memory (base is None) and is none of those, so the common case costs two
    # attribute tests; views are checked and copied.
    name = g.tmp("_o")
    same = "".join(f" or {name} is {x}" for x in inputs)
    tup = f"({inputs[0]},)" if len(inputs) == 1 else f"({', '.join(inputs)})"
    lines += [f"{name} = {v.code}",
              f"if {name}.base is not None{same}: {name} = _unalias({name}, {tup})"]
    inputs.append(name)
    return name


def compile(prog: Program) -> CompiledProgram:   # noqa: A001 - the documented public name
    """Compile ``prog`` to a vectorised NumPy callable (see the module docstring).

    The result takes the inputs positionally or by keyword, validates their shapes
    (:class:`~eqsat_ad.errors.ShapeError`), and returns the same values as
    :func:`eqsat_ad.lang.interp.evaluate` (up to floating-point rounding of reductions).
    Programs the vectorised executor cannot run (a ``build`` whose size depends on an
    index variable, i.e. a ragged array) fall back to the reference interpreter;
    ``fn.fallback`` says why.

    >>> from eqsat_ad.lang.syntax import parse
    >>> f = compile(parse("(fun ((A (mat m n)) (x (vec n))) "
    ...                   "(build m (lambda (i) (sum n (lambda (j) (* (get (get A i) j) (get x j)))))))"))
    >>> f(A=[[1.0, 2.0], [3.0, 4.0]], x=[1.0, 1.0])
    array([3., 7.])
    """
    from ..lang.typecheck import elaborate
    try:
        src, glb = generate_source(prog)
        fallback = None
    except _Unsupported as exc:
        fallback = str(exc)
    if fallback is not None:
        from ..lang.interp import evaluate
        prog2 = elaborate(prog)

        def _run(self, /, *args, **kwargs):
            return evaluate(prog2, *args, **kwargs)
        src = (f"# The NumPy backend cannot vectorise this program ({fallback});\n"
               f"# it runs with the reference interpreter.\n")
        cls = type("CompiledProgram", (CompiledProgram,), {"__call__": _run})
        obj = cls.__new__(cls)
        obj.source, obj.program, obj.fallback = src, prog2, fallback
        obj._input_program = prog
        return obj
    ns: dict[str, Any] = {}
    code = builtins.compile(src, "<eqsat_ad generated>", "exec")
    exec(code, glb, ns)                                          # noqa: S102
    fn = ns["_run"]
    cls = type("CompiledProgram", (CompiledProgram,), {"__call__": fn, "_positional": fn})
    obj = cls.__new__(cls)
    obj.source, obj.program, obj.fallback = src, elaborate(prog), None
    obj._input_program = prog
    return obj

