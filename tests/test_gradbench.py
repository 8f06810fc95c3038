"""eqsat-ad as a GradBench tool (eqsat_ad/gradbench): the protocol spoken through a pipe on
tiny inputs of every implemented eval, each output checked against a NumPy reference of the
eval (written here from GradBench's reference implementations) and the derivatives against
central finite differences of it; malformed messages; and the LSTM gradient of issue 12
(optimised, compiled) against the reference interpreter and finite differences."""
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.gradbench.evals import EVALS, multigammaln
from eqsat_ad.gradbench.tool import EXIT_PROTOCOL, Tool
from eqsat_ad.testing import central_difference, finite_difference_gradient


# -- NumPy references of the evals --------------------------------------------------------------

def ref_lse(x):
    m = x.max()
    return m + np.log(np.sum(np.exp(x - m)))


def ref_llsq(x, n):
    total = 0.0
    for i in range(n):
        t = -1.0 + i * 2.0 / (n - 1.0)
        muls = np.cumprod(np.r_[1.0, np.full(x.size - 1, t)])
        total += (np.sign(t) - np.sum(x * muls)) ** 2
    return total / 2.0


def ref_kmeans(P, C):
    return ((P[:, None, :] - C[None, :, :]) ** 2).sum(-1).min(1).sum()


def ref_kmeans_dir(P, C):
    a = ((P[:, None] - C[None]) ** 2).sum(-1).argmin(1)
    return np.array([(C[j] - P[a == j]).sum(0) / (a == j).sum() for j in range(C.shape[0])])


def ref_ode(x, s):
    def f(y):
        return np.where(np.arange(x.size) == 0, x, x * np.roll(y, 1))
    y, h = np.zeros_like(x), 2.0 / s
    for _ in range(s):
        k1 = f(y)
        k2 = f(y + h / 2 * k1)
        k3 = f(y + h / 2 * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def _lse_rows(a, axis):
    m = a.max(axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis, keepdims=True))).squeeze(axis)


def ref_gmm(alpha, mu, q, l, x, m, gamma):
    n, d = x.shape
    k = alpha.shape[0]
    Ls = np.zeros((k, d, d))
    rows = np.concatenate([np.arange(c + 1, d) for c in range(d - 1)]) if d > 1 else np.zeros(0, int)
    cols = np.repeat(np.arange(d - 1), np.arange(d - 1, 0, -1))
    Ls[:, rows, cols] = l
    xc = x[:, None, :] - mu[None]
    Lx = np.exp(q) * xc + np.einsum("ijk,mik->mij", Ls, xc)
    inner = alpha + q.sum(1) - 0.5 * (Lx ** 2).sum(2)
    nn = d + m + 1
    prior = (-np.sum(0.5 * gamma ** 2 * ((np.exp(q) ** 2).sum(1) + (l ** 2).sum(1)) - m * q.sum(1))
             + k * (nn * d * math.log(gamma / math.sqrt(2)) - multigammaln(0.5 * nn, d)))
    return (-n * d * 0.5 * math.log(2 * math.pi) + _lse_rows(inner, 1).sum()
            - n * _lse_rows(alpha, 0) + prior)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def ref_lstm(main, extra, state, seq):
    l, b = main.shape[0] // 2, state.shape[1]
    S, total = state.copy(), 0.0
    for t in range(seq.shape[0] - 1):
        x = seq[t] * extra[0]
        for j in range(l):
            w, bi, h, cl = main[2 * j], main[2 * j + 1], S[2 * j], S[2 * j + 1]
            cn = (cl * _sigmoid(x * w[:b] + bi[:b])
                  + _sigmoid(h * w[b:2 * b] + bi[b:2 * b]) * np.tanh(h * w[3 * b:] + bi[3 * b:]))
            S[2 * j + 1], S[2 * j] = cn, _sigmoid(x * w[2 * b:3 * b] + bi[2 * b:3 * b]) * np.tanh(cn)
            x = S[2 * j]
        yp = x * extra[1] + extra[2]
        total += np.sum(seq[t + 1] * (yp - np.log(np.sum(np.exp(yp)) + 2)))
    return -total / ((seq.shape[0] - 1) * b)


