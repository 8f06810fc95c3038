"""Differential testing of the NumPy backend against the reference interpreter on random
programs that stress it (eqsat_ad.random_programs: pair accumulators, nested folds reading
outer accumulators and loop indices, guarded gets, argmax and counting folds, triangular
loops, lets, conditionals), each on two input sets (the drawn sizes and larger ones).  A
check compares value and representation, and that the result shares no memory with an
input and the inputs are left as they were.  The long version runs in
``benchmarks/fuzz_long.py``."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.fuzz import BackendReport, backend_case, check_backend, fuzz_backend, same_value

FEATURES = ("pair accumulator", "nested fold reads outer accumulator", "nested fold reads outer index",
            "guarded get", "let", "if", "index accumulator", "index-dependent loop size",
            "index arithmetic", "range-guarded build")


@pytest.fixture(scope="module")
def report() -> BackendReport:
    return fuzz_backend(cases=600, seed=0)


def test_backend_matches_interpreter_on_random_programs(report):
    assert report.programs == 600 and report.checks >= 1200
    assert not report.failures, report.summary()


def test_random_programs_have_the_shapes_that_matter(report):
    for f in FEATURES:
        assert report.features.get(f, 0) >= 10, (f, report.features)


def test_cases_are_reproducible():
    a, b = backend_case(17), backend_case(17)
    assert ea.show_program(a[0]) == ea.show_program(b[0]) and a[1:] == b[1:]


# the checker itself catches what it is meant to catch
PROG = ea.parse("(fun ((x (vec n)) (w (vec n))) (build n (lambda (i) (* 2.0 (get w i)))))")
INPUTS = {"x": np.arange(3.0), "w": np.ones(3)}


def test_check_backend_reports_a_wrong_value():
    assert "backend gives" in check_backend(PROG, INPUTS, fn=lambda **kw: kw["w"] * 3.0)


def test_check_backend_reports_aliasing_and_mutation():
    def in_place(**kw):              # the right value, computed in the caller's array
        w = kw["w"]
        w *= 2.0
        return w
    assert "changed its input 'w'" in check_backend(PROG, {k: v.copy() for k, v in INPUTS.items()},
                                                    fn=in_place)
    ident = ea.parse("(fun ((w (vec n))) (build n (lambda (i) (get w i))))")
    assert "shares memory with the input 'w'" in check_backend(ident, {"w": np.ones(3)},
                                                               fn=lambda **kw: kw["w"][::1])
    assert check_backend(ident, {"w": np.ones(3)}) == ""


def test_same_value_checks_the_representation():
    assert same_value(1.0, 1.0) == ""
    assert "int" in same_value(1, 1.0)
    assert "float64[3]" in same_value(np.zeros(3), np.zeros((3, 1)))
    assert "tuple" in same_value((1.0, 2.0), 1.0)
    assert "component 1" in same_value((1.0, np.ones(2)), (1.0, np.zeros(2)))
