"""Every code example in the docs runs.

For each ``docs/*.md`` and ``README.md`` (in a scratch directory that links ``docs/``,
``benchmarks/``, ``eqsat_ad/`` and ``README.md``, so examples may write files):

* ```` ```python ```` blocks run in order in one namespace per file; a block made of ``>>>``
  prompts is run as a doctest (ELLIPSIS, NORMALIZE_WHITESPACE).
* ```` ```console ````/````sh````/````shell````/````bash```` blocks: each ``$ eqsat-ad ...`` line runs
  through ``eqsat_ad.cli.main``; the lines after it (up to the next ``$``) are its expected
  output (stdout then stderr), compared like a doctest (``...`` matches anything).  The exit
  code must be 0, or N when the shown output ends with a line ``(exit status N)``, or
  non-zero when the shown output holds ``eqsat-ad: error:``.  Other ``$`` commands (pip, python, dot) are not run.
* ```` ```egg file=PATH ```` (any language) blocks must equal the file ``PATH`` (so the tutorial shows the
  real tutorial files).
* A block preceded by ``<!-- no-test -->`` (or ``<!-- no-test: why -->``) is not run.

``docs/rules.md`` is generated; the last test checks it is in sync with ``eqsat_ad/rules/*.egg``.
"""
from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted((ROOT / "docs").glob("*.md")) + ([ROOT / "README.md"] if (ROOT / "README.md").exists() else [])
SHELL_LANGS = {"console", "sh", "shell", "bash", "shell-session"}
LINKED = ("docs", "benchmarks", "README.md", "pyproject.toml", "eqsat_ad")

# Blocks in files other people own that are known not to run as written: (file, first line of
# the block's code) -> reason.  They are reported as xfail, not hidden; fix the doc and drop
# the entry (or mark the block <!-- no-test: why -->).
KNOWN_BROKEN: dict[tuple[str, int], str] = {}


@dataclass
class Block:
    lang: str
    info: str
    code: str
    line: int           # 1-based line of the first code line
    skip: bool


_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$")


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang, info = m.groups()
        prev = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        skip = prev.startswith("<!-- no-test")
        body = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""):
            ln = lines[j]
            body.append(ln[len(indent):] if ln.startswith(indent) else ln.lstrip())
            j += 1
        out.append(Block(lang.lower(), info.strip(), "\n".join(body) + "\n", i + 2, skip))
        i = j + 1
    return out


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    for name in LINKED:
        src = ROOT / name
        if src.exists():
            (tmp_path / name).symlink_to(src)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    return tmp_path


_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def output_matches(want: str, got: str) -> bool:
    return _CHECKER.check_output(want, got, _FLAGS)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    from eqsat_ad.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def shell_commands(code: str) -> list[tuple[str, str]]:
    """``[(command, expected output), ...]`` of a console block (``$ `` prompts)."""
    cmds: list[tuple[str, list[str]]] = []
    for ln in code.splitlines():
        if ln.startswith("$ "):
            cmds.append((ln[2:].strip(), []))
        elif cmds:
            cmds[-1][1].append(ln)
    out = []
    for cmd, exp in cmds:
        while cmd.endswith("\\") and exp:           # continuation lines
            cmd = cmd[:-1] + " " + exp.pop(0).strip()
        out.append((cmd, "\n".join(exp).strip("\n") + ("\n" if any(x.strip() for x in exp) else "")))
    return out


_EXIT = re.compile(r"^\(exit status (\d+)\)\s*\Z", re.M)


def run_shell_block(b: Block, where: str) -> int:
    ran = 0
    for cmd, want in shell_commands(b.code):
        words = shlex.split(cmd, comments=True)
        if not words or words[0] != "eqsat-ad":
            continue
        rc, out, err = run_cli(words[1:])
        ran += 1
        got = out + err
        ctx = f"{where}: $ {cmd}\n--- exit code {rc}; output:\n{got}\n--- expected:\n{want}"
        m = _EXIT.search(want)
        if m:                                   # "(exit status N)" as the last shown line
            want = want[:m.start()]
            assert rc == int(m.group(1)), ctx
        elif "eqsat-ad: error:" in want:
            assert rc != 0, ctx
        else:
            assert rc == 0, ctx
        if want.strip():
            assert output_matches(want, got), ctx
    return ran


