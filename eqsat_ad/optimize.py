"""``ea.optimize``: program -> e-graph -> schedule -> extraction -> checked program.

>>> import eqsat_ad as ea
>>> p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))")
>>> res = ea.optimize(ea.grad(p, "x"), sizes={"n": 1000})
>>> print(ea.show_expr(res.program.body))         # doctest: +ELLIPSIS
(build n (lambda (...) 1.0))
>>> res.report.stop_reason
'saturated'
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import backend as _backend     # the check compiles with it (looked up at call time)
from .cost.model import CostModel, default_cost_model
from .driver import (BYTES_PER_ENODE, DEFAULT_LIMITS, LIMIT_REASONS, MEMORY_LIMIT, TIME_LIMIT, Budget, Driver,
                     RunReport)
from .egraph.session import SUPPORT_RULESETS, EGraphSession, default_rule_files, rules_dir
from .extract import DEFAULT_EXTRACTOR, EXTRACTORS
from .errors import EqsatError, EvalError, ResourceLimitError, ScheduleError
from .lang.ast import Program
from .lang.interp import evaluate
from .lang.types import size_names
from .runtime import known_size_names
from .strategy.combinators import Limits, Strategy
from .strategy.defaults import default_schedule, saturate_all
from .strategy.schedule_file import load_schedule
from .testing import random_inputs


# Time (docs/strategies.md, "Limits"): everything up to the end of extraction must end by
# END_SHARE of ``limits.seconds`` (counted from the call of ``optimize``) less the time kept for
# the numeric check (check_seconds of the input).  The run stops early enough to keep
# Budget.post_reserve(e-nodes) for the steps after it; finishing substitutions keeps
# FINISH_RESERVE of that; computing costs keeps what extraction and the check need; the check
# gets what is left and starts no step predicted to end past the limit.  Every reserve is CPU
# time measured on a quiet machine times Budget.pace() (wall / CPU time of this call so far).
END_SHARE = 0.95
FINISH_RESERVE = 0.8
#: finishing pending substitutions may grow the e-graph to this many times the node limit
FINISH_NODE_FACTOR = 2.0
#: extraction (serializing the e-graph, reading it into Python, pricing, the tree stage:
#: measured 25-60 us of CPU per e-node on the corpus) is not started with less time left than
#: this many seconds per e-node, times Budget.pace() (it cannot be interrupted before its
#: first candidate)
EXTRACT_SECONDS_PER_ENODE = 60e-6


@dataclass
class OptimizeResult:
    """``program`` (the optimised Program), ``cost`` (its cost under the cost model),
    ``cost_before`` (the input's cost under the same model) and ``report`` (RunReport)."""
    program: Program
    cost: float
    cost_before: float
    report: RunReport
    session: EGraphSession | None = None

    def to_dict(self) -> dict:
        from .lang.syntax import show_program
        return {"program": show_program(self.program), "cost_before": self.cost_before,
                "cost_after": self.cost, "report": self.report.to_dict()}

    # -- display (IPython / Jupyter): costs, report and program text, not a dataclass dump ---
    def __repr__(self) -> str:
        return (f"<OptimizeResult cost {self.cost_before:.6g} -> {self.cost:.6g}, "
                f"stopped: {self.report.stop_reason}, check: {self.report.check}: {self.program!r}>")

    def _text(self) -> str:
        return f"{self.report.summary()}\ncheck: {self.report.check}\n\n{self.program}"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self._text())

    def _repr_html_(self) -> str:
        import html
        return f"<pre class='eqsat-ad-result'>{html.escape(self._text())}</pre>"

    def __getstate__(self) -> dict:
        # the e-graph session (keep_egraph=True) lives in egglog and does not pickle
        state = dict(self.__dict__)
        state["session"] = None
        return state


def _sizes_for(prog: Program, sizes: dict | None, inputs: dict | None, default: int) -> dict[str, int]:
    """The sizes for the cost model: ``sizes`` (validated up front: names the program knows,
    positive integers -- a bad one is an :class:`EqsatError` naming it, before any egglog
    work), else taken from example ``inputs`` (an empty input counts as 1), else ``default``."""
    from .runtime import check_sizes
    given = check_sizes(prog, sizes)
    out: dict[str, int] = {}
    if inputs:
        from .runtime import bind_inputs
        env = bind_inputs(prog, (), inputs)
        for p in prog.params:
            for n in size_names(p.type):
                if n in env:
                    out[n] = max(1, int(env[n]))
    out.update(given)
    for p in prog.params:
        for n in size_names(p.type):
            out.setdefault(n, default)
    return out


