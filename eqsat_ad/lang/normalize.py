"""Sharing kept end to end: a deterministic normaliser and let re-introduction.

Programs are trees of :class:`~eqsat_ad.lang.ast.Expr` nodes in which sharing is written
with ``let``.  This module works on a *hash-consed DAG* of the same terms and writes it back
as a tree whose shared sub-terms are ``let``-bound, so that a value used many times is one
node everywhere (docs/architecture.md, "Sharing").

Inside, terms are **locally nameless**: a variable bound inside the term is a de Bruijn
index (``bv k``: the k-th enclosing binder, innermost 0; ``ifold`` binds the accumulator as
``bv 1`` and the index as ``bv 0`` in its body), any other variable is a name.  Every node is
hash-consed, so sub-terms equal up to renaming of bound variables are one node (CSE modulo
alpha) and every pass below is linear in the DAG, not in the tree it unfolds to.

:func:`normalize` (and :func:`normalize_program`) computes a normal form by administrative
reductions that never duplicate work:

* every ``let`` is inlined *as sharing* (the bound value becomes one DAG node, used by
  reference), dead ``let``s disappear;
* projections of pairs: ``fst (pair a b) -> a`` (also through an ``if`` whose branches are
  both pairs), ``snd`` likewise;
* ``length (build n f) -> n``;
* ``get (build n (lambda (i) e)) k -> e[i := k]`` when the array is used once -- in every
  context it is computed in, its only use is one ``get`` at a variable or an integer literal
  (the reads of one loop at its index are one node after hash-consing) -- so fusion
  computes each element once, as the array did.  An array read by two loops, at two
  different indices or at a computed index such as ``(+ i 1)`` is left alone: fusing it
  could repeat work, and the e-graph decides there with the cost model;
* ``if true a b -> a``, ``if false a b -> b``, ``if c a a -> a``.

:func:`share` (and :func:`share_program`) does only the first step and CSE, and one more
kind of sharing: a sub-term that contains a loop, uses two or more indices and is computed
under several loops of one extent, at their indices (equal up to the names *and the nesting
order* of its indices), is built once as an array (:func:`_materialise`).  It keeps the
program as written, shared.

Both write the DAG back with :func:`_emit_lets`: a sub-term used more than once (and not a
variable, literal or a small read such as ``(get x i)``) is bound by a ``let`` at the top of
the region (program, loop body, ``if`` branch) of the lowest point that dominates every use,
inside the binders it depends on; a sub-term that contains a loop and does not depend on an
enclosing loop's index is bound outside that loop (loop-invariant code motion), unless an
``if`` branch guarded it.  Otherwise a sub-term that can fail (it reads an array at a
computed index) is only bound where some use of it is evaluated anyway -- never moved out of
an ``if`` branch or a loop body that guarded every use: it is written at each use instead.
Binder and ``let`` names are fresh and unique in the result.

>>> from eqsat_ad.lang.syntax import parse_expr, show_expr
>>> e = parse_expr("(* (* (* x x) (* x x)) (* (* x x) (* x x)))")
>>> print(show_expr(share(e)))
(let ((t (* x x)) (t_1 (* t t))) (* t_1 t_1))
>>> e = parse_expr("(let ((a (build n (lambda (j) (exp (get x j)))))) (sum n (lambda (i) (* (get a i) (get a i)))))")
>>> print(show_expr(normalize(e)))
(sum n (lambda (i) (let ((t (exp (get x i)))) (* t t))))

Everything is iterative or recursive only along the nesting of non-``let`` forms (run under
:func:`~eqsat_ad.lang.binders.call_deep`): ``let`` chains and shared chains 10,000 deep are
fine.
"""
from __future__ import annotations

from ..errors import EqsatError
from .ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Prim,
                  Program, Scan, Snd, Sum, Var)
from .binders import call_deep
from .primitives import COMPARISONS

__all__ = ["normalize", "normalize_program", "share", "share_program", "has_sharing",
           "rename_free", "dag_size", "tree_size"]

# children order of each tag and the number of variables bound for each child
_BIND = {"build": (0, 1), "sum": (0, 1), "ifold": (2, 0, 0), "scan": (2, 0, 0)}
_FOLD_TAGS = frozenset(("ifold", "scan"))      # accumulator and index bound in the body
_LOOPS = frozenset(("build", "sum")) | _FOLD_TAGS
_LEAVES = frozenset(("num", "int", "bool", "fv", "bv"))
_SMALL = frozenset(("num", "int", "bool", "fv", "bv", "fst", "snd", "len", "get"))
_EMPTY: frozenset = frozenset()
CHEAP_SIZE = 4          # reads this small (leaves, fst/snd/length/get of them) are repeated
GUARD_SEARCH = 100_000  # steps of the guard search before a let is refused (written at uses)

_TAG_OF = {Build: "build", Sum: "sum", IFold: "ifold", Scan: "scan", Get: "get", Length: "len", Pair: "pair",
           Fst: "fst", Snd: "snd", If: "if", Prim: "prim"}


