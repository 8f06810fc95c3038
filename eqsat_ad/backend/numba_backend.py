"""The fused CPU backend: the program's loops compiled by Numba (``docs/backend-numba.md``).

The generated kernel is the program's own loop nest (``eqsat_ad/backend/_numba_codegen.py``):
``build`` writes a preallocated array in a ``for`` loop, ``sum`` and ``ifold`` are
accumulator loops, every sub-term is a scalar local, so an elementwise chain and its
reductions run as one loop with no temporary arrays; loop-invariant sub-terms are computed
once, outside the loops.  It is compiled with ``numba.njit(fastmath=False,
error_model="numpy")``: IEEE 754 arithmetic as in NumPy (``1/0`` is ``inf``, ``log(-1)`` is
``nan``, no exceptions).  A small Python wrapper checks and converts the inputs exactly as
the NumPy backend does, calls the kernel, and turns its errors into the interpreter's.

Compiled kernels are cached on disk (the user cache directory of ``ea.grad_fn``:
``$EQSAT_AD_CACHE_DIR``, else ``~/.cache/eqsat-ad``; ``cache=False`` or
``EQSAT_AD_CACHE_DIR=off`` turn it off): the kernel's source is written to
``<cache>/numba/k_<hash>.py`` (the hash covers the source and the Numba and Python versions)
and imported from there with ``njit(cache=True)``, so another process loads the machine code
instead of compiling it again.

Programs the loop generator does not handle (a ragged ``build``) or that Numba rejects run
on the NumPy backend; ``fn.fallback`` says why.

>>> from eqsat_ad.lang.syntax import parse
>>> f = compile(parse("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (get x i)))))"), cache=False)
>>> f([1.0, 2.0]), f.backend, f.fallback
(array([2., 4.]), 'numba', None)
>>> g = compile(parse("(fun ((x (vec n))) (build n (lambda (i) (build i (lambda (j) (get x j))))))"))
>>> g.fallback
'a build whose size depends on an index variable (a ragged array); the NumPy backend runs it (...)'
"""
from __future__ import annotations

import builtins
import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .. import runtime as _runtime
from ..errors import EvalError, ResourceLimitError
from ..lang.ast import Program
from ..lang.types import ArrayT, PairT
from ._numba_codegen import Kernel, default_names, generate_kernel, param_leaves
from ._values import _Unsupported
from .numpy_backend import _MISSING, CompiledProgram, _prologue

__all__ = ["PARALLEL_MIN_ELEMENTS", "NumbaProgram", "array_namespace", "compile", "generate_source"]

#: ``parallel=None``: the parallel kernel (``prange`` over the outermost builds) is used for
#: calls whose array inputs hold at least this many elements in all, when Numba has more
#: than one thread; smaller calls run the serial kernel (starting threads costs more).
PARALLEL_MIN_ELEMENTS = 1 << 17

_LOCK = threading.Lock()
_NP_DTYPE = {"f": np.float64, "i": np.int64, "b": np.bool_}


def _refcounts_work() -> bool:
    """Does ``sys.getrefcount`` count references as the pool (``NumbaProgram._take``) assumes
    (CPython with its GIL)?  Otherwise the pool is off: every call allocates."""
    if getattr(sys, "_is_gil_enabled", lambda: True)() is False:
        return False
    a = np.empty(1)
    b = a
    with_b = sys.getrefcount(a)
    del b
    return with_b - sys.getrefcount(a) == 1 and sys.getrefcount(a) == 2


_POOL_OK = _refcounts_work()
_LOADED: dict[tuple, Any] = {}       # (source hash, cached?) -> compiled kernel dispatcher


def array_namespace():
    """The array module results come in: NumPy."""
    return np


