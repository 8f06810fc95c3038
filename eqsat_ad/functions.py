"""One call from a function to a fast derivative: ``grad_fn``, ``value_and_grad_fn``, ``jvp_fn``.

``ea.grad_fn(f, wrt=...)`` is ``parse``/``trace`` -> ``grad`` -> ``optimize`` -> ``compile``
behind one callable, as ``jax.jit(jax.grad(f))`` is in JAX::

    >>> import numpy as np
    >>> import eqsat_ad as ea
    >>> def loss(w, X, y):
    ...     return ea.mean((X @ w - y) ** 2)
    >>> g = ea.grad_fn(loss, cache=False)            # wrt the first parameter, w
    >>> X, y, w = np.eye(3), np.array([1.0, 2.0, 3.0]), np.zeros(3)
    >>> g(w, X, y)                                    # 2/3 X^T (X w - y)
    array([-0.66666667, -1.33333333, -2.        ])

``f`` is a :class:`~eqsat_ad.lang.ast.Program`, program text, or a Python function written
with NumPy-like operations (traced by :func:`eqsat_ad.frontend.trace.trace` with the shapes
of the arrays it is called with).  The result takes NumPy arrays (positionally, or by
parameter name) and **specialises on the shapes of its call**: the first call with new
shapes reads the sizes from the arrays, traces (a Python function), builds the derivative
program, optimises it for those sizes and compiles it to NumPy; later calls with the same
shapes look the compiled function up by the tuple of shapes and call it, which costs a dict
lookup more than the compiled function alone.

Every specialisation is also kept on disk, in the user cache directory
(``$EQSAT_AD_CACHE_DIR``, else ``$XDG_CACHE_HOME/eqsat-ad``, else ``~/.cache/eqsat-ad``;
``EQSAT_AD_CACHE_DIR=off`` or ``cache=False`` turn it off, ``cache="some/dir"`` picks another
directory), keyed by the derivative program's text, the sizes, the rule files' contents, the
schedule, the extractor, the other options, and the version (with a hash of the package's own
files) of eqsat-ad: a new process with the same program and shapes skips the optimiser.  What
is stored is the optimised *program text* (data, not code): it is parsed, type-checked
against the program it must replace and compiled again; an entry that is unreadable, written
by another version or for other parameters is ignored and rebuilt.  Entries are written to a
temporary file and renamed into place, so processes sharing the directory never read half an
entry.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import ADError, EqsatError, ShapeError, TypeCheckError
from .lang.ast import Pair, Program

__all__ = ["grad_fn", "value_and_grad_fn", "jvp_fn", "DerivativeFunction", "Specialization",
           "cache_dir", "CACHE_ENV"]

#: the environment variable naming the cache directory (``off``: no disk cache)
CACHE_ENV = "EQSAT_AD_CACHE_DIR"
#: the first field of every cache entry: an entry with another one is ignored
CACHE_FORMAT = "eqsat-ad derivative cache 1"
#: options passed on to :func:`eqsat_ad.optimize`
OPTIMIZE_OPTIONS = ("schedule", "rules", "default_rules", "extractor", "cost_model", "limits",
                    "check", "progress", "backend")


# --------------------------------------------------------------------------------------
# the public constructors
# --------------------------------------------------------------------------------------
def grad_fn(f, wrt=None, *, cache: bool | str | Path = True, **optimize_options) -> "DerivativeFunction":
    """The gradient of a real-valued ``f`` as a fast callable.

    ``wrt`` names the parameter(s) to differentiate with respect to: ``None`` (the first
    parameter, as JAX's ``argnums=0``), a name, a position, or a tuple/list of them -- then
    the result is a tuple of gradients, one per name, in that order.  Each gradient has the
    shape of its parameter.  The parameters of a Python function are its parameters without
    a default value (one with a default, ``xp=ea`` say, keeps it and is not traced).  ``optimize_options`` go to :func:`eqsat_ad.optimize`
    (``schedule``, ``rules``, ``default_rules``, ``extractor``, ``cost_model``, ``limits``,
    ``check``, ``progress``, ``backend`` -- which also runs the result: ``"numba"``, ...);
    ``cache``: see the module docstring.
    """
    return DerivativeFunction(f, "grad", wrt, cache=cache, options=optimize_options)


def value_and_grad_fn(f, wrt=None, *, cache: bool | str | Path = True,
                      **optimize_options) -> "DerivativeFunction":
    """Like :func:`grad_fn`, but the callable returns ``(value, gradient)`` (``(value,
    (g1, g2, ...))`` for a tuple ``wrt``), computed by one optimised program (the e-graph
    may share work between the value and the gradient)."""
    return DerivativeFunction(f, "value_and_grad", wrt, cache=cache, options=optimize_options)


def jvp_fn(f, wrt=None, *, with_primal: bool = False, cache: bool | str | Path = True,
           **optimize_options) -> "DerivativeFunction":
    """The directional derivative (Jacobian-vector product) of ``f`` as a fast callable,
    the program of :func:`eqsat_ad.jvp`: it takes ``f``'s arguments followed by one tangent
    (direction) per ``wrt`` parameter, of that parameter's shape, and returns the tangent
    of the output (``(value, tangent)`` with ``with_primal=True``)."""
    return DerivativeFunction(f, "jvp_primal" if with_primal else "jvp", wrt, cache=cache,
                              options=optimize_options)


# --------------------------------------------------------------------------------------
# what was built for one shape signature
# --------------------------------------------------------------------------------------
@dataclass
class Specialization:
    """What a :class:`DerivativeFunction` built for one shape signature.

    ``program`` is the optimised program, ``source`` the NumPy code it was compiled to,
    ``report`` the optimiser's :class:`~eqsat_ad.driver.RunReport` (rebuilt from the cache
    entry when it came from disk), ``derivative`` the program before optimisation, ``sizes``
    the sizes read from the arrays, ``origin`` ``"built"`` (optimised in this process),
    ``"disk"`` (read from the disk cache) or ``"memory"`` (made by another function object of
    this process), ``seconds`` the time it took to get it (trace, optimise, compile; or read
    and compile), ``cache_note`` why a disk entry was not used or not written (else "")."""
    shapes: tuple
    sizes: dict
    derivative: Program
    program: Program
    compiled: Any
    run_report: Any = field(repr=False)       # a RunReport, or its to_dict() from the cache
    cost: float | None
    cost_before: float | None
    origin: str
    seconds: float
    cache_note: str = ""
    cache_file: Path | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        return self.compiled.source

    @property
    def report(self):
        """The optimiser's report (made from the cache entry on first use: the report's
        module loads egglog, which a cache hit does not otherwise need)."""
        if isinstance(self.run_report, dict):
            self.run_report = _report_from_dict(self.run_report)
        return self.run_report


#: specialisations made in this process, by cache key (shared by every function object)
_MEMORY: dict[str, Specialization] = {}


class DerivativeFunction:
    """A derivative of ``f`` that specialises on the shapes it is called with (made by
    :func:`grad_fn`, :func:`value_and_grad_fn` and :func:`jvp_fn`).

    ``program``, ``report`` and ``source`` describe the specialisation made most recently
    (for the last call that brought new shapes); ``specializations`` maps every shape
    signature seen (a tuple of shapes, one per argument) to its :class:`Specialization`.

    It pickles (and copies) without what it built: a copy in a worker process builds again
    on its first call, from the disk cache when the entry is there.  ``f`` must pickle too
    (a function defined at the top level of a module, a Program, or text).
    """

    def __init__(self, f, kind: str, wrt, *, cache: bool | str | Path = True, options: dict):
        unknown = sorted(set(options) - set(OPTIMIZE_OPTIONS))
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; the optimiser takes "
                            f"{', '.join(OPTIMIZE_OPTIONS)}")
        if options.get("backend") is not None:      # an unknown or uninstalled backend: say so now
            from .backend.registry import require_backend
            require_backend(options["backend"])
        self.kind = kind
        self.options = dict(options)
        self._cache_dir = _resolve_cache(cache)
        self._fn: Callable | None = None
        self._primal: Program | None = None
        if isinstance(f, Program):
            self._primal = f
        elif isinstance(f, str):
            from .lang.syntax import parse
            self._primal = parse(f)
        elif callable(f):
            self._fn = f
        else:
            raise TypeError(f"expected a Program, program text or a Python function, got "
                            f"{type(f).__name__}")
        if self._primal is not None:
            from .ad.api import prepare
            self._primal = prepare(self._primal)
            self.params = tuple(p.name for p in self._primal.params)
        else:
            self.params = _python_params(f)
        self.name = getattr(f, "__name__", None) or "f"
        self.wrt, self._several = _resolve_wrt(wrt, self.params)
        tangents = len(self.wrt) if kind.startswith("jvp") else 0
        self.arity = len(self.params) + tangents
        self.arg_names = self.params + tuple("d" + w for w in self.wrt)[:tangents]
        self._derivative: Program | None = None        # per primal program (text input only)
        self._fast: dict[tuple, Callable] = {}
        self.specializations: dict[tuple, Specialization] = {}
        self._last: Specialization | None = None

    # -- pickling: what was built stays behind (the disk cache has it) --------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_fast={}, specializations={}, _last=None, _derivative=None)
        return state

    # -- calling ------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if kwargs:
            args = self._by_keyword(args, kwargs)
        try:
            fn = self._fast[tuple([a.shape for a in args])]
        except (AttributeError, KeyError):
            return self._slow(args)
        return fn(*args)

    def _by_keyword(self, args: tuple, kwargs: dict) -> tuple:
        given = dict(zip(self.arg_names, args))
        for k, v in kwargs.items():
            if k not in self.arg_names:
                raise ShapeError(f"{self._what()} has no parameter {k!r} (parameters: "
                                 f"{', '.join(self.arg_names)})")
            if k in given:
                raise ShapeError(f"{self._what()}: argument {k!r} given twice")
            given[k] = v
        missing = [n for n in self.arg_names if n not in given]
        if missing:
            raise ShapeError(f"{self._what()}: missing argument(s) {', '.join(missing)}")
        return tuple(given[n] for n in self.arg_names)

    def _slow(self, args: tuple):
        if len(args) != self.arity:
            raise ShapeError(f"{self._what()} takes {self.arity} argument(s) "
                             f"({', '.join(self.arg_names)}), got {len(args)}")
        from .frontend.trace import example_shape
        shapes = tuple(example_shape(n, a) for n, a in zip(self.arg_names, args))
        fn = self._fast.get(shapes)
        if fn is None:
            spec = self._specialize(shapes, args)
            self.specializations[shapes] = spec
            self._last = spec
            fn = _with_output(spec.compiled, self.kind, len(self.wrt), self._several)
            self._fast[shapes] = fn
        return fn(*args)

    def _what(self) -> str:
        kind = {"grad": "grad_fn", "value_and_grad": "value_and_grad_fn"}.get(self.kind, "jvp_fn")
        return f"{kind}({self.name})"

    # -- what was built -----------------------------------------------------------------
    def _need_last(self) -> Specialization:
        if self._last is None:
            raise EqsatError(f"{self._what()} has not been called yet: it is built for the "
                             f"shapes of its first call")
        return self._last

    @property
    def program(self) -> Program:
        """The optimised program of the latest specialisation."""
        return self._need_last().program

    @property
    def report(self):
        """The optimiser's report of the latest specialisation."""
        return self._need_last().report

    @property
    def source(self) -> str:
        """The generated code of the latest specialisation (NumPy, or the ``backend`` option's)."""
        return self._need_last().source

    def __repr__(self) -> str:
        wrt = self.wrt if self._several else self.wrt[0]
        return (f"<{self._what()} wrt {wrt!r}: {len(self.specializations)} shape signature(s) "
                f"compiled>")

    # -- building ---------------------------------------------------------------------
    def _primal_for(self, shapes: tuple) -> Program:
        if self._primal is not None:
            return self._primal
        from .frontend.trace import example_types, trace
        types = example_types(dict(zip(self.params, shapes[:len(self.params)])))
        fn = self._fn

        def traced(**args):             # the parameters without a default value
            return fn(**args)
        traced.__name__ = self.name
        traced.__signature__ = inspect.Signature(
            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in self.params])
        try:
            return trace(traced, **types)
        except (TypeCheckError, TypeError) as e:
            shown = ", ".join(f"{n}: {s}" for n, s in zip(self.params, shapes))
            raise type(e)(f"{self.name} traced with shapes ({shown}): {e}") from None

    def _derivative_of(self, primal: Program) -> Program:
        if self._primal is not None and self._derivative is not None:
            return self._derivative
        from . import ad
        wrt = list(self.wrt) if self._several else self.wrt[0]
        if self.kind == "grad":
            d = ad.grad(primal, wrt)
        elif self.kind == "value_and_grad":
            g = ad.grad(primal, wrt)
            d = Program(primal.params, Pair(primal.body, g.body))
        else:
            d = ad.jvp(primal, list(self.wrt), with_primal=self.kind == "jvp_primal")
        if self._primal is not None:
            self._derivative = d
        return d

    def _specialize(self, shapes: tuple, args: tuple) -> Specialization:
        t0 = time.perf_counter()
        primal = self._primal_for(shapes)
        deriv = self._derivative_of(primal)
        if self.kind.startswith("jvp"):     # the tangents' names as ea.jvp chose them
            self.arg_names = tuple(p.name for p in deriv.params)
        from .runtime import bind_inputs
        from .lang.types import size_names
        env = bind_inputs(deriv, args)          # a wrong rank or size names the parameter
        sizes = {n: int(env[n]) for p in deriv.params for n in size_names(p.type)}
        key = _cache_key(deriv, sizes, self.options)
        path = self._cache_dir / "derivatives" / f"{key}.json" if self._cache_dir else None
        known = _MEMORY.get(key)
        if known is not None:
            note = _store_entry(path, key, known) if path is not None and not path.exists() else ""
            return dataclasses.replace(known, shapes=shapes, origin="memory", cache_note=note,
                                       cache_file=path, seconds=time.perf_counter() - t0)
        note = ""
        spec = None
        if path is not None and path.exists():
            spec, note = _load_entry(path, key, deriv, shapes, sizes, self.options.get("backend"))
        if spec is None:
            spec = _build(deriv, shapes, sizes, self.options)
            if path is not None:
                note = _store_entry(path, key, spec) or note
        spec.cache_note, spec.cache_file = note, path
        spec.seconds = time.perf_counter() - t0
        _MEMORY[key] = spec
        return spec


