"""The cost model: the formula, the backend's special cases, DAG sharing, calibration table,
consistency with the e-graph costs and pluggability."""
from __future__ import annotations

import dataclasses
import json

import pytest

import eqsat_ad as ea
from eqsat_ad.cost.model import OPCOSTS_JSON, CostModel, default_cost_model

M = CostModel(overhead=0.0)


def cost(text: str, sizes=None, model=M, dag=False) -> float:
    p = ea.parse(text)
    return (model.dag_cost if dag else model.program_cost)(p, sizes or {"n": 100})


def test_node_cost_is_op_times_extent_of_free_index_variables():
    # exp over an n-vector: n elements; a scalar exp: one element
    assert cost("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))") == \
        pytest.approx(100 * M.op_cost("Exp") + 100 * M.op_cost("Sum"))
    assert cost("(fun ((y real)) (exp y))") == pytest.approx(M.op_cost("Exp"))


def test_nested_loops_multiply_extents():
    c = cost("(fun ((A (mat n n))) (sum n (lambda (i) (sum n (lambda (j) (exp (get (get A i) j)))))))",
             {"n": 30})
    assert c == pytest.approx(900 * M.op_cost("Exp") + 900 * M.op_cost("Sum") + 30 * M.op_cost("Sum"))


def test_loop_invariant_sub_term_is_paid_once_not_per_iteration():
    inner = cost("(fun ((x (vec n))) (build n (lambda (i) (sum n (lambda (j) (exp (get x j)))))))")
    # the sum does not depend on i: computed once (n exps), then filled into n elements
    assert inner == pytest.approx(100 * M.op_cost("Exp") + 100 * M.op_cost("Sum") + 100 * M.op_cost("Fill"))


def test_per_call_overhead_counts_operations_and_loop_iterations():
    m = CostModel(overhead=500.0)
    vec = cost("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))", model=m)
    assert vec == pytest.approx(cost("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))") + 2 * 500)
    # a genuinely sequential ifold issues its body's operations once per iteration
    seq = "(fun ((x (vec n))) (ifold (lambda (a i) (+ (* 0.5 a) (exp (get x i)))) 1.0 n))"
    assert cost(seq, model=m) - cost(seq) >= 100 * 500


def test_additive_ifold_costs_like_a_sum():
    # the backend computes init + (sum n ...), and just the sum from the literal 0
    f = cost("(fun ((x (vec n))) (ifold (lambda (a i) (+ a (exp (get x i)))) 0.0 n))")
    f1 = cost("(fun ((x (vec n))) (ifold (lambda (a i) (+ a (exp (get x i)))) 1.0 n))")
    s = cost("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))")
    assert f == pytest.approx(s)
    assert f1 == pytest.approx(s + M.op_cost("Add"))


def test_unused_half_of_a_pair_is_free():
    both = cost("(fun ((x (vec n))) (let ((p (pair (sum n (lambda (i) (exp (get x i)))) "
                "(sum n (lambda (i) (sin (get x i))))))) (+ (fst p) (snd p))))")
    one = cost("(fun ((x (vec n))) (let ((p (pair (sum n (lambda (i) (exp (get x i)))) "
               "(sum n (lambda (i) (sin (get x i))))))) (snd p)))")
    assert one == pytest.approx(100 * M.op_cost("Sin") + 100 * M.op_cost("Sum"))
    assert both > one


def test_dag_cost_pays_structurally_equal_sub_terms_once():
    t = "(fun ((x (vec n))) (build n (lambda (i) (* (exp (get x i)) (exp (get x i))))))"
    tree, dag = cost(t), cost(t, dag=True)
    assert tree - dag == pytest.approx(100 * M.op_cost("Exp"))
    # equal sums (same binder name, as readable_names makes them) are one computation for the
    # backend; alpha-equivalent ones with different names are two
    same = "(sum n (lambda (i) (exp (get x i))))"
    t2 = f"(fun ((x (vec n))) (* {same} {same}))"
    assert cost(t2, dag=True) == pytest.approx(100 * M.op_cost("Exp") + 100 * M.op_cost("Sum") + M.op_cost("Mul"))
    t3 = f"(fun ((x (vec n))) (* {same} (sum n (lambda (j) (exp (get x j))))))"
    assert cost(t3, dag=True) == cost(t3)


