"""The cost model keys loop extents by index name; binders renamed by nesting level reuse names,
so a let's value walked lazily inside another loop of that name (the attention gradient's
``sum T (i)`` forced inside ``build d (i)``) must not leave its extent behind: the price of a
program does not depend on what its binders are called."""
import pytest

import eqsat_ad as ea
from eqsat_ad.cost import default_cost_model

TEXT = """(fun ((K (mat T d)) (q (vec d)) (u (vec T)))
  (let ((z (sum T (lambda ({a}) (exp (get u {a}))))))
    (build d (lambda (i) (sum T (lambda (j) (* (get (get K j) i) (/ (get u j) z))))))))"""


@pytest.mark.parametrize("sizes", [{"T": 1024, "d": 64}, {"T": 64, "d": 1024}, {"T": 100, "d": 100}])
def test_price_does_not_depend_on_binder_names(sizes):
    m = default_cost_model()
    same, other = ea.parse(TEXT.format(a="i")), ea.parse(TEXT.format(a="p"))
    assert m.dag_cost(same, sizes) == pytest.approx(m.dag_cost(other, sizes), rel=1e-12)
    assert m.program_cost(same, sizes) == pytest.approx(m.program_cost(other, sizes), rel=1e-12)


@pytest.mark.parametrize("n", [100, 10_000])
def test_a_let_bound_size_is_priced_as_its_value(n):
    """(let ((m (+ (- n K) 1))) (build m ...)) costs what (build (+ (- n K) 1) ...) costs -- not
    a loop over the model's default size (a convolution's residual was priced over 1000 rows at
    any n)."""
    body = "(build {m} (lambda (i) (exp (sum K (lambda (k) (* (get w k) (get x (+ i k))))))))"
    let = ea.parse(f"(fun ((x (vec n)) (w (vec K))) (let ((m (+ (- n K) 1))) {body.format(m='m')}))")
    inline = ea.parse(f"(fun ((x (vec n)) (w (vec K))) {body.format(m='(+ (- n K) 1)')})")
    m = default_cost_model()
    sz = {"n": n, "K": 5}
    assert m.dag_cost(let, sz) == pytest.approx(m.dag_cost(inline, sz), rel=1e-9)