class _Store:
    """The hash-consed, locally nameless DAG (node ids are ints).

    Renumbering the loose indices of a term (a let-bound value read under more binders, the
    parts of a fused body that do not mention the fused index) is *lazy*: a ``rn`` node
    ``(rn v ((old, new) ...))`` stands for ``v`` renumbered, so the value stays one node and
    every read of it is the same computation (:class:`_Instances` looks through ``rn``)."""

    def __init__(self, rewrite: bool):
        self.rewrite = rewrite
        self.tag: list[str] = []
        self.data: list = []
        self.kids: list[tuple[int, ...]] = []
        self.lset: list[frozenset] = []     # loose de Bruijn indices the node uses
        self.lmax: list[int] = []           # 1 + the largest loose index (0: closed)
        self.loop: list[bool] = []          # contains a build / sum / ifold
        self.risky: list[bool] = []         # contains a get at a non-variable index
        self.index: dict = {}
        self.hint: dict[int, tuple] = {}    # binder node -> names it had in the input
        self.let_hint: dict[int, str] = {}  # node -> the let name it was bound to
        self._inst: dict = {}
        self.fuse_ok: set[int] = set()      # build nodes a get may be fused with (see _fuse)
        self._cform: dict[int, tuple] = {}
        self._ckeys: dict = {}

    # -- raw hash-consing ----------------------------------------------------------------
    def raw(self, tag: str, data, kids: tuple[int, ...]) -> int:
        key = (tag, repr(data) if tag == "num" else data, kids)
        n = self.index.get(key)
        if n is not None:
            return n
        n = len(self.tag)
        self.index[key] = n
        self.tag.append(tag)
        self.data.append(data)
        self.kids.append(kids)
        if tag == "bv":
            ls = frozenset((data,))
        elif tag == "rn":
            ls = frozenset(new for _, new in data)
        elif not kids:
            ls = _EMPTY
        else:
            binds = _BIND.get(tag)
            acc: set | frozenset = _EMPTY
            for pos, k in enumerate(kids):
                lk = self.lset[k]
                if not lk:
                    continue
                b = binds[pos] if binds else 0
                if b:
                    lk = frozenset(x - b for x in lk if x >= b)
                if not acc:
                    acc = lk
                elif not lk <= acc:
                    acc = acc | lk
            ls = acc if isinstance(acc, frozenset) else frozenset(acc)
        self.lset.append(ls)
        self.lmax.append(max(ls) + 1 if ls else 0)
        self.loop.append(tag in _LOOPS or any(self.loop[k] for k in kids))
        self.risky.append((tag == "get" and self.tag[kids[1]] not in ("bv", "fv"))
                          or any(self.risky[k] for k in kids))
        return n

    def leaf(self, tag: str, data) -> int:
        return self.raw(tag, data, ())

    # -- lazy renumbering ----------------------------------------------------------------
    def rn(self, v: int, f) -> int:
        """``v`` with each loose index ``k`` renumbered ``f(k)`` (a lazy ``rn`` node)."""
        ls = self.lset[v]
        if not ls:
            return v
        if self.tag[v] == "rn":
            inner = self.kids[v][0]
            mp = tuple((o, f(nw)) for o, nw in self.data[v])
            v = inner
        else:
            mp = tuple((k, f(k)) for k in sorted(ls))
        if all(o == nw for o, nw in mp):
            return v
        if self.tag[v] == "bv":
            return self.leaf("bv", mp[0][1])
        return self.raw("rn", mp, (v,))

    def shift(self, t: int, d: int, c: int = 0) -> int:
        """Add ``d`` to every loose index >= ``c`` of ``t`` (lazily)."""
        if d == 0 or self.lmax[t] <= c:
            return t
        return self.rn(t, lambda k: k + d if k >= c else k)

    def resolve(self, t: int) -> tuple[int, dict | None]:
        """``(node, renumbering)``: ``t`` itself, or the node an ``rn`` stands for."""
        if self.tag[t] == "rn":
            return self.kids[t][0], dict(self.data[t])
        return t, None

    def view(self, t: int) -> tuple[str, object, tuple[int, ...]]:
        """``t``'s tag, data and children, looking through ``rn`` (children renumbered)."""
        v, mp = self.resolve(t)
        if mp is None:
            return self.tag[v], self.data[v], self.kids[v]
        binds = _BIND.get(self.tag[v])
        kids = []
        for pos, k in enumerate(self.kids[v]):
            b = binds[pos] if binds else 0
            kids.append(self.rn(k, (lambda x, b=b: x if x < b else mp[x - b] + b)))
        return self.tag[v], self.data[v], tuple(kids)

    # -- smart constructors (the administrative reductions) -------------------------------
    def mk(self, tag: str, data, kids: tuple[int, ...]) -> int:
        if self.rewrite:
            t = self.tag
            if tag in ("fst", "snd"):
                (p,) = kids
                side = 0 if tag == "fst" else 1
                tp, _, pk = self.view(p)
                if tp == "pair":
                    return pk[side]
                if tp == "if":
                    c, a, b = pk
                    ta, _, ak = self.view(a)
                    tb, _, bk = self.view(b)
                    if ta == "pair" and tb == "pair":
                        return self.mk("if", None, (c, ak[side], bk[side]))
            elif tag == "len":
                (a,) = kids
                ta, _, ak = self.view(a)
                if ta == "build":
                    return ak[0]
            elif tag == "get":
                a, k = kids
                if self.resolve(a)[0] in self.fuse_ok and t[k] in ("bv", "int"):
                    return self.inst(self.view(a)[2][1], k)
            elif tag == "if":
                c, a, b = kids
                if t[c] == "bool":
                    return a if self.data[c] else b
                if a == b:
                    return a
        return self.raw(tag, data, kids)

    def cform(self, t: int) -> tuple[int, tuple[int, ...]]:
        """``(cid, order)``: ``t`` up to a renumbering or permutation of its loose indices --
        nodes with one ``cid`` compute the same thing when their loose indices, taken in
        ``order`` (first occurrence), denote the same variables.  The same computation read
        at another depth, or with two loop indices nested the other way round, is one
        ``cid``."""
        r = self._cform.get(t)
        if r is not None:
            return r
        tag = self.tag[t]
        if tag == "bv":
            r = (self._cid(("bv",)), (self.data[t],))
        elif tag == "rn":
            cid, order = self.cform(self.kids[t][0])
            mp = dict(self.data[t])
            r = (cid, tuple(mp[k] for k in order))
        elif not self.kids[t]:
            r = (self._cid((tag, repr(self.data[t]) if tag == "num" else self.data[t])), ())
        else:
            binds = _BIND.get(tag)
            cids, pattern, order, pos = [], [], [], {}
            for j, c in enumerate(self.kids[t]):
                b = binds[j] if binds else 0
                cc, oc = self.cform(c)
                cids.append(cc)
                pat = []
                for k in oc:
                    if k < b:
                        pat.append(-1 - k)
                    else:
                        o = k - b
                        if o not in pos:
                            pos[o] = len(order)
                            order.append(o)
                        pat.append(pos[o])
                pattern.append(tuple(pat))
            r = (self._cid((tag, self.data[t], tuple(cids), tuple(pattern))), tuple(order))
        self._cform[t] = r
        return r

    def _cid(self, key) -> int:
        c = self._ckeys.get(key)
        if c is None:
            c = self._ckeys[key] = len(self._ckeys)
        return c

    def _copy_hints(self, old: int, new: int) -> None:
        if old in self.hint and self.tag[new] == self.tag[old]:
            self.hint.setdefault(new, self.hint[old])
        if old in self.let_hint and self.tag[new] not in _LEAVES:
            self.let_hint.setdefault(new, self.let_hint[old])

    def inst(self, t: int, u: int, c: int = 0) -> int:
        """``t`` with index ``c`` replaced by ``u`` (shifted under ``c`` binders) and the
        indices above it lowered by one: the body of a binder applied to ``u``."""
        if self.lmax[t] <= c:
            return t
        if c not in self.lset[t]:                   # only renumbered: stays shared
            return self.rn(t, lambda k: k - 1 if k > c else k)
        key = (t, u, c)
        r = self._inst.get(key)
        if r is None:
            tag, data, kids = self.view(t)
            if tag == "bv":
                r = self.shift(u, c)
            else:
                binds = _BIND.get(tag)
                r = self.mk(tag, data, tuple(
                    self.inst(k, u, c + (binds[pos] if binds else 0))
                    for pos, k in enumerate(kids)))
                self._copy_hints(self.resolve(t)[0], r)
            self._inst[key] = r
        return r


