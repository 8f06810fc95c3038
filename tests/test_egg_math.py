"""egg's differentiation goals (egg's tests/math.rs: math_diff_same, math_diff_different,
math_diff_simple1, math_diff_simple2, math_diff_ln, diff_power_simple, diff_power_harder),
written in our language: the optimised dual-number derivative of each function reaches a model
cost no higher than egg's goal term, and agrees with it and with central finite differences."""
import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.cost.model import default_cost_model

PARAMS = "((x real) (y real))"
# (egg's name, the function of x (y a constant), egg's goal for d/dx)
GOALS = [
    ("math_diff_same", "x", "1.0"),
    ("math_diff_different", "y", "0.0"),
    ("math_diff_simple1", "(+ 1.0 (* 2.0 x))", "2.0"),
    ("math_diff_simple2", "(+ 1.0 (* y x))", "y"),
    ("math_diff_ln", "(log x)", "(/ 1.0 x)"),
    ("diff_power_simple", "(pow x 3.0)", "(* 3.0 (pow x 2.0))"),
    ("diff_power_harder", "(- (pow x 3.0) (* 7.0 (pow x 2.0)))", "(* x (- (* 3.0 x) 14.0))"),
]


@pytest.mark.parametrize("name, f, goal", GOALS, ids=[g[0] for g in GOALS])
def test_derivative_reaches_egg_goal(name, f, goal):
    prog = ea.parse(f"(fun {PARAMS} {f})")
    res = ea.optimize(ea.derivative(prog, "x"))
    goal_prog = ea.parse(f"(fun {PARAMS} {goal})")
    model = default_cost_model()
    assert res.cost <= model.dag_cost(goal_prog, {}) * (1 + 1e-9), (name, ea.show_program(res.program))
    for x, y in [(0.7, -1.3), (1.9, 0.4), (3.2, 2.5)]:
        got = float(ea.evaluate(res.program, x=x, y=y))
        want = float(ea.evaluate(goal_prog, x=x, y=y))
        h = 1e-6
        fd = (float(ea.evaluate(prog, x=x + h, y=y)) - float(ea.evaluate(prog, x=x - h, y=y))) / (2 * h)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6)
