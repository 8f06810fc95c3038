"""One e-graph holding one program: load the schema and rule files, add the program, run
rulesets one iteration at a time, count e-nodes, compute costs and extract.

All text goes through egglog's low-level ``bindings.EGraph`` one top-level form at a time
(see :mod:`eqsat_ad.egraph.eggtext`), and through one gateway, :meth:`EGraphSession._run_forms`,
which refuses text that would reach egglog-python's Python bridge
(:func:`~eqsat_ad.egraph.egglog_compat.parse_guarded`).  Rule files -- ours and users', the
same way -- are checked against an allowlist first (:mod:`eqsat_ad.egraph.allowlist`), and so
are ``:until`` facts.  Errors in a rule file name the file and the line.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from egglog import bindings

from ..errors import EqsatError, RuleFileError, ScheduleError
from ..lang.ast import Expr, Program
from .constructors import TERM_CTORS
from .costrules import cost_rules_text
from .decode import decode_termdag
from .allowlist import Vocabulary, check_rule_forms, check_until_text, declared_in
from .egglog_compat import RefusedText, is_egglog_panic, parse_guarded, report_seconds
from .eggtext import (MAX_DEPTH, Form, RulesetInfo, phase_pragma, read_text_file, rulesets_in,
                      split_forms)
from .encode import Encoded, egg_string, encode_program

PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_FILES = (PACKAGE_DIR / "schema.egg", PACKAGE_DIR / "fv.egg")
SUPPORT_RULESETS = ("analysis", "subst")   # run with every phase: fv and substitution keep up


def rules_dir() -> Path:
    """The directory of the shipped rule files, ``eqsat_ad/rules/`` inside the package (so a wheel
    carries them); users' rule files load from anywhere."""
    d = PACKAGE_DIR.parent / "rules"
    if not (d / "subst.egg").exists():
        raise EqsatError(f"the shipped rule files are missing from {d} (a broken installation: "
                         "reinstall eqsat-ad)")
    return d


def default_rule_files() -> list[Path]:
    """Our rule files: ``subst.egg`` first (other rules build Subst terms), then the rest."""
    d = rules_dir()
    files = sorted(d.glob("*.egg"))
    return [d / "subst.egg"] + [f for f in files if f.name != "subst.egg"]


#: the forms of each rule file read in this process, by (path, SHA-256 of its text): every
#: session (every ``optimize`` call) loads the same files, and splitting and parsing them is half
#: of loading them (the rest is egglog's own work, per e-graph)
_FORMS_CACHE: dict[tuple[str, str], tuple[Form, ...]] = {}
_FORMS_CACHE_MAX = 128


def read_forms(path, what: str = "rule file") -> list[Form]:
    """:func:`eqsat_ad.egraph.eggtext.read_forms`, once per process per file content: the forms
    (and the trees they parse when first asked) are shared by the sessions that load the file;
    a file whose text changed is read again."""
    text = read_text_file(path, what)
    key = (str(path), hashlib.sha256(text.encode()).hexdigest())
    forms = _FORMS_CACHE.get(key)
    if forms is None:
        forms = tuple(split_forms(text, str(path), max_depth=MAX_DEPTH))
        if len(_FORMS_CACHE) >= _FORMS_CACHE_MAX:
            _FORMS_CACHE.pop(next(iter(_FORMS_CACHE)))
        _FORMS_CACHE[key] = forms
    return list(forms)


_EGG_POS = re.compile(r"^In (\d+):(\d+)-(\d+)?:?.*$", re.M)


def _egg_message(err: Exception) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    # egglog puts "In L:C-C: <form>" first, then the reason
    body = [ln for ln in lines if not _EGG_POS.match(ln)]
    return (body[-1] if body else str(err)).strip()


@dataclass
class StepResult:
    """What one iteration of a ruleset did."""
    updated: bool
    matches: dict[str, int]
    seconds: float
    rule_seconds: dict[str, float]