def run_python_block(b: Block, ns: dict, where: str) -> None:
    code = b.code
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, ns, where, where, b.line - 1)
        runner = doctest.DocTestRunner(optionflags=_FLAGS)
        out = io.StringIO()
        runner.run(test, out=out.write, clear_globs=False)
        ns.update(test.globs)
        assert runner.failures == 0, out.getvalue()
        return
    compiled = compile("\n" * (b.line - 1) + code, where.split(":")[0], "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compiled, ns)


def _id(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("doc", DOC_FILES, ids=_id)
def test_doc_examples_run(doc: Path, scratch):
    rel = _id(doc)
    ns: dict = {"__name__": f"doc:{rel}"}
    failures = []
    for b in blocks_of(doc):
        where = f"{rel}:{b.line}"
        if b.skip:
            continue
        known = KNOWN_BROKEN.get((rel, b.line))
        try:
            if b.lang == "python":
                run_python_block(b, ns, where)
            elif b.lang in SHELL_LANGS:
                run_shell_block(b, where)
            elif b.info.startswith("file="):
                path = ROOT / b.info.split("=", 1)[1].strip()
                assert path.exists(), f"{where}: the block shows {path}, which does not exist"
                assert b.code.strip() == path.read_text().strip(), \
                    f"{where}: the block differs from {path.relative_to(ROOT)}"
        except Exception as e:  # noqa: BLE001 -- collect every failing block of the file
            if known:
                continue
            failures.append(f"{where} ({b.lang} block): {type(e).__name__}: {e}")
        else:
            if known:
                failures.append(f"{where}: listed in KNOWN_BROKEN ({known}) but runs now: drop the entry")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_shell_block_parser():
    code = textwrap.dedent("""\
        $ eqsat-ad rules list \\
            rules/ring.egg   # a comment
        ring  (...)
        ...
        $ pip install eqsat-ad
        """)
    cmds = shell_commands(code)
    assert cmds[0][0].split() == ["eqsat-ad", "rules", "list", "rules/ring.egg", "#", "a", "comment"]
    assert cmds[0][1] == "ring  (...)\n...\n"
    assert cmds[1] == ("pip install eqsat-ad", "")
    assert output_matches("ring  (...)\n...\n", "ring  (rules/ring.egg:7, 32 rules)\n  more\n")


def test_known_broken_entries_are_current():
    """Every KNOWN_BROKEN entry still names a block (else it is stale: drop it)."""
    for (rel, line), why in KNOWN_BROKEN.items():
        assert any(b.line == line for b in blocks_of(ROOT / rel)), f"stale KNOWN_BROKEN entry {rel}:{line}"


def test_every_doc_has_runnable_examples_or_none():
    """The user-facing guides show commands and code, and every such block is tested here."""
    for name in ("tutorial.md", "cli.md", "strategies.md"):
        path = ROOT / "docs" / name
        if not path.exists():
            pytest.fail(f"docs/{name} is missing")
        langs = {b.lang for b in blocks_of(path) if not b.skip}
        assert langs & ({"python"} | SHELL_LANGS), f"docs/{name} has no tested example"


def test_docs_index_links_every_doc():
    index = (ROOT / "docs" / "index.md").read_text()
    for p in sorted((ROOT / "docs").glob("*.md")):
        if p.name != "index.md":
            assert f"({p.name})" in index, f"docs/index.md does not link {p.name}"


def test_rules_doc_in_sync():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_rules_doc
    finally:
        sys.path.pop(0)
    want = gen_rules_doc.render()
    got = (ROOT / "docs" / "rules.md").read_text()
    assert got == want, "docs/rules.md is out of date: run  python tools/gen_rules_doc.py"


