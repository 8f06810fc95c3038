"""Rule and schedule files come from users: hostile ones are refused, at every entry point,
before egglog runs any of their text.

The catalogue is ``tests/data/hostile/`` (one attack per file; ``*.sched.egg`` are schedule
files) plus two files made here (100 000 nested parentheses; a file over the size cap).  Each
file says in its first lines what it expects:

* ``;; expect: LINE NAME`` -- the refusal names ``FILE:LINE:`` and the form ``NAME``;
* ``;; real: top|rules|schedule`` -- the attack works on a bare egglog e-graph (creates the
  sentinel file), so the catalogue is known to bite (:func:`test_the_attacks_are_real`).

The placeholders ``SENTINEL`` (a file the attack would create) and ``INCLUDED`` (an egglog file
that would create it) are filled in with paths under ``tmp_path``; the tests run there too, so
relative paths land there.  Every file goes through every entry point: ``ea.optimize(rules=)``,
``EGraphSession.load_rules``, ``eqsat-ad optimize --rules``, ``eqsat-ad explain --rules``,
``eqsat-ad rules check --mode egraph|direct``, ``ea.optimize(schedule=)``, ``load_schedule``
and ``eqsat-ad optimize --schedule``.  Each must end in a ``RuleFileError`` (exit code 1 or 2 on
the command line, one line, no traceback), and the sentinel must not exist.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import eqsat_ad as ea
from eqsat_ad.cli import main
from eqsat_ad.egraph.eggtext import MAX_DEPTH, MAX_FILE_BYTES
from eqsat_ad.egraph.session import SCHEMA_FILES, EGraphSession
from eqsat_ad.errors import RuleFileError
from eqsat_ad.strategy.schedule_file import load_schedule

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "data" / "hostile"
SUMSQ = str(ROOT / "docs" / "examples" / "sumsq.ad")
SUM = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))")
GENERATED = ("deep_nesting.egg", "huge.egg")
CATALOGUE = sorted(p.name for p in HOSTILE.glob("*.egg")) + list(GENERATED)


def _expectation(text: str) -> tuple[int | None, str]:
    m = re.search(r"^;; expect: (\d+) (\S+)$", text, re.M)
    assert m, "a catalogue file starts with ';; expect: LINE NAME'"
    return int(m.group(1)), m.group(2)


class Case:
    """One catalogue file, copied to ``tmp_path`` with its placeholders filled in."""

    def __init__(self, name: str, tmp_path: Path):
        self.name = name
        self.sentinel = tmp_path / "sentinel"
        self.included = tmp_path / "included.egg"
        self.included.write_text(f"(py-exec \"open('{self.sentinel}','w').write('pwned')\" (py-dict) (py-dict))\n")
        self.path = tmp_path / name
        if name == "deep_nesting.egg":
            self.path.write_bytes(b"(" * 100_000)
            self.line, self.what = 1, "nested deeper"
        elif name == "huge.egg":
            with open(self.path, "wb") as fh:
                line = b";; " + b"x" * 1021 + b"\n"
                for _ in range(MAX_FILE_BYTES // len(line) + 2):
                    fh.write(line)
                fh.write(b"(ruleset r)\n")
            self.line, self.what = None, "larger than"
        else:
            # bytes, not text: some files hold \r and other odd whitespace on purpose
            raw = (HOSTILE / name).read_bytes()
            raw = raw.replace(b"SENTINEL", str(self.sentinel).encode())
            raw = raw.replace(b"INCLUDED", str(self.included).encode())
            self.path.write_bytes(raw)
            self.line, self.what = _expectation(raw.decode())
        self.is_schedule = name.endswith(".sched.egg")

    def located(self, message: str, own_kind: bool) -> None:
        """The message names the file and a line; for the file's own kind of entry point, the
        expected line and form."""
        assert str(self.path) in message, message
        if self.line is None:
            assert self.what in message, message
        elif own_kind:
            assert re.search(rf"{re.escape(str(self.path))}:{self.line}:\d+: ", message), message
            assert self.what in message, message
        else:
            assert re.search(rf"{re.escape(str(self.path))}:\d+", message), message


@pytest.fixture
def case(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Case(request.param, tmp_path)
    yield c
    assert not c.sentinel.exists(), f"{c.name}: the attack ran"


# -- Python entry points ---------------------------------------------------------------------

def _optimize_rules(path):
    ea.optimize(SUM, sizes={"n": 3}, rules=[path], check=False)


def _load_rules(path):
    EGraphSession(rule_files=[]).load_rules(path)


def _optimize_schedule(path):
    ea.optimize(SUM, sizes={"n": 3}, schedule=path, check=False)


PYTHON_ENTRY_POINTS = {"optimize(rules=)": (_optimize_rules, "rules"),
                       "load_rules": (_load_rules, "rules"),
                       "optimize(schedule=)": (_optimize_schedule, "schedule"),
                       "load_schedule": (load_schedule, "schedule")}


@pytest.mark.parametrize("entry", list(PYTHON_ENTRY_POINTS))
@pytest.mark.parametrize("case", CATALOGUE, indirect=True)
def test_python_entry_points_refuse(case, entry):
    fn, kind = PYTHON_ENTRY_POINTS[entry]
    with pytest.raises(RuleFileError) as err:
        fn(case.path)
    case.located(str(err.value), own_kind=(kind == "schedule") == case.is_schedule)


# -- command-line entry points ---------------------------------------------------------------------

CLI_ENTRY_POINTS = {"optimize --rules": (["optimize", SUMSQ, "--grad", "x", "--rules"], "rules"),
                    "explain --rules": (["explain", SUMSQ, "--grad", "x", "--rules"], "rules"),
                    "rules check --mode egraph": (["rules", "check", "--mode", "egraph", "--examples", "4"], "rules"),
                    "rules check --mode direct": (["rules", "check", "--mode", "direct", "--examples", "4"], "rules"),
                    "optimize --schedule": (["optimize", SUMSQ, "--grad", "x", "--no-check", "--schedule"],
                                            "schedule")}


@pytest.mark.parametrize("entry", list(CLI_ENTRY_POINTS))
@pytest.mark.parametrize("case", CATALOGUE, indirect=True)
def test_command_line_refuses(case, entry, capsys):
    argv, kind = CLI_ENTRY_POINTS[entry]
    rc = main(argv + [str(case.path)])
    out, err = capsys.readouterr()
    assert rc in (1, 2), (rc, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    case.located(lines[0], own_kind=(kind == "schedule") == case.is_schedule)


# -- the catalogue bites -----------------------------------------------------------------------------

REAL = [n for n in CATALOGUE if n not in GENERATED and re.search(r"^;; real: ", (HOSTILE / n).read_text(), re.M)]
SEEDS = ('(let $s1 (Num 1.0)) (let $s2 (Var "x")) (let $s3 (Input ")) (ruleset ok")) (let $s4 (Var "a\\\\"))'
         " (run-schedule (repeat 2 (run evil)))")


@pytest.mark.parametrize("name", REAL)
def test_the_attacks_are_real(name, tmp_path, monkeypatch):
    """Fed to a bare egglog e-graph (the schema loaded, no checks), the attack creates the
    sentinel: the refusals above are what stands between a user's file and Python."""
    from egglog import bindings
    monkeypatch.chdir(tmp_path)
    c = Case(name, tmp_path)
    kind = re.search(r"^;; real: (\w+)", c.path.read_bytes().decode(), re.M).group(1)
    eg = bindings.EGraph()
    for f in SCHEMA_FILES:
        eg.run_program(*eg.parse_program(f.read_text()))
    if kind == "schedule":
        eg.run_program(*eg.parse_program("(ruleset ring)"))
    for text in [c.path.read_bytes().decode()] + ([SEEDS] if kind == "rules" else []):
        try:
            eg.run_program(*eg.parse_program(text))
        except BaseException:   # noqa: BLE001 - many attacks error (or panic) after the harm is done
            pass
    assert c.sentinel.exists()


