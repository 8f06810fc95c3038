"""Reading ``.egg`` text: an s-expression reader that tokenises exactly as egglog does, splits
text into top-level forms (with the comment block above each), turns a form into a tree whose
every node knows its ``file:line:col``, finds rulesets and named rules, and reports malformed
text as ``file:line:col: message``.

Rule and schedule files come from users, so they are read as *data* here and checked
(:mod:`eqsat_ad.egraph.allowlist`) before egglog sees them.  For that check to mean anything,
this reader must cut text into the same tokens as egglog 13.2's own lexer: whitespace is
Rust's ``char::is_whitespace`` (not Python's ``str.isspace``), ``;`` starts a comment anywhere
(also right after ``(``), a string starts only at the start of a token and knows the escapes
``\\n \\t \\\\ \\"`` (any other escape is an error), and an atom runs to the next whitespace,
``;``, ``(`` or ``)`` -- quotes inside an atom do not start a string.

egglog's ``parse_program`` keeps a copy of the whole source in every command's span, so its
memory grows quadratically with the text size (1000 lines took over 1 GB); we always hand it
one top-level form at a time.  Files are read with a size cap and a nesting cap, so a hostile file
costs a bounded amount of time and memory and never a ``RecursionError``.

>>> [f.text for f in split_forms("(ruleset r) ; c\\n(rewrite (A a) a :ruleset r)")]
['(ruleset r)', '(rewrite (A a) a :ruleset r)']
>>> t = split_forms('(rule (;why\\n (= e (A a))) ())', "r.egg")[0].tree
>>> t.head, t.items[1].items[0].head, t.items[1].items[0].where
('rule', '=', 'r.egg:2:2')
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import RuleFileError

MAX_FILE_BYTES = 4 * 1024 * 1024   # rule and schedule files: ours are a few KiB
MAX_DEPTH = 200                     # nesting of a rule/schedule file; ours nest < 12 deep

# Rust's char::is_whitespace, which egglog's lexer uses (Python's isspace also counts \x1c-\x1f)
_WS = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_TOKEN = re.compile(
    rf"(?P<ws>[{_WS}]+)"
    r"|(?P<comment>;[^\n]*)"
    r"|(?P<open>\()"
    r"|(?P<close>\))"
    r'|(?P<string>"(?:[^"\\]++|\\.)*+")'
    r'|(?P<quote>")'                      # a string that never ends
    rf"|(?P<atom>[^{_WS};()]+)", re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}


class _Lines:
    """Offsets -> (line, column), both 1-based, for one text."""

    def __init__(self, text: str, line: int = 1, column: int = 1):
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.line, self.column = line, column

    def at(self, offset: int) -> tuple[int, int]:
        k = bisect_right(self.newlines, offset - 1)
        if k == 0:
            return self.line, self.column + offset
        return self.line + k, offset - self.newlines[k - 1]


# -- the tree ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Atom:
    """A symbol, number or string of egglog text, as written (strings keep quotes and escapes)."""
    text: str
    file: str
    line: int
    column: int

    @property
    def is_string(self) -> bool:
        return self.text.startswith('"')

    @property
    def value(self) -> str:
        """The text a string literal denotes (escapes undone); a symbol's own text."""
        if not self.is_string:
            return self.text
        return _ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], self.text[1:-1])

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SList:
    """A parenthesised list ``( ... )``; comments and whitespace are gone."""
    items: tuple
    file: str
    line: int
    column: int

    @property
    def head(self) -> str | None:
        """The first item when it is a symbol (what the form is), else ``None``."""
        if self.items and isinstance(self.items[0], Atom) and not self.items[0].is_string:
            return self.items[0].text
        return None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


Node = Atom | SList


def to_text(node: Node) -> str:
    """Egglog text of a tree (comments dropped, one space between items)."""
    if isinstance(node, Atom):
        return node.text
    return "(" + " ".join(to_text(x) for x in node.items) + ")"


def _error(msg: str, file: str, where: tuple[int, int]) -> RuleFileError:
    return RuleFileError(msg, file, where[0], where[1])


