"""_numba_math's sin, cos, tan, log1p and pow: within a few ulp of NumPy's (the C library's) on many
arguments of every magnitude, the same results at the edges, and vectorisable (a loop of them
compiles to SIMD code: no call per element)."""
from __future__ import annotations

import math
import platform
import re

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import njit

import eqsat_ad as ea
from eqsat_ad.backend import _numba_math as M
from eqsat_ad.backend import numba_backend as nb


@njit(error_model="numpy")
def _all4(x):
    out = np.empty((4, x.shape[0]))
    for i in range(x.shape[0]):
        out[0, i] = M.sin(x[i])
        out[1, i] = M.cos(x[i])
        out[2, i] = M.tan(x[i])
        out[3, i] = M.log1p(x[i])
    return out


def _ulps(got, want):
    with np.errstate(all="ignore"):
        d = np.abs(got - want) / np.spacing(np.abs(want))
    return np.where(got == want, 0.0, d)


def _args():
    rng = np.random.default_rng(7)
    sign = rng.choice([-1.0, 1.0], 4000)
    return {
        "small": rng.uniform(-4, 4, 4000),
        "moderate": rng.uniform(-1e4, 1e4, 4000),
        # around the bound of the Cody-Waite reduction (~1.65e6), then the table's
        "bound": rng.uniform(1.5e6, 1.8e6, 4000) * sign,
        "large": np.geomspace(1e6, 1e20, 4000) * sign,
        "huge": np.geomspace(1e20, 1.7e308, 4000) * sign,
        "tiny": np.geomspace(5e-324, 1e-2, 4000) * sign,
        # near multiples of pi/2, where the reduction cancels
        "k pi/2": np.arange(1, 4001) * (np.pi / 2) * sign,
        "k pi/2 large": np.arange(1, 4001) * 1e6 * (np.pi / 2),
    }


def _libm(f):
    """The C library's function on an array (math's: NumPy's may be a SIMD version of its own)."""
    return lambda x: np.array([f(float(v)) for v in x])


@pytest.mark.parametrize("k, ref, ulps", [(0, math.sin, 1), (1, math.cos, 1), (2, math.tan, 2)])
def test_trig_within_a_few_ulp(k, ref, ulps):
    for name, x in _args().items():
        u = _ulps(_all4(x)[k], _libm(ref)(x))
        assert u.max() <= ulps, (ref.__name__, name, x[np.argmax(u)], u.max())


def test_log1p_within_a_few_ulp():
    rng = np.random.default_rng(8)
    for x in (rng.uniform(-1, 1, 4000), np.geomspace(1e-310, 1e-3, 2000) * rng.choice([-1, 1], 2000),
              np.geomspace(1e-3, 1.7e308, 4000), -1 + np.geomspace(1e-16, 0.5, 2000)):
        u = _ulps(_all4(x)[3], _libm(math.log1p)(x))
        assert u.max() <= 2, (x[np.argmax(u)], u.max())


@njit(error_model="numpy")
def _pow(x, y):
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = M.pow(x[i], y[i])
    return out


def test_pow_within_a_few_ulp():
    """Against the C library's pow (NumPy's), where y log x is small and where it is near the
    ends of the range (there log x must be right to ~2**-64: x near 1 with a large y)."""
    rng = np.random.default_rng(9)
    n = 20000
    cases = {
        "integer powers": (rng.uniform(-1, 1, n), rng.integers(0, 128, n).astype(float)),
        "moderate": (rng.uniform(0, 10, n), rng.uniform(-20, 20, n)),
        "x near 1, large y": (1 + rng.uniform(-0.3, 0.4, n), rng.uniform(-2000, 2000, n)),
        "every magnitude": (np.exp(rng.uniform(-700, 700, n)), rng.uniform(-1, 1, n)),
        "subnormal x": (np.geomspace(5e-324, 1e-300, n), rng.uniform(-1, 1, n)),
        "negative x, integer y": (rng.uniform(-5, 0, n), rng.integers(-300, 300, n).astype(float)),
        "overflow and underflow": (rng.uniform(1.5, 3, n), rng.uniform(-2000, 2000, n)),
    }
    for name, (x, y) in cases.items():
        with np.errstate(all="ignore"):
            u = _ulps(_pow(x, y), np.power(x, y))
        assert u.max() <= 2, (name, x[np.argmax(u)], y[np.argmax(u)], u.max())


