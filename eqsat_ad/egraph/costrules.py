"""Size-aware node costs computed inside egglog (``set-cost``), for egglog's own extractor.

A node costs (its operation's cost) x (product of the extents of the index variables free in
the node), so that the cheapest tree is the fastest NumPy program.
Written as egglog rules:

* ``extv(i)``: the numeric extent of index name ``i`` (from ``ext`` and ``dimv``); accumulator
  and let names weigh 1 (an accumulator's fv already contains its fold index);
* ``setw(S)``: the product of ``extv`` over a name set, computed on demand by peeling one name
  at a time (a join on a computed key is ~50x slower);
* a scope penalty: a node whose own free variables differ from its e-class's fv gets a huge
  cost, so extraction never picks a member that mentions a variable the class was proved not
  to depend on (it could be out of scope where the class was moved; binders.md §6.4).

The cost tables are declared with a ``min`` merge because costs only decrease as fv shrinks;
run ``analysis`` to saturation first, then this ruleset.
"""
from __future__ import annotations

from .constructors import CONSTRUCTORS, FOLD_CTORS

SCOPE_PENALTY = 10**14
COST_CAP = "1e13"          # a node's cost is capped (egglog i64 arithmetic panics on overflow)
LET_COST = 10**12          # lets are inlined by rules/let.egg; a surviving Let is a last resort
COST_SCALE = 10            # op costs are floats; egglog costs are integers (units of 0.1)


def _capped(c: int, o: int) -> str:
    """egglog text of ``min(c * w + o, COST_CAP)`` as an i64 (w is the f64 weight)."""
    return f"(to-i64 (min (+ (* {float(c)} w) {float(o)}) {COST_CAP}))"


def _sig(name: str) -> str:
    kind, ar = CONSTRUCTORS[name]
    if kind == "binder":
        return "String Term Term"
    if kind == "ifold":
        return "String String Term Term Term"
    return " ".join(["Term"] * ar)


def fold_shape_costs(model) -> dict[str, tuple[float, float]]:
    """``{kind: (cost per element, fixed cost)}`` of an ``ifold`` the backend computes as a
    vectorised reduction (:data:`eqsat_ad.cost.semantics.FOLD_BODY_FORMS`): the reduction
    per element and its call, plus the call combining it with the initial value -- as
    ``CostModel.dag_cost`` prices them."""
    from ..cost.semantics import FOLD_COMBINE, FOLD_REDUCTION
    out = {}
    for kind, red in FOLD_REDUCTION.items():
        comb = FOLD_COMBINE[kind]
        out[kind] = (model.op_cost(red), model.calls_overhead(red) + model.op_cost(comb)
                     + model.calls_overhead(comb))
    return out


def _egg_pattern(form: str) -> str:
    """An egglog pattern of a fold body form (``acc`` -> the accumulator ``(Acc a s)``)."""
    from ..lang.ast import If, Prim, Var
    from ..lang.syntax import parse_expr
    from .constructors import PRIM_TO_CTOR

    def go(e) -> str:
        if isinstance(e, Var):
            return "(Acc a s)" if e.name == "acc" else e.name
        if isinstance(e, If):
            return f"(If {go(e.cond)} {go(e.then)} {go(e.else_)})"
        if isinstance(e, Prim) and e.op in (">", ">="):          # (> x y) is (Lt y x)
            return f"({'Lt' if e.op == '>' else 'Le'} {go(e.args[1])} {go(e.args[0])})"
        return f"({PRIM_TO_CTOR[e.op]} {' '.join(go(x) for x in e.args)})"
    return go(parse_expr(form))


def _fold_shape_rules(fold_costs: dict, scope_penalty: bool) -> list[str]:
    """A recognised ``ifold`` body is one vectorised reduction (semantics.fold_shape), not a
    Python loop: its cost is the reduction's (the table's ``min`` merge keeps the lower)."""
    from ..cost.semantics import FOLD_BODY_FORMS
    lines = []
    for k, (form, kind) in enumerate(FOLD_BODY_FORMS):
        c, o = fold_costs[kind]
        c, o = max(1, int(round(c * COST_SCALE))), int(round(o * COST_SCALE))
        free = "(= ft (fv t)) (set-not-contains ft a)" + (
            " (= fc (fv c)) (set-not-contains fc a)" if " c " in form else "")
        nf = "(set-insert (set-union fn (set-union fz fb)) s)"
        own = "(set-union fn (set-union fz (set-remove (set-remove fb a) s)))"
        scope = f" (= (fv e) {own})" if scope_penalty else ""
        lines.append(f"(rule ((= e (IFold a s b z n)) (= b {_egg_pattern(form)}) {free} "
                     f"(= fn (fv n)) (= fb (fv b)) (= fz (fv z)) (= w (setw {nf})){scope}) "
                     f"((set-cost (IFold a s b z n) {_capped(c, o)})) :ruleset cost :name \"fold-{kind}-{k}\")")
    return lines


