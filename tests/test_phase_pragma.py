"""A rule file places its rulesets in a phase of the default schedule with a banner line
``;; @phase NAME``; a loaded ruleset no schedule runs is named in the report."""
import subprocess
import sys

import pytest

import eqsat_ad as ea
from eqsat_ad.egraph.eggtext import phase_pragma, split_forms
from eqsat_ad.errors import RuleFileError
from eqsat_ad.strategy.combinators import phase, phases_of, rulesets_used, run, saturate, seq
from eqsat_ad.strategy.defaults import ALSO_RUNS, DEFAULT_PHASES, default_schedule

SQUARE = '(rewrite (Mul a a) (Pow a (Num 2.0)) :ruleset {rs} :name "square")\n'
PROG = "(fun ((x (vec n))) (sum n (lambda (i) (* (exp (get x i)) (exp (get x i))))))"


def _file(tmp_path, banner: str, rs: str = "mine"):
    f = tmp_path / f"{rs}.egg"
    f.write_text(banner + f"(ruleset {rs})\n" + SQUARE.format(rs=rs))
    return f


def test_pragma_places_the_ruleset_in_that_phase(tmp_path):
    f = _file(tmp_path, ";; squares\n;; @phase loops\n")
    res = ea.optimize(ea.parse(PROG), sizes={"n": 10}, rules=[str(f)])
    phases = {ph.name: ph for ph in res.report.phases}
    assert [n for n, ph in phases.items() if "mine" in ph.schedule] == ["loops"]
    assert phases["loops"].matches.get("square", 0) >= 1
    assert "mine" in phases["loops"].schedule


def test_no_pragma_runs_in_the_user_phase(tmp_path):
    f = _file(tmp_path, ";; squares\n")
    res = ea.optimize(ea.parse(PROG), sizes={"n": 10}, rules=[str(f)])
    names = [ph.name for ph in res.report.phases]
    assert names.index("loops") < names.index("user") < names.index("cleanup")
    assert res.report.phases[names.index("user")].matches.get("square", 0) >= 1


def test_every_default_phase_can_be_named(tmp_path):
    for name in DEFAULT_PHASES:
        s = default_schedule(["mine"], {"mine": name})
        where = [ph.name for ph in phases_of(s) if "mine" in rulesets_used(ph.body)]
        # a phase also runs what ALSO_RUNS gives it (commute: algebra's rulesets; split:
        # algebra's and user's; lincomb: finish's factoring and gather's joins)
        also = [p for p in DEFAULT_PHASES if name in ALSO_RUNS.get(p, ())]
        assert where == [name] + also


def test_an_unknown_phase_is_a_located_error_naming_the_phases(tmp_path):
    f = _file(tmp_path, ";; squares\n;; @phase nowhere\n")
    with pytest.raises(RuleFileError, match=r"mine\.egg:2:1: @phase 'nowhere' is not a phase of the default "
                                            r"schedule; the phases are inline, simplify, loops"):
        ea.optimize(ea.parse(PROG), sizes={"n": 10}, rules=[str(f)])


@pytest.mark.parametrize("banner, line, msg", [
    (";; a\n;; @phase\n", 2, "expected ';; @phase NAME'"),
    (";; @phase loops cleanup\n", 1, "expected ';; @phase NAME'"),
    (";; @phase loops\n;; @phase cleanup\n", 2, "a second @phase pragma"),
])
def test_malformed_pragmas_are_located_errors(banner, line, msg):
    forms = split_forms(banner + "(ruleset r)\n", "r.egg")
    with pytest.raises(RuleFileError, match=rf"r\.egg:{line}:1: {msg}"):
        phase_pragma(forms)


def test_a_pragma_below_the_banner_is_not_one():
    # only the file's leading comment is its banner; a comment above a later form is not
    forms = split_forms(";; banner\n(ruleset r)\n;; @phase loops\n(ruleset s)\n", "r.egg")
    assert phase_pragma(forms) is None


def test_a_loaded_ruleset_the_schedule_never_runs_is_named(tmp_path):
    f = _file(tmp_path, ";; squares\n")
    s = seq(phase("a", saturate(run("let", "tuple", "fuse", "ring", "cond", "fold"))))
    res = ea.optimize(ea.parse(PROG), sizes={"n": 10}, rules=[str(f)], schedule=s)
    note = next(n for n in res.report.notes if n.startswith("loaded but not run by this schedule"))
    assert "mine" in note and "motion" in note


def test_the_default_schedule_runs_every_shipped_ruleset():
    res = ea.optimize(ea.parse(PROG), sizes={"n": 10})
    assert not [n for n in res.report.notes if n.startswith("loaded but not run")]


def test_schedule_show_places_a_user_ruleset_by_its_pragma(tmp_path):
    f = _file(tmp_path, ";; squares\n;; @phase simplify\n")
    out = subprocess.run([sys.executable, "-m", "eqsat_ad.cli", "schedule", "show", "--rules", str(f)],
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("(run-schedule") and "mine" in ln)
    k = out.splitlines().index(line)
    assert out.splitlines()[k - 1].startswith(";; @phase simplify")


def test_a_growth_limit_ends_a_phase_before_it_passes_its_multiple(tmp_path):
    # commutativity and ring's factoring grow a sum of products without end; growth=2 stops the
    # phase at about twice the e-nodes it started with, and the next phase runs
    from eqsat_ad.strategy.schedule_file import parse_schedule
    everything = ("let", "tuple", "fuse", "fission", "ring", "cond", "fold", "motion", "eta", "comm",
                  "distrib", "invariant", "constassoc", "factor")
    s = seq(phase("inline", saturate(run("let", "tuple", "fuse", "fission", "ring"))),
            phase("grow", saturate(run(*everything)), growth=2.0),
            phase("after", saturate(run("ring"))))
    assert parse_schedule(str(s)) == s                   # growth=2.0 prints and reads back
    from eqsat_ad.bench import corpus as C
    res = ea.optimize(C.derivative_program(C.get("mlp3")), sizes={"h": 3, "d": 3, "o": 2}, schedule=s)
    grow = res.report.phases[1]
    assert grow.stop_reason == "node limit"
    # a phase may always add GROWTH_FLOOR e-nodes; one iteration may overshoot by half
    from eqsat_ad.driver import GROWTH_FLOOR
    assert grow.enodes_after <= 1.5 * max(2.0 * grow.enodes_before, grow.enodes_before + GROWTH_FLOOR)
    assert [ph.name for ph in res.report.phases] == ["inline", "grow", "after"]


def test_a_bad_growth_limit_is_a_located_error():
    from eqsat_ad.strategy.schedule_file import parse_schedule
    with pytest.raises(RuleFileError, match=r"s\.egg:1: bad @phase limit 'growth=0.5'"):
        parse_schedule(";; @phase p growth=0.5\n(run-schedule (run ring))", file="s.egg")


def test_the_default_schedule_bounds_its_explosive_phases():
    from eqsat_ad.strategy.defaults import PHASE_GROWTH
    for ph in phases_of(default_schedule()):
        assert ph.limits.growth == PHASE_GROWTH.get(ph.name)
    assert {"algebra", "commute"} <= set(PHASE_GROWTH)
