"""From a choice (``{class: node}``) to a checked program body.

The chosen e-nodes form a DAG.  What the NumPy backend computes is a DAG of *instances*:
an instance is a class together with the binder instances that bind its free variables
(``x[i]`` under two different ``sum i`` nodes is computed twice, once per loop).
:func:`instances` unfolds the choice into that DAG (and refuses a cyclic choice or a free
index variable outside its binder); its size-aware cost is the *scoped DAG cost*.

:func:`emit` then writes the instance DAG as an expression in which every instance is
computed once:

* a shared instance without binders inside stays structurally shared (the backend computes
  structurally equal sub-terms once);
* a shared instance that contains a binder is bound with a ``let`` placed at its immediate
  dominator (the lowest point every use passes through), because renaming binders after
  extraction (``readable_names``) may make the copies differ structurally.  A ``let`` is not
  hoisted past an ``if`` branch or into a loop body's enclosing scope when its value reads
  an array at a computed index (``(get x (+ i 1))``): there the guard may be what keeps the
  index in range, so that instance is emitted at each use instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import EqsatError
from ..lang.ast import Expr, Var
from ..egraph.decode import _build
from .algorithms import body_positions, bound_names
from .graph import INF, EGraphView

BINDER_OPS = frozenset({"Build", "Sum", "IFold", "Let"})


@dataclass
class InstanceDag:
    cls: list[int] = field(default_factory=list)
    node: list[int] = field(default_factory=list)
    kids: list[list[int]] = field(default_factory=list)
    post: list[int] = field(default_factory=list)     # children before parents; root last
    root: int = -1

    def __len__(self) -> int:
        return len(self.cls)


def instances(g: EGraphView, choice: dict[int, int], root: int | None = None) -> InstanceDag:
    """Unfold ``choice`` from ``root`` into the instance DAG (iteratively: deep terms are fine).
    Raises :class:`EqsatError` on a cycle, a missing class, an unextractable node or a free
    index variable outside its binder."""
    root = g.root if root is None else root
    dag = InstanceDag()
    index: dict[tuple, int] = {}
    on_path: dict[int, int] = {}

    def key_of(c: int, env: dict) -> tuple:
        try:
            return (c,) + tuple((v, env[v]) for v in sorted(g.fv[c]))
        except KeyError as e:
            raise EqsatError(f"extraction is ill-scoped: index variable {e.args[0]!r} is used outside "
                             f"its binder (class {g.class_ids[c]})") from None

    def new(c: int, env: dict) -> tuple[int, bool]:
        k = key_of(c, env)
        i = index.get(k)
        if i is not None:
            return i, False
        nid = choice.get(c)
        if nid is None:
            raise EqsatError(f"extraction found no finite term for class {g.class_ids[c]}")
        if g.nodes[nid].cost == INF:
            raise EqsatError(f"extraction chose an unextractable node {g.nodes[nid].op} "
                             f"(subsumed, :unextractable or out of scope)")
        i = len(dag.cls)
        index[k] = i
        dag.cls.append(c)
        dag.node.append(nid)
        dag.kids.append([])
        return i, True

    r, _ = new(root, {})
    dag.root = r
    # frames: (instance, env for it, next child position)
    envs: dict[int, dict] = {r: {}}
    stack = [(r, 0)]
    on_path[root] = 1
    while stack:
        i, pos = stack[-1]
        n = g.nodes[dag.node[i]]
        if pos == len(n.kids):
            stack.pop()
            on_path[dag.cls[i]] -= 1
            dag.post.append(i)
            continue
        stack[-1] = (i, pos + 1)
        env = envs[i]
        if pos in body_positions(n.op, n.kind):
            env = dict(env)
            for v in bound_names(g, dag.node[i]):
                env[v] = i
        k = n.kids[pos]
        if on_path.get(k, 0) > 0:
            raise EqsatError(f"extraction is cyclic: class {g.class_ids[k]} contains itself")
        j, fresh = new(k, env)
        dag.kids[i].append(j)
        if fresh:
            envs[j] = {v: env[v] for v in g.fv[k]}
            on_path[k] = on_path.get(k, 0) + 1
            stack.append((j, 0))
    return dag


def dag_cost(g: EGraphView, dag: InstanceDag) -> float:
    """Scoped DAG cost: each instance paid once."""
    return float(sum(g.nodes[n].cost for n in dag.node))


def tree_cost(g: EGraphView, dag: InstanceDag) -> float:
    """Tree cost of the same term: every use paid again."""
    t = [0.0] * len(dag)
    for i in dag.post:
        t[i] = g.nodes[dag.node[i]].cost + sum(t[j] for j in dag.kids[i])
    return t[dag.root]


def _dominators(dag: InstanceDag) -> list[int]:
    rpo = list(reversed(dag.post))
    order = {v: k for k, v in enumerate(rpo)}
    preds: list[list[int]] = [[] for _ in range(len(dag))]
    for i in range(len(dag)):
        for j in set(dag.kids[i]):
            preds[j].append(i)
    idom = [-1] * len(dag)
    depth = [0] * len(dag)
    idom[dag.root] = dag.root
    for v in rpo:
        if v == dag.root:
            continue
        ps = sorted(preds[v], key=order.__getitem__)
        d = ps[0]
        for p in ps[1:]:
            a, b = d, p
            while a != b:
                while depth[a] > depth[b]:
                    a = idom[a]
                while depth[b] > depth[a]:
                    b = idom[b]
                if a != b:
                    a, b = idom[a], idom[b]
            d = a
        idom[v] = d
        depth[v] = depth[d] + 1
    return idom


def _risky(g: EGraphView, dag: InstanceDag) -> list[bool]:
    """Does the instance's term read an array at a computed (non-variable) index?"""
    risky = [False] * len(dag)
    for i in dag.post:
        n = g.nodes[dag.node[i]]
        r = any(risky[j] for j in dag.kids[i])
        if n.op == "Get" and len(dag.kids[i]) == 2:
            idx = g.nodes[dag.node[dag.kids[i][1]]]
            if idx.op not in ("Var", "Acc"):
                r = True
        risky[i] = r
    return risky