def _with_output(compiled, kind: str, k: int, several: bool) -> Callable:
    """The compiled function, or a wrapper giving its result the documented form: a tuple
    of ``k`` gradients for a tuple ``wrt`` (the program returns right-nested pairs)."""
    if not several or kind.startswith("jvp") or k == 2:
        return compiled

    def flat(g):
        if k == 1:
            return (g,)
        out = []
        for _ in range(k - 1):
            a, g = g
            out.append(a)
        return tuple(out) + (g,)
    if kind == "grad":
        return lambda *args: flat(compiled(*args))

    def value_and_grads(*args):
        v, g = compiled(*args)
        return v, flat(g)
    return value_and_grads


def _python_params(fn: Callable) -> tuple[str, ...]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise TypeError(f"cannot read the parameters of {fn!r}") from None
    names = []
    for p in sig.parameters.values():
        if p.default is not p.empty or p.kind == p.KEYWORD_ONLY:
            continue                # not traced: the function's own default is used
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{getattr(fn, '__name__', 'f')}: parameter {p.name!r} is "
                            f"{p.kind.description}; only plain parameters can be traced")
        names.append(p.name)
    if not names:
        raise TypeError(f"{getattr(fn, '__name__', 'f')} has no parameters to differentiate")
    return tuple(names)