def test_dag_cost_does_not_share_across_different_extents():
    t = ("(fun ((x (vec n)) (y (vec m))) (+ (sum n (lambda (i) (exp (get x i)))) "
         "(sum m (lambda (i) (exp (get y i))))))")
    assert cost(t, {"n": 10, "m": 20}, dag=True) == cost(t, {"n": 10, "m": 20})


def test_program_cost_matches_egglog_costs_on_an_extracted_program():
    """Same formula in Python and in egglog (op x extent) for the nodes egglog costs."""
    from eqsat_ad.egraph.costrules import COST_SCALE
    m = CostModel(overhead=0.0, opcost={**M.opcost, "GetAxis": M.op_cost("Get"), "Build": 1.0})
    prog = ea.grad(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))"), "x")
    res = ea.optimize(prog, sizes={"n": 100}, cost_model=m, keep_egraph=True)
    _, egg = res.session.extract_root()
    py = m.program_cost(res.program, {"n": 100})
    # egglog adds 1 (= 0.1 units) per leaf and literal; everything else agrees
    assert py <= egg / COST_SCALE + 1e-9 <= py + 5


def test_calibrated_table_is_loaded_and_small():
    if not OPCOSTS_JSON.exists():
        pytest.skip("no calibrated opcosts.json")
    data = json.loads(OPCOSTS_JSON.read_text())
    assert OPCOSTS_JSON.stat().st_size < 4096
    assert data["opcost"]["Add"] == pytest.approx(1.0)
    assert {"machine", "date", "overhead", "unit_seconds"} <= set(data)
    m = default_cost_model()
    assert m.overhead == data["overhead"] and m.op_cost("Exp") == data["opcost"]["Exp"]


