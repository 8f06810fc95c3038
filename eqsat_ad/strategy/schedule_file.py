"""Read schedules from ``.egg`` files (the egglog ``run-schedule`` syntax).

A schedule file holds, in any order:

* ``(unstable-combined-ruleset NAME rs1 rs2 ...)`` -- run several rulesets as one;
* ``(run-schedule S ...)`` -- one phase each, where ``S`` is ``(seq S ...)``,
  ``(repeat N S ...)``, ``(saturate S ...)``, ``(run RS [:until FACT])`` or a bare ruleset
  name (= ``(run RS)``);
* an optional comment right above a ``run-schedule``: ``;; @phase NAME iterations=N nodes=N
  seconds=S`` names the phase and sets its limits (egglog ignores comments, so the file stays
  valid egglog).

Errors name the file, the line and what was expected.

>>> s = parse_schedule('''
... (unstable-combined-ruleset simp ring cond)
... ;; @phase simplify iterations=40
... (run-schedule (saturate (run simp)))''')
>>> s
Phase(name='simplify', body=Saturate(body=Run(rulesets=('ring', 'cond'), until=None)), limits=Limits(iterations=40, nodes=None, seconds=None))
"""
from __future__ import annotations

import re
from pathlib import Path

from ..egraph.eggtext import Form, read_forms, split_forms
from ..errors import RuleFileError
from .combinators import Limits, Phase, Run, Strategy, repeat, saturate, seq

_TOKEN = re.compile(r'\s*(?:(;[^\n]*)|(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()";]+))')
_PRAGMA = re.compile(r"@phase\s+(\S+)((?:\s+\w+=\S+)*)")


class _Reader:
    """A tiny s-expression reader over one form, tracking line/column for errors."""

    def __init__(self, form: Form):
        self.form = form
        self.toks: list[tuple[str, int]] = []
        for m in _TOKEN.finditer(form.text):
            if m.group(1):
                continue
            tok = m.group(2) or m.group(3) or m.group(4) or m.group(5)
            if tok:
                self.toks.append((tok, m.start(m.lastindex)))
        self.pos = 0

    def where(self, offset: int) -> tuple[int, int]:
        before = self.form.text[:offset]
        line = self.form.line + before.count("\n")
        col = (len(before) - before.rfind("\n")) if "\n" in before else self.form.column + len(before)
        return line, col

    def error(self, msg: str, offset: int | None = None):
        if offset is None:
            offset = self.toks[min(self.pos, len(self.toks) - 1)][1] if self.toks else 0
        line, col = self.where(offset)
        raise RuleFileError(msg, self.form.file, line, col)

    def read(self):
        if self.pos >= len(self.toks):
            self.error("unexpected end of form")
        tok, off = self.toks[self.pos]
        self.pos += 1
        if tok == "(":
            items = []
            while True:
                if self.pos >= len(self.toks):
                    self.error("unbalanced '('", off)
                if self.toks[self.pos][0] == ")":
                    self.pos += 1
                    return (items, off)
                items.append(self.read())
        if tok == ")":
            self.error("unexpected ')'", off)
        return (tok, off)


def _text(node) -> str:
    v, _ = node
    if isinstance(v, list):
        return "(" + " ".join(_text(x) for x in v) + ")"
    return v