def _resolve_schedule(schedule, session: EGraphSession, user_rulesets=()) -> Strategy:
    if schedule is None or schedule == "default":
        from .strategy.defaults import SHIPPED_RULESETS
        if not all(r in session.rulesets for r in SHIPPED_RULESETS if r != "comm"):
            return saturate_all(session.rulesets)     # default_rules=False: run what is loaded
        placed = {name: info.phase.name for name, info in session.rulesets.items() if info.phase is not None}
        return default_schedule(user_rulesets, placed)
    if isinstance(schedule, Strategy):
        return schedule
    if schedule in ("all", "saturate-all", "saturate_all"):
        return saturate_all(session.rulesets)
    if isinstance(schedule, (str, Path)):
        return load_schedule(schedule)
    raise ScheduleError(f"schedule must be None, 'default', 'all', a Strategy or a path, got {schedule!r}")


def unscheduled_rulesets(session: EGraphSession, strategy: Strategy) -> list[str]:
    """Loaded rulesets the strategy never runs (so that none is silently left out; the report's
    notes name them)."""
    from .strategy.combinators import rulesets_used
    used = set(rulesets_used(strategy)) | set(SUPPORT_RULESETS) | {"cost"}
    return [r for r in session.rulesets if r and r not in used]


def _rule_files(rules, default_rules: bool) -> list[Path]:
    files = list(default_rule_files()) if default_rules else [rules_dir() / "subst.egg"]
    for r in ([rules] if isinstance(rules, (str, Path)) else (rules or [])):
        files.append(Path(r))
    return files


#: Sizes the numeric check tries (after ``sizes`` and ``sizes + 1``), small to keep it cheap.
CHECK_SIZES = (3, 4, 2, 5, 1, 6, 7, 8)
#: Tried last, only when the input program failed at every smaller size.
CHECK_SIZES_LARGE = (16, 32, 64)
SKIPPED = "numeric check skipped: "


def _check_plans(names: list[str], first: int, fallback: dict | None) -> list[dict[str, int]]:
    """Size assignments to try: every name a different small size first (a transposed
    index shows), then all names equal (programs that need m = n), then the sizes the
    program was optimised for when they are small (a program that reads element 11), then
    a few larger ones."""
    order = list(dict.fromkeys([first, first + 1, *CHECK_SIZES]))
    plans: list[dict[str, int]] = []
    for t in range(len(order)):
        plans.append({n: order[(t + j) % len(order)] for j, n in enumerate(names)})
    if len(names) > 1:
        plans += [{n: v for n in names} for v in order]
    if fallback and names and all(0 < int(fallback.get(n, 0)) <= 256 for n in names):
        plans.append({n: int(fallback[n]) for n in names})
    plans += [{n: v for n in names} for v in CHECK_SIZES_LARGE]
    out: list[dict[str, int]] = []
    for d in plans:
        if d not in out or not names:
            out.append(d)
    return out


def _short(v, limit: int = 300) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


#: A first estimate of the numeric check's CPU time (the time limit keeps it for the check):
#: fixed + per node of the input program as a tree.  Measured on the corpus: 25-160 us of CPU
#: per node (the interpreter's work grows with loop nesting, not only with size).
CHECK_FIXED_SECONDS = 0.03
CHECK_SECONDS_PER_NODE = 100e-6
CHECK_NODES_CAP = 100_000
#: the first step of the check not done ahead is predicted as this share of the time kept for it
CHECK_FIRST_SHARE = 0.5
#: the check's first step (interpreting the input at the first size) is done before the run
#: when check_seconds' guess for the whole check is under this share of the time left; then
#: the check keeps CHECK_FIXED_SECONDS, compiling the optimised program (CHECK_COMPILE_PER_NODE
#: per distinct node of the input: measured 0.1-0.5 ms of CPU) and CHECK_REST_FACTOR x what that
#: step took (the optimised program interpreted, usually faster than the input, and run)
CHECK_AHEAD_SHARE = 0.5
CHECK_REST_FACTOR = 1.0
CHECK_COMPILE_PER_NODE = 200e-6
#: a step of the check is predicted to take this many times the longest one so far (the next
#: sizes are larger; the compiled program's first call also compiles its NumPy code)
CHECK_STEP_SAFETY = 2.0


def check_seconds(prog: Program, first_step: float | None = None) -> float:
    """The CPU seconds to keep for :func:`check_agrees` on ``prog`` and its optimised version
    (the check then predicts each of its steps from the ones it timed): with ``first_step``
    (the CPU seconds :func:`first_check_value` took), compiling (``CHECK_COMPILE_PER_NODE`` per
    distinct node of ``prog``) and ``CHECK_REST_FACTOR`` x that step; without, a guess from the
    size of ``prog`` as a tree (what the interpreter walks)."""
    from .lang.normalize import dag_size, tree_size
    if first_step is not None:
        return (CHECK_FIXED_SECONDS + CHECK_COMPILE_PER_NODE * dag_size(prog.body)
                + CHECK_REST_FACTOR * first_step)
    return CHECK_FIXED_SECONDS + CHECK_SECONDS_PER_NODE * tree_size(prog.body, CHECK_NODES_CAP)


