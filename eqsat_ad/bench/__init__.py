"""Benchmarks: the micro-benchmark sweep, the suite against peers, extraction comparisons.

``eqsat_ad.bench.main(argv)`` is what ``eqsat-ad bench [--quick]`` runs (see
``docs/benchmarks.md``).  Modules: :mod:`~eqsat_ad.bench.specs` (programs, inputs,
hand-written gradients), :mod:`~eqsat_ad.bench.protocol` (timing, worker protocol),
:mod:`~eqsat_ad.bench.worker` (our worker process), :mod:`~eqsat_ad.bench.workers`
(process management), :mod:`~eqsat_ad.bench.runner` (the coordinator),
:mod:`~eqsat_ad.bench.report` (tables, slopes, plots, ``docs/benchmarks.md``) and
:mod:`~eqsat_ad.bench.cli` (the command line).
"""
from __future__ import annotations


def main(argv=None) -> int:
    """Run the benchmarks (``--quick`` for the reduced version); returns an exit code."""
    from .cli import main as _main
    return _main(argv)


__all__ = ["main"]
