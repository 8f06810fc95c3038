"""Mutation testing of the rule checker (eqsat_ad.rulecheck.mutate): wrong versions of the
shipped rules -- a side condition dropped, an index shifted by one, an extent off by one,
operands swapped, ... -- must be reported unsound at the checker's default effort.

The full score over every mutant is ``python benchmarks/mutation_score.py``; here a fixed
sample (and a few mutants that matter most) keep the suite fast."""
from __future__ import annotations

import collections

import pytest

from eqsat_ad.rulecheck.mutate import (EQUIVALENT, Outcome, all_mutants, check_mutant, loadable,
                                       mutants_of, rule_spec, sample, score, shipped_specs)

MUTANTS = all_mutants()
BY_ID = {m.id: m for m in MUTANTS}
#: mutants per operator in the sample (the range and off-by-one operators are all small, so
#: they are sampled more densely)
PER_OP = {"drop-cond": 40, "drop-range": 4, "shift": 30, "extent": 36, "swap-args": 30, "binder": 16,
          "const": 24, "var": 30}


def _sample():
    by_op = collections.defaultdict(list)
    for m in MUTANTS:
        if m.id not in EQUIVALENT:
            by_op[m.op].append(m)
    return [m for op, ms in sorted(by_op.items()) for m in sample(ms, PER_OP.get(op, 6))]


def test_every_shipped_rule_has_mutants_of_every_kind():
    ops = collections.Counter(m.op for m in MUTANTS)
    assert set(PER_OP) <= set(ops), ops
    assert len(MUTANTS) > 500
    # (if-same, subst-var: nothing to change; gather-mul-l/r: a product of products whose
    # operands come from the query's relation, where a swap is commutativity; relation facts
    # such as index.egg's iarith-* add no equation, so there is nothing to kill)
    unmutated = {s.name for s in shipped_specs() if not s.no_equation} - {m.rule for m in MUTANTS}
    assert unmutated <= {"if-same", "subst-var", "gather-mul-l", "gather-mul-r"}, unmutated
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)           # ids are unique
    assert all(m.text != m.spec.text for m in MUTANTS)


def test_equivalent_mutants_exist_and_say_why():
    for mid, why in EQUIVALENT.items():
        assert mid in BY_ID, f"stale entry {mid!r}"
        assert len(why) > 20, mid


@pytest.mark.parametrize("rule, op, what", [
    ("sum-onehot-l", "drop-range", "query: ((= k (Var r)) (ext r n)) -> (dropped)"),
    ("sum-onehot-r", "drop-cond", "query: (ext r n) -> (dropped)"),
    ("ifold-onehot-l", "drop-cond", "query: (ext r n) -> (dropped)"),
    ("sum-onehot-l", "shift", "lhs: (Var r) -> (Add (Var r) (Int 1))"),
    ("sum-fission-add", "extent", "rhs: n -> (Sub n (Int 1))"),
    ("len-build-int", "drop-cond", "when: (>= k 0) -> (dropped)"),
    ("ifold-sum-l", "extent", "rhs: n -> (Sub n (Int 1))"),
    ("build-get", "shift", "rhs: k -> (Add k (Int 1))"),
    ("ifold-empty", "extent", "lhs: (Int 0) -> (Add (Int 0) (Int 1))"),
    ("sum-factor-l", "drop-cond", "query: (set-not-contains f j) -> (dropped)"),
    ("sub-zero-l", "swap-args", "lhs: (Sub (Num 0.0) a) -> (Sub a (Num 0.0))"),
])
def test_range_and_off_by_one_mutants_are_killed(rule, op, what):
    m = BY_ID[f"{rule} | {op} | {what}"]
    o = check_mutant(m)
    assert o.killed, (m.text, o.status, o.reason)


def test_mutation_score_on_a_fixed_sample():
    ms = _sample()
    refused = loadable(ms)
    outcomes = [Outcome(m, "refused", refused[m.id]) if m.id in refused else check_mutant(m) for m in ms]
    sc = score(outcomes)
    assert len(sc.unsound) >= 150, sc.summary()
    missed = "\n".join(f"  {o.mutant.id} [{o.status}]" for o in sc.missed)
    assert sc.score >= 0.95, sc.summary() + "\nmissed:\n" + missed


def test_mutants_of_a_rule_are_deterministic():
    a = [m.id for m in mutants_of(rule_spec("ifold-onehot-l"))]
    b = [m.id for m in mutants_of(rule_spec("ifold-onehot-l"))]
    assert a == b and len(a) >= 10