class _OutOfTime(Exception):
    pass


def _check_inputs(before: Program, sizes: int, seed: int, trials: int, fallback_sizes: dict | None):
    """The check's size plans and, for plan ``k``, its random inputs (one definition for
    :func:`check_agrees` and :func:`first_check_value`)."""
    names = known_size_names(before)
    plans = _check_plans(names, sizes, fallback_sizes) if names else [{} for _ in range(trials)]

    def args_of(k: int) -> list:
        inputs = random_inputs(before, plans[k], seed=seed + k, low=-1.5, high=1.5)
        return [inputs[p.name] for p in before.params]
    return plans, args_of


def first_check_value(before: Program, fallback_sizes: dict | None = None, sizes: int = 3, seed: int = 0,
                      trials: int = 2):
    """The first step of :func:`check_agrees` done ahead: the input program interpreted at the
    first size tried.  Returns ``(value or the EvalError/ResourceLimitError raised, CPU
    seconds it took)``; pass the first as ``check_agrees(..., first_value=)``.  ``optimize``
    does it before the run, so that the time it keeps for the check is measured, not guessed."""
    plans, args_of = _check_inputs(before, sizes, seed, trials, fallback_sizes)
    t = time.process_time()
    try:
        value = evaluate(before, *args_of(0))
    except (EvalError, ResourceLimitError) as e:
        value = e
    return value, time.process_time() - t


_NOT_GIVEN = object()


def check_agrees(before: Program, after: Program, sizes: int = 3, seed: int = 0, trials: int = 2,
                 rtol: float = 1e-7, atol: float = 1e-9, fallback_sizes: dict | None = None,
                 compiled: bool = True, deadline: float | None = None, first_step: float = 0.0,
                 first_value=_NOT_GIVEN) -> str:
    """Run both programs on random small inputs and raise :class:`EqsatError` if they
    disagree: ``after`` with the reference interpreter and, with ``compiled``, also compiled
    by the NumPy backend (so a backend bug shows too), both against ``before`` interpreted.

    Returns ``""`` when at least one size was checked, else a note starting with
    ``"numeric check skipped: "`` saying why (the input program fails on random inputs at
    every size tried, or the time ran out).  Sizes tried, until ``trials`` of them passed:
    ``sizes``, ``sizes + 1`` and the others of 1..8 (each size name a different one, then
    all equal), then the sizes the program was optimised for (``fallback_sizes``) when at
    most 256, then 16, 32 and 64.

    ``deadline`` (a ``time.perf_counter()`` value): no step -- one interpretation, compiling,
    one compiled run -- is started when it is predicted to end past it (predicted:
    ``CHECK_STEP_SAFETY`` times the longest step so far, ``first_step`` seconds before the
    first one), so the check ends by the deadline but for a misprediction of one step; the
    sizes checked by then count.  ``first_value``: :func:`first_check_value`'s value (the
    input interpreted at the first size), not computed again."""
    plans, args_of = _check_inputs(before, sizes, seed, trials, fallback_sizes)
    fn = None
    checked = 0
    why = ""
    longest = first_step

    def step(f, *args):
        nonlocal longest
        t = time.perf_counter()
        if deadline is not None and t + longest * (CHECK_STEP_SAFETY if longest > first_step else 1.0) > deadline:
            raise _OutOfTime
        try:
            return f(*args)
        finally:
            longest = max(longest, time.perf_counter() - t)

    try:
        for k, dims in enumerate(plans):
            args = args_of(k)
            try:
                if k == 0 and first_value is not _NOT_GIVEN:
                    if isinstance(first_value, (EvalError, ResourceLimitError)):
                        raise first_value
                    a = first_value
                else:
                    a = step(evaluate, before, *args)
            except (EvalError, ResourceLimitError) as e:
                why = str(e)
                continue            # the input program is not defined at these sizes
            at = f"sizes {dims}" if dims else "inputs"
            try:
                b = step(evaluate, after, *args)
            except (EvalError, ResourceLimitError) as e:
                raise EqsatError(f"the optimised program fails on random inputs ({at}) where the input "
                                 f"program does not: {e}") from None
            if not _close(a, b, rtol, atol):
                raise EqsatError(f"the optimised program disagrees with the input program on random inputs "
                                 f"({at}): {_short(a)} vs {_short(b)}")
            if compiled:
                if fn is None:
                    try:
                        fn = step(_backend.compile, after)
                    except _OutOfTime:
                        raise
                    except Exception as e:  # noqa: BLE001 - a backend bug: say which program
                        raise EqsatError(f"the NumPy backend cannot compile the optimised program: "
                                         f"{type(e).__name__}: {e}") from None
                try:
                    c = step(fn, *args)
                except _OutOfTime:
                    raise
                except Exception as e:  # noqa: BLE001 - the interpreter ran it: a backend bug
                    raise EqsatError(f"the optimised program compiled by the NumPy backend fails on random "
                                     f"inputs ({at}) where the interpreter runs it: {type(e).__name__}: "
                                     f"{e}") from None
                if not _close(a, c, rtol, atol):
                    raise EqsatError(f"the optimised program compiled by the NumPy backend disagrees with the "
                                     f"input program on random inputs ({at}): {_short(a)} vs {_short(c)}")
            checked += 1
            if checked >= trials:
                break
    except _OutOfTime:
        if not checked:
            return SKIPPED + (f"time limit: its next step (about {longest:.2g} s) would have ended past "
                              f"the deadline")
    if checked:
        return ""
    tried = sorted({v for d in plans for v in d.values()})
    return (SKIPPED + f"the input program fails on random inputs at every size tried "
            f"({', '.join(map(str, tried)) or 'no sizes'})" + (f", e.g. {why}" if why else ""))