def test_a_user_model_plugs_in():
    class FlopCount(CostModel):
        def node_cost(self, ctor, weight, calls=1.0):
            return weight            # every operation on every element costs 1

    prog = ea.grad(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"), "x")
    for ex in ("tree", "dag"):
        res = ea.optimize(prog, sizes={"n": 50}, cost_model=FlopCount(), extractor=ex)
        assert res.cost < res.cost_before / 10
    cheap_exp = dataclasses.replace(default_cost_model(), opcost={**default_cost_model().opcost, "Exp": 0.01})
    assert cheap_exp.program_cost(ea.parse("(fun ((y real)) (exp y))")) < \
        default_cost_model().program_cost(ea.parse("(fun ((y real)) (exp y))"))


# -- the backend's execution semantics, declared once (eqsat_ad/cost/semantics.py) -------------
def test_product_and_max_folds_are_priced_as_the_reductions_the_backend_runs():
    prod = cost("(fun ((x (vec n))) (ifold (lambda (a i) (* a (exp (get x i)))) 2.0 n))")
    assert prod == pytest.approx(100 * M.op_cost("Exp") + 100 * M.op_cost("Prod") + M.op_cost("Mul"))
    mx = cost("(fun ((x (vec n))) (ifold (lambda (a i) (if (> (get x i) a) (get x i) a)) 0.0 n))")
    assert mx == pytest.approx(100 * M.op_cost("Max") + M.op_cost("Extreme"))
    # with call overheads: one reduction call, not one call per iteration
    m = CostModel(overhead=500.0)
    assert cost("(fun ((x (vec n))) (ifold (lambda (a i) (* a (exp (get x i)))) 2.0 n))", model=m) < \
        prod + 10 * 500
    seq = cost("(fun ((x (vec n))) (ifold (lambda (a i) (* (+ a 1.0) (exp (get x i)))) 2.0 n))", model=m)
    assert seq > 100 * M.op_cost("Loop") + 100 * 500


def test_a_sum_of_a_product_is_one_blas_or_einsum_call():
    assert cost("(fun ((x (vec n)) (w (vec n))) (sum n (lambda (i) (* (get x i) (get w i)))))") == \
        pytest.approx(100 * M.op_cost("Dot"))
    assert cost("(fun ((A (mat m n)) (x (vec n))) (build m (lambda (i) (sum n (lambda (j) "
                "(* (get (get A i) j) (get x j)))))))", {"m": 10, "n": 100}) == \
        pytest.approx(1000 * M.op_cost("Gemv") + 10 * M.op_cost("Build"))
    # a matrix product: einsum, whose path planning (large operands only) is a fixed cost
    mm = ("(fun ((A (mat n n)) (B (mat n n))) (build n (lambda (i) (build n (lambda (j) "
          "(sum n (lambda (l) (* (get (get A i) l) (get (get B l) j)))))))))")
    m = CostModel(opcost={**M.opcost, "Build": 0.0}, overhead=1.0, call_overhead={"EinsumPlan": 1e5, "EinsumLoop": 7.0})
    small, large = cost(mm, {"n": 4}, model=m), cost(mm, {"n": 100}, model=m)
    assert small == pytest.approx(64 * m.op_cost("EinsumLoop") + 7.0)                  # unplanned
    assert large == pytest.approx(100 ** 3 * m.op_cost("Gemm") + 1.0 + 1e5)            # BLAS + planning


def test_a_get_at_an_offset_along_an_axis_is_a_view():
    shifted = cost("(fun ((x (vec n))) (sum 10 (lambda (i) (exp (get x (+ i 1))))))")
    assert shifted == pytest.approx(10 * M.op_cost("Exp") + 10 * M.op_cost("Sum"))
    # the diagonal: the array varies along the index itself, a gather
    diag = cost("(fun ((A (mat n n))) (sum n (lambda (i) (exp (get (get A i) i)))))")
    assert diag == pytest.approx(100 * (M.op_cost("Get") + M.op_cost("Exp") + M.op_cost("Sum")))


FOLD_BODIES = {
    "(+ a (exp (get x i)))": "sum", "(+ (exp (get x i)) a)": "sum", "(- a (get x i))": "sub",
    "(* a (get x i))": "prod", "(* (exp (get x i)) a)": "prod",
    "(if (< 0.0 (get x i)) (+ a (get x i)) a)": "sum", "(if (< (get x i) 0.0) a (+ a (get x i)))": "sum",
    "(if (> (get x i) a) (get x i) a)": "max", "(if (< a (get x i)) (get x i) a)": "max",
    "(if (< (get x i) a) (get x i) a)": "min", "a": "identity",
    "(+ (* 0.5 a) (get x i))": None, "(* a (+ a (get x i)))": None, "(if (< a 0.0) (get x i) a)": None,
}


@pytest.mark.parametrize("body", sorted(FOLD_BODIES))
def test_fold_shapes_match_the_backend(body):
    """semantics.fold_shape is what the backend does: a Python loop exactly when it says None."""
    from eqsat_ad.cost.semantics import fold_shape
    from eqsat_ad.lang.binders import free_vars
    from eqsat_ad.lang.syntax import parse_expr
    shape = fold_shape(parse_expr(body), "a", lambda e: "a" not in free_vars(e))
    assert (shape.kind if shape else None) == FOLD_BODIES[body]
    src = ea.compile(ea.parse(f"(fun ((x (vec n))) (ifold (lambda (a i) {body}) 1.5 n))")).source
    assert ("for " in src) == (shape is None)
    if shape is not None and shape.kind == "prod":
        assert "_mulr(" in src
    # the e-graph reads the same shape on the members of the body class
    from eqsat_ad.egraph.session import EGraphSession
    from eqsat_ad.extract import EGraphView
    s = EGraphSession([])
    s.add_program(ea.parse(f"(fun ((x (vec n))) (ifold (lambda (a i) {body}) 1.5 n))"))
    s.saturate(("analysis",))
    g = EGraphView.from_session(s)
    folds = [n for n in g.nodes if n.op == "IFold"]
    assert len(folds) == 1
    got = g.fold_shape(folds[0])
    assert (got[0] if got else None) == FOLD_BODIES[body]


CONTRACTIONS = {
    "(sum n (lambda (i) (* (get x i) (get y i))))": ("dot", "_dot("),
    "(sum n (lambda (i) (pow (get x i) 2)))": ("dot", "_dot("),
    "(build n (lambda (k) (sum n (lambda (i) (* (get (get A k) i) (get x i))))))": ("gemv", None),
    "(build n (lambda (k) (build n (lambda (j) (sum n (lambda (i) (* (get (get A k) i) (get (get A i) j))))))))":
        ("einsum", "_contract("),
    "(sum n (lambda (i) (* (get x i) 2.0)))": (None, None),
}


@pytest.mark.parametrize("term", sorted(CONTRACTIONS))
def test_contractions_match_the_backend(term):
    kind, call = CONTRACTIONS[term]
    p = ea.parse(f"(fun ((A (mat n n)) (x (vec n)) (y (vec n))) {term})")
    src = ea.compile(p).source
    feats = default_cost_model().features(p, {"n": 50})
    got = "dot" if "Dot" in feats else "gemv" if "Gemv" in feats else \
        "einsum" if ("Gemm" in feats or "EinsumLoop" in feats) else None
    assert got == kind
    if call:
        assert call in src
    if kind is None:
        assert "_dot(" not in src and "_contract(" not in src and "_matmul(" not in src


def test_in_cache_costs_go_from_the_small_figure_to_the_large_one_with_log_size(tmp_path):
    m = CostModel(opcost={"Add": 1.0, "If": 10.0}, in_cache={"If": 0.1},
                  meta={"in_cache_n": 1 << 13, "n": 1 << 18})
    assert m.cache_factor("If", 100) == 0.1 and m.cache_factor("If", 1 << 13) == 0.1
    assert m.cache_factor("If", 1 << 18) == 1.0 and m.cache_factor("If", 1 << 20) == 1.0
    assert m.cache_factor("If", 2 ** 15.5) == pytest.approx(0.55)      # half way in log(size)
    assert m.cache_factor("Add", 100) == 1.0                            # no in-cache figure
    # node_cost: the size of one call is weight / calls
    assert m.node_cost("If", 1000.0, 1.0) == pytest.approx(10.0 * 0.1 * 1000.0)
    assert m.node_cost("If", 1000.0 * (1 << 18), 1000.0) == pytest.approx(10.0 * 1000.0 * (1 << 18))
    # a user who changes opcost changes both regimes (in_cache is a fraction of it)
    cheap = dataclasses.replace(m, opcost={**m.opcost, "If": 1.0})
    assert cheap.node_cost("If", 1000.0, 1.0) == pytest.approx(0.1 * 1000.0)
    # the JSON form keeps it
    (tmp_path / "costs.json").write_text(json.dumps(m.to_json()))
    back = CostModel.from_json(tmp_path / "costs.json")
    assert back.in_cache == {"If": 0.1} and back.cache_factor("If", 100) == 0.1


def test_each_input_of_a_compiled_program_is_paid_once_per_call():
    m = CostModel(overhead=0.0, call_overhead={"Entry": 100.0, "EntryParam": 7.0})
    one = ea.parse("(fun ((x (vec n))) (get x 0))")
    three = ea.parse("(fun ((x (vec n)) (y (vec n)) (z real)) (get x 0))")
    assert m.dag_cost(three, {"n": 10}) - m.dag_cost(one, {"n": 10}) == pytest.approx(2 * 7.0)
    # uncalibrated: free
    assert CostModel().calls_overhead("EntryParam") == 0.0


# -- issue 11: what the backend does with range guards, windows, summed builds -----------------
def test_a_range_guard_is_priced_as_the_backend_runs_it():
    m = default_cost_model()
    sel = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (if (<= 1 i) (get x (- i 1)) 1.0))))")
    br = m.breakdown(sel, {"n": 1000})
    assert "RangeSelect" in br and "If" not in br and "Le" not in br and "EdgeRows" not in br
    assert "_where(" not in ea.compile(sel).source and "_empty(" in ea.compile(sel).source
    # in a sum, with 0 elsewhere: added into the slice of the range, the sum's Add only
    summed = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (- (if (<= 1 i) (get x (- i 1)) 0.0)"
                      " (if (< i (- n 1)) (get x (+ i 1)) 0.0)))))")
    br = m.breakdown(summed, {"n": 1000})
    assert "RangeSelect" not in br and "If" not in br and "Sub" in br
    assert "] += " in ea.compile(summed).source
    # a guard of another kind: np.where, and the shifted read under it a padded copy
    where = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (if (< (get x i) 0.5) (get x (- i 1)) 0.0))))")
    br = m.breakdown(where, {"n": 1000})
    assert "If" in br and "EdgeRows" in br
    assert "_where(" in ea.compile(where).source and "_edge_rows(x" in ea.compile(where).source


