"""Real functions for the Numba kernels that LLVM can vectorise: ``exp``, ``log``, ``tanh``,
``sin``, ``cos``, ``tan``, ``log1p``, ``pow``.

``math.exp`` in a Numba loop is a call into the C library per element, which stops LLVM
from vectorising the loop; NumPy's and XLA's ``exp`` are SIMD code, 2-3x faster per element.
:func:`exp` here is plain arithmetic (Cody-Waite range reduction, a
rational approximation on ``|r| <= ln2/2`` (Cephes') with fused multiply-adds and one
division, the power of two made from its bits), so a loop calling it is vectorised -- faster
than NumPy's ``exp`` here: within 2 ulp of the C library's ``exp`` (``tests/test_numba_backend.py``
checks it), with the same results at the edges (overflow to ``inf``, subnormals, underflow
to 0, ``nan``, ``±inf``).  :func:`log` (fdlibm's reduction, within 2 ulp) and :func:`tanh`
(from an ``expm1`` with the same reduction and a degree-13 Taylor polynomial, within
5 ulp) likewise.  :func:`sin`, :func:`cos` and :func:`tan` reduce by pi/2 for every finite
argument without a branch (Cody-Waite in three parts up to ~1.6e6, a Payne-Hanek table
beyond, both computed and one selected: a branch to the C library would stop vectorisation)
and use fdlibm's polynomials: within 1 ulp (``tan``: 2) of the C library's, nan for ``±inf``,
``-0.0`` kept; :func:`log1p` is :func:`log` with Goldberg's correction (2 ulp)
(``tests/test_numba_math.py``).  They are inlined into their callers by LLVM (``forceinline``:
they are too large for its inliner's threshold), keeping their own fast-math flags.
:func:`pow` is ``exp(y log x)`` with ``log x`` in double-double (the reduction of :func:`log`,
its quotient and tail with their rounding errors) and the product's rounding error carried
into the result, the C library's special cases selected without a branch: within 2 ulp
(``tests/test_numba_math.py``).  ``sqrt`` needs nothing here (``math.sqrt`` is an instruction).

>>> import numpy as np
>>> from numba import njit
>>> f = njit(lambda v: exp(v))
>>> x = np.array([-1.0, 0.0, 0.5, 700.0])
>>> bool(np.all(np.abs(np.array([f(v) for v in x]) / np.exp(x) - 1) < 5e-16))
True
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic

__all__ = ["cos", "exp", "log", "log1p", "pow", "sin", "sum_add", "tan", "tanh"]


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
    # (comparisons, not max/min: a nan becomes 0 here, and the result is fixed below).  An x
    # whose result is 0 (below) is computed as 0, not clamped at -746: 2**-1076 would
    # underflow in the product below, and an underflowing multiply takes a microcode assist
    # on x86 (~100 cycles) -- log-sum-exp's exp(x_j - max) of far-apart terms hits it often
    xc = x if x >= -745.1332191019412 else 0.0          # noqa: FURB136
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


@njit(inline="always", error_model="numpy", cache=True)
def _log_reduce(x):
    """``(e, f)`` with x = 2**e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), f exact, for a positive
    finite x (subnormals too; e as a float)."""
    sub = x < 2.2250738585072014e-308
    xs = x * _TWO52 if sub else x
    bits = _f64_bits(xs)
    e = (bits >> 52) - 1023
    e = e - 52 if sub else e
    m = _bits_f64((bits & _MANT) | _ONE_BITS)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    return float(e), m - 1.0


@njit(inline="always", error_model="numpy", cache=True)
def _atanh_q(z):
    """``2/5 + 2/7 z + ... + 2/23 z**9``: 2 atanh(s) = 2 s + s z (2/3 + z Q(z)), z = s*s."""
    r = _L11
    r = r * z + _L10
    r = r * z + _L9
    r = r * z + _L8
    r = r * z + _L7
    r = r * z + _L6
    r = r * z + _L5
    r = r * z + _L4
    r = r * z + _L3
    return r * z + _L2


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def log(x):
    """The natural logarithm (vectorisable): x = m 2**e with m in [sqrt(1/2), sqrt(2)),
    log m = f - (f*f/2 - s (f*f/2 + R(s*s))) with f = m - 1, s = f / (2 + f) (fdlibm's
    form, Taylor coefficients of 2 atanh); nan below 0, -inf at 0, inf at inf."""
    ef, f = _log_reduce(x)
    s = f / (2.0 + f)
    z = s * s
    r = (_atanh_q(z) * z + _L1) * z
    hfsq = 0.5 * f * f
    res = ef * _LN2_HI - ((hfsq - (s * (hfsq + r) + ef * _LN2_LO)) - f)
    res = math.inf if x == math.inf else res
    res = -math.inf if x == 0.0 else res
    return math.nan if x < 0.0 or x != x else res   # noqa: PLR0124 - x is nan


# --- sin and cos -------------------------------------------------------------------------
# x = (4k + n) pi/2 + (y0 + y1), |y0 + y1| <= ~pi/4, two reductions, both computed and one
# selected (a branch to the C library would stop vectorisation):
# * |x| <= _CW_MAX: Cody-Waite, pi/2 in three parts (fdlibm's: the first two of 33 bits, so
#   q * part is exact for |q| < 2**20; the third the rest), 118 bits of pi/2;
# * larger finite |x|: Payne-Hanek with a table: |x| = M 2**e (M < 2**53 an integer), and
#   the bits of 1/(2 pi) of weight >= 2**-e only add whole turns to |x| / (2 pi), so row e
#   of _RPI holds the bits below (four doubles: ~212 bits); |x| times it in double-double
#   arithmetic (exact products with fused multiply-adds), whole quarter turns taken out as it
#   goes, the rest times 2 pi: ~2**-104 absolute in turns, so within an ulp of the C library
#   but for arguments within ~2**-50 of a multiple of pi/2.
# The polynomials on |y| <= pi/4 are fdlibm's __kernel_sin / __kernel_cos (with the tail
# y1), within 1 ulp.

def _pi_fixed(bits: int) -> int:
    """floor-ish(pi * 2**bits) (Machin's formula in integers; the last few bits uncertain)."""
    one = 1 << (bits + 24)

    def atan_inv(k):
        s, t, n, sign = 0, one // k, 1, 1
        while t:
            s += sign * (t // n)
            t //= k * k
            n += 2
            sign = -sign
        return s
    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> 24


def _rpi_table():
    """Rows 0..971 (e = max(0, exponent - 52) of a finite double), 4 doubles each: the bits of
    1/(2 pi) of weight below 2**-e, as t0 + t1 + t2 + t3 (each the rest rounded); rows from
    _RPI_SCALED_ROW on times 2**_RPI_SCALE (t3 would be subnormal), the argument divided by it."""
    bits = 1300
    g = (1 << (2 * bits + 48)) // (2 * _pi_fixed(bits + 48))      # 1/(2 pi) * 2**bits
    rows = np.empty((972, 4))
    for e in range(972):
        rest = g & ((1 << (bits - e)) - 1)
        scale = bits - (_RPI_SCALE if e >= _RPI_SCALED_ROW else 0)  # value = rest / 2**scale
        for k in range(4):
            # rest's top 64 bits, as a float (rounded once more than correctly: it does not
            # matter, the next part takes what this one left), then rest less it, exactly
            a = abs(rest)
            sh = max(a.bit_length() - 64, 0)
            t = math.ldexp(float(a >> sh), sh - scale)
            t = t if rest >= 0 else -t
            rows[e, k] = t
            m, ex = math.frexp(t)
            rest -= int(math.ldexp(m, 53)) << (ex - 53 + scale)     # t * 2**scale: an integer
    return rows.ravel()


_RPI_SCALE = 128
_RPI_SCALED_ROW = 512
_RPI = _rpi_table()
_TWO_M_RPI_SCALE = 2.0 ** -_RPI_SCALE
_CW_MAX = 1647099.0                   # ~2**20 pi/2: |q| < 2**20 (Cody-Waite's exact products)
_2_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00  # the first 33 bits of pi/2
_PIO2_2 = 6.07710050630396597660e-11  # the next 33 bits
_PIO2_2T = 2.02226624879595063154e-21  # pi/2 - (_PIO2_1 + _PIO2_2)
_2PI_HI = 6.283185307179586            # 2 pi = _2PI_HI + _2PI_LO
_2PI_LO = 2.4492935982947064e-16
_S1, _S2, _S3, _S4, _S5, _S6 = (-1.66666666666666324348e-01, 8.33333333332248946124e-03,
                                -1.98412698298579493134e-04, 2.75573137070700676789e-06,
                                -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_K1, _K2, _K3, _K4, _K5, _K6 = (4.16666666666666019037e-02, -1.38888888888741095749e-03,
                                2.48015872894767294178e-05, -2.75573143513906633035e-07,
                                2.08757232129817482790e-09, -1.13596475577881948265e-11)


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (LLVM's llvm.fma: an instruction where the CPU has one)."""
    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@njit(inline="always", error_model="numpy", cache=True)
def _two_sum(a, b):
    """(s, t) with s = fl(a + b), a + b = s + t exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(inline="always", error_model="numpy", cache=True)
def _round_quarters(v):
    """w = 4v rounded to an integer (as a float; 4v itself when |4v| >= 2**52: then one)."""
    y = 4.0 * v
    ay = abs(y)
    r = (ay + _TWO52) - _TWO52
    r = r if y >= 0.0 else -r
    return y if ay >= _TWO52 else r


@njit(inline="always", error_model="numpy", cache=True)
def _reduce_big(a):
    """``(q, h, l)`` with a = (4k + q) pi/2 + h + l for a finite a (Payne-Hanek, above; every
    step is odd in a: the rounding to quarter turns too)."""
    bits = _f64_bits(a)
    e = ((bits >> 52) & 2047) - 1075
    e = max(0, e)
    big = e >= _RPI_SCALED_ROW
    a = a * _TWO_M_RPI_SCALE if big else a
    row = np.uint64(e) * np.uint64(4)
    t0, t1, t2, t3 = _RPI[row], _RPI[row + np.uint64(1)], _RPI[row + np.uint64(2)], _RPI[row + np.uint64(3)]
    p0 = a * t0
    e0 = _fma(a, t0, -p0)                    # a t0 = p0 + e0 exactly
    w = _round_quarters(p0)
    f0 = p0 - 0.25 * w                       # exact, |f0| <= 1/8
    p1 = a * t1
    e1 = _fma(a, t1, -p1)
    h, l0 = _two_sum(f0, e0)
    h, l1 = _two_sum(h, p1)
    l = l0 + l1 + e1 + a * t2 + a * t3
    w2 = _round_quarters(h)
    h = h - 0.25 * w2                        # exact
    h, l = _two_sum(h, l)                    # turns: |h + l| <= ~1/8
    q = np.int64(w) + np.int64(w2)
    rh = h * _2PI_HI
    rl = _fma(h, _2PI_HI, -rh) + (h * _2PI_LO + l * _2PI_HI)
    return q, rh, rl


@njit(inline="always", error_model="numpy", cache=True)
def _reduce_pio2(x):
    """``(n, y0, y1)``: x = (4k + n) pi/2 + y0 + y1, |y0 + y1| <= ~pi/4, for a finite x."""
    # Cody-Waite (fdlibm's medium case, its second iteration always), good for |x| <= _CW_MAX
    t = x * _2_OVER_PI + _ROUND
    qf = t - _ROUND
    n = _f64_bits(t) - _ROUND_BITS
    a = x - qf * _PIO2_1
    w1 = qf * _PIO2_2
    b = a - w1
    w = qf * _PIO2_2T - ((a - b) - w1)
    y0 = b - w
    y1 = (b - y0) - w
    # Payne-Hanek, computed for every x and selected (|hb| >= |lb|: a fast two-sum)
    ax = abs(x)
    qb, hb, lb = _reduce_big(x if ax < math.inf else 0.0)
    sb = hb + lb
    lb = lb - (sb - hb)
    hb = sb
    small = ax <= _CW_MAX
    return (n if small else qb) & 3, y0 if small else hb, y1 if small else lb


@njit(inline="always", error_model="numpy", cache=True)
def _kernel_sin(x, y):
    """sin(x + y) for |x| <= ~pi/4, |y| <= ulp(x)/2 (fdlibm's __kernel_sin)."""
    z = x * x
    w = z * z
    r = _S2 + z * (_S3 + z * _S4) + z * w * (_S5 + z * _S6)
    v = z * x
    return x - ((z * (0.5 * y - v * r) - y) - v * _S1)


@njit(inline="always", error_model="numpy", cache=True)
def _kernel_cos(x, y):
    """cos(x + y) for |x| <= ~pi/4 (fdlibm's __kernel_cos)."""
    z = x * x
    w = z * z
    r = z * (_K1 + z * (_K2 + z * _K3)) + w * w * (_K4 + z * (_K5 + z * _K6))
    hz = 0.5 * z
    w = 1.0 - hz
    return w + (((1.0 - w) - hz) + (z * r - x * y))


@njit(fastmath={"contract"}, error_model="numpy", cache=True, forceinline=True)
def sin(x):
    """sin x (vectorisable; within 1 ulp of the C library's, see above): x itself for
    |x| < 2**-27 (-0.0 too), nan for nan and ±inf."""
    n, y0, y1 = _reduce_pio2(x)
    s = _kernel_sin(y0, y1)
    c = _kernel_cos(y0, y1)
    res = c if n & 1 else s
    res = -res if n & 2 else res
    res = x if abs(x) < 7.450580596923828e-09 else res
    return res if abs(x) < math.inf else x - x


@njit(fastmath={"contract"}, error_model="numpy", cache=True, forceinline=True)
def cos(x):
    """cos x (vectorisable; within 1 ulp of the C library's, see above): nan for nan and ±inf."""
    n, y0, y1 = _reduce_pio2(x)
    s = _kernel_sin(y0, y1)
    c = _kernel_cos(y0, y1)
    res = s if n & 1 else c
    res = -res if (n + 1) & 2 else res
    return res if abs(x) < math.inf else x - x


@njit(fastmath={"contract"}, error_model="numpy", cache=True, forceinline=True)
def tan(x):
    """tan x = sin / cos of the reduced argument (-cos / sin in odd quadrants; vectorisable,
    within 2 ulp of the C library's): x itself for |x| < 2**-27, nan for nan and ±inf."""
    n, y0, y1 = _reduce_pio2(x)
    s = _kernel_sin(y0, y1)
    c = _kernel_cos(y0, y1)
    res = -c / s if n & 1 else s / c
    res = x if abs(x) < 7.450580596923828e-09 else res
    return res if abs(x) < math.inf else x - x


@njit(error_model="numpy", cache=True, forceinline=True)
def log1p(x):
    """log(1 + x) = log(u) x / (u - 1) with u = fl(1 + x) (the rounding error of 1 + x
    cancels: within a few ulp; Goldberg's trick, with the vectorisable :func:`log`); x itself
    where u = 1 (-0.0 too), -inf at -1, nan below, inf at inf."""
    u = 1.0 + x
    d = u - 1.0
    res = log(u) * (x / d)
    res = x if d == 0.0 else res
    return res if x != math.inf else x


_TWO53 = 9007199254740992.0                 # 2**53: every double at least this large is an even integer
_L1_LO = float(Fraction(2, 3) - Fraction(_L1))   # 2/3 = _L1 + _L1_LO


# no "contract": a multiply fused into a following add would break the exact error terms
# (two-sums, fma residuals) the double-double steps rely on
@njit(error_model="numpy", cache=True, forceinline=True)
def pow(x, y):
    """x**y (vectorisable; within a few ulp of the C library's, see the module docstring), with
    its special cases (C99 Annex F, as NumPy's): 1 for y = 0 or x = 1 (nan too) and for
    x = -1, y = ±inf; nan for a finite x < 0 and a finite non-integer y; the sign of x for
    odd integer y (-0.0 and -inf too); 0 or inf at the ends, as the limits say."""
    a = abs(x)
    ef, f = _log_reduce(a)                   # garbage for a = 0, inf, nan: selected away below
    # log a = e ln2 + 2 atanh(s), s = f / (2 + f) = sh + sl (sl: the quotient's rounding error)
    dh = 2.0 + f
    dl = f - (dh - 2.0)                      # 2 + f = dh + dl exactly (|f| < 1)
    inv = 1.0 / dh
    sh = f * inv
    sl = (_fma(-sh, dh, f) - sh * dl) * inv
    hi, lo = _two_sum(ef * _LN2_HI, 2.0 * sh)          # e * _LN2_HI is exact
    # the tail s z (2/3 + z Q(z)) (~s**3 2/3) in double-double, s**3 and 2/3 too: its rounding
    # errors times a large y would be the result's
    z = sh * sh
    zl = _fma(sh, sh, -z) + 2.0 * sh * sl
    c = z * sh
    cl = _fma(z, sh, -c) + (zl * sh + z * sl)
    w = z * _atanh_q(z)
    r = _L1 + w
    rl = ((_L1 - r) + w) + _L1_LO
    th = c * r
    hi, lo2 = _two_sum(hi, th)
    lo = (lo + lo2) + ((_fma(c, r, -th) + (cl * r + c * rl)) + (2.0 * sl + ef * _LN2_LO))
    hi, lo = _two_sum(hi, lo)
    hi = -math.inf if a == 0.0 else hi
    hi = a if a == math.inf or a != a else hi          # noqa: PLR0124 - inf, nan
    # y log a = zh + zl (the product's rounding error exactly, by a fused multiply-add)
    zh = y * hi
    zl = _fma(y, hi, -zh) + y * lo
    e = exp(zh)
    res = _fma(e, zl, e)                     # e**(zh + zl) = e**zh (1 + zl)
    res = res if (e < math.inf) & (abs(zl) < math.inf) else e      # ±inf, nan: e**zh alone
    # the sign: |y| >= 2**53 (and inf, nan) counts as an even integer
    ay = abs(y)
    yc = ay if ay < _TWO53 else _TWO53         # noqa: FURB136 - a comparison: nan becomes 2**53
    yi = int(yc)
    res = -res if (yi & 1 == 1) & (_f64_bits(x) < 0) else res
    res = math.nan if (x < 0.0) & (a < math.inf) & (float(yi) != yc) else res
    return 1.0 if (y == 0.0) | (x == 1.0) | ((a == 1.0) & (ay == math.inf)) else res
