"""Run a strategy on an e-graph, one iteration at a time, with limits and a report.

egglog cannot interrupt a running iteration, so limits (iterations, e-nodes, seconds, memory)
are checked between iterations; a run can overshoot a limit by at most one iteration.  Time
and memory are also *predicted*: an iteration is not started when the recent iterations say
it would end past the deadline or above the memory limit.  Every run ends with a stop reason:
``saturated``, ``schedule completed``, ``iteration limit``, ``node limit``, ``time limit``
or ``memory limit``.

:class:`Budget` holds the limits of a whole ``optimize`` call (one clock started when the call
started, the node and memory limits); the driver gets a share of its time, and the work after
the run (finishing substitutions, costs, extraction, the numeric check) checks the same
budget between its steps (:meth:`Budget.guard`).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from .egraph.session import SUPPORT_RULESETS, EGraphSession
from .strategy.combinators import (LeftChoice, Limits, Phase, Repeat, Run, Saturate, Seq, Strategy,
                                   phases_of, schedule_expr)

SATURATED, COMPLETED = "saturated", "schedule completed"
#: a phase bounded by ``growth`` may always add this many e-nodes (a small e-graph saturates
#: cheaply; the bound is for large ones)
GROWTH_FLOOR = 1000
ITER_LIMIT, NODE_LIMIT, TIME_LIMIT = "iteration limit", "node limit", "time limit"
MEMORY_LIMIT = "memory limit"
LIMIT_REASONS = (ITER_LIMIT, NODE_LIMIT, TIME_LIMIT, MEMORY_LIMIT)
DEFAULT_LIMITS = Limits(iterations=2000, nodes=200_000, seconds=60.0)

#: memory per e-node kept for what follows: the e-graph itself takes well under 1 KB per
#: e-node (measured: 100 MB resident at 146k e-nodes), but extraction serializes it to JSON and
#: reads it into Python objects (measured peaks: 466 MB at 140k e-nodes, 1.25 GB at 270k)
BYTES_PER_ENODE = 5000
#: the next iteration is predicted to take this many times the slowest of the recent ones
TIME_SAFETY = 1.5
RECENT = 3
#: an iteration predicted to take the e-graph past this many times a node limit is not run
#: (stop reason ``node limit``): growth is geometric when rules feed each other (one
#: iteration took 17,852 e-nodes to 269,132), so the prediction multiplies by the last
#: iteration's growth factor
NODE_OVERSHOOT = 1.5
#: the same for a phase's growth cap (``growth=``): an iteration predicted to pass the cap is
#: not run.  The cap is the schedule's own bound on rulesets that explode, not a resource limit,
#: so nothing is gained by going past it: with 1.5 (as for the node limit) pipeline20's gradient
#: went from 1,964 to 12,212 e-nodes in the user phase (cap 11,784) and to 19,781 in one
#: iteration of cleanup (cap 18,318), for no cheaper program.
GROWTH_OVERSHOOT = 1.0
#: a growth-bounded phase's first iteration has no growth of its own to predict from (the
#: recent iterations are the previous phase's, with other rulesets), and what the previous phase
#: left unapplied at its own bound can all match at once: finish's first iteration took the
#: weight-normalisation gradient from 1,903 to 25,074 e-nodes (ring's factor-l matched 13,645
#: times), for the cost it had before.  So that iteration runs on a snapshot (egglog's push/pop)
#: and is undone when it takes the e-graph past this many times the phase's bound; the phase then
#: ends (stop reason ``node limit``) as if the iteration had been predicted past it.  Within the
#: factor it is kept (gmm's split: 3.2k -> 9.1k e-nodes against a bound of 6.3k, and the cheaper
#: program).  Only where the snapshot is small (:data:`UNDO_MAX_NODES`) and the phase before
#: ended at a bound (after a saturated phase there is no backlog; the snapshot and the rerun of the
#: kept iteration cost 0.05-0.1 s on the small corpus programs, about the whole run's time).
UNDO_FACTOR = 2.0
UNDO_MAX_NODES = 20_000
#: CPU time kept for the work after the run (finishing substitutions, costs, extraction,
#: renaming, type checks, the model's costs): fixed + per e-node, times :meth:`Budget.pace`
#: (the numeric check is kept apart: :attr:`Budget.check_seconds`).  Measured on the corpus:
#: 30-70 us of CPU per e-node (more when the extracted program is large).
POST_FIXED_SECONDS = 0.05
POST_SECONDS_PER_ENODE = 80e-6
#: :meth:`Budget.pace` is 1 until this many seconds have passed (too short a sample to say)
PACE_MIN_SECONDS = 0.02
#: and at most this (a process that waited longer than this was stopped, not slowed)
PACE_MAX = 8.0


def post_seconds(enodes: int) -> float:
    """Seconds to keep for the work after the run on an e-graph of ``enodes`` e-nodes."""
    return POST_FIXED_SECONDS + POST_SECONDS_PER_ENODE * max(0, enodes)


def rss_bytes() -> int | None:
    """Resident memory of this process now (``/proc/self/statm``); None where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo``; None where unavailable."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_memory_mb() -> float | None:
    """The memory limit used when none is given: 60 % of what this process holds plus what the
    machine has available now (so a run stops before the machine runs out), or None when
    the system does not say."""
    avail, rss = available_bytes(), rss_bytes()
    if avail is None or rss is None:
        return None
    return 0.6 * (avail + rss) / 2**20


