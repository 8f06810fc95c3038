"""The e-graph bridge: encoding with unique names, the fv analysis, capture-free substitution,
side conditions, decoding, and .egg text handling."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.egraph.decode import readable_names
from eqsat_ad.egraph.eggtext import rulesets_in, split_forms
from eqsat_ad.egraph.encode import encode_program
from eqsat_ad.egraph.session import EGraphSession
from eqsat_ad.lang.binders import alpha_eq


def holds(session: EGraphSession, fact: str) -> bool:
    try:
        session.run_text(f"(check {fact})")
        return True
    except ea.EqsatError:
        return False


def test_alpha_equivalent_programs_encode_identically():
    a = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (sum n (lambda (j) (* (get x i) (get x j)))))))")
    b = ea.parse("(fun ((x (vec n))) (build n (lambda (p) (sum n (lambda (q) (* (get x p) (get x q)))))))")
    assert encode_program(a).root == encode_program(b).root


def test_binders_get_unique_names():
    p = ea.parse("(fun ((x (vec n))) (+ (sum n (lambda (i) (get x i))) (sum n (lambda (i) (exp (get x i))))))")
    enc = encode_program(p)
    assert enc.root.count('(Sum "i1"') == 1 and enc.root.count('(Sum "i2"') == 1
    # alpha-equivalent sub-terms are one term (docs/architecture.md, "Sharing")
    q = ea.parse("(fun ((x (vec n))) (+ (sum n (lambda (i) (get x i))) (sum n (lambda (j) (get x j)))))")
    enc = encode_program(q)
    text = "\n".join(enc.lets + [enc.root])
    assert text.count('(Sum "i1"') == 1 and '"i2"' not in text


def test_encode_then_extract_without_rules_round_trips():
    p = ea.parse("""(fun ((x (vec n)) (s real))
      (let ((y (build n (lambda (i) (* s (get x i))))))
        (ifold (lambda (acc i) (pair (+ (fst acc) (get y i)) (snd acc))) (pair 0.0 1.0) n)))""")
    s = EGraphSession(rule_files=[])
    s.add_program(ea.ad.api.prepare(p))
    s.load_cost_rules({})
    s.set_sizes({"n": 10})
    s.compute_costs()
    body, _ = s.extract_root()
    # the e-graph holds the normal form: y fused into its one use (get y i)
    from eqsat_ad.lang.normalize import normalize_program
    assert alpha_eq(body, normalize_program(ea.ad.api.prepare(p)).body)
    assert "build" not in ea.show_expr(body)


def test_free_variable_analysis():
    s = EGraphSession(rule_files=[])
    s.add_term("t", '(Sum "i" (Dim "n") (Add (Var "i") (Var "k")))')
    s.add_term("f", '(IFold "a" "i" (Add (Acc "a" "i") (Var "z")) (Num 0.0) (Dim "n"))')
    s.saturate(("analysis",))
    assert holds(s, '(= (fv $t) (set-of "k"))')
    assert holds(s, '(= (fv $f) (set-of "z"))')


def test_substitution_pushes_down_and_refuses_to_capture():
    s = EGraphSession()
    # (build n (λj. i + j))[i := r]  pushes through the binder
    s.add_term("ok", '(Subst (Build "j" (Dim "n") (Add (Var "i") (Var "j"))) "i" (Var "r"))')
    # (build n (λj. i + j))[i := j]  would capture j: must not be pushed
    s.add_term("cap", '(Subst (Build "j" (Dim "n") (Add (Var "i") (Var "j"))) "i" (Var "j"))')
    s.saturate(("analysis", "subst"))
    assert holds(s, '(= $ok (Build "j" (Dim "n") (Add (Var "r") (Var "j"))))')
    assert not holds(s, '(= $cap (Build "j" (Dim "n") (Add (Var "j") (Var "j"))))')


def test_substitution_skips_terms_without_the_variable_and_stops_at_shadowing():
    s = EGraphSession()
    s.add_term("skip", '(Subst (Add (Var "a") (Num 1.0)) "i" (Num 7.0))')
    s.add_term("shadow", '(Subst (Sum "i" (Dim "n") (Var "i")) "i" (Num 7.0))')
    s.saturate(("analysis", "subst"))
    assert holds(s, '(= $skip (Add (Var "a") (Num 1.0)))')
    assert holds(s, '(= $shadow (Sum "i" (Dim "n") (Var "i")))')


def test_fold_conditional_needs_the_index_range():
    # r ranges over m, the sum over n: when m > n, (get x r) would be out of range, and the
    # true value is 0.  The one-hot fold must not fire.
    p = ea.parse("""(fun ((x (vec n)) (y (vec m)))
      (build m (lambda (r) (sum n (lambda (j) (if (= j r) (get x j) 0.0))))))""")
    res = ea.optimize(p, sizes={"n": 100, "m": 100})
    x, y = np.arange(3.0) + 1, np.zeros(5)
    np.testing.assert_allclose(ea.evaluate(res.program, x=x, y=y), [1, 2, 3, 0, 0])
    # with the same extent, it does fire
    q = ea.parse("(fun ((x (vec n))) (build n (lambda (r) (sum n (lambda (j) (if (= j r) (get x j) 0.0))))))")
    assert ea.optimize(q, sizes={"n": 100}).program.body == ea.parse_expr("x")


def test_readable_names_make_alpha_variants_equal():
    p = ea.parse("(fun ((x (vec n))) (+ (sum n (lambda (a) (get x a))) (sum n (lambda (b) (get x b)))))")
    body = readable_names(p, share=False).body
    assert body.args[0] == body.args[1]
    # by default the two alpha-equivalent sums are one computation, bound once
    assert ea.show_expr(readable_names(p).body) == "(let ((t0 (sum n (lambda (i) (get x i))))) (+ t0 t0))"


def test_split_forms_reports_places():
    with pytest.raises(ea.RuleFileError, match=r"r\.egg:2:3: unbalanced"):
        split_forms("(ruleset a)\n  (rewrite (A x) x\n", "r.egg")
    with pytest.raises(ea.RuleFileError, match=r"r\.egg:1:13: unexpected text 'oops'"):
        split_forms("(ruleset a) oops", "r.egg")
    with pytest.raises(ea.RuleFileError, match=r"r\.egg:1:11: unterminated string"):
        split_forms('(rule ((= "abc', "r.egg")


def test_rulesets_and_rule_names_are_listed():
    forms = split_forms(';; my rules\n(ruleset mine)\n(rewrite (Neg (Neg a)) a :ruleset mine :name "nn")\n'
                        "(rewrite (Neg (Num 0.0)) (Num 0.0) :ruleset mine)\n", "mine.egg")
    info = rulesets_in(forms)["mine"]
    assert [r.name for r in info.rules] == ["nn", "mine.egg:4"]
    assert info.comment == "my rules"


def test_rule_file_may_not_run_schedules(tmp_path):
    f = tmp_path / "r.egg"
    f.write_text("(ruleset a)\n(run a 3)\n")
    with pytest.raises(ea.RuleFileError, match="r.egg:2:1: .*not 'run'"):
        EGraphSession(rule_files=[f])


def test_every_shipped_rule_is_named():
    s = EGraphSession()
    for rs in s.rulesets.values():
        for r in rs.rules:
            assert ".egg:" not in r.name, f"unnamed rule at {r.file}:{r.line}"