class NumbaProgram(CompiledProgram):
    """A program compiled by the Numba backend: call it with the inputs, positionally or
    by keyword.  ``source`` is the kernel module and the Python wrapper that calls it,
    ``program`` the (elaborated) program, ``fallback`` None or why the NumPy backend runs
    it instead, ``parallel`` whether a ``prange`` kernel is used (None: for large calls)."""
    backend = "numba"
    parallel: bool | None = False

    def __reduce__(self):
        return (_rebuild, (self._input_program, self._options))

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.program.params)
        return f"<NumbaProgram ({names})" + (" on the NumPy backend>" if self.fallback else ">")

    def _kernel_error(self, exc: BaseException) -> Exception:
        """The interpreter's error for an error the kernel raised."""
        args = exc.args
        if isinstance(exc, IndexError) and len(args) == 3:
            k, n, which = args
            return EvalError(f"index {k} out of range for array of length {n} in {self._kernel.gets[which]}")
        if isinstance(exc, ZeroDivisionError) and len(args) == 1 and isinstance(args[0], int):
            return EvalError(f"integer division by zero in {self._kernel.divs[args[0]]}")
        if isinstance(exc, MemoryError) and len(args) == 2:
            count, which = args
            try:
                _runtime.check_alloc(int(count), self._kernel.allocs[which])
            except ResourceLimitError as err:      # with the usual message
                return err
        return EvalError(f"the compiled program failed: {type(exc).__name__}: {exc}")

    # -- the pool: the kernel's arrays reused from one call to the next ------------------------
    def _take(self) -> list:
        """Per pool slot (``Kernel.pool``), the array an earlier call left there when nothing
        else refers to it any more (its result was dropped: no reference to the array, to a
        view of it, nor to its memory), else an empty array (the kernel allocates a new one).
        Reusing it saves the page faults of fresh memory on every call (what XLA's buffer
        allocator does); a result still referenced is never written."""
        slots = self._slots
        with self._plock:                     # (each array is taken by one call only)
            taken = slots.copy()
            slots[:] = self._nones
        out = []
        for k, e in enumerate(self._empties):
            a = taken[k]
            taken[k] = None
            if sys.getrefcount(a) == 2:          # this local and the argument
                b = a.base
                if b is None or (not isinstance(b, np.ndarray) and sys.getrefcount(b) == 3
                                 and getattr(b, "refcount", 0) == 1):
                    out.append(a)
                    continue
            del a
            out.append(np.empty(*e))
        return out

    def _keep(self, r: tuple) -> None:
        """Keep this call's arrays for the next call (``_take``)."""
        if _POOL_OK:
            slots = self._slots
            for k, x in enumerate(self._kept):
                slots[k] = r[x]

    def _parallel_kernel(self):
        """The ``prange`` kernel, compiled on first use (the serial one if that fails)."""
        k = self.__dict__.get("_par")
        if k is None:
            try:
                kern = generate_kernel(self.program, parallel=True, names=self._names)
                if kern.pool != self._kernel.pool:
                    raise ValueError("another pool layout")
                k = _load(kern, self._options.get("cache", True))
            except Exception:          # noqa: BLE001 - Numba's own errors: keep the serial kernel
                k = self._serial
            self._par = k
        return k


def _rebuild(prog: Program, options: dict):
    return compile(prog, **options)


# ---------------------------------------------------------------------------------------
# kernels: generated source -> compiled dispatcher (disk cache)
# ---------------------------------------------------------------------------------------
def _numba_types(kernel: Kernel):
    from numba import types
    scal = {"f": types.float64, "i": types.int64, "b": types.boolean}
    return tuple(scal[k] if r == 0 else types.Array(scal[k], r, "C") for k, r in kernel.arg_types)


def kernel_key(kernel: Kernel) -> str:
    """The cache key of a kernel: its source, the Numba and Python versions."""
    import numba
    h = hashlib.sha256(kernel.source.encode())
    h.update(f"\0numba {numba.__version__}\0python {sys.version}\0".encode())
    return h.hexdigest()[:32]


def kernel_dir(cache: bool | str | Path = True) -> Path | None:
    """Where kernels are cached (``<user cache>/numba``), or None when caching is off."""
    from ..functions import cache_dir
    d = cache_dir(cache)
    return None if d is None else d / "numba"


