"""Read schedules from ``.egg`` files (the egglog ``run-schedule`` syntax).

A schedule file holds, in any order:

* ``(unstable-combined-ruleset NAME rs1 rs2 ...)`` -- run several rulesets as one;
* ``(run-schedule S ...)`` -- one phase each, where ``S`` is ``(seq S ...)``,
  ``(repeat N S ...)``, ``(saturate S ...)``, ``(run RS [:until FACT])`` or a bare ruleset
  name (= ``(run RS)``);
* an optional comment right above a ``run-schedule``: ``;; @phase NAME iterations=N nodes=N
  seconds=S growth=G guarded=true checkpoint=true`` names the phase and sets its limits (egglog ignores comments,
  so the file stays valid egglog; :class:`~eqsat_ad.strategy.combinators.Limits` says what each
  does).

The file is read as data (:mod:`eqsat_ad.egraph.eggtext`): only ruleset names and ``:until``
facts ever reach egglog, and a fact may only use ``=`` and the names a rule may call
(:mod:`eqsat_ad.egraph.allowlist`): names that are never allowed (``py-eval``, ``include``,
...) are refused here, other unknown names when the schedule runs against the loaded rule
files.  Errors name the file, the line and what was expected.

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

from ..egraph.allowlist import FactText, check_until_fact
from ..egraph.eggtext import MAX_DEPTH, Atom, Form, Node, SList, read_forms, split_forms, to_text
from ..errors import RuleFileError
from .combinators import Limits, Phase, Run, Strategy, repeat, saturate, seq

_PRAGMA = re.compile(r"@phase\s+(\S+)((?:\s+\w+=\S+)*)")


def _error(msg: str, node: Node) -> RuleFileError:
    return RuleFileError(msg, node.file, node.line, node.column)


def _is_symbol(node: Node) -> bool:
    return isinstance(node, Atom) and not node.is_string


def _ruleset(node: Node, aliases: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    if not _is_symbol(node):
        raise _error(f"expected a ruleset name, found {to_text(node)[:30]!r}", node)
    return aliases.get(node.text, (node.text,))


def _count(node: Node) -> int | None:
    return int(node.text) if _is_symbol(node) and node.text.isdigit() else None


def _schedule(node: Node, aliases: dict[str, tuple[str, ...]]) -> Strategy:
    if isinstance(node, Atom):
        return Run(_ruleset(node, aliases))
    head = node.head
    if head is None:
        raise _error("expected a schedule: (seq ...), (repeat N ...), (saturate ...), (run RULESET) "
                     "or a ruleset name", node)
    args = node.items[1:]
    if head == "seq":
        return seq(*[_schedule(a, aliases) for a in args])
    if head == "saturate":
        if not args:
            raise _error("(saturate ...) needs at least one schedule", node)
        return saturate(*[_schedule(a, aliases) for a in args])
    if head == "repeat":
        if len(args) < 2 or _count(args[0]) is None:
            raise _error("expected (repeat N schedule ...) with N a non-negative integer", node)
        return repeat(_count(args[0]), *[_schedule(a, aliases) for a in args[1:]])
    if head == "run":
        if not args:
            raise _error("expected (run RULESET [:until FACT])", node)
        names = _ruleset(args[0], aliases)
        rest = args[1:]
        until = None
        if rest and _is_symbol(rest[0]) and rest[0].text == ":until":
            if len(rest) != 2:
                raise _error(":until takes exactly one fact inside run-schedule (an egglog limit)", rest[0])
            # the fact's names are allowlisted now (py-*, commands: refused) and once more
            # against the loaded rule files when the schedule runs (EGraphSession.step)
            check_until_fact(rest[1], defer_unknown=True)
            until = FactText(to_text(rest[1]), rest[1])
        elif len(rest) == 1 and _count(rest[0]) is not None:
            return repeat(_count(rest[0]), Run(names))
        elif rest:
            raise _error("expected (run RULESET [:until FACT])", rest[0])
        return Run(names, until)
    if head in ("run-with", "let-scheduler"):
        raise _error(f"'{head}' (egglog back-off schedulers) is not supported: the eqsat-ad driver runs "
                     "one iteration at a time to enforce limits, and scheduler state does not survive "
                     "between iterations", node)
    raise _error(f"unknown schedule form '{head}' (expected seq, repeat, saturate or run)", node)


def _limits(text: str, form: Form) -> Limits:
    kw = {}
    for item in text.split():
        k, _, v = item.partition("=")
        try:
            if k == "iterations" or k == "nodes":
                kw[k] = int(float(v))
            elif k == "seconds" or k == "growth":
                kw[k] = float(v)
                if k == "growth" and not kw[k] >= 1.0:
                    raise ValueError
            elif k in ("guarded", "checkpoint") and v in ("true", "false"):
                kw[k] = v == "true"
            else:
                raise ValueError
        except ValueError:
            raise RuleFileError(f"bad @phase limit {item!r} (expected iterations=N, nodes=N, seconds=S, "
                                "growth=G with G >= 1, guarded=true|false or checkpoint=true|false)", form.file,
                                max(1, form.line - 1)) from None
    return Limits(**kw)


def parse_schedule_forms(forms: list[Form]) -> Strategy:
    """The strategy of a schedule file's forms (read as data: nothing here reaches egglog but
    ruleset names and allowlisted ``:until`` facts)."""
    aliases: dict[str, tuple[str, ...]] = {}
    phases: list[Phase] = []
    for f in forms:
        node = f.tree
        head = node.head if isinstance(node, SList) else None
        if head == "unstable-combined-ruleset":
            names = node.items[1:]
            if len(names) < 2 or not all(_is_symbol(n) for n in names):
                raise _error("expected (unstable-combined-ruleset NAME ruleset ...)", node)
            members: list[str] = []
            for n in names[1:]:
                members += [m for m in aliases.get(n.text, (n.text,)) if m not in members]
            aliases[names[0].text] = tuple(members)
        elif head == "run-schedule":
            if len(node.items) < 2:
                raise _error("(run-schedule ...) needs a schedule", node)
            body = seq(*[_schedule(a, aliases) for a in node.items[1:]])
            m = _PRAGMA.search(f.comment.splitlines()[-1]) if f.comment else None
            name = m.group(1) if m else f"phase{len(phases) + 1}"
            lim = _limits(m.group(2), f) if m else Limits()
            phases.append(Phase(name, body, lim))
        elif head == "ruleset" or head in ("rewrite", "rule", "birewrite"):
            raise _error(f"'{head}' belongs in a rule file; a schedule file holds run-schedule and "
                         "unstable-combined-ruleset forms", node)
        else:
            raise _error(f"unexpected form '{head or to_text(node)[:30]}' in a schedule file (expected "
                         "run-schedule or unstable-combined-ruleset)", node)
    if not phases:
        raise RuleFileError("schedule file has no (run-schedule ...) form",
                            forms[0].file if forms else None)
    return phases[0] if len(phases) == 1 else seq(*phases)


def parse_schedule(text: str, file: str = "<string>") -> Strategy:
    """Parse schedule text (see the module docstring)."""
    forms = split_forms(text, file, max_depth=MAX_DEPTH)
    if not forms:
        raise RuleFileError("schedule file is empty (expected a (run-schedule ...) form)", file)
    return parse_schedule_forms(forms)


def load_schedule(path: str | Path) -> Strategy:
    """Read a schedule file; errors name the file and line."""
    forms = read_forms(path, "schedule file")
    if not forms:
        raise RuleFileError("schedule file is empty (expected a (run-schedule ...) form)", str(path))
    return parse_schedule_forms(forms)
