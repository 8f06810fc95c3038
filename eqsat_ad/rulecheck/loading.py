"""Which forms of a rule file egglog refuses to load.

A rule that egglog rejects (wrong arity, an unknown ruleset, a duplicate name, a sort error)
breaks the whole file: ``optimize(rules=[file])`` stops at it.  The checker must not call such a
file sound, in either mode, so every form is loaded on its own and each refusal is reported
with its ``file:line:col`` (:func:`load_file`).

A file is loaded after the ``subst`` rules (every rule file relies on them); if that leaves
errors, it is tried again after every shipped rule file but itself, as ``optimize`` loads a
user's file (it may add rules to a shipped ruleset); the context with fewer errors counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..egraph.eggtext import Form, read_forms
from ..egraph.session import EGraphSession, default_rule_files, rules_dir
from ..errors import RuleFileError


@dataclass
class LoadCheck:
    """The forms of one file that egglog refuses (by line) and the files it loads after."""
    file: str
    errors: dict[int, tuple[Form, str]] = field(default_factory=dict)
    context: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _try(path: Path, context: list[Path]) -> dict[int, tuple[Form, str]]:
    s = EGraphSession(context)
    errors: dict[int, tuple[Form, str]] = {}
    for form in read_forms(path):
        try:
            s._run_forms([form], user_file=True)     # the session's one gateway to egglog
        except RuleFileError as e:
            errors[form.line] = (form, str(e))
    return errors


def load_file(path) -> LoadCheck:
    """Load every form of ``path`` on its own (see the module docstring)."""
    path = Path(path)
    subst = rules_dir() / "subst.egg"
    first = [] if _same(path, subst) else [subst]
    errors = _try(path, first)
    if not errors:
        return LoadCheck(str(path), {}, first)
    shipped = [f for f in default_rule_files() if not _same(f, path)]
    if shipped != first:
        again = _try(path, shipped)
        if len(again) < len(errors):
            return LoadCheck(str(path), again, shipped)
    return LoadCheck(str(path), errors, first)


def form_name(form: Form) -> str:
    """The ``:name`` of a rule form, else ``file:line`` and what the form is."""
    from ..egraph.eggtext import _RULE_NAME
    m = _RULE_NAME.search(form.text)
    if m and form.head in ("rewrite", "birewrite", "rule"):
        return m.group(1)
    return f"{Path(form.file).name}:{form.line} ({form.head})"