def _load(kernel: Kernel, cache: bool | str | Path = True):
    """The compiled kernel: from this process's table, from the disk cache, or compiled
    now (and written to the cache)."""
    key = kernel_key(kernel)
    directory = kernel_dir(cache) if cache is not False else None
    memo = (key, str(directory))
    with _LOCK:
        hit = _LOADED.get(memo)
        if hit is not None:
            return hit
        ns = None
        if directory is not None:
            try:
                ns = _import_cached(kernel, key, directory)
            except OSError:
                ns = None                 # an unwritable cache: compile in memory
        if ns is None:
            ns = {}
            code = builtins.compile(kernel.source.replace("_CACHE = True", "_CACHE = False"),
                                    f"<eqsat_ad numba kernel {key[:12]}>", "exec")
            exec(code, ns)                                                   # noqa: S102
        disp = ns["_kernel"]
        _numba_start()
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")        # NumbaWarnings (e.g. an uncachable function)
            disp.compile(_numba_types(kernel))
        disp.disable_compile()
        _LOADED[memo] = disp
        return disp


_STARTED = False


def _numba_start() -> None:
    """Numba's one-time start-up (its CPU target's typing and lowering registries), without
    importing ``scipy.linalg``.  Numba checks for BLAS while registering its NumPy functions
    (``numba.np.arraymath._check_blas``: ``import scipy.linalg.cython_blas``), which imports
    the whole ``scipy.linalg`` package -- about half of the start-up, before any cached kernel
    can be loaded, and unused by our kernels.  Here the ``cython_blas`` extension module alone
    is loaded under its name for that check (Numba finds BLAS as before), then its entry is
    dropped from ``sys.modules``, so a later ``import scipy.linalg.cython_blas`` (Numba's
    own, for ``np.dot``, or the user's) imports the package as usual.  Anything unexpected:
    the usual start-up."""
    global _STARTED
    if _STARTED:
        return
    _STARTED = True
    name = "scipy.linalg.cython_blas"
    mod = None
    try:
        if "numba.np.arraymath" not in sys.modules and "scipy.linalg" not in sys.modules \
                and name not in sys.modules:
            import importlib.machinery
            spec = importlib.util.find_spec("scipy")
            if spec is not None and spec.submodule_search_locations:
                d = Path(next(iter(spec.submodule_search_locations))) / "linalg"
                path = next((d / f"cython_blas{suf}" for suf in importlib.machinery.EXTENSION_SUFFIXES
                             if (d / f"cython_blas{suf}").exists()), None)
                if path is not None:
                    espec = importlib.util.spec_from_file_location(name, path)
                    mod = importlib.util.module_from_spec(espec)
                    sys.modules[name] = mod
                    espec.loader.exec_module(mod)
    except Exception:          # noqa: BLE001 - the usual start-up below imports it as usual
        if sys.modules.get(name) is mod:
            sys.modules.pop(name, None)
        mod = None
    try:
        from numba.core.registry import cpu_target
        cpu_target.target_context.refresh()
    finally:
        if mod is not None and sys.modules.get(name) is mod:
            del sys.modules[name]


def _import_cached(kernel: Kernel, key: str, directory: Path) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"k_{key}.py"
    if not path.exists():
        # written once, atomically: Numba's cache index is keyed by the file's time stamp
        tmp = directory / f".k_{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(kernel.source)
        os.replace(tmp, path)
    name = f"_eqsat_ad_numba_k_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    # registered first: Numba's cache refers to the kernel's module by name
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return vars(mod)