def _schedule(node, r: _Reader, aliases: dict[str, tuple[str, ...]]) -> Strategy:
    v, off = node
    if isinstance(v, str):
        return Run(aliases.get(v, (v,)))
    if not v or not isinstance(v[0][0], str):
        r.error("expected a schedule: (seq ...), (repeat N ...), (saturate ...), (run RULESET) "
                "or a ruleset name", off)
    head = v[0][0]
    args = v[1:]
    if head == "seq":
        return seq(*[_schedule(a, r, aliases) for a in args])
    if head == "saturate":
        if not args:
            r.error("(saturate ...) needs at least one schedule", off)
        return saturate(*[_schedule(a, r, aliases) for a in args])
    if head == "repeat":
        if len(args) < 2 or not isinstance(args[0][0], str) or not args[0][0].isdigit():
            r.error("expected (repeat N schedule ...) with N a non-negative integer", off)
        return repeat(int(args[0][0]), *[_schedule(a, r, aliases) for a in args[1:]])
    if head == "run":
        if not args or not isinstance(args[0][0], str):
            r.error("expected (run RULESET [:until FACT])", off)
        name = args[0][0]
        rest = args[1:]
        until = None
        if rest and rest[0][0] == ":until":
            if len(rest) != 2:
                r.error(":until takes exactly one fact inside run-schedule (an egglog limit)", rest[0][1])
            until = _text(rest[1])
        elif len(rest) == 1 and isinstance(rest[0][0], str) and rest[0][0].isdigit():
            return repeat(int(rest[0][0]), Run(aliases.get(name, (name,))))
        elif rest:
            r.error("expected (run RULESET [:until FACT])", rest[0][1])
        return Run(aliases.get(name, (name,)), until)
    if head in ("run-with", "let-scheduler"):
        r.error(f"'{head}' (egglog back-off schedulers) is not supported: the eqsat-ad driver runs "
                "one iteration at a time to enforce limits, and scheduler state does not survive "
                "between iterations", off)
    r.error(f"unknown schedule form '{head}' (expected seq, repeat, saturate or run)", off)


def _limits(text: str, form: Form) -> Limits:
    kw = {}
    for item in text.split():
        k, _, v = item.partition("=")
        try:
            if k == "iterations" or k == "nodes":
                kw[k] = int(float(v))
            elif k == "seconds":
                kw[k] = float(v)
            else:
                raise ValueError
        except ValueError:
            raise RuleFileError(f"bad @phase limit {item!r} (expected iterations=N, nodes=N or "
                                "seconds=S)", form.file, max(1, form.line - 1)) from None
    return Limits(**kw)


def parse_schedule_forms(forms: list[Form]) -> Strategy:
    aliases: dict[str, tuple[str, ...]] = {}
    phases: list[Phase] = []
    for f in forms:
        r = _Reader(f)
        node = r.read()
        v, off = node
        head = v[0][0] if isinstance(v, list) and v and isinstance(v[0][0], str) else None
        if head == "unstable-combined-ruleset":
            names = [a[0] for a in v[1:]]
            if len(names) < 2 or not all(isinstance(n, str) for n in names):
                r.error("expected (unstable-combined-ruleset NAME ruleset ...)", off)
            members: list[str] = []
            for n in names[1:]:
                members += [m for m in aliases.get(n, (n,)) if m not in members]
            aliases[names[0]] = tuple(members)
        elif head == "run-schedule":
            if len(v) < 2:
                r.error("(run-schedule ...) needs a schedule", off)
            body = seq(*[_schedule(a, r, aliases) for a in v[1:]])
            m = _PRAGMA.search(f.comment.splitlines()[-1]) if f.comment else None
            name = m.group(1) if m else f"phase{len(phases) + 1}"
            lim = _limits(m.group(2), f) if m else Limits()
            phases.append(Phase(name, body, lim))
        elif head == "ruleset" or head in ("rewrite", "rule", "birewrite"):
            r.error(f"'{head}' belongs in a rule file; a schedule file holds run-schedule and "
                    "unstable-combined-ruleset forms", off)
        else:
            r.error(f"unexpected form '{head or _text(node)[:30]}' in a schedule file (expected "
                    "run-schedule or unstable-combined-ruleset)", off)
    if not phases:
        raise RuleFileError("schedule file has no (run-schedule ...) form",
                            forms[0].file if forms else None)
    return phases[0] if len(phases) == 1 else seq(*phases)


def parse_schedule(text: str, file: str = "<string>") -> Strategy:
    """Parse schedule text (see the module docstring)."""
    forms = split_forms(text, file)
    if not forms:
        raise RuleFileError("schedule file is empty (expected a (run-schedule ...) form)", file)
    return parse_schedule_forms(forms)


def load_schedule(path: str | Path) -> Strategy:
    """Read a schedule file; errors name the file and line."""
    forms = read_forms(path)
    if not forms:
        raise RuleFileError("schedule file is empty (expected a (run-schedule ...) form)", str(path))
    return parse_schedule_forms(forms)