def _close(a, b, rtol, atol) -> bool:
    """``a`` and ``b`` are the same value up to rounding: same structure (pairs, ragged
    lists), same shape (no broadcasting), equal up to ``rtol``/``atol`` (nan equals nan)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and \
            all(_close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, list) or isinstance(b, list):
        try:
            la, lb = list(a), list(b)
        except TypeError:
            return False
        return len(la) == len(lb) and all(_close(x, y, rtol, atol) for x, y in zip(la, lb))
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True))


def _finish_substitutions(session: EGraphSession, budget: Budget) -> None:
    # A limit or a bounded schedule may stop in the middle of a substitution (Subst is not
    # extractable, and let-inline subsumes the Let it replaces), so finish pending
    # substitutions (they only push downwards, so this terminates; on a saturated e-graph it
    # is one cheap iteration).  Bounded: it may stop early, and then the root may have no
    # term yet (the input is returned).
    session.saturate(("analysis", "subst"), max_iterations=1000,
                     stop=budget.guard(session, END_SHARE, node_factor=FINISH_NODE_FACTOR,
                                       reserve=lambda n: FINISH_RESERVE * budget.post_reserve(n)))


def _load_costs(session: EGraphSession, model, sz: dict) -> None:
    """Declare egglog's size-aware cost rules for ``model`` and the sizes (once per session)."""
    from .egraph.constructors import CONSTRUCTORS
    from .egraph.costrules import fold_shape_costs
    session.load_cost_rules(model.egglog_opcost() if hasattr(model, "egglog_opcost") else model.opcost,
                            overhead={c: model.calls_overhead(c) for c in CONSTRUCTORS}
                            if hasattr(model, "calls_overhead") else None,
                            fold_costs=fold_shape_costs(model) if hasattr(model, "calls_overhead") else None)
    session.set_sizes(sz)


def _checkpoint(session: EGraphSession, prog: Program, model, sz: dict, extractor: str, budget: Budget,
                phase: str, out: list) -> None:
    """Append ``("before-PHASE", body)`` to ``out``: the program the e-graph holds now, before a
    phase with ``Limits.checkpoint``, a candidate of the final extraction (so the phase never
    makes the result costlier).  Finished, priced and read on a snapshot (push/pop: nothing the
    schedule sees changes), extracted by the Python extractors (``ilp`` runs ``dag`` here);
    skipped when the time left is short or a step stops at a limit."""
    from .extract import extract_with
    if budget.remaining(END_SHARE) < 2 * _extract_reserve(budget, session.enode_count()):
        return
    _load_costs(session, model, sz)
    session.combined(("analysis", "subst"))    # declared outside the snapshot, so pop keeps it
    session.run_text("(push)")
    try:
        _finish_substitutions(session, budget)
        if not session.stopped:
            session.compute_costs(stop=budget.guard(session, END_SHARE, node_factor=float("inf")))
        if session.stopped:
            return
        body, _ = extract_with("tree" if extractor == "tree" else "dag", session, model, sz, program=prog,
                               deadline=budget.deadline(END_SHARE), egglog=False)
    except EqsatError:
        return
    finally:
        session.run_text("(pop)")
        session.stopped = None
    out.append((f"before-{phase}", body))


