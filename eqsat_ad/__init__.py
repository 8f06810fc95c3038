"""eqsat-ad: dual-number AD for a small array language, optimised by equality saturation.

>>> import eqsat_ad as ea
>>> p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))")
>>> g = ea.grad(p, "x")                      # the naive O(n^2) dual-number gradient
>>> res = ea.optimize(g, sizes={"n": 1000})  # O(n) after equality saturation
>>> fn = ea.compile(res.program)
>>> fn(x=[1.0, 2.0, 3.0])
array([2., 4., 6.])
"""
from __future__ import annotations

import sys as _sys


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


try:
    from .errors import (ADError, EqsatError, EvalError, ParseError, ResourceLimitError,  # noqa: F401
                         RuleFileError, ScheduleError, ShapeError, TypeCheckError)
    from .lang.ast import Program  # noqa: F401
    from .lang.types import BOOL, INDEX, REAL, SIZE, mat, show_type, vec  # noqa: F401
    from .lang.syntax import parse, parse_expr, show_expr, show_program  # noqa: F401
    from .lang.typecheck import check_program  # noqa: F401
    from .ad.api import derivative, grad, jacobian, jvp  # noqa: F401
    from .strategy.combinators import Limits  # noqa: F401
    from .optimize import OptimizeResult, optimize  # noqa: F401
    from .cost.model import CostModel, default_cost_model  # noqa: F401

    try:  # modules still being written during bring-up are optional here
        from .lang.interp import evaluate  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    try:
        from .backend import compile  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    try:
        from .frontend.trace import Mat, Real, Vec, program, trace  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
except KeyboardInterrupt:
    _interrupted_while_importing()
    raise

# Deep programs: our passes are recursive over expression depth.
if _sys.getrecursionlimit() < 10000:
    _sys.setrecursionlimit(10000)

__version__ = "0.1.0"
