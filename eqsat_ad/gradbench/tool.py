"""eqsat-ad as a GradBench tool: GradBench's JSON protocol over standard input/output.

The eval sends one JSON message a line; the tool answers each with one line carrying the same
``id`` (GradBench's CONTRIBUTING.md, "Protocol"):

* ``start`` -> ``{"id", "tool": "eqsat-ad", "config": {...}}``;
* ``define`` (``module``) -> ``{"id", "success"}``, ``success`` false with an ``error`` for an
  eval this tool does not implement;
* ``evaluate`` (``module``, ``function``, ``input``) -> ``{"id", "success", "output",
  "timings"}``: the function runs at least ``input.min_runs`` times and until the runs add up
  to ``input.min_seconds`` (one run when the input has neither, as for ``hello``); each run is
  one ``"evaluate"`` timing.  The first evaluation of a function at given sizes optimises its
  program for those sizes and compiles it (timings ``"optimize"`` and ``"compile"``); later
  ones reuse it from the cache.  With ``cache_dir`` the optimised program is also kept on
  disk as program text and read back (timing ``"load"``) by later sessions;
* any other kind (``analysis``, ...) -> ``{"id"}``.

A message that is not a JSON object with an integer ``id`` cannot be answered: the tool says
so on standard error and exits with status 2.  Everything else that goes wrong with one
message (unknown module or function, an input without the eval's fields, an error while
running) is that message's ``{"success": false, "error": ...}`` and the session goes on.
"""
from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from ..backend.registry import to_numpy
from ..errors import EqsatError
from ..extract import DEFAULT_EXTRACTOR
from .evals import EVALS, NOT_IMPLEMENTED, BadInput

TOOL_NAME = "eqsat-ad"
EXIT_OK, EXIT_PROTOCOL = 0, 2


class ProtocolError(Exception):
    """A line that is not a message this tool can answer (no JSON object, no integer id)."""


