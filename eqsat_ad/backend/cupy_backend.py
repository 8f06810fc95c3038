"""The CuPy backend: the NumPy backend's vectorised code on CuPy arrays (an NVIDIA GPU;
docs/backend-dask.md, "GPU").  Inputs may be CuPy arrays (kept on the device) or NumPy
arrays / lists (copied to it); results are CuPy arrays (a scalar result a 0-d one) that
never share memory with an input.  Tested only where a GPU is present.
"""
from __future__ import annotations

from typing import Any

from ._xp import Namespace, XpProgram, array_api, compile_for
from ._xp import generate_source as source_for

__all__ = ["array_namespace", "compile", "generate_source"]


def array_namespace():
    """The array module results come in: ``cupy``."""
    import cupy
    return cupy


def generate_source(prog) -> tuple[str, dict[str, Any]]:
    """The ``(source, globals)`` the CuPy backend runs for ``prog``."""
    return source_for(_namespace(), prog)


def compile(prog) -> XpProgram:  # noqa: A001
    """``prog`` compiled to run on CuPy arrays (the current CUDA device)."""
    return compile_for(_namespace(), prog)


def _namespace() -> Namespace:
    import cupy
    api = array_api("cupy", "gpu")

    def stage(arrays: dict, dims: dict, sizes: dict) -> dict:
        return {k: cupy.asarray(a) for k, a in arrays.items()}

    return Namespace("cupy", xp=api(cupy.empty(0)), native=cupy, array_type=cupy.ndarray, stage=stage,
                     to_numpy=cupy.asnumpy, mutable=True)
