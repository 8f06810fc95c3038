"""The Dask backend: the NumPy backend's vectorised code on ``dask.array`` (docs/backend-dask.md).

Inputs may be dask arrays (kept lazy: nothing is computed to check them) or NumPy arrays /
lists (converted with ``da.from_array``, chunked along the *data axes*: the axes of the
largest size of the call -- ``N`` of ``X : (mat N d)``, ``y : (vec N)`` -- so that every
input is cut at the same rows and blocks line up without rechunking).  Results are lazy
dask arrays (a scalar result a 0-d one): compute them, or stream them to disk with
``da.store`` / ``da.to_npy_stack``, with any scheduler (threads, processes, a
``distributed`` cluster).

``chunks``: ``"auto"`` (Dask's ``array.chunk-size``, 128 MiB by default, per block of the
largest input), a number of rows along the data axes, a byte size (``"64MiB"``), or a dict
``{size name: rows}`` (then exactly those axes are chunked).

Sequential loops (an ``ifold`` that is not a reduction: a Python ``for`` in the generated
code) run eagerly in Python, each iteration adding its operations to the graph: longer than
``max_loop_iterations`` they are refused with a message saying so.  Where the code decides
something in Python, the value is computed when the function is called: here, reading no
data, when it comes from index ranges alone (a bounds check of ``x[i + k]``); with the
active scheduler when it comes from the data (an ``argmin`` checked for range).

>>> import numpy as np
>>> from eqsat_ad.lang.syntax import parse
>>> f = compile(parse("(fun ((x (vec n))) (build n (lambda (i) (exp (get x i)))))"), chunks=2)
>>> r = f(np.zeros(5))
>>> r.chunks, r.compute()
(((2, 2, 1),), array([1., 1., 1., 1., 1.]))
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import EqsatError
from ._xp import Namespace, XpProgram, array_api, compile_for
from ._xp import generate_source as source_for

__all__ = ["array_namespace", "compile", "data_chunks", "generate_source"]

#: sequential loops longer than this are refused (each iteration adds tasks to the graph)
MAX_LOOP_ITERATIONS = 1000


def array_namespace():
    """The array module results come in: ``dask.array``."""
    import dask.array as da
    return da


def generate_source(prog) -> tuple[str, dict[str, Any]]:
    """The ``(source, globals)`` the Dask backend runs for ``prog``.

    >>> from eqsat_ad.lang.syntax import parse
    >>> src, glb = generate_source(parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))"))
    >>> "_addr(x, 0)" in src, glb["_addr"].__module__
    (True, 'eqsat_ad.backend._xp')
    """
    return source_for(_namespace("auto", MAX_LOOP_ITERATIONS), prog)


def compile(prog, *, chunks: Any = "auto", max_loop_iterations: int = MAX_LOOP_ITERATIONS) -> XpProgram:  # noqa: A001
    """``prog`` compiled to run on ``dask.array`` (see the module docstring for ``chunks``).

    >>> import dask.array as da
    >>> from eqsat_ad.lang.syntax import parse
    >>> f = compile(parse("(fun ((x (vec n)) (w real)) (build n (lambda (i) (* w (get x i)))))"))
    >>> f(da.ones(4, chunks=2), 3.0).compute()
    array([3., 3., 3., 3.])
    """
    _check_chunks(chunks)
    if not (isinstance(max_loop_iterations, int) and max_loop_iterations >= 0):
        raise EqsatError(f"max_loop_iterations must be a non-negative int, got {max_loop_iterations!r}")
    return compile_for(_namespace(chunks, max_loop_iterations), prog)


def _check_chunks(chunks: Any) -> None:
    ok = chunks == "auto" or (isinstance(chunks, int) and not isinstance(chunks, bool) and chunks > 0)
    if isinstance(chunks, str) and chunks != "auto":
        try:
            ok = _parse_bytes(chunks) > 0
        except ValueError:
            ok = False
    if isinstance(chunks, dict):
        ok = all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
                 for k, v in chunks.items())
    if not ok:
        raise EqsatError(f"chunks must be 'auto', a positive number of rows, a byte size such as "
                         f"'64MiB', or a dict {{size name: rows}}; got {chunks!r}")


def _parse_bytes(text: str) -> int:
    from dask.utils import parse_bytes
    return int(parse_bytes(text))


def data_chunks(chunks: Any, arrays: dict, dims: dict, sizes: dict) -> dict[str, int]:
    """Rows per block for each chunked size name (the others stay whole).

    ``arrays``: name -> NumPy array; ``dims``: name -> the size names of its axes; ``sizes``:
    size name -> extent.  Without a dict, the data axes are those of the largest size, and a
    byte target (``"auto"``: Dask's ``array.chunk-size``) bounds the largest input's block.

    >>> X, y = np.zeros((1000, 4)), np.zeros(1000)
    >>> data_chunks("8KiB", {"X": X, "y": y}, {"X": ("N", "d"), "y": ("N",)}, {"N": 1000, "d": 4})
    {'N': 256}
    >>> data_chunks(100, {"X": X}, {"X": ("N", "d")}, {"N": 1000, "d": 4})
    {'N': 100}
    """
    if isinstance(chunks, dict):
        return dict(chunks)
    if not sizes:
        return {}
    top = max(sizes.values())
    data = [s for s, v in sizes.items() if v == top]
    if isinstance(chunks, int):
        return {s: chunks for s in data}
    if chunks == "auto":
        import dask
        target = _parse_bytes(str(dask.config.get("array.chunk-size")))
    else:
        target = _parse_bytes(chunks)
    rows = top
    for name, a in arrays.items():
        k = sum(1 for s in dims[name] if s in data)
        if not k:
            continue
        other = a.itemsize * math.prod(n for n, s in zip(a.shape, dims[name]) if s not in data)
        rows = min(rows, int((target / max(other, 1)) ** (1.0 / k)))
    return {s: max(1, rows) for s in data}


def _leaves(values: dict) -> list:
    out: list = []

    def walk(v):
        if isinstance(v, tuple):
            for x in v:
                walk(x)
        else:
            out.append(v)
    for v in values.values():
        walk(v)
    return out


def _namespace(chunks: Any, max_loop_iterations: int) -> Namespace:
    import dask.array as da
    api = array_api("dask", "dask")

    def stage(arrays: dict, dims: dict, sizes: dict) -> dict:
        rows = data_chunks(chunks, arrays, dims, sizes)
        out = {}
        for name, a in arrays.items():
            blocks = tuple(rows.get(s, -1) if isinstance(s, str) else "auto" if s is None else -1
                           for s in dims[name])
            out[name] = da.from_array(a, chunks=blocks)
        return out

    def blocks(values: dict) -> dict:
        """Block lengths of the inputs by extent (the first input cut along it wins)."""
        out: dict = {}
        for v in _leaves(values):
            if isinstance(v, da.Array):
                for n, c in zip(v.shape, v.chunks):
                    if len(c) > 1:
                        out.setdefault(n, c)
        return out

    def concrete(v, inputs: dict):
        """``v`` computed for a decision in Python: from index ranges alone (a bounds check
        of index arithmetic, a guard on positions) synchronously here -- no data is read --
        else with the active scheduler (a decision on the data itself)."""
        layers = v.__dask_graph__().layers
        reads = any(isinstance(a, da.Array) and a.name in layers for a in _leaves(inputs))
        return np.asarray(v.compute() if reads else v.compute(scheduler="sync"))

    return Namespace("dask", xp=api(da.empty(0)), native=da, array_type=da.Array, stage=stage,
                     to_numpy=lambda v: np.asarray(v.compute()), mutable=False, check_alloc=False,
                     max_loop_iterations=max_loop_iterations, blocks=blocks, concrete=concrete,
                     options={"chunks": chunks, "max_loop_iterations": max_loop_iterations})
