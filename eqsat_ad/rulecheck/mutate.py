"""Mutation testing of the rule checker: small wrong versions of the shipped rules, which the
checker must call unsound.

>>> ms = mutants_of(rule_spec("sub-zero-l"))
>>> [m.op for m in ms][:3]
['swap-args', 'const', 'const']
>>> ms[0].what
'lhs: (Sub (Num 0.0) a) -> (Sub a (Num 0.0))'

Every shipped rule is mutated (:func:`mutants_of`) by these operators, each applied at every
place it fits:

``drop-cond``   drop one side condition (a ``:when`` guard; a query atom ``set-not-contains``,
                ``set-contains``, ``ext``, ``real-term``, ``!=``, ...)
``drop-range``  drop the range condition of a one-hot rule: ``(= k (Var r))`` with ``(ext r n)``
``shift``       an index ``i`` (a ``Var`` or a rule variable of index type) becomes ``i+1`` or ``i-1``
``extent``      a loop extent ``n`` becomes ``n-1`` or ``n+1``
``swap-args``   swap the operands of a non-commutative operation (``Sub``, ``Div``, ``Pow``,
                ``Lt``, ``Le``, ``Pair``), the branches of an ``If``, or the order of two nested
                substitutions
``binder``      swap the accumulator and index names of an ``IFold`` (or an ``Acc``); give a
                binder or a substitution another name of the rule
``const``       change a constant (0 <-> 1, 2 -> 1, k -> k+1, true <-> false), a primitive of the
                right-hand side (``+`` <-> ``-``, ``*`` -> ``+``, ``/`` -> ``*``, ``to-f64 k`` ->
                ``to-f64 (k+1)``), drop a ``Neg``/``neg``
``var``         use another variable of the rule on the right-hand side

Which mutants are unsound?  A mutant is *invalid* if egglog refuses it or the checker cannot
type it (it is then reported unloadable or skipped, and the run fails: it is not passed, but
there is nothing to kill).  A mutant is *equivalent* if it is still sound: those are listed in
:data:`EQUIVALENT`, each with the argument why (e.g. an empty loop's extent ``0 - 1`` is still
empty).  Every other valid mutant counts as unsound -- conservatively: an equivalent mutant
missing from the list lowers the score.  ``benchmarks/mutation_score.py`` runs every mutant,
searches every survivor much harder (many seeds, many instances) and prints the survivors that
are neither killed by that search nor listed, for review; it also fails if a listed
"equivalent" mutant is killed (a wrong argument).

The score is the fraction of unsound mutants the checker (default effort: 100 instances,
seed 0) reports unsound; ``tests/test_rule_mutation.py`` requires >= 95 % on a fixed sample.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from ..egraph.eggtext import Form
from .rules import SIGNATURES, RuleSpec, Sym, parse_rule, read_sexp, rules_in_file

# --------------------------------------------------------------------------------------
# s-expressions back to text
# --------------------------------------------------------------------------------------


def show(sx) -> str:
    """Egglog text of a read s-expression."""
    from ..egraph.encode import egg_float, egg_string
    if isinstance(sx, Sym):
        return sx.name
    if isinstance(sx, bool):
        return "true" if sx else "false"
    if isinstance(sx, float):
        return egg_float(sx)
    if isinstance(sx, int):
        return str(sx)
    if isinstance(sx, str):
        return egg_string(sx)
    return "(" + " ".join(show(x) for x in sx) + ")"


def _get(sx, path):
    for k in path:
        sx = sx[k]
    return sx


def _put(sx, path, new):
    """A copy of ``sx`` with the node at ``path`` replaced (``None``: removed)."""
    if not path:
        return new
    out = list(sx)
    if len(path) == 1:
        if new is None:
            del out[path[0]]
        else:
            out[path[0]] = new
        return out
    out[path[0]] = _put(sx[path[0]], path[1:], new)
    return out


def _nodes(sx, path=()):
    yield path, sx
    if isinstance(sx, list):
        for k, x in enumerate(sx):
            if k == 0 and isinstance(x, Sym):
                continue
            yield from _nodes(x, path + (k,))


S = Sym
NONCOMM = {"Sub", "Div", "Pow", "Lt", "Le", "Pair"}
COND_HEADS = {"set-not-contains", "set-contains", "ext", "real-term", "real-array", "!=", "<", ">",
              "<=", ">="}
PRIM_SWAP = {"+": "-", "-": "+", "*": "+", "/": "*"}


def _head(x) -> str | None:
    return x[0].name if isinstance(x, list) and x and isinstance(x[0], Sym) else None


def _one(n: int):
    return [S("Int"), n]


# --------------------------------------------------------------------------------------
# mutants
# --------------------------------------------------------------------------------------
@dataclass
class Mutant:
    """One mutated rule."""
    rule: str            # the shipped rule's name
    op: str              # the operator (module docstring)
    what: str            # where and how: "rhs: (Sub a b) -> (Sub b a)"
    text: str            # the mutated rule's egglog text
    spec: RuleSpec = field(repr=False, default=None)   # the original rule

    @property
    def id(self) -> str:
        return f"{self.rule} | {self.op} | {self.what}"

    def parsed(self) -> RuleSpec:
        """The mutant read for checking (same file, line and comment as the original)."""
        f = Form(self.text, self.spec.file, self.spec.line, 1, self.spec.comment)
        return parse_rule(f, self.rule, self.spec.ruleset)      # (its text keeps the rule's :name)


class _Types:
    """Which names of a rule are indices (from the checker's type inference)."""

    def __init__(self, spec: RuleSpec):
        from .instances import Inference, TVar, TypeClash, find
        self.idx: set[str] = set()
        self.term_vars: list[str] = []
        self.string_vars: list[str] = []
        if not spec.equations:
            return
        eq = spec.equations[0]
        try:
            inf = Inference(eq)
        except TypeClash:
            return

        def is_index(t):
            t = find(t)
            return (isinstance(t, tuple) and t[0] == "idx") or (isinstance(t, TVar) and t.kind == "int")
        self.idx = {v for v, t in inf.tv.items() if is_index(t)} | {v for v, t in inf.vt.items() if is_index(t)}
        from .rules import pattern_vars
        lhs_vars = pattern_vars(eq.lhs)
        self.term_vars = sorted(v for v in lhs_vars if eq.sorts.get(v, "Term") == "Term")
        self.string_vars = sorted(v for v in lhs_vars if eq.sorts.get(v) == "String")


def _regions(form: list, kind: str):
    """(path, 'lhs'|'rhs') of the term parts of a rule form."""
    if kind in ("rewrite", "birewrite"):
        yield (1,), "lhs"
        yield (2,), "rhs"
        return
    query, actions = form[1], form[2]
    for qi, atom in enumerate(query):
        if _head(atom) == "=":
            for side in (1, 2):
                if _head(atom[side]) in SIGNATURES:
                    yield (1, qi, side), "lhs"
    for ai, act in enumerate(actions):
        h = _head(act)
        if h == "union":
            yield (2, ai, 2), "rhs"
        elif h == "let":
            yield (2, ai, 2), "rhs"
        elif h not in (None, "subsume", "delete", "set", "panic"):
            for k in range(1, len(act)):
                if isinstance(act[k], list):
                    yield (2, ai, k), "rhs"


def _when(form: list):
    for k, x in enumerate(form):
        if x == S(":when") and k + 1 < len(form):
            return k
    return None


def mutants_of(spec: RuleSpec) -> list[Mutant]:
    """Every mutant of one rule (module docstring), deduplicated, in a fixed order."""
    if spec.kind not in ("rewrite", "birewrite", "rule"):
        return []
    (form,) = read_sexp(spec.text)
    types = _Types(spec)
    out: list[Mutant] = []
    seen = {show(form)}
    counts: dict[str, int] = {}

    def add(op, where, before, after, new):
        text = show(new)
        if text in seen:
            return
        if spec.kind in ("rewrite", "birewrite") and show(new[1]) == show(new[2]):
            return           # both sides the same: a tautology, sound by construction
        seen.add(text)
        what = f"{where}: {show(before) if before is not None else ''} -> {show(after) if after is not None else '(dropped)'}"
        counts[what] = counts.get(what, 0) + 1
        if counts[what] > 1:
            what += f" #{counts[what]}"
        out.append(Mutant(spec.name, op, what, text, spec))

    # -- side conditions ---------------------------------------------------------------
    w = _when(form)
    if w is not None:
        guards = form[w + 1]
        for k, g in enumerate(guards):
            rest = guards[:k] + guards[k + 1:]
            new = _put(form, (w + 1,), rest) if rest else form[:w] + form[w + 2:]
            add("drop-cond", "when", g, None, new)
    if spec.kind == "rule":
        query = form[1]
        for qi, atom in enumerate(query):
            if _head(atom) in COND_HEADS:
                add("drop-cond", "query", atom, None, _put(form, (1,), query[:qi] + query[qi + 1:]))
        for qi, atom in enumerate(query):        # the range condition: (= k (Var r)) and (ext r n)
            if _head(atom) == "=" and _head(atom[2]) == "Var" and isinstance(atom[2][1], Sym):
                r = atom[2][1]
                ext = [qj for qj, b in enumerate(query) if _head(b) == "ext" and b[1] == r]
                if ext:
                    keep = [b for qj, b in enumerate(query) if qj != qi and qj not in ext]
                    add("drop-range", "query", [atom] + [query[qj] for qj in ext], None, _put(form, (1,), keep))

    # -- terms ---------------------------------------------------------------------------
    for rpath, side in list(_regions(form, spec.kind)):
        region = _get(form, rpath)
        for npath, node in list(_nodes(region)):
            path = rpath + npath
            h = _head(node)
            # swap operands of a non-commutative operation / the branches of an If
            if h in NONCOMM and len(node) == 3:
                add("swap-args", side, node, [node[0], node[2], node[1]], _put(form, path, [node[0], node[2], node[1]]))
            if h == "If" and len(node) == 4:
                sw = [node[0], node[1], node[3], node[2]]
                add("swap-args", side, node, sw, _put(form, path, sw))
            if h == "Subst" and _head(node[1]) == "Subst":
                inner = node[1]
                sw = [S("Subst"), [S("Subst"), inner[1], node[2], node[3]], inner[2], inner[3]]
                add("swap-args", side, node, sw, _put(form, path, sw))
            # shift an index by one
            is_idx_var = h == "Var" and isinstance(node[1], Sym) and node[1].name in types.idx
            is_idx_term = isinstance(node, Sym) and node.name in types.idx and node.name in types.term_vars \
                and npath and _parent_allows_term(region, npath)
            if is_idx_var or is_idx_term:
                for op in ("Add", "Sub"):
                    new = [S(op), node, _one(1)]
                    add("shift", side, node, new, _put(form, path, new))
            # a loop extent off by one
            slot = {"Build": 2, "Sum": 2, "IFold": 5}.get(h)
            if slot is not None and slot < len(node):
                for op in ("Sub", "Add"):
                    new = [S(op), node[slot], _one(1)]
                    add("extent", side, node[slot], new, _put(form, path + (slot,), new))
            # binders
            if h == "IFold" and len(node) == 6:
                sw = [node[0], node[2], node[1]] + node[3:]
                add("binder", side, node, sw, _put(form, path, sw))
            if side == "rhs" and h in ("Build", "Sum", "Let", "Subst"):
                k = 2 if h == "Subst" else 1
                if isinstance(node[k], Sym):
                    others = [v for v in types.string_vars if v != node[k].name]
                    for v in others[:1]:
                        new = _put(node, (k,), S(v))
                        add("binder", side, node, new, _put(form, path, new))
            if h == "Acc" and len(node) == 3:
                sw = [node[0], node[2], node[1]]
                add("binder", side, node, sw, _put(form, path, sw))
            # constants (both sides) and primitives (right-hand side)
            if h == "Num" and isinstance(node[1], float):
                alt = {0.0: 1.0, 1.0: 0.0, 2.0: 1.0}.get(node[1], node[1] + 1.0)
                add("const", side, node, [S("Num"), alt], _put(form, path, [S("Num"), alt]))
            if h == "Int" and isinstance(node[1], int):
                add("const", side, node, _one(node[1] + 1), _put(form, path, _one(node[1] + 1)))
            if h in ("BTrue", "BFalse") and len(node) == 1:
                alt = [S("BFalse" if h == "BTrue" else "BTrue")]
                add("const", side, node, alt, _put(form, path, alt))
            if h in PRIM_SWAP and len(node) == 3:
                alt = [S(PRIM_SWAP[h]), node[1], node[2]]
                add("const", side, node, alt, _put(form, path, alt))
            if h in ("Neg", "neg") and len(node) == 2:
                add("const", side, node, node[1], _put(form, path, node[1]))
            if h == "to-f64" and len(node) == 2:
                alt = [node[0], [S("+"), node[1], 1]]
                add("const", side, node, alt, _put(form, path, alt))
            if side == "rhs":
                # another variable of the rule
                if isinstance(node, Sym) and node.name in types.term_vars and npath \
                        and _parent_allows_term(region, npath):
                    for v in [v for v in types.term_vars if v != node.name][:2]:
                        add("var", side, node, S(v), _put(form, path, S(v)))
    return out


def _parent_allows_term(region, npath) -> bool:
    """The symbol at ``npath`` sits in a Term slot of a constructor (not a name slot)."""
    parent = _get(region, npath[:-1])
    h = _head(parent)
    sig = SIGNATURES.get(h)
    if sig is None:
        return h in ("union",)
    k = npath[-1] - 1
    return 0 <= k < len(sig) and sig[k] == "Term"


# --------------------------------------------------------------------------------------
# all mutants of the shipped rules, checking and scoring
# --------------------------------------------------------------------------------------
def shipped_specs() -> list[RuleSpec]:
    from ..egraph.session import default_rule_files
    return [s for f in default_rule_files() for s in rules_in_file(f)]


def rule_spec(name: str) -> RuleSpec:
    for s in shipped_specs():
        if s.name == name:
            return s
    raise KeyError(name)


def all_mutants(specs: list[RuleSpec] | None = None) -> list[Mutant]:
    """Every mutant of every shipped rule (``specs``: of these rules instead)."""
    out = []
    for s in (shipped_specs() if specs is None else specs):
        out += mutants_of(s)
    return out


def sample(mutants: list[Mutant], k: int, salt: str = "") -> list[Mutant]:
    """A fixed pseudo-random subset of ``k`` mutants (by a hash of their ids: stable when
    other rules change)."""
    ranked = sorted(mutants, key=lambda m: (zlib.crc32((salt + m.id).encode()), m.id))
    return sorted(ranked[:k], key=lambda m: m.id)


def loadable(mutants: list[Mutant]) -> dict[str, str]:
    """Mutant id -> egglog's refusal, for the mutants egglog refuses (each is loaded into a
    session holding every shipped rule file, under a fresh name)."""
    from ..egraph.session import EGraphSession
    from ..errors import RuleFileError
    s = EGraphSession()
    bad = {}
    for k, m in enumerate(mutants):
        text = re.sub(r':name\s+"((?:[^"\\]|\\.)*)"', f':name "mutant-{k}"', m.text)
        try:
            s._run_forms([Form(text, "<mutant>", 1, 1)], user_file=True)
        except RuleFileError as e:
            bad[m.id] = str(e)
    return bad


@dataclass
class Outcome:
    """What the checker said about one mutant."""
    mutant: Mutant
    status: str                 # the checker's status, or "refused" (egglog refuses it)
    reason: str = ""
    instances: int = 0
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return self.status == "unsound"

    @property
    def invalid(self) -> bool:
        """Not a rule the checker can be asked about: refused by egglog, or ill-typed."""
        return self.status in ("refused", "unloadable") or \
            (self.status == "skipped" and "cannot type" in self.reason)


def check_mutant(m: Mutant, examples: int = 100, seed: int = 0) -> Outcome:
    """The checker's verdict on a mutant at the given effort (the direct mode, as
    ``eqsat-ad rules check`` runs it; a rule over a relation goes to the e-graph)."""
    import time
    from .direct import check_rule
    from .egraph_mode import check_rule_in_egraph
    from .loading import load_file
    t0 = time.perf_counter()
    spec = m.parsed()
    siblings = [spec if s.line == spec.line else s for s in rules_in_file(spec.file)]
    if spec.uses_relations and spec.skip_reason and not spec.no_equation:
        r = check_rule_in_egraph(spec, siblings, load_file(spec.file), examples=max(4, examples // 10),
                                 seed=seed)
    else:
        r = check_rule(spec, examples=examples, seed=seed)
        # the rules that match the relation, through rules that only carry it on (deepinv's
        # inv-term -> inv-tsplit -> the split at the sum): the ones that add an equation
        facts, consumers = set(spec.adds_facts), []
        while True:
            more = [s for s in siblings if s is not spec and s not in consumers and set(s.uses_relations) & facts]
            if not more:
                break
            consumers += more
            facts |= {f for s in more if s.no_equation for f in s.adds_facts}
        consumers = [c for c in consumers if not c.no_equation]
        if r.status == "no equation" and consumers:
            # a mutated producer of a relation: the rules that match the relation must now fail
            # (the verdict: an unsound consumer, else one that could not be checked, else sound --
            # never "no equation", which would count the mutant as equivalent)
            found = []
            for c in consumers:
                found.append(check_rule_in_egraph(c, siblings, load_file(spec.file),
                                                  examples=max(4, examples // 10), seed=seed))
                if found[-1].status == "unsound":
                    break
            r = min(found, key=lambda rc: (rc.status != "unsound", rc.status == "sound"))
    return Outcome(m, r.status, r.reason, r.instances, time.perf_counter() - t0)


@dataclass
class Score:
    outcomes: list[Outcome]
    equivalent: set = field(default_factory=set)

    @property
    def valid(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.invalid]

    def is_equivalent(self, o: Outcome) -> bool:
        """Listed in :data:`EQUIVALENT`, or still a rule that adds no equality (sound by
        construction)."""
        return o.mutant.id in self.equivalent or o.status == "no equation"

    @property
    def unsound(self) -> list[Outcome]:
        """Valid mutants not equivalent (conservatively all unsound)."""
        return [o for o in self.valid if not self.is_equivalent(o)]

    @property
    def killed(self) -> list[Outcome]:
        return [o for o in self.unsound if o.killed]

    @property
    def missed(self) -> list[Outcome]:
        return [o for o in self.unsound if not o.killed]

    @property
    def score(self) -> float:
        return len(self.killed) / max(1, len(self.unsound))

    def summary(self) -> str:
        eq = [o for o in self.valid if self.is_equivalent(o)]
        return (f"{len(self.outcomes)} mutants: {len(self.outcomes) - len(self.valid)} invalid "
                f"(refused by egglog or ill-typed), {len(eq)} equivalent, {len(self.unsound)} unsound; "
                f"killed {len(self.killed)} ({100 * self.score:.1f} %)")


def score(outcomes: list[Outcome]) -> Score:
    return Score(outcomes, set(EQUIVALENT))


# --------------------------------------------------------------------------------------
# mutants that are still sound (each with the argument)
# --------------------------------------------------------------------------------------
#: mutant id -> why it is still sound.  Reviewed by hand: benchmarks/mutation_score.py lists
#: every survivor of its deep search that is not here (and fails if one listed here is killed).
EQUIVALENT: dict[str, str] = {
    "ifold-empty | extent | lhs: (Int 0) -> (Sub (Int 0) (Int 1))":
        "an extent of -1 is an empty loop, like 0: the fold is z either way",
    "sum-empty | extent | lhs: (Int 0) -> (Sub (Int 0) (Int 1))":
        "an extent of -1 is an empty loop, like 0: the sum is 0 either way",
    "ifold-empty | binder | lhs: (IFold a i b z (Int 0)) -> (IFold i a b z (Int 0))":
        "the body of an empty loop never runs: which name is the accumulator does not matter",
    "ifold-unchanged | extent | lhs: n -> (Sub n (Int 1))":
        "the body is the accumulator itself: any number of iterations leaves z",
    "ifold-unchanged | extent | lhs: n -> (Add n (Int 1))":
        "the body is the accumulator itself: any number of iterations leaves z",
    "sum-zero | extent | lhs: n -> (Sub n (Int 1))": "a sum of zeros is 0 over any extent",
    "sum-zero | extent | lhs: n -> (Add n (Int 1))": "a sum of zeros is 0 over any extent",
    "ifold-onehot-l | extent | lhs: n -> (Add n (Int 1))":
        "the extra iteration has i = n, and r < n (ext r n): the condition is false there and "
        "the accumulator stays",
    "ifold-onehot-r | extent | lhs: n -> (Add n (Int 1))":
        "the extra iteration has i = n, and r < n (ext r n): the condition is false there and "
        "the accumulator stays",
    "sum-onehot-l | extent | lhs: n -> (Add n (Int 1))":
        "the extra term has j = n, and r < n (ext r n): it adds 0",
    "sum-onehot-r | extent | lhs: n -> (Add n (Int 1))":
        "the extra term has j = n, and r < n (ext r n): it adds 0",
    "ifold-onehot-l | swap-args | rhs: (Subst (Subst e a z) i k) -> (Subst (Subst e i k) a z)":
        "the two substitutions commute: the rule's guards say z does not mention i and k does "
        "not mention a",
    "ifold-onehot-r | swap-args | rhs: (Subst (Subst e a z) i k) -> (Subst (Subst e i k) a z)":
        "the two substitutions commute: the rule's guards say z does not mention i and k does "
        "not mention a",
    "fst-pair | drop-cond | query: (!= t a) -> (dropped)":
        "an e-graph guard (never subsume a node whose class already is the result's), not a "
        "condition on values: fst (pair a b) = a always",
    "snd-pair | drop-cond | query: (!= t b) -> (dropped)":
        "an e-graph guard (never subsume a node whose class already is the result's), not a "
        "condition on values: snd (pair a b) = b always",
    "zero-div | swap-args | lhs: (Div (Num 0.0) a) -> (Div a (Num 0.0))":
        "vacuous under the rule's declared assumption (@assume finite): a/0 always raises a "
        "floating-point exception, so the rule is claimed nowhere (the checker reports it "
        "skipped, and the run fails with exit 3)",
}


def _subst_guards() -> None:
    """subst.egg pushes a substitution only where the name is free (``(set-contains (fv e)
    s)``): an efficiency guard -- where s is not free, pushing it gives the same value
    (subst-skip would give e)."""
    for spec in shipped_specs():
        if spec.ruleset == "subst" and "(set-contains (fv e) s)" in spec.text:
            EQUIVALENT[f"{spec.name} | drop-cond | query: (set-contains (fv e) s) -> (dropped)"] = (
                "the guard only keeps the push from running where s is not free in e; there, "
                "both sides are e: substitution distributes over every constructor, and the "
                "binder pushes keep their own guards (j != s, j not free in k)")


_subst_guards()


def _focus_guards() -> None:
    """Guards that keep a rule from firing where it is useless or cycles, not conditions on
    values: constassoc.egg's ``(!= t a)`` (never union a product with its own operand's class)
    and invariant.egg's ``(set-contains fa j)`` (the factor left in the sum depends on the
    index; where it does not, pulling ``c`` out is just as right)."""
    guards = {("constassoc", "(!= t a)"): "an e-graph guard against cycles (t = k*(m*t)), not a "
              "condition on values: the constants fold the same way whatever a is",
              ("invariant", "(set-contains fa j)"): "only chooses which factor stays in the sum: "
              "c does not depend on j (the other guard), so it comes out of the sum whatever a is"}
    for spec in shipped_specs():
        for (ruleset, cond), why in guards.items():
            if spec.ruleset == ruleset and cond in spec.text:
                EQUIVALENT[f"{spec.name} | drop-cond | query: {cond} -> (dropped)"] = why


_focus_guards()


def _solve_guards() -> None:
    """index.egg's solve rules are guarded to loop indices j and to offsets c without j: the
    guards pick where solving is useful; the equations hold without them."""
    for side in ("add-l", "add-r", "sub-l", "sub-r"):
        for name in (f"solve-{side}", f"solve-{side}-flip"):
            EQUIVALENT[f"{name} | drop-cond | query: (ext j m) -> (dropped)"] = (
                "c and k are integer index arithmetic (iarith), so j is compared as an integer "
                "(an elaborated program compares an index only with an index): j + c = k and "
                "j = k - c (and the other forms) are the same equation for any integer j")
            EQUIVALENT[f"{name} | drop-cond | query: (set-not-contains fc j) -> (dropped)"] = (
                "j + c = k and j = k - c are the same integer equation whatever c mentions; the "
                "guard only keeps the rule from 'solving' for a j still on the right-hand side")


_solve_guards()


def _build_get_guards() -> None:
    """fuse.egg's build-get and its variants are documented refinements (REFINEMENT_RULES); their
    guards choose which reads are fused (the e-graph's size), not where the equation holds."""
    from .direct import REFINEMENT_RULES
    for name in (r for r in REFINEMENT_RULES if r.startswith("build-get")):
        for what in ("(Sub n (Int 1))", "(Add n (Int 1))"):
            EQUIVALENT[f"{name} | extent | lhs: n -> {what}"] = (
                f"{name} is a documented refinement (REFINEMENT_RULES): for every k in range of the "
                "build, whatever its extent, the get is b[s:=k]")
    EQUIVALENT["build-get | drop-cond | when: (!= f (set-empty)) -> (dropped)"] = (
        "the guard (the build mentions an outer variable) picks which reads are fused; every read "
        "of a build is its body at the index (the refinement)")
    EQUIVALENT["build-get-const | drop-cond | when: (= f (set-empty)) -> (dropped)"] = (
        "the guard (a constant index) picks which reads are fused; every read of a build is its "
        "body at the index (the refinement)")
    EQUIVALENT["build-get-const | drop-cond | when: (= f (fv k)) -> (dropped)"] = (
        "without its definition (= f (set-empty)) only binds f: the rule fuses every read, which "
        "is the refinement")
    for what in ("(Add k (Int 1))", "(Sub k (Int 1))"):
        EQUIVALENT[f"build-get-fill | shift | lhs: k -> {what}"] = (
            "the body does not mention the build's index (the guard), so it is the value at every "
            "index in range: the refinement")


_build_get_guards()


def _site_guards() -> None:
    """separate.egg's and separate-late.egg's rules are each an identity between the term they
    match, ``t``, and the term their action unions it with (for finite values where marked);
    every other atom of the query -- the term around ``t`` (a sum, a quotient, a data-dependent
    ``if``), the build or sum binder, the ``Get`` a factor must be, the conditions on free
    variables -- only chooses where the identity is worth adding.  A mutant that drops or changes one of those atoms and leaves
    the ``(= t ...)`` atom and the action as they were is still an identity."""
    for spec in shipped_specs():
        if spec.ruleset not in ("separate", "separate-late") or spec.kind != "rule":
            continue
        (form,) = read_sexp(spec.text)
        query, action = form[1], show(form[2])
        core = {show(a) for a in query if _head(a) == "=" and a[1] == Sym("t")}
        for m in mutants_of(spec):
            (mf,) = read_sexp(m.text)
            if show(mf[2]) != action or not core <= {show(a) for a in mf[1]}:
                continue
            EQUIVALENT[m.id] = ("a guard or the context of the matched term, not the identity: "
                                "t and the action's term are equal whatever the rest of the query "
                                "says (separate.egg's banner)")


_site_guards()


def _split_guards() -> None:
    """The split rules of onehotsplit.egg and deepinv.egg: the demand rules (``oh-demand-*``,
    ``inv-demand-*``) only say where the split relations are computed -- no equality follows
    from a demand fact, so every mutant of them is still sound (the splits hold wherever they
    are computed); ``inv-split-mul-l/r``'s ``(set-contains fr j)`` only keeps a product that is
    invariant as a whole for motion's sum-factor (t = c * r whatever r mentions); and the sum
    interchanges' guards that a binder name is not free where it cannot be with the unique names
    the encoder gives (k in a or in the outer extent, i in that extent, i != k); deepinv's
    inv-term rules and the inv-tsplit starts at a sum hold without the guards that only say where
    the split is useful."""
    split_use = ("query: (mat-read x) ->", "query: (set-contains fc v) ->", "query: (set-not-contains fx v) ->",
                 "query: (set-contains fx j) ->", "query: (= vb (Build v m vbody)) ->")
    split_extent = ("lhs: m -> (Add m (Int 1))", "lhs: m -> (Sub m (Int 1))")
    name_guards = ("(set-not-contains fa k)", "(set-not-contains fm k)", "(set-not-contains fm i)", "(!= i k)")
    for spec in shipped_specs():
        if spec.name.startswith(("oh-demand-", "inv-demand-")):
            for m in mutants_of(spec):
                EQUIVALENT[m.id] = ("a demand rule: it only says where a split relation is computed; "
                                    "no equality follows from a demand fact")
        elif spec.name in ("oh-split-if-then", "oh-split-if-else"):
            EQUIVALENT[f"{spec.name} | drop-cond | query: (set-not-contains fp j) -> (dropped)"] = (
                "t = (if c a' 0) + r' whatever the branch condition mentions; the guard bounds the "
                "e-graph's growth (onehotsplit.egg)")
        elif spec.name in ("inv-split-mul-l", "inv-split-mul-r"):
            EQUIVALENT[f"{spec.name} | drop-cond | query: (set-contains fr j) -> (dropped)"] = (
                "t = c * r whatever r mentions; the guard leaves a product invariant as a whole to "
                "motion's sum-factor")
        elif spec.name.startswith("inv-term-") or (spec.name.startswith("inv-tsplit-") and spec.name.endswith("-at-sum")):
            for m in mutants_of(spec):
                if (m.op == "drop-cond" and any(g in m.id for g in split_use)) or m.id.endswith(split_extent):
                    EQUIVALENT[m.id] = (
                        "a guard of where the split is useful (x reads a matrix, c mentions a build index "
                        "x does not, x mentions j): (x - c) r = x r - c r whatever x and c mention; only "
                        "c not mentioning j makes the split sound, and that guard stays")
        elif spec.name.startswith(("sum-swap-onehot-", "sum-swap-split-")):
            for g in name_guards:
                if g in spec.text:
                    EQUIVALENT[f"{spec.name} | drop-cond | query: {g} -> (dropped)"] = (
                        "a binder name is not free where the unique names the encoder gives never put "
                        "it (k is bound inside the inner sum, i by the outer one)")


_split_guards()


def _gather_guards() -> None:
    """gather.egg: every rule is an identity of real arithmetic, and its free-variable conditions
    (a factor is a scalar, fv empty; a term varies, fv not empty) only aim it (the file's
    banner); its demand rules (``sc-demand-*``) only say where ``sc-split`` is computed."""
    fv_conds = ("(= f", "(!= f")
    for spec in shipped_specs():
        if spec.ruleset != "gather":
            continue
        for m in mutants_of(spec):
            if spec.name.startswith("sc-demand-"):
                EQUIVALENT[m.id] = ("a demand rule: it only says where sc-split is computed; no equality "
                                    "follows from a demand fact")
            elif m.op == "drop-cond" and any(f"query: {c}" in m.id for c in fv_conds):
                EQUIVALENT[m.id] = ("a free-variable condition aims the rule (scalar, varying); the "
                                    "identity holds whatever the free variables (gather.egg's banner)")


_gather_guards()
