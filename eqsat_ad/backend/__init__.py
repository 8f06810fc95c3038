"""Executors for optimised programs: :func:`compile` turns a program into vectorised NumPy
code (see ``docs/backend.md``).

>>> from eqsat_ad.lang.syntax import parse
>>> compile(parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))"))([1.0, 2.0])
3.0
"""
from .numpy_backend import CompiledProgram, compile, generate_source  # noqa: F401

__all__ = ["compile", "CompiledProgram", "generate_source"]
