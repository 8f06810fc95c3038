"""The JAX backend: the NumPy backend's vectorised code on ``jax.numpy`` arrays, on JAX's
default device -- a GPU where one is present (docs/backend-dask.md, "JAX").

With ``jit=True`` (the default) the generated function is traced by ``jax.jit`` on the first
call at each shape (sizes, bounds checks on sizes and scalar inputs are decided while
tracing: the scalar inputs are static arguments); a program whose code must decide something
in Python from array *data* (an index computed from the data checked for range, a Python
``if`` on a data-dependent condition) cannot be traced and runs op by op instead, for good:
``fn.call_state["not_traced"]`` says why.  Tracing unrolls sequential loops: one of more
than ``max_traced_loop`` iterations runs op by op too.

Arrays are 64-bit (every call runs in ``jax.enable_x64``), as in the NumPy backend and the
interpreter.  JAX arrays are immutable: a program whose code writes into an array in place
(the states of a ``scan``) runs with the NumPy backend and says so in ``.fallback``.
Results are JAX arrays (a scalar result a 0-d one).

>>> from eqsat_ad.lang.syntax import parse
>>> f = compile(parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"))
>>> r = f([1.0, 2.0, 3.0])
>>> r.dtype, float(r)
(dtype('float64'), 14.0)
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ._xp import IMMUTABLE, LoopTooLongToTrace, Namespace, XpProgram, compile_for
from ._xp import generate_source as source_for

__all__ = ["array_namespace", "compile", "generate_source"]


def array_namespace():
    """The array module results come in: ``jax.numpy``."""
    import jax.numpy as jnp
    return jnp


def generate_source(prog) -> tuple[str, dict[str, Any]]:
    """The ``(source, globals)`` the JAX backend runs for ``prog``."""
    return source_for(_namespace(None, jit=False), prog)


#: tracing unrolls sequential loops: a longer one runs op by op instead (a 1,000-iteration
#: loop takes ~5 s to trace and compile here, ~0.3 s op by op)
MAX_TRACED_LOOP = 256


def compile(prog, *, device: Any = None, jit: bool = True,  # noqa: A001
            max_traced_loop: int = MAX_TRACED_LOOP) -> XpProgram:
    """``prog`` compiled to run on JAX arrays (on ``device``, default JAX's default device),
    traced by ``jax.jit`` where it can be (see the module docstring)."""
    return compile_for(_namespace(device, jit, max_traced_loop), prog)


def _jit_call(program, vals: list):
    """Call the generated function traced by ``jax.jit`` (one trace per set of static
    arguments and shapes, cached by JAX); op by op once tracing has failed for data."""
    import jax
    state = program.call_state
    if "not_traced" not in state:
        static = tuple(k for k, v in enumerate(vals) if isinstance(v, (bool, int, float)))
        traced = state.get(static)
        if traced is None:
            fn = program._fn
            traced = state[static] = jax.jit(lambda *a: fn(program, *a), static_argnums=static)
        ns = program.namespace
        ns.tracing = True          # (Python runs only while JAX traces; later calls are compiled)
        try:
            return traced(*vals)
        except _data_dependent() as exc:
            state["not_traced"] = (f"the code decides something in Python from array data "
                                   f"({type(exc).__name__}); it runs op by op")
        except LoopTooLongToTrace as exc:
            state["not_traced"] = f"{exc}; it runs op by op"
        finally:
            ns.tracing = False
    return program._fn(program, *vals)


@functools.lru_cache(maxsize=1)
def _data_dependent() -> tuple:
    """JAX's errors of a Python decision on a traced value."""
    import jax
    e = jax.errors
    return (e.ConcretizationTypeError, e.TracerBoolConversionError, e.TracerIntegerConversionError,
            e.TracerArrayConversionError, e.NonConcreteBooleanIndexError)


def _namespace(device: Any, jit: bool = True, max_traced_loop: int = MAX_TRACED_LOOP) -> Namespace:
    import jax
    import jax.numpy as jnp

    def stage(arrays: dict, dims: dict, sizes: dict) -> dict:
        return {k: jax.device_put(jnp.asarray(a), device) if device is not None else jnp.asarray(a)
                for k, a in arrays.items()}

    return Namespace("jax", xp=jnp, native=jnp, array_type=jax.Array, stage=stage,
                     to_numpy=np.asarray, mutable=False, unsupported=IMMUTABLE,
                     context=lambda: jax.enable_x64(True), call=_jit_call if jit else None, host_indices=True,
                     max_traced_loop=max_traced_loop,
                     options={"device": device, "jit": jit, "max_traced_loop": max_traced_loop})
