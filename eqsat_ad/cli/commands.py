"""The subcommands of ``eqsat-ad``: optimize, run, rules list, explain, schedule show.

(``rules check`` and ``bench`` are delegated to :mod:`eqsat_ad.rulecheck` and
:mod:`eqsat_ad.bench`; see :mod:`eqsat_ad.cli`.)
"""
from __future__ import annotations

import contextlib
import json
import sys
import textwrap
from pathlib import Path

from ..backend.registry import require_backend
from ..errors import EqsatError, LocatedError
from .args import CLIFailure, UsageError, existing_file, parse_assignments, parse_inputs, parse_limits
from .files import OutputGuard, atomic_path, atomic_write, read_program_text, write_text
from .progress import Progress


# -- shared helpers ---------------------------------------------------------------------------

def rel(path) -> str:
    """How a path is shown: as given when relative; else relative to the working directory or to
    the package (so the shipped rule files always show as ``rules/NAME.egg``)."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    bases = [Path.cwd()]
    try:
        from ..egraph.session import rules_dir
        bases.insert(0, rules_dir().parent)  # shipped files show as rules/NAME.egg, a name the
    except EqsatError:  # pragma: no cover  # CLI accepts from any directory (args.shipped_rule_file)
        pass
    for base in bases:
        for a, b in ((p, base), (p.resolve(), base.resolve())):
            try:
                return a.relative_to(b).as_posix()
            except ValueError:
                pass
    return str(path)


@contextlib.contextmanager
def about_file(path: str):
    """Errors without a location that concern the program get its file name in front."""
    try:
        yield
    except EqsatError as e:
        if not (isinstance(e, LocatedError) and e.file) and not getattr(e, "cli_file", None):
            e.cli_file = path
        raise


def load_program(path: str, args=None):
    """Read and parse a program file (``-`` reads stdin), with the reader's caps
    (``--max-program-bytes``, ``--max-depth``) applied before the parsing work grows."""
    from ..lang.syntax import parse
    max_bytes = getattr(args, "max_program_bytes", None)
    max_depth = getattr(args, "max_depth", None)
    text, name = read_program_text(path, max_bytes)
    return parse(text, file=name, max_chars=max_bytes, max_depth=max_depth), name


def derivative_of(args):
    """(kind, wrt) from --grad/--jvp/--jacobian/--derivative, or (None, None)."""
    for kind in ("grad", "jvp", "jacobian", "derivative"):
        v = getattr(args, kind, None)
        if v:
            return kind, v
    return None, None


def prepare_program(args):
    """Load PROGRAM, type-check it, and differentiate it as asked.  Returns (program, name, label)."""
    from .. import ad
    from ..lang.typecheck import check_program
    prog, name = load_program(args.program, args)
    kind, wrt = derivative_of(args)
    with about_file(name):
        check_program(prog)
        if kind:
            names = [w.strip() for w in wrt.split(",") if w.strip()]
            if not names:
                raise UsageError(f"--{kind} needs a parameter name")
            prog = getattr(ad, kind)(prog, names[0] if len(names) == 1 else names)
    label = f"{kind} of {name} wrt {wrt}" if kind else name
    return prog, name, label


def input_guard(args, input_files=()) -> OutputGuard:
    """The input files of a run (program, rule files, schedule file, ``--input`` arrays),
    which no output may overwrite."""
    guard = OutputGuard()
    guard.add(getattr(args, "program", None), "program file")
    for r in getattr(args, "rules", None) or []:
        guard.add(r, "rule file")
    sched = getattr(args, "schedule", None)
    if sched not in (None, "default", "all"):
        guard.add(sched, "schedule file")
    for f in input_files:
        guard.add(f, "--input file")
    return guard


def optimize_options(args, prog=None) -> dict:
    """Keyword arguments of :func:`eqsat_ad.optimize` from the common optimiser options.
    With ``prog``, ``--size`` is checked against its size names (a typo is a usage error
    naming the known ones)."""
    rules = [str(existing_file(r, "rule file")) for r in args.rules]
    sched = args.schedule
    if sched not in ("default", "all"):
        sched = str(existing_file(sched, "schedule file"))
    kw = dict(schedule=sched, rules=rules, default_rules=not args.no_default_rules,
              extractor=args.extractor, check=not args.no_check)
    if getattr(args, "backend", "numpy") != "numpy":
        kw["backend"] = require_backend(args.backend).name
    lim = parse_limits(args.limit)
    if lim is not None:
        kw["limits"] = lim
    if hasattr(args, "size"):
        sizes = parse_assignments(args.size, "--size", int)
        if prog is not None and sizes:
            from ..runtime import check_sizes
            try:
                check_sizes(prog, sizes, "--size", strict=True)
            except EqsatError as e:
                raise UsageError(f"bad --size: {e}") from None
        kw["sizes"] = sizes
    return kw


CHECK_WORDS = {"verified": "verified on random inputs (reference interpreter and NumPy backend)",
               "disabled": "disabled (--no-check)"}


def check_line(report) -> str:
    """How the numeric check of the result went, for the report lines (printed when it is
    not "verified"; the JSON report always has it)."""
    c = getattr(report, "check", "disabled")
    return "check: " + CHECK_WORDS.get(c, c)


def warn_unchecked(report) -> None:
    """A numeric check that could not run is said on stderr (one line)."""
    c = getattr(report, "check", "")
    if c.startswith("skipped"):
        why = c.partition(":")[2].strip()
        print(f"eqsat-ad: warning: the optimised program was NOT checked against the input program "
              f"({why})", file=sys.stderr)


def run_optimize(prog, name: str, args, progress_enabled=None, **extra):
    """``ea.optimize`` with progress on a terminal; missing optional modules become clear
    errors; a numeric check that could not run is a warning on stderr."""
    from ..optimize import optimize
    kw = optimize_options(args, prog)
    kw.update(extra)
    prog_cb = Progress(enabled=progress_enabled if progress_enabled is not None else args.progress)
    try:
        with about_file(name):
            res = optimize(prog, progress=prog_cb if prog_cb.enabled else None, **kw)
        prog_cb.done()
        if res.program != prog:          # (the input itself needs no check)
            warn_unchecked(res.report)
        return res
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("eqsat_ad"):
            raise CLIFailure(f"the {kw.get('extractor')} extractor is not available in this build "
                             f"(module {e.name} is missing); use --extractor tree") from None
        if e.name == "scipy":
            raise CLIFailure("the ilp extractor needs scipy (pip install scipy); use --extractor tree "
                             "or dag") from None
        raise
    finally:
        prog_cb.done()


def comment(text: str, prefix: str = ";; ") -> str:
    return "\n".join((prefix + ln).rstrip() for ln in text.splitlines())


def write_json(path: str, data: dict) -> None:
    """JSON to ``path`` (atomically) or to stdout for ``-``."""
    write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


def fmt_cost(c) -> str:
    return "?" if c is None else f"{c:.6g}"


def compile_source(prog, progress=None, backend: str = "numpy") -> str:
    b = require_backend(backend)
    with Progress(enabled=progress) as line:
        line.stage(f"compiling for {b.name}")
        fn = b.compile(prog)
    src = getattr(fn, "source", None)
    if src is None:
        raise CLIFailure("the NumPy backend did not expose the generated source")
    return src


# -- optimize ---------------------------------------------------------------------------------

def cmd_optimize(args) -> int:
    from ..lang.syntax import show_program
    input_guard(args).check(args.json, "--json")
    prog, name, label = prepare_program(args)
    res = run_optimize(prog, name, args)
    json_to_stdout = args.json == "-"
    if args.json:
        data = res.to_dict()
        kind, wrt = derivative_of(args)
        data["input"] = {"program": name, "derivative": kind, "wrt": wrt}
        write_json(args.json, data)
    if json_to_stdout:
        return 0
    if args.emit in ("numpy", "code"):
        backend = args.backend if args.emit == "code" else "numpy"
        print(compile_source(res.program, args.progress, backend).rstrip())
        prefix = "# "
    else:
        print(show_program(res.program))
        prefix = ";; "
    if not args.quiet:
        sizes = ", ".join(f"{k}={v}" for k, v in sorted(res.report.sizes.items())) or "none"
        head = (f"optimised {label}; sizes {sizes}; schedule {rel(args.schedule) if args.schedule not in ('default', 'all') else args.schedule}; "
                f"extractor {args.extractor}")
        extra = "" if res.report.check == "verified" else "\n" + check_line(res.report)
        print(comment(head + "\n" + res.report.summary() + extra, prefix))
        if args.json:
            print(comment(f"wrote {args.json}", prefix))
    return 0


# -- run ----------------------------------------------------------------------------------------

def format_value(v) -> str:
    import numpy as np
    from ..runtime import to_output
    v = to_output(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(format_value(x) for x in v) + ")"
    if isinstance(v, np.ndarray):
        return np.array2string(v, separator=", ", max_line_width=100)
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return repr(v)


def save_value(path: str, v) -> None:
    """Save a result to ``path`` (atomically): ``.npz`` for a pair (one array per component),
    else ``.npy`` (exactly the given name: no suffix is added)."""
    import numpy as np
    from ..runtime import to_output
    v = to_output(v)
    if isinstance(v, tuple):
        if not path.lower().endswith(".npz"):
            raise UsageError(f"the result is a pair; save it to a .npz file, not {path}")
        flat = []

        def walk(x):
            if isinstance(x, tuple):
                for y in x:
                    walk(y)
            else:
                flat.append(np.asarray(x))
        walk(v)
        with atomic_write(path) as f:
            np.savez(f, *flat)
    elif path.lower().endswith(".npz"):
        with atomic_write(path) as f:
            np.savez(f, np.asarray(v))
    else:
        try:
            arr = np.asarray(v)
        except ValueError:
            arr = None
        if arr is None or arr.dtype == object:
            raise CLIFailure(f"the result is a ragged array (rows of different lengths); it cannot "
                             f"be saved as {path} (it is printed above)")
        with atomic_write(path) as f:
            np.save(f, arr)


def cmd_run(args) -> int:
    from ..backend.registry import to_numpy
    input_files: list[str] = []
    inputs = parse_inputs(args.input, input_files)
    input_guard(args, input_files).check(args.output, "--output", stdout_ok=False)
    prog, name, label = prepare_program(args)
    if args.optimize:
        res = run_optimize(prog, name, args, inputs=inputs)
        prog = res.program
        if Progress(enabled=args.progress).enabled:
            print(f"eqsat-ad: optimised: model cost {fmt_cost(res.cost_before)} -> {fmt_model_cost(res.cost)} "
                  f"(stopped: {res.report.stop_reason})", file=sys.stderr)
    with about_file(name):
        if args.interpret:
            from ..lang.interp import evaluate
            value = evaluate(prog, **inputs)
        else:
            b = require_backend(args.backend)
            with Progress(enabled=args.progress) as line:
                line.stage(f"compiling for {b.name}")
                fn = b.compile(prog)
                line.stage("running")
                value = to_numpy(fn(**inputs))      # lazy or device arrays: computed, copied
                if getattr(fn, "fallback", None) and b.name != "numpy":
                    print(f"eqsat-ad: note: the {b.name} backend ran this program another way: {fn.fallback}",
                          file=sys.stderr)
    print(format_value(value))
    if args.output:
        save_value(args.output, value)
    return 0


# -- rules list -----------------------------------------------------------------------------------

def _rulesets_of_files(files):
    from ..egraph.eggtext import read_forms, rulesets_in
    out = []
    for f in files:
        forms = read_forms(f)
        for name, info in rulesets_in(forms).items():
            out.append(info)
    return out


def cmd_rules_list(args) -> int:
    from ..egraph.session import default_rule_files
    files = [existing_file(f, "rule file") for f in args.files] if args.files else default_rule_files()
    infos = _rulesets_of_files(files)
    if args.json:
        print(json.dumps([{"ruleset": i.name, "file": rel(i.file), "line": i.line, "comment": i.comment,
                           "rules": [{"name": r.name, "file": rel(r.file), "line": r.line, "text": r.text}
                                     for r in i.rules]} for i in infos], indent=2))
        return 0
    if not infos:
        print("no rulesets in " + ", ".join(rel(f) for f in files))
        return 0
    for k, info in enumerate(infos):
        if k:
            print()
        n = len(info.rules)
        print(f"{info.name or '(no ruleset)'}  ({rel(info.file)}:{info.line}, {n} rule{'s' if n != 1 else ''})")
        banner = info.comment.strip()
        if banner:
            lines = banner.splitlines() if args.verbose else banner.splitlines()[:1]
            for ln in lines:
                print(f"  {ln}".rstrip())
        if args.verbose:
            for r in info.rules:
                print(f"  - {r.name}  [{rel(r.file)}:{r.line}]")
                print(textwrap.indent(r.text, "      "))
        elif info.rules:
            print(textwrap.fill("  ".join(r.name for r in info.rules), width=100,
                                initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False))
    return 0


# -- schedule show ---------------------------------------------------------------------------------

def resolve_strategy(schedule: str, rule_files):
    """The :class:`Strategy` of ``default``, ``all`` (over ``rule_files``) or a schedule file."""
    from ..strategy.defaults import check_phase_pragma, default_schedule, saturate_all
    from ..strategy.schedule_file import load_schedule
    if schedule == "default":
        from ..egraph.session import default_rule_files
        shipped = {str(Path(f).resolve()) for f in default_rule_files()}
        infos = [i for i in _rulesets_of_files(rule_files) if i.name]
        for i in infos:
            check_phase_pragma(i.phase)
        user = [i.name for i in infos if str(Path(i.file).resolve()) not in shipped]
        return default_schedule(user, {i.name: i.phase.name for i in infos if i.phase is not None})
    if schedule == "all":
        names = [i.name for i in _rulesets_of_files(rule_files) if i.name]
        return saturate_all(dict.fromkeys(names))
    return load_schedule(existing_file(schedule, "schedule file"))


def cmd_schedule_show(args) -> int:
    from ..egraph.session import default_rule_files
    from ..strategy.combinators import to_egglog
    files = list(default_rule_files()) + [existing_file(r, "rule file") for r in args.rules]
    strat = resolve_strategy(args.schedule, files)
    print(f";; schedule {args.schedule if args.schedule in ('default', 'all') else rel(args.schedule)}")
    print(to_egglog(strat))
    return 0


# -- explain ---------------------------------------------------------------------------------------

def _rule_owner(session) -> dict[str, str]:
    from ..egraph.eggtext import read_forms, rulesets_in
    from ..egraph.session import SCHEMA_FILES
    owner: dict[str, str] = {}
    for f in SCHEMA_FILES:
        try:
            for name, info in rulesets_in(read_forms(f)).items():
                for r in info.rules:
                    owner[r.name] = name or "analysis"
        except EqsatError:  # pragma: no cover
            pass
    for name, info in session.rulesets.items():
        for r in info.rules:
            owner[r.name] = name
    return owner


def describe_rule_files(files) -> str:
    """``rules/*.egg (11 shipped files) + my.egg``: the shipped files collapsed into one entry."""
    from ..egraph.session import default_rule_files
    shipped = {str(Path(f).resolve()) for f in default_rule_files()}
    mine = [f for f in files if str(Path(f).resolve()) in shipped]
    other = [rel(f) for f in files if str(Path(f).resolve()) not in shipped]
    parts = []
    if mine:
        parts.append(f"rules/*.egg ({len(mine)} shipped files)" if len(mine) == len(shipped) else
                     ", ".join(rel(f) for f in mine))
    return " + ".join(parts + other) or "(none)"


def _series(xs: list[int], keep: int = 6) -> str:
    if len(xs) <= 2 * keep:
        return " ".join(map(str, xs))
    return " ".join(map(str, xs[:keep])) + " ... " + " ".join(map(str, xs[-keep:]))


def fmt_model_cost(c, unit: bool = True) -> str:
    """A model cost with its unit (``2762.3 add-units``)."""
    from ..cost.units import UNIT
    return fmt_cost(c) + (f" {UNIT}" if unit and c is not None else "")


def fmt_predicted(*costs) -> str:
    """``147 us -> 1.95 us``: the run times the model costs predict, or '' (not calibrated)."""
    from ..cost.units import format_seconds, predicted_seconds
    secs = [predicted_seconds(c) for c in costs]
    if any(s is None for s in secs):
        return ""
    return " -> ".join(format_seconds(s) for s in secs)


def extraction_lines(ex: dict, extractor: str) -> list[str]:
    """What extraction did, each number named: the candidates' model costs, the chosen one, the
    result's other measures (tree cost, egglog's estimate, the ILP's objective)."""
    secs = ex.get("seconds_total", ex.get("seconds", 0.0))
    chosen = ex.get("chosen")
    out = [f"extraction: {ex.get('extractor', extractor)} extractor, {secs:.3f} s"
           + (f"; chose the {chosen} candidate" if chosen else "")]
    cands = ex.get("candidates") or {}
    if cands:
        out.append("  model cost of each candidate: "
                   + ", ".join(f"{k} {fmt_cost(v)}" for k, v in cands.items()) + " add-units")
    measures = []
    if isinstance(ex.get("tree_cost"), (int, float)):
        measures.append(f"tree cost {fmt_model_cost(ex['tree_cost'])}")
    if isinstance(ex.get("egglog_cost"), (int, float)):
        measures.append(f"egglog's estimate {fmt_cost(ex['egglog_cost'])} (egglog's integer units)")
    if measures:
        out.append("  the chosen program's other measures: " + "; ".join(measures))
    if "ilp_solver_status" in ex:
        out.append(f"  ILP: {ex.get('ilp_variables', '?')} variables, {ex.get('ilp_constraints', '?')} "
                   f"constraints, solver status {ex['ilp_solver_status']}, objective "
                   f"{fmt_cost(ex.get('ilp_objective'))} add-units (every e-class paid once; not "
                   "the model cost)")
    if ex.get("fallback"):
        out.append(f"  fallback: {ex['fallback']}")
    ncls, nnodes = ex.get("eclasses"), ex.get("enodes")
    if isinstance(ncls, int) and isinstance(nnodes, int):
        k = ex.get("extractable_enodes")
        out.append(f"  read from the e-graph: {ncls} e-classes, {nnodes} e-nodes"
                   + (f" ({k} extractable)" if isinstance(k, int) else "")
                   + (f"; {ex['lets']} let(s) added for shared sub-terms" if ex.get("lets") else ""))
    return out


def explain_text(res, label: str, args, owner: dict[str, str], phase_costs=None) -> str:
    from ..lang.syntax import show_program
    from ..driver import SUPPORT_RULESETS
    from ..glossary import legend
    rep = res.report
    out = []
    sizes = ", ".join(f"{k}={v}" for k, v in sorted(rep.sizes.items())) or "none"
    sched = args.schedule if args.schedule in ("default", "all") else rel(args.schedule)
    out.append(f"explain: {label}")
    out.append(f"sizes: {sizes}; schedule: {sched}; extractor: {args.extractor}")
    out.append("rule files: " + describe_rule_files(rep.rule_files))
    pred = fmt_predicted(rep.cost_before)
    out.append(f"input: {rep.enodes_start} e-nodes; model cost {fmt_model_cost(rep.cost_before)}"
               + (f" (predicted {pred} per call)" if pred else ""))
    support = set(SUPPORT_RULESETS)
    for k, ph in enumerate(rep.phases, 1):
        out.append("")
        out.append(f"phase {k}/{len(rep.phases)} {ph.name}: {ph.schedule}")
        out.append(f"  stopped: {ph.stop_reason} after {ph.iterations} iteration"
                   f"{'s' if ph.iterations != 1 else ''} ({ph.seconds:.3f} s)")
        grow = ph.enodes_after - ph.enodes_before
        out.append(f"  e-graph: {ph.enodes_before} -> {ph.enodes_after} e-nodes ({grow:+d}), "
                   f"{ph.eclasses_after} e-classes")
        if ph.enodes_per_iteration:
            out.append(f"  e-nodes per iteration: {_series(ph.enodes_per_iteration)}")
        if phase_costs is not None and k - 1 < len(phase_costs):
            prev = rep.cost_before if k == 1 else phase_costs[k - 2]
            out.append(f"  model cost of the best program: {fmt_cost(prev)} -> "
                       f"{fmt_model_cost(phase_costs[k - 1])}")
        main_rules = [(owner.get(r, "?"), r, n) for r, n in ph.matches.items()
                      if owner.get(r, "?") not in support]
        sup: dict[str, int] = {}
        for r, n in ph.matches.items():
            o = owner.get(r, "?")
            if o in support:
                sup[o] = sup.get(o, 0) + n
        if main_rules:
            out.append("  matches per rule:")
            w = max(len(r) for _, r, _ in main_rules)
            for o, r, n in sorted(main_rules, key=lambda t: (-t[2], t[1])):
                out.append(f"    {r:<{w}} {n:>7}  [{o}]")
        else:
            out.append("  no rule of this phase matched")
        if sup:
            if args.all_rules:
                sup_rules = [(owner.get(r), r, n) for r, n in ph.matches.items() if owner.get(r) in support]
                w = max(len(r) for _, r, _ in sup_rules)
                out.append("  support rules:")
                for o, r, n in sorted(sup_rules, key=lambda t: (-t[2], t[1])):
                    out.append(f"    {r:<{w}} {n:>7}  [{o}]")
            else:
                out.append("  support rules: " + ", ".join(f"{o} {n} matches" for o, n in sorted(sup.items())))
    out.append("")
    out.append(f"total: {rep.iterations} iterations, {rep.enodes} e-nodes, {rep.eclasses} e-classes, "
               f"{rep.seconds:.3f} s of rewriting; stopped: {rep.stop_reason}")
    out.extend(extraction_lines(rep.extraction or {}, args.extractor))
    ratio = ""
    if rep.cost_before and rep.cost_after:
        from ..driver import times_cheaper
        ratio = f" ({times_cheaper(rep.cost_before, rep.cost_after)})"
    out.append(f"model cost: {fmt_cost(rep.cost_before)} -> {fmt_model_cost(rep.cost_after)}{ratio}")
    pred = fmt_predicted(rep.cost_before, rep.cost_after)
    if pred:
        out.append(f"predicted time per call: {pred} (on the calibration machine)")
    out.append(check_line(rep))
    for note in rep.notes:
        out.append(f"note: {note}")
    out.append("")
    out.append("optimised program:")
    out.append(show_program(res.program))
    if getattr(args, "legend", True):
        out.append("")
        out.append(legend())
    return "\n".join(out)


def _dot_files(path: str) -> list[str]:
    """The files ``--dot path`` writes: the DOT text (next to a rendered picture)."""
    from ..viz import RENDER_FORMATS
    if path != "-" and Path(path).suffix.lower().lstrip(".") in RENDER_FORMATS:
        return [str(Path(path).with_suffix(".dot")), path]
    return [path]


def write_dot_files(dot_text: str, path: str) -> list[str]:
    """``--dot``: DOT text to ``path`` (``-``: stdout), or for .svg/.png/.pdf the DOT text next
    to it and the picture rendered by Graphviz when installed; each file written atomically."""
    from .. import viz
    if path == "-":
        sys.stdout.write(dot_text if dot_text.endswith("\n") else dot_text + "\n")
        return []
    files = _dot_files(path)
    write_text(files[0], dot_text)
    written = [files[0]]
    if len(files) == 2:
        rendered = False
        try:
            with atomic_path(path) as tmp:
                rendered = viz.render(dot_text, tmp, fmt=Path(path).suffix.lstrip(".").lower())
                if not rendered:
                    raise _NotWritten
        except _NotWritten:
            print("eqsat-ad: note: " + viz.no_graphviz_note(files[0], path), file=sys.stderr)
        if rendered:
            written.append(path)
    return written


class _NotWritten(Exception):
    """Abandon an atomic write (the old file stays)."""


def cmd_explain(args) -> int:
    from .. import viz
    guard = input_guard(args)
    if args.dot == "-" and args.json == "-":
        raise UsageError("only one of --dot and --json can be '-' (stdout)")
    for f in _dot_files(args.dot) if args.dot else []:
        guard.check(f, "--dot")
    guard.check(args.plot, "--plot", stdout_ok=False)
    guard.check(args.json, "--json")
    prog, name, label = prepare_program(args)
    res = run_optimize(prog, name, args, keep_egraph=True)
    phase_costs = None
    if args.phase_costs or args.plot:      # (--plot needs them)
        kw = optimize_options(args)
        kw["check"] = False
        prog_cb = Progress(enabled=args.progress)
        if prog_cb.enabled:
            kw["progress"] = prog_cb
        try:
            with about_file(name):
                phase_costs = viz.best_cost_per_phase(prog, final=res, **kw)
        finally:
            prog_cb.done()
    owner = _rule_owner(res.session)
    dot_text = None
    if args.dot:       # (before printing anything: a graph too big to draw is an error)
        dot_text = viz.egraph_dot(res.session, max_nodes=args.dot_max_nodes, title=label,
                                  program=res.program, scope=args.dot_scope,
                                  show_support=args.dot_support, collapse_leaves=not args.dot_leaves)
    if "-" not in (args.json, args.dot):
        print(explain_text(res, label, args, owner, phase_costs))
    if args.json:
        from ..cost.units import unit_json
        data = res.to_dict()
        if phase_costs is not None:
            data["phase_costs"] = phase_costs
        data["cost_unit"] = unit_json()     # (an added key: the others are as optimize --json)
        write_json(args.json, data)
    if dot_text is not None:
        for w in write_dot_files(dot_text, args.dot):
            print(f"wrote {w}", file=sys.stderr)
    if args.plot:
        try:
            with atomic_path(args.plot) as tmp:
                if not viz.plot_report(res.report, tmp, phase_costs=phase_costs, title=label):
                    raise _NotWritten
        except _NotWritten:
            print("eqsat-ad: note: matplotlib is not installed; no plot written "
                  "(pip install matplotlib)", file=sys.stderr)
        else:
            print(f"wrote {args.plot}", file=sys.stderr)
    return 0


COMMANDS = {
    "optimize": cmd_optimize,
    "run": cmd_run,
    "rules_list": cmd_rules_list,
    "explain": cmd_explain,
    "schedule_show": cmd_schedule_show,
}
