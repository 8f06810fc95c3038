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
