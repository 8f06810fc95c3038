"""Workarounds for egglog 13.2 bugs, in one place (reference/egglog-notes.md §4.1, §6.3, §10).

* Report time bug: egglog-python passes Rust *milliseconds* into the *microseconds* slot of
  the ``timedelta`` values in run reports, so every duration is 1000x too small (and
  anything under 1 ms reads 0).  :func:`report_seconds` undoes it.
* ``parse_program`` keeps the whole source in every command's span (memory quadratic in the
  text size): we parse one top-level form at a time (``eggtext.split_forms``; session.py).
* Deep terms recurse in Python: the encoder spills long terms into ``(let $tN ...)`` globals and
  raises the recursion limit locally (encode.py).
"""
from __future__ import annotations

from datetime import timedelta


def report_seconds(td: timedelta) -> float:
    """The real duration of an egglog 13.2 report ``timedelta`` (whose unit is off by 1000)."""
    return td.total_seconds() * 1000.0
