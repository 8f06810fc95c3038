"""The JAX backend: the NumPy backend's vectorised code on ``jax.numpy`` arrays, op by op
(not traced by ``jax.jit``: the generated code decides sizes and bounds in Python), on
JAX's default device -- a GPU where one is present (docs/backend-dask.md, "GPU").

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

from typing import Any

import numpy as np

from ._xp import IMMUTABLE, Namespace, XpProgram, compile_for

__all__ = ["array_namespace", "compile", "generate_source"]


def array_namespace():
    """The array module results come in: ``jax.numpy``."""
    import jax.numpy as jnp
    return jnp


def generate_source(prog) -> tuple[str, dict[str, Any]]:
    """The ``(source, globals)`` the JAX backend runs for ``prog``."""
    from ._xp import globals_table
    from .numpy_backend import _GLOBALS
    from .numpy_backend import generate_source as np_source
    src, glb = np_source(prog, portable=True)
    table = globals_table(_namespace(None))
    table.update({k: v for k, v in glb.items() if k not in _GLOBALS})
    return src, table


def compile(prog, *, device: Any = None) -> XpProgram:  # noqa: A001
    """``prog`` compiled to run on JAX arrays (on ``device``, default JAX's default device)."""
    return compile_for(_namespace(device), prog)


def _namespace(device: Any) -> Namespace:
    import jax
    import jax.numpy as jnp

    def stage(arrays: dict, dims: dict, sizes: dict) -> dict:
        return {k: jax.device_put(jnp.asarray(a), device) if device is not None else jnp.asarray(a)
                for k, a in arrays.items()}

    return Namespace("jax", xp=jnp, native=jnp, array_type=jax.Array, stage=stage,
                     to_numpy=np.asarray, mutable=False, unsupported=IMMUTABLE,
                     context=lambda: jax.enable_x64(True), options={"device": device})
