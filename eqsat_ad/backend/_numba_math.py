"""Real functions for the Numba kernels that LLVM can vectorise: ``exp``, ``log``, ``tanh``.

``math.exp`` in a Numba loop is a call into the C library per element, which stops LLVM
from vectorising the loop; NumPy's and XLA's ``exp`` are SIMD code, 2-3x faster per element.
:func:`exp` here is plain arithmetic (Cody-Waite range reduction, a
rational approximation on ``|r| <= ln2/2`` (Cephes') with fused multiply-adds and one
division, the power of two made from its bits), so a loop calling it is vectorised -- faster
than NumPy's ``exp`` here: within 2 ulp of the C library's ``exp`` (``tests/test_numba_backend.py``
checks it), with the same results at the edges (overflow to ``inf``, subnormals, underflow
to 0, ``nan``, ``±inf``).  :func:`log` (fdlibm's reduction, within 2 ulp) and :func:`tanh`
(from an ``expm1`` with the same reduction and a degree-13 Taylor polynomial, within
5 ulp) likewise; the other functions stay
C library calls.

>>> import numpy as np
>>> from numba import njit
>>> f = njit(lambda v: exp(v))
>>> x = np.array([-1.0, 0.0, 0.5, 700.0])
>>> bool(np.all(np.abs(np.array([f(v) for v in x]) / np.exp(x) - 1) < 5e-16))
True
"""
from __future__ import annotations

import math

from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic

__all__ = ["exp", "log", "sum_add", "tanh"]


@intrinsic
def _f64_bits(typingctx, x):
    """The bits of a float64 as an int64 (a bit cast: no instruction)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, i):
    """The float64 with these bits."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


_ROUND = 6755399441055744.0              # 1.5 * 2**52: x + _ROUND rounds x to an integer
_ROUND_BITS = 4843621399236968448        # its bits: (x + _ROUND)'s low bits are that integer
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238             # ln 2 in two parts: k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.9082149292705877e-10
(_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12,
 _C13) = (1.0 / math.factorial(k) for k in range(14))


# Both helpers are inlined into their callers (Numba IR), so the callers' fastmath flags --
# 'contract', for the multiply-adds -- apply to them as to code written in place.
@njit(inline="always", error_model="numpy", cache=True)
def _reduce_ln2(x):
    """``(k, r)`` with ``x = k ln 2 + r``, ``|r| <= ln2 / 2`` (Cody-Waite: ln 2 in two parts)."""
    t = x * _LOG2E + _ROUND
    kf = t - _ROUND                           # round(x / ln 2)
    return _f64_bits(t) - _ROUND_BITS, (x - kf * _LN2_HI) - kf * _LN2_LO


@njit(inline="always", error_model="numpy", cache=True)
def _taylor_from_c1(r):
    """``1/1! + r/2! + ... + r**12/13!`` (Horner): ``(e**r - 1) / r``."""
    p = _C13
    p = p * r + _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    return p * r + _C1


# exp's rational approximation on |r| <= ln2/2 (Cephes' exp: e**r = (Q(r^2) + r P(r^2)) / (Q(r^2) - r P(r^2)));
# 6 multiply-adds and a division: ~20 % faster than a degree-13 polynomial, within 2 ulp
_P0, _P1, _P2 = 1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1
_Q0, _Q1, _Q2, _Q3 = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1,
                      2.00000000000000000009e0)