class Budget:
    """The limits of one whole optimisation, on one clock started at ``start``.

    ``deadline(f)`` is the time by which a share ``f`` of ``limits.seconds`` has passed;
    ``exceeded(...)`` says which limit (if any) is reached now; ``guard(...)`` gives a check
    to call before each step of a loop (it also predicts the next step's time from the
    previous ones).  The memory limit is ``limits.memory`` MiB of resident memory, or
    :func:`default_memory_mb` when ``limits.memory`` is None."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, start: float | None = None,
                 memory_mb: float | None = None, cpu_start: float | None = None):
        self.limits = limits
        self.start = time.perf_counter() if start is None else start
        # the process's CPU clock at ``start`` (for pace: pass it with an earlier ``start``)
        self.cpu_start = time.process_time() if cpu_start is None else cpu_start
        #: CPU seconds to keep, besides :func:`post_seconds`, for the numeric check after the
        #: run (``optimize`` sets it from the size of the input program)
        self.check_seconds = 0.0
        mem = getattr(limits, "memory", None)
        if mem is None:
            mem = memory_mb if memory_mb is not None else default_memory_mb()
        self.memory_bytes = None if mem is None else float(mem) * 2**20

    def deadline(self, share: float = 1.0) -> float | None:
        s = self.limits.seconds
        return None if s is None else self.start + share * s

    def remaining(self, share: float = 1.0) -> float:
        d = self.deadline(share)
        return float("inf") if d is None else d - time.perf_counter()

    def pace(self) -> float:
        """Wall-clock seconds per CPU second of this process since the budget started (at
        least 1): on a machine shared with other work a step takes this many times its CPU
        time.  The reserves for the steps after the run (measured as CPU time on a quiet
        machine) are multiplied by it, so that a loaded machine does not push the end of the
        call past the limit."""
        wall = time.perf_counter() - self.start
        cpu = time.process_time() - self.cpu_start
        if wall < PACE_MIN_SECONDS or cpu <= 0:
            return 1.0
        return min(PACE_MAX, max(1.0, wall / cpu))

    def post_reserve(self, enodes: int) -> float:
        """Seconds to keep after the run for an e-graph of ``enodes`` e-nodes: the work after
        it (:func:`post_seconds`) and the numeric check (:attr:`check_seconds`), at this
        machine's :meth:`pace`."""
        return self.pace() * (post_seconds(enodes) + self.check_seconds)

    def exceeded(self, share: float = 1.0, nodes: int | None = None, node_factor: float = 1.0,
                 next_seconds: float = 0.0, next_nodes: int = 0, reserve: float = 0.0) -> str | None:
        """The limit reached (or predicted to be reached by a step of ``next_seconds``, keeping
        ``reserve`` seconds, and ``next_nodes`` x ``BYTES_PER_ENODE`` bytes of memory, for what
        follows): ``time limit``, ``node limit``, ``memory limit``; else None."""
        d = self.deadline(share)
        if d is not None and time.perf_counter() + next_seconds + reserve >= d:
            return TIME_LIMIT
        if nodes is not None and self.limits.nodes is not None and nodes >= node_factor * self.limits.nodes:
            return NODE_LIMIT
        if self.memory_short(max(0, next_nodes) * BYTES_PER_ENODE):
            return MEMORY_LIMIT
        return None

    def memory_short(self, ahead: float = 0.0) -> bool:
        """Would resident memory plus ``ahead`` bytes reach the memory limit?"""
        if self.memory_bytes is None:
            return False
        rss = rss_bytes()
        return rss is not None and rss + ahead >= self.memory_bytes

    def guard(self, session: EGraphSession | None = None, share: float = 1.0, node_factor: float = 1.0,
              reserve=None):
        """A callable for :meth:`EGraphSession.saturate`'s ``stop``: called before each step,
        returns the limit that stops the loop or None.  It times the steps between its calls
        and does not start one predicted to end past the deadline less ``reserve(e-nodes)``
        seconds (the time the steps after it need)."""
        last = [time.perf_counter(), None]
        times: list[float] = []
        counts: list[int] = []

        def check() -> str | None:
            now = time.perf_counter()
            if last[1] is not None:
                times.append(now - last[0])
            last[0], last[1] = now, True
            n = session.enode_count() if session is not None else None
            if n is not None:
                counts.append(n)
            grow = max((b - a for a, b in zip(counts[-RECENT - 1:], counts[-RECENT:])), default=0)
            nxt = TIME_SAFETY * max(times[-RECENT:], default=0.0)
            keep = reserve(n + grow) if reserve is not None and n is not None else 0.0
            return self.exceeded(share, n, node_factor, next_seconds=nxt, next_nodes=grow, reserve=keep)
        return check


