"""Progress of a long optimisation on a terminal: one self-overwriting line on stderr.

Shown only when stderr is a terminal (or when forced with ``--progress``), so output that is
piped or captured stays clean.  Updates are throttled to a few per second.
"""
from __future__ import annotations

import sys
import time


class Progress:
    """A ``progress(phase_report, iteration)`` callback for :func:`eqsat_ad.optimize`."""

    def __init__(self, stream=None, enabled: bool | None = None, interval: float = 0.2):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.interval = interval
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._shown = False
        self._width = 0

    def __call__(self, phase, iteration: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._shown and now - self._last < self.interval:
            return
        self._last = now
        n = phase.enodes_per_iteration[-1] if phase.enodes_per_iteration else phase.enodes_before
        self.show(f"eqsat-ad: phase {phase.name}: iteration {phase.iterations} "
                  f"({iteration} in all), {n} e-nodes, {now - self._t0:.1f} s")

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)
        self._shown = True

    def done(self) -> None:
        """End the progress line (call once the run is over)."""
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._shown = False
