"""The argument parser of ``eqsat-ad`` and the parsers of option values (``--size n=1000``,
``--limit nodes=5000``, ``--input x=FILE.npy``).

Malformed option values raise :class:`UsageError` (exit code 2), like argparse's own errors.

>>> parse_assignments(["n=1000", "m=20,k=3"], "--size", int)
{'n': 1000, 'm': 20, 'k': 3}
>>> parse_limits(["iterations=50", "seconds=2.5"])
Limits(iterations=50, nodes=None, seconds=2.5)
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path


class UsageError(Exception):
    """The command line itself is wrong (a bad option value, a missing file): exit code 2."""


class CLIFailure(Exception):
    """A run failed for a reason outside the library's error family (exit code 1)."""


PROG = "eqsat-ad"

# -- option values ------------------------------------------------------------------------


def clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for a message (a 5000-digit value stays readable)."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit - 20]}...{text[-8:]} ({len(text)} characters)"


MAX_INT_OPTION = 2 ** 63 - 1      # sizes and limits are 64-bit integers in egglog


def parse_assignments(items, option: str, conv=int) -> dict:
    """``["n=1000", "m=20,k=3"]`` -> ``{"n": 1000, "m": 20, "k": 3}``.  With ``conv=int`` the
    values must be positive integers of at most 2**63-1 (sizes)."""
    out = {}
    for item in items or []:
        for part in item.split(","):
            name, eq, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not eq or not name or not value or not name.replace("_", "a").isalnum():
                raise UsageError(f"bad {option} {clip(part)!r}: expected NAME=VALUE, e.g. {option} n=1000")
            try:
                v = _int_value(value) if conv is int else conv(value)
            except (ValueError, OverflowError):
                raise UsageError(f"bad {option} {clip(part)!r}: {clip(value)!r} is not a valid "
                                 f"{'integer' if conv is int else 'number'}") from None
            if conv is int and v < 0:
                raise UsageError(f"bad {option} {clip(part)!r}: a size cannot be negative")
            if conv is int and v == 0:
                raise UsageError(f"bad {option} {clip(part)!r}: a size must be positive")
            if conv is int and v > MAX_INT_OPTION:
                raise UsageError(f"bad {option} {clip(part)!r}: too large (at most 2**63-1)")
            if name in out:
                raise UsageError(f"{option} {name} given twice")
            out[name] = v
    return out


def _int_value(value: str) -> int:
    """An integer option value: ``1000``, ``1_000``, or an integral number such as ``1e5``."""
    import math
    try:
        return int(value)
    except ValueError:
        pass
    f = float(value)                         # ValueError for text
    if not math.isfinite(f) or f != int(f):
        raise ValueError(value)
    return int(f)


def _seconds_value(value: str) -> float:
    import math
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(value)
    return f


LIMIT_KINDS = {"iterations": _int_value, "nodes": _int_value, "seconds": _seconds_value,
               "memory": _seconds_value}   # memory: MiB of resident memory (a finite number)


def parse_limits(items):
    """``["iterations=50", "nodes=1e5", "seconds=2"]`` -> :class:`Limits` (None if no items)."""
    from ..strategy.combinators import Limits
    if not items:
        return None
    kw = {}
    for item in items:
        for part in item.split(","):
            name, eq, value = part.partition("=")
            name = name.strip()
            if not eq or name not in LIMIT_KINDS:
                raise UsageError(f"bad --limit {clip(part)!r}: expected iterations=N, nodes=N, seconds=S or memory=MiB")
            try:
                v = LIMIT_KINDS[name](value.strip())
            except (ValueError, OverflowError):
                raise UsageError(f"bad --limit {clip(part)!r}: {clip(value.strip())!r} is not a valid "
                                 f"{'integer' if name not in ('seconds', 'memory') else 'finite number'}") from None
            if v <= 0:
                raise UsageError(f"bad --limit {clip(part)!r}: a limit must be positive")
            if name not in ("seconds", "memory") and v > MAX_INT_OPTION:
                raise UsageError(f"bad --limit {clip(part)!r}: too large (at most 2**63-1)")
            kw[name] = v
    return Limits(**kw)


ARRAY_FILE_SUFFIXES = (".npy", ".npz", ".txt", ".csv")