def _extract_within(session: EGraphSession, prog: Program, model, sz: dict, extractor: str,
                    budget: Budget, report: RunReport, progress=None,
                    before=()) -> tuple[Program | None, dict, str | None]:
    """Everything between the run and the result, each step within ``budget``: finish pending
    substitutions, compute costs, extract, rename, type-check.  Returns ``(program, extra,
    why)``: the extracted program (None when a limit left none) and, when a limit cut a step
    short, why (``"time limit while finishing substitutions"``, ...).  ``before``: ``(name,
    body)`` candidates extracted during the run (:func:`_checkpoint`)."""
    from .lang.typecheck import check_program
    extra: dict = {}
    cut: str | None = None
    t = time.perf_counter()
    _stage(progress, "finishing substitutions")
    _finish_substitutions(session, budget)
    if session.stopped:
        cut = f"{session.stopped} while finishing substitutions"
    extra["seconds_finish"] = time.perf_counter() - t
    extra["enodes_finished"] = session.enode_count()
    t = time.perf_counter()
    _stage(progress, f"computing costs ({session.enode_count()} e-nodes)")
    _load_costs(session, model, sz)
    session.compute_costs(stop=budget.guard(session, END_SHARE, node_factor=float("inf"),
                                            reserve=lambda n: _extract_reserve(budget, n)))
    extra["seconds_costs"] = time.perf_counter() - t
    egglog_costs = not session.stopped
    if session.stopped:
        if not session.analysis_done:
            return None, extra, f"{session.stopped} while computing costs"
        # the Python extractors price the e-graph themselves; only egglog's own tree (one
        # candidate) needs egglog's costs, so go on without it
        cut = cut or f"{session.stopped} while computing costs (egglog's tree left out)"
    need = _extract_reserve(budget, extra["enodes_finished"])
    if budget.remaining(END_SHARE) < need:
        return None, extra, f"time limit: no time left to extract (about {need:.2g} s needed)"
    if budget.memory_short(BYTES_PER_ENODE * extra["enodes_finished"]):
        return None, extra, "memory limit: not enough memory left to extract"
    # every extractor returns its cheapest candidate under model.dag_cost, each one starting
    # from the previous one's result (ILP <= DAG <= tree; egglog's tree is a candidate of all)
    from .extract import extract_with, program_measure
    _stage(progress, f"extracting ({extractor} extractor, {extra['enodes_finished']} e-nodes)")
    # extraction ends early enough to leave the numeric check its time
    deadline = budget.deadline(END_SHARE)
    if deadline is not None:
        deadline -= budget.pace() * budget.check_seconds
    measure = program_measure(model, sz, prog, deadline=deadline)
    try:
        body, ex = extract_with(extractor, session, model, sz, program=prog,
                                deadline=deadline, egglog=egglog_costs, measure=measure, seeds=before)
    except EqsatError as e:
        if deadline is not None and time.perf_counter() >= deadline:
            return None, extra, f"time limit while extracting: {e}"
        if cut or report.stop_reason in LIMIT_REASONS:
            return None, extra, (f"no program could be extracted after the run stopped "
                                 f"({cut or report.stop_reason}): {e}")
        raise EqsatError(f"no program could be extracted after the run stopped ({report.stop_reason}): "
                         f"{e}") from None
    extra.update(ex)
    if ex.get("stopped"):
        cut = cut or f"{ex['stopped']} while extracting"
    _stage(progress, "type-checking the extracted program")
    out = measure.program(body)        # the program the extractor priced (renamed once)
    check_program(out)
    # loops of the extracted term merged by the renaming's sharing (one computation up to bound
    # names): copies the e-graph kept apart, where a further round may find more (_more_rounds)
    extra["loops_merged"] = _loop_count(body) - _loop_count(out.body)
    return out, extra, cut


def _loop_count(e) -> int:
    from .lang.ast import Build, IFold, Scan, Sum
    from .lang.binders import _postorder
    return sum(type(n) in (Build, Sum, IFold, Scan) for n in _postorder(e))


def _more_rounds(out, cost, rounds, sz, schedule, rules, default_rules, extractor, model, limits,
                 budget, progress, report):
    """Optimise the extracted ``out`` again, up to ``rounds`` times (:data:`EXTRA_ROUNDS`), within
    what is left of the call's budget; the cheapest program and its cost."""
    costs = [cost]
    for _ in range(rounds):
        left = budget.remaining()
        if left <= 0:
            break
        _stage(progress, f"round {len(costs) + 1}: the extracted program, alpha-normalised")
        r = _optimize(out, sz, schedule, rules, default_rules, extractor, model,
                      limits.tighter(Limits(seconds=left)), None, False, progress, False, rounds=0)
        if r.report.extraction.get("chosen") == "input" or r.cost > cost * (1 - ROUND_GAIN):
            break
        out, cost = r.program, r.cost
        costs.append(cost)
        if r.report.extraction.get("loops_merged", 0) <= 0:
            break
    if len(costs) > 1:
        report.extraction["round_costs"] = costs
    return out, cost