# --------------------------------------------------------------------------------------
# named Expr -> locally nameless DAG
# --------------------------------------------------------------------------------------
_MISSING = object()


def _kids(e: Expr) -> tuple:
    """Children in :meth:`Expr.children` order (fast: no dataclass introspection)."""
    t = type(e)
    if t is Prim:
        return e.args
    if t is Build or t is Sum:
        return (e.size, e.body)
    if t is Get:
        return (e.array, e.index)
    if t is Let:
        return (e.value, e.body)
    if t is If:
        return (e.cond, e.then, e.else_)
    if t is IFold or t is Scan:
        return (e.body, e.init, e.size)
    if t is Pair:
        return (e.fst, e.snd)
    if t is Fst or t is Snd:
        return (e.pair,)
    if t is Length:
        return (e.array,)
    return ()


def _free_vars(order: list[Expr]) -> dict[int, frozenset]:
    """Free variables of every node, keyed by ``id``; ``order`` lists every node, children
    before parents."""
    fv: dict[int, frozenset] = {}
    for n in order:
        t = type(n)
        if t is Var:
            fv[id(n)] = frozenset((n.name,))
            continue
        ks = _kids(n)
        if not ks:
            fv[id(n)] = _EMPTY
            continue
        acc: frozenset = _EMPTY
        bound = n.binds()
        for pos, c in enumerate(ks):
            fc = fv[id(c)]
            if bound and fc and ((t is Let and pos == 1) or ((t is Build or t is Sum) and pos == 1)
                                 or ((t is IFold or t is Scan) and pos == 0)):
                fc = fc.difference(bound)
            if fc and not fc <= acc:
                acc = acc | fc
        fv[id(n)] = acc
    return fv