def cost_rules_text(opcost: dict[str, float], default: float = 1.0, scope_penalty: bool = True,
                    overhead: dict[str, float] | None = None,
                    fold_costs: dict[str, tuple[float, float]] | None = None) -> str:
    """The ``cost`` ruleset for the given per-constructor operation costs (cost per element)
    and per-call overheads (a node costs ``op x extents + overhead``); ``fold_costs``
    (:func:`fold_shape_costs`) prices the folds the backend vectorises.

    A vectorised ``if`` (``np.where``) computes both branches; a scalar one (a Python ``if``)
    runs one, but which one is not known statically, so here -- as in ``CostModel.dag_cost``
    -- both branches are paid."""
    overhead = overhead or {}
    lines = [";; generated by eqsat_ad/egraph/costrules.py", "(ruleset cost)",
             "(function dimv (Term) i64 :merge (min old new))",
             ";; extents and their products are f64: huge sizes must not overflow i64 (egglog panics)",
             "(function extv (String) f64 :merge (min old new))",
             "(rule ((ext s n) (= v (dimv n))) ((set (extv s) (to-f64 v))) :ruleset cost :name \"extv-index\")",
             "(rule ((= e (Int k)) (> k 0)) ((set (dimv e) k)) :ruleset cost :name \"dimv-int\")",
             "(rule ((= e (Int k)) (<= k 0)) ((set (dimv e) 1)) :ruleset cost :name \"dimv-int-empty\")",
             *(f"(rule ((= e ({name} a i b z n))) ((set (extv a) 1.0)) :ruleset cost :name \"extv-acc{suffix}\")"
               for name, suffix in zip(FOLD_CTORS, ("", *(f"-{n}" for n in FOLD_CTORS[1:])))),
             "(rule ((= e (Let x v b))) ((set (extv x) 1.0)) :ruleset cost :name \"extv-let\")",
             "(relation needw (NameSet))",
             "(relation peel (NameSet NameSet String))",
             "(function setw (NameSet) f64 :merge (min old new))",
             "(rule ((needw s) (> (set-length s) 0)) ((peel s (set-remove s (set-get s 0)) (set-get s 0)) "
             "(needw (set-remove s (set-get s 0)))) :ruleset cost :name \"setw-peel\")",
             "(rule ((needw s) (= (set-length s) 0)) ((set (setw s) 1.0)) :ruleset cost :name \"setw-empty\")",
             "(rule ((peel s t v) (= w (setw t)) (= x (extv v))) ((set (setw s) (* w x))) :ruleset cost "
             ":name \"setw-product\")"]
    for name, (kind, ar) in CONSTRUCTORS.items():
        if kind in ("leaf", "var"):
            continue
        lines.append(f"(function cost_table_{name} ({_sig(name)}) i64 :merge (min old new))")
    for name, (kind, ar) in CONSTRUCTORS.items():
        if kind in ("leaf", "var"):
            continue
        c = max(1, int(round(opcost.get(name, default) * COST_SCALE)))
        o = int(round(overhead.get(name, 0.0) * COST_SCALE))
        if name == "Let":
            lines.append(f"(rule ((= e (Let x v b))) ((set-cost (Let x v b) {LET_COST})) :ruleset cost :name \"cost-Let\")")
            continue
        if kind == "op":
            vs = "abc"[:ar]
            pat = f"({name} {' '.join(vs)})"
            fvs = " ".join(f"(= f{v} (fv {v}))" for v in vs)
            nf = f"f{vs[0]}"
            for v in vs[1:]:
                nf = f"(set-union {nf} f{v})"
            own = nf
        elif kind == "binder":
            pat = f"({name} s n b)"
            fvs = "(= fn (fv n)) (= fb (fv b))"
            nf = "(set-insert (set-union fn fb) s)"
            own = "(set-union fn (set-remove fb s))"
        else:  # ifold
            pat = f"({name} a s b z n)"
            fvs = "(= fn (fv n)) (= fb (fv b)) (= fz (fv z))"
            nf = "(set-insert (set-union fn (set-union fz fb)) s)"
            own = "(set-union fn (set-union fz (set-remove (set-remove fb a) s)))"
        lines.append(f"(rule ((= e {pat}) {fvs}) ((needw {nf})) :ruleset cost :name \"need-{name}\")")
        if scope_penalty:
            lines.append(f"(rule ((= e {pat}) {fvs} (= w (setw {nf})) (= (fv e) {own})) "
                         f"((set-cost {pat} {_capped(c, o)})) :ruleset cost :name \"cost-{name}\")")
            lines.append(f"(rule ((= e {pat}) {fvs} (!= (fv e) {own})) "
                         f"((set-cost {pat} {SCOPE_PENALTY})) :ruleset cost :name \"scope-{name}\")")
        else:
            lines.append(f"(rule ((= e {pat}) {fvs} (= w (setw {nf}))) ((set-cost {pat} {_capped(c, o)})) "
                         f":ruleset cost :name \"cost-{name}\")")
    if fold_costs:
        lines.extend(_fold_shape_rules(fold_costs, scope_penalty))
    return "\n".join(lines) + "\n"