# 'contract' lets LLVM fuse the polynomial's multiply-adds (FMA: one rounding instead of
# two, about twice as fast); only inside this function -- it is not inlined by Numba (LLVM
# inlines it, keeping each instruction's flags), so the kernels keep strict IEEE arithmetic
@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def exp(x):
    """e**x (vectorisable; see the module docstring)."""
    # (comparisons, not max/min: a nan becomes -746 here, and the result is fixed below)
    xc = x if x > -746.0 else -746.0          # noqa: FURB136
    xc = xc if xc < 710.0 else 710.0          # noqa: FURB136
    k, r = _reduce_ln2(xc)
    z = r * r
    px = r * ((_P0 * z + _P1) * z + _P2)
    q = ((_Q0 * z + _Q1) * z + _Q2) * z + _Q3
    p = (q + px) / (q - px)
    # 2**k in two factors, both normal numbers for every k here (subnormal results too)
    k1 = k >> 1
    res = p * _bits_f64((k1 + 1023) << 52) * _bits_f64((k - k1 + 1023) << 52)
    res = math.inf if x > 709.782712893384 else res
    res = 0.0 if x < -745.1332191019412 else res
    return x if x != x else res               # noqa: PLR0124 - x is nan


# 'reassoc' on this one add only (LLVM inlines it into the kernel's loop, keeping the flag):
# the loop vectorizer may then keep several partial sums of a real sum's terms (as NumPy's
# pairwise sum and XLA's reductions do), where a single strict accumulator waits for each add
# in turn; every other operation of the kernel stays strict IEEE arithmetic
@njit(fastmath={"reassoc"}, error_model="numpy", cache=True)
def sum_add(acc, t):
    """``acc + t`` for the accumulator of a real ``sum`` (may be reassociated: see above)."""
    return acc + t


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def _expm1_small(x):
    """e**x - 1 for x in [-60, 0] (tanh's argument), accurate also near 0: the polynomial
    without its constant term when the reduction leaves no power of two, else p * 2**k - 1."""
    k, r = _reduce_ln2(x)
    q = _taylor_from_c1(r) * r                 # e**r - 1
    scaled = (q + 1.0) * _bits_f64((k + 1023) << 52) - 1.0
    return q if k == 0 else scaled


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def tanh(x):
    """tanh x = -expm1(-2|x|) / (2 + expm1(-2|x|)) with the sign of x (vectorisable; within a
    few ulp of the C library's, exact 1 beyond |x| = 20, nan for nan)."""
    a = x if x >= 0.0 else -x
    a = a if a < 20.0 else 20.0                # noqa: FURB136 - tanh(20) is 1 in double precision
    em = _expm1_small(-2.0 * a)
    t = -em / (2.0 + em)
    t = t if x >= 0.0 else -t
    return x if x != x else t                  # noqa: PLR0124 - x is nan


_SQRT2 = 1.4142135623730951
_TWO52 = 4503599627370496.0                 # 2**52: scales a subnormal into the normal range
_MANT = (1 << 52) - 1
_ONE_BITS = 1023 << 52
(_L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8, _L9, _L10, _L11) = (2.0 / (2 * k + 1) for k in range(1, 12))


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def log(x):
    """The natural logarithm (vectorisable): x = m 2**e with m in [sqrt(1/2), sqrt(2)),
    log m = f - (f*f/2 - s (f*f/2 + R(s*s))) with f = m - 1, s = f / (2 + f) (fdlibm's
    form, Taylor coefficients of 2 atanh); nan below 0, -inf at 0, inf at inf."""
    sub = x < 2.2250738585072014e-308
    xs = x * _TWO52 if sub else x
    bits = _f64_bits(xs)
    e = (bits >> 52) - 1023
    e = e - 52 if sub else e
    m = _bits_f64((bits & _MANT) | _ONE_BITS)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    r = _L11
    r = r * z + _L10
    r = r * z + _L9
    r = r * z + _L8
    r = r * z + _L7
    r = r * z + _L6
    r = r * z + _L5
    r = r * z + _L4
    r = r * z + _L3
    r = r * z + _L2
    r = r * z + _L1
    r = r * z
    hfsq = 0.5 * f * f
    ef = float(e)
    res = ef * _LN2_HI - ((hfsq - (s * (hfsq + r) + ef * _LN2_LO)) - f)
    res = math.inf if x == math.inf else res
    res = -math.inf if x == 0.0 else res
    return math.nan if x < 0.0 or x != x else res   # noqa: PLR0124 - x is nan
