"""Executors for optimised programs: :func:`compile` turns a program into code for one of
the backends of :data:`~eqsat_ad.backend.registry.BACKENDS` (vectorised NumPy by default;
see ``docs/backend.md``).

>>> from eqsat_ad.lang.syntax import parse
>>> compile(parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))"))([1.0, 2.0])
3.0
"""
from .numpy_backend import CompiledProgram, generate_source  # noqa: F401
from .registry import BACKENDS, Backend, backend_names, get_backend  # noqa: F401


def compile(prog, backend=None, **options):   # noqa: A001 - the documented public name
    """``prog`` compiled by ``backend`` (a name of :data:`BACKENDS` or a :class:`Backend`;
    default ``"numpy"``); ``options`` go to that backend's ``compile``."""
    return get_backend(backend).compile(prog, **options)


__all__ = ["compile", "CompiledProgram", "generate_source", "BACKENDS", "Backend", "backend_names", "get_backend"]
