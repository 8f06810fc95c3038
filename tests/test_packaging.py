"""Install it like any package: every file the package reads at run time is inside it and
named by the wheel's package data; the command line's small promises (help, ``--json -``).

The real proof is ``tools/wheel_smoke.sh`` (a wheel in a fresh venv, used from another
directory), which CI runs after the tests; these checks are the fast part of it.
"""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from eqsat_ad.cli import main

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "eqsat_ad"


def _package_data() -> list[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return cfg["tool"]["setuptools"]["package-data"]["eqsat_ad"]


def _shipped(rel: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g.replace("**/", "")) for g in globs)


def test_every_data_file_is_package_data():
    globs = _package_data()
    data = [p.relative_to(PKG).as_posix() for p in PKG.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data, "no data files found"
    missing = [d for d in data if not _shipped(d, globs)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_runtime_files_live_inside_the_package():
    from eqsat_ad.bench.worker import user_schedule_path
    from eqsat_ad.bench.workers import PEER_DIR
    from eqsat_ad.cost.model import OPCOSTS_JSON
    from eqsat_ad.egraph.session import default_rule_files
    files = list(default_rule_files()) + [OPCOSTS_JSON, user_schedule_path(),
                                          PEER_DIR / "jax_worker.py", PEER_DIR / "torch_worker.py"]
    for f in files:
        assert f.is_file(), f
        assert PKG.resolve() in Path(f).resolve().parents, f"{f} is outside the package"
    assert not (ROOT / "rules").exists(), "rules/ at the top level again"


def test_ci_runs_the_readme_test_command_then_the_wheel_smoke():
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if not ln.startswith("#")]
    readme = (ROOT / "README.md").read_text()
    cmd = next(ln for ln in ci if "pytest" in ln)
    assert cmd in readme, "the README's test command must be exactly what CI runs"
    smoke = next(i for i, ln in enumerate(ci) if "tools/wheel_smoke.sh" in ln)
    assert smoke > ci.index(cmd)
    script = ROOT / "tools" / "wheel_smoke.sh"
    text = script.read_text()
    for need in ("pip wheel", "-m venv", "eqsat_ad.demo", "eqsat-ad\" demo", "optimize prog.ad --grad x"):
        assert need in text, need


def test_bench_help_is_a_help_not_a_docstring(capsys):
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out
    assert "examples:" in out and "eqsat-ad bench --quick" in out
    assert out.count("usage:") == 1


def test_rules_check_help_has_examples(capsys):
    assert main(["rules", "check", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and out.count("usage:") == 1


_INPUT = re.compile(r"\.(ad|egg)$")


def _help_examples(capsys) -> list[list[str]]:
    cmds = [[], ["optimize"], ["run"], ["explain"], ["rules"], ["rules", "list"], ["rules", "check"],
            ["bench"], ["schedule"], ["schedule", "show"], ["demo"]]
    lines = []
    for words in cmds:
        main(words + ["--help"])
        text = capsys.readouterr().out.replace("\\\n", " ")
        lines += [ln.split("#")[0] for ln in text.splitlines() if ln.strip().startswith("eqsat-ad ")]
    assert len(lines) > 10
    return [shlex.split(ln) for ln in lines]


def test_help_examples_name_files_that_exist(capsys):
    from eqsat_ad.cli.args import shipped_rule_file
    for argv in _help_examples(capsys):
        for tok in argv:
            tok = tok.split("=", 1)[-1]
            if _INPUT.search(tok):
                assert (ROOT / tok).is_file() or shipped_rule_file(tok) is not None, \
                    f"`{' '.join(argv)}` names {tok}, which does not exist"


def test_rules_check_json_dash_is_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["rules", "check", "rules/tuple.egg", "--examples", "5", "--json", "-"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)                     # stdout is the JSON alone
    assert data[0]["ok"] and data[0]["results"]
    assert "sound" in err                      # the summary went to stderr
    assert not (tmp_path / "-").exists()


def test_optimize_json_dash_is_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["optimize", str(ROOT / "docs" / "examples" / "sumsq.ad"), "--grad", "x", "--json", "-"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out)["cost_after"] <= json.loads(out)["cost_before"]
    assert not (tmp_path / "-").exists()


_MISSING_REFS = re.compile(r"DESIGN\.md|reference/[\w-]+\.md|paper-notes|egglog-notes")


def _text_files():
    for base in ("eqsat_ad", "docs", "tests", "tools", "benchmarks"):
        for p in (ROOT / base).rglob("*"):
            if p.is_file() and p.suffix in (".py", ".md", ".egg", ".sh") and "results" not in p.parts:
                yield p
    yield ROOT / "README.md"


def test_no_pointer_to_files_the_repository_does_not_have():
    me = Path(__file__).resolve()
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in _text_files() if p.resolve() != me
           for i, ln in enumerate(p.read_text(errors="replace").splitlines(), 1) if _MISSING_REFS.search(ln)]
    assert not bad, f"cites a file that is not in the repository: {bad}"


def test_markdown_links_to_local_files_exist():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    bad = []
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in link.findall(p.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (p.parent / target).exists():
                bad.append(f"{p.relative_to(ROOT)} -> {target}")
    assert not bad, bad


@pytest.mark.parametrize("mod", ["eqsat_ad.strategy", "eqsat_ad.bench", "eqsat_ad.rulecheck"])
def test_sub_packages_are_regular_packages(mod):
    """A folder without ``__init__.py`` is not collected for doctests (and is easy to lose)."""
    import importlib
    m = importlib.import_module(mod)
    assert m.__file__ and m.__file__.endswith("__init__.py")
