"""What a rule file, and a schedule's ``:until`` fact, may contain: an allowlist, checked on the
tree :mod:`eqsat_ad.egraph.eggtext` reads, before egglog sees the text.

Rule and schedule files come from users.  egglog's text language can do much more than declare
rules: ``include``/``input``/``output`` read and write files, ``print-function :file`` and
``print-stats :file`` write them, and egglog-python 13.2 registers ``py-eval``/``py-exec``
primitives that run Python.  So a rule file may contain only these top-level forms::

    (ruleset NAME)                          (unstable-combined-ruleset NAME RULESET ...)
    (relation NAME (SORT ...))              (sort NAME)  (sort NAME (Set SORT))
    (function NAME (SORT ...) SORT :merge EXPR | :no-merge)
    (constructor NAME (SORT ...) SORT [:cost N] [:unextractable])
    (rewrite LHS RHS [:when (FACT ...)] [:ruleset R] [:name "..."] [:subsume])
    (birewrite LHS RHS [:when (FACT ...)] [:ruleset R] [:name "..."])
    (rule (FACT ...) (ACTION ...) [:ruleset R] [:name "..."])

and, at any depth, a FACT is ``(= E E ...)`` or a call, an ACTION is ``(let v E)``,
``(set (f E ...) E)``, ``(union E E)``, ``(delete (f E ...))``, ``(subsume (f E ...))`` or a
call, and every call ``(f E ...)`` names a schema constructor or function (``schema.egg``,
``fv.egg``), a function/relation/constructor declared by a rule file loaded before it (or
earlier in the same file), or one of :data:`PRIMITIVES`.  Sorts are :data:`BASE_SORTS`, the
schema's and declared ones.  Anything else is refused with a :class:`RuleFileError` at its
``file:line:col`` naming the form.  A schedule's ``:until`` fact is checked the same way.

>>> from eqsat_ad.egraph.eggtext import split_forms
>>> check_rule_forms(split_forms('(ruleset r)\\n(rewrite (Neg (Neg a)) a :ruleset r)', "r.egg"))
Vocabulary(functions=set(), sorts=set())
>>> check_rule_forms(split_forms('(rule ((= e (Num x))) ((let y (py-eval "1"))))', "r.egg"))
Traceback (most recent call last):
  ...
eqsat_ad.errors.RuleFileError: r.egg:1:32: 'py-eval' is not allowed in a rule action (egglog-python's Python bridge and first-class functions are never reachable from user files)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import RuleFileError, ScheduleError
from .eggtext import MAX_DEPTH, Atom, Form, Node, SList, read_forms, split_forms

RULE_FILE_FORMS = ("ruleset", "unstable-combined-ruleset", "relation", "function", "constructor", "sort",
                   "rule", "rewrite", "birewrite")
ACTIONS = ("let", "set", "union", "delete", "subsume")
BASE_SORTS = frozenset({"i64", "f64", "String", "bool", "Unit"})
CONTAINER_SORTS = {"Set": 1}          # (sort NAME (Set SORT)), as the fv analysis uses
PRIMITIVES = frozenset({
    # arithmetic and comparisons on i64 / f64 (+ also joins Strings)
    "+", "-", "*", "/", "%", "neg", "abs", "min", "max", "<", ">", "<=", ">=", "!=", "to-f64", "to-i64",
    # booleans
    "and", "or", "not", "xor",
    # sets (the free-variable analysis)
    "set-of", "set-empty", "set-insert", "set-remove", "set-union", "set-diff", "set-intersect",
    "set-contains", "set-not-contains", "set-length", "set-get",
})
# Never callable or declarable: egglog-python's Python bridge (py-eval, py-exec, py-dict, ...)
# and first-class functions (unstable-fn names any primitive by a string).
REFUSED_PREFIXES = ("py-", "unstable-")
# egglog commands and actions: named in a call position they are refused by name (clearer than
# "unknown function", and never deferred to run time).
EGGLOG_KEYWORDS = frozenset({
    "include", "input", "output", "fail", "check", "push", "pop", "run", "run-schedule", "extract",
    "simplify", "print-function", "print-size", "print-stats", "print-overall-statistics", "panic",
    "datatype", "datatype*", "prove", "prove-exists", "multi-extract", "with-ruleset", "let-scheduler",
    "run-with", "query-extract", "repeat", "seq", "saturate", "rule", "rewrite", "birewrite", "ruleset",
    "unstable-combined-ruleset", "relation", "function", "constructor", "sort", "let", "set", "union",
    "delete", "subsume", "=",
})
_ALLOWED_WHERE = ("schema constructors and functions, functions declared in a loaded rule file, "
                  "and the primitives + - * / % neg abs min max < > <= >= != to-f64 to-i64 and or "
                  "not xor set-*")


@dataclass
class Vocabulary:
    """Names a rule may call (constructors, functions, relations) and sorts it may use."""
    functions: set[str] = field(default_factory=set)
    sorts: set[str] = field(default_factory=set)

    def copy(self) -> Vocabulary:
        return Vocabulary(set(self.functions), set(self.sorts))

    def update(self, other: Vocabulary) -> None:
        self.functions |= other.functions
        self.sorts |= other.sorts


def declared_in(forms: list[Form]) -> Vocabulary:
    """The functions and sorts that ``forms`` (a trusted file: the schema) declare."""
    out = Vocabulary()
    for f in forms:
        t = f.tree
        if isinstance(t, SList) and len(t.items) > 1 and isinstance(t.items[1], Atom):
            if t.head in ("constructor", "function", "relation"):
                out.functions.add(t.items[1].text)
            elif t.head == "sort":
                out.sorts.add(t.items[1].text)
    return out


@lru_cache(maxsize=1)
def _schema_vocabulary() -> Vocabulary:
    from .session import SCHEMA_FILES      # session imports this module
    out = Vocabulary()
    for path in SCHEMA_FILES:
        out.update(declared_in(read_forms(path)))
    return out


def schema_vocabulary() -> Vocabulary:
    """What ``schema.egg`` and ``fv.egg`` declare (a fresh copy)."""
    return _schema_vocabulary().copy()


def _fail(msg: str, node: Node) -> RuleFileError:
    return RuleFileError(msg, node.file, node.line, node.column)


def is_refused_name(name: str) -> bool:
    """Names no user text may call or declare, whatever else is known."""
    return name.startswith(REFUSED_PREFIXES) or name in EGGLOG_KEYWORDS


class _Checker:
    """Walks rule-file trees against a :class:`Vocabulary`; with ``defer_unknown`` unknown call
    names are collected (in ``unknown``) instead of refused (schedule files are read before the
    rule files whose relations they may name)."""

    def __init__(self, vocab: Vocabulary, defer_unknown: bool = False):
        self.vocab = vocab
        self.defer_unknown = defer_unknown
        self.unknown: list[Atom] = []

    # -- expressions, facts, actions ------------------------------------------------------
    def call_name(self, node: SList, where: str) -> None:
        if not node.items:
            raise _fail(f"empty '()' {where}", node)
        head = node.items[0]
        if not isinstance(head, Atom) or head.is_string:
            raise _fail(f"expected a function name {where}, found {_show(head)}", head)
        name = head.text
        if name in PRIMITIVES or name in self.vocab.functions:
            return
        if is_refused_name(name):
            why = ("egglog-python's Python bridge and first-class functions are never reachable from "
                   "user files" if name.startswith(REFUSED_PREFIXES) else "an egglog command, not a function")
            raise _fail(f"'{name}' is not allowed {where} ({why})", head)
        if self.defer_unknown:
            self.unknown.append(head)
            return
        raise _fail(f"Unbound function {name}: {where}, a rule may call only {_ALLOWED_WHERE}", head)

    def expr(self, node: Node, where: str) -> None:
        if isinstance(node, Atom):
            return                      # a variable, a global or a literal
        self.call_name(node, where)
        for a in node.items[1:]:
            self.expr(a, where)

    def fact(self, node: Node, where: str = "in a rule query") -> None:
        if not isinstance(node, SList):
            raise _fail(f"a fact is (= a b) or a call, not {_show(node)}", node)
        if node.head == "=":
            if len(node.items) < 3:
                raise _fail("(= a b ...) needs at least two terms", node)
            for a in node.items[1:]:
                self.expr(a, where)
        else:
            self.expr(node, where)

    def action(self, node: Node) -> None:
        where = "in a rule action"
        if not isinstance(node, SList):
            raise _fail(f"an action is (let ...), (set ...), (union ...), (delete ...), (subsume ...) "
                        f"or a call, not {_show(node)}", node)
        head, args = node.head, node.items[1:]
        if head == "let":
            if len(args) != 2 or not _is_symbol(args[0]):
                raise _fail("expected (let NAME EXPR)", node)
            self.expr(args[1], where)
        elif head == "set":
            if len(args) != 2 or not isinstance(args[0], SList):
                raise _fail("expected (set (FUNCTION ARG ...) VALUE)", node)
            self.expr(args[0], where)
            self.expr(args[1], where)
        elif head == "union":
            if len(args) != 2:
                raise _fail("expected (union A B)", node)
            for a in args:
                self.expr(a, where)
        elif head in ("delete", "subsume"):
            if len(args) != 1 or not isinstance(args[0], SList):
                raise _fail(f"expected ({head} (CONSTRUCTOR ARG ...))", node)
            self.expr(args[0], where)
        else:
            self.expr(node, where)

    # -- declarations -------------------------------------------------------------------------
    def new_name(self, node: Node, what: str) -> str:
        if not _is_symbol(node) or node.text[0] in ":$-0123456789":
            raise _fail(f"expected the name of the {what}, found {_show(node)}", node)
        name = node.text
        if is_refused_name(name) or name in PRIMITIVES or name in BASE_SORTS or name in CONTAINER_SORTS:
            raise _fail(f"'{name}' cannot be declared in a rule file (a reserved or built-in name)", node)
        if name in self.vocab.functions or name in self.vocab.sorts:
            raise _fail(f"'{name}' is already declared", node)
        return name

    def sort(self, node: Node) -> None:
        if not _is_symbol(node) or not (node.text in BASE_SORTS or node.text in self.vocab.sorts):
            raise _fail(f"unknown sort {_show(node)} (a rule file may use {', '.join(sorted(BASE_SORTS))}, "
                        "the schema's sorts and sorts it declares)", node)

    def sort_list(self, node: Node) -> None:
        if not isinstance(node, SList):
            raise _fail(f"expected a list of sorts (SORT ...), found {_show(node)}", node)
        for s in node.items:
            self.sort(s)

    # -- options ------------------------------------------------------------------------------
    def options(self, form: SList, items: tuple, allowed: dict[str, str]) -> None:
        """``:key value`` options; kinds: symbol, string, int, facts, merge, flag."""
        k = 0
        while k < len(items):
            key = items[k]
            if not _is_symbol(key) or key.text not in allowed:
                ok = ", ".join(allowed)
                raise _fail(f"unexpected {_show(key)} in '{form.head}' (options: {ok})", key)
            kind = allowed[key.text]
            if kind == "flag":
                k += 1
                continue
            if k + 1 >= len(items):
                raise _fail(f"{key.text} needs a value", key)
            val = items[k + 1]
            if kind == "symbol" and not _is_symbol(val):
                raise _fail(f"{key.text} takes a name, not {_show(val)}", val)
            if kind == "string" and not (isinstance(val, Atom) and val.is_string):
                raise _fail(f'{key.text} takes a "string", not {_show(val)}', val)
            if kind == "int" and not (isinstance(val, Atom) and val.text.isdigit()):
                raise _fail(f"{key.text} takes a non-negative integer, not {_show(val)}", val)
            if kind == "facts":
                if not isinstance(val, SList):
                    raise _fail(f"{key.text} takes a list of facts ((FACT) ...), not {_show(val)}", val)
                for fct in val.items:
                    self.fact(fct)
            if kind == "merge":
                self.expr(val, "in a :merge expression")
            k += 2

    # -- top-level forms ----------------------------------------------------------------------
    def form(self, form: Form, declared: Vocabulary) -> None:
        t = form.tree
        head = t.head if isinstance(t, SList) else None
        if head not in RULE_FILE_FORMS:
            what = head if head is not None else _show(t)
            hint = (" (put schedules in a schedule file)" if head in ("run", "run-schedule") else
                    f" (allowed: {', '.join(RULE_FILE_FORMS)})")
            raise _fail(f"a rule file may declare rulesets, rules and functions, not '{what}'{hint}", t)
        args = t.items[1:]
        if head == "ruleset":
            if len(args) != 1 or not _is_symbol(args[0]):
                raise _fail("expected (ruleset NAME)", t)
        elif head == "unstable-combined-ruleset":
            if len(args) < 2 or not all(_is_symbol(a) for a in args):
                raise _fail("expected (unstable-combined-ruleset NAME RULESET ...)", t)
        elif head == "sort":
            if len(args) not in (1, 2):
                raise _fail("expected (sort NAME) or (sort NAME (Set SORT))", t)
            name = self.new_name(args[0], "sort")
            if len(args) == 2:
                c = args[1]
                if not (isinstance(c, SList) and c.head in CONTAINER_SORTS
                        and len(c.items) == 1 + CONTAINER_SORTS[c.head]):
                    raise _fail(f"a rule file may declare (sort NAME) or (sort NAME (Set SORT)), not "
                                f"{_show(c)}", c)
                for s in c.items[1:]:
                    self.sort(s)
            self.vocab.sorts.add(name)
            declared.sorts.add(name)
        elif head in ("relation", "function", "constructor"):
            if len(args) < (2 if head == "relation" else 3):
                raise _fail(f"expected ({head} NAME (SORT ...){'' if head == 'relation' else ' SORT'} ...)", t)
            name = self.new_name(args[0], head)
            self.sort_list(args[1])
            if head == "relation":
                self.options(t, args[2:], {})
            else:
                self.sort(args[2])
                self.options(t, args[3:], {":merge": "merge", ":no-merge": "flag"} if head == "function"
                             else {":cost": "int", ":unextractable": "flag"})
            self.vocab.functions.add(name)
            declared.functions.add(name)
        elif head in ("rewrite", "birewrite"):
            if len(args) < 2:
                raise _fail(f"expected ({head} LHS RHS ...)", t)
            self.expr(args[0], f"in a {head} pattern")
            self.expr(args[1], f"in a {head} right-hand side")
            opts = {":when": "facts", ":ruleset": "symbol", ":name": "string"}
            if head == "rewrite":
                opts[":subsume"] = "flag"
            self.options(t, args[2:], opts)
        else:   # rule
            if len(args) < 2 or not isinstance(args[0], SList) or not isinstance(args[1], SList):
                raise _fail("expected (rule (FACT ...) (ACTION ...) ...)", t)
            for fct in args[0].items:
                self.fact(fct)
            for act in args[1].items:
                self.action(act)
            self.options(t, args[2:], {":ruleset": "symbol", ":name": "string"})


def _is_symbol(node: Node) -> bool:
    return isinstance(node, Atom) and not node.is_string


def _show(node: Node) -> str:
    if isinstance(node, Atom):
        return repr(node.text[:40])
    return f"'({node.head})'" if node.head else "a list"


def check_rule_forms(forms: list[Form], vocab: Vocabulary | None = None) -> Vocabulary:
    """Check the forms of one rule file against the allowlist (module docstring); ``vocab`` is
    what is already loaded (default: the schema).  Returns what the file declares; raises
    :class:`RuleFileError` at the first form that is not allowed."""
    known = (vocab if vocab is not None else schema_vocabulary()).copy()
    declared = Vocabulary()
    checker = _Checker(known)
    for f in forms:
        checker.form(f, declared)
    return declared


def check_rule_files(paths, vocab: Vocabulary | None = None) -> Vocabulary:
    """Read and check rule files in order (each may use what the ones before it declare);
    returns everything they declare."""
    known = vocab.copy() if vocab is not None else schema_vocabulary()
    declared = Vocabulary()
    for p in paths:
        d = check_rule_forms(read_forms(Path(p)), known)
        known.update(d)
        declared.update(d)
    return declared


# -- :until facts of schedules ---------------------------------------------------------------

class FactText(str):
    """The text of a schedule file's ``:until`` fact that remembers its tree (and so its
    ``file:line:col``); compares and hashes like the plain text."""
    node: Node

    def __new__(cls, text: str, node: Node):
        s = super().__new__(cls, text)
        s.node = node
        return s


def check_until_fact(node: Node, vocab: Vocabulary | None = None, defer_unknown: bool = False) -> list[Atom]:
    """Check a ``:until`` fact like a rule query.  With ``defer_unknown`` names that are neither
    known nor refused are returned (to be checked against the loaded rule files when the
    schedule runs) instead of refused."""
    checker = _Checker(vocab if vocab is not None else schema_vocabulary(), defer_unknown)
    checker.fact(node, "in a :until fact")
    return checker.unknown


def check_until_text(text: str, vocab: Vocabulary) -> None:
    """Check the ``:until`` text of a strategy against the loaded vocabulary, just before it is
    sent to egglog.  A fact read from a schedule file is reported at its ``file:line:col``; one
    built in Python raises :class:`ScheduleError`."""
    node = getattr(text, "node", None)
    if node is not None:
        check_until_fact(node, vocab)
        return
    try:
        forms = split_forms(str(text), "<until>", max_depth=MAX_DEPTH)
        if len(forms) != 1:
            raise RuleFileError("expected exactly one fact")
        check_until_fact(forms[0].tree, vocab)
    except RuleFileError as e:
        raise ScheduleError(f":until fact {str(text)[:80]!r}: {e.message}") from None