# -- the reader and the gateway on their own -------------------------------------------------------------

def test_deep_nesting_is_refused_without_recursion(tmp_path):
    f = tmp_path / "deep.egg"
    f.write_text("(rule (" + "(Neg " * 5_000 + "))")
    with pytest.raises(RuleFileError, match=rf"deep.egg:1:\d+: nested deeper than {MAX_DEPTH} levels"):
        EGraphSession(rule_files=[]).load_rules(f)


def test_gateway_refuses_py_calls_even_in_internal_text():
    s = EGraphSession(rule_files=[])
    with pytest.raises(ea.EqsatError, match="py-eval"):
        s.run_text('(let $x (py-eval "1" (py-dict) (py-dict)))')
    with pytest.raises(ea.EqsatError, match="UnstableFn"):
        s.run_text('(sort F (UnstableFn (i64) i64))')
    with pytest.raises(ea.EqsatError, match="unstable-fn"):
        s.run_text('(let $f (unstable-fn "py-dict"))')
    s.run_text('(let $ok (Input "py-x"))')      # a string is data, not a call


def test_rule_file_forms_are_allowlisted_at_the_gateway_itself():
    """Code that loads a rule file form by form (the rule checker does) gets the same checks."""
    from eqsat_ad.egraph.eggtext import split_forms
    s = EGraphSession(rule_files=[])
    forms = split_forms('(relation seen (Term))\n(rule ((seen e)) ((let y (py-eval "1" (py-dict) (py-dict)))))\n'
                        '(check (seen (Num 1.0)))', "f.egg")
    s._run_forms(forms[:1], user_file=True)
    assert "seen" in s.vocabulary.functions
    with pytest.raises(RuleFileError, match=r"f.egg:2:27: 'py-eval' is not allowed"):
        s._run_forms(forms[1:2], user_file=True)
    with pytest.raises(RuleFileError, match=r"f.egg:3:1: .*not 'check'"):
        s._run_forms(forms[2:], user_file=True)