def _extract_reserve(budget: Budget, enodes: int) -> float:
    """Seconds to keep for extraction from ``enodes`` e-nodes and the numeric check."""
    return budget.pace() * (EXTRACT_SECONDS_PER_ENODE * enodes + budget.check_seconds)


def optimize(prog: Program, sizes: dict[str, int] | None = None, *, schedule=None,
             rules: Sequence[str | Path] | str | Path | None = None, default_rules: bool = True,
             extractor: str = DEFAULT_EXTRACTOR, cost_model: CostModel | None = None,
             limits: Limits | dict | None = None, inputs: dict | None = None, check: bool = True,
             progress=None, keep_egraph: bool = False, backend=None) -> OptimizeResult:
    """Optimise ``prog`` by equality saturation and extract the cheapest equivalent program.

    - ``sizes``: values of the size names for the cost model (or give example ``inputs``);
      unknown sizes default to the cost model's ``default_size`` (1000).
    - ``schedule``: ``None``/``"default"`` (phase-ordered; rulesets from user rule files get
      a phase of their own), ``"all"`` (every ruleset to saturation), a :class:`Strategy`, or
      the path of a schedule ``.egg`` file.
    - ``rules``: extra rule files (loaded exactly like ours); ``default_rules=False`` uses only
      them (plus the substitution rules every rule relies on).
    - ``extractor``: ``"tree"`` (cheapest tree: egglog's and the cost model's), ``"dag"``
      (the default: shared sub-terms paid once; never worse than ``"tree"``) or ``"ilp"`` (a 0-1 program,
      needs scipy; never worse than ``"dag"``), all judged by ``cost_model.dag_cost``.
    - ``limits``: :class:`Limits` or a dict with ``iterations``, ``nodes``, ``seconds``,
      ``memory`` (MiB).  They bound the whole call, not only the run: when one is reached,
      the best program found so far is returned (at worst the input) with the stop reason.
    - ``check``: compare the result with the input on random inputs (reference interpreter).
    - ``progress``: ``True`` shows a progress line on stderr when it is a terminal (each
      phase and iteration, then finishing, costs, extraction, the numeric check); or a
      callable ``progress(phase_report, iteration)`` (see :mod:`eqsat_ad.progress`).
    - ``backend``: the backend the result will run on (``"numpy"``, ``"numba"``, ...; see
      :mod:`eqsat_ad.backend.registry`): without ``cost_model``, costs are that backend's
      calibrated table, so the extractor picks what runs fast there.

    The input program is always a candidate: when the extracted program costs more than the
    input under ``cost_model.dag_cost`` (or none could be extracted within the limits), the
    input is returned, ``report.extraction["chosen"] == "input"`` and a note says why.
    """
    from .progress import resolve
    cost_model = _model_for(cost_model, backend)
    cb = resolve(progress)
    if cb is None or cb is progress:
        return _optimize(prog, sizes, schedule, rules, default_rules, extractor, cost_model, limits,
                         inputs, check, cb, keep_egraph)
    try:                                   # progress=True: our line, cleared when done
        return _optimize(prog, sizes, schedule, rules, default_rules, extractor, cost_model, limits,
                         inputs, check, cb, keep_egraph)
    finally:
        cb.done()


def _model_for(cost_model: CostModel | None, backend) -> CostModel | None:
    """``cost_model``, else the calibrated table of ``backend`` (None: neither given)."""
    if cost_model is None and backend is not None:
        from .backend.registry import get_backend
        return get_backend(backend).cost_model()
    return cost_model


def _stage(progress, text: str) -> None:
    if progress is not None:
        from .progress import stage
        stage(progress, text)


#: further rounds on the extracted program, while the last round's extracted term had loops
#: that are one computation up to bound names (``report.extraction["loops_merged"]``) and the
#: round gained at least :data:`ROUND_GAIN` of the cost.  Rewriting copies sub-terms whose copies
#: differ only in binder names (sum fission and loop-invariant motion keep the loop's name), and
#: the e-graph keeps such copies apart, so an identity between them goes unseen (softmax with the
#: max shift: the shift's one-hot tangent added and taken away again, against two copies of the
#: normaliser).  The extracted program is normalised -- common sub-terms merged up to bound
#: names -- and encoded afresh, where the copies are one e-class.  Other programs pay nothing.
EXTRA_ROUNDS = 2
ROUND_GAIN = 1e-3