def _load_array_file(name: str, value: str):
    import numpy as np
    from ..runtime import max_array_bytes
    path = Path(value)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(f"--input {name}: no such file: {value}") from None
    except OSError as e:
        raise UsageError(f"--input {name}: cannot read {value}: {e.strerror or e}") from None
    if path.is_dir():
        raise UsageError(f"--input {name}: {value} is a directory, not a file")
    limit = max_array_bytes()
    if st.st_size > limit + 4096:
        raise UsageError(f"--input {name}: {value} is {st.st_size} bytes, more than the array limit "
                         f"of {limit} bytes (eqsat_ad.runtime.set_max_array_bytes)")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if len(keys) != 1:
                    raise UsageError(f"--input {name}: {value} holds {len(keys)} arrays "
                                     f"({clip(', '.join(keys))}); expected exactly one")
                return z[keys[0]]
        return np.loadtxt(path, delimiter="," if path.suffix.lower() == ".csv" else None)
    except UsageError:
        raise
    except (OSError, ValueError, EOFError) as e:    # (UnicodeDecodeError is a ValueError)
        raise UsageError(f"--input {name}: cannot read {value}: {clip(e, 200)}") from None
    except Exception as e:  # noqa: BLE001 - NumPy's readers raise many kinds on garbage
        raise UsageError(f"--input {name}: cannot read {value} as an array file "
                         f"({type(e).__name__}: {clip(e, 200)})") from None


def parse_inputs(items, files: list | None = None) -> dict:
    """``--input`` values: ``x=FILE.npy`` (also .npz with one array, .txt, .csv), ``w=[1,2,3]``,
    ``s=2.5``, ``A=[[1,2],[3,4]]``, ``p=(1.0,[1,2])`` for a pair.  The paths of the array
    files read are appended to ``files``."""
    out = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value:
            raise UsageError(f"bad --input {clip(item)!r}: expected NAME=FILE.npy or NAME=LITERAL, "
                             "e.g. --input x=x.npy --input w=[1,2,3] --input s=2.5")
        if name in out:
            raise UsageError(f"--input {name} given twice")
        if value.lower().endswith(ARRAY_FILE_SUFFIXES):
            out[name] = _load_array_file(name, value)
            if files is not None:
                files.append(value)
            continue
        try:
            v = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            low = value.lower()
            if low in ("true", "false"):
                v = low == "true"
            elif low in ("nan", "inf", "-inf", "+inf"):
                v = float(low)
            else:
                raise UsageError(f"bad --input {clip(item)!r}: {clip(value)!r} is neither a number, a list "
                                 f"literal like [1,2,3], nor an array file "
                                 f"({', '.join(ARRAY_FILE_SUFFIXES)})") from None
        if not isinstance(v, (int, float, bool, list, tuple)):
            raise UsageError(f"bad --input {clip(item)!r}: expected a number or a (nested) list of numbers")
        out[name] = v
    return out


def shipped_rule_file(value: str) -> Path | None:
    """``rules/NAME.egg`` names a shipped rule file from any directory (they live inside the
    package), unless a file of that name exists where the user is."""
    parts = Path(value).parts
    if len(parts) != 2 or parts[0] != "rules" or not parts[1].endswith(".egg"):
        return None
    from ..egraph.session import rules_dir
    cand = rules_dir() / parts[1]
    return cand if cand.is_file() else None


def existing_file(value: str, what: str) -> Path:
    if not value:
        raise UsageError(f"an empty name is not a {what}")
    p = Path(value)
    try:
        st = p.stat()
    except FileNotFoundError:
        shipped = shipped_rule_file(value) if what == "rule file" else None
        if shipped is not None:
            return shipped
        raise UsageError(f"no such {what}: {value}") from None
    except OSError as e:                       # a path through a file, a name too long, ...
        raise UsageError(f"cannot read {what} {value}: {e.strerror or e}") from None
    if p.is_dir():
        raise UsageError(f"{what} {value} is a directory, not a file")
    del st
    return p


# -- the parser -----------------------------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog, **kw):
        kw.setdefault("max_help_position", 32)
        super().__init__(prog, **kw)


def _add_derivative(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--grad", metavar="X", help="differentiate first: the gradient with respect to X "
                   "(the program must return a real; X,Y for a pair of gradients)")
    g.add_argument("--jvp", metavar="X", help="differentiate first: the Jacobian-vector product in "
                   "direction dX (a new parameter named dX)")
    g.add_argument("--jacobian", metavar="X", help="differentiate first: the Jacobian with respect to X")
    g.add_argument("--derivative", metavar="X", help="differentiate first: dF~'s deriv, the tangent of "
                   "the output for every input direction of X")


def _positive_int(value: str) -> int:
    try:
        v = _int_value(value)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{clip(value)!r} is not a valid integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{clip(value)!r}: expected a positive integer")
    return v


