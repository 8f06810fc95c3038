"""The array language: types, expression nodes, syntax, type checking, binders, interpreter."""
from .ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Param,  # noqa: F401
                  Prim, Program, Scan, Snd, Sum, Var)
from .types import (BOOL, INDEX, REAL, SIZE, ArrayT, BoolT, IndexT, PairT, RealT, SizeT, Type,  # noqa: F401
                    mat, show_type, vec)