def _resolve_wrt(wrt, params: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """``(names, several)``: the parameter names and whether a tuple was asked for."""
    def one(w) -> str:
        if isinstance(w, bool):
            raise ADError(f"wrt must be a parameter name or position, got {w!r}")
        if isinstance(w, int):
            if not -len(params) <= w < len(params):
                raise ADError(f"wrt={w}: there are {len(params)} parameters ({', '.join(params)})")
            return params[w]
        if isinstance(w, str):
            if w not in params:
                raise ADError(f"unknown parameter {w!r} to differentiate with respect to "
                              f"(parameters: {', '.join(params)})")
            return w
        raise ADError(f"wrt must be a parameter name or position, got {w!r}")
    if wrt is None:
        return (params[0],), False
    if isinstance(wrt, (str, int)):
        return (one(wrt),), False
    if isinstance(wrt, Sequence):
        names = tuple(one(w) for w in wrt)
        if not names or len(set(names)) != len(names):
            raise ADError(f"wrt must name distinct parameters, got {wrt!r}")
        return names, True
    raise ADError(f"wrt must be a parameter name or position or a tuple of them, got {wrt!r}")


def _build(deriv: Program, shapes: tuple, sizes: dict, options: dict) -> Specialization:
    from .backend import compile as compile_for
    from .optimize import optimize
    res = optimize(deriv, sizes=sizes, **options)
    return Specialization(shapes, sizes, deriv, res.program, compile_for(res.program, options.get("backend")),
                          res.report,
                          res.cost, res.cost_before, "built", 0.0)


# --------------------------------------------------------------------------------------
# the disk cache
# --------------------------------------------------------------------------------------
def cache_dir(cache: bool | str | Path = True) -> Path | None:
    """The directory of the disk cache: ``cache`` when it is a path, None when it is False
    or ``$EQSAT_AD_CACHE_DIR`` is ``off``, else ``$EQSAT_AD_CACHE_DIR``,
    ``$XDG_CACHE_HOME/eqsat-ad`` or ``~/.cache/eqsat-ad``."""
    return _resolve_cache(cache)


def _resolve_cache(cache) -> Path | None:
    if cache is False or cache is None:
        return None
    if cache is not True:
        return Path(cache).expanduser()
    env = os.environ.get(CACHE_ENV, "")
    if env.strip().lower() == "off":
        return None
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "eqsat-ad"


_FINGERPRINT: str | None = None


def _package_fingerprint() -> str:
    """The version and a hash of the names, sizes and modification times of the package's
    own files (code, rules, costs): an entry made by other code is never used, also between
    releases while developing.  Only ``stat``: reading every file would cost a new process
    more than the rest of a cache hit."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        from . import __version__
        root = Path(__file__).resolve().parent
        h = hashlib.sha256(__version__.encode())
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".py", ".egg", ".json")):
                    st = os.stat(os.path.join(dirpath, name))
                    rel = os.path.relpath(os.path.join(dirpath, name), root)
                    h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        _FINGERPRINT = f"{__version__}+{h.hexdigest()[:16]}"
    return _FINGERPRINT


def _file_digest(path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as e:
        raise EqsatError(f"cannot read {path}: {e.strerror or e}") from None


def _schedule_fingerprint(schedule) -> str:
    if schedule is None or isinstance(schedule, str) and schedule in ("default", "all",
                                                                      "saturate-all", "saturate_all"):
        return str(schedule)
    from .strategy.combinators import Strategy, to_egglog
    if isinstance(schedule, Strategy):
        return "strategy:" + to_egglog(schedule)
    return "file:" + _file_digest(schedule)


def _cost_model_fingerprint(model) -> str:
    if model is None:
        return "default"
    try:
        fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name != "meta"}
    except TypeError:
        fields = {"repr": repr(model)}
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}:" + json.dumps(fields, sort_keys=True, default=str)


def _cache_key(deriv: Program, sizes: dict, options: dict) -> str:
    """A hash of everything the optimised program depends on."""
    from .extract import DEFAULT_EXTRACTOR
    from .lang.syntax import show_program
    rules = options.get("rules")
    user = [rules] if isinstance(rules, (str, Path)) else list(rules or [])
    material = {
        "format": CACHE_FORMAT,
        "eqsat_ad": _package_fingerprint(),
        "program": show_program(deriv),
        "sizes": sorted(sizes.items()),
        "rules": [_file_digest(r) for r in user],
        "default_rules": bool(options.get("default_rules", True)),
        "schedule": _schedule_fingerprint(options.get("schedule")),
        "extractor": options.get("extractor", DEFAULT_EXTRACTOR),
        "cost_model": _cost_model_fingerprint(options.get("cost_model")),
        "limits": repr(options.get("limits")),
        "check": bool(options.get("check", True)),
        "backend": str(options.get("backend") or "numpy"),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:40]


def _report_dict(report) -> dict | None:
    try:
        return json.loads(json.dumps(report.to_dict(), default=str))
    except (TypeError, ValueError, AttributeError):
        return None


def _report_from_dict(d: dict):
    """A :class:`~eqsat_ad.driver.RunReport` from its ``to_dict`` (None if it does not fit)."""
    from .driver import PhaseReport, RunReport
    try:
        names = {f.name for f in dataclasses.fields(RunReport)}
        phase_names = {f.name for f in dataclasses.fields(PhaseReport)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["phases"] = [PhaseReport(**{k: v for k, v in p.items() if k in phase_names})
                        for p in d.get("phases", [])]
        return RunReport(**kw)
    except (TypeError, AttributeError):
        return None


def _store_entry(path: Path, key: str, spec: Specialization) -> str:
    """Write the entry for ``spec`` atomically; returns "" or why it was not written."""
    from .lang.syntax import show_program
    text = show_program(spec.program)
    entry = {"format": CACHE_FORMAT, "key": key,
             "program": text, "program_sha256": hashlib.sha256(text.encode()).hexdigest(),
             "cost": spec.cost, "cost_before": spec.cost_before, "sizes": spec.sizes,
             "report": spec.run_report if isinstance(spec.run_report, dict) else _report_dict(spec.run_report),
             "written": time.time()}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(entry, out)
        os.replace(tmp, path)          # atomic: a reader sees the old entry or the new one
        return ""
    except OSError as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        note = f"not written to the disk cache ({path.parent}): {e.strerror or e}"
        warnings.warn(f"eqsat-ad: {note}", RuntimeWarning, stacklevel=4)
        return note


def _load_entry(path: Path, key: str, deriv: Program, shapes: tuple,
                sizes: dict, backend: str | None = None) -> tuple[Specialization | None, str]:
    """The specialisation stored at ``path``, or ``(None, why not)``.  The stored program
    is data: it must parse, have the derivative's parameters and type, and compile."""
    from .backend import compile as compile_for
    from .lang.syntax import parse
    from .lang.typecheck import check_program
    try:
        entry = json.loads(path.read_text())
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or entry.get("key") != key:
            return None, f"ignored the disk cache entry {path.name}: another format or key"
        text = entry["program"]
        if hashlib.sha256(text.encode()).hexdigest() != entry.get("program_sha256"):
            return None, f"ignored the disk cache entry {path.name}: its program is damaged"
        prog = parse(text)
        if prog.params != deriv.params:
            return None, f"ignored the disk cache entry {path.name}: other parameters"
        if check_program(prog) != check_program(deriv):
            return None, f"ignored the disk cache entry {path.name}: another result type"
        compiled = compile_for(prog, backend)
    except (OSError, ValueError, KeyError, TypeError, EqsatError) as e:
        return None, f"ignored the disk cache entry {path.name}: {type(e).__name__}: {e}"
    report = entry["report"] if isinstance(entry.get("report"), dict) else None
    cost = entry.get("cost")
    cost_before = entry.get("cost_before")
    return Specialization(shapes, sizes, deriv, compiled.program, compiled, report,
                          cost if isinstance(cost, (int, float)) else None,
                          cost_before if isinstance(cost_before, (int, float)) else None,
                          "disk", 0.0), ""