def ref_ba_residual(cam, X, w, feat):
    rot, Xo = cam[:3], X - cam[3:6]
    sq = rot @ rot
    if sq != 0:
        th = np.sqrt(sq)
        u = rot / th
        Xc = Xo * np.cos(th) + np.cross(u, Xo) * np.sin(th) + u * (u @ Xo) * (1 - np.cos(th))
    else:
        Xc = Xo + np.cross(rot, Xo)
    pr = Xc[:2] / Xc[2]
    rsq = pr @ pr
    return w * (pr * (1 + cam[9] * rsq + cam[10] * rsq * rsq) * cam[6] + cam[7:9] - feat)


def flat(v) -> np.ndarray:
    """Every number of a JSON value (objects in key order), as one float vector."""
    if isinstance(v, dict):
        return np.concatenate([flat(v[k]) for k in sorted(v)])
    return np.ravel(np.asarray(v, dtype=float))


def gradbench_close(expected, actual, tolerance=1e-4):
    """GradBench's own comparison (ADBench's): |x - y| / max(1, |x| + |y|) <= tolerance,
    element by element, same nesting and lengths."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(expected) == set(actual), (expected.keys(), actual)
        for k in expected:
            gradbench_close(expected[k], actual[k], tolerance)
        return
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    assert e.shape == a.shape, (e.shape, a.shape)
    assert isinstance(actual, list) if e.ndim else (isinstance(actual, (int, float)) and not isinstance(actual, bool))
    diff = np.abs(e - a) / np.clip(np.abs(e) + np.abs(a), 1, None)
    assert np.all(diff <= tolerance), (expected, actual)


# -- tiny inputs and their expected outputs ------------------------------------------------------

RNG = np.random.default_rng(12)
X6 = RNG.random(6)
PTS, CEN = RNG.random((9, 2)), RNG.random((3, 2))
GMM_IN = dict(alpha=RNG.normal(size=2), mu=RNG.uniform(size=(2, 3)), q=RNG.normal(size=(2, 3)),
              l=RNG.normal(size=(2, 3)), x=RNG.normal(size=(5, 3)))
LSTM_IN = dict(main_params=RNG.random((4, 12)), extra_params=RNG.random((3, 3)),
               state=RNG.random((4, 3)), sequence=RNG.integers(0, 2, (4, 3)).astype(float))
DET_A = RNG.random((4, 4))
BA_IN = {"n": 2, "m": 3, "p": 4, "cam": [-0.758453, -1.109613, -0.845551, 34.556073, 39.676747, 53.881673,
                                         419.194514, 5.864426, -8.518870, 0.087812, 0.002739],
         "x": [7.203245, 0.001144, 3.023326], "w": 0.417022, "feat": [271.760969, 834.209256]}


def _ba_expected_objective():
    r = ref_ba_residual(np.array(BA_IN["cam"]), np.array(BA_IN["x"]), BA_IN["w"], np.array(BA_IN["feat"]))
    return {"reproj_error": {"elements": r.tolist(), "repeated": 4},
            "w_err": {"element": 1 - BA_IN["w"] ** 2, "repeated": 4}}


def _ba_expected_jacobian():
    """ADBench's CSR layout: the first 30 entries are observation 0's two rows (camera 0's 11
    columns, point 0's 3, weight 0's), then the last entry (weight p-1's row)."""
    local = np.r_[BA_IN["cam"], BA_IN["x"], BA_IN["w"]]
    feat = np.array(BA_IN["feat"])
    J = np.stack([finite_difference_gradient(lambda v: ref_ba_residual(v[:11], v[11:14], v[14], feat)[k], local) for k in range(2)])
    n, m, p = 2, 3, 4
    block = list(range(11)) + [11 * n + c for c in range(3)] + [11 * n + 3 * m]
    rows = [15 * i for i in range(2 * p + 1)] + [30 * p + i for i in range(1, p + 1)]
    return {"rows": rows[:30] + [rows[-1]],
            "cols": block + block + [11 * n + 3 * m + p - 1],
            "vals": J[0].tolist() + J[1].tolist() + [-2 * BA_IN["w"]]}


def _gmm_expected_jacobian():
    out = {}
    for name in ("alpha", "mu", "q", "l"):
        out[name] = finite_difference_gradient(lambda v: ref_gmm(**{**GMM_IN, name: v}, m=0, gamma=1.0), GMM_IN[name]).tolist()
    return out


def _lstm_expected_jacobian():
    a = LSTM_IN
    gm = finite_difference_gradient(lambda m: ref_lstm(m, a["extra_params"], a["state"], a["sequence"]), a["main_params"])
    ge = finite_difference_gradient(lambda e: ref_lstm(a["main_params"], e, a["state"], a["sequence"]), a["extra_params"])
    return np.r_[gm.ravel(), ge.ravel()].tolist()


RUNS = {"min_runs": 2, "min_seconds": 0}
CASES = [  # module, function, input, expected output (a callable: computed when needed)
    ("hello", "square", 3.0, lambda: 9.0),
    ("hello", "double", 3.0, lambda: 6.0),
    ("lse", "primal", {"x": X6.tolist(), **RUNS}, lambda: ref_lse(X6)),
    ("lse", "gradient", {"x": X6.tolist(), **RUNS}, lambda: finite_difference_gradient(ref_lse, X6).tolist()),
    ("llsq", "primal", {"x": X6.tolist(), "n": 9, **RUNS}, lambda: ref_llsq(X6, 9)),
    ("llsq", "gradient", {"x": X6.tolist(), "n": 9, **RUNS},
     lambda: finite_difference_gradient(lambda x: ref_llsq(x, 9), X6).tolist()),
    ("kmeans", "cost", {"points": PTS.tolist(), "centroids": CEN.tolist(), **RUNS},
     lambda: ref_kmeans(PTS, CEN)),
    ("kmeans", "dir", {"points": PTS.tolist(), "centroids": CEN.tolist(), **RUNS},
     lambda: ref_kmeans_dir(PTS, CEN).tolist()),
    ("ode", "primal", {"x": X6.tolist(), "s": 3, **RUNS}, lambda: ref_ode(X6, 3).tolist()),
    ("ode", "gradient", {"x": X6.tolist(), "s": 3, **RUNS},
     lambda: finite_difference_gradient(lambda x: ref_ode(x, 3)[-1], X6).tolist()),
    ("gmm", "objective", {**{k: v.tolist() for k, v in GMM_IN.items()}, "m": 0, "gamma": 1.0,
                          "d": 3, "k": 2, "n": 5, **RUNS}, lambda: ref_gmm(**GMM_IN, m=0, gamma=1.0)),
    ("gmm", "jacobian", {**{k: v.tolist() for k, v in GMM_IN.items()}, "m": 0, "gamma": 1.0,
                         "d": 3, "k": 2, "n": 5, **RUNS}, _gmm_expected_jacobian),
    ("lstm", "objective", {**{k: v.tolist() for k, v in LSTM_IN.items()}, **RUNS},
     lambda: ref_lstm(*LSTM_IN.values())),
    ("lstm", "jacobian", {**{k: v.tolist() for k, v in LSTM_IN.items()}, **RUNS}, _lstm_expected_jacobian),
    ("ba", "objective", {**BA_IN, **RUNS}, _ba_expected_objective),
    ("ba", "jacobian", {**BA_IN, **RUNS}, _ba_expected_jacobian),
    ("det", "primal", {"A": DET_A.ravel().tolist(), "ell": 4, **RUNS}, lambda: np.linalg.det(DET_A)),
    ("det", "gradient", {"A": DET_A.ravel().tolist(), "ell": 4, **RUNS},
     lambda: finite_difference_gradient(np.linalg.det, DET_A).ravel().tolist()),
]


def test_every_implemented_function_has_a_case():
    assert {(m, f) for m, f, _, _ in CASES} == {(m, f) for m, fns in EVALS.items() for f in fns}


def test_protocol_session_through_a_pipe():
    """One session of the tool as GradBench runs it: a subprocess, one JSON line each way.
    The optimiser runs for every (function, sizes) under a short time limit."""
    msgs = [{"id": 0, "kind": "start", "eval": "all"}]
    for module in dict.fromkeys(m for m, _, _, _ in CASES):
        msgs.append({"id": len(msgs), "kind": "define", "module": module})
        for m, f, inp, _ in CASES:
            if m == module:
                msgs.append({"id": len(msgs), "kind": "evaluate", "module": m, "function": f,
                             "input": inp, "description": "tiny"})
                msgs.append({"id": len(msgs), "kind": "analysis", "of": len(msgs) - 1, "valid": True})
    msgs.append({"id": len(msgs), "kind": "define", "module": "ht"})
    text = "".join(json.dumps(m) + "\n" for m in msgs)
    proc = subprocess.run([sys.executable, "-m", "eqsat_ad.gradbench", "--optimize-seconds", "4"],
                          input=text, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    responses = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in responses] == [m["id"] for m in msgs]
    assert responses[0]["tool"] == "eqsat-ad"
    expected = {(m, f): want for m, f, _, want in CASES}
    for msg, resp in zip(msgs, responses):
        if msg["kind"] == "define":
            assert resp["success"] is (msg["module"] != "ht"), resp
        elif msg["kind"] == "evaluate":
            assert resp["success"], resp
            runs = [t for t in resp["timings"] if t["name"] == "evaluate"]
            assert len(runs) == (2 if isinstance(msg["input"], dict) else 1)
            assert all(isinstance(t["nanoseconds"], int) and t["nanoseconds"] >= 0 for t in resp["timings"])
            want = expected[msg["module"], msg["function"]]()
            gradbench_close(want, resp["output"])
            np.testing.assert_allclose(flat(resp["output"]), flat(want), rtol=1e-6, atol=1e-7)  # and closer
        elif msg["kind"] == "analysis":
            assert resp == {"id": msg["id"]}
    assert responses[-1]["success"] is False and "ht" in responses[-1]["error"]


def _session(lines, **kw):
    out, err = io.StringIO(), io.StringIO()
    rc = Tool(optimize=False, **kw).serve(io.StringIO("".join(lines)), out, err)
    return rc, [json.loads(x) for x in out.getvalue().splitlines()], err.getvalue()


@pytest.mark.parametrize("msg, error", [
    ({"id": 1, "kind": "evaluate", "module": "nope", "function": "f", "input": 1}, "does not implement module 'nope'"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "hessian", "input": {}}, "has no function 'hessian'"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal", "input": {"y": [1]}}, "no field 'x'"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal", "input": [1, 2]}, "should be an object"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal", "input": {"x": [[1.0]]}}, "rank 1"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal", "input": {"x": ["a"]}}, "numbers"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal", "input": {"x": []}}, "empty"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal",
      "input": {"x": [1.0], "min_runs": -1, "min_seconds": 0}}, "min_runs"),
    ({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal",
      "input": {"x": [1.0], "min_runs": 1, "min_seconds": "1"}}, "min_seconds"),
    ({"id": 1, "kind": "evaluate", "module": "llsq", "function": "primal", "input": {"x": [1.0], "n": 1.5}}, "'n'"),
    ({"id": 1, "kind": "evaluate", "module": "hello", "function": "square", "input": True}, "takes a number"),
    ({"id": 1, "kind": "evaluate", "module": "det", "function": "primal", "input": {"A": [1.0, 2.0], "ell": 2}}, "ell^2"),
    ({"id": 1, "kind": "evaluate", "module": "lstm", "function": "objective",
      "input": {"main_params": [[1.0]], "extra_params": [[1.0]], "state": [[1.0]], "sequence": [[1.0]]}},
     "2 rows per layer"),
    ({"id": 1, "kind": "define", "module": 7}, "does not implement module 7"),
])
def test_a_bad_message_gets_a_clear_error_and_the_session_goes_on(msg, error):
    rc, out, err = _session([json.dumps(msg) + "\n", json.dumps({"id": 2, "kind": "start"}) + "\n"])
    assert rc == 0 and err == ""
    assert out[0]["id"] == 1 and out[0]["success"] is False and error in out[0]["error"], out[0]
    assert "Traceback" not in out[0]["error"] and "\n" not in out[0]["error"]
    assert out[1]["id"] == 2 and out[1]["tool"] == "eqsat-ad"


