"""What a backend provides, and the table of backends (docs/backend.md, "Backends").

A backend is one row of :data:`BACKENDS`: the module that generates and compiles code for
it, the optional extra that installs what it needs, and its calibrated cost table.  The
module provides

* ``compile(prog, **options)`` -> a callable program (``.source``, ``.program``,
  ``.fallback``, ``.backend``), taking the inputs positionally or by keyword, returning the
  interpreter's values (arrays of the backend's namespace);
* ``generate_source(prog)`` -> ``(source, globals)``, the code it would run;
* ``array_namespace()`` -> the array module its results belong to.

Everything else (``ea.compile(..., backend=)``, ``ea.optimize(..., backend=)``, the CLI's
``--backend``, the differential tests) reads this table.

>>> get_backend("numpy").name, get_backend("numpy").available() is None
('numpy', True)
>>> get_backend("fortran")
Traceback (most recent call last):
  ...
eqsat_ad.errors.EqsatError: unknown backend 'fortran'; the backends are: numpy, numba, dask, jax, cupy
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import EqsatError

_COST_DIR = Path(__file__).resolve().parent.parent / "cost"


@dataclass(frozen=True)
class Backend:
    """One backend: ``module`` implements it, ``requires`` are the importable packages it
    needs (``pip install eqsat-ad[extra]``), ``costs`` names its calibrated cost table in
    ``eqsat_ad/cost/`` (None: the NumPy table, for backends that run the NumPy code)."""
    name: str
    module: str
    summary: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    costs: str | None = None

    def available(self) -> str | None:
        """None when the backend can run here, else why not (a sentence naming the install)."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not missing:
            return None
        how = f"pip install 'eqsat-ad[{self.extra}]'" if self.extra else "pip install " + " ".join(missing)
        return f"the {self.name} backend needs {', '.join(missing)} ({how})"

    def implementation(self):
        """The backend's module (imports it; a clear error when its packages are missing)."""
        return importlib.import_module(require_backend(self).module, __package__)

    def compile(self, prog, **options):
        """``prog`` compiled for this backend."""
        return self.implementation().compile(prog, **options)

    def generate_source(self, prog):
        """The ``(source, globals)`` this backend would run for ``prog``."""
        return self.implementation().generate_source(prog)

    def array_namespace(self):
        """The array module results come in (``numpy``, ``dask.array``, ...)."""
        return self.implementation().array_namespace()

    def cost_model(self):
        """The cost model calibrated for this backend (``eqsat_ad/cost/<costs>``)."""
        return _cost_model(self.costs)


@lru_cache(maxsize=None)
def _cost_model(costs: str | None):
    from ..cost.model import CostModel, default_cost_model
    if costs is None:
        return default_cost_model()
    path = _COST_DIR / costs
    if not path.exists():
        raise EqsatError(f"no cost table {path.name} for this backend; run benchmarks/calibrate_costs.py")
    return CostModel.from_json(path)


#: The shipped backends, in the order ``--backend`` lists them.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("numpy", ".numpy_backend", "vectorised NumPy: every sub-term one array, reductions as NumPy calls"),
    Backend("numba", ".numba_backend", "fused loops compiled by Numba: no temporaries, prange where it pays",
            requires=("numba",), extra="numba", costs="opcosts-numba.json"),
    Backend("dask", ".dask_backend", "the NumPy code on dask.array: chunked along the data axes, larger than memory",
            requires=("dask", "array_api_compat"), extra="dask"),
    Backend("jax", ".jax_backend", "the NumPy code on jax.numpy arrays (CPU or GPU)",
            requires=("jax", "array_api_compat"), extra="jax"),
    Backend("cupy", ".cupy_backend", "the NumPy code on CuPy arrays (NVIDIA GPU)",
            requires=("cupy", "array_api_compat"), extra="gpu"),
)}


def backend_names() -> list[str]:
    """The backends' names, in table order."""
    return list(BACKENDS)


def get_backend(backend: "str | Backend | None") -> Backend:
    """The backend named ``backend`` (None: NumPy); a :class:`Backend` is returned as is."""
    if backend is None:
        return BACKENDS["numpy"]
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise EqsatError(f"unknown backend {backend!r}; the backends are: {', '.join(BACKENDS)}")
    return BACKENDS[backend]


def require_backend(backend: "str | Backend | None") -> Backend:
    """:func:`get_backend`, refused with an :class:`EqsatError` naming the extra to install
    when the backend's packages are missing."""
    b = get_backend(backend)
    why = b.available()
    if why is not None:
        raise EqsatError(why)
    return b


def to_numpy(value):
    """A backend's result as NumPy values: lazy (Dask) arrays computed, device (CuPy, JAX)
    arrays copied to the host, 0-d arrays as Python scalars, pairs component by component.

    >>> to_numpy((1.5, __import__("numpy").ones(2)))
    (1.5, array([1., 1.]))
    """
    if isinstance(value, tuple):
        return tuple(to_numpy(v) for v in value)
    root = type(value).__module__.split(".")[0]
    if root not in ("dask", "cupy", "jax", "jaxlib"):      # NumPy values, Python scalars, ragged lists
        return value
    if callable(getattr(value, "compute", None)):           # dask
        value = value.compute()
    if root == "cupy":
        value = value.get()
    import numpy as np
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else arr


def compile_for(prog, backend: "str | Backend | None" = None, **options: Any):
    """``prog`` compiled by ``backend`` (default NumPy)."""
    return get_backend(backend).compile(prog, **options)
