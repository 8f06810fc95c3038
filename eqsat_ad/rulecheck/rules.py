"""Reading rewrite rules out of ``.egg`` files: both sides as pattern trees, the side
conditions, and the sorts and types of the pattern variables.

A rule becomes an :class:`Equation` ``lhs = rhs`` under ``conditions``:

* ``(rewrite L R [:when (c...)])`` -> ``L = R``; ``(birewrite L R)`` -> two equations (one
  generated from each side);
* ``(rule (query...) (actions...))`` -> for every ``(union t R)`` action, ``P = R`` where
  ``(= t P)`` is in the query; the other query atoms are conditions.  Query definitions
  ``(= e (Add a b))`` are inlined.  A rule without a ``union`` only adds terms or facts:
  it cannot make two different values equal (status ``no equation``).

Types are inferred by unification from the constructor positions (children of ``Num`` are
f64, binder slots of ``Build``/``Sum``/``Let``/``IFold``/``Subst`` are names, the index of a
``Get`` ranges over the array's length, and so on); what is left open is drawn at random
when an instance is made (:mod:`eqsat_ad.rulecheck.instances`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..egraph.constructors import CONSTRUCTORS
from ..egraph.eggtext import Form, read_forms

# --------------------------------------------------------------------------------------
# s-expressions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sym:
    """A symbol of egglog text (a pattern variable, a head or a keyword)."""
    name: str


@dataclass(frozen=True)
class PVar:
    """A pattern variable."""
    name: str


@dataclass(frozen=True)
class App:
    """A constructor or primitive application (also the instantiated terms)."""
    head: str
    args: tuple = ()


_TOKEN = re.compile(r'\s*(?:(;[^\n]*)|(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()";]+))', re.S)


def read_sexp(text: str) -> list:
    """Parse egglog text into nested lists of Sym / int / float / str (string literals)."""
    stack: list[list] = [[]]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"cannot read egglog text at {text[pos:pos + 30]!r}")
        pos = m.end()
        comment, op, cl, string, atom = m.groups()
        if comment is not None:
            continue
        if op:
            stack.append([])
        elif cl:
            if len(stack) == 1:
                raise ValueError("unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        elif string is not None:
            stack[-1].append(bytes(string[1:-1], "utf-8").decode("unicode_escape"))
        elif atom is not None:
            stack[-1].append(_atom(atom))
    if len(stack) != 1:
        raise ValueError("unbalanced '('")
    return stack[0]


def _atom(a: str):
    if re.fullmatch(r"[-+]?\d+", a):
        return int(a)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?|[-+]?inf|NaN", a):
        return float(a)
    return Sym(a)


# --------------------------------------------------------------------------------------
# constructor signatures
# --------------------------------------------------------------------------------------
def _signatures() -> dict[str, tuple[str, ...]]:
    sig: dict[str, tuple[str, ...]] = {}
    for name, (kind, ar) in CONSTRUCTORS.items():
        if kind == "op":
            sig[name] = ("Term",) * ar
        elif kind == "binder":
            sig[name] = ("String", "Term", "Term")
        elif kind == "ifold":
            sig[name] = ("String", "String", "Term", "Term", "Term")
    sig.update({"Num": ("f64",), "Int": ("i64",), "BTrue": (), "BFalse": (), "Input": ("String",),
                "Dim": ("String",), "Var": ("String",), "Acc": ("String", "String"),
                "Subst": ("Term", "String", "Term")})
    return sig


SIGNATURES = _signatures()
#: egglog primitives that may appear on a right-hand side (computed on literals)
PRIMS = {"+", "-", "*", "/", "neg", "to-f64", "to-i64", "min", "max", "abs"}
#: query atoms we understand (the rest make a rule "skipped")
#: relations of the schema that only state a type (``(real-term e)``: e is real-valued)
TYPE_RELATIONS = {"real-term": "real", "real-array": "real-array"}
#: facts of the schema that other rules' side conditions trust (a rule that adds them could
#: make a sound rule misfire) and the ``set`` action (it defines a function such as ``fv``)
TRUSTED_FACTS = {"ext", "real-term", "real-array", "fv", "set"}
KNOWN_ATOMS = {"=", "!=", "set-contains", "set-not-contains", "ext", "fv", "<", ">", "<=", ">="}


def to_pattern(sx, sorts: dict[str, str], sort: str = "Term"):
    """Convert a read s-expression to a pattern tree, recording the sort of each variable."""
    if isinstance(sx, Sym):
        if sx.name in SIGNATURES and SIGNATURES[sx.name] == ():
            return App(sx.name, ())
        prev = sorts.get(sx.name)
        if prev is None or prev == "?":
            sorts[sx.name] = sort
        return PVar(sx.name)
    if isinstance(sx, (int, float, str)):
        return sx
    if isinstance(sx, list):
        if not sx or not isinstance(sx[0], Sym):
            raise UnsupportedRule(f"cannot read pattern {sx!r}")
        head = sx[0].name
        if head in SIGNATURES:
            sig = SIGNATURES[head]
            if len(sig) != len(sx) - 1:
                raise UnsupportedRule(f"{head} takes {len(sig)} arguments, got {len(sx) - 1}")
            return App(head, tuple(to_pattern(a, sorts, s) for a, s in zip(sx[1:], sig)))
        if head in PRIMS:
            arg_sort = sort if sort in ("f64", "i64", "String") else "?"
            return App(head, tuple(to_pattern(a, sorts, arg_sort) for a in sx[1:]))
        if head == "fv":
            return App("fv", (to_pattern(sx[1], sorts, "Term"),))
        raise UnsupportedRule(f"uses {head!r}, which is not a term constructor of the schema")
    raise UnsupportedRule(f"cannot read pattern {sx!r}")


class UnsupportedRule(Exception):
    """The rule uses something the checker cannot instantiate (the message says what)."""


# --------------------------------------------------------------------------------------
# rules -> equations
# --------------------------------------------------------------------------------------
@dataclass
class Equation:
    """``lhs = rhs`` whenever ``conditions`` hold (one direction of a rule)."""
    lhs: object
    rhs: object
    conditions: list = field(default_factory=list)     # list of App("cond-head", args)
    sorts: dict = field(default_factory=dict)          # variable -> Term | String | f64 | i64 | Set
    rhs_lets: dict = field(default_factory=dict)       # action let name -> pattern


@dataclass
class RuleSpec:
    """One rule of a rule file, read for checking."""
    name: str
    ruleset: str
    file: str
    line: int
    text: str
    kind: str                       # rewrite | birewrite | rule
    equations: list = field(default_factory=list)
    skip_reason: str = ""           # set: cannot be checked (say why)
    no_equation: str = ""           # set: the rule adds no equality (say what it does)
    uses_relations: list = field(default_factory=list)   # relations/functions its query matches
    #                                 that other rules compute (it is checked in an e-graph)
    adds_facts: list = field(default_factory=list)       # relations its actions add facts to
    query_roots: list = field(default_factory=list)   # patterns matched (seeds for e-graph mode)
    comment: str = ""
    sorts: dict = field(default_factory=dict)
    conditions: list = field(default_factory=list)   # query conditions (for seeds)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _keywords(items: list) -> tuple[list, dict]:
    pos, kw, i = [], {}, 0
    while i < len(items):
        a = items[i]
        if isinstance(a, Sym) and a.name.startswith(":"):
            if a.name == ":subsume":
                kw[":subsume"] = True
                i += 1
                continue
            kw[a.name] = items[i + 1] if i + 1 < len(items) else None
            i += 2
        else:
            pos.append(a)
            i += 1
    return pos, kw


def _cond(sx, sorts: dict, defs: dict, fvdefs: dict) -> App | None:
    """One query atom / :when condition -> a condition App, or None for a definition."""
    if not isinstance(sx, list) or not sx or not isinstance(sx[0], Sym):
        raise UnsupportedRule(f"cannot read condition {sx!r}")
    head = sx[0].name
    if head in ("=", "!=") and [Sym("set-empty")] in sx[1:]:
        # (= f (set-empty)) / (!= f (set-empty)): f, a free-variable set, is empty / is not
        s = sx[2] if sx[1] == [Sym("set-empty")] else sx[1]
        target = to_pattern(s[1], sorts, "Term") if isinstance(s, list) and s and s[0] == Sym("fv") \
            else PVar(s.name) if isinstance(s, Sym) else None
        if target is None:
            raise UnsupportedRule(f"cannot read {head} {s!r}")
        return App("set-empty" if head == "=" else "set-nonempty", (target,))
    if head == "=":
        a, b = sx[1], sx[2]
        if isinstance(b, Sym) and not isinstance(a, Sym):
            a, b = b, a
        if isinstance(a, Sym) and isinstance(b, list) and b and b[0] == Sym("fv"):
            fvdefs[a.name] = to_pattern(b[1], sorts, "Term")
            sorts[a.name] = "Set"
            return None
        if isinstance(a, Sym) and a.name not in SIGNATURES and a.name not in defs and not isinstance(b, Sym):
            defs[a.name] = to_pattern(b, sorts, "Term")
            sorts.setdefault(a.name, "Term")
            return None
        if isinstance(a, Sym) and isinstance(b, Sym) and not {a.name, b.name} & set(SIGNATURES) \
                and (b.name not in defs or a.name not in defs):
            # (= x y) between two variables: one e-class, one variable
            x, y = (b, a) if b.name not in defs else (a, b)
            defs[x.name] = PVar(y.name)
            sorts.setdefault(x.name, "Term")
            return None
        return App("=", (to_pattern(a, sorts, "Term"), to_pattern(b, sorts, "Term")))
    if head in ("set-contains", "set-not-contains"):
        s = sx[1]
        if isinstance(s, list) and s and s[0] == Sym("fv"):
            target = to_pattern(s[1], sorts, "Term")
        elif isinstance(s, Sym):
            target = PVar(s.name)        # a set variable, resolved through fvdefs later
        else:
            raise UnsupportedRule(f"cannot read {head} {s!r}")
        return App(head, (target, to_pattern(sx[2], sorts, "String")))
    if head in TYPE_RELATIONS:
        return App(head, (to_pattern(sx[1], sorts, "Term"),))
    if head == "ext":
        return App("ext", (to_pattern(sx[1], sorts, "String"), to_pattern(sx[2], sorts, "Term")))
    if head in ("!=", "<", ">", "<=", ">="):
        return App(head, (to_pattern(sx[1], sorts, "?"), to_pattern(sx[2], sorts, "?")))
    raise UnsupportedRule(f"its condition uses {head!r} (a relation or function computed by "
                          f"other rules), which cannot be instantiated from a pattern")


def _inline(p, defs: dict, seen=()):
    if isinstance(p, PVar) and p.name in defs:
        if p.name in seen:
            raise UnsupportedRule(f"cyclic query definition of {p.name}")
        return _inline(defs[p.name], defs, seen + (p.name,))
    if isinstance(p, App):
        return App(p.head, tuple(_inline(a, defs, seen) for a in p.args))
    return p


def _resolve_conds(conds: list, defs: dict, fvdefs: dict) -> list:
    out = []
    for c in conds:
        if c.head in ("set-contains", "set-not-contains", "set-empty", "set-nonempty"):
            tgt = c.args[0]
            if isinstance(tgt, PVar) and tgt.name in fvdefs:
                tgt = fvdefs[tgt.name]
            elif isinstance(tgt, PVar) and tgt.name not in defs and tgt.name:
                pass
            out.append(App(c.head, (_inline(tgt, defs),) + c.args[1:]))
        else:
            out.append(App(c.head, tuple(_inline(a, defs) for a in c.args)))
    return out


def _fix_sorts(sorts: dict, p) -> None:
    """Variables first seen in an untyped position get the sort of a later typed one."""
    if isinstance(p, App):
        sig = SIGNATURES.get(p.head)
        for i, a in enumerate(p.args):
            if isinstance(a, PVar) and sig is not None and sorts.get(a.name) in (None, "?"):
                sorts[a.name] = sig[i]
            _fix_sorts(sorts, a)


def parse_rule(form: Form, name: str, ruleset: str) -> RuleSpec:
    """Read one ``rewrite``/``birewrite``/``rule`` form into a :class:`RuleSpec`."""
    spec = RuleSpec(name, ruleset, form.file, form.line, form.text, form.head, comment=form.comment)
    try:
        (sx,) = read_sexp(form.text)
        pos, kw = _keywords(sx[1:])
        if form.head in ("rewrite", "birewrite"):
            if len(pos) != 2:
                raise UnsupportedRule("a rewrite needs a left and a right side")
            sides = [(pos[0], pos[1])] + ([(pos[1], pos[0])] if form.head == "birewrite" else [])
            for l_sx, r_sx in sides:
                sorts: dict[str, str] = {}
                defs: dict = {}
                fvdefs: dict = {}
                lhs = to_pattern(l_sx, sorts)
                conds = [c for c in (_cond(w, sorts, defs, fvdefs) for w in (kw.get(":when") or []))
                         if c is not None]
                rhs = to_pattern(r_sx, sorts)
                for p in (lhs, rhs):
                    _fix_sorts(sorts, p)
                conds = _resolve_conds(conds, defs, fvdefs)
                spec.equations.append(Equation(_inline(lhs, defs), _inline(rhs, defs), conds, sorts))
                spec.query_roots.append(_inline(lhs, defs))
        else:
            if len(pos) != 2 or not isinstance(pos[0], list) or not isinstance(pos[1], list):
                raise UnsupportedRule("a rule needs a query and actions")
            query, actions = pos
            sorts = {}
            defs = {}
            fvdefs = {}
            conds = []
            unknown = None
            for atom in query:
                try:
                    c = _cond(atom, sorts, defs, fvdefs)
                except UnsupportedRule as e:
                    unknown = unknown or str(e)
                    if isinstance(atom, list) and atom and isinstance(atom[0], Sym):
                        spec.uses_relations.append(atom[0].name)
                    continue
                if c is not None:
                    conds.append(c)
            for v, p in defs.items():
                _fix_sorts(sorts, p)
            spec.sorts = sorts
            spec.conditions = _resolve_conds(conds, defs, fvdefs)
            roots = [(_inline(PVar(v), defs)) for v in defs]
            spec.query_roots = [r for r in roots if isinstance(r, App)
                                and not any(_contains(o, r) for o in roots if o is not r)]
            lets: dict = {}
            unions = []
            for act in actions:
                if not isinstance(act, list) or not act or not isinstance(act[0], Sym):
                    continue
                h = act[0].name
                if h == "let":
                    lets[act[1].name] = to_pattern(act[2], sorts, "?")
                    if isinstance(act[2], list) and isinstance(act[2][0], Sym) and act[2][0].name in SIGNATURES:
                        sorts[act[1].name] = "Term"
                    elif isinstance(act[2], list) and act[2][0] == Sym("+") and any(isinstance(x, str) for x in act[2]):
                        sorts[act[1].name] = "String"
                elif h == "union":
                    unions.append((act[1], act[2]))
                elif h not in ("subsume", "delete", "panic"):
                    spec.adds_facts.append(h)
            trusted = sorted({h for h in spec.adds_facts if h in TRUSTED_FACTS})
            if trusted:
                spec.skip_reason = (f"it adds {', '.join(trusted)} facts, which other rules' side "
                                    f"conditions trust: the checker cannot check such a fact")
                return spec
            if not unions:
                spec.no_equation = ("adds terms or facts only (no union): it cannot make two "
                                    "different values equal")
                return spec
            if unknown:
                spec.skip_reason = unknown
                return spec
            allp = dict(defs)
            allp.update(lets)
            for a, b in unions:
                pa = _inline(to_pattern(a, sorts), allp)
                pb = _inline(to_pattern(b, sorts), allp)
                for p in (pa, pb):
                    _fix_sorts(sorts, p)
                if not isinstance(pa, App):
                    raise UnsupportedRule(f"union of {a!r}, which the query does not define")
                spec.equations.append(Equation(pa, pb, _resolve_conds(conds, defs, fvdefs), dict(sorts)))
    except UnsupportedRule as e:
        spec.skip_reason = str(e)
    except (ValueError, IndexError, TypeError) as e:
        spec.skip_reason = f"cannot read the rule: {e}"
    return spec


def _contains(big, small) -> bool:
    if big == small:
        return True
    return isinstance(big, App) and any(_contains(a, small) for a in big.args)


def pattern_vars(p, out: set | None = None) -> set:
    out = set() if out is None else out
    if isinstance(p, PVar):
        out.add(p.name)
    elif isinstance(p, App):
        for a in p.args:
            pattern_vars(a, out)
    return out


def rules_in_file(path: str | Path) -> list[RuleSpec]:
    """Every rule of a rule file, read for checking (file order)."""
    from ..egraph.eggtext import _RULE_NAME, _RULE_RS
    out = []
    for f in read_forms(path):
        if f.head not in ("rewrite", "birewrite", "rule"):
            continue
        rs = _RULE_RS.search(f.text)
        nm = _RULE_NAME.search(f.text)
        name = nm.group(1) if nm else f"{Path(f.file).name}:{f.line}"
        out.append(parse_rule(f, name, rs.group(1) if rs else ""))
    return out