class EGraphSession:
    """An egglog e-graph loaded with the schema and rule files.

    >>> s = EGraphSession()
    >>> {"analysis", "ring", "comm"} <= set(s.rulesets)
    True
    """

    def __init__(self, rule_files=None):
        self.eg = bindings.EGraph()
        self.rulesets: dict[str, RulesetInfo] = {}
        self.rule_files: list[str] = []
        self._combined: dict[tuple[str, ...], str] = {}
        self._encoded: Encoded | None = None
        self._cost_loaded = False
        self.stopped: str | None = None      # why the last saturate() ended early (a limit), if it did
        self.analysis_done = False           # compute_costs() got the analysis to saturation
        self.vocabulary = Vocabulary()     # what rule files and :until facts may call
        self._until_checked: set[str] = set()
        for f in SCHEMA_FILES:
            forms = read_forms(f)
            self._run_forms(forms)
            self.vocabulary.update(declared_in(forms))
        self.rulesets["analysis"] = RulesetInfo("analysis", str(SCHEMA_FILES[1]), 1,
                                                "free-variable and extent analysis (built in)")
        for f in (default_rule_files() if rule_files is None else rule_files):
            self.load_rules(f)

    # -- text ------------------------------------------------------------------------
    def run_text(self, text: str):
        """Run egglog text (split into forms); returns egglog's outputs."""
        return self._run_forms(split_forms(text, "<internal>"))

    def _run_forms(self, forms: list[Form], user_file: bool = False):
        """The one place text reaches egglog (see :func:`parse_guarded`).  A form of a rule
        file (``user_file``) is first checked against the allowlist and what is loaded."""
        outs = []
        for f in forms:
            declared = check_rule_forms([f], self.vocabulary) if user_file else None
            try:
                outs += self.eg.run_program(*parse_guarded(self.eg, f.text, user_file))
            except RefusedText as e:
                raise RuleFileError(str(e), f.file, f.line, f.column) from None
            except BaseException as e:   # EggSmolError (and parse errors, Rust panics) from egglog
                if not isinstance(e, Exception) and not is_egglog_panic(e):
                    raise
                if f.file == "<internal>":
                    raise EqsatError(f"egglog rejected internal form {f.text[:120]}: {_egg_message(e)}") from None
                raise RuleFileError(f"egglog rejected this form: {_egg_message(e)}", f.file, f.line,
                                    f.column) from None
            if declared is not None:
                self.vocabulary.update(declared)
        return outs

    def load_rules(self, path) -> dict[str, RulesetInfo]:
        """Load a rule file (ours or a user's, the same way); returns the rulesets it declares.

        The file is read as data and checked against the allowlist (rulesets, rules, relation/
        function/constructor/sort declarations; calls only to known names) before egglog sees
        any of it."""
        forms = read_forms(path)
        check_rule_forms(forms, self.vocabulary)     # the whole file, before any of it runs
        found = rulesets_in(forms)                   # (reads the ;; @phase pragma)
        from ..strategy.defaults import check_phase_pragma
        check_phase_pragma(phase_pragma(forms))
        self._run_forms(forms, user_file=True)
        for name, info in found.items():
            if name in self.rulesets and info.file != self.rulesets[name].file:
                self.rulesets[name].rules.extend(info.rules)
            else:
                self.rulesets[name] = info
        self.rule_files.append(str(path))
        return found

    # -- the program -----------------------------------------------------------------
    def add_program(self, prog: Program) -> Encoded:
        """Encode ``prog`` and make it the root ``$root``."""
        enc = encode_program(prog)
        self.run_text("\n".join(enc.lets))
        self.run_text(f"(let $root {enc.root})")
        self.run_text("\n".join(enc.facts))
        self._encoded = enc
        return enc

    def add_term(self, name: str, text: str) -> None:
        """Bind a global ``$name`` to an egglog term (used by tests and the rule checker)."""
        self.run_text(f"(let ${name} {text})")

    # -- running ---------------------------------------------------------------------
    def combined(self, names: tuple[str, ...]) -> str:
        """The name of a ruleset that runs ``names`` together (declared on first use)."""
        names = tuple(dict.fromkeys(names))
        for n in names:
            if n not in self.rulesets:
                raise ScheduleError(f"unknown ruleset {n!r}; loaded rulesets: {', '.join(sorted(self.rulesets))}")
        if len(names) == 1:
            return names[0]
        key = tuple(sorted(names))
        if key not in self._combined:
            cname = "phase__" + "__".join(re.sub(r"[^\w-]", "_", n) for n in key)
            self.run_text(f"(unstable-combined-ruleset {cname} {' '.join(key)})")
            self._combined[key] = cname
        return self._combined[key]

    def step(self, names: tuple[str, ...], until: str | None = None) -> StepResult:
        """Run one iteration of the union of rulesets ``names`` (with ``:until`` fact text)."""
        rs = self.combined(names)
        if until and until not in self._until_checked:
            check_until_text(until, self.vocabulary)       # allowlisted names only
            self._until_checked.add(until)
        cmd = f"(run-schedule (run {rs}{' :until ' + until if until else ''}))"
        t0 = time.perf_counter()
        (out,) = self.run_text(cmd)
        dt = time.perf_counter() - t0
        rep = out.report
        rule_seconds = {k: report_seconds(v) for k, v in rep.search_and_apply_time_per_rule.items()}
        return StepResult(bool(rep.updated), dict(rep.num_matches_per_rule), dt, rule_seconds)

    def saturate(self, names: tuple[str, ...], max_iterations: int = 10_000, stop=None) -> int:
        """Run ``names`` until nothing changes; returns the number of iterations that changed.

        ``stop``: a callable asked before each iteration (e.g. :meth:`Budget.guard
        <eqsat_ad.driver.Budget.guard>`); when it returns a reason (a limit), the loop ends
        there.  ``self.stopped`` is that reason, ``"iteration limit"`` when
        ``max_iterations`` ran out first, or None when the rulesets saturated."""
        self.stopped = None
        for k in range(max_iterations):
            if stop is not None:
                why = stop()
                if why:
                    self.stopped = why
                    return k
            if not self.step(names).updated:
                return k
        self.stopped = "iteration limit"
        return max_iterations

    # -- sizes -----------------------------------------------------------------------
    def table_sizes(self) -> dict[str, int]:
        (out,) = self.run_text("(print-size)")
        return dict(out.sizes)

    def enode_count(self) -> int:
        """Number of term e-nodes (rows of constructor tables, Subst included)."""
        return sum(v for k, v in self.table_sizes().items() if k in TERM_CTORS)

    def eclass_count(self) -> int:
        """Number of e-classes of sort Term."""
        fr = self.eg.freeze()
        classes = set()
        for name, fn in fr.functions.items():
            if name in TERM_CTORS:
                for row in fn.rows:
                    classes.add(row.output)
        return len(classes)

    # -- costs and extraction ----------------------------------------------------------
    def set_sizes(self, sizes: dict[str, int]) -> None:
        """Numeric values of the size names (for the cost model)."""
        if not self._cost_loaded:
            raise EqsatError("load cost rules before setting sizes")
        for name, v in sizes.items():
            self.run_text(f"(set (dimv (Dim {egg_string(name)})) {int(v)})")

    def load_cost_rules(self, opcost: dict[str, float], scope_penalty: bool = True,
                        overhead: dict[str, float] | None = None,
                        fold_costs: dict[str, tuple[float, float]] | None = None) -> None:
        """Declare the in-egglog size-aware costs (per-element op costs, per-node overheads,
        the vectorised ``ifold`` shapes' costs: ``costrules.fold_shape_costs``)."""
        if not self._cost_loaded:
            self.run_text(cost_rules_text(opcost, scope_penalty=scope_penalty, overhead=overhead,
                                          fold_costs=fold_costs))
            self._cost_loaded = True
            self.rulesets["cost"] = RulesetInfo("cost", "<generated>", 1, "size-aware node costs")

    def compute_costs(self, max_iterations: int = 10_000, stop=None) -> tuple[int, int]:
        """Saturate ``analysis`` (fv must be final) and then ``cost``; returns the iterations.
        ``stop`` as for :meth:`saturate`; ``self.stopped`` says whether a limit cut it short,
        ``self.analysis_done`` whether the analysis (free variables, extents) is final even so."""
        self.analysis_done = False
        a = self.saturate(("analysis",), max_iterations, stop)
        if self.stopped:
            return a, 0
        self.analysis_done = True
        c = self.saturate(("cost",), max_iterations, stop)
        return a, c

    def extract_root(self) -> tuple[Expr, int]:
        """Extract ``$root`` with egglog's extractor; returns (expression, egglog tree cost)."""
        (out,) = self.run_text("(extract $root)")
        return decode_termdag(out.termdag, out.term), int(out.cost)

    def serialize_json(self) -> str:
        """The whole e-graph as egglog's serialized JSON (for Python-side extractors)."""
        return self.eg.serialize([]).to_json()
