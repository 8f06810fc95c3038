"""pytest at the top of the checkout: the tests (tests/) and the module doctests of the
package (``--doctest-modules`` over eqsat_ad/, see pyproject.toml).

Not collected for doctests: the ``__main__`` modules (importing them runs the command) and
the benchmark peer workers (they import JAX or PyTorch, optional peers run in processes of
their own).
"""
collect_ignore_glob = [
    "eqsat_ad/__main__.py",
    "eqsat_ad/*/__main__.py",
    "eqsat_ad/bench/peers/*",
]


def _unavailable_backends() -> list[str]:
    """The modules of backends whose optional packages are not installed (``numba_backend.py``
    and its private ``_numba_*.py`` without Numba, ...): their doctests cannot import."""
    from eqsat_ad.backend.registry import BACKENDS
    out = []
    for b in BACKENDS.values():
        if b.available() is not None:
            out += [f"eqsat_ad/backend/{b.module.lstrip('.')}.py", f"eqsat_ad/backend/_{b.name}_*.py"]
    return out


collect_ignore_glob += _unavailable_backends()


_TEST_CACHE = []


def pytest_configure(config):
    """The tests never write to the user's cache: ``ea.grad_fn``'s disk cache goes to a
    directory of this session, removed at the end (``EQSAT_AD_CACHE_DIR=off`` is kept)."""
    import os
    import tempfile
    if os.environ.get("EQSAT_AD_CACHE_DIR") != "off":
        _TEST_CACHE.append(tempfile.mkdtemp(prefix="eqsat-ad-test-cache-"))
        os.environ["EQSAT_AD_CACHE_DIR"] = _TEST_CACHE[-1]


def pytest_unconfigure(config):
    import shutil
    for d in _TEST_CACHE:
        shutil.rmtree(d, ignore_errors=True)
