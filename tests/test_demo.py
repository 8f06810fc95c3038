"""The quick-start demo (``python -m eqsat_ad.demo``, ``eqsat-ad demo``): differentiate ->
optimise -> run, checked against finite differences and a hand-written NumPy gradient, every
printed term explained."""
from __future__ import annotations

import re

import numpy as np
import pytest

from eqsat_ad import demo, glossary
from eqsat_ad.cli import main
from eqsat_ad.testing import finite_difference_gradient


@pytest.fixture(scope="module")
def output():
    """The demo's output through the CLI, with the timing loops cut short (the tests look at
    what is printed, not at how fast it is)."""
    mp = pytest.MonkeyPatch()
    clocks = iter([4e-3, 2e-5, 1e-5, 3e-4, 2e-4])
    mp.setattr(demo, "_clock", lambda fn, *a, **k: (fn(*a, **k), next(clocks))[1])
    mp.setattr(demo, "TIME_N", 50)
    import contextlib
    import io
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            rc = main(["demo"])
    finally:
        mp.undo()
    return rc, buf.getvalue()


def test_the_demo_runs_and_its_checks_pass(output):
    rc, out = output
    assert rc == 0, out
    for k in range(1, 7):
        assert f"== {k}. " in out
    assert out.count("-> OK") == 2 and "MISMATCH" not in out
    assert re.search(r"^finite differences \(h = 1e-06\) = \[", out, re.M)
    assert re.search(r"^hand-written NumPy, softmax\(x\) += \[", out, re.M)


def test_it_compares_with_a_hand_written_gradient(output):
    _, out = output
    # three rows at n = TIME_N, the times relative to the hand-written one
    assert re.search(r"naive dual-number gradient, O\(n\^2\) +4 ms per call +\(400x the hand-written time\)", out)
    assert re.search(r"optimised gradient \(this package\) +20 us per call +\(2x the hand-written time\)", out)
    assert re.search(r"hand-written NumPy gradient +10 us per call$", out, re.M)
    assert "The fair comparison is with the hand-written gradient" in out
    assert not re.search(r"\dx faster", out)          # no bare "Nx faster" against the naive one


def test_it_explains_each_term_it_prints(output):
    _, out = output
    flat = " ".join(out.split())
    for term in ("e-node", "e-class", "phase", "iteration", "saturated", "seconds", "model cost", "optimised"):
        assert " ".join(glossary.define(term).split()) in flat, term
    assert "add-units: 1 add-unit is the time NumPy takes for one float64 addition" in flat
    assert "So the model predicts" in flat
    assert "model cost:" in out and "add-units" in out


def test_hand_written_gradients_and_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(4)
    f = lambda v: np.log(np.exp(v).sum())                              # noqa: E731
    assert np.allclose(finite_difference_gradient(f, x), demo.logsumexp_grad_numpy(x), atol=1e-8)
    W, xv, b = rng.standard_normal((2, 3)), rng.standard_normal(3), rng.standard_normal(2)
    g = lambda M: np.tanh(M @ xv + b).sum()                            # noqa: E731
    assert np.allclose(finite_difference_gradient(g, W), demo.mlp_grad_numpy(W, xv, b), atol=1e-8)


def test_options_are_refused_in_one_line(capsys):
    assert main(["demo", "--fast"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "eqsat-ad: error: the demo takes no options (got: --fast)"