def test_pow_edges_equal_the_c_library():
    """C99's special cases (NumPy's pow): every pair of these, sign of zero included."""
    v = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1 / 3, np.inf, -np.inf, np.nan,
         5e-324, -5e-324, 1e308, -1e308, 2.0 ** 53, 2.0 ** 53 + 2, 2.0 ** 52 + 1]
    x, y = (a.ravel() for a in np.meshgrid(v, v))
    got = _pow(x, y)
    with np.errstate(all="ignore"):
        want = np.power(x, y)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want) & (want != 0)
    assert _ulps(got[fin], want[fin]).max() <= 2
    num = ~np.isnan(want)                   # (a nan's sign bit is the CPU's choice)
    np.testing.assert_array_equal(got[~fin & num], want[~fin & num])              # ±0, ±inf
    np.testing.assert_array_equal(np.signbit(got[num]), np.signbit(want[num]))


def test_edges_equal_the_c_library():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, -1e-300, 2.0 ** -27,
                  np.pi, -np.pi / 2, 1.7976931348623157e308, -1.7976931348623157e308, 1e22, 2.0 ** 1000,
                  -1.0, -2.0, 1e300])
    got = _all4(x)
    with np.errstate(all="ignore"):
        for k, ref in enumerate((np.sin, np.cos, np.tan, np.log1p)):
            want = ref(x)
            assert np.all((_ulps(got[k], want) <= 2) | (np.isnan(got[k]) & np.isnan(want))), ref.__name__
            np.testing.assert_array_equal(np.isnan(got[k]), np.isnan(want))
            np.testing.assert_array_equal(np.signbit(got[k][:2]), np.signbit(want[:2]))   # -0.0 kept
            fin = ~np.isfinite(want)
            np.testing.assert_array_equal(got[k][fin], want[fin])                        # nan, ±inf


def test_the_kernel_uses_them():
    """A program with sin, cos, tan, log1p and pow: the kernel calls _numba_math's, and agrees with NumPy."""
    p = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (+ (+ (sin (get x i)) (cos (* 2.0 (get x i)))) "
                 "(+ (+ (tan (get x i)) (log1p (get x i))) (pow 1.5 (get x i)))))))")
    fn = nb.compile(p, cache=False)
    kernel = fn.source.split("# --- the Python wrapper")[0]
    assert "math.sin" not in kernel and "_vsin(" in kernel and "_vcos(" in kernel
    assert "_vtan(" in kernel and "_vlog1p(" in kernel and "_vpow(" in kernel and "np.power" not in kernel
    x = np.array([0.0, 0.5, -0.3, 3.0, 1e7])
    with np.errstate(over="ignore"):
        want = np.sin(x) + np.cos(2 * x) + np.tan(x) + np.log1p(x) + np.power(1.5, x)
    np.testing.assert_allclose(fn(x), want, rtol=1e-14)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"),
                    reason="a machine with double-precision SIMD")
def test_a_loop_of_them_is_vectorised():
    """The optimised LLVM IR of a loop of sin (and of cos, tan, log1p, pow) holds vector arithmetic
    on doubles and no call of the C library's function."""
    @njit(error_model="numpy")
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = M.sin(x[i]) + M.cos(x[i]) * M.log1p(x[i]) - M.tan(x[i]) + M.pow(x[i] + 1.0, x[i])

    x = np.linspace(0.0, 1.0, 64)
    loop(x, np.empty_like(x))
    ir = loop.inspect_llvm(loop.signatures[0])
    assert re.search(r"fmul (contract )?<\d+ x double>", ir)
    assert not re.search(r"call [^\n]*@(llvm\.)?(sin|cos|tan|log1p|pow)(\.f64)?\(", ir)   # math.sin: llvm.sin.f64