def _add_reader(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("program reader")
    g.add_argument("--max-program-bytes", metavar="N", type=_positive_int, default=None,
                   help="refuse program files larger than N bytes (default 4 MiB)")
    g.add_argument("--max-depth", metavar="N", type=_positive_int, default=None,
                   help="refuse programs nested deeper than N levels (default 10000)")


def _add_optimizer(p: argparse.ArgumentParser, with_sizes: bool = True) -> None:
    g = p.add_argument_group("optimiser")
    g.add_argument("--rules", metavar="FILE.egg", action="append", default=[],
                   help="an extra rule file, loaded exactly like the shipped ones (repeatable)")
    g.add_argument("--no-default-rules", action="store_true",
                   help="use only the --rules files (plus the substitution rules every rule relies on)")
    g.add_argument("--schedule", metavar="FILE.egg|default|all", default="default",
                   help="the schedule: 'default' (phase-ordered, the default), 'all' (every ruleset "
                        "together to saturation) or a schedule file")
    from ..extract import DEFAULT_EXTRACTOR, EXTRACTORS
    g.add_argument("--extractor", choices=EXTRACTORS, default=DEFAULT_EXTRACTOR,
                   help=f"how the cheapest program is extracted (default: {DEFAULT_EXTRACTOR})")
    from ..backend.registry import backend_names
    g.add_argument("--backend", choices=backend_names(), default="numpy",
                   help="the backend the program will run on: its calibrated costs guide the extractor, "
                        "and 'run' executes with it; numba, dask, jax and cupy need their extras, e.g. "
                        "pip install 'eqsat-ad[numba]' (default: numpy)")
    if with_sizes:
        g.add_argument("--size", metavar="NAME=N", action="append", default=[],
                       help="value of a size name for the cost model, e.g. --size n=1000 "
                            "(repeatable; unknown sizes count as 1000)")
    g.add_argument("--limit", metavar="KIND=V", action="append", default=[],
                   help="stop the run at iterations=N, nodes=N (e-nodes), seconds=S or memory=MiB "
                        "(resident memory; repeatable)")
    g.add_argument("--no-check", action="store_true",
                   help="skip comparing the optimised program with the input on random inputs")
    pr = p.add_mutually_exclusive_group()
    pr.add_argument("--progress", dest="progress", action="store_const", const=True, default=None,
                    help="show progress on stderr even when it is not a terminal")
    pr.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                    help="never show progress (default: only when stderr is a terminal)")


OPTIMIZE_EPILOG = """\
examples:
  eqsat-ad optimize docs/examples/dot.ad --grad x --size n=1000
  eqsat-ad optimize docs/examples/sumsq.ad --grad x --json out.json
  eqsat-ad optimize docs/examples/poly.ad --grad x --rules docs/tutorial/like_terms.egg \
      --schedule docs/tutorial/schedule.egg
  eqsat-ad optimize docs/examples/sumsq.ad --grad x --emit numpy

The optimised program goes to stdout; the report lines start with ';;' so the whole output
is still a program file. --json writes cost_before, cost_after, program and report.
"""

RUN_EPILOG = """\
examples:
  eqsat-ad run docs/examples/dot.ad --input x=[1,2,3] --input w=[4,5,6]
  eqsat-ad run docs/examples/sumsq.ad --grad x --optimize --input x=[1,2,3]
  eqsat-ad run docs/examples/matvec.ad --input A=[[1,2],[3,4]] --input x=[1,1] --output result.npy

Inputs are .npy/.npz/.txt/.csv files or Python literals (numbers, nested lists).
"""

RULES_EPILOG = """\
examples:
  eqsat-ad rules list
  eqsat-ad rules list --verbose rules/ring.egg
  eqsat-ad rules check docs/tutorial/square.egg
"""

RULES_LIST_EPILOG = """\
examples:
  eqsat-ad rules list                      # the shipped rules/*.egg
  eqsat-ad rules list -v docs/tutorial/square.egg   # each rule's text and file:line
"""

RULES_CHECK_EPILOG = """\
examples:
  eqsat-ad rules check                     # every shipped rule
  eqsat-ad rules check docs/tutorial/square.egg
"""

BENCH_EPILOG = """\
examples:
  eqsat-ad bench --quick
"""

EXPLAIN_EPILOG = """\
examples:
  eqsat-ad explain docs/examples/sumsq.ad --grad x
  eqsat-ad explain docs/examples/dot.ad --grad x --schedule all
  eqsat-ad explain docs/examples/sumsq.ad --grad x --dot egraph.dot --plot growth.png
  eqsat-ad explain docs/examples/logsumexp.ad --grad x --size n=10 --dot egraph.svg --dot-scope extracted

Per phase: which rules matched how often, how the e-graph grew, why the phase stopped,
and the model cost of the best program before and after it (found by re-running the prefixes
of the schedule; --no-phase-costs skips that).  Then how extraction chose the result and a
legend of the terms.  Costs are model costs in add-units: the predicted run time of one call,
1 add-unit = one float64 addition on one array element on the calibration machine.
--dot draws the final e-graph (Graphviz): one box per e-class, the extracted program
filled and linked by thick red edges; OUT.svg/OUT.png are rendered when Graphviz is
installed, OUT.dot is the text.
"""