def test_a_shifted_index_let_is_an_index():
    m = default_cost_model()
    p = ea.parse("(fun ((x (vec n))) (sum (- n 1) (lambda (i) (let ((t (+ i 1))) (* (get x t) (get x i))))))")
    assert "Get" not in m.breakdown(p, {"n": 1000})
    assert "_gather(" not in ea.compile(p).source and "x[" in ea.compile(p).source


def test_windows_and_summed_builds_are_priced_as_the_backend_runs_them():
    m = default_cost_model()
    conv = ea.parse("(fun ((x (vec n)) (w (vec K))) (build (+ (- n K) 1) (lambda (i)"
                    " (sum K (lambda (k) (* (get w k) (get x (+ i k))))))))")
    br = m.breakdown(conv, {"n": 1000, "K": 8})
    assert "Window" in br and "Get" not in br
    assert "_window(" in ea.compile(conv).source
    logreg = ea.parse("(fun ((X (mat N d)) (w (vec d))) (sum N (lambda (n) (let ((v (build (length (get X n))"
                      " (lambda (i) (* (get (get X n) i) (get w i)))))) (exp (sum (length v) (lambda (i) (get v i))))))))")
    br = m.breakdown(logreg, {"N": 1000, "d": 8})
    assert "Gemv" in br and "Mul" not in br
    assert "_dot(X, w)" in ea.compile(logreg).source