def _optimize(prog, sizes, schedule, rules, default_rules, extractor, cost_model, limits, inputs,
              check, progress, keep_egraph, rounds: int | None = None) -> OptimizeResult:
    t_start, cpu_start = time.perf_counter(), time.process_time()
    from .ad.api import prepare

    if extractor not in EXTRACTORS:
        raise EqsatError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    if isinstance(limits, dict):
        limits = Limits(**limits)
    limits = DEFAULT_LIMITS.tighter(limits) if limits else DEFAULT_LIMITS
    # one budget for the whole call, on a clock started now: loading, the run and every step
    # after it (which check the same budget between their iterations) count against it
    budget = Budget(limits, start=t_start, cpu_start=cpu_start)
    model = cost_model or default_cost_model()
    prog = prepare(prog)
    sz = _sizes_for(prog, sizes, inputs, model.default_size)
    first_value = _NOT_GIVEN
    if check:
        # the check's first step (the input interpreted at the first size) is done now, when
        # the guess says it fits in a share of the time: what it took sizes the time kept for
        # the rest (the optimised program interpreted, compiled and run at that size)
        guess = check_seconds(prog)
        if budget.remaining() > CHECK_AHEAD_SHARE * budget.pace() * guess:
            first_value, first_cpu = first_check_value(prog, fallback_sizes=sz)
            budget.check_seconds = check_seconds(prog, first_cpu)
        else:
            budget.check_seconds = guess

    files = _rule_files(rules, default_rules)
    _stage(progress, "loading rules")
    session = EGraphSession(files)
    ours = {str(f) for f in default_rule_files()}
    user_rulesets = [info.name for info in session.rulesets.values()
                     if info.file not in ours and info.file in {str(f) for f in files}]
    strategy = _resolve_schedule(schedule, session, user_rulesets)
    from .strategy.combinators import rulesets_used
    for r in rulesets_used(strategy):
        session.combined((r,))          # unknown ruleset -> ScheduleError naming it
    unscheduled = unscheduled_rulesets(session, strategy)
    session.add_program(prog)
    # costs of what the backend runs: sub-terms it computes once are paid once.  The input's
    # cost first: it is the bar to beat, and its time counts against the run's.
    measure = getattr(model, "dag_cost", model.program_cost)
    cost_before = measure(prog, sz)
    before: list = []        # (name, body): programs extracted before checkpointed phases
    driver = Driver(session, limits, progress=progress, budget=budget, time_share=END_SHARE, reserve=True,
                    checkpoint=lambda pr: _checkpoint(session, prog, model, sz, extractor, budget, pr.name, before))
    report = driver.run(strategy)
    report.rule_files = [str(f) for f in session.rule_files]
    if unscheduled:
        report.notes.append(f"loaded but not run by this schedule: {', '.join(unscheduled)}")
    report.sizes = sz

    t0 = time.perf_counter()
    out, extra, cut = _extract_within(session, prog, model, sz, extractor, budget, report, progress, before)
    report.extraction = {"extractor": extractor, "seconds": time.perf_counter() - t0, **extra}
    # never worse: the input is a candidate too (let-inline subsumes, so the e-graph may no
    # longer hold it, and a limit may leave nothing better)
    cands = report.extraction.setdefault("candidates", {})
    cands["input"] = cost_before
    cost_after = None
    if out is not None:      # the extractors' cost is this measure of this program (reuse it)
        cost_after = extra["cost"] if isinstance(extra.get("cost"), float) else measure(out, sz)
    if out is None or cost_after > cost_before:
        why = cut if out is None else (f"the extracted program costs more than the input "
                                       f"({cost_after:.6g} > {cost_before:.6g})")
        if cost_after is not None:
            report.extraction["extracted_cost"] = cost_after
        out, cost_after = prog, cost_before
        report.extraction["chosen"] = "input"
        report.extraction["cost"] = cost_before
        report.notes.append(f"the input program is returned: {why}")
    if out is not prog and not cut and report.stop_reason not in (TIME_LIMIT, MEMORY_LIMIT) \
            and extra.get("loops_merged", 0) > 0:
        out, cost_after = _more_rounds(out, cost_after, EXTRA_ROUNDS if rounds is None else rounds, sz, schedule, rules, default_rules,
                                       extractor, model, limits, budget, progress, report)
    if cut:
        report.extraction["limit"] = cut
        reason = next((r for r in LIMIT_REASONS if r in cut), None)
        if reason and report.stop_reason not in LIMIT_REASONS:
            report.stop_reason = reason
    report.cost_before, report.cost_after = cost_before, cost_after
    # report.check: "verified" only when the numeric check ran (see check_agrees)
    report.check = "disabled"
    if check:
        if out is prog:
            report.check = "skipped: the result is the input program"
        else:
            _stage(progress, "numeric check (random inputs, interpreter and NumPy backend)")
            t_check = time.perf_counter()
            note = check_agrees(prog, out, fallback_sizes=sz, deadline=budget.deadline(),
                                first_step=budget.pace() * budget.check_seconds * CHECK_FIRST_SHARE,
                                first_value=first_value)
            report.extraction["seconds_check"] = time.perf_counter() - t_check
            report.check = "skipped: " + note[len(SKIPPED):] if note else "verified"
            if note:
                report.notes.append(note)
    # the tree cost is for the report only: left out (None) when the time is up
    report.extraction["tree_cost"] = model.program_cost(out, sz) if budget.remaining() > 0 else None
    report.extraction["seconds_total"] = time.perf_counter() - t_start
    return OptimizeResult(out, cost_after, cost_before, report, session if keep_egraph else None)


