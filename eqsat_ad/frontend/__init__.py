"""The Python front end: trace Python functions into programs, plus the M~ library.

>>> from eqsat_ad.frontend import trace, Vec, dot
>>> p = trace(lambda u, w: dot(u, w), u=Vec("n"), w=Vec("n"))
"""
from .trace import (Array, Index, Mat, Real, Size, Sym, Vec, and_, as_expr, as_sym, build,  # noqa: F401
                    cos, eq, example_types, exp, fst, get, if_, ifold, length, let, log,
                    not_, or_, pair, power, program, real, sin, snd, sqrt, sum, tan, tanh, trace,
                    where)
from .prims import abs_, log1p, max_, min_, sign  # noqa: F401  (from the primitive table)
from . import library  # noqa: F401  (registers the text-level library functions)
from . import numpy_like  # noqa: F401
from .library import (add, cols, dot, emul, eye, fill, logsumexp, mat_add, mat_map,  # noqa: F401
                      mat_trace, matmul, matvec, norm, onehot, outer, rows, scale, sigmoid, sqnorm,
                      sub, transpose, vmap, vmap2, vrange, vsum, zeros)

__all__ = ["trace", "program", "Sym", "Vec", "Mat", "Real", "Index", "Size", "Array", "build",
           "sum", "ifold", "get", "length", "if_", "where", "let", "pair", "fst", "snd", "eq",
           "and_", "or_", "not_", "real", "exp", "log", "sin", "cos", "tan", "sqrt", "tanh",
           "log1p", "sign", "abs_", "max_", "min_", "as_expr", "as_sym", "library", "vsum", "dot", "add", "sub", "emul", "scale", "vmap",
           "vmap2", "onehot", "fill", "vrange", "norm", "sqnorm", "outer", "matvec", "matmul",
           "transpose", "eye", "mat_trace", "mat_add", "mat_map", "zeros", "sigmoid", "logsumexp",
           "rows", "cols", "numpy_like", "power", "matmul", "example_types"]
