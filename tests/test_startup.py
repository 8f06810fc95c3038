"""Fast start: ``import eqsat_ad`` and ``eqsat-ad --version`` load neither egglog nor scipy nor
matplotlib (public names are imported on first use, PEP 562), and every public name resolves.

No timing assertions (the machine's load varies): what is imported is checked instead, in a
fresh process.  ``benchmarks/bench_startup.py`` measures the times.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import eqsat_ad as ea

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("egglog", "scipy", "matplotlib", "tqdm")


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON value, returned."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_module():
    got = _fresh("import sys, json, eqsat_ad; "
                 f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert got == []


def test_parse_and_grad_load_no_egglog():
    got = _fresh("import sys, json, eqsat_ad as ea\n"
                 "p = ea.parse('(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))')\n"
                 "g = ea.grad(p, 'x')\n"
                 "print(json.dumps(['egglog' in sys.modules, ea.show_program(g)[:4]]))")
    assert got == [False, "(fun"]


def test_version_command_loads_no_heavy_module():
    got = _fresh("import sys, json, io, contextlib\n"
                 "from eqsat_ad.cli import main\n"
                 "buf = io.StringIO()\n"
                 "with contextlib.redirect_stdout(buf):\n"
                 "    rc = main(['--version'])\n"
                 f"print(json.dumps([rc, buf.getvalue().strip(), [m for m in {HEAVY!r} if m in sys.modules]]))")
    assert got == [0, f"eqsat-ad {ea.__version__}", []]


def test_every_name_in_all_resolves():
    assert len(ea.__all__) == len(set(ea.__all__))
    for name in ea.__all__:
        assert getattr(ea, name) is not None, name
    assert "__version__" in ea.__all__


def test_all_and_dir_agree_with_the_lazy_table():
    import builtins
    assert set(ea.__all__) == {n for n in ea._LAZY if not hasattr(builtins, n)} | {"__version__"}
    d = dir(ea)
    for name in ea.__all__:
        assert name in d, name
    for sub in ("ad", "backend", "lang", "frontend", "cli"):
        assert sub in d


def test_lazy_table_points_at_the_defining_modules():
    import importlib
    for name, mod in ea._LAZY.items():
        assert hasattr(importlib.import_module(mod, "eqsat_ad"), name), (name, mod)


def test_documented_names_work():
    p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))")
    assert isinstance(p, ea.Program)
    assert callable(ea.optimize) and callable(ea.compile) and callable(ea.grad)
    assert isinstance(ea.ad, type(sys))                         # sub-packages as attributes
    with pytest.raises(AttributeError):
        ea.no_such_name  # noqa: B018


def test_star_import():
    """``from eqsat_ad import *`` gives the API and leaves Python's builtins alone (as NumPy's
    does): ``sum``, ``max``, ``compile`` ... stay Python's; ``ea.sum`` is ours."""
    got = _fresh("import json, builtins\nfrom eqsat_ad import *\n"
                 "print(json.dumps([callable(parse), callable(optimize), callable(grad_fn),"
                 " sum is builtins.sum, max is builtins.max, compile is builtins.compile]))")
    assert got == [True, True, True, True, True, True]


def test_importing_the_submodule_keeps_the_function():
    """``eqsat_ad.optimize`` is a function and a sub-module: importing the sub-module first
    (as the command line does) must not replace the function."""
    got = _fresh("import json, eqsat_ad.optimize, eqsat_ad.backend\n"
                 "from eqsat_ad.optimize import check_agrees\n"
                 "import eqsat_ad as ea\n"
                 "print(json.dumps([callable(ea.optimize), type(ea.optimize).__name__, callable(ea.compile)]))")
    assert got == [True, "function", True]


def test_one_call_functions_are_public():
    """The one-call functions (``eqsat_ad/functions.py``) are on ``ea.`` and lazy too."""
    for name in ("grad_fn", "value_and_grad_fn", "jvp_fn"):
        assert name in ea.__all__ and callable(getattr(ea, name)), name
