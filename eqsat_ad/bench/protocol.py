"""Timing and the worker protocol shared by our worker and the peer workers.

Like :mod:`eqsat_ad.bench.specs` this module has no dependency beyond the standard library
(it is loaded by file path in the peer processes).

A worker reads one JSON request per line on stdin and answers one JSON line on stdout::

    {"op": "time", "group": "suite", "program": "dot", "n": 1000, "method": "jax.grad+jit",
     "repeats": 7, "target": 0.2, "budget": 30}
    -> {"ok": true, "median": 1.2e-5, "times": [...], "number": 8000, "first": 0.03,
        "error": 2e-16}

``op`` ``"methods"`` lists the worker's methods, ``"versions"`` its library versions,
``"quit"`` ends it.  A failure is ``{"ok": false, "error": "..."}`` -- the worker survives it.
"""
from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import traceback
from typing import Callable


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Make glibc's malloc keep freed memory in the process (``mallopt``: ``M_TRIM_THRESHOLD``
    and ``M_MMAP_THRESHOLD`` at ``threshold`` bytes), as a long-running numerical program's
    heap is.  By default every temporary of 128 KiB+ (a vector of 16k doubles) is mapped and
    unmapped per call, and the next call pays a page fault per 4 KiB (~7 us each in this VM:
    5 ms per call at n = 1e5) -- which of two methods timed side by side pays them depended on
    what ran before in the process, so ratios at 1e5 swung 1-4x between runs.  Returns whether
    it applied (glibc only; elsewhere nothing changes)."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, threshold)) and bool(libc.mallopt(m_mmap_threshold, threshold))
    except (OSError, AttributeError):
        return False


def measure(fn: Callable[[], object], repeats: int = 7, target: float = 0.2,
            budget: float = 30.0, first: float | None = None) -> dict:
    """Median seconds per call of ``fn`` (timeit style, garbage collector off while timing).

    ``number`` (calls per repeat) is chosen as by ``timeit.Timer.autorange``: 1, 2, 5, 10,
    20, ... until one repeat takes at least ``target`` seconds.  Slow calls get fewer
    repeats so that the whole measurement stays within about ``budget`` seconds (at least one).
    ``first``: the duration of a call already made (skips autoranging for slow functions).
    """
    timer = time.perf_counter

    def run(k: int) -> float:
        gcold = gc.isenabled()
        gc.disable()
        try:
            t0 = timer()
            for _ in range(k):
                fn()
            return timer() - t0
        finally:
            if gcold:
                gc.enable()

    if first is not None and first >= target:
        number, t = 1, first
    else:
        number, t = 1, None
        i = 1
        while True:
            for j in (1, 2, 5):
                number = i * j
                t = run(number)
                if t >= target:
                    break
            else:
                i *= 10
                continue
            break
    reps = max(1, min(repeats, int(budget / max(t, 1e-9))))
    times = [run(number) / number for _ in range(reps)]
    return {"median": statistics.median(times), "times": times, "number": number,
            "repeats": len(times)}


def interleaved(calls: "list[Callable[[], object]]", repeats: int = 9, budget: float = 0.4,
                reduce: Callable = statistics.median) -> dict:
    """Seconds per call of each of ``calls``, timed *side by side*: every repeat runs a batch
    of each in turn, so that a change of machine load hits them all alike (this machine is
    shared).  Each batch size is chosen (one warm-up and one timed call) so that all repeats
    of one call take about ``budget / len(calls)`` seconds.  ``reduce`` summarises the
    repeats (median by default; ``min`` for best-of).  Returns ``{"seconds": [...] (one per
    call), "ratios": [...] (each call's ``reduce`` of per-repeat ratios to ``calls[0]``),
    "number": [...] (calls per batch), "repeats": repeats}``.

    >>> r = interleaved([lambda: sum(range(100)), lambda: sum(range(10))], repeats=3, budget=0.01)
    >>> len(r["seconds"]), r["ratios"][0]
    (2, 1.0)
    """
    number = []
    for fn in calls:
        fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-9)
        number.append(max(1, int(budget / len(calls) / repeats / one)))
    samples: list[list[float]] = [[] for _ in calls]
    gcold = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for fn, k, out in zip(calls, number, samples):
                t0 = time.perf_counter()
                for _ in range(k):
                    fn()
                out.append((time.perf_counter() - t0) / k)
    finally:
        if gcold:
            gc.enable()
    ratios = [reduce(a / b for a, b in zip(s, samples[0])) for s in samples]
    return {"seconds": [reduce(s) for s in samples], "ratios": ratios, "number": number,
            "repeats": repeats}


def serve(handle: Callable[[dict], dict], stdin=None, stdout=None) -> None:
    """Answer requests (one JSON object per line) until ``{"op": "quit"}`` or end of input."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    for line in stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError as exc:
            reply = {"ok": False, "error": f"bad request: {exc}"}
        else:
            if req.get("op") == "quit":
                stdout.write(json.dumps({"ok": True}) + "\n")
                stdout.flush()
                return
            try:
                reply = handle(req)
            except MemoryError as exc:
                reply = {"ok": False, "error": f"MemoryError: {exc}", "kind": "oom"}
            except Exception as exc:  # noqa: BLE001 - every failure is reported per row
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                         "trace": traceback.format_exc(limit=4)[-2000:]}
        stdout.write(json.dumps(reply, default=_jsonable) + "\n")
        stdout.flush()


def _jsonable(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


def time_call(make: Callable[[], Callable[[], object]], check: Callable[[object], float],
              repeats: int, target: float, budget: float) -> dict:
    """Build a callable, make one call (timed, its result checked), then :func:`measure` it."""
    t0 = time.perf_counter()
    fn = make()
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    err = check(out)
    del out
    # The first call may include a JIT compilation or lazy initialisation: a fast one is
    # followed by autoranging from scratch; a slow one (over 1 s) by one more call, which
    # stands in for autoranging if it is slow too (over 1 s: a call of a few seconds is timed
    # once per repeat).  A first call over 5 s is taken as it is.
    hint = None
    if first >= 5.0:
        hint = first
    elif first >= 1.0:
        t0 = time.perf_counter()
        fn()
        second = time.perf_counter() - t0
        hint = second if second >= 1.0 else None
    res = measure(fn, repeats=repeats, target=target, budget=budget, first=hint)
    res.update(ok=True, first=first, setup=setup, error=err)
    return res
