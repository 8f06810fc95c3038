"""Reading ``.egg`` text: split into top-level forms with their line numbers, find rulesets and
named rules, and report malformed text as ``file:line:col: message``.

egglog's ``parse_program`` keeps a copy of the whole source in every command's span, so its
memory grows quadratically with the text size (reference/egglog-notes.md §6.3); we always
hand it one top-level form at a time.

>>> [f.text for f in split_forms("(ruleset r) ; c\\n(rewrite (A a) a :ruleset r)")]
['(ruleset r)', '(rewrite (A a) a :ruleset r)']
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RuleFileError


@dataclass(frozen=True)
class Form:
    """One top-level s-expression of an ``.egg`` file."""
    text: str
    file: str
    line: int
    column: int
    comment: str = ""          # the comment lines directly above the form

    @property
    def head(self) -> str:
        m = re.match(r"\(\s*([^\s()]+)", self.text)
        return m.group(1) if m else ""


def split_forms(text: str, file: str = "<string>") -> list[Form]:
    """Split egglog source into top-level forms; raise :class:`RuleFileError` on unbalanced
    parentheses, unterminated strings or stray text (pointing at the place)."""
    forms: list[Form] = []
    depth, start, i, n = 0, None, 0, len(text)
    line, col = 1, 1
    start_pos = (1, 1)
    open_stack: list[tuple[int, int]] = []
    comment_lines: list[str] = []
    last_end_line = 0

    def advance(ch: str) -> None:
        nonlocal line, col
        if ch == "\n":
            line, col = line + 1, 1
        else:
            col += 1

    while i < n:
        ch = text[i]
        if ch == ";":
            j = text.find("\n", i)
            j = n if j < 0 else j
            if depth == 0:
                if comment_lines and line > last_end_line + len(comment_lines) + 1 and not comment_lines[-1]:
                    comment_lines = []
                comment_lines.append(text[i:j].lstrip(";").strip())
            for c in text[i:j]:
                advance(c)
            i = j
            continue
        if ch == '"':
            sl, sc = line, col
            advance(ch)
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    advance(text[i])
                    i += 1
                if i < n:
                    advance(text[i])
                    i += 1
            if i >= n:
                raise RuleFileError("unterminated string", file, sl, sc)
        elif ch == "(":
            if depth == 0:
                start, start_pos = i, (line, col)
            open_stack.append((line, col))
            depth += 1
        elif ch == ")":
            if depth == 0:
                raise RuleFileError("unexpected ')' with no matching '('", file, line, col)
            open_stack.pop()
            depth -= 1
            if depth == 0:
                # keep only the comment block that ends right above this form
                forms.append(Form(text[start:i + 1], file, start_pos[0], start_pos[1],
                                  "\n".join(comment_lines).strip()))
                comment_lines = []
                last_end_line = line
        elif not ch.isspace() and depth == 0:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "();":
                j += 1
            raise RuleFileError(f"unexpected text {text[i:j]!r} outside any form (expected '(')", file, line, col)
        elif ch == "\n" and depth == 0 and i + 1 < n and text[i + 1] == "\n":
            comment_lines = []          # a blank line separates a comment from the next form
        advance(ch)
        i += 1
    if depth:
        ol, oc = open_stack[-1]
        raise RuleFileError("unbalanced '(': this parenthesis is never closed", file, ol, oc)
    return forms


def read_forms(path: str | Path) -> list[Form]:
    """Read and split an ``.egg`` file (errors name the file)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise RuleFileError(f"cannot read rule file: {e.strerror}", str(path)) from None
    return split_forms(text, str(path))


_RULESET = re.compile(r"^\(\s*ruleset\s+([^\s()]+)\s*\)$", re.S)
_RULE_NAME = re.compile(r':name\s+"((?:[^"\\]|\\.)*)"')
_RULE_RS = re.compile(r":ruleset\s+([^\s()]+)")


@dataclass
class RuleInfo:
    name: str
    ruleset: str
    file: str
    line: int
    text: str


@dataclass
class RulesetInfo:
    name: str
    file: str
    line: int
    comment: str = ""
    rules: list[RuleInfo] = field(default_factory=list)


def file_banner(forms: list[Form]) -> str:
    """The comment block at the top of a rule file (above its first form)."""
    return forms[0].comment if forms else ""


def rulesets_in(forms: list[Form]) -> dict[str, RulesetInfo]:
    """Rulesets declared in ``forms`` and the rules (rewrite/birewrite/rule) added to each.

    A rule without ``:name`` is listed under a name made from its file and line.
    """
    out: dict[str, RulesetInfo] = {}
    banner = file_banner(forms)
    for f in forms:
        m = _RULESET.match(f.text.strip())
        if m:
            out[m.group(1)] = RulesetInfo(m.group(1), f.file, f.line, f.comment or banner)
    for f in forms:
        if f.head not in ("rewrite", "birewrite", "rule"):
            continue
        rs = _RULE_RS.search(f.text)
        rsname = rs.group(1) if rs else ""
        nm = _RULE_NAME.search(f.text)
        name = nm.group(1) if nm else f"{Path(f.file).name}:{f.line}"
        info = out.get(rsname)
        if info is None:
            info = out.setdefault(rsname, RulesetInfo(rsname, f.file, f.line))
        info.rules.append(RuleInfo(name, rsname, f.file, f.line, f.text))
    return out
