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
4. ``cleanup`` -- eta, ring, cond, fuse, tuple, let: build-eta and the last simplifications.

``saturate_all()`` is the baseline: every loaded ruleset in one ruleset, to saturation.

>>> print(to_egglog(default_schedule()).splitlines()[0])
(unstable-combined-ruleset let+tuple+fuse+fission+ring let tuple fuse fission ring)
"""
from __future__ import annotations

from typing import Iterable

from .combinators import Strategy, phase, run, saturate, seq, to_egglog  # noqa: F401

DEFAULT_PHASE_ITERATIONS = 400


SHIPPED_RULESETS = ("let", "tuple", "fuse", "fission", "ring", "cond", "fold", "motion", "eta", "comm")


def default_schedule(user_rulesets: Iterable[str] = ()) -> Strategy:
    """The phase-ordered schedule for derivative programs (see the module docstring).

    ``user_rulesets`` (from a user's rule files) get a phase of their own, ``user``, after
    ``loops``: they run to saturation together with the loop and simplification rulesets, and
    ``cleanup`` follows."""
    it = DEFAULT_PHASE_ITERATIONS
    phases = [
        phase("inline", saturate(run("let", "tuple", "fuse", "fission", "ring")), iterations=it),
        phase("simplify", saturate(run("ring", "cond", "tuple", "fuse")), iterations=it),
        phase("loops", saturate(run("fold", "motion", "fission", "ring", "cond", "tuple", "fuse")),
              iterations=it),
    ]
    extra = tuple(r for r in user_rulesets if r not in SHIPPED_RULESETS)
    if extra:
        phases.append(phase("user", saturate(run(*extra, "fold", "motion", "fission", "ring", "cond",
                                                 "tuple", "fuse", "eta")), iterations=it))
    phases.append(phase("cleanup", saturate(run("eta", "ring", "cond", "fuse", "tuple", "let")),
                        iterations=it))
    return seq(*phases)


def saturate_all(rulesets: Iterable[str]) -> Strategy:
    """Every given ruleset together, to saturation (the baseline the default is compared with)."""
    rs = tuple(r for r in rulesets if r not in ("analysis", "subst", "cost"))
    return phase("all", saturate(run(*rs)))
