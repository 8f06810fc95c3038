"""Workarounds for egglog 13.2 bugs, in one place (each described below).

* Report time bug: egglog-python passes Rust *milliseconds* into the *microseconds* slot of
  the ``timedelta`` values in run reports, so every duration is 1000x too small (and
  anything under 1 ms reads 0).  :func:`report_seconds` undoes it.
* ``parse_program`` keeps the whole source in every command's span (memory quadratic in the
  text size): we parse one top-level form at a time (``eggtext.split_forms``; session.py).
* Deep terms recurse in Python: the encoder spills long terms into ``(let $tN ...)`` globals and
  raises the recursion limit locally (encode.py).
* Python reachable from text: egglog-python registers ``py-eval``/``py-exec``/... primitives
  on every e-graph and cannot unregister them; :func:`parse_guarded` is the one gateway all
  text passes on its way into egglog, and refuses any that reaches them.
* Rust panics arrive as ``pyo3_runtime.PanicException``, which ``except Exception`` misses:
  :func:`is_egglog_panic`.
"""
from __future__ import annotations

from datetime import timedelta

from egglog import bindings as _bindings


def report_seconds(td: timedelta) -> float:
    """The real duration of an egglog 13.2 report ``timedelta`` (whose unit is off by 1000)."""
    return td.total_seconds() * 1000.0


# -- the text gateway: what egglog parses, and what it refuses to run ----------------------------
#
# egglog-python 13.2 registers primitives that run Python (py-eval, py-exec, py-dict, ...) on
# every EGraph, and the bindings offer no way to unregister them (EGraph(fact_directory=,
# seminaive=, record=) is all there is).  Rule and schedule files are checked against an
# allowlist before they get here (allowlist.py); as a second, independent line, every text is
# refused here if egglog's *own parse* of it calls a py-* or unstable-* function (unstable-fn
# names any primitive by a string) or declares such a name or a PyObject/UnstableFn sort.
# Atoms have no escapes in egglog, so such a call has its name literally in the text: texts
# without the markers below (all the encoder's text, in practice) skip the walk.

_GUARD_MARKERS = ("py-", "unstable-", "PyObject", "UnstableFn")
_REFUSED_PREFIXES = ("py-", "unstable-")
_REFUSED_SORTS = frozenset({"PyObject", "UnstableFn"})
_BINDING_TYPES = tuple(t for t in (getattr(_bindings, n) for n in _bindings.__all__) if isinstance(t, type))
# What a user's rule file may become once egglog has parsed it.
USER_FILE_COMMANDS = frozenset({"AddRuleset", "UnstableCombinedRuleset", "RuleCommand", "RewriteCommand",
                                "BiRewriteCommand", "Relation", "FunctionCommand", "Constructor", "Sort"})


class RefusedText(Exception):
    """egglog text the gateway will not run (the caller adds the file and line)."""


def _refused_name(obj) -> str | None:
    kind = type(obj).__name__
    if kind == "Call" and obj.name.startswith(_REFUSED_PREFIXES):
        return obj.name
    if kind in ("FunctionCommand", "Constructor", "Relation", "Sort", "Variant") and \
            obj.name.startswith(_REFUSED_PREFIXES):
        return obj.name
    sorts: list[str] = []
    if kind == "Schema":
        sorts = [*obj.input, obj.output]
    elif kind == "Relation":
        sorts = list(obj.inputs)
    elif kind == "Sort" and obj.presort_and_args is not None:
        sorts = [obj.presort_and_args[0]]
    elif kind == "Variant":
        sorts = list(obj.types)
    return next((s for s in sorts if s in _REFUSED_SORTS), None)


def _first_refused(commands) -> str | None:
    """Walk egglog's parse (every child object but spans) for a refused call or declaration."""
    stack = list(commands)
    while stack:
        obj = stack.pop()
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
            continue
        if not isinstance(obj, _BINDING_TYPES):
            continue
        name = _refused_name(obj)
        if name:
            return name
        for attr in dir(obj):
            if attr.startswith("_") or attr == "span":
                continue
            val = getattr(obj, attr, None)
            if isinstance(val, (list, tuple)) or isinstance(val, _BINDING_TYPES):
                stack.append(val)
    return None


def parse_guarded(egraph, text: str, user_file: bool = False) -> list:
    """egglog's parse of ``text``, refused (:class:`RefusedText`) if it reaches egglog-python's
    Python bridge; for a user's rule file also if it holds any command but declarations and
    rules."""
    commands = egraph.parse_program(text)
    if user_file:
        for c in commands:
            if type(c).__name__ not in USER_FILE_COMMANDS:
                raise RefusedText(f"egglog command {type(c).__name__} is not allowed in a rule file")
    if any(m in text for m in _GUARD_MARKERS):
        name = _first_refused(commands)
        if name:
            raise RefusedText(f"'{name}' is never passed to egglog (it would reach egglog-python's "
                              "Python bridge)")
    return commands


def is_egglog_panic(err: BaseException) -> bool:
    """egglog's Rust panics arrive as ``pyo3_runtime.PanicException``, a BaseException."""
    return type(err).__name__ == "PanicException"