class _Reader:
    def __init__(self, store: _Store, e: Expr):
        self.s = store
        self.env: dict = {}
        # objects the input shares (a DAG of Python objects) are converted once per context;
        # their free variables key the memo
        shared: set[int] = set()
        state: dict[int, int] = {}
        order: list[Expr] = []          # children before parents
        stack = [e]
        while stack:
            n = stack[-1]
            st = state.get(id(n))
            if st is None:
                state[id(n)] = 1
                for c in _kids(n):
                    if id(c) in state:
                        shared.add(id(c))
                    else:
                        stack.append(c)
            else:
                stack.pop()
                if st == 1:
                    state[id(n)] = 2
                    order.append(n)
                else:
                    shared.add(id(n))
        self.shared = shared
        self.fv = _free_vars(order) if shared else None
        self.memo: dict = {}

    def read(self, e: Expr, depth: int) -> int:
        key = None
        if id(e) in self.shared:
            env = self.env
            rel = []
            for v in sorted(self.fv[id(e)]):
                b = env.get(v)
                if b is not None:
                    rel.append((v, b[0], depth - b[1]) if b[0] == "b" else (v, b[2], depth - b[1]))
            key = (id(e), tuple(rel))
            r = self.memo.get(key)
            if r is not None:
                return r
        if type(e) is Let:
            r = self._lets(e, depth)
        else:
            r = self._node(e, depth)
        if key is not None:
            self.memo[key] = r
        return r

    def _lets(self, e: Expr, depth: int) -> int:
        env, s = self.env, self.s
        saved = []
        while type(e) is Let:
            v = self.read(e.value, depth)
            if s.tag[v] not in _LEAVES:
                s.let_hint.setdefault(v, e.name)
            saved.append((e.name, env.get(e.name, _MISSING)))
            env[e.name] = ("v", depth, v)
            e = e.body
            if id(e) in self.shared:
                break
        r = self.read(e, depth)
        for name, old in reversed(saved):
            if old is _MISSING:
                del env[name]
            else:
                env[name] = old
        return r

    def _bound(self, names: tuple[str, ...], depth: int, body: Expr) -> int:
        env = self.env
        saved = [(n, env.get(n, _MISSING)) for n in names]
        for k, n in enumerate(names):
            env[n] = ("b", depth + k)
        r = self.read(body, depth + len(names))
        for n, old in reversed(saved):
            if old is _MISSING:
                del env[n]
            else:
                env[n] = old
        return r

    def _node(self, e: Expr, depth: int) -> int:
        s = self.s
        t = type(e)
        if t is Var:
            b = self.env.get(e.name)
            if b is None:
                return s.leaf("fv", e.name)
            if b[0] == "b":
                return s.leaf("bv", depth - b[1] - 1)
            return s.shift(b[2], depth - b[1])
        if t is Num:
            return s.leaf("num", float(e.value))
        if t is Int:
            return s.leaf("int", int(e.value))
        if t is BoolLit:
            return s.leaf("bool", bool(e.value))
        if t is Prim:
            return s.mk("prim", e.op, tuple(self.read(a, depth) for a in e.args))
        if t is Build or t is Sum:
            n = self.read(e.size, depth)
            b = self._bound((e.var,), depth, e.body)
            r = s.mk(_TAG_OF[t], None, (n, b))
            if s.tag[r] in _LOOPS:
                s.hint.setdefault(r, (e.var,))
            return r
        if t is IFold or t is Scan:
            b = self._bound((e.acc, e.var), depth, e.body)
            z = self.read(e.init, depth)
            n = self.read(e.size, depth)
            r = s.mk(_TAG_OF[t], None, (b, z, n))
            if s.tag[r] == _TAG_OF[t]:
                s.hint.setdefault(r, (e.acc, e.var))
            return r
        tag = _TAG_OF.get(t)
        if tag is None:
            raise EqsatError(f"cannot normalise {t.__name__}")
        return s.mk(tag, None, tuple(self.read(c, depth) for c in e.children()))


# --------------------------------------------------------------------------------------
# locally nameless DAG -> named Expr with lets
# --------------------------------------------------------------------------------------
class _Names:
    """Fresh names: ``base``, ``base_1``, ``base_2``, ... avoiding ``taken`` (a counter per
    stem, so n lets named alike cost O(n), not O(n^2))."""

    def __init__(self, taken):
        self.taken = set(taken)
        self.next: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        from .binders import _SUFFIX
        if base and base not in self.taken:
            self.taken.add(base)
            return base
        m = _SUFFIX.match(base)
        stem = m.group(1) if m and m.group(1) else (base or "v")
        k = self.next.get(stem, 1)
        while f"{stem}_{k}" in self.taken:
            k += 1
        self.next[stem] = k + 1
        name = f"{stem}_{k}"
        self.taken.add(name)
        return name


class _Instances:
    """The DAG of *instances* reachable from ``root``: a node together with the binder
    instances its loose indices refer to (``x[i]`` under two different ``sum i`` loops is
    two instances: it is computed once per loop).  Built iteratively, children after
    parents are visited (``post``: children before parents)."""

    def __init__(self, s: _Store, root: int):
        tag, kids, lset = s.tag, s.kids, s.lset
        self.inode = inode = []
        self.ikids = ikids = []
        self.imap = imap = []          # loose index -> slot (a slot: (binder instance, k))
        self.own = own = []            # the slots a binder instance binds (body order)
        self.scope = scope = []        # innermost binder instance it depends on (-1: none)
        self.hoist = hoist = []        # some use is inside a loop it does not depend on
        self.refs = refs = []
        self.parents = parents = []    # (parent instance, child position) per use
        index: dict = {}
        bdepth: list[int] = []         # binders around an instance where it was found first
        cur_depth = [0]

        self.members: dict[int, set[int]] = {}   # cid -> the nodes met with it

        def new(node: int, m: dict) -> tuple[int, bool]:
            if tag[node] == "rn":                   # the same computation, renumbered
                mp = s.data[node]
                node = kids[node][0]
                m = {o: m[nw] for o, nw in mp}
            cid, order = s.cform(node)
            slots = tuple(m[k] for k in order)
            self.members.setdefault(cid, set()).add(node)
            key = (cid, slots)
            i = index.get(key)
            if i is not None:
                return i, False
            slots = tuple(m[k] for k in sorted(lset[node]))
            i = len(inode)
            index[key] = i
            inode.append(node)
            ikids.append([])
            imap.append(m)
            refs.append(0)
            parents.append([])
            hoist.append(False)
            # the innermost binder it depends on: the one found deepest (an index's number
            # says nothing about nesting once renumbered through ``rn``)
            scope.append(max((sl[0] for sl in slots), key=bdepth.__getitem__) if slots else -1)
            bdepth.append(cur_depth[0])
            tg = tag[node]
            own.append(tuple((i, k) for k in range(2 if tg in _FOLD_TAGS else 1)) if tg in _LOOPS else ())
            return i, True

        r, _ = new(root, {})
        self.root = r
        self.post = post = []
        # (instance, next child position, enclosing binder instance, binders around it)
        stack = [(r, 0, -1, 0)]
        while stack:
            i, pos, encl, dep = stack[-1]
            node = inode[i]
            ks = kids[node]
            if pos == len(ks):
                stack.pop()
                post.append(i)
                continue
            stack[-1] = (i, pos + 1, encl, dep)
            c = ks[pos]
            binds = _BIND.get(tag[node])
            b = binds[pos] if binds else 0
            m = imap[i]
            cm = {}
            for k in lset[c]:
                cm[k] = own[i][b - 1 - k] if k < b else m[k - b]
            cur_depth[0] = dep + (1 if b else 0)
            j, fresh = new(c, cm)
            ikids[i].append(j)
            refs[j] += 1
            parents[j].append((i, pos))
            cencl = i if b else encl
            if cencl != scope[j]:
                hoist[j] = True
            if fresh:
                stack.append((j, 0, cencl, cur_depth[0]))