# ---------------------------------------------------------------------------------------
# the wrapper: input checks (the NumPy backend's), the kernel call, the result
# ---------------------------------------------------------------------------------------
def _wrapper_source(prog: Program, kernel: Kernel, py: dict, size_py: dict, parallel) -> str:
    names = [p.name for p in prog.params]
    safe = all(py[n] == n for n in names)
    prologue, _ = _prologue(prog, py, size_py)
    if safe:
        sig = ", ".join(f"{n}=_M" for n in names)
        missing = " or ".join([f"{n} is _M" for n in names] + ["_more", "_extra"])
        head = [f"def _run(self{', ' if sig else ''}{sig}, *_more, **_extra):",
                f"    if {missing}:",
                f"        return self._recall(({', '.join(names)}{',' if len(names) == 1 else ''}), _more, _extra)"]
    else:
        head = ["def _run(self, /, *_args, **_kwargs):",
                f"    if _kwargs or len(_args) != {len(names)}:",
                "        return self._generic(_args, _kwargs)"]
        if names:
            head.append(f"    {', '.join(py[n] for n in names)}{',' if len(names) == 1 else ''} = _args")
    body = list(prologue)
    arrays = []
    for p in prog.params:
        if isinstance(p.type, PairT):              # the kernel takes a pair's components
            body.append(_unpack(py[p.name], p.type))
    for _pname, code, t in param_leaves(prog, py):
        if isinstance(t, ArrayT):
            arrays.append(code)
            # the kernel is compiled for writeable C-ordered arrays (the converted inputs are;
            # Numba types a read-only array apart: a view of a JAX array, a broadcast)
            body.append(f"_fl = {code}.flags")
            body.append(f"if not (_fl.c_contiguous and _fl.writeable): {code} = _contig({code})")
    lim = kernel.args.index("_lim")
    call_args = ", ".join(kernel.args[:lim] + ["_lim()"] + (["*_ps"] if kernel.pool else []))
    if kernel.pool:
        body.append("_ps = self._take()")
    kern = "_kernel"
    if parallel is None and arrays:
        body.append(f"_k = _kernel if {' + '.join(a + '.size' for a in arrays)} < {PARALLEL_MIN_ELEMENTS} "
                    "or _threads() < 2 else self._parallel_kernel()")
        kern = "_k"
    body += ["try:",
             f"    _r = {kern}({call_args})",
             "except Exception as _exc:",
             "    raise self._kernel_error(_exc) from None"]
    if kernel.pool:
        body.append("self._keep(_r)")
    body += [f"return {_out_expr(kernel.out, iter(range(10 ** 9)))}"]
    return "\n".join(head + ["    " + ln for ln in body]) + "\n"


def _unpack(code: str, t) -> str:
    """``a_0, a_1 = a`` for a pair parameter (nested pairs component by component)."""
    lines = [f"{code}_0, {code}_1 = {code}"]
    for k, sub in ((0, t.fst), (1, t.snd)):
        if isinstance(sub, PairT):
            lines.append(_unpack(f"{code}_{k}", sub))
    return "; ".join(lines)


def _out_expr(tree, counter) -> str:
    if isinstance(tree, list):
        return f"({_out_expr(tree[0], counter)}, {_out_expr(tree[1], counter)})"
    return f"_r[{next(counter)}]"


def _threads() -> int:
    import numba
    return numba.get_num_threads()


def _contig(a: np.ndarray) -> np.ndarray:
    """A C-ordered, writeable copy (the kernel never writes it)."""
    return np.array(a, order="C")


def _lim() -> int:
    return _runtime.max_array_bytes() // 8


def generate_source(prog: Program, parallel: bool = False) -> tuple[str, dict[str, Any]]:
    """The kernel module and the wrapper that calls it (one text), and the wrapper's
    globals (``_kernel`` is bound when it is compiled).  Raises the loop generator's
    ``_Unsupported`` for programs :func:`compile` runs on the NumPy backend.

    >>> from eqsat_ad.lang.syntax import parse
    >>> src, _ = generate_source(parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))"))
    >>> "for i in range(" in src and "_vexp(" in src
    True
    """
    from ..lang.typecheck import elaborate
    prog = elaborate(prog)
    py, size_py = default_names(prog)
    kernel = generate_kernel(prog, parallel=bool(parallel), names=(py, size_py))
    src, glb, _ = _sources(prog, kernel, py, size_py, parallel)
    return src, glb


def _sources(prog, kernel, py, size_py, parallel) -> tuple[str, dict, str]:
    """The text shown as ``source`` (the kernel module, then the wrapper as comments), the
    wrapper's globals, and the wrapper's own source."""
    wrapper = _wrapper_source(prog, kernel, py, size_py, parallel)
    _, consts = _prologue(prog, py, size_py)
    glb = {"_M": _MISSING, "_cin": _runtime.convert_input, "_nd": np.ndarray,
           "_f64": np.dtype(np.float64), "_i64": np.dtype(np.int64), "_contig": _contig,
           "_lim": _lim, "_threads": _threads, **consts}
    src = (kernel.source + "\n\n# --- the Python wrapper (checks the inputs, calls _kernel) ---\n"
           + "".join("# " + ln + "\n" if ln else "#\n" for ln in wrapper.splitlines()))
    return src, glb, wrapper


