"""Strategies are data: a small tree of combinators, named after ELEVATE and
``sympy.strategies``, that prints as an egglog ``run-schedule`` and is read back from one.

An e-graph has no failure and no term positions: one iteration of a ruleset applies every
match everywhere and only reports whether the e-graph changed.  So:

* ``run(rs...)`` is one iteration (it never fails: ELEVATE's ``try`` is free);
* ``seq``, ``repeat(n, s)`` (stops early when a pass changes nothing, as egglog does),
  ``saturate(s)`` and ``until(fact, rs...)`` map directly onto egglog;
* ``left_choice(a, b)`` ("b only if a changed nothing") is run honestly by the driver, one
  step at a time; it has no egglog ``run-schedule`` form, so printing it raises;
* positional traversals (``top_down``, ``bottom_up``, ``one``, ``all_``, ``some``,
  ``position``) and ``fail`` cannot be expressed on an e-graph and raise ScheduleError.

>>> s = phase("fuse", saturate(run("let", "fuse")), iterations=50)
>>> print(to_egglog(s))
(unstable-combined-ruleset let+fuse let fuse)
;; @phase fuse iterations=50
(run-schedule (saturate (run let+fuse)))
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ScheduleError


class Strategy:
    """Base class of strategy nodes."""

    def __add__(self, other: "Strategy") -> "Strategy":
        return seq(self, other)

    def __str__(self) -> str:
        try:
            return to_egglog(self)
        except ScheduleError:
            return repr(self)


@dataclass(frozen=True)
class Run(Strategy):
    """One iteration of the union of ``rulesets`` (optionally skipped once ``until`` holds)."""
    rulesets: tuple[str, ...]
    until: str | None = None


@dataclass(frozen=True)
class Seq(Strategy):
    steps: tuple[Strategy, ...]


@dataclass(frozen=True)
class Repeat(Strategy):
    times: int
    body: Strategy


@dataclass(frozen=True)
class Saturate(Strategy):
    body: Strategy


@dataclass(frozen=True)
class LeftChoice(Strategy):
    first: Strategy
    second: Strategy


@dataclass(frozen=True, repr=False)
class Limits:
    """Resource limits; ``None`` means no limit.  Checked between iterations (egglog cannot
    interrupt one), so a run may overshoot by at most one iteration.  ``memory`` is in MiB of
    resident memory (``optimize`` uses a share of the machine's memory when it is None)."""
    iterations: int | None = None
    nodes: int | None = None
    seconds: float | None = None
    memory: float | None = None
    #: a phase's cap on e-graph growth: it ends (stop reason ``node limit``) before the e-graph
    #: passes ``growth`` times its size when the phase started (a phase limit only)
    growth: float | None = None
    #: a phase limit only: every iteration of the phase runs on a snapshot first and is undone,
    #: ending the phase (``node limit``), when it takes the e-graph past twice the growth bound
    #: (for rulesets that can explode in one iteration after quiet ones; see driver.UNDO_FACTOR)
    guarded: bool = False
    #: a phase limit only: before the phase's first iteration the program the e-graph holds is
    #: extracted and kept as a candidate of the final extraction, so the phase can never make the
    #: result costlier (for rulesets whose equalities can mislead the greedy DAG extractor)
    checkpoint: bool = False

    def tighter(self, other: "Limits") -> "Limits":
        def m(a, b):
            return b if a is None else a if b is None else min(a, b)
        return Limits(m(self.iterations, other.iterations), m(self.nodes, other.nodes),
                      m(self.seconds, other.seconds), m(self.memory, other.memory),
                      m(self.growth, other.growth), self.guarded or other.guarded,
                      self.checkpoint or other.checkpoint)

    def items(self):
        return [(k, v) for k, v in (("iterations", self.iterations), ("nodes", self.nodes),
                                    ("seconds", self.seconds), ("memory", self.memory),
                                    ("growth", self.growth), ("guarded", "true" if self.guarded else None),
                                    ("checkpoint", "true" if self.checkpoint else None))
                if v is not None]

    def __repr__(self) -> str:
        mem = "" if self.memory is None else f", memory={self.memory!r}"
        gro = "" if self.growth is None else f", growth={self.growth!r}"
        gua = (", guarded=True" if self.guarded else "") + (", checkpoint=True" if self.checkpoint else "")
        return (f"Limits(iterations={self.iterations!r}, nodes={self.nodes!r}, seconds={self.seconds!r}"
                f"{mem}{gro}{gua})")


@dataclass(frozen=True)
class Phase(Strategy):
    """A named part of a schedule with its own limits and its own section in the report."""
    name: str
    body: Strategy
    limits: Limits = field(default_factory=Limits)


# -- the vocabulary ---------------------------------------------------------------------
def run(*rulesets: str, until: str | None = None) -> Run:
    """One iteration of the given rulesets together (``(run rs)``)."""
    if not rulesets:
        raise ScheduleError("run() needs at least one ruleset")
    return Run(tuple(rulesets), until)


def seq(*steps: Strategy) -> Strategy:
    """Each step in order (``(seq ...)``); an empty seq is the identity."""
    flat: list[Strategy] = []
    for s in steps:
        flat.extend(s.steps if isinstance(s, Seq) else (s,))
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def repeat(times: int, *body: Strategy) -> Repeat:
    """Up to ``times`` passes of ``body``, stopping early once a pass changes nothing."""
    if times < 0:
        raise ScheduleError("repeat needs a non-negative count")
    return Repeat(times, seq(*body))


def saturate(*body: Strategy) -> Saturate:
    """Passes of ``body`` until one changes nothing (a fixpoint; ELEVATE's ``normalize``)."""
    return Saturate(seq(*body))


def until(fact: str, *rulesets: str) -> Saturate:
    """Run ``rulesets`` until the egglog fact holds (or nothing changes)."""
    return Saturate(Run(tuple(rulesets), fact))


def identity() -> Seq:
    """Does nothing (ELEVATE's ``id``)."""
    return Seq(())


def try_(s: Strategy) -> Strategy:
    """ELEVATE's ``try``: the same strategy -- on an e-graph nothing fails."""
    return s


def left_choice(first: Strategy, second: Strategy) -> LeftChoice:
    """``first <+ second``: run ``second`` only when ``first`` changed nothing.  Executed step
    by step by the driver; not printable as a run-schedule."""
    return LeftChoice(first, second)


def phase(name: str, body: Strategy, iterations: int | None = None, nodes: int | None = None,
          seconds: float | None = None, growth: float | None = None, guarded: bool = False,
          checkpoint: bool = False) -> Phase:
    """Name a part of a schedule and give it its own limits (``growth``: at most that many times
    the e-nodes the phase started with; ``guarded``, ``checkpoint``: see :class:`Limits`)."""
    return Phase(name, body, Limits(iterations, nodes, seconds, growth=growth, guarded=guarded,
                                    checkpoint=checkpoint))


def _refuse(name: str, why: str):
    def f(*args, **kwargs):
        raise ScheduleError(f"{name} cannot be expressed on an e-graph: {why}")
    f.__name__ = name
    f.__doc__ = f"Refused: {why}"
    return f


_POSITIONAL = ("one iteration applies every match at every position at once; there is no "
               "'first match' or traversal order to choose (restrict where rules fire with "
               "side conditions or context relations instead)")
top_down = _refuse("top_down", _POSITIONAL)
bottom_up = _refuse("bottom_up", _POSITIONAL)
one = _refuse("one", _POSITIONAL)
all_ = _refuse("all_", _POSITIONAL)
some = _refuse("some", _POSITIONAL)
position = _refuse("position", _POSITIONAL)
fail = _refuse("fail", "rulesets never fail on an e-graph; a run only adds equalities")


# -- printing ------------------------------------------------------------------------------
def schedule_expr(s: Strategy) -> str:
    """The egglog schedule expression of ``s`` (without ``run-schedule``)."""
    if isinstance(s, Run):
        u = f" :until {s.until}" if s.until else ""
        return f"(run {combined_name(s.rulesets)}{u})"
    if isinstance(s, Seq):
        return "(seq" + "".join(" " + schedule_expr(x) for x in s.steps) + ")"
    if isinstance(s, Repeat):
        return f"(repeat {s.times} {schedule_expr(s.body)})"
    if isinstance(s, Saturate):
        return f"(saturate {schedule_expr(s.body)})"
    if isinstance(s, Phase):
        return schedule_expr(s.body)
    if isinstance(s, LeftChoice):
        raise ScheduleError("left_choice has no egglog run-schedule form (egglog has no failure); "
                            "the eqsat-ad driver runs it step by step, but it cannot be printed")
    raise ScheduleError(f"not a strategy: {s!r}")


def phases_of(s: Strategy) -> list[Phase]:
    """Top-level phases: a Seq of Phases, a single Phase, or one anonymous phase."""
    if isinstance(s, Phase):
        return [s]
    if isinstance(s, Seq) and s.steps and all(isinstance(x, Phase) for x in s.steps):
        return list(s.steps)  # type: ignore[arg-type]
    return [Phase("main", s)]


def combined_name(rulesets: tuple[str, ...]) -> str:
    """The printed name of several rulesets run together: ``let+fuse``."""
    return "+".join(rulesets)


def to_egglog(s: Strategy) -> str:
    """Print a strategy as egglog text: one ``(run-schedule ...)`` per phase, each preceded by a
    ``;; @phase NAME key=value`` comment carrying its name and limits (egglog ignores comments;
    :func:`eqsat_ad.strategy.schedule_file.parse_schedule` reads them back).  Rulesets run
    together are declared first as ``(unstable-combined-ruleset let+fuse let fuse)``.

    eqsat-ad runs the support rulesets ``analysis`` (free variables) and ``subst``
    (substitution) with every run, so that side conditions and substitutions keep up."""
    out = []
    for rs in dict.fromkeys(tuple(r.rulesets) for r in _runs(s) if len(r.rulesets) > 1):
        out.append(f"(unstable-combined-ruleset {combined_name(rs)} {' '.join(rs)})")
    for p in phases_of(s):
        lim = " ".join(f"{k}={v}" for k, v in p.limits.items())
        out.append(f";; @phase {p.name}{' ' + lim if lim else ''}")
        out.append(f"(run-schedule {schedule_expr(p.body)})")
    return "\n".join(out)


def _runs(s: Strategy) -> list[Run]:
    out: list[Run] = []
    stack = [s]
    while stack:
        x = stack.pop()
        if isinstance(x, Run):
            out.append(x)
        elif isinstance(x, Seq):
            stack.extend(reversed(x.steps))
        elif isinstance(x, (Repeat, Saturate, Phase)):
            stack.append(x.body)
        elif isinstance(x, LeftChoice):
            stack.extend([x.second, x.first])
    return out


def rulesets_used(s: Strategy) -> list[str]:
    """Every ruleset a strategy runs, in first-use order."""
    out: list[str] = []
    for r in _runs(s):
        out += [n for n in r.rulesets if n not in out]
    return out