def _guarded_between(g: EGraphView, dag: InstanceDag, top: int, x: int) -> bool:
    """Is ``x`` reached from ``top`` through an ``if`` branch or a loop body?"""
    seen = set()
    stack = [(top, False)]
    while stack:
        i, guarded = stack.pop()
        if i == x:
            if guarded:
                return True
            continue
        if (i, guarded) in seen:
            continue
        seen.add((i, guarded))
        n = g.nodes[dag.node[i]]
        body = body_positions(n.op, n.kind)
        for pos, j in enumerate(dag.kids[i]):
            gj = guarded or (n.op == "If" and pos > 0) or (pos in body and n.op != "Let")
            stack.append((j, gj))
    return False


def emit(g: EGraphView, dag: InstanceDag, let_all: bool = False) -> tuple[Expr, int]:
    """The expression of the instance DAG, each instance computed once (see module doc).
    Returns (expression, number of lets introduced)."""
    refs = [0] * len(dag)
    for i in range(len(dag)):
        for j in dag.kids[i]:
            refs[j] += 1
    has_binder = [False] * len(dag)
    for i in dag.post:
        has_binder[i] = g.nodes[dag.node[i]].op in BINDER_OPS or any(has_binder[j] for j in dag.kids[i])
    idom = _dominators(dag)
    risky = None
    to_bind: dict[int, list[int]] = {}
    for i in reversed(dag.post):          # root first: parents before children
        n = g.nodes[dag.node[i]]
        if refs[i] < 2 or n.kind in ("leaf", "var") or n.op == "Len":
            continue
        if not (has_binder[i] or let_all):
            continue
        if risky is None:
            risky = _risky(g, dag)
        if risky[i] and _guarded_between(g, dag, idom[i], i):
            continue
        to_bind.setdefault(idom[i], []).append(i)
    taken = set(g.names)
    names: dict[int, str] = {}
    k = 0
    for lst in to_bind.values():
        for i in lst:
            while f"share{k}" in taken:
                k += 1
            names[i] = f"share{k}"
            taken.add(names[i])
    expr: list = [None] * len(dag)
    for i in dag.post:
        n = g.nodes[dag.node[i]]
        it = iter(dag.kids[i])
        args = []
        for t, v in n.args:
            if t == "l":
                args.append(v)
            else:
                j = next(it)
                args.append(Var(names[j]) if j in names else expr[j])
        e = _build(n.op, args)
        for x in to_bind.get(i, ()):
            e = _let(names[x], expr[x], e)
        expr[i] = e
    return expr[dag.root], len(names)


def _let(name: str, value: Expr, body: Expr) -> Expr:
    from ..lang.ast import Let
    return Let(name, value, body)


def check_term(g: "EGraphView | None", body: Expr, program=None) -> None:
    """Well-formedness of an extracted body: only program inputs and sizes (of ``g`` and of
    ``program``) are free, and it type-checks against ``program``'s parameters when given.
    Raises :class:`EqsatError`."""
    from ..lang.binders import free_vars
    allowed = set()
    if g is None and program is None:
        return
    for n in (g.nodes if g is not None else ()):
        if n.op in ("Input", "Dim"):
            allowed.add(n.names()[0])
    if program is not None:
        from ..lang.types import size_names
        for p in program.params:
            allowed.add(p.name)
            allowed.update(size_names(p.type))
    free = set(free_vars(body)) - allowed
    if free:
        raise EqsatError(f"extracted program is ill-scoped: {', '.join(sorted(free))} free outside "
                         f"its binder")
    if program is not None:
        from ..lang.ast import Program
        from ..lang.typecheck import check_program
        from ..errors import TypeCheckError
        try:
            check_program(Program(program.params, body))
        except TypeCheckError as e:
            raise EqsatError(f"extracted program does not type-check: {e}") from None