def test_until_names_are_checked_when_the_schedule_runs(tmp_path):
    """Names a schedule file cannot know yet are checked against the loaded rule files."""
    rules = tmp_path / "mine.egg"
    rules.write_text("(ruleset mine)\n(relation done (Term))\n(rewrite (Neg (Neg a)) a :ruleset mine)\n")
    sched = tmp_path / "s.egg"
    sched.write_text(";; @phase p iterations=3\n(run-schedule (run mine :until (done (Num 1.0))))\n")
    ea.optimize(SUM, sizes={"n": 3}, rules=[rules], schedule=sched, check=False)
    sched.write_text(";; @phase p iterations=3\n(run-schedule (run mine :until (nosuch (Num 1.0))))\n")
    with pytest.raises(RuleFileError, match=r"s.egg:2:33: Unbound function nosuch"):
        ea.optimize(SUM, sizes={"n": 3}, rules=[rules], schedule=sched, check=False)


def test_a_user_rule_file_may_use_what_the_allowlist_allows(tmp_path):
    f = tmp_path / "ok.egg"
    f.write_text(""";; everything a rule file may contain
(ruleset mine)
(sort Names (Set String))
(relation seen (Term))
(function depth (Term) i64 :merge (max old new))
(function names (Term) Names :merge (set-intersect old new))
(constructor Twice (Term) Term :cost 5 :unextractable)
(rule (;c
       (= e (Neg a)) (= d (depth a)) (< d 10))
      ((set (depth e) (+ d 1)) (seen e) (let t (Neg e)) (union t t) (subsume (Twice e)) (delete (seen t)))
      :ruleset mine :name "depth")
(rewrite (Neg (Neg a)) a :when ((seen a) (!= a (Num 0.0))) :ruleset mine :subsume :name "nn")
(birewrite (Add a b) (Add b a) :ruleset mine :name "ab")
(unstable-combined-ruleset mine2 mine ring)
""")
    s = EGraphSession()
    assert "mine" in s.load_rules(f)
    assert {"seen", "depth", "names", "Twice"} <= s.vocabulary.functions


# -- our reader cuts text where egglog does ------------------------------------------------------------

_PIECES = ["(", ")", "(", ")", '"', "\\", "\\\\", '\\"', ";", "\n", " ", "\t", "\x1c", "\u3000", "\u00a0",
           "Neg", "py-x", 'a"b', "(Input ", '"s"', "x", "1"]


def _egglog_calls(commands) -> list[str]:
    """The names of the calls in egglog's own parse, depth first, left to right."""
    from eqsat_ad.egraph.egglog_compat import _BINDING_TYPES
    out: list[str] = []

    def walk(obj):
        if isinstance(obj, (list, tuple)):
            for x in obj:
                walk(x)
        elif isinstance(obj, _BINDING_TYPES):
            if type(obj).__name__ == "Call":
                out.append(obj.name)
                walk(obj.args)
                return
            for attr in ("action", "rhs", "expr", "args"):
                if hasattr(obj, attr) and attr != "span":
                    walk(getattr(obj, attr))
    walk(commands)
    return out


def _our_calls(node) -> list[str]:
    from eqsat_ad.egraph.eggtext import SList
    if not isinstance(node, SList) or not node.items:
        return []           # an atom, or () (egglog's unit literal)
    return [node.head or "?"] + [h for x in node.items[1:] for h in _our_calls(x)]


def test_the_reader_agrees_with_egglog_on_tricky_text():
    """Random text around quotes, escapes, comments and odd whitespace, as the argument of a
    global: wherever egglog reads it, our reader reads the same calls (so the allowlist sees
    what egglog would run)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from egglog import bindings
    from eqsat_ad.egraph.eggtext import split_forms

    @settings(max_examples=400, deadline=None, database=None)
    @given(st.lists(st.sampled_from(_PIECES), max_size=14))
    def check(pieces):
        text = "(let $g (Neg " + "".join(pieces) + "))\n"
        try:
            commands = bindings.EGraph().parse_program(text)
        except BaseException:   # noqa: BLE001 - not egglog text: nothing to compare
            return
        try:
            forms = split_forms(text, "t.egg")
        except RuleFileError:
            return          # stricter than egglog is safe (only the converse would not be)
        ours = [h for f in forms for h in _our_calls(f.tree.items[2] if f.tree.head == "let" else f.tree)]
        assert ours == _egglog_calls(commands), text
    check()