def _fusable(s: _Store, root: int) -> set[int]:
    """Build nodes every instance of which is used exactly once, by a ``get`` at a variable
    or literal index: fusing those computes each element once, as the array did."""
    inst = _Instances(s, root)
    ok: dict[int, bool] = {}
    for i, node in enumerate(inst.inode):
        if s.tag[node] != "build":
            continue
        good = False
        if inst.refs[i] == 1:
            p, pos = inst.parents[i][0]
            pn = inst.inode[p]
            good = pos == 0 and s.tag[pn] == "get" and s.tag[s.kids[pn][1]] in ("bv", "int")
        ok[node] = ok.get(node, True) and good
    return {n for n, g in ok.items() if g}


def _node_post(s: _Store, root: int) -> list[int]:
    """The nodes reachable from ``root``, children before parents (iterative)."""
    out: list[int] = []
    state: dict[int, int] = {}
    stack = [root]
    while stack:
        n = stack[-1]
        st = state.get(n)
        if st is None:
            state[n] = 1
            stack.extend(c for c in s.kids[n] if c not in state)
        else:
            stack.pop()
            if st == 1:
                state[n] = 2
                out.append(n)
    return out


def _fuse(s: _Store, root: int, rounds: int = 50) -> int:
    """Fuse the pull arrays :func:`_fusable` finds, until none is left (each round is linear
    in the DAG; fusing exposes new projections and new single uses)."""
    for _ in range(rounds):
        todo = _fusable(s, root)
        if not todo:
            break
        # rebuild bottom-up; a get of a fusable build becomes the build's body at the index
        order = _node_post(s, root)
        new: dict[int, int] = {}
        s.fuse_ok = set()
        s._inst.clear()
        for n in order:
            tg = s.tag[n]
            ks = s.kids[n]
            if not ks:
                new[n] = n
                continue
            if tg == "rn":
                m = s.rn(new[ks[0]], dict(s.data[n]).__getitem__)
            else:
                m = s.mk(tg, s.data[n], tuple(new[c] for c in ks))
            s._copy_hints(n, m)
            if n in todo and s.tag[m] == "build":
                s.fuse_ok.add(m)
            new[n] = m
        s.fuse_ok = set()
        root = new[root]
    return root


def _rebuild(s: _Store, root: int, new: dict[int, int]) -> int:
    """The DAG from ``root`` with the nodes of ``new`` replaced (the rest rebuilt over them)."""
    for n in _node_post(s, root):
        if n in new:
            continue
        tg = s.tag[n]
        ks = s.kids[n]
        if not ks or not any(c in new for c in ks):
            continue
        if tg == "rn":
            m = s.rn(new[ks[0]], dict(s.data[n]).__getitem__)
        else:
            m = s.mk(tg, s.data[n], tuple(new.get(c, c) for c in ks))
        s._copy_hints(n, m)
        new[n] = m
    return new.get(root, root)


