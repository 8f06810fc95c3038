"""Real functions for the Numba kernels that LLVM can vectorise.

``math.exp`` in a Numba loop is a call into the C library per element, which stops LLVM
from vectorising the loop; NumPy's and XLA's ``exp`` are SIMD code, 2-3x faster per element.
:func:`exp` here is plain arithmetic (Cody-Waite range reduction, a degree-13 Taylor
polynomial on ``|r| <= ln2/2`` with fused multiply-adds, the power of two made from its
bits), so a loop calling it is vectorised -- as fast as NumPy's ``exp`` here: within 2 ulp of the C library's ``exp`` (``tests/test_numba_backend.py``
checks it), with the same results at the edges (overflow to ``inf``, subnormals, underflow
to 0, ``nan``, ``±inf``).

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

__all__ = ["chunk_sum", "exp"]


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


# 'contract' lets LLVM fuse the polynomial's multiply-adds (FMA: one rounding instead of
# two, about twice as fast); only inside this function -- it is not inlined by Numba (LLVM
# inlines it, keeping each instruction's flags), so the kernels keep strict IEEE arithmetic
@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def exp(x):
    """e**x (vectorisable; see the module docstring)."""
    # (comparisons, not max/min: a nan becomes -746 here, and the result is fixed below)
    xc = x if x > -746.0 else -746.0          # noqa: FURB136
    xc = xc if xc < 710.0 else 710.0          # noqa: FURB136
    t = xc * _LOG2E + _ROUND
    kf = t - _ROUND                           # round(x / ln 2)
    k = _f64_bits(t) - _ROUND_BITS
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO   # |r| <= ln2 / 2
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
    p = p * r + _C1
    p = p * r + _C0
    # 2**k in two factors, both normal numbers for every k here (subnormal results too)
    k1 = k >> 1
    res = p * _bits_f64((k1 + 1023) << 52) * _bits_f64((k - k1 + 1023) << 52)
    res = math.inf if x > 709.782712893384 else res
    res = 0.0 if x < -745.1332191019412 else res
    return x if x != x else res               # noqa: PLR0124 - x is nan


@njit(inline="always", fastmath=False, error_model="numpy", cache=True)
def chunk_sum(b, m):
    """``b[0] + ... + b[m-1]`` in four partial sums (independent adds: LLVM overlaps or
    vectorises them; a single accumulator waits for each add in turn)."""
    a0 = a1 = a2 = a3 = 0.0
    m4 = m - m % 4
    for j in range(0, m4, 4):
        a0 += b[j]
        a1 += b[j + 1]
        a2 += b[j + 2]
        a3 += b[j + 3]
    for j in range(m4, m):
        a0 += b[j]
    return (a0 + a1) + (a2 + a3)