class _Stop(Exception):
    def __init__(self, reason: str, scope: str):
        self.reason, self.scope = reason, scope


@dataclass
class PhaseReport:
    """What one phase did."""
    name: str
    schedule: str
    iterations: int = 0
    enodes_before: int = 0
    enodes_after: int = 0
    eclasses_after: int = 0
    seconds: float = 0.0
    stop_reason: str = COMPLETED
    matches: dict[str, int] = field(default_factory=dict)
    rule_seconds: dict[str, float] = field(default_factory=dict)   # search+apply time per rule
    enodes_per_iteration: list[int] = field(default_factory=list)


@dataclass
class RunReport:
    """The report of one optimisation: phases, totals, extraction, stop reason."""
    phases: list[PhaseReport] = field(default_factory=list)
    stop_reason: str = COMPLETED
    seconds: float = 0.0
    enodes_start: int = 0
    enodes: int = 0
    eclasses: int = 0
    rule_files: list[str] = field(default_factory=list)
    extraction: dict = field(default_factory=dict)
    cost_before: float | None = None
    cost_after: float | None = None
    sizes: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: the numeric check of optimize: "verified", "skipped: <why>" or "disabled"
    check: str = "disabled"

    # -- display (IPython / Jupyter): the summary, not a dataclass dump ----------------------
    def __repr__(self) -> str:
        return (f"<RunReport {len(self.phases)} phases, {self.iterations} iterations, "
                f"{self.enodes} e-nodes, {self.seconds:.3g} s, stopped: {self.stop_reason}, "
                f"check: {self.check}>")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self.summary())

    def _repr_html_(self) -> str:
        import html
        return f"<pre class='eqsat-ad-report'>{html.escape(self.summary())}</pre>"

    @property
    def iterations(self) -> int:
        return sum(p.iterations for p in self.phases)

    def matches(self) -> dict[str, int]:
        """Matches per rule, summed over phases."""
        out: dict[str, int] = {}
        for p in self.phases:
            for k, v in p.matches.items():
                out[k] = out.get(k, 0) + v
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["iterations"] = self.iterations
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def summary(self) -> str:
        """A readable table: one line per phase, then the totals and the stop reason."""
        rows = [f"{'phase':<10} {'iters':>5} {'e-nodes':>15} {'e-classes':>9} {'time s':>7}  stop reason"]
        for p in self.phases:
            rows.append(f"{p.name:<10} {p.iterations:>5} {p.enodes_before:>6} -> {p.enodes_after:<6} "
                        f"{p.eclasses_after:>9} {p.seconds:>7.3f}  {p.stop_reason}")
        rows.append(f"total: {self.iterations} iterations, {self.enodes} e-nodes, {self.eclasses} e-classes, "
                    f"{self.seconds:.3f} s; stopped: {self.stop_reason}")
        if self.cost_before is not None and self.cost_after is not None:
            from .cost.units import UNIT
            rows.append(f"model cost: {self.cost_before:.6g} -> {self.cost_after:.6g} {UNIT}"
                        + (f" ({times_cheaper(self.cost_before, self.cost_after)})" if self.cost_after else ""))
        return "\n".join(rows)