def _materialise(s: _Store, root: int, rounds: int = 20) -> int:
    """Common sub-terms up to the name of a loop index: a sub-term that contains a loop, uses
    two or more indices and is computed under two (or more) loops of the same extent, at
    their indices (``exp (W x)`` of softmax regression, for one sample, for the class of the
    output and inside the sum over classes), becomes one array built once,
    ``(let ((a (build K (lambda (c) e)))) ... (get a c1) ... (get a c2))``.
    Done only when every instance of the sub-term is indexed by a loop of that extent (so the
    reads stay in range), and not for a sub-term that could fail (it would be computed at
    indices the program skipped)."""
    for _ in range(rounds):
        inst = _Instances(s, root)
        groups: dict = {}
        bad: set = set()
        size_of: dict = {}
        for i, node in enumerate(inst.inode):
            if not s.loop[node] or s.risky[node] or s.tag[node] in _LOOPS:
                continue
            if s.tag[node] == "get":             # a read of an array (one built here, say)
                a, k = s.kids[node]
                if s.tag[k] == "bv" and s.data[k] not in s.lset[a]:
                    continue
            cid, order = s.cform(node)
            if len(order) < 2:
                # over one index the backend computes it once already, whatever the index is
                # called (its one-axis memo), and the cost model prices it so
                continue
            slots = [inst.imap[i][k] for k in order]
            for p in range(len(order)):
                key = (cid, p)
                if key in bad:
                    continue
                b, k = slots[p]
                bn = inst.inode[b]
                size = s.kids[bn][0] if s.tag[bn] in ("build", "sum") else None
                if size is None or s.lset[size] or size_of.setdefault(key, size) != size:
                    bad.add(key)
                    continue
                others = tuple(slots[:p] + slots[p + 1:])
                groups.setdefault(key, {}).setdefault(others, set()).add(slots[p])
        cands = [key for key, d in groups.items()
                 if key not in bad and any(len(v) > 1 for v in d.values())]
        if not cands:
            return root
        # the largest first (a node is created after its children): outermost first
        cid, p = max(cands, key=lambda key: (max(inst.members[key[0]]), key[1]))
        members = sorted(inst.members[cid])
        rep = members[-1]
        order = s.cform(rep)[1]
        rank = {q: (0 if q == p else 1 + q - (q > p)) for q in range(len(order))}
        body = s.rn(rep, dict((order[q], rank[q]) for q in range(len(order))).__getitem__)
        arr = s.raw("build", None, (size_of[(cid, p)], body))
        s.hint.setdefault(arr, ("i",))
        s.let_hint.setdefault(arr, "a")
        new = {}
        for m in members:
            om = s.cform(m)[1]
            outer = s.rn(arr, dict((rank[q] - 1, om[q]) for q in range(len(om)) if q != p).__getitem__)
            new[m] = s.raw("get", None, (outer, s.leaf("bv", om[p])))
        root = _rebuild(s, root, new)
    return root


_COMPARE = frozenset(COMPARISONS)


def _index_test(s: _Store, inode, ikids, i: int) -> bool:
    """Is instance ``i`` a comparison of integer index terms: operands integer literals or
    variables, or sums and differences of them (no real literal)?"""
    def term(j: int, depth: int) -> bool:
        tg = s.tag[inode[j]]
        if tg in ("int", "bv", "fv"):
            return True
        return (tg == "prim" and depth < 2 and s.data[inode[j]] in ("+", "-")
                and all(term(k, depth + 1) for k in ikids[j]))
    node = inode[i]
    return (s.tag[node] == "prim" and s.data[node] in _COMPARE and len(ikids[i]) == 2
            and all(term(j, 0) for j in ikids[i]))


