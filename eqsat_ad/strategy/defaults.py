"""The shipped schedules.

``default_schedule()`` is phase-ordered for derivative programs (the order of dF~ Example 6
and of the FTfJP'23 strategies), each phase saturated together with the support rulesets
(``analysis``, ``subst``) that keep free variables and substitutions up to date:

1. ``inline`` -- let, tuple, fuse, fission, ring: inline the dual-number lets, fuse the seed
   arrays into their uses (get of build), project pairs, and split pair-accumulator folds so
   the primal and tangent loops separate; ring collapses the zero tangents of non-seeded
   inputs as soon as they appear, which keeps the e-graph small (sigmoid-sum: 143 e-nodes
   instead of 179).  Nothing else can simplify before the seeds are visible.
2. ``simplify`` -- ring, cond, tuple, fuse: collapse the zeros and ones the seeds introduce and
   push one-hot conditionals outwards, so loop bodies take the foldConditional shape.
3. ``loops`` -- fold, motion, fission with ring/cond: collapse loops over one-hot indices
   (the O(n^2) -> O(n) step), turn accumulating folds into sums, factor invariants out.
4. ``algebra`` -- the guided algebra (files that declare ``;; @phase algebra``: one-hot
   distributivity, invariant factors out of sums, and ``negdiv``, a negation out of a quotient,
   which would hide the factor under it) with the loop rulesets; bounded by growth.
5. ``user`` -- rulesets of a user's rule files that declare no phase (and files that declare
   ``user``), with the loop rulesets; bounded by growth.
6. ``cleanup`` -- eta, ring, cond, fuse, tuple, let: build-eta and the last simplifications;
   bounded by growth.
7. ``commute`` -- ``comm`` and constant folding across reassociation (files that declare
   ``;; @phase commute``) with everything algebra and cleanup run; bounded by growth: they
   explode when saturated, and after the loops have collapsed the e-graph is small.
8. ``split`` -- rulesets that split a loop body along relations they derive (files that declare
   ``;; @phase split``: the one-hot part of a body at any depth) with everything algebra and
   user run, without commutativity; after commute, because the terms they add give
   commutativity more to commute (layer normalisation's gradient stopped at commute's growth
   bound before reaching O(n)); bounded by growth, not started on a large e-graph.
9. ``finish`` -- factoring (files that declare ``;; @phase finish``) with constant folding,
   ring and cond, without commutativity (with it factoring explodes); bounded by growth.
10. ``gather`` -- rulesets that move the scalar factors of product chains together (files that
   declare ``;; @phase gather``) with constant folding, ring and cond; last, because next to
   finish's factoring they stop it at its growth bound; bounded by growth.
11. ``lincomb`` -- rulesets that join the scalars of a scaled difference under a scalar factor or
   divisor (files that declare ``;; @phase lincomb``) with finish's factoring, cancel, constant
   folding, ring and cond (a join leaves terms that factoring shortens); bounded by growth,
   guarded, and checkpointed (:data:`PHASE_CHECKPOINT`).

The growth caps are :data:`PHASE_GROWTH`.  A rule file places its rulesets in a phase with a banner line ``;; @phase NAME`` (NAME one of
:data:`DEFAULT_PHASES`); :func:`check_phase_pragma` refuses any other name, at the pragma's
line.  A ruleset of a user's file without the pragma runs in ``user``; so does one of a shipped
file (``eqsat_ad/rules/``) without it, unless it is one of the rulesets the phases always run
(:data:`PHASE_RULESETS`) -- a new rule file is never left out of the default.

``saturate_all()`` is the baseline: every loaded ruleset in one ruleset, to saturation.

>>> print(to_egglog(default_schedule()).splitlines()[0])
(unstable-combined-ruleset let+tuple+fuse+fission+ring let tuple fuse fission ring)
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Mapping

from ..errors import RuleFileError
from .combinators import Strategy, phase, run, saturate, seq, to_egglog  # noqa: F401

DEFAULT_PHASE_ITERATIONS = 400

#: the phases of the default schedule, in the order they run; a rule file's ``;; @phase NAME``
#: names one of them (``user`` runs only when a ruleset is placed there)
DEFAULT_PHASES = ("inline", "simplify", "loops", "algebra", "user", "cleanup", "commute", "split", "finish", "gather",
                  "lincomb")

#: the rulesets each phase always runs (rulesets placed by a pragma join them)
PHASE_RULESETS: dict[str, tuple[str, ...]] = {
    "inline": ("let", "tuple", "fuse", "fission", "ring"),
    "simplify": ("ring", "cond", "tuple", "fuse"),
    "loops": ("fold", "motion", "fission", "ring", "cond", "tuple", "fuse"),
    "algebra": ("fold", "motion", "fission", "ring", "cond", "tuple", "fuse"),
    "user": ("fold", "motion", "fission", "ring", "cond", "tuple", "fuse", "eta"),
    "cleanup": ("eta", "ring", "cond", "fuse", "tuple", "let"),
    "commute": ("eta", "ring", "cond", "fuse", "tuple", "let", "fold", "motion", "fission"),
    "split": ("fold", "motion", "fission", "ring", "cond", "tuple", "fuse"),
    "finish": ("constassoc", "ring", "cond"),
    "gather": ("constassoc", "ring", "cond"),
    "lincomb": ("cancel", "constassoc", "ring", "cond"),
}
#: phases that also run the rulesets placed in other phases: commute is a last, bounded pass of
#: everything algebra runs, with commutativity, factoring and constant folding across products
#: (which explode with the algebra earlier on, when the e-graph is still large); split runs the
#: splitting rulesets with the algebra's and user's (the rest of a split sum has its invariant
#: factors taken out by deepinv, its one-hot part collapsed by fold or index); lincomb runs
#: finish's factoring: its joins leave t1 (dx_i e_i) - t4 e_i (the log-sum-exp Hessian-vector
#: product), which factoring makes (t1 dx_i - t4) e_i (7.96e4 -> 7.38e4 add-units); and gather's
#: joins, which with lincomb's give attention's gradient the reciprocal 1/sqrt(d) that saturation
#: shares between two scalars (a product where the default had a second quotient)
ALSO_RUNS = {"commute": ("algebra",), "split": ("algebra", "user"), "lincomb": ("finish", "gather")}

#: the phases that run explosive rulesets, with their caps on e-graph growth (a multiple of the
#: e-graph's size when the phase starts; the driver stops the phase, stop reason ``node limit``,
#: before an iteration predicted to pass it).  Saturated, the guided algebra, commutativity and
#: the factoring/constant rules grow without end on realistic gradients (their banners say how),
#: and ring's factoring with the one-hot rules keeps growing what they leave; bounded, they
#: reach the cost saturation reaches with a fraction of the e-graph (benchmarks/bench_strategies.py).
#: finish's 2x: factoring and constant folding on the Rosenbrock Hessian-vector product saturate
#: at 1.56x the e-graph finish starts with (17 iterations), for a program cheaper than saturating
#: every ruleset finds (1.012e5 add-units against 1.019e5); with 1.5x the phase stopped after one
#: iteration (1.049e5).  On the rest of the corpus it costs up to 1.4x e-nodes and no model cost.
PHASE_GROWTH = {"algebra": 2.0, "user": 6.0, "cleanup": 1.5, "commute": 2.0, "split": 2.0, "finish": 2.0, "gather": 1.5, "lincomb": 1.5}
# gather's bounds (its growth here, its e-nodes and iterations below): 1.5x, 8,000 e-nodes and
# 8 iterations.  Layer normalisation's gradient has its joins within 8 iterations and 1.1x; on
# the hinge loss's (4.9k e-nodes) gather ran 21 iterations to 2x for nothing (0.5 s with
# PHASE_GUARDED's double iterations), and on the Rosenbrock HVP's (9.3k) it found nothing.
#: phases that do not start on an e-graph larger than this: one iteration of commutativity with
#: the algebra took pipeline20's gradient from 19,739 to 307,437 e-nodes (growth is predicted
#: from the previous iteration, which a phase's first iteration does not have)
PHASE_NODES = {"commute": 10_000, "split": 10_000, "finish": 10_000, "gather": 8_000, "lincomb": 5_000}
#: phases with a lower iteration cap than :data:`DEFAULT_PHASE_ITERATIONS`: the split relations
#: of the guided algebra (distrib's oh-split, deepinv's inv-split) are carried up one level of a
#: term per iteration and every sum they split is split again, so on a deep chain of loops they run
#: long without converging (chain60's gradient: 166 iterations of algebra and 128 of user, 4 s, for
#: a costlier program than 7 and 9 iterations gave); the corpus needs at most 28 and 20
PHASE_ITERATIONS = {"algebra": 40, "user": 40, "split": 40, "gather": 8, "lincomb": 8}
#: phases every iteration of which runs on a snapshot first (``Limits.guarded``; not only the
#: first, as for every growth-bounded phase after one cut at its bound), undone past
#: driver.UNDO_FACTOR times the bound: gather's joins (rules/gather.egg) can explode in one
#: iteration after quiet ones -- ridge's gradient went 6,069 -> 6,105 -> 158,870 e-nodes
#: (gather-mul-l matched 152,690 times: every scalar against every split of the commuted chains),
#: which the growth prediction from the last iteration cannot see.  Its iterations are cheap
#: (0.03 s on layer normalisation's gradient), so measuring each twice costs little.  Not finish:
#: there the second run of each iteration cost the Rosenbrock Hessian-vector product 0.8 s.
#: lincomb for the same reason: a first version of its joins took ridge's gradient from 6.1k to
#: 9.0M e-nodes in one iteration (rules/lincomb.egg).
PHASE_GUARDED = frozenset({"gather", "lincomb"})
#: phases that keep the program extracted before them as a candidate (``Limits.checkpoint``):
#: lincomb's joins offer ``(1 / s) x[i]`` next to ``x[i] / s``, which the greedy DAG extractor
#: prices per loop where the backend computes it once per axis -- normalize, layer normalisation
#: and max-shifted log-sum-exp were extracted 11-35 % costlier without it (rules/lincomb.egg)
PHASE_CHECKPOINT = frozenset({"lincomb"})
#: the phases that exist only for rulesets placed by a pragma (the default runs them only then)
PLACED_ONLY_PHASES = ("algebra", "user", "commute", "split", "finish", "gather", "lincomb")

SHIPPED_RULESETS = ("let", "tuple", "fuse", "fission", "ring", "cond", "fold", "motion", "eta", "comm")


def check_phase_pragma(pragma) -> None:
    """Refuse a ``;; @phase NAME`` pragma (:class:`~eqsat_ad.egraph.eggtext.PhasePragma`) whose
    NAME is not a phase of the default schedule, at the pragma's line, naming the phases."""
    if pragma is not None and pragma.name not in DEFAULT_PHASES:
        raise RuleFileError(f"@phase '{pragma.name}' is not a phase of the default schedule; the phases "
                            f"are {', '.join(DEFAULT_PHASES)}", pragma.file, pragma.line, pragma.column)


