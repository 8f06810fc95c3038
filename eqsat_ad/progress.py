"""Progress of the long steps on a terminal: one self-overwriting line on stderr (``tqdm``).

Shown only when the stream (stderr by default) is a terminal, or when forced with
``enabled=True`` (the command line's ``--progress``), so output that is piped or captured
stays clean.  Two kinds:

* :class:`Progress` -- a status line for work whose length is not known in advance (an
  optimisation: each phase and iteration, then finishing substitutions, costs, extraction,
  the numeric check, compilation).  Its elapsed time keeps ticking while a step runs, so a
  long extraction does not look like a hang.  ``ea.optimize(..., progress=True)`` makes one.
* :func:`counter` -- a bar for counted work (``rules check``: one step per rule; the
  benchmarks: one step per cell).

An optimisation's progress callback is called as ``progress(phase_report, iteration)`` after
every iteration of the run; when it also has a ``stage(text)`` method, that is called as each
later step starts.

>>> import io
>>> p = Progress(io.StringIO())            # not a terminal: silent
>>> p.enabled
False
>>> p.stage("extracting"); p.done()
>>> resolve(False) is None and resolve(None) is None
True
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Iterable


def _is_tty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):          # a closed stream
        return False


class Progress:
    """A status line: ``eqsat-ad: <what is running now> [elapsed]``.

    Use it as the ``progress`` of :func:`eqsat_ad.optimize` (it is called after every
    iteration, and :meth:`stage` as each later step starts), or call :meth:`stage` yourself;
    :meth:`done` (or leaving a ``with`` block) clears the line."""

    def __init__(self, stream=None, enabled: bool | None = None, interval: float = 0.2,
                 prefix: str = "eqsat-ad"):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else bool(enabled)
        self.interval = interval
        self.prefix = prefix
        self._bar = None
        self._phase: str | None = None
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the optimiser's callback -----------------------------------------------------------
    def __call__(self, phase, iteration: int) -> None:
        if not self.enabled:
            return
        new_phase = phase.name != self._phase
        self._phase = phase.name
        now = time.perf_counter()
        if not new_phase and self._bar is not None and now - self._last < self.interval:
            return
        n = phase.enodes_per_iteration[-1] if phase.enodes_per_iteration else phase.enodes_before
        self.show(f"phase {phase.name}: iteration {phase.iterations} ({iteration} in all), {n} e-nodes",
                  force=new_phase)

    def stage(self, text: str) -> None:
        """A new step starts (shown at once, whatever the interval)."""
        self.show(text, force=True)

    # -- the line ---------------------------------------------------------------------------
    def show(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        with self._lock:
            if self._bar is None:
                self._open()
            elif not force and now - self._last < self.interval:
                return
            self._last = now
            self._bar.set_description_str(f"{self.prefix}: {text}", refresh=False)
            self._bar.refresh()

    def log(self, text: str) -> None:
        """A line that stays (printed above the status line on a terminal, plain otherwise:
        a log); the status line then shows it as what is running now."""
        if not self.enabled:
            print(text, file=self.stream, flush=True)
            return
        with self._lock:
            if self._bar is None:
                self._open()
            self._bar.write(text, file=self.stream)
        self.stage(text)

    def _open(self) -> None:
        from tqdm import tqdm
        self._bar = tqdm(total=None, file=self.stream, leave=False, dynamic_ncols=True,
                         bar_format="{desc} [{elapsed}]", mininterval=0.0)
        # elapsed counts from this object's creation (tqdm's clock is its own _time())
        self._bar.start_t = self._bar._time() - (time.perf_counter() - self._t0)
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="eqsat-ad-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        """Refresh the elapsed time while a long step runs (extraction can take most of it)."""
        while not self._stop.wait(0.5):
            with self._lock:
                if self._bar is None:
                    return
                try:
                    self._bar.refresh()
                except (ValueError, OSError):     # the stream was closed under us
                    return

    def done(self) -> None:
        """Clear the line (call once the work is over; a later :meth:`show` opens it again)."""
        self._stop.set()
        t = self._ticker
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2.0)
        self._ticker = None
        with self._lock:
            if self._bar is not None:
                try:
                    self._bar.close()
                except (ValueError, OSError):
                    pass
                self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.done()


def resolve(progress) -> Any:
    """What :func:`eqsat_ad.optimize` does with its ``progress`` argument: ``None``/``False``
    -> no progress; ``True`` -> a :class:`Progress` on stderr (shown only when stderr is a
    terminal); a callable -> itself (``progress(phase_report, iteration)``)."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return Progress()
    if not callable(progress):
        raise TypeError(f"progress must be None, a bool or a callable "
                        f"progress(phase_report, iteration), got {type(progress).__name__}")
    return progress


def stage(progress, text: str) -> None:
    """Tell ``progress`` (a callback, maybe without :meth:`Progress.stage`) a step starts."""
    f = getattr(progress, "stage", None)
    if callable(f):
        f(text)


def counter(total: int | None, desc: str, unit: str = "it", enabled: bool | None = None,
            stream=None):
    """A ``tqdm`` bar for ``total`` counted steps (``bar.update()``, ``bar.close()``), shown only
    on a terminal (or with ``enabled=True``); a no-op object otherwise."""
    stream = stream if stream is not None else sys.stderr
    on = _is_tty(stream) if enabled is None else bool(enabled)
    if not on:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True)


def track(items: Iterable, desc: str, unit: str = "it", total: int | None = None,
          enabled: bool | None = None, stream=None) -> Iterable:
    """``items``, with a :func:`counter` bar advancing as they are consumed."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    bar = counter(total, desc, unit, enabled, stream)
    try:
        for x in items:
            yield x
            bar.update()
    finally:
        bar.close()


class _NoBar:
    """The silent stand-in of a tqdm bar."""

    def update(self, n: int = 1) -> None:
        pass

    def set_description_str(self, text: str, refresh: bool = True) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


Callback = Callable[[Any, int], None]
__all__ = ["Progress", "resolve", "stage", "counter", "track"]
