"""The NumPy backend's loop over the taps of a sum whose range guards move with its index
(:data:`eqsat_ad.cost.semantics.TAP_LOOP`): ``g_i = sum_j w_j (if (j <= i < j + t0) r[i - j] 0)``
is a Python loop over ``j`` adding ``w_j * r`` into the slice ``g[j:j + t0]`` -- a shifted slice
per tap -- instead of a gather of ``r`` at ``i - j`` and a ``where`` over ``m x n`` elements."""
from __future__ import annotations

from ..cost.semantics import tap_sum
from ..lang.ast import Build, IFold, Num, Prim, Sum, Var
from ._values import IdxV, V


class TapMixin:
    def tap_loop(self, e: Sum, env: dict):
        """``(sum m (lambda (j) body))`` as the sequential loop of ``ifold`` of ``acc + body``
        (``_folds.loop``: ``j`` is a scalar there, so the moving range guards of ``body`` are
        range guards of one axis, their terms added into slices by ``range_sum``) when
        :func:`~eqsat_ad.cost.semantics.tap_sum` says so; None otherwise."""
        if self.portable:
            return None
        env_j = dict(env)
        env_j[e.var] = V("0", frozenset(), 0, "i", (), self.root)     # j as a scalar

        def axis(name):
            v = env.get(name)
            return v if name != e.var and isinstance(v, IdxV) else None
        if not tap_sum(e.body, e.var, axis, lambda x: self._scalar_term(x, env_j), self.fv):
            return None
        n = self.ev(e.size, env)
        if not isinstance(n, V) or n.S or n.rank:
            return None
        # the loop-invariant arrays the body reads (a convolution's residual, a build of the
        # whole signal) are computed once, before the loop, under its guard (m > 0): the loop's
        # terms find them in the memo (computed under a prefix of their guards)
        saved = self.guard
        if not (n.const is not None and n.const > 0):
            self.guard = saved + ((self.scalar_guard(f"({n.code} > 0)", n), n.block),)
        try:
            for x in self._invariant_builds(e.body, env):
                self.ev(x, env)
        finally:
            self.guard = saved
        acc = self.fresh_var("%tap")
        fold = IFold(acc, e.var, Prim("+", (Var(acc), e.body)), Num(0.0), e.size)
        init = V("0.0", frozenset(), 0, "f", (), self.root, const=0.0)
        return self.loop(fold, [(acc, None)], [init], [fold.body], env, single=True)

    def _invariant_builds(self, e, env: dict) -> list:
        """The outermost ``build`` sub-terms of ``e`` whose free names are bound in ``env`` to
        values that vary along no axis (not the loop index, not an index axis)."""
        out: list = []
        stack = [e]
        while stack:
            x = stack.pop()
            if isinstance(x, Build) and self._scalar_term(x, env):
                out.append(x)
                continue
            stack.extend(x.children())
        return out
