"""One exception family for the whole library.

Every error the library raises on purpose derives from :class:`EqsatError`, so callers (and
the CLI) can catch one class.  Errors that point into a file carry ``file``, ``line`` and
``column`` and render as ``file:line:col: message``.

>>> try:
...     raise ParseError("expected ')'", file="prog.ad", line=3, column=7)
... except EqsatError as e:
...     print(e)
prog.ad:3:7: expected ')'
"""
from __future__ import annotations


class EqsatError(Exception):
    """Base class of every error raised by eqsat-ad."""


class LocatedError(EqsatError):
    """An error at a place in a text: ``file:line:col: message`` (parts that are unknown are left out)."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: int | None = None):
        self.message, self.file, self.line, self.column = message, file, line, column
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = [str(p) for p in (self.file, self.line, self.column) if p is not None]
        return (":".join(where) + ": " if where else "") + self.message


class ParseError(LocatedError):
    """Malformed program text: unbalanced parentheses, unknown forms, bad literals."""


class TypeCheckError(EqsatError):
    """A program is ill-typed; the message names the offending expression."""


class EvalError(EqsatError):
    """A run-time error of the reference interpreter or a compiled program
    (index out of range, unbound variable, input of the wrong shape, ...)."""


class ShapeError(EvalError):
    """An input array has the wrong shape or sizes disagree."""


class ADError(EqsatError):
    """A derivative was asked for something that cannot be differentiated as requested."""


class RuleFileError(LocatedError):
    """A malformed rule or schedule file (names file and line)."""


class ScheduleError(EqsatError):
    """A schedule cannot be built or run (unknown ruleset, combinator egglog cannot express, ...)."""


class ResourceLimitError(EqsatError):
    """A request would exceed a resource limit (e.g. an array too large to allocate)."""