def test_a_stencil_read_at_several_shifts_is_paid_once():
    """(semantics.stencil_form) the gradient of a 2-tap convolution reads its residual at i and
    i - 1 under two guards: the backend computes it once and slices it twice."""
    m = default_cost_model()
    r = "(- (+ (* (get w 0) (get x {a})) (* (get w 1) (get x {b}))) (get t {a}))"
    one = ea.parse("(fun ((x (vec n)) (w (vec 2)) (t (vec n))) (build n (lambda (i) (* (get w 0)"
                   f" (if (< i (- n 1)) {r.format(a='i', b='(+ i 1)')} 0.0)))))")
    two = ea.parse("(fun ((x (vec n)) (w (vec 2)) (t (vec n))) (build n (lambda (i) (+ (* (get w 0)"
                   f" (if (< i (- n 1)) {r.format(a='i', b='(+ i 1)')} 0.0)) (* (get w 1) (if (<= 1 i)"
                   f" {r.format(a='(- i 1)', b='i')} 0.0))))))")
    s = {"n": 100000}
    b1, b2 = m.breakdown(one, s), m.breakdown(two, s)
    assert b2["Mul"] < 1.6 * b1["Mul"]          # the residual's products once, the factors twice
    assert "a read out of range in the guarded range" in ea.compile(two).source   # a stencil, sliced
    import numpy as np
    x, w, t = np.linspace(0, 1, 7), np.array([0.5, -2.0]), np.linspace(1, 2, 7)
    np.testing.assert_allclose(ea.compile(two)(x=x, w=w, t=t), ea.evaluate(two, x=x, w=w, t=t), rtol=1e-12)


def test_a_stencils_cost_does_not_depend_on_the_order_of_its_reads():
    """The stencil is priced at its canonical occurrence (reads unshifted: what the backend
    computes), not at whichever comes first: r(i - 1) + r(i) costs what r(i) + r(i - 1) does
    (conv3-signal's gradient: saturation's extraction had the other order of the same terms,
    0.26 % cheaper only because the shifted occurrence, priced first, shared its reads with a
    third term)."""
    m = default_cost_model()
    r = "(- (+ (* (get w 0) (get x {a})) (* (get w 1) (get x {b}))) (get t {a}))"
    at_i = f"(* (get w 0) (if (< i (- n 1)) {r.format(a='i', b='(- i -1)')} 0.0))"
    at_i1 = f"(* (get w 1) (if (<= 1 i) {r.format(a='t1', b='i')} 0.0))"
    third = "(if (<= 1 i) (* (get w 1) (* (get x t1) (get t t1))) 0.0)"     # the reads at t1
    prog = "(fun ((x (vec n)) (w (vec 2)) (t (vec n))) (build n (lambda (i) (let ((t1 (- i 1))) (+ {} (+ {} {}))))))"
    s = {"n": 100000}
    costs = {m.dag_cost(ea.parse(prog.format(*order)), s)
             for order in [(third, at_i, at_i1), (third, at_i1, at_i), (at_i, at_i1, third), (at_i1, third, at_i)]}
    assert len(costs) == 1, costs
