"""The JAX backend: the NumPy backend's vectorised code on ``jax.numpy`` arrays, on JAX's
default device -- a GPU where one is present (docs/backend-dask.md, "JAX").

With ``jit=True`` (the default) the generated function is traced by ``jax.jit`` on the first
call at each shape (sizes, bounds checks on sizes and scalar inputs are decided while
tracing: the scalar inputs are static arguments); a program whose code must decide something
in Python from array *data* (an index computed from the data checked for range, a Python
``if`` on a data-dependent condition) cannot be traced and runs op by op instead, for good:
``fn.call_state["not_traced"]`` says why.

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

from ._xp import IMMUTABLE, Namespace, XpProgram, compile_for
from ._xp import generate_source as source_for

__all__ = ["array_namespace", "compile", "generate_source"]


def array_namespace():
    """The array module results come in: ``jax.numpy``."""
    import jax.numpy as jnp
    return jnp


def generate_source(prog) -> tuple[str, dict[str, Any]]:
    """The ``(source, globals)`` the JAX backend runs for ``prog``."""
    return source_for(_namespace(None, jit=False), prog)


def compile(prog, *, device: Any = None, jit: bool = True) -> XpProgram:  # noqa: A001
    """``prog`` compiled to run on JAX arrays (on ``device``, default JAX's default device),
    traced by ``jax.jit`` where it can be (see the module docstring)."""
    return compile_for(_namespace(device, jit), prog)


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
        try:
            return traced(*vals)
        except _data_dependent() as exc:
            state["not_traced"] = (f"the code decides something in Python from array data "
                                   f"({type(exc).__name__}); it runs op by op")
    return program._fn(program, *vals)


@functools.lru_cache(maxsize=1)
def _data_dependent() -> tuple:
    """JAX's errors of a Python decision on a traced value."""
    import jax
    e = jax.errors
    return (e.ConcretizationTypeError, e.TracerBoolConversionError, e.TracerIntegerConversionError,
            e.TracerArrayConversionError, e.NonConcreteBooleanIndexError)


def _namespace(device: Any, jit: bool = True) -> Namespace:
    import jax
    import jax.numpy as jnp

    def stage(arrays: dict, dims: dict, sizes: dict) -> dict:
        return {k: jax.device_put(jnp.asarray(a), device) if device is not None else jnp.asarray(a)
                for k, a in arrays.items()}

    return Namespace("jax", xp=jnp, native=jnp, array_type=jax.Array, stage=stage,
                     to_numpy=np.asarray, mutable=False, unsupported=IMMUTABLE,
                     context=lambda: jax.enable_x64(True), call=_jit_call if jit else None, host_indices=True,
                     options={"device": device, "jit": jit})