SCHEDULE_EPILOG = """\
examples:
  eqsat-ad schedule show                   # the default schedule, as a schedule file
  eqsat-ad schedule show all
  eqsat-ad schedule show docs/tutorial/schedule.egg
"""


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter,
        description="Differentiate array programs with dual numbers and optimise the derivative "
                    "code by equality saturation (egglog); run it with NumPy.",
        epilog="examples:\n"
               "  eqsat-ad optimize docs/examples/dot.ad --grad x --size n=1000\n"
               "  eqsat-ad run docs/examples/sumsq.ad --grad x --input x=[1,2,3]\n"
               "  eqsat-ad explain docs/examples/sumsq.ad --grad x\n"
               "  eqsat-ad rules list\n"
               "  eqsat-ad demo\n\n"
               "'eqsat-ad COMMAND --help' describes each command.  Exit codes: 0 success, "
               "1 failed run,\n2 wrong command line.")
    from .. import __version__
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("optimize", help="optimise a program (or its derivative) and print it",
                       description="Optimise PROGRAM (an s-expression .ad file), or its derivative, "
                                   "by equality saturation and print the cheapest equivalent program.",
                       epilog=OPTIMIZE_EPILOG, formatter_class=_Formatter)
    p.add_argument("program", metavar="PROGRAM", help="program file (.ad)")
    _add_derivative(p)
    _add_optimizer(p)
    p.add_argument("--json", metavar="OUT", help="write cost_before, cost_after, program and report as "
                   "JSON to OUT ('-' for stdout)")
    p.add_argument("--emit", choices=("program", "numpy", "code"), default="program",
                   help="print the optimised program (default), the NumPy source it compiles to, or the "
                        "code the --backend runs")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the program, no report")
    _add_reader(p)
    p.set_defaults(func="optimize")

    p = sub.add_parser("run", help="run a program (or its derivative) on inputs",
                       description="Run PROGRAM (or its derivative) with NumPy (or --backend) on the "
                                   "given inputs and print the result.",
                       epilog=RUN_EPILOG, formatter_class=_Formatter)
    p.add_argument("program", metavar="PROGRAM", help="program file (.ad)")
    _add_derivative(p)
    p.add_argument("--input", "-i", metavar="NAME=VALUE", action="append", default=[],
                   help="an input: NAME=FILE.npy or NAME=LITERAL, e.g. w=[1,2,3] or s=2.5 (repeatable)")
    p.add_argument("--optimize", "-O", action="store_true",
                   help="optimise before running (sizes for the cost model come from the inputs)")
    p.add_argument("--interpret", action="store_true",
                   help="use the reference interpreter instead of the NumPy backend")
    p.add_argument("--output", "-o", metavar="OUT.npy", help="also save the result (.npy, or .npz for a pair; "
                   "written atomically, never over an input file)")
    _add_optimizer(p, with_sizes=False)
    _add_reader(p)
    p.set_defaults(func="run")

    rp = sub.add_parser("rules", help="list or check rule files",
                        description="List the rulesets of rule files, or check their rules for soundness.",
                        epilog=RULES_EPILOG, formatter_class=_Formatter)
    rsub = rp.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    rsub.required = True
    p = rsub.add_parser("list", help="rulesets with their banner comment and rule names",
                        description="List the rulesets declared in FILES (default: the shipped "
                                    "rules/*.egg) with their banner comment and their rules.",
                        epilog=RULES_LIST_EPILOG, formatter_class=_Formatter)
    p.add_argument("files", metavar="FILE.egg", nargs="*", help="rule files (default: the shipped ones)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the whole banner and each rule's text")
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    p.set_defaults(func="rules_list")
    p = rsub.add_parser("check", help="check rules for soundness (random instantiations)",
                        description="Check the rules of FILES (default: the shipped ones) by evaluating "
                                    "both sides on random instantiations (delegates to eqsat_ad.rulecheck; "
                                    "its own options are listed below when it is installed).",
                        epilog=RULES_CHECK_EPILOG, formatter_class=_Formatter, add_help=True)
    p.add_argument("args", nargs=argparse.REMAINDER, help="files and options for the rule checker")
    p.set_defaults(func="rules_check")

    p = sub.add_parser("bench", help="run the benchmarks",
                       description="Run the benchmark suite (delegates to eqsat_ad.bench; its own options "
                                   "are listed below when it is installed).",
                       epilog=BENCH_EPILOG, formatter_class=_Formatter)
    p.add_argument("args", nargs=argparse.REMAINDER, help="options for the benchmark runner, e.g. --quick")
    p.set_defaults(func="bench")

    p = sub.add_parser("gradbench", help="run as a GradBench tool (JSON protocol on stdin/stdout)",
                       description="Speak GradBench's JSON protocol on standard input/output "
                                   "(delegates to eqsat_ad.gradbench; docs/gradbench.md).",
                       epilog="examples:\n  echo '{\"id\": 0, \"kind\": \"start\"}' | eqsat-ad gradbench\n",
                       formatter_class=_Formatter)
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the tool, e.g. --no-optimize")
    p.set_defaults(func="gradbench")

    p = sub.add_parser("explain", help="what the optimiser did, phase by phase",
                       description="Optimise PROGRAM (or its derivative) and explain the run: per "
                                   "phase, which rules matched how often, e-graph growth, the stop "
                                   "reason, and the cost before and after.",
                       epilog=EXPLAIN_EPILOG, formatter_class=_Formatter)
    p.add_argument("program", metavar="PROGRAM", help="program file (.ad)")
    _add_derivative(p)
    _add_optimizer(p)
    p.add_argument("--dot", metavar="OUT.dot", help="write the final e-graph as Graphviz DOT (.svg/.png/.pdf: "
                   "render it, if Graphviz 'dot' is installed; '-': the DOT text on stdout)")
    p.add_argument("--dot-max-nodes", metavar="N", type=_positive_int, default=2000,
                   help="refuse to draw more e-nodes than this (default 2000)")
    p.add_argument("--dot-scope", choices=("reachable", "all", "extracted"), default="reachable",
                   help="what --dot draws: the e-classes reachable from the root (default), all of "
                        "them, or only the extracted program's e-classes with their alternatives")
    p.add_argument("--dot-support", action="store_true",
                   help="--dot also draws the Subst e-nodes (substitution bookkeeping, never extracted)")
    p.add_argument("--dot-leaves", action="store_true",
                   help="--dot draws literals, inputs and variables as e-classes of their own instead "
                        "of writing them into the labels of the e-nodes that use them")
    p.add_argument("--plot", metavar="OUT.png", help="plot e-graph size per iteration and best cost per "
                   "phase (needs matplotlib)")
    p.add_argument("--no-phase-costs", dest="phase_costs", action="store_false",
                   help="skip extracting the best program after each phase (that re-runs the "
                        "prefixes of the schedule; with this, only the final cost is shown)")
    p.add_argument("--all-rules", action="store_true",
                   help="also list the support rules (analysis, subst) one by one")
    p.add_argument("--no-legend", dest="legend", action="store_false",
                   help="leave out the closing paragraph that defines each term and the cost unit")
    p.add_argument("--json", metavar="OUT", help="also write the result and report as JSON "
                   "('-': only the JSON, on stdout)")
    _add_reader(p)
    p.set_defaults(func="explain")

    p = sub.add_parser("demo", help="differentiate -> optimise -> run, with a visible result",
                       description="The quick-start demo: naive dual-number gradients of logsumexp and "
                                   "of sum(tanh(W x + b)), optimised, checked against finite "
                                   "differences and timed against hand-written NumPy gradients.",
                       epilog="examples:\n  eqsat-ad demo\n", formatter_class=_Formatter)
    p.add_argument("args", nargs=argparse.REMAINDER, help="none: the demo takes no options")
    p.set_defaults(func="demo")

    sp = sub.add_parser("schedule", help="print a schedule as a schedule file",
                        description="Print a schedule (default, all, or a schedule file) in the egglog "
                                    "schedule-file syntax, with its @phase pragmas.",
                        epilog=SCHEDULE_EPILOG, formatter_class=_Formatter)
    ssub = sp.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND")
    ssub.required = True
    p = ssub.add_parser("show", help="print a schedule", epilog=SCHEDULE_EPILOG,
                        description="Print SCHEDULE (default, all or a file) as a schedule file.",
                        formatter_class=_Formatter)
    p.add_argument("schedule", metavar="SCHEDULE", nargs="?", default="default",
                   help="default (the default), all, or a schedule file")
    p.add_argument("--rules", metavar="FILE.egg", action="append", default=[],
                   help="extra rule files (their rulesets join 'all')")
    p.set_defaults(func="schedule_show")
    return top
