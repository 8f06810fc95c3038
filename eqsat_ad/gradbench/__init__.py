"""eqsat-ad as a GradBench tool (https://github.com/gradbench/gradbench): ``eqsat-ad
gradbench`` or ``python -m eqsat_ad.gradbench`` speaks GradBench's JSON protocol on standard
input/output.  The objectives are in :mod:`.programs`, what each eval's functions compute in
:mod:`.evals`, the protocol in :mod:`.tool`; docs/gradbench.md says which evals are implemented
and which are not, and why.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="eqsat-ad gradbench",
        description="Run eqsat-ad as a GradBench tool: read GradBench's JSON messages on standard "
                    "input, answer on standard output.  Evals: hello, lse, llsq, kmeans, ode, gmm, "
                    "lstm, det, ba.",
        epilog="example (one message):\n"
               "  echo '{\"id\": 0, \"kind\": \"start\"}' | eqsat-ad gradbench\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-optimize", action="store_true",
                    help="compile the naive derivative programs without equality saturation")
    from ..extract import DEFAULT_EXTRACTOR, EXTRACTORS
    ap.add_argument("--extractor", choices=EXTRACTORS, default=DEFAULT_EXTRACTOR,
                    help=f"extractor of the optimiser (default: {DEFAULT_EXTRACTOR})")
    ap.add_argument("--optimize-seconds", type=float, default=None, metavar="S",
                    help="time limit of one optimisation (default: the optimiser's)")
    ap.add_argument("--cache-dir", metavar="DIR", default=None,
                    help="keep optimised programs in DIR between sessions (program text, read back "
                         "and type-checked; keyed by eqsat-ad's files, the program, sizes and options)")
    ap.add_argument("--check", action="store_true",
                    help="check each optimised program against its input on random inputs")
    from ..backend.registry import backend_names
    ap.add_argument("--backend", choices=backend_names(), default="numpy",
                    help="the backend the programs are optimised for and run on (default: numpy)")
    ap.add_argument("--multithreaded", action="store_true",
                    help="accepted for GradBench's runner; NumPy's thread count is left as it is")
    args = ap.parse_args(argv)
    from .tool import Tool
    tool = Tool(optimize=not args.no_optimize, extractor=args.extractor,
                seconds=args.optimize_seconds, check=args.check, cache_dir=args.cache_dir,
                backend=args.backend)
    from ..backend.registry import require_backend
    from ..errors import EqsatError
    try:
        require_backend(args.backend)
    except EqsatError as e:
        print(f"eqsat-ad gradbench: error: {e}", file=sys.stderr)
        return 2
    try:
        return tool.serve(sys.stdin, sys.stdout)
    except BrokenPipeError:           # the eval went away: nothing left to answer
        return 0
