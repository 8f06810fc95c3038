"""eqsat-ad: dual-number AD for a small array language, optimised by equality saturation.

>>> import eqsat_ad as ea
>>> p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))")
>>> g = ea.grad(p, "x")                      # the naive O(n^2) dual-number gradient
>>> res = ea.optimize(g, sizes={"n": 1000})  # O(n) after equality saturation
>>> fn = ea.compile(res.program)
>>> fn(x=[1.0, 2.0, 3.0])
array([2., 4., 6.])

The public names are imported on first use (PEP 562), so ``import eqsat_ad`` is quick and
egglog, scipy and matplotlib are loaded only by what needs them: ``ea.parse`` does not load
egglog, ``ea.optimize`` does.
"""
from __future__ import annotations

import sys as _sys
import builtins as _builtins
import types as _types

__version__ = "0.1.0"


def _interrupted_while_importing() -> None:
    """Ctrl-C while the ``eqsat-ad`` command is still importing the library (NumPy, egglog:
    a second or more on a cold start): one line and exit status 130, as for a Ctrl-C later
    on (eqsat_ad.cli.main), instead of a traceback.  Only for the command (the console
    script, or ``python -m eqsat_ad.…``); a program importing eqsat_ad gets its
    KeyboardInterrupt as usual."""
    import os
    argv0 = _sys.argv[0] if _sys.argv else ""
    if os.path.basename(argv0) not in ("eqsat-ad", "eqsat-ad.exe", "-m"):
        return
    try:
        _sys.stderr.write("eqsat-ad: error: interrupted\n")
        _sys.stderr.flush()
    finally:
        os._exit(130)


#: public name -> the module (relative to this package) that defines it.  To add a public
#: name, add one line here: ``__all__``, ``dir(eqsat_ad)`` and the lazy lookup follow.
_LAZY: dict[str, str] = {
    # errors
    "EqsatError": ".errors", "ADError": ".errors", "EvalError": ".errors", "ParseError": ".errors",
    "ResourceLimitError": ".errors", "RuleFileError": ".errors", "ScheduleError": ".errors",
    "ShapeError": ".errors", "TypeCheckError": ".errors",
    # the language
    "Program": ".lang.ast",
    "BOOL": ".lang.types", "INDEX": ".lang.types", "REAL": ".lang.types", "SIZE": ".lang.types",
    "mat": ".lang.types", "vec": ".lang.types", "show_type": ".lang.types",
    "parse": ".lang.syntax", "parse_expr": ".lang.syntax", "show_expr": ".lang.syntax",
    "show_program": ".lang.syntax",
    "check_program": ".lang.typecheck",
    "evaluate": ".lang.interp",
    # AD
    "derivative": ".ad.api", "grad": ".ad.api", "jacobian": ".ad.api", "jvp": ".ad.api",
    # optimisation (these load egglog)
    "Limits": ".strategy.combinators",
    "optimize": ".optimize", "OptimizeResult": ".optimize",
    "CostModel": ".cost.model", "default_cost_model": ".cost.model",
    # NumPy backend
    "compile": ".backend", "CompiledProgram": ".backend",
    # Python front end
    "Mat": ".frontend.trace", "Real": ".frontend.trace", "Vec": ".frontend.trace",
    "program": ".frontend.trace", "trace": ".frontend.trace",
    # NumPy's names for traced code (docs/numpy-frontend.md)
    **{name: ".frontend.numpy_like" for name in (
        "sum", "mean", "max", "min", "exp", "log", "log1p", "sin", "cos", "tan", "tanh", "sqrt",
        "abs", "sign", "maximum", "minimum", "where", "sigmoid", "power", "dot", "matmul",
        "outer", "transpose")},
    # one call: a function -> its optimised, compiled, cached derivative
    "grad_fn": ".functions", "value_and_grad_fn": ".functions", "jvp_fn": ".functions",
}

#: sub-packages and modules reachable as attributes (``ea.ad``, ``ea.backend``, ...)
_SUBMODULES = ("ad", "backend", "bench", "cli", "cost", "demo", "driver", "egraph", "errors",
               "extract", "frontend", "functions", "fuzz", "glossary", "lang", "progress",
               "random_programs", "rulecheck", "runtime", "strategy", "testing", "viz")

# ``from eqsat_ad import *`` leaves Python's builtins alone (as NumPy's star import does): the
# names that would shadow one (sum, max, min, abs, compile) are reached as ``ea.NAME``.
__all__ = sorted(n for n in _LAZY if not hasattr(_builtins, n)) + ["__version__"]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is not None:
        import importlib
        try:
            value = getattr(importlib.import_module(mod, __name__), name)
        except KeyboardInterrupt:
            _interrupted_while_importing()
            raise
        globals()[name] = value          # the next lookup is a plain attribute
        return value
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


class _Package(_types.ModuleType):
    """This package's module type: importing the sub-module ``eqsat_ad.optimize`` must not
    replace the function ``eqsat_ad.optimize`` (the import system sets a loaded sub-module as
    an attribute of its package; with lazy names the function may not be bound yet)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, _types.ModuleType) and _LAZY.get(name, "") == "." + name:
            return                        # keep the public name; sys.modules has the module
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

# Deep programs: our passes are recursive over expression depth.
if _sys.getrecursionlimit() < 10000:
    _sys.setrecursionlimit(10000)
