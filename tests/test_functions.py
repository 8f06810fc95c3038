"""ea.grad_fn / value_and_grad_fn / jvp_fn: results against finite differences and hand-written
NumPy, specialisation per shape signature, the memory and disk caches, and errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad import functions
from eqsat_ad.errors import ADError, ShapeError, TypeCheckError
from eqsat_ad.testing import finite_difference_gradient

RNG = np.random.default_rng(3)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    """Each test gets its own disk cache and an empty memory cache."""
    monkeypatch.setenv(functions.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(functions, "_MEMORY", {})
    return tmp_path / "cache"


def central_grad(f, args, k, eps=1e-6):
    """Central finite differences of f(*args) wrt args[k], one coordinate at a time."""
    def at(v):
        a = list(args)
        a[k] = v
        return f(*a)
    return finite_difference_gradient(at, args[k], eps)


def least_squares(w, X, y):
    r = X @ w - y
    return ea.sum(r * r) / 2.0 + 0.1 * ea.sum(w * w)


def least_squares_np(w, X, y):
    r = X @ w - y
    return np.sum(r * r) / 2.0 + 0.1 * np.sum(w * w)


X = RNG.normal(size=(6, 3))
y = RNG.normal(size=6)
w = RNG.normal(size=3)


def test_grad_fn_of_a_python_function_matches_finite_differences_and_numpy():
    g = ea.grad_fn(least_squares)
    got = g(w, X, y)
    np.testing.assert_allclose(got, X.T @ (X @ w - y) + 0.2 * w, rtol=1e-10)
    np.testing.assert_allclose(got, central_grad(least_squares_np, (w, X, y), 0), rtol=1e-6, atol=1e-8)
    assert isinstance(g.program, ea.Program) and "def " in g.source
    assert g.report.cost_after <= g.report.cost_before
    spec = g.specializations[((3,), (6, 3), (6,))]
    assert spec.origin == "built" and spec.sizes == {"n": 3, "m": 6}


def test_same_shapes_reuse_new_shapes_specialise():
    g = ea.grad_fn(least_squares, wrt="X")
    a = g(w, X, y)
    b = g(w, X, y)
    np.testing.assert_array_equal(a, b)
    assert len(g.specializations) == 1
    X2, y2 = RNG.normal(size=(4, 3)), RNG.normal(size=4)
    np.testing.assert_allclose(g(w, X2, y2), central_grad(least_squares_np, (w, X2, y2), 1),
                               rtol=1e-6, atol=1e-8)
    assert len(g.specializations) == 2
    assert g.program is g.specializations[((3,), (4, 3), (4,))].program   # the latest one
    # keywords, lists and Python floats are accepted
    np.testing.assert_allclose(g(X=X.tolist(), w=w, y=y), a)


def test_several_wrt_give_a_tuple_and_value_and_grad_gives_the_value():
    g2 = ea.grad_fn(least_squares, wrt=("w", "y"))
    gw, gy = g2(w, X, y)
    np.testing.assert_allclose(gw, central_grad(least_squares_np, (w, X, y), 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gy, central_grad(least_squares_np, (w, X, y), 2), rtol=1e-6, atol=1e-8)
    g3 = ea.grad_fn(least_squares, wrt=(0, 1, 2))
    out = g3(w, X, y)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(3,), (6, 3), (6,)]
    np.testing.assert_allclose(out[1], central_grad(least_squares_np, (w, X, y), 1), rtol=1e-6, atol=1e-8)
    g1 = ea.grad_fn(least_squares, wrt=["w"])
    assert isinstance(g1(w, X, y), tuple) and len(g1(w, X, y)) == 1
    vg = ea.value_and_grad_fn(least_squares)
    v, gw2 = vg(w, X, y)
    assert v == pytest.approx(least_squares_np(w, X, y), rel=1e-12)
    np.testing.assert_allclose(gw2, gw, rtol=1e-10)
    vg3 = ea.value_and_grad_fn(least_squares, wrt=("w", "X", "y"))
    v3, grads = vg3(w, X, y)
    assert v3 == pytest.approx(v) and len(grads) == 3


def test_jvp_fn_takes_tangents_after_the_primals():
    j = ea.jvp_fn(least_squares, wrt="w")
    d = RNG.normal(size=3)
    eps = 1e-6
    fd = (least_squares_np(w + eps * d, X, y) - least_squares_np(w - eps * d, X, y)) / (2 * eps)
    assert j(w, X, y, d) == pytest.approx(fd, rel=1e-6)
    jp = ea.jvp_fn(least_squares, wrt="w", with_primal=True)
    v, t = jp(w, X, y, d)
    assert v == pytest.approx(least_squares_np(w, X, y)) and t == pytest.approx(fd, rel=1e-6)
    with pytest.raises(ShapeError, match="dw"):
        j(w, X, y, np.ones(4))


def test_programs_and_program_text_work_too():
    text = "(fun ((x (vec n)) (s real)) (* s (sum n (lambda (i) (exp (get x i))))))"
    x = RNG.normal(size=5)
    for f in (text, ea.parse(text)):
        g = ea.grad_fn(f, wrt=("x", "s"))
        gx, gs = g(x, 1.5)
        np.testing.assert_allclose(gx, 1.5 * np.exp(x), rtol=1e-12)
        assert gs == pytest.approx(np.exp(x).sum())
    with pytest.raises(ShapeError, match="'x'"):
        g(np.ones((2, 2)), 1.0)


def test_disk_cache_skips_the_optimiser_in_a_new_function(fresh, monkeypatch):
    g = ea.grad_fn(least_squares)
    want = g(w, X, y)
    files = list((fresh / "derivatives").glob("*.json"))
    assert len(files) == 1
    monkeypatch.setattr(functions, "_MEMORY", {})

    def no_optimiser(*a, **k):
        raise AssertionError("the optimiser ran although the disk cache has the program")
    monkeypatch.setattr(functions, "_build", no_optimiser)
    h = ea.grad_fn(least_squares)
    np.testing.assert_allclose(h(w, X, y), want, rtol=1e-12)
    spec = h.specializations[((3,), (6, 3), (6,))]
    assert spec.origin == "disk" and spec.cache_note == ""
    assert ea.show_program(h.program) == ea.show_program(g.program)
    assert h.report is not None and h.report.stop_reason == g.report.stop_reason
    # the memory cache: another function object in this process does not read the disk
    k = ea.grad_fn(least_squares)
    k(w, X, y)
    assert k.specializations[((3,), (6, 3), (6,))].origin == "memory"


def _corrupt(path: Path, how: str) -> None:
    entry = json.loads(path.read_text())
    if how == "garbage":
        path.write_text("{not json")
    elif how == "truncated":
        path.write_text(path.read_text()[:40])
    elif how == "program changed":          # damaged: the checksum no longer matches
        entry["program"] = entry["program"].replace("*", "+", 1)
        path.write_text(json.dumps(entry))
    elif how == "other parameters":         # a consistent entry for another program
        import hashlib
        entry["program"] = "(fun ((z real)) (* z z))"
        entry["program_sha256"] = hashlib.sha256(entry["program"].encode()).hexdigest()
        path.write_text(json.dumps(entry))
    elif how == "other format":
        entry["format"] = "something else"
        path.write_text(json.dumps(entry))


@pytest.mark.parametrize("how", ["garbage", "truncated", "program changed", "other parameters",
                                 "other format"])
def test_a_damaged_or_foreign_cache_entry_is_ignored_and_rebuilt(fresh, monkeypatch, how):
    g = ea.grad_fn(least_squares)
    want = g(w, X, y)
    (path,) = (fresh / "derivatives").glob("*.json")
    _corrupt(path, how)
    monkeypatch.setattr(functions, "_MEMORY", {})
    h = ea.grad_fn(least_squares)
    np.testing.assert_allclose(h(w, X, y), want, rtol=1e-12)
    spec = h.specializations[((3,), (6, 3), (6,))]
    assert spec.origin == "built" and spec.cache_note.startswith("ignored the disk cache entry")
    assert json.loads(path.read_text())["format"] == functions.CACHE_FORMAT     # rewritten
    assert not list((fresh / "derivatives").glob(".tmp-*"))


def test_the_cache_key_follows_options_and_the_cache_can_be_turned_off(fresh, monkeypatch, tmp_path):
    ea.grad_fn(least_squares)(w, X, y)
    ea.grad_fn(least_squares, extractor="tree")(w, X, y)
    ea.grad_fn(least_squares, limits={"iterations": 3})(w, X, y)
    assert len(list((fresh / "derivatives").glob("*.json"))) == 3
    other = tmp_path / "elsewhere"
    ea.grad_fn(least_squares, cache=other)(w, X, y)
    assert len(list((other / "derivatives").glob("*.json"))) == 1
    ea.grad_fn(least_squares, wrt="y", cache=False)(w, X, y)
    monkeypatch.setenv(functions.CACHE_ENV, "off")
    ea.grad_fn(least_squares, wrt="X")(w, X, y)
    assert len(list((fresh / "derivatives").glob("*.json"))) == 3
    assert functions.cache_dir() is None
    monkeypatch.delenv(functions.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert functions.cache_dir() == tmp_path / "xdg" / "eqsat-ad"


def test_processes_sharing_the_cache_directory(fresh):
    """Two processes build the same entry at once (atomic replace), a third reads it."""
    code = ("import numpy as np, eqsat_ad as ea\n"
            "def f(x):\n    return ea.sum(ea.exp(x) * x)\n"
            "g = ea.grad_fn(f)\nx = np.linspace(0, 1, 4)\n"
            "assert np.allclose(g(x), np.exp(x) * (1 + x))\n"
            "print(g.specializations[((4,),)].origin)\n")
    env = {**os.environ, functions.CACHE_ENV: str(fresh)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    third = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == "disk"


def test_errors_name_the_parameter():
    g = ea.grad_fn(least_squares)
    with pytest.raises(ShapeError, match=r"takes 3 argument\(s\) \(w, X, y\), got 2"):
        g(w, X)
    with pytest.raises(ShapeError, match="no parameter 'z'"):
        g(w, X, z=y)
    with pytest.raises(TypeError, match="parameter 'y'.*not an array of real numbers"):
        g(w, X, np.array(["a"] * 6))
    with pytest.raises(TypeCheckError, match=r"least_squares traced with shapes \(w: \(4,\), "
                                             r"X: \(6, 3\), y: \(6,\)\).*inner sizes"):
        g(np.ones(4), X, y)
    with pytest.raises(ADError, match="unknown parameter 'v'"):
        ea.grad_fn(least_squares, wrt="v")
    with pytest.raises(TypeError, match="unknown option"):
        ea.grad_fn(least_squares, sizes={"n": 3})
    with pytest.raises(ea.EqsatError, match="not been called yet"):
        ea.grad_fn(least_squares).program
    with pytest.raises(ADError, match="returns"):
        ea.grad_fn(lambda x: x * 2.0)(np.ones(3))


def test_a_derivative_function_pickles_without_what_it_built(fresh):
    import pickle
    g = ea.grad_fn(least_squares, wrt=("w", "y"))
    want = g(w, X, y)
    h = pickle.loads(pickle.dumps(g))
    assert h.specializations == {} and h.wrt == ("w", "y")
    got = h(w, X, y)
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])
    assert h.specializations[((3,), (6, 3), (6,))].origin in ("memory", "disk")


def test_the_cache_key_follows_rule_files_schedules_and_sizes(tmp_path):
    deriv = ea.grad(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))"), "x")
    rule = tmp_path / "mine.egg"
    rule.write_text("(ruleset mine)\n")
    key = functions._cache_key
    base = key(deriv, {"n": 10}, {})
    assert key(deriv, {"n": 10}, {}) == base
    assert key(deriv, {"n": 11}, {}) != base
    with_rule = key(deriv, {"n": 10}, {"rules": [rule]})
    assert with_rule != base
    rule.write_text("(ruleset mine)\n;; changed\n")
    assert key(deriv, {"n": 10}, {"rules": [rule]}) != with_rule
    assert key(deriv, {"n": 10}, {"schedule": "all"}) != base
    from eqsat_ad.strategy.defaults import default_schedule
    assert key(deriv, {"n": 10}, {"schedule": default_schedule()}) != base
    assert key(deriv, {"n": 10}, {"check": False}) != base
    assert key(deriv, {"n": 10}, {"default_rules": False}) != base
    model = ea.default_cost_model()
    model.default_size = 7
    assert key(deriv, {"n": 10}, {"cost_model": model}) != base
    assert key(ea.grad(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (sin (get x i)))))"), "x"),
               {"n": 10}, {}) != base


def test_the_gradient_of_max_and_min_is_linear_and_right():
    """ea.max is a (max acc e) fold: the extreme rules make its gradient an argmax."""
    g = ea.grad_fn(lambda x: ea.max(x) - 2.0 * ea.min(x))
    x = RNG.normal(size=50)
    want = (x == x.max()).astype(float) - 2.0 * (x == x.min())
    np.testing.assert_allclose(g(x), want)
    assert "argmax" in ea.show_program(g.program) and "ifold" not in ea.show_program(g.program)
