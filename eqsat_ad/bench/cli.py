"""``eqsat-ad bench``: argument parsing for :func:`eqsat_ad.bench.main`.

Full run: every size and repeat, results to ``benchmarks/results/`` (JSON, markdown, PNG)
and ``docs/benchmarks.md`` regenerated (from a source checkout; an installed package writes
to ``./eqsat-ad-bench/``).  ``--quick``: 2 sizes per program, 3 short repeats, optimised
once per program, extraction comparison at n = 1000 -- prints the tables and writes files
only with ``--out``.  ``--render FILE.json`` regenerates the tables, plots and docs page
from a result file without running anything.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import report, runner, specs
from ..progress import Progress
from .workers import in_checkout

if in_checkout():
    RESULTS = runner.REPO / "benchmarks" / "results"
    DOCS: Path | None = runner.REPO / "docs" / "benchmarks.md"
else:                               # an installed package: never write into site-packages
    RESULTS = Path("eqsat-ad-bench")
    DOCS = None
NOTES = RESULTS / "notes.md"
_RESULTS_SHOWN = "benchmarks/results" if in_checkout() else "./eqsat-ad-bench"

DESCRIPTION = """\
Time the optimised gradients against hand-written NumPy gradients, the naive dual-number
gradient and (when installed) JAX and PyTorch, on the benchmark programs at several sizes;
compare the extractors and schedules.  Each framework runs in its own worker process with
one thread.  A full run takes tens of minutes; --quick about two."""

EPILOG = f"""\
examples:
  eqsat-ad bench --quick                         # tables on stdout, nothing written
  eqsat-ad bench --quick --programs dot,logsumexp --no-peers
  eqsat-ad bench --quick --out bench-results     # also JSON, markdown and plots there
  eqsat-ad bench                                 # full run, results to {_RESULTS_SHOWN}

Progress lines go to stderr (-q: none)."""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="eqsat-ad bench", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced run (< 2 minutes)")
    ap.add_argument("--out", type=Path, help="directory for the JSON/markdown/PNG results "
                    f"(default: {_RESULTS_SHOWN} for a full run, none for --quick)")
    ap.add_argument("--groups", default=None,
                    help="comma-separated subset of micro,suite,extraction (default: all)")
    ap.add_argument("--programs", default=None, help="comma-separated program names (default: all)")
    ap.add_argument("--sizes", default=None, help="comma-separated n values (overrides the defaults)")
    ap.add_argument("--no-peers", action="store_true", help="do not run JAX / PyTorch")
    ap.add_argument("--peers", default=None, help="comma-separated subset of jax,torch")
    ap.add_argument("--repeats", type=int, default=None, help="timeit repeats per cell")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per call before T/O")
    ap.add_argument("--cpus", default=None, help="pin the workers to these CPUs, e.g. 0 or 0,1")
    ap.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md")
    ap.add_argument("--render", type=Path, default=None, metavar="JSON",
                    help="only regenerate tables, plots and docs from a result file")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.render:
        res = json.loads(args.render.read_text())
        out = args.out or args.render.parent
        written = report.write_outputs(res, out, None if args.no_docs else DOCS, NOTES)
        print("wrote " + ", ".join(str(v) for v in written.values()))
        return 0
    kw = {}
    if args.groups:
        kw["groups"] = tuple(g.strip() for g in args.groups.split(","))
        bad = set(kw["groups"]) - {"micro", "suite", "extraction"}
        if bad:
            print(f"eqsat-ad bench: unknown group(s) {', '.join(sorted(bad))}", file=sys.stderr)
            return 2
    if args.programs:
        kw["programs"] = tuple(p.strip() for p in args.programs.split(","))
        known = {s.name for s in specs.ALL}
        bad = set(kw["programs"]) - known
        if bad:
            print(f"eqsat-ad bench: unknown program(s) {', '.join(sorted(bad))}; "
                  f"known: {', '.join(sorted(known))}", file=sys.stderr)
            return 2
    if args.sizes:
        kw["sizes"] = tuple(int(float(x)) for x in args.sizes.split(","))
    if args.no_peers:
        kw["peers"] = ()
    elif args.peers:
        kw["peers"] = tuple(p.strip() for p in args.peers.split(","))
    if args.repeats:
        kw["repeats"] = args.repeats
    if args.timeout:
        kw["timeout"] = args.timeout
    if args.cpus:
        kw["cpus"] = [int(c) for c in args.cpus.split(",")]
    line = Progress(prefix="eqsat-ad bench")     # a ticking status line on a terminal only
    if not args.quiet:
        t0 = time.perf_counter()
        kw["log"] = lambda msg: line.log(f"[{time.perf_counter() - t0:7.1f}s] {msg}")
    cfg = runner.Config.quick_config(**kw) if args.quick else runner.Config(**kw)
    try:
        res = runner.run(cfg)
    except RuntimeError as exc:
        line.done()
        print(f"eqsat-ad bench: {exc}", file=sys.stderr)
        return 1
    finally:
        line.done()
    out = args.out if args.out else (None if args.quick else RESULTS)
    if out is not None:
        name = "quick.json" if args.quick else "latest.json"
        runner.write_json(res, out / name)
        docs = None if (args.no_docs or args.quick or args.out) else DOCS
        written = report.write_outputs(res, out, docs, NOTES)
        print(f"wrote {out / name}, " + ", ".join(str(v) for v in written.values()), file=sys.stderr)
    print(report.markdown(res, None))
    return 0
