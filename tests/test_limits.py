"""Limits bound the whole of ``ea.optimize`` and the input program is always a candidate
(issue 10, parts 3 and 4).

No timing assertions here: the tests assert stop reasons, that a program is returned (at
worst the input), that it costs no more than the input under the model's measure, and that
the e-graph stays within a node limit plus one iteration's growth.  The wall-clock numbers
are measured by ``benchmarks/bench_limits.py``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.driver import LIMIT_REASONS, MEMORY_LIMIT, NODE_LIMIT, TIME_LIMIT, Budget, rss_bytes
from eqsat_ad.egraph.session import EGraphSession
from eqsat_ad.strategy.combinators import Limits, repeat, run, saturate

BAD = Path(__file__).resolve().parent / "data" / "bad"
NAMES = "abcdefghijkl"


def ac_program():
    """A 12-term sum: under associativity + commutativity (tests/data/bad/ac_blowup.egg) the
    e-graph grows without bound, by a factor of about 10 per iteration."""
    body = NAMES[-1]
    for c in reversed(NAMES[:-1]):
        body = f"(+ {c} {body})"
    return ea.parse(f"(fun ({' '.join(f'({c} real)' for c in NAMES)}) {body})")


def optimize_ac(**limits):
    return ea.optimize(ac_program(), rules=[BAD / "ac_blowup.egg"], schedule=saturate(run("ac")),
                       limits=limits)


def max_growth(report) -> int:
    """The most e-nodes one iteration added, over the whole run."""
    out = 0
    for ph in report.phases:
        seq = [ph.enodes_before] + ph.enodes_per_iteration
        out = max([out] + [b - a for a, b in zip(seq, seq[1:])])
    return out


def assert_valid(res):
    """A result is returned, costs no more than the input, and a limit is named."""
    assert isinstance(res.program, ea.Program)
    ea.check_program(res.program)
    assert res.cost <= res.cost_before
    assert res.report.cost_after == res.cost
    assert res.report.extraction["cost"] == pytest.approx(res.cost, rel=1e-9)
    assert res.report.extraction["candidates"]["input"] == res.cost_before


# -- node limits ---------------------------------------------------------------------------
@pytest.mark.parametrize("nodes", [2_000, 20_000])
def test_node_limit_stops_within_one_iteration(nodes):
    res = optimize_ac(nodes=nodes, seconds=120)
    assert res.report.stop_reason == NODE_LIMIT
    assert res.report.enodes <= nodes + max_growth(res.report)
    assert res.report.extraction["enodes_finished"] <= 2 * max(nodes, res.report.enodes)
    assert_valid(res)
    vals = {c: float(k) for k, c in enumerate(NAMES)}
    assert ea.evaluate(res.program, **vals) == sum(vals.values())


def test_an_iteration_predicted_far_past_the_node_limit_is_not_run():
    # the growth factor here is about 10 per iteration: from ~16k the next iteration would
    # reach ~170k, far past 20k, so it is not run (and a note says so)
    res = optimize_ac(nodes=20_000, seconds=120)
    assert res.report.stop_reason == NODE_LIMIT
    assert res.report.enodes < 20_000
    assert any("predicted" in n and "node limit" in n for n in res.report.notes)


# -- time limits ---------------------------------------------------------------------------
def test_a_time_limit_shorter_than_loading_returns_the_input():
    g = ea.grad(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"), "x")
    res = ea.optimize(g, sizes={"n": 100}, limits={"seconds": 1e-3})
    assert res.report.stop_reason == TIME_LIMIT
    assert res.report.iterations == 0
    assert res.report.extraction["chosen"] == "input"
    assert res.program == ea.ad.api.prepare(g)
    assert any(n.startswith("the input program is returned") for n in res.report.notes)
    assert res.report.check.startswith("skipped")
    assert_valid(res)


def test_time_limit_on_a_growing_egraph_returns_a_checked_program():
    res = optimize_ac(seconds=1.0)
    assert res.report.stop_reason in (TIME_LIMIT, NODE_LIMIT)
    assert_valid(res)
    vals = {c: float(k) for k, c in enumerate(NAMES)}
    assert ea.evaluate(res.program, **vals) == sum(vals.values())


# -- memory limits -------------------------------------------------------------------------
def test_memory_limit_below_what_the_process_holds_stops_at_once():
    if rss_bytes() is None:
        pytest.skip("no /proc/self/statm here")
    res = optimize_ac(memory=1, seconds=60)          # 1 MiB: already exceeded
    assert res.report.stop_reason == MEMORY_LIMIT
    assert res.report.iterations == 0
    assert_valid(res)


def test_limits_accept_memory_and_print_as_before():
    assert repr(Limits(iterations=50, seconds=2.5)) == "Limits(iterations=50, nodes=None, seconds=2.5)"
    assert Limits(memory=100).tighter(Limits(memory=50, nodes=3)) == Limits(nodes=3, memory=50)
    assert ("memory", 50) in Limits(memory=50).items()


# -- never worse than the input --------------------------------------------------------------
def test_input_is_returned_when_every_extractable_program_costs_more(tmp_path):
    # a sound rule that hides the cheap form (subsume): every program left in the e-graph
    # costs more than the input, so the input is returned, and the report says so
    f = tmp_path / "worse.egg"
    f.write_text("(ruleset worse)\n"
                 "(rewrite (Exp a) (Div (Num 1.0) (Exp (Neg a))) :ruleset worse :subsume :name \"exp-inv\")\n")
    p = ea.parse("(fun ((w real)) (exp w))")
    res = ea.optimize(p, rules=[f], default_rules=False, schedule=repeat(1, run("worse")))
    assert res.report.extraction["chosen"] == "input"
    assert res.report.extraction["extracted_cost"] > res.cost_before
    assert res.program == ea.ad.api.prepare(p)
    assert res.cost == res.cost_before
    assert any("costs more than the input" in n for n in res.report.notes)
    assert_valid(res)


@pytest.mark.parametrize("extractor", ["tree", "dag"])
def test_optimised_programs_never_cost_more_than_the_input(extractor):
    texts = ["(fun ((w real)) (if (< w 0.0) (* w (exp w)) (pow (+ 1.5 (* w w)) 0.5)))",
             "(fun ((w real)) (* (pow (+ 1.5 (* w w)) 0.5) (pow (+ 1.5 (* w w)) 0.5)))",
             "(fun ((x (vec n))) (log (sum n (lambda (i) (exp (get x i))))))"]
    for t in texts:
        p = ea.parse(t)
        d = ea.jvp(p, p.params[0].name)
        res = ea.optimize(d, sizes={"n": 50}, extractor=extractor)
        assert_valid(res)


# -- every step bounded: the parts -------------------------------------------------------------
def test_saturate_stops_when_the_guard_says_so():
    s = EGraphSession()
    s.add_program(ea.ad.api.prepare(ea.jvp(ea.parse("(fun ((w real)) (* w (exp w)))"), "w")))
    calls = []

    def stop():
        calls.append(1)
        return "time limit" if len(calls) > 2 else None
    k = s.saturate(("analysis", "subst", "let", "tuple"), stop=stop)
    assert s.stopped == "time limit" and k == 2
    s.saturate(("analysis", "subst"))
    assert s.stopped is None


def test_budget_reports_the_limit_reached():
    b = Budget(Limits(seconds=10.0, nodes=100, memory=1e9), start=time.perf_counter())
    assert b.exceeded() is None
    assert b.exceeded(nodes=100) == NODE_LIMIT
    assert b.exceeded(nodes=150, node_factor=2.0) is None
    assert b.exceeded(reserve=20.0) == TIME_LIMIT          # what follows would not fit
    assert Budget(Limits(seconds=1.0), start=time.perf_counter() - 2.0).exceeded() == TIME_LIMIT
    if rss_bytes() is not None:
        assert Budget(Limits(memory=1)).exceeded() == MEMORY_LIMIT
    assert set(LIMIT_REASONS) == {"iteration limit", "node limit", "time limit", "memory limit"}


def test_extraction_stops_at_its_deadline_with_the_tree_result():
    from eqsat_ad.extract import EGraphView, extract
    g = ea.grad(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"), "x")
    res = ea.optimize(g, sizes={"n": 100}, keep_egraph=True)
    view = EGraphView.from_session(res.session).assign_costs(ea.default_cost_model(), {"n": 100})
    past = time.perf_counter() - 1.0
    for name in ("dag", "ilp"):
        e = extract(view, name, deadline=past)
        assert e.info.get("stopped") == "time limit"
        assert e.body is not None
    assert "stopped" not in extract(view, "dag").info


def test_a_shared_chain_is_extracted_with_lets_not_as_an_exponential_tree():
    from eqsat_ad.extract import tree_size
    # nine dual-number steps, each using the previous value several times: inlined, the tree
    # has billions of nodes
    binds, prev = [], "w"
    for i in range(1, 10):
        binds.append(f"(a{i} (* {prev} (exp (neg {prev}))))" if i % 2 else
                     f"(a{i} (pow (+ 1.5 (* {prev} {prev})) 0.5))")
        prev = f"a{i}"
    p = ea.parse(f"(fun ((w real)) (let ({' '.join(binds)}) {prev}))")
    d = ea.jvp(p, "w")
    for limits in ({"iterations": 10}, {"nodes": 300}, None):
        res = ea.optimize(d, limits=limits)
        assert tree_size(res.program.body, 10**6) < 10**5
        assert_valid(res)
        assert np.isclose(ea.evaluate(res.program, w=0.3, dw=1.0), ea.evaluate(d, w=0.3, dw=1.0))


def test_pace_is_wall_per_cpu_second_and_at_least_one():
    # a budget that started long ago on the wall clock but used no CPU since: the machine was
    # busy elsewhere, every reserve grows by the same factor (capped)
    from eqsat_ad.driver import PACE_MAX, post_seconds
    b = Budget(Limits(seconds=10.0), start=time.perf_counter() - 1.0, cpu_start=time.process_time())
    assert b.pace() == PACE_MAX
    b.check_seconds = 0.25
    assert b.post_reserve(1000) == PACE_MAX * (post_seconds(1000) + 0.25)
    fresh = Budget(Limits(seconds=10.0))
    assert fresh.pace() == 1.0                       # too short a sample to say


def test_the_numeric_check_starts_no_step_past_its_deadline():
    from eqsat_ad.optimize import SKIPPED, check_agrees, check_seconds
    p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))")
    note = check_agrees(p, p, deadline=time.perf_counter())
    assert note.startswith(SKIPPED) and "time limit" in note
    assert check_agrees(p, p, deadline=time.perf_counter() + 60.0) == ""
    assert check_agrees(p, p) == ""
    assert check_seconds(p) > 0


def test_a_limit_that_stops_the_run_is_its_stop_reason():
    # pipeline20's gradient: the algebra phase ends on its growth bound (a phase's node limit)
    # and the run's iteration limit stops it in the next phase; the report names the latter
    from eqsat_ad.bench import corpus as C
    g = C.derivative_program(C.get("pipeline20"))
    res = ea.optimize(g, sizes={"n": 100}, limits={"iterations": 130}, check=False)
    stops = [ph.stop_reason for ph in res.report.phases]
    assert NODE_LIMIT in stops[:-1] and stops[-1] == "iteration limit"
    assert res.report.stop_reason == "iteration limit"
    assert_valid(res)