def _check_string(m: re.Match, file: str, lines: _Lines) -> None:
    s = m.group()
    if "\\" in s:
        for e in _ESCAPE.finditer(s, 1, len(s) - 1):
            if e.group(1) not in _ESCAPES:
                raise _error(f"unrecognized escape character {e.group(1)!r} in a string (egglog knows "
                             "\\n \\t \\\\ \\\")", file, lines.at(m.start() + e.start()))


def _read_tree(text: str, file: str, line: int, column: int) -> Node:
    """The tree of one balanced form (as cut by :func:`split_forms`); no recursion."""
    lines = _Lines(text, line, column)
    stack: list[tuple[int, list]] = []
    done: Node | None = None
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        if kind == "open":
            stack.append((m.start(), []))
            continue
        if kind == "close":
            start, items = stack.pop()
            node: Node = SList(tuple(items), file, *lines.at(start))
        else:       # atom or string (split_forms already refused a string that never ends)
            node = Atom(m.group(), file, *lines.at(m.start()))
        if stack:
            stack[-1][1].append(node)
        else:
            done = node
    assert done is not None
    return done


# -- forms -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Form:
    """One top-level s-expression of an ``.egg`` file."""
    text: str
    file: str
    line: int
    column: int
    comment: str = ""          # the comment lines directly above the form
    comment_line: int = 0      # the line of the first non-empty line of ``comment`` (0: none)

    @property
    def head(self) -> str:
        """The symbol after the opening parenthesis (comments and whitespace skipped)."""
        for m in _TOKEN.finditer(self.text, 1):
            if m.lastgroup in ("ws", "comment"):
                continue
            return m.group() if m.lastgroup == "atom" else ""
        return ""

    @cached_property
    def tree(self) -> Node:
        """The form as a tree of :class:`SList` and :class:`Atom`, each with its place."""
        return _read_tree(self.text, self.file, self.line, self.column)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def split_forms(text: str, file: str = "<string>", max_depth: int | None = None) -> list[Form]:
    """Split egglog source into top-level forms; raise :class:`RuleFileError` on unbalanced
    parentheses, unterminated strings, bad escapes, stray text or (with ``max_depth``) nesting
    deeper than ``max_depth`` (pointing at the place)."""
    forms: list[Form] = []
    lines = _Lines(text)
    depth, start = 0, 0
    open_stack: list[int] = []
    comment_lines: list[str] = []
    comment_starts: list[int] = []     # the line of each entry of comment_lines
    last_end_line = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            if depth == 0 and "\n\n" in m.group():
                comment_lines, comment_starts = [], []   # a blank line separates a comment from the next form
        elif kind == "comment":
            if depth == 0:
                line = lines.at(m.start())[0]
                if comment_lines and line > last_end_line + len(comment_lines) + 1 and not comment_lines[-1]:
                    comment_lines, comment_starts = [], []
                comment_lines.append(m.group().lstrip(";").strip())
                comment_starts.append(line)
        elif kind == "open":
            if depth == 0:
                start = m.start()
            open_stack.append(m.start())
            depth += 1
            if max_depth is not None and depth > max_depth:
                raise _error(f"nested deeper than {max_depth} levels", file, lines.at(m.start()))
        elif kind == "close":
            if depth == 0:
                raise _error("unexpected ')' with no matching '('", file, lines.at(m.start()))
            open_stack.pop()
            depth -= 1
            if depth == 0:
                # keep only the comment block that ends right above this form
                first = next((ln for c, ln in zip(comment_lines, comment_starts) if c), 0)
                forms.append(Form(text[start:m.end()], file, *lines.at(start),
                                  "\n".join(comment_lines).strip(), first))
                comment_lines, comment_starts = [], []
                last_end_line = lines.at(m.start())[0]
        elif kind == "quote":
            raise _error("unterminated string", file, lines.at(m.start()))
        elif depth == 0:           # an atom or a string outside any form
            raise _error(f"unexpected text {m.group()[:40]!r} outside any form (expected '(')", file,
                         lines.at(m.start()))
        elif kind == "string":
            _check_string(m, file, lines)
    if depth:
        raise _error("unbalanced '(': this parenthesis is never closed", file, lines.at(open_stack[-1]))
    return forms