@pytest.mark.parametrize("line, why", [("not json\n", "not JSON"), ("[1, 2]\n", "JSON object"),
                                       ('{"kind": "start"}\n', "integer 'id'"),
                                       ('{"id": "3", "kind": "start"}\n', "integer 'id'")])
def test_a_line_that_cannot_be_answered_stops_with_exit_2(line, why):
    rc, out, err = _session(['{"id": 0, "kind": "start"}\n', line, '{"id": 5, "kind": "start"}\n'])
    assert rc == EXIT_PROTOCOL and [r["id"] for r in out] == [0]
    assert why in err and "line 2" in err and len(err.strip().splitlines()) == 1


def test_unknown_kinds_are_acknowledged_and_blank_lines_skipped():
    rc, out, _ = _session(['{"id": 0, "kind": "analysis", "of": 3, "valid": false, "error": "x"}\n', "\n",
                           '{"id": 1, "kind": "end"}\n', '{"id": 2}\n'])
    assert rc == 0 and out == [{"id": 0}, {"id": 1}, {"id": 2}]


def test_min_seconds_repeats_and_the_cache_keeps_one_program_per_size():
    tool = Tool(optimize=False)
    r1 = tool.handle({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal",
                      "input": {"x": [1.0, 2.0], "min_runs": 1, "min_seconds": 0.02}})
    assert sum(t["nanoseconds"] for t in r1["timings"] if t["name"] == "evaluate") >= 0.02e9
    assert [t["name"] for t in r1["timings"]][0] == "compile"
    r2 = tool.handle({"id": 2, "kind": "evaluate", "module": "lse", "function": "primal",
                      "input": {"x": [3.0, 2.0], "min_runs": 1, "min_seconds": 0}})
    assert [t["name"] for t in r2["timings"]] == ["evaluate"]          # cached: same sizes
    tool.handle({"id": 3, "kind": "evaluate", "module": "lse", "function": "primal", "input": {"x": [3.0]}})
    assert len(tool.cache) == 2


