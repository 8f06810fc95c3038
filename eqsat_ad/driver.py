"""Run a strategy on an e-graph, one iteration at a time, with limits and a report.

egglog cannot interrupt a running iteration, so limits (iterations, e-nodes, seconds) are
checked between iterations; a run can overshoot a limit by at most one iteration.  Every run
ends with a stop reason: ``saturated``, ``schedule completed``, ``iteration limit``,
``node limit`` or ``time limit``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from .egraph.session import SUPPORT_RULESETS, EGraphSession
from .strategy.combinators import (LeftChoice, Limits, Phase, Repeat, Run, Saturate, Seq, Strategy,
                                   phases_of, schedule_expr)

SATURATED, COMPLETED = "saturated", "schedule completed"
ITER_LIMIT, NODE_LIMIT, TIME_LIMIT = "iteration limit", "node limit", "time limit"
DEFAULT_LIMITS = Limits(iterations=2000, nodes=200_000, seconds=60.0)


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
            rows.append(f"cost: {self.cost_before:.6g} -> {self.cost_after:.6g}"
                        + (f" ({self.cost_before / self.cost_after:.3g}x)" if self.cost_after else ""))
        return "\n".join(rows)


class Driver:
    """Executes a :class:`Strategy` on an :class:`EGraphSession` step by step."""

    def __init__(self, session: EGraphSession, limits: Limits = DEFAULT_LIMITS,
                 support: tuple[str, ...] = SUPPORT_RULESETS, progress=None):
        self.s, self.limits, self.support, self.progress = session, limits, support, progress
        self.report = RunReport()
        self._t0 = 0.0
        self._iters = 0

    # -- public ------------------------------------------------------------------------
    def run(self, strategy: Strategy) -> RunReport:
        self._t0 = time.perf_counter()
        self.report.enodes_start = self.s.enode_count()
        reasons = []
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
                    reasons.append(st.reason)
                    self._close(pr, t0)
                    break
            self._close(pr, t0)
            reasons.append(pr.stop_reason)
        self.report.seconds = time.perf_counter() - self._t0
        self.report.enodes = self.s.enode_count()
        self.report.eclasses = self.s.eclass_count()
        limit_hits = [r for r in reasons if r not in (SATURATED, COMPLETED)]
        self.report.stop_reason = (limit_hits[0] if limit_hits else
                                   SATURATED if reasons and all(r == SATURATED for r in reasons) else COMPLETED)
        return self.report

    # -- internals -----------------------------------------------------------------------
    def _close(self, pr: PhaseReport, t0: float) -> None:
        pr.seconds = time.perf_counter() - t0
        pr.enodes_after = self.s.enode_count()
        pr.eclasses_after = self.s.eclass_count()

    def _check(self) -> None:
        pr, lim, t0, it0 = self._phase
        now = time.perf_counter()
        n = pr.enodes_per_iteration[-1] if pr.enodes_per_iteration else self.s.enode_count()
        g = self.limits
        if g.iterations is not None and self._iters >= g.iterations:
            raise _Stop(ITER_LIMIT, "run")
        if g.nodes is not None and n >= g.nodes:
            raise _Stop(NODE_LIMIT, "run")
        if g.seconds is not None and now - self._t0 >= g.seconds:
            raise _Stop(TIME_LIMIT, "run")
        if lim.iterations is not None and self._iters - it0 >= lim.iterations:
            raise _Stop(ITER_LIMIT, "phase")
        if lim.nodes is not None and n >= lim.nodes:
            raise _Stop(NODE_LIMIT, "phase")
        if lim.seconds is not None and now - t0 >= lim.seconds:
            raise _Stop(TIME_LIMIT, "phase")

    def _exec(self, s: Strategy, pr: PhaseReport) -> bool:
        """Run ``s``; returns whether it changed the e-graph."""
        if isinstance(s, Run):
            self._check()
            st = self.s.step(tuple(self.support) + tuple(s.rulesets), s.until)
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