def times_cheaper(before: float, after: float) -> str:
    """``75.5x cheaper``, ``5,570x cheaper`` (three significant digits, no exponent), or
    ``no cheaper`` when the two differ by less than 0.5 %."""
    r = before / after
    if abs(r - 1.0) < 0.005:
        return "no cheaper"
    return (f"{r:,.0f}" if r >= 1000 else f"{r:.3g}") + "x cheaper"


class Driver:
    """Executes a :class:`Strategy` on an :class:`EGraphSession` step by step."""

    def __init__(self, session: EGraphSession, limits: Limits = DEFAULT_LIMITS,
                 support: tuple[str, ...] = SUPPORT_RULESETS, progress=None,
                 budget: Budget | None = None, time_share: float = 1.0, reserve: bool = False,
                 checkpoint=None):
        """``budget``: the clock and limits of the whole optimisation (``optimize`` passes its
        own, started when it was called); without one, the run's own start is the clock.
        ``time_share``: the share of ``limits.seconds`` (counted from the budget's start) the run
        may use; with ``reserve`` it also keeps :meth:`Budget.post_reserve` of the e-graph for
        the work after the run (``optimize`` does).  ``checkpoint(phase_report)``: called before
        the first iteration of a phase with ``Limits.checkpoint`` (``optimize`` extracts the
        program the e-graph holds then: a candidate of the final extraction)."""
        self.s, self.limits, self.support, self.progress = session, limits, support, progress
        self.checkpoint = checkpoint
        self.budget, self.time_share, self.reserve = budget, time_share, reserve
        self.report = RunReport()
        self._t0 = 0.0
        self._iters = 0
        self._recent: list[tuple[float, int, int]] = []  # (seconds, e-nodes before, after) of recent iterations

    # -- public ------------------------------------------------------------------------
    def run(self, strategy: Strategy) -> RunReport:
        self._t0 = time.perf_counter()
        if self.budget is None:
            self.budget = Budget(self.limits, start=self._t0)
        self.report.enodes_start = self.s.enode_count()
        reasons = []
        run_stop = None          # a limit of the whole run (not a phase's bound) stopped it
        self._prev_cut = False   # the phase before this one ended at a bound (left matches unapplied)
        for ph in phases_of(strategy):
            try:
                sched = schedule_expr(ph.body)
            except Exception:
                sched = repr(ph.body)
            pr = PhaseReport(ph.name, sched, enodes_before=self.s.enode_count())
            self.report.phases.append(pr)
            t0 = time.perf_counter()
            lim = ph.limits
            self._phase = (pr, lim, t0, self._iters)
            self._last_updated = True
            try:
                self._exec(ph.body, pr)
                pr.stop_reason = COMPLETED if self._last_updated else SATURATED
            except _Stop as st:
                pr.stop_reason = st.reason
                if st.scope == "run":
                    run_stop = st.reason
                    self._close(pr, t0)
                    break
            self._close(pr, t0)
            reasons.append(pr.stop_reason)
            self._prev_cut = pr.stop_reason not in (SATURATED, COMPLETED)
        self.report.seconds = time.perf_counter() - self._t0
        self.report.enodes = self.s.enode_count()
        self.report.eclasses = self.s.eclass_count()
        # the run's own limit says why it stopped; else the first phase bound that cut a phase
        limit_hits = [run_stop] if run_stop else [r for r in reasons if r not in (SATURATED, COMPLETED)]
        self.report.stop_reason = (limit_hits[0] if limit_hits else
                                   SATURATED if reasons and all(r == SATURATED for r in reasons) else COMPLETED)
        return self.report

    # -- internals -----------------------------------------------------------------------
    def _close(self, pr: PhaseReport, t0: float) -> None:
        pr.seconds = time.perf_counter() - t0
        pr.enodes_after = self.s.enode_count()
        pr.eclasses_after = self.s.eclass_count()

    def _predicted(self, n: int) -> tuple[float, int]:
        """Seconds the next iteration is expected to take and e-nodes it is expected to add:
        the most of the recent iterations, or the last one's growth factor applied again when
        that is more (time: also times ``TIME_SAFETY``)."""
        rec = self._recent[-RECENT:]
        if not rec:
            return 0.0, 0
        t_last, a, b = rec[-1]
        factor = b / a if a > 0 and b > a else 1.0
        grow = max(max(y - x for _, x, y in rec), int(n * (factor - 1.0)), 0)
        return max(TIME_SAFETY * max(t for t, _, _ in rec), t_last * factor), grow

    def _check(self) -> None:
        pr, lim, t0, it0 = self._phase
        now = time.perf_counter()
        n = pr.enodes_per_iteration[-1] if pr.enodes_per_iteration else self.s.enode_count()
        g = self.limits
        nxt_t, nxt_n = self._predicted(n)
        if g.iterations is not None and self._iters >= g.iterations:
            raise _Stop(ITER_LIMIT, "run")
        if g.nodes is not None and (n >= g.nodes or n + nxt_n > NODE_OVERSHOOT * g.nodes):
            self._note_predicted(n, nxt_n, g.nodes)
            raise _Stop(NODE_LIMIT, "run")
        # time (predicted: an iteration that would end past the deadline is not started) and
        # memory (resident now plus the predicted growth)
        keep = self.budget.post_reserve(n + nxt_n) if self.reserve else 0.0
        # memory: the next iteration's growth, and with ``reserve`` what extraction will need
        # for the whole e-graph (with a margin: costs and finishing hold some memory too)
        ahead = int(1.25 * (n + nxt_n)) if self.reserve else nxt_n
        hit = self.budget.exceeded(self.time_share, next_seconds=nxt_t, next_nodes=ahead, reserve=keep)
        if hit is not None:
            if hit == TIME_LIMIT and self.budget.remaining(self.time_share) > 0:
                self.report.notes.append(f"the next iteration (about {nxt_t:.2g} s) and the work after the run "
                                         f"(about {keep:.2g} s for {n + nxt_n} e-nodes) were predicted not to "
                                         f"fit in the time limit; the run stopped at {n} e-nodes")
            elif hit == MEMORY_LIMIT:
                self.report.notes.append(f"the memory limit was reached or predicted (the e-graph and what "
                                         f"extraction needs for it); the run stopped at {n} e-nodes")
            raise _Stop(hit, "run")
        if lim.iterations is not None and self._iters - it0 >= lim.iterations:
            raise _Stop(ITER_LIMIT, "phase")
        if lim.nodes is not None and (n >= lim.nodes or n + nxt_n > NODE_OVERSHOOT * lim.nodes):
            self._note_predicted(n, nxt_n, lim.nodes)
            raise _Stop(NODE_LIMIT, "phase")
        if lim.seconds is not None and now + nxt_t - t0 >= lim.seconds:
            raise _Stop(TIME_LIMIT, "phase")
        if lim.growth is not None:
            cap = max(int(lim.growth * pr.enodes_before), pr.enodes_before + GROWTH_FLOOR)
            if n >= cap or n + nxt_n > GROWTH_OVERSHOOT * cap:
                self._note_predicted(n, nxt_n, cap)
                raise _Stop(NODE_LIMIT, "phase")

    def _snapshot_step(self, names: tuple[str, ...], until: str | None, pr: PhaseReport) -> None:
        """Run a growth-bounded phase's next iteration (its first; every one of a phase with
        ``Limits.guarded``) on a snapshot; undo it and end the phase (``node limit``) when it
        takes the e-graph past :data:`UNDO_FACTOR` times the bound.  Otherwise undo the snapshot's
        bookkeeping only: the caller runs the iteration for real (egglog iterations are
        deterministic, so it reproduces the one measured here)."""
        lim = self._phase[1]
        n = pr.enodes_before
        cap = max(int(lim.growth * n), n + GROWTH_FLOOR)
        now = pr.enodes_per_iteration[-1] if pr.enodes_per_iteration else n
        self.s.combined(names)                  # declared outside the snapshot, so pop keeps it
        self.s.run_text("(push)")
        try:
            self.s.step(names, until)
            after = self.s.enode_count()
        finally:
            self.s.run_text("(pop)")
        if after > UNDO_FACTOR * cap:
            which = "its first iteration" if pr.iterations == 0 else f"its iteration {pr.iterations + 1}"
            self.report.notes.append(f"phase {pr.name}: {which} took the e-graph from {now} to {after} "
                                     f"e-nodes, past {UNDO_FACTOR:g} times its bound {cap}; it was undone")
            raise _Stop(NODE_LIMIT, "phase")

    def _note_predicted(self, n: int, grow: int, limit: int) -> None:
        if n < limit:
            self.report.notes.append(f"the next iteration was predicted to take the e-graph from {n} to about "
                                     f"{n + grow} e-nodes, past the node limit {limit}; it was not run")

    def _exec(self, s: Strategy, pr: PhaseReport) -> bool:
        """Run ``s``; returns whether it changed the e-graph."""
        if isinstance(s, Run):
            self._check()
            t_it = time.perf_counter()
            n0 = pr.enodes_per_iteration[-1] if pr.enodes_per_iteration else None
            names = tuple(self.support) + tuple(s.rulesets)
            if self.checkpoint is not None and pr.iterations == 0 and self._phase[1].checkpoint:
                self.checkpoint(pr)
            if (self._phase[1].growth is not None and pr.enodes_before <= UNDO_MAX_NODES
                    and (pr.iterations == 0 and self._prev_cut or self._phase[1].guarded)):
                self._snapshot_step(names, s.until, pr)
            st = self.s.step(names, s.until)
            self._iters += 1
            pr.iterations += 1
            self._last_updated = st.updated
            for k, v in st.matches.items():
                if v:
                    pr.matches[k] = pr.matches.get(k, 0) + v
            for k, v in st.rule_seconds.items():
                if v:
                    pr.rule_seconds[k] = pr.rule_seconds.get(k, 0.0) + v
            pr.enodes_per_iteration.append(self.s.enode_count())
            if n0 is None:
                n0 = pr.enodes_before
            self._recent.append((time.perf_counter() - t_it, n0, pr.enodes_per_iteration[-1]))
            del self._recent[:-RECENT]
            if self.progress:
                self.progress(pr, self._iters)
            return st.updated
        if isinstance(s, Seq):
            changed = False
            for x in s.steps:
                changed = self._exec(x, pr) or changed
            return changed
        if isinstance(s, Repeat):
            changed = False
            for _ in range(s.times):
                if not self._exec(s.body, pr):
                    break
                changed = True
            return changed
        if isinstance(s, Saturate):
            changed = False
            while self._exec(s.body, pr):
                changed = True
            return changed
        if isinstance(s, LeftChoice):
            return self._exec(s.first, pr) or self._exec(s.second, pr)
        if isinstance(s, Phase):   # nested phase: its limits are not separately enforced
            return self._exec(s.body, pr)
        raise TypeError(f"not a strategy: {s!r}")
