"""Forward-mode AD by dual numbers: the D[[.]] transform and the derivative-program API.

>>> from eqsat_ad.ad import grad, jvp, jacobian, derivative   # each returns a Program
"""
from .api import derivative, dual_program, grad, jacobian, jvp, prepare  # noqa: F401
from .dual import (DUAL_SUFFIX, JVP_BINARY, JVP_UNARY, Dualizer, NameSupply, dual_expr,  # noqa: F401
                   dual_type, has_tangent)

__all__ = ["jvp", "derivative", "grad", "jacobian", "dual_program", "prepare", "dual_expr",
           "dual_type", "has_tangent", "JVP_UNARY", "JVP_BINARY", "Dualizer", "NameSupply",
           "DUAL_SUFFIX"]