def _emit_lets(s: _Store, root: int, avoid) -> Expr:
    tag = s.tag
    names = _Names(avoid)
    inst = _Instances(s, root)
    inode, ikids, imap, own, scope = inst.inode, inst.ikids, inst.imap, inst.own, inst.scope
    hoist, refs, parents, post, r = inst.hoist, inst.refs, inst.parents, inst.post, inst.root
    slot_name: dict = {}
    for i in range(len(inode)):            # binder names, outermost first
        if own[i]:
            tg = tag[inode[i]]
            hint = s.hint.get(inode[i], ("acc", "i") if tg in _FOLD_TAGS else ("i",))
            for sl, h in zip(own[i], hint):
                slot_name[sl] = names(h)
    n_inst = len(inode)
    # small reads (leaves, fst/snd/length/get of them, counting what gets a let as a leaf)
    # are written at each use
    cheap = [False] * n_inst
    hoisted = [False] * n_inst
    size = [0] * n_inst
    for i in post:
        node = inode[i]
        tg = tag[node]
        if tg in _LEAVES:
            size[i] = 1
        elif tg in _SMALL:
            size[i] = min(CHEAP_SIZE + 1, 1 + sum(1 if (refs[j] >= 2 or hoisted[j]) and not cheap[j]
                                                  else size[j] for j in ikids[i]))
        elif _index_test(s, inode, ikids, i):
            # written at each use: the backend and the cost model see a range or one-hot guard
            # (if (= c i) ..) only in place, not through a let (bundle-adjust's Jacobian: one
            # where over (B, 6) per colour test instead of a slice write)
            size[i] = 1
        else:
            size[i] = CHEAP_SIZE + 1
        cheap[i] = size[i] <= CHEAP_SIZE
        hoisted[i] = hoist[i] and not cheap[i] and (s.loop[node] or refs[i] >= 2) and (
            not s.risky[node] or _unbranched(s, inode, ikids, scope[i], r, i))
    # ---- dominators of the placement graph: a hoisted instance hangs off its scope
    order = {v: k for k, v in enumerate(reversed(post))}
    idom = [-1] * n_inst
    depth = [0] * n_inst
    idom[r] = r
    for v in reversed(post):
        if v == r:
            continue
        if hoisted[v]:
            preds = [scope[v] if scope[v] >= 0 else r]
        else:
            preds = [p for p, _ in parents[v]]
        d = preds[0]
        for p in preds[1:]:
            a, b2 = d, p
            while a != b2:
                while depth[a] > depth[b2]:
                    a = idom[a]
                while depth[b2] > depth[a]:
                    b2 = idom[b2]
                if a != b2:
                    a, b2 = idom[a], idom[b2]
            d = a
        idom[v] = d
        depth[v] = depth[d] + 1
    hang: dict[int, list[int]] = {}       # binder instance -> hoisted instances in its body
    for v in range(n_inst):
        if hoisted[v] and scope[v] >= 0:
            hang.setdefault(scope[v], []).append(v)
    # ---- where each let goes: wrapped around an instance, or around a binder's body
    # A let goes to the top of the region its natural place (the immediate dominator) is
    # in -- the program, a loop body or an if branch: flat let chains, not lets nested deep
    # in expressions -- and a let whose place is inside another let's value floats out next
    # to it (when it depends on no binder inside it).
    bound: dict[int, str] = {}
    place: dict[int, tuple[int, bool]] = {}
    at_self: dict[int, list[int]] = {}
    at_body: dict[int, list[int]] = {}
    region: list = [None] * n_inst
    region[r] = (r, False)

    def slots_ok(v: int, d: int) -> bool:
        return set(imap[v].values()) <= set(imap[d].values())

    def settle(v: int, cand: tuple[int, bool]) -> tuple[int, bool]:
        h, in_body = cand
        while not in_body and h in place and slots_ok(v, h):
            h, in_body = place[h]
        return h, in_body

    for v in reversed(post):
        if v == r:
            continue
        if hoisted[v]:
            region[v] = (scope[v], True) if scope[v] >= 0 else (r, False)
        else:
            regs = set()
            for p, pos in parents[v]:
                tg = tag[inode[p]]
                binds = _BIND.get(tg)
                if binds and binds[pos]:
                    regs.add((p, True))
                elif tg == "if" and pos > 0:
                    regs.add((v, False))
                else:
                    regs.add(region[p])
            region[v] = regs.pop() if len(regs) == 1 else (v, False)
        if cheap[v]:
            continue
        if hoisted[v]:
            cands = [(scope[v], True) if scope[v] >= 0 else (r, False)]
        elif refs[v] >= 2:
            d = idom[v]
            natural = (d, bool(own[d]) and any(sl[0] == d for sl in imap[v].values()))
            cands = [settle(v, region[d]) if not natural[1] else natural, settle(v, natural), natural]
        else:
            continue
        for d, in_body in dict.fromkeys(cands):
            if not hoisted[v] and s.risky[inode[v]] and \
                    _guarded(s, inode, ikids, hoisted, hang, d, v, in_body):
                continue
            bound[v] = ""
            place[v] = (d, in_body)
            (at_body if in_body else at_self).setdefault(d, []).append(v)
            break
    for v in post:                      # names in the order the lets will read
        if v in bound:
            bound[v] = names(s.let_hint.get(inode[v], "t"))
    # ---- expressions, children first
    expr: list = [None] * n_inst

    def ref(j: int) -> Expr:
        return Var(bound[j]) if j in bound else expr[j]

    def wrap(lst, body: Expr) -> Expr:
        for x in sorted(lst, key=order.__getitem__):   # what others use (later in rpo) outermost
            body = Let(bound[x], expr[x], body)
            hash(body)
        return body

    for i in post:
        node = inode[i]
        tg = tag[node]
        ks = ikids[i]
        if tg == "num":
            e = Num(s.data[node])
        elif tg == "int":
            e = Int(s.data[node])
        elif tg == "bool":
            e = BoolLit(s.data[node])
        elif tg == "fv":
            e = Var(s.data[node])
        elif tg == "bv":
            e = Var(slot_name[imap[i][s.data[node]]])
        elif tg == "prim":
            e = Prim(s.data[node], tuple(ref(j) for j in ks))
        elif tg in _LOOPS:
            body_pos = 0 if tg in _FOLD_TAGS else 1
            args = [ref(j) for j in ks]
            if i in at_body:
                args[body_pos] = wrap(at_body[i], args[body_pos])
            nm = [slot_name[sl] for sl in own[i]]
            if tg == "build":
                e = Build(args[0], nm[0], args[1])
            elif tg == "sum":
                e = Sum(args[0], nm[0], args[1])
            else:
                e = (IFold if tg == "ifold" else Scan)(nm[0], nm[1], args[0], args[1], args[2])
        elif tg == "if":
            e = If(ref(ks[0]), ref(ks[1]), ref(ks[2]))
        elif tg == "get":
            e = Get(ref(ks[0]), ref(ks[1]))
        elif tg == "len":
            e = Length(ref(ks[0]))
        elif tg == "pair":
            e = Pair(ref(ks[0]), ref(ks[1]))
        elif tg == "fst":
            e = Fst(ref(ks[0]))
        elif tg == "snd":
            e = Snd(ref(ks[0]))
        else:  # pragma: no cover
            raise EqsatError(f"unknown node {tg}")
        hash(e)
        if i in at_self:
            e = wrap(at_self[i], e)
        expr[i] = e
    return expr[r]


def _unbranched(s: _Store, inode, ikids, sc: int, r: int, x: int) -> bool:
    """Is ``x`` reached from the top of its scope's body (``sc``; -1: the program) by a path
    that enters no ``if`` branch?  Then a loop-invariant ``x`` that can fail may still be
    computed outside the loops around it: only a loop that runs zero times could have
    skipped it (as the backend's vectorised loops assume too)."""
    if sc < 0:
        stack = [r]
    else:
        binds = _BIND[s.tag[inode[sc]]]
        stack = [j for pos, j in enumerate(ikids[sc]) if binds[pos]]
    seen: set[int] = set()
    while stack:
        i = stack.pop()
        if i == x:
            return True
        if i in seen:
            continue
        seen.add(i)
        if len(seen) > GUARD_SEARCH:
            return False
        tg = s.tag[inode[i]]
        stack.extend(j for pos, j in enumerate(ikids[i]) if not (tg == "if" and pos > 0))
    return False


