"""Reductions (``sum``, reductions recognised in ``ifold``), BLAS/einsum contractions and
sequential loops of the NumPy backend's code generator (a mixin of ``_codegen._Gen``).
"""
from __future__ import annotations

from ..cost.semantics import SCAN_ACCUMULATE, contraction, fold_shape, is_literal_zero, summed_build
from ..lang.folds import peel_lets
from ..lang.ast import (Build, Expr, Fst, If, IFold, Int, Let, Num, Pair, Prim, Scan, Snd, Sum, Var,
                        scoped_children)
from ._values import (Block, IdxV, PairV, V, _drop_unit_axes, _flat, _int_exponent, _leaves, _rebuild, _show,
                      _Unsupported)


class FoldMixin:
    """Methods of :class:`eqsat_ad.backend._codegen._Gen` for loops and reductions."""

    # -- reductions ----------------------------------------------------------------------
    _IDENT = {"sum": "0", "prod": "1", "max": "(-_inf)", "min": "_inf", "maximum": "(-_inf)", "minimum": "_inf"}
    _RED = {"sum": "_addr", "prod": "_mulr", "max": "_fmaxr", "min": "_fminr", "maximum": "_maxr",
            "minimum": "_minr"}

    def reduce(self, kind: str, size_e: Expr, var: str, body_e: Expr, env: dict, node: Expr):
        name = summed_build(body_e, var, lambda n: self.let_src.get(id(env.get(n)))) if kind == "sum" else None
        if name is not None:
            # the sum of the elements of a let-bound build, (let ((v (build k f))) .. (sum k (get v i))),
            # is the sum of its body: a dot / matrix-vector product instead of the product
            # array (materialised, transposed) reduced
            b, benv = self.let_src[id(env[name])]
            n0 = self.ev(size_e, env)
            n1 = self.ev(b.size, benv)
            if isinstance(n0, V) and isinstance(n1, V) and not n0.S and not n1.S and (
                    n0 is n1 or n0.code == n1.code or n0.const is not None and n0.const == n1.const):
                return self.reduce("sum", b.size, b.var, b.body, benv, node)
        n = self.extent(self.ev(size_e, env), node)
        masked = bool(n.S)
        ext = self.emit(f"_max_extent({n.code})", [n], (), 0, "i") if masked else n
        iv, prev = self.open_scope(ext, node)
        d = iv.d
        if masked:
            mask = self.emit(f"({self.materialise(iv).code} < {n.code})", [iv.mat, n],
                             n.S | {d}, 0, "b")
            self.guard = self.guard + ((mask.code, mask.block),)
        env2 = dict(env)
        env2[var] = iv
        res = None
        if kind == "sum" and not masked:
            res = self.contraction(body_e, env2, iv, node)
        if res is None:
            body = self.ev(body_e, env2)
        self.close_scope(prev)
        if res is not None:
            return res
        return self.reduce_result(kind, body, iv, n, mask if masked else None, node)

    def reduce_result(self, kind, body, iv: IdxV, n: V, mask, node):
        if isinstance(body, PairV):
            return PairV(self.reduce_result(kind, body.fst, iv, n, mask, node),
                         self.reduce_result(kind, body.snd, iv, n, mask, node))
        if isinstance(body, IdxV):
            body = self.materialise(body)
        d, r = iv.d, body.rank
        if mask is not None:
            if r:
                raise _Unsupported(f"masked reduction of arrays: {_show(node)}")
            body = self.emit(f"_where({mask.code}, {body.code}, {self._IDENT[kind]})",
                             [mask, body], mask.S | body.S, 0, body.dt)
        if d not in body.S:
            if kind == "sum":
                return self.emit(f"_mul_n({body.code}, {n.code})", [body, n], body.S, r, body.dt,
                                 body.dims)
            if kind == "prod":
                return self.emit(f"_pow({body.code}, {n.code})", [body, n], body.S, r, "f", body.dims)
            # an empty reduction keeps the axes of its body: a scalar identity would collapse
            # them (then an enclosing sum over an axis of extent 0 summed one element)
            ident = self._IDENT[kind] if not (body.S or r) else \
                f"_full(_shape({body.code}), {self._IDENT[kind]})"
            return self.emit(f"({body.code} if {n.code} > 0 else {ident})", [body, n],
                             body.S, r, body.dt, body.dims)
        S2 = body.S - {d}
        q = max(S2) if S2 else 0
        axes = list(range(r, r + d - q))
        ax = str(axes[0]) if len(axes) == 1 else "(" + ", ".join(map(str, axes)) + ")"
        extra = f", initial={self._IDENT[kind]}" if kind in ("max", "min", "maximum", "minimum") else ""
        return self.emit(f"{self._RED[kind]}({body.code}, {ax}{extra})", [body], S2, r, body.dt,
                         body.dims, comment=_show(node))

    def contraction(self, body_e: Expr, env: dict, iv: IdxV, node: Expr):
        """``sum_i u*w`` as a BLAS dot / vector-matrix product when the layouts allow."""
        b = body_e
        while type(b) is Let:          # sum (let ((t ..)) (* t t)) -- see through lets
            v = self.ev(b.value, env)
            env = dict(env)
            env[b.name] = v
            b = b.body
        if type(b) is Prim and b.op == "pow" and _int_exponent(b.args[1]) == 2:
            b = Prim("*", (b.args[0], b.args[0]))
        if not (type(b) is Prim and b.op == "*"):
            return None
        u, w = (self.ev(x, env) for x in b.args)
        if any(isinstance(x, (PairV, IdxV)) or x.rank or x.dt != "f" for x in (u, w)):
            return None
        d = iv.d
        one = frozenset({d})
        # dot / matrix-vector / einsum: declared with their costs (semantics.contraction)
        kind = contraction(u.S, w.S, d)
        if kind is None:
            return None
        if kind == "einsum":
            return self.einsum(u, w, d, node)
        if u.S != one:
            u, w = w, u
        uf, wf = _flat(u.code, d), _flat(w.code, d)
        if kind == "dot":
            return self.emit(f"_dot({uf}, {wf})", [u, w], (), 0, "f", comment=_show(node))
        S2 = w.S - {d}
        q = max(S2)
        if len(w.S) == 2:
            # a matrix (axes d, q) times a vector: W @ x on the matrix as a 2-D view (BLAS
            # gemv), the result laid out along q
            p = w.p
            keep = [(p - pos) in w.S for pos in range(p)]
            m = _drop_unit_axes(w.code, keep)
            wt = m[: -len(".transpose(1, 0)")] if m.endswith(".transpose(1, 0)") else f"{m}.T"
            code = f"_dot({wt}, {uf})"
            if q > 1:
                code = f"{code}[:{', None' * (q - 1)}]"
            return self.emit(code, [u, w], S2, 0, "f", comment=_show(node))
        else:
            # contract axis 0 of w: move it last (a view) and multiply by the vector; reshaping a
            # transposed view would copy the whole matrix first (mlp: 3.7x hand-written NumPy)
            code = f"_matmul(_moveaxis({w.code}, 0, -1), {uf})"
        if d - 1 - q:
            code = f"{code}[{', '.join(['0'] * (d - 1 - q))}]"
        return self.emit(code, [u, w], S2, 0, "f", comment=_show(node))

    def einsum(self, u: V, w: V, d: int, node: Expr) -> V:
        """``sum_i u*w`` with both factors varying along other axes too (e.g. matmul)."""
        def operand(v: V) -> tuple[str, str]:
            code = _drop_unit_axes(v.code, [dd in v.S for dd in range(v.p, 0, -1)])
            return code, "".join(chr(96 + dd) for dd in range(v.p, 0, -1) if dd in v.S)
        (uc, us), (wc, ws) = operand(u), operand(w)
        S2 = (u.S | w.S) - {d}

        def make(cs, layout):
            """The call with its output axes in the layout's order (einsum writes them so:
            a build over the result then needs no transpose, the result is C-ordered)."""
            if layout is None:
                q = max(S2) if S2 else 0
                depths = list(range(q, 0, -1))
            else:
                N = layout["N"]
                depths = [0] * len(layout["pos"])
                for old, new in layout["pos"].items():
                    depths[new] = N - old
            depths = [dd if dd in S2 else None for dd in depths]
            while depths and depths[0] is None:
                depths.pop(0)
            code = f"_contract('{us},{ws}->{''.join(chr(96 + dd) for dd in depths if dd is not None)}', {uc}, {wc})"
            if None in depths:
                code = f"{code}[{', '.join(':' if dd is not None else 'None' for dd in depths)}]"
            return code
        v = self.emit(make((), None), [u, w], S2, 0, "f", comment=_show(node))
        self.note_elementwise(v, [], make)
        return v

    # -- ifold ---------------------------------------------------------------------------
    def ifold(self, e: IFold, env: dict):
        init = self.ev(e.init, env)
        if isinstance(init, PairV):
            return self.ifold_pair(e, init, env)
        r = self.fold_pattern(e.acc, e.var, e.body, e.init, e.size, init, env, e)
        if r is not None:
            return r
        return self.loop(e, [(e.acc, None)], [init], [e.body], env, init)

    def fold_pattern(self, acc, var, body, init_e, size, init: V, env, node):
        b, wrap = peel_lets(body, acc, self.fv)

        free = lambda x: acc not in self.fv(x)  # noqa: E731
        zero = Int(0) if isinstance(init, V) and init.dt == "i" else Num(0.0)
        # which bodies are one vectorised reduction, and which: declared with their cost
        shape = fold_shape(b, acc, free, scalar_init=isinstance(init, V) and init.rank == 0, zero=zero)
        if shape is None:
            return None
        if shape.kind == "identity":
            if b is not body:       # the lets' values may raise, as in the interpreter's loop
                return None
            self.extent(self.ev(size, env), node)    # its errors are the interpreter's too
            return init
        term = wrap(shape.term)
        if shape.kind == "prod":
            red = self.reduce("prod", size, var, term, env, node)
            return self.emit(f"({init.code} * {red.code})", [init, red], init.S | red.S,
                             init.rank, "f", init.dims)
        if shape.kind in ("sum", "sub"):
            if shape.kind == "sum" and is_literal_zero(init_e):
                return self.ev(Sum(size, var, term), env)
            return self.ev(Prim("+" if shape.kind == "sum" else "-", (init_e, Sum(size, var, term))), env)
        red = self.reduce(shape.kind, size, var, term, env, node)
        if shape.kind in ("maximum", "minimum"):     # the max/min primitives: nan propagates
            fn = "_max" if shape.kind == "maximum" else "_min"
            return self.emit(f"{fn}({init.code}, {red.code})", [init, red], init.S | red.S, 0, "f")
        is_max = shape.kind == "max"
        return self.emit(f"_fold_extreme({init.code}, {red.code}, {is_max})", [init, red],
                         init.S | red.S, 0, "f")

    # -- scan: every state of a fold ---------------------------------------------------------
    def scan(self, e: Scan, env: dict):
        """The ``n + 1`` states: one ``ufunc.accumulate`` for a scalar additive or
        multiplicative recurrence (the states of ``acc + e_i`` are a cumulative sum), else
        the fold's Python loop writing each state into a preallocated array."""
        init = self.ev(e.init, env)
        if isinstance(init, PairV):
            return self.ifold_pair(e, init, env, states=True)
        r = self.scan_pattern(e, init, env)
        if r is not None:
            return r
        return self.loop(e, [(e.acc, None)], [init], [e.body], env, init, states=True)

    def scan_pattern(self, e: Scan, init: V, env: dict):
        if isinstance(init, IdxV) or init.rank or init.S:
            return None
        b, wrap = peel_lets(e.body, e.acc, self.fv)
        free = lambda x: e.acc not in self.fv(x)  # noqa: E731
        shape = fold_shape(b, e.acc, free, zero=Int(0) if init.dt == "i" else Num(0.0))
        if shape is None or shape.kind not in SCAN_ACCUMULATE:
            return None
        terms = self.ev(Build(e.size, e.var, wrap(shape.term)), env)
        if isinstance(terms, PairV) or terms.S or terms.rank != 1:
            return None
        # [init, t_0, t_1, ...] accumulated left to right: the loop's own order of operations
        ufunc = SCAN_ACCUMULATE[shape.kind]
        return self.emit(f"_np.{ufunc}.accumulate(_np.concatenate(([{init.code}], {terms.code})))",
                         [init, terms], (), 1, init.dt if init.dt == terms.dt else "f",
                         (None,), comment=_show(e))

    def ifold_pair(self, e: IFold, init: PairV, env: dict, states: bool = False):
        """Split a pair accumulator into components; independent ones are folded (and
        pattern-matched) separately, the rest share one sequential loop.  With ``states``
        (a ``scan``), every component's states are kept: one loop for all of them."""
        paths: list[tuple] = []

        def walk(v, path):
            if isinstance(v, PairV):
                walk(v.fst, path + (0,))
                walk(v.snd, path + (1,))
            else:
                paths.append(path)
        walk(init, ())
        names = {p: self.fresh_var(f"{e.acc}.{''.join(map(str, p))}") for p in paths}
        acc = e.acc

        def project(b: Expr, path: tuple) -> Expr:
            if not path:
                return b
            if type(b) is Pair:
                return project(b.fst if path[0] == 0 else b.snd, path[1:])
            if type(b) is Let and b.name != acc:
                return Let(b.name, b.value, project(b.body, path))
            if type(b) is If:
                return If(b.cond, project(b.then, path), project(b.else_, path))
            return project(Fst(b) if path[0] == 0 else Snd(b), path[1:])

        def tree(prefix: tuple) -> Expr:
            if prefix in names:
                return Var(names[prefix])
            return Pair(tree(prefix + (0,)), tree(prefix + (1,)))

        def subst(b: Expr, used: set) -> Expr:
            """Replace projections of the accumulator by the component variables."""
            chain: list[int] = []
            x = b
            while type(x) in (Fst, Snd):
                chain.append(0 if type(x) is Fst else 1)
                x = x.pair
            if type(x) is Var and x.name == acc:
                path = tuple(reversed(chain))
                for k in range(len(path), -1, -1):
                    if path[:k] in names:
                        used.add(path[:k])
                        out: Expr = Var(names[path[:k]])
                        for bit in path[k:]:
                            out = Fst(out) if bit == 0 else Snd(out)
                        return out
                used.update(p for p in names if p[:len(path)] == path)
                return tree(path)
            if acc not in self.fv(b):
                return b
            if acc in b.binds():           # shadowed in the body
                return b.with_children([c if acc in bound else subst(c, used)
                                        for c, bound in scoped_children(b)])
            return b.with_children([subst(c, used) for c in b.children()])

        comps, deps = {}, {}
        for p in paths:
            used: set = set()
            comps[p] = subst(project(e.body, p), used)
            deps[p] = used
        loop_set = set(paths) if states else {p for p in paths if deps[p] - {p}}
        changed = True
        while changed:
            changed = False
            for p in list(loop_set):
                for q in deps[p]:
                    if q not in loop_set:
                        loop_set.add(q)
                        changed = True
        leaves_init = dict(zip(paths, _leaves(init)))
        results = {}

        def proj_init(p):
            x = e.init
            for bit in p:
                x = Fst(x) if bit == 0 else Snd(x)
            return x
        for p in paths:
            if p in loop_set:
                continue
            sub = IFold(names[p], e.var, comps[p], proj_init(p), e.size)
            r = self.fold_pattern(names[p], e.var, comps[p], proj_init(p), e.size, leaves_init[p],
                                  env, e)
            results[p] = r if r is not None else self.loop(
                sub, [(names[p], None)], [leaves_init[p]], [comps[p]], env, leaves_init[p])
        if loop_set:
            lp = [p for p in paths if p in loop_set]
            outs = self.loop(e, [(names[p], None) for p in lp], [leaves_init[p] for p in lp],
                             [comps[p] for p in lp], env, None, states=states)
            for p, v in zip(lp, outs if isinstance(outs, list) else [outs]):
                results[p] = v
        return _rebuild(init, [results[p] for p in paths])

    def loop(self, e: IFold, accs, inits: list, bodies: list, env: dict, single, states: bool = False):
        """A sequential Python loop; the body is vectorised over the other index axes.  With
        ``states`` (a ``scan``) each accumulator's ``n + 1`` states are written into an array
        (states first, then the index axes, as every array value of the backend)."""
        n = self.extent(self.ev(e.size, env), e)
        masked = bool(n.S)
        if masked and states:
            raise _Unsupported(f"scan whose length depends on an index variable (a ragged array): {_show(e)}")
        ext = self.emit(f"_max_extent({n.code})", [n], (), 0, "i") if masked else n
        S_acc = [v.S | n.S for v in inits]
        parent = self.cur
        for _attempt in range(self.depth + 2):
            blk = Block(parent, "loop")
            self.cur = blk
            ivar = self.tmp("_i")
            iV = V(ivar, frozenset(), 0, "i", (), blk, ub=None if masked else n.skey)
            anames = [self.tmp("_a") for _ in inits]
            aVs = [V(nm, S, v.rank, v.dt, v.dims, blk) for nm, S, v in zip(anames, S_acc, inits)]
            env2 = dict(env)
            env2[e.var] = iV
            for (name, _), av in zip(accs, aVs):
                env2[name] = av
            saved = self.guard
            if not (ext.const is not None and ext.const > 0):
                self.guard = self.guard + ((self.scalar_guard(f"({ext.code} > 0)", ext), ext.block),)
            if masked:
                self.guard = self.guard + ((f"({ivar} < {n.code})", blk),)
            res = [self.ev(b, env2) for b in bodies]
            self.guard = saved
            self.cur = parent
            blk.open = False
            for rv in res:
                if isinstance(rv, PairV):
                    raise _Unsupported("nested pair accumulator")
            res = [self.materialise(x) if isinstance(x, IdxV) else x for x in res]
            new_S = [s | rv.S for s, rv in zip(S_acc, res)]
            if new_S == S_acc:
                break
            S_acc = new_S
        else:  # pragma: no cover
            raise _Unsupported("loop accumulator shape does not settle")
        lines = parent.lines
        lines.append(f"# {_show(e)}")
        for nm, v, S in zip(anames, inits, S_acc):
            code = self.conform(v, S)
            if not S and not v.rank and v.dt == "f" and not getattr(self, "portable", False) \
                    and not _is_float_literal(code):
                # a NumPy scalar (x[0]) as the accumulator makes every step's arithmetic a
                # NumPy-scalar operation, ~3x slower than on a Python float (same values)
                code = f"_float({code})"
            lines.append(f"{nm} = {code}")
        snames = [self.tmp("_s") for _ in anames] if states else []
        # scalar states go to a list (an append costs a third of an array store), arrays into
        # a preallocated array
        listed = [not S for S in S_acc] if states else []
        for sn, nm, v, as_list in zip(snames, anames, inits, listed):
            dtype = {"f": "_f64", "i": "_i64", "b": "bool"}[v.dt]
            if as_list and not v.rank:
                lines.append(f"{sn} = [{nm}]")
            else:
                lines.append(f"{sn} = _np.empty(({ext.code} + 1,) + _shape({nm}), {dtype})")
                lines.append(f"{sn}[0] = {nm}")
        lines.append(f"for {ivar} in range({ext.code}):")
        lines.extend("    " + ln for ln in blk.lines)
        news = []
        for nm, rv, S in zip(anames, res, S_acc):
            code = self.conform(rv, S)
            if masked:
                code = f"_where({ivar} < {n.code}, {code}, {nm})"
            news.append(code)
        lines.append(f"    {', '.join(anames)} = {', '.join(news)}"
                     + ("," if len(anames) == 1 else ""))
        if len(anames) == 1:
            lines[-1] = f"    {anames[0]} = {news[0]}"
        for sn, nm, v, as_list in zip(snames, anames, inits, listed):
            lines.append(f"    {sn}.append({nm})" if as_list and not v.rank else f"    {sn}[{ivar} + 1] = {nm}")
        for sn, v, as_list in zip(snames, inits, listed):
            if as_list and not v.rank:
                dtype = {"f": "_f64", "i": "_i64", "b": "bool"}[v.dt]
                lines.append(f"{sn} = _np.array({sn}, {dtype})")
        if states:
            outs = [V(sn, S, v.rank + 1, v.dt, (None,) + tuple(v.dims), parent)
                    for sn, v, S in zip(snames, inits, S_acc)]
            return outs[0] if single is not None else outs
        outs = [V(nm, S, v.rank, v.dt, v.dims, parent, ro=v.ro or S != v.S)
                for nm, v, S in zip(anames, inits, S_acc)]
        return outs[0] if single is not None else outs


def _is_float_literal(code: str) -> bool:
    try:
        float(code)
        return True
    except ValueError:
        return False