class Tool:
    """Answers GradBench messages; keeps the optimised, compiled programs per
    (module, function, sizes) for the session."""

    def __init__(self, *, optimize: bool = True, extractor: str = DEFAULT_EXTRACTOR, seconds: float | None = None,
                 check: bool = False, cache_dir: str | None = None, backend: str = "numpy"):
        self.optimize, self.extractor, self.seconds, self.check = optimize, extractor, seconds, check
        self.backend = backend
        self.cache: dict[tuple, Any] = {}
        self.cache_dir = cache_dir

    def stored_path(self, prog, sizes: dict):
        """Where the optimised program for these sizes is kept between sessions (``cache_dir``):
        a file named by a hash of everything the result depends on -- eqsat-ad's version and
        files (rules, schedule, cost table), the program, the sizes, the extractor, the limit."""
        if not self.cache_dir:
            return None
        import hashlib
        from pathlib import Path
        from .. import __version__
        from ..lang.syntax import show_program
        key = json.dumps([__version__, _package_fingerprint(), show_program(prog), sorted(sizes.items()),
                          self.extractor, self.seconds, self.backend])
        return Path(self.cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.ad"

    # -- one message -------------------------------------------------------------------------
    def handle(self, msg: Any) -> dict:
        if not isinstance(msg, dict):
            raise ProtocolError(f"a message must be a JSON object, got {type(msg).__name__}")
        mid = msg.get("id")
        if isinstance(mid, bool) or not isinstance(mid, int):
            raise ProtocolError(f"a message needs an integer 'id', got {mid!r}")
        kind = msg.get("kind")
        if kind == "start":
            return {"id": mid, "tool": TOOL_NAME, "config": self.config()}
        if kind == "define":
            return {"id": mid, **self.define(msg.get("module"))}
        if kind == "evaluate":
            return {"id": mid, **self.evaluate(msg)}
        return {"id": mid}

    def config(self) -> dict:
        from .. import __version__
        return {"version": __version__, "optimize": self.optimize, "extractor": self.extractor,
                "optimize_seconds": self.seconds, "backend": self.backend}

    def define(self, module: Any) -> dict:
        if module in EVALS:
            return {"success": True}
        why = NOT_IMPLEMENTED.get(module) if isinstance(module, str) else None
        known = ", ".join(sorted(EVALS))
        return {"success": False,
                "error": f"eqsat-ad does not implement module {module!r}"
                         + (f": {why}" if why else "") + f" (modules: {known})"}

    def evaluate(self, msg: dict) -> dict:
        module, function = msg.get("module"), msg.get("function")
        fns = EVALS.get(module) if isinstance(module, str) else None
        if fns is None:
            return self.define(module)
        fn = fns.get(function) if isinstance(function, str) else None
        if fn is None:
            return {"success": False, "error": f"module {module!r} has no function {function!r} "
                                               f"(functions: {', '.join(fns)})"}
        where = f"{module}.{function}"
        inp = msg.get("input")
        try:
            runs, seconds = _runs(inp)
            kwargs = fn.inputs(inp)
            timings: list[dict] = []
            compiled = self.prepared(module, function, fn, fn.sizes(kwargs), timings)
            result, elapsed = None, 0
            while len([t for t in timings if t["name"] == "evaluate"]) < runs or elapsed < seconds * 1e9:
                t0 = time.perf_counter_ns()
                result = to_numpy(compiled(**kwargs))
                dt = time.perf_counter_ns() - t0
                timings.append({"name": "evaluate", "nanoseconds": dt})
                elapsed += dt
            return {"success": True, "output": fn.output(result, kwargs), "timings": timings}
        except BadInput as e:
            return {"success": False, "error": f"bad input for {where}: {e}"}
        except EqsatError as e:
            return {"success": False, "error": f"{where}: {type(e).__name__}: {e}"}
        except MemoryError:
            return {"success": False, "error": f"{where}: out of memory"}
        except Exception as e:  # noqa: BLE001 - one message fails, the session goes on
            return {"success": False, "error": f"{where}: internal error: {type(e).__name__}: {e}"}

    def prepared(self, module: str, function: str, fn, sizes: dict, timings: list) -> Any:
        """The compiled program for these sizes: optimised and compiled on first use."""
        key = (module, function, tuple(sorted(sizes.items())))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        from ..backend import compile as compile_program
        prog = fn.program()
        if self.optimize:
            t0 = time.perf_counter_ns()
            stored = self.stored_path(prog, sizes)
            cached = _read_stored(stored, prog) if stored is not None else None
            if cached is not None:
                prog = cached
                timings.append({"name": "load", "nanoseconds": time.perf_counter_ns() - t0})
            else:
                from ..optimize import optimize, optimize_bindings
                limits = {"seconds": self.seconds} if self.seconds else None
                prog = (optimize_bindings if fn.bindings else optimize)(
                    prog, sizes, extractor=self.extractor, limits=limits, check=self.check,
                    backend=self.backend).program
                timings.append({"name": "optimize", "nanoseconds": time.perf_counter_ns() - t0})
                if stored is not None:
                    _write_stored(stored, prog)
        t0 = time.perf_counter_ns()
        compiled = compile_program(prog, self.backend)
        timings.append({"name": "compile", "nanoseconds": time.perf_counter_ns() - t0})
        self.cache[key] = compiled
        return compiled

    # -- a session ---------------------------------------------------------------------------
    def serve(self, infile: IO[str], outfile: IO[str], errfile: IO[str] = sys.stderr) -> int:
        """Answer every line of ``infile`` on ``outfile`` until the end of the input."""
        for lineno, line in enumerate(infile, 1):
            if not line.strip():
                continue
            try:
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ProtocolError(f"not JSON ({e.msg} at column {e.colno})") from None
                response = self.handle(msg)
            except ProtocolError as e:
                print(f"{TOOL_NAME} gradbench: error: input line {lineno}: {e}; stopping "
                      f"(a message without an id cannot be answered)", file=errfile, flush=True)
                return EXIT_PROTOCOL
            outfile.write(json.dumps(response) + "\n")
            outfile.flush()
        return EXIT_OK


def _package_fingerprint() -> str:
    """A hash of the files that decide what the optimiser returns (rule files, e-graph schema,
    cost table, the Python sources): a cached program is not reused across a change of any."""
    import hashlib
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.suffix in (".py", ".egg", ".json") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _read_stored(path, prog):
    """The stored optimised program, or None when there is none or it is not a well-typed
    program with ``prog``'s parameters and result type (it is then optimised again)."""
    from ..lang.syntax import parse
    from ..lang.typecheck import check_program
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        stored = parse(text, file=str(path))
        if stored.params != prog.params or check_program(stored) != check_program(prog):
            return None
    except EqsatError:
        return None
    return stored


def _write_stored(path, prog) -> None:
    """Keep ``prog`` at ``path``: written to a temporary file and renamed, so a reader never
    sees half a file; a directory that cannot be written is no error (nothing is kept)."""
    import os
    import tempfile
    from ..lang.syntax import show_program
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(show_program(prog) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


def _runs(inp: Any) -> tuple[int, float]:
    """(min_runs, min_seconds) of an input that extends GradBench's Runs; 1 run otherwise."""
    if not isinstance(inp, dict) or ("min_runs" not in inp and "min_seconds" not in inp):
        return 1, 0.0
    runs, seconds = inp.get("min_runs", 1), inp.get("min_seconds", 0.0)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 0:
        raise BadInput(f"min_runs should be a non-negative integer, got {runs!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
        raise BadInput(f"min_seconds should be a non-negative number, got {seconds!r}")
    return max(runs, 1), float(seconds)