def optimize_bindings(prog: Program, sizes: dict[str, int] | None = None, **kw) -> OptimizeResult:
    """:func:`optimize` applied to each top-level ``let`` binding of ``prog`` on its own (a
    program whose parameters are ``prog``'s and the earlier bindings it reads), then to the
    body, keeping the bindings as they are: for a program whose bindings already are the
    right materialisation -- reverse mode's statements (:mod:`eqsat_ad.ad.loopnest`), each
    computed once and read by several adjoints.  Optimised as one program, the e-graph
    inlines a binding read once into a loop over another index, which the cost model prices
    as hoisted out of that loop; where the backend does not hoist it (a read at a computed
    index may raise, so Numba keeps it in the loop) the result ran 15x (GradBench's gmm,
    d = 2, k = 5) to 250x (d = 10, k = 25) slower.  ``sizes`` and the keywords are
    :func:`optimize`'s, per binding; a binding whose array extent is not a size name gets a
    fresh one (its value computed from ``sizes``).  The report's phases, seconds and notes
    are the bindings' together, its e-nodes the largest e-graph's, its stop reason the first
    limit any binding reached."""
    from .lang.binders import free_vars
    from .lang.typecheck import program_env, type_of
    from .lang.types import ArrayT
    from .lang.ast import Build, Get, Int, Let, Param
    from .lang.binders import fresh
    from .driver import COMPLETED, RunReport
    sz = dict(sizes or {})
    binds: list = []
    body = prog.body
    while isinstance(body, Let):
        binds.append((body.name, body.value))
        body = body.body
    env = program_env(prog)
    typed: dict[str, Param] = {}
    taken = set(env) | {n for n, _ in binds}
    reports, out_binds = [], []

    def retype(t, e):
        """``t`` with every extent a size name (a fresh one, valued from ``sz``, for an
        expression), or None where an extent cannot be valued."""
        if not isinstance(t, ArrayT):
            return t
        size = t.size
        if size is None:
            n = e.size if isinstance(e, Build) else None
            value = _size_value(n, sz) if n is not None else None
            if value is None:
                return None
            size = fresh("z", taken)
            taken.add(size)
            sz[size] = value
        inner = retype(t.elem, e.body if isinstance(e, Build) else Get(e, Int(0)))
        return None if inner is None else ArrayT(inner, size)

    def piece(value):
        fv = free_vars(value)
        params = prog.params + tuple(typed[v] for v, _ in out_binds if v in fv and v in typed)
        if any(v in fv and v not in typed for v, _ in out_binds):
            return value                                 # reads a binding we could not type
        res = optimize(Program(params, value), sz, **kw)
        reports.append(res.report)
        return res.program.body

    for name, value in binds:
        out_binds.append((name, piece(value)))
        env[name] = type_of(value, env)
        t = retype(env[name], value)
        if t is not None:
            typed[name] = Param(name, t)
    out = piece(body)
    for name, value in reversed(out_binds):
        out = Let(name, value, out)
    out_prog = Program(prog.params, out)
    model = _model_for(kw.get("cost_model"), kw.get("backend")) or default_cost_model()
    measure = getattr(model, "dag_cost", model.program_cost)
    report = RunReport(phases=[p for r in reports for p in r.phases],
                       seconds=sum(r.seconds for r in reports),
                       enodes=max((r.enodes for r in reports), default=0),
                       notes=[n for r in reports for n in r.notes])
    report.stop_reason = next((r.stop_reason for r in reports if r.stop_reason in LIMIT_REASONS),
                              reports[0].stop_reason if reports else COMPLETED)
    checks = {r.check for r in reports}
    report.check = "verified" if checks == {"verified"} else ", ".join(sorted(checks))
    report.notes.insert(0, f"optimised binding by binding: {len(reports)} programs")
    before, after = measure(prog, sz), measure(out_prog, sz)
    report.cost_before, report.cost_after = before, after
    return OptimizeResult(out_prog, after, before, report, None)


def _size_value(n, sizes: dict) -> int | None:
    """The value of an extent expression of size names (by the reference interpreter), or
    None where it reads something else or fails."""
    from .lang.ast import Param
    from .lang.binders import free_vars
    from .lang.types import SIZE
    names = sorted(free_vars(n))
    if not all(v in sizes for v in names):
        return None
    try:
        return int(evaluate(Program(tuple(Param(v, SIZE) for v in names), n), **{v: sizes[v] for v in names}))
    except EqsatError:
        return None