def compile(prog: Program, *, parallel: bool | None = None, cache: bool | str | Path = True) -> NumbaProgram:
    """Compile ``prog`` to a fused Numba kernel (see the module docstring).

    ``parallel``: True -- the outermost ``build`` loops are ``prange`` loops; False -- serial;
    None -- serial, and the parallel kernel for calls with at least
    :data:`PARALLEL_MIN_ELEMENTS` input elements when Numba has several threads.
    ``cache``: keep compiled kernels on disk (True: the user cache directory; a path; False).

    >>> from eqsat_ad.lang.syntax import parse
    >>> f = compile(parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"))
    >>> f(x=[1.0, 2.0, 3.0])
    14.0
    """
    from ..lang.typecheck import elaborate
    options = {"parallel": parallel, "cache": cache}
    prog2 = elaborate(prog)
    py, size_py = default_names(prog2)
    try:
        kernel = generate_kernel(prog2, parallel=bool(parallel), names=(py, size_py))
    except _Unsupported as exc:
        return _fallback(prog, prog2, str(exc), options)
    try:
        disp = _load(kernel, cache)
    except Exception as exc:          # noqa: BLE001 - whatever Numba rejects: the NumPy backend
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _fallback(prog, prog2, f"Numba could not compile the kernel ({type(exc).__name__}: "
                                      f"{first[:200]})", options)
    src, glb, wrapper = _sources(prog2, kernel, py, size_py, parallel)
    glb["_kernel"] = disp
    ns: dict[str, Any] = {}
    exec(builtins.compile(wrapper, "<eqsat_ad numba wrapper>", "exec"), glb, ns)   # noqa: S102
    fn = ns["_run"]
    cls = type("NumbaProgram", (NumbaProgram,), {"__call__": fn, "_positional": fn})
    obj = cls.__new__(cls)
    obj.source, obj.program, obj.fallback = src, prog2, None
    obj.parallel = parallel
    obj._input_program, obj._options, obj._names = prog, options, (py, size_py)
    obj._kernel, obj._serial = kernel, disp
    obj._slots, obj._plock, obj._n_out = [None] * len(kernel.pool), threading.Lock(), _count_leaves(kernel.out)
    obj._nones = obj._slots.copy()
    # per pool slot, np.empty's arguments for an empty array of its kind and rank (the kernel
    # allocates when it is handed one)
    obj._empties = [((0,) * rank, _NP_DTYPE[dt]) for dt, rank, _where in kernel.pool]
    # per pool slot, where the kernel's result tuple holds its array: scratch arrays after the
    # result's leaves, in order; a result leaf at its own place
    scratch = iter(range(obj._n_out, obj._n_out + len(kernel.pool)))
    obj._kept = [next(scratch) if where is None else where for _dt, _rank, where in kernel.pool]
    return obj


def _count_leaves(tree) -> int:
    return _count_leaves(tree[0]) + _count_leaves(tree[1]) if isinstance(tree, list) else 1


def _fallback(prog: Program, prog2: Program, why: str, options: dict) -> NumbaProgram:
    from .numpy_backend import compile as np_compile
    inner = np_compile(prog)
    reason = f"{why}; the NumPy backend runs it" + (f" ({inner.fallback})" if inner.fallback else "")

    def _run(self, /, *args, **kwargs):
        return inner(*args, **kwargs)
    cls = type("NumbaProgram", (NumbaProgram,), {"__call__": _run})
    obj = cls.__new__(cls)
    obj.source = (f"# The Numba backend does not compile this program ({why});\n"
                  f"# it runs on the NumPy backend:\n" + inner.source)
    obj.program, obj.fallback, obj.parallel = prog2, reason, False
    obj._input_program, obj._options = prog, options
    return obj