def test_cli_subcommand_speaks_the_protocol():
    proc = subprocess.run([sys.executable, "-m", "eqsat_ad.cli", "gradbench", "--no-optimize"],
                          input='{"id": 0, "kind": "start"}\n{"id": 1, "kind": "define", "module": "lse"}\n',
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()][1] == {"id": 1, "success": True}


def test_lstm_gradient_optimised_compiles_and_matches_interpreter_and_fd():
    """Issue 12: the optimised LSTM gradient must compile (it was reported to fail in the
    backend with 'get of a non-array'); the compiled result equals the naive gradient in the
    reference interpreter and central finite differences."""
    fn = EVALS["lstm"]["jacobian"]
    kw = fn.inputs({k: v.tolist() for k, v in LSTM_IN.items()})
    g = fn.program()
    for extractor in ("tree", "dag"):
        res = ea.optimize(g, sizes=fn.sizes(kw), extractor=extractor, limits={"seconds": 20})
        got = ea.compile(res.program)(**kw)
        want = ea.evaluate(g, **kw)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    prog = EVALS["lstm"]["objective"].program()
    rng = np.random.default_rng(3)
    for wrt, k in (("main", 0), ("extra", 1)):
        v = rng.standard_normal(kw[wrt].shape)
        fd = central_difference(prog, wrt, kw, v)
        assert float(np.sum(got[k] * v)) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_disk_cache_keeps_optimised_programs_between_sessions(tmp_path):
    msg = {"id": 1, "kind": "evaluate", "module": "lse", "function": "gradient", "input": {"x": [1.0, 2.0, 0.5]}}
    first = Tool(cache_dir=str(tmp_path)).handle(msg)
    assert first["success"] and [t["name"] for t in first["timings"]][0] == "optimize"
    (stored,) = tmp_path.glob("*.ad")
    second = Tool(cache_dir=str(tmp_path)).handle(msg)
    assert [t["name"] for t in second["timings"]][0] == "load"
    assert second["output"] == first["output"]
    # a file that is not a program of the same type is not used: optimised again, rewritten
    stored.write_text("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))")
    third = Tool(cache_dir=str(tmp_path)).handle(msg)
    assert [t["name"] for t in third["timings"]][0] == "optimize" and third["output"] == first["output"]
    stored.write_text("(fun ((x (vec n)))")
    assert Tool(cache_dir=str(tmp_path)).handle(msg)["output"] == first["output"]
    # a directory that cannot be created is no error: nothing is kept
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert Tool(cache_dir=str(blocker / "sub")).handle(msg)["success"]