def _guarded(s: _Store, inode, ikids, hoisted, hang, top: int, x: int, in_body: bool) -> bool:
    """Could evaluating ``x`` at the let's place (``top``, or its body) fail where the
    program did not?  Not when some use of ``x`` is evaluated whenever ``top`` is: a path
    from there to ``x`` that enters no ``if`` branch and no loop body.  (Hoisted instances
    hang off the body of the binder they were moved to.)"""
    def edges(i: int, start: bool):
        tg = s.tag[inode[i]]
        binds = _BIND.get(tg)
        for pos, j in enumerate(ikids[i]):
            body = bool(binds and binds[pos])
            if start and in_body:
                if body and not hoisted[j]:
                    yield j
                continue
            if hoisted[j] or body or (tg == "if" and pos > 0):
                continue
            yield j
        if start and in_body:
            yield from hang.get(i, ())

    seen = {top}
    stack = list(edges(top, True))
    steps = 0
    while stack:
        i = stack.pop()
        if i == x:
            return False
        steps += 1
        if steps > GUARD_SEARCH:
            return True
        if i in seen:
            continue
        seen.add(i)
        stack.extend(edges(i, False))
    return True


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------
def _run(e: Expr, rewrite: bool, avoid) -> Expr:
    store = _Store(rewrite)

    def go():
        root = _Reader(store, e).read(e, 0)
        if rewrite:
            root = _fuse(store, root)
        else:
            root = _materialise(store, root)
        free = {store.data[k] for k in range(len(store.tag)) if store.tag[k] == "fv"}
        return _emit_lets(store, root, set(avoid) | free)
    return call_deep(go, what="expression")


def normalize(e: Expr, avoid=()) -> Expr:
    """The normal form of ``e`` (see the module doc): lets inlined as sharing, administrative
    redexes reduced, common sub-terms (up to bound names) once, shared ones let-bound."""
    return _run(e, True, avoid)


def share(e: Expr, avoid=()) -> Expr:
    """``e`` unchanged in meaning and shape, but with every sub-term that occurs (or is
    computed) more than once -- as the same Python object, by ``let``, or as an alpha-equivalent
    copy -- bound once by a ``let``; loop-invariant loops moved out of loops."""
    return _run(e, False, avoid)


def _program_avoid(p: Program) -> set[str]:
    from .types import size_names
    out = set()
    for prm in p.params:
        out.add(prm.name)
        out.update(size_names(prm.type))
    return out


def normalize_program(p: Program) -> Program:
    """:func:`normalize` on a program's body."""
    return Program(p.params, normalize(p.body, _program_avoid(p)))


def share_program(p: Program) -> Program:
    """:func:`share` on a program's body."""
    return Program(p.params, share(p.body, _program_avoid(p)))


def has_sharing(e: Expr) -> bool:
    """Does ``e`` use a non-leaf Python object twice (is it a DAG rather than a tree)?
    Linear; a traced program whose Python values are reused is such a DAG.

    >>> from eqsat_ad.lang.ast import Prim, Var
    >>> y = Prim("*", (Var("x"), Var("x")))
    >>> has_sharing(y), has_sharing(Prim("+", (y, y)))
    (False, True)
    """
    seen: set[int] = set()
    stack = [e]
    while stack:
        n = stack.pop()
        for c in _kids(n):
            if not _kids(c):
                continue
            if id(c) in seen:
                return True
            seen.add(id(c))
            stack.append(c)
    return False


def rename_free(e: Expr, old: str, new: str) -> Expr | None:
    """``e`` with the free variable ``old`` renamed ``new``, rebuilding only the nodes that
    contain it, once each (a DAG stays a DAG: sub-terms without ``old`` keep their identity).
    For fresh names only: returns None when a binder of ``e`` binds ``old`` or ``new``
    (then use :func:`eqsat_ad.lang.binders.subst`).

    >>> from eqsat_ad.lang.ast import Prim, Var
    >>> y = Prim("*", (Var("h"), Var("h")))
    >>> z = rename_free(Prim("+", (y, y)), "h", "i")
    >>> z.args[0] is z.args[1], z.args[0].args[0].name
    (True, 'i')
    """
    done: dict[int, Expr] = {}
    stack = [e]
    while stack:
        n = stack[-1]
        if id(n) in done:
            stack.pop()
            continue
        ks = _kids(n)
        todo = [c for c in ks if id(c) not in done]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        if type(n) is Var:
            done[id(n)] = Var(new) if n.name == old else n
            continue
        b = n.binds()
        if old in b or new in b:
            return None
        new_ks = [done[id(c)] for c in ks]
        r = n if all(a is c for a, c in zip(new_ks, ks)) else n.with_children(new_ks)
        hash(r)
        done[id(n)] = r
    return done[id(e)]


def dag_size(e: Expr) -> int:
    """Distinct nodes of ``e`` (by identity)."""
    from .binders import _postorder
    return len(_postorder(e))


def tree_size(e: Expr, cap: int | None = None) -> int:
    """Nodes of ``e`` counted as a tree (every use), stopping at ``cap`` when given."""
    memo: dict[int, int] = {}
    from .binders import _postorder
    for n in _postorder(e):
        t = 1 + sum(memo[id(c)] for c in n.children())
        memo[id(n)] = t if cap is None else min(t, cap)
    return memo[id(e)]