def read_text_file(path: str | Path, what: str = "rule file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """The text of a user's ``.egg`` file: at most ``max_bytes`` bytes of UTF-8 (errors name
    the file)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise RuleFileError(f"cannot read {what}: {e.strerror or e}", str(path)) from None
    if len(data) > max_bytes:
        raise RuleFileError(f"{what} is larger than {max_bytes // 1024} KiB (the limit for rule and "
                            "schedule files)", str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleFileError(f"{what} is not UTF-8 text (byte {e.start})", str(path)) from None


def read_forms(path: str | Path, what: str = "rule file") -> list[Form]:
    """Read and split an ``.egg`` file, within the size and nesting caps (errors name the file)."""
    return split_forms(read_text_file(path, what), str(path), max_depth=MAX_DEPTH)


# -- rulesets and rules, for listings ----------------------------------------------------------

# text-level patterns, still used by eqsat_ad.rulecheck.rules
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
    #: the phase of the default schedule its file's ``;; @phase NAME`` pragma puts it in
    phase: "PhasePragma | None" = None


@dataclass(frozen=True)
class PhasePragma:
    """A rule file's ``;; @phase NAME`` banner line: the default-schedule phase its rulesets
    run in (checked against the phases by :func:`eqsat_ad.strategy.defaults.check_phase_pragma`)."""
    name: str
    file: str
    line: int
    column: int


_PHASE_PRAGMA = re.compile(r"@phase\b(.*)$")


def phase_pragma(forms: list[Form]) -> PhasePragma | None:
    """The ``;; @phase NAME`` line of a rule file's banner (the comment above its first form),
    or None.  A pragma without a name, with more than a name, or given twice is an error at its
    line."""
    if not forms or not forms[0].comment:
        return None
    first = forms[0]
    found: PhasePragma | None = None
    for k, text in enumerate(first.comment.splitlines()):
        m = _PHASE_PRAGMA.match(text.strip())
        if not m:
            continue
        line = (first.comment_line or first.line) + k
        words = m.group(1).split()
        if len(words) != 1 or not re.fullmatch(r"[\w-]+", words[0]):
            raise RuleFileError("expected ';; @phase NAME' (one phase name of the default schedule) in the "
                                f"rule file's banner, found '@phase{m.group(1)}'", first.file, line, 1)
        if found is not None:
            raise RuleFileError(f"a second @phase pragma (the first, line {found.line}, says "
                                f"'{found.name}'); a rule file's rulesets run in one phase",
                                first.file, line, 1)
        found = PhasePragma(words[0], first.file, line, 1)
    return found


def _options(form: Node) -> dict[str, Atom]:
    """The ``:key value`` options at the top level of a form (values that are atoms)."""
    items = form.items if isinstance(form, SList) else ()
    return {k.text: v for k, v in zip(items, items[1:])
            if isinstance(k, Atom) and k.text.startswith(":") and isinstance(v, Atom)}


def file_banner(forms: list[Form]) -> str:
    """The comment block at the top of a rule file (above its first form)."""
    return forms[0].comment if forms else ""


def rulesets_in(forms: list[Form]) -> dict[str, RulesetInfo]:
    """Rulesets declared in ``forms`` and the rules (rewrite/birewrite/rule) added to each.

    A rule without ``:name`` is listed under a name made from its file and line.
    """
    out: dict[str, RulesetInfo] = {}
    banner = file_banner(forms)
    pragma = phase_pragma(forms)
    for f in forms:
        t = f.tree
        if t.head == "ruleset" and len(t.items) == 2 and isinstance(t.items[1], Atom):
            out[t.items[1].text] = RulesetInfo(t.items[1].text, f.file, f.line, f.comment or banner,
                                               phase=pragma)
    for f in forms:
        if f.head not in ("rewrite", "birewrite", "rule"):
            continue
        # options read from the tree: a ":ruleset" inside a string or a comment is not one
        opts = _options(f.tree)
        rsname = opts[":ruleset"].text if ":ruleset" in opts else ""
        name = opts[":name"].value if ":name" in opts else f"{Path(f.file).name}:{f.line}"
        info = out.get(rsname)
        if info is None:
            info = out.setdefault(rsname, RulesetInfo(rsname, f.file, f.line))
        info.rules.append(RuleInfo(name, rsname, f.file, f.line, f.text))
    return out