@lru_cache(maxsize=None)
def _shipped_rulesets(files: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    from ..egraph.eggtext import read_forms, rulesets_in
    out = []
    for f in files:
        for name, info in rulesets_in(read_forms(f)).items():
            if name:
                if info.phase is not None:
                    check_phase_pragma(info.phase)
                out.append((name, info.phase.name if info.phase is not None else None))
    return tuple(out)


def _shipped() -> tuple[tuple[str, str | None], ...]:
    from ..egraph.session import default_rule_files
    return _shipped_rulesets(tuple(str(f) for f in default_rule_files()))


def shipped_placements() -> dict[str, str]:
    """Ruleset -> phase for the shipped rule files that declare a phase (``;; @phase``), and
    ``user`` for a shipped ruleset that declares none and is not one of the rulesets the phases
    always run (:data:`PHASE_RULESETS`): a rule file added to ``eqsat_ad/rules/`` without the
    pragma runs in ``user``, like a user's, rather than nowhere."""
    fixed = {r for rs in PHASE_RULESETS.values() for r in rs} | set(SHIPPED_RULESETS) | {"analysis", "subst", "cost"}
    return {name: ph if ph is not None else "user" for name, ph in _shipped()
            if ph is not None or name not in fixed}


def default_schedule(user_rulesets: Iterable[str] = (), placed: Mapping[str, str] | None = None) -> Strategy:
    """The phase-ordered schedule for derivative programs (see the module docstring).

    ``placed`` maps rulesets to the phase their file's ``;; @phase`` pragma names (the shipped
    files' pragmas are always read); each joins that phase.  ``user_rulesets`` (from a user's
    rule files) that are not placed get a phase of their own, ``user``, after ``algebra``: they
    run to saturation together with the loop and simplification rulesets, and ``cleanup``
    follows."""
    where = {**shipped_placements(), **dict(placed or {})}
    for name, ph in where.items():
        if ph not in DEFAULT_PHASES:
            raise RuleFileError(f"@phase '{ph}' of ruleset {name!r} is not a phase of the default schedule; "
                                f"the phases are {', '.join(DEFAULT_PHASES)}")
    for r in user_rulesets:
        if r not in SHIPPED_RULESETS and r not in where:
            where[r] = "user"
    it = DEFAULT_PHASE_ITERATIONS
    phases = []
    for name in DEFAULT_PHASES:
        extra = tuple(r for r, ph in where.items() if ph == name)
        also = tuple(r for r, ph in where.items() if ph in ALSO_RUNS.get(name, ()))
        if name in PLACED_ONLY_PHASES and not extra:
            continue
        members = tuple(dict.fromkeys(extra + also + PHASE_RULESETS[name]))
        phases.append(phase(name, saturate(run(*members)), iterations=PHASE_ITERATIONS.get(name, it),
                            nodes=PHASE_NODES.get(name), growth=PHASE_GROWTH.get(name),
                            guarded=name in PHASE_GUARDED, checkpoint=name in PHASE_CHECKPOINT))
    return seq(*phases)


def saturate_all(rulesets: Iterable[str]) -> Strategy:
    """Every given ruleset together, to saturation (the baseline the default is compared with)."""
    rs = tuple(r for r in rulesets if r not in ("analysis", "subst", "cost"))
    return phase("all", saturate(run(*rs)))
