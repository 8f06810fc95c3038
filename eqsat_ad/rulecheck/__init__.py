"""Rule soundness checking: every rewrite rule is tried on random well-typed instances of its
two sides, which are run with the reference interpreter and compared.

>>> rep = check_rules([rules_dir() / "tuple.egg"], examples=20)
>>> rep.ok, sorted({r.status for r in rep.results})
(True, ['sound'])

How (see ``docs/trust.md``):

* every ``rewrite``/``birewrite``/``rule`` of the given files is read into an equation
  ``lhs = rhs`` with side conditions (:mod:`.rules`); the sorts and types of its pattern
  variables are inferred by unification from the constructor positions;
* random instances are drawn (:mod:`.instances`): open types, sizes (0 to 4), binder names
  (sometimes colliding, to exercise shadowing and capture), and for every Term variable a
  random program fragment over the names in scope at its occurrences, minus those a
  ``set-not-contains`` condition forbids -- with index arithmetic, boundary values, indices
  and extents out of range where nothing promises a range, loop bodies that use their index;
  ``ext r n`` makes ``r`` an outer index below ``n``; ``:when`` guards, ``!=`` and ``(fv ..)``
  conditions are checked on the instance, and the right-hand side is typed against the left;
* both sides are decoded into programs (``Subst`` by capture-avoiding substitution) and run by
  :func:`eqsat_ad.lang.interp.eval_expr` on random inputs; values are compared with
  ``allclose`` (NaN equals NaN); both sides erroring counts as equal; an error turned into a
  value is allowed only for the documented refinement rules (:data:`REFINEMENT_RULES`);
* a failure is reported with the smallest instance found (instances grow from depth 0, and the
  failing one is shrunk variable by variable) and the rule's ``file:line``.

Rules that match a relation computed by other rules (the loop-fission candidate) cannot be
instantiated from a pattern: each is checked in an e-graph with the rules of its file that
compute the relation (:func:`.egraph_mode.check_rule_in_egraph`).  A form egglog refuses is
``unloadable`` (:mod:`.loading`), in both modes.

Statuses: ``sound``, ``unsound``, ``unloadable``, ``skipped`` (could not be checked: the
reason says why) and ``no equation`` (the rule adds no equality: nothing to check).  The exit
status of :func:`main` (:data:`EXIT_STATUS`, :meth:`Report.exit_status`): 2 when a file cannot
be read or a rule is unloadable, else 1 when a rule is unsound, else 3 when a rule was skipped
(0 with ``--allow-skips``), else 0.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..egraph.allowlist import check_rule_files
from ..egraph.session import default_rule_files, rules_dir  # noqa: F401 (the doctest)
from .direct import REFINEMENT_RULES, Counterexample, RuleResult, check_rule  # noqa: F401
from .loading import form_name, load_file
from .rules import RuleSpec, rules_in_file  # noqa: F401

__all__ = ["check_rules", "check_rule", "Report", "RuleResult", "Counterexample", "main",
           "REFINEMENT_RULES", "rules_in_file", "check_rules_egraph"]


@dataclass
class Report:
    """The result of checking rule files: one :class:`RuleResult` per rule."""
    results: list[RuleResult] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = "direct"

    # -- display (IPython / Jupyter): the summary, not a dataclass dump ----------------------
    def __repr__(self) -> str:
        return (f"<rulecheck.Report {len(self.results)} rules in {len(self.files)} files ({self.mode}): "
                f"{len(self.unsound)} unsound, {len(self.skipped)} skipped, "
                f"{len(self.unloadable)} unloadable>")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self.summary())

    @property
    def unsound(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "unsound"]

    @property
    def skipped(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "skipped"]

    @property
    def unloadable(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "unloadable"]

    @property
    def sound(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "sound"]

    @property
    def ok(self) -> bool:
        """Every rule was checked and none is unsound: no rule unsound, unloadable or skipped
        ("no equation" is fine: such a rule has nothing to check)."""
        return self.exit_status() == 0

    def exit_status(self, allow_skips: bool = False) -> int:
        """The command line's exit status for this report: 2 when a rule does not load, else
        1 when one is unsound, else 3 when one was skipped (could not be checked) unless
        ``allow_skips``, else 0."""
        if self.unloadable:
            return 2
        if self.unsound:
            return 1
        if self.skipped and not allow_skips:
            return 3
        return 0

    @property
    def instances(self) -> int:
        return sum(r.instances for r in self.results)

    def by_name(self, name: str) -> RuleResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def summary(self, verbose: bool = False) -> str:
        lines = []
        for r in self.results:
            if verbose or r.status in ("unsound", "skipped", "unloadable"):
                lines.append(r.describe())
        counts = {s: sum(1 for r in self.results if r.status == s)
                  for s in ("sound", "unsound", "unloadable", "skipped", "no equation")}
        lines.append(f"{len(self.results)} rules in {len(self.files)} files ({self.mode} mode): "
                     + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
                     + f"; {self.instances} instances in {self.seconds:.1f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"files": self.files, "mode": self.mode, "seconds": self.seconds,
                "instances": self.instances, "ok": self.ok,
                "results": [r.to_dict() for r in self.results]}


def _files(files) -> list[Path]:
    if files is None:
        return list(default_rule_files())
    if isinstance(files, (str, Path)):
        files = [files]
    return [Path(f) for f in files]


def check_rules(files=None, examples: int = 100, seed: int = 0, rules: list[str] | None = None,
                max_depth: int = 3, progress=None) -> Report:
    """Check every rule of ``files`` (default: the shipped ``rules/*.egg``) on ``examples``
    random instances each (two random inputs per instance).  ``rules`` restricts the check to
    rules with those names.  Raises :class:`~eqsat_ad.errors.RuleFileError` for a file that
    cannot be read."""
    t0 = time.perf_counter()
    check_rule_files(_files(files))     # untrusted text: allowlisted before anything reads it
    rep = Report(files=[str(f) for f in _files(files)])
    for f in _files(files):
        load = load_file(f)
        specs = rules_in_file(f)
        rep.results += unloadable_results(load, specs, rules)
        for spec in specs:
            if rules is not None and spec.name not in rules:
                continue
            if spec.line in load.errors:
                continue
            if spec.uses_relations and spec.skip_reason and not spec.no_equation:
                # a relation other rules compute: checked in an e-graph with those rules
                from .egraph_mode import check_rule_in_egraph
                r = check_rule_in_egraph(spec, specs, load, examples=max(4, examples // 10), seed=seed)
            else:
                r = check_rule(spec, examples=examples, seed=seed, max_depth=max_depth)
            rep.results.append(r)
            if progress:
                progress(r)
    rep.seconds = time.perf_counter() - t0
    return rep


def unloadable_results(load, specs, rules=None, mode: str = "direct") -> list[RuleResult]:
    """One ``unloadable`` result per form of the file that egglog refuses."""
    out = []
    byline = {s.line: s for s in specs}
    for line, (form, msg) in sorted(load.errors.items()):
        spec = byline.get(line)
        name = spec.name if spec else form_name(form)
        if rules is not None and spec is not None and name not in rules:
            continue
        out.append(RuleResult(name, spec.ruleset if spec else "", form.file, line, "unloadable",
                              reason=msg, mode=mode))
    return out


def check_rules_egraph(*args, **kwargs):
    """The e-graph mode (see :mod:`eqsat_ad.rulecheck.egraph_mode`)."""
    from .egraph_mode import check_rules_egraph as f
    return f(*args, **kwargs)


EXIT_STATUS = """\
exit status:
  0  every rule was checked and is sound (rules that add no equality have nothing to check)
  1  a rule is unsound (the report gives a counterexample and the rule's file:line)
  2  a file cannot be read, is refused by the allowlist, or egglog refuses one of its forms
     (an unloadable rule: the file could not be used by optimize either)
  3  a rule could not be checked (skipped, with the reason); --allow-skips makes this 0
  The first that applies wins, in the order 2, 1, 3.

examples:
  eqsat-ad rules check                                  # every shipped rule (about a minute)
  eqsat-ad rules check rules/comm.egg --rule mul-comm   # one shipped rule
  eqsat-ad rules check docs/tutorial/square.egg --mode both
  eqsat-ad rules check --json - > report.json           # the report as JSON on stdout

A progress bar (one step per rule) is shown on stderr when it is a terminal."""


def _shipped_or_given(name: str) -> str:
    """``rules/NAME.egg`` names a shipped rule file from any directory (as for the other
    commands), unless a file of that name exists here."""
    if Path(name).exists():
        return name
    from ..cli.args import shipped_rule_file
    shipped = shipped_rule_file(name)
    return str(shipped) if shipped is not None else name


class _bar:
    """A progress bar on stderr (a terminal only) over the rules (or rulesets) to check; the
    ``with`` value is the ``progress(result)`` callback of :func:`check_rules`."""

    def __init__(self, files, only, desc: str, unit: str, rulesets: bool = False):
        from ..progress import _is_tty, counter
        self.bar = None
        if not _is_tty(sys.stderr):
            return
        try:
            total: set | int = set() if rulesets else 0
            for f in _files(files):
                for spec in rules_in_file(f):
                    if only is None or spec.name in only:
                        if rulesets:
                            total.add((str(f), spec.ruleset))  # type: ignore[union-attr]
                        else:
                            total += 1  # type: ignore[operator]
            n = len(total) if rulesets else total
        except Exception:  # noqa: BLE001 - the check itself reports unreadable files
            n = None
        self.bar = counter(n, desc, unit)

    def __enter__(self):
        if self.bar is None:
            return None
        bar = self.bar

        def tick(result) -> None:
            bar.set_postfix_str(str(getattr(result, "name", "")), refresh=False)
            bar.update()
        return tick

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: list[str] | None = None) -> int:
    """``eqsat-ad rules check [FILES]``; the exit status is in :data:`EXIT_STATUS`: 0 all
    checked and sound, 1 a rule unsound, 2 a bad file or a rule egglog refuses, 3 a rule
    skipped (could not be checked; 0 with ``--allow-skips``)."""
    from ..errors import EqsatError
    ap = argparse.ArgumentParser(prog="eqsat-ad rules check",
                                 description="Check rewrite rules for soundness on random instances.",
                                 epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="rule files (default: the shipped rules/*.egg)")
    ap.add_argument("--examples", type=int, default=100, help="instances per rule (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rule", action="append", help="check only this rule (repeatable)")
    ap.add_argument("--mode", choices=("direct", "egraph", "both"), default="direct",
                    help="direct: instantiate both sides; egraph: run each ruleset on random terms "
                         "in an e-graph and compare every extracted variant")
    ap.add_argument("--json", metavar="OUT", help="write the report as JSON to OUT ('-': stdout, "
                    "and the summary goes to stderr)")
    ap.add_argument("--allow-skips", action="store_true",
                    help="rules that could not be checked (skipped) do not fail the run")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every rule")
    a = ap.parse_args(argv)
    files = [_shipped_or_given(f) for f in a.files] or None
    reports = []
    try:
        if a.mode in ("direct", "both"):
            with _bar(files, a.rule, "rules check", "rule") as tick:
                reports.append(check_rules(files, examples=a.examples, seed=a.seed, rules=a.rule,
                                           progress=tick))
        if a.mode in ("egraph", "both"):
            with _bar(files, a.rule, "rules check (e-graph)", "ruleset", rulesets=True) as tick:
                reports.append(check_rules_egraph(files, examples=max(4, a.examples // 10), seed=a.seed,
                                                  rules=a.rule, progress=tick))
    except EqsatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary_out = sys.stderr if a.json == "-" else sys.stdout
    for rep in reports:
        print(rep.summary(verbose=a.verbose), file=summary_out)
    if a.json:
        text = json.dumps([r.to_dict() for r in reports], indent=1, default=str)
        if a.json == "-":
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        else:
            Path(a.json).write_text(text)
    codes = [r.exit_status(a.allow_skips) for r in reports]
    return next((c for c in (2, 1, 3) if c in codes), 0)
