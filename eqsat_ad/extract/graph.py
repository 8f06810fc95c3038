"""A read-only Python view of a saturated e-graph, parsed once from egglog's serialized JSON.

Only the term part is kept: e-classes of sort ``Term`` and their e-nodes (constructors of
:data:`eqsat_ad.egraph.constructors.CONSTRUCTORS`), with literal arguments decoded (binder
names, numbers).  The analysis tables that the extractors need are read from the same JSON:

* ``fv``  -- the free variables of each class (the intersect-merged analysis of ``fv.egg``);
* ``extv`` -- the numeric extent of each index name (filled by the ``cost`` ruleset);
* the root: the class bound to the global ``$root``.

Nodes that may not be extracted get ``cost = inf`` (and never enter a solution):

* subsumed rows and ``:unextractable`` constructors (``Subst``), and constructors the
  decoder does not know (a user's rule file may declare its own);
* a node whose own free variables differ from its class's (the *scope guard*, the same rule
  as the in-egglog scope penalty: such a node may mention a variable that is out of scope
  where the class is used);
* a node with its own class as a child (a self-loop can never be part of a finite term).

>>> from eqsat_ad.egraph.session import EGraphSession
>>> s = EGraphSession([])
>>> s.add_term("root", '(Add (Input "x") (Input "x"))')
>>> g = EGraphView.from_session(s)
>>> [g.nodes[n].op for n in g.class_nodes[g.root]]
['Add']
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ..errors import EqsatError
from ..egraph.constructors import CONSTRUCTORS

INF = math.inf
# A Let that survives in the e-graph (rules/let.egg inlines them) is a last resort, as in
# egglog's costs (eqsat_ad/egraph/costrules.py: LET_COST): its name weighs 1, so the cost of
# everything that uses it would be understated.
LET_EXTRACT_COST = 1e11


@dataclass
class ENode:
    """One e-node: constructor ``op``, its class, the Term child classes (in order) and the
    full argument list (``("c", class)`` for a Term child, ``("l", value)`` for a literal)."""
    op: str
    cls: int
    kids: tuple[int, ...]
    args: tuple[tuple[str, object], ...]
    subsumed: bool = False
    own_fv: frozenset = frozenset()     # free variables of this node (from its children's classes)
    axes: frozenset = frozenset()       # index variables whose extents weigh this node (own + binder)
    cost: float = INF                   # node cost under the cost model (inf: not extractable)

    def __post_init__(self):
        # read many times by the cost and extraction passes (hundreds of thousands of calls on
        # a 20k-node e-graph): computed once
        self._kind = CONSTRUCTORS.get(self.op, ("other", 0))[0]
        self._names = tuple(v for t, v in self.args if t == "l")

    @property
    def kind(self) -> str:
        return self._kind

    def names(self) -> tuple:
        """Literal arguments (binder names, numbers) in order."""
        return self._names


@dataclass
class EGraphView:
    """Classes ``0..C-1`` (``class_ids`` are egglog's names), nodes ``0..N-1``."""
    class_ids: list[str]
    class_nodes: list[list[int]]
    nodes: list[ENode]
    fv: list[frozenset]
    root: int
    extents: dict[str, int] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)       # every string literal (to avoid when naming)
    fold_vars: set[str] = field(default_factory=set)   # index names of IFold binders
    acc_vars: set[str] = field(default_factory=set)
    let_vars: set[str] = field(default_factory=set)
    costed_with: object = None
    has_fv: list = field(default_factory=list)         # False where the analysis gave no fv row
    ext_classes: dict = field(default_factory=dict)     # index name -> class of its extent
    sizes: dict = field(default_factory=dict)           # the sizes the costs were assigned for

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_session(cls, session, root: str = "$root", text: "str | dict | None" = None) -> "EGraphView":
        return cls.from_json(session.serialize_json() if text is None else text, root,
                             root_class=root_class_of(session, root))

    @classmethod
    def from_json(cls, text: "str | dict", root: str = "$root", root_class: "str | None" = None) -> "EGraphView":
        """Parse serialized JSON.  The root is ``root_class`` (egglog's class id, see
        :func:`root_class_of`) or else the class whose ``let`` annotation is ``root`` (egglog
        annotates one global per class, so another global bound to the same class may hide it)."""
        data = json.loads(text) if isinstance(text, str) else text
        raw = data["nodes"]
        cdata = data.get("class_data", {})

        def ctype(eclass: str) -> str:
            t = cdata.get(eclass, {}).get("type")
            if t is None:
                t = eclass.rsplit("-", 1)[0]
            return t

        root_ids = [root_class] if root_class else [c for c, d in cdata.items() if d.get("let") == root]
        if not root_ids:
            raise EqsatError(f"the e-graph has no global {root} (add a program first)")
        # literals
        lits: dict[str, object] = {}
        for nid, nd in raw.items():
            if nd.get("children") or not nid.startswith("primitive"):
                continue
            t, op = ctype(nd["eclass"]), nd["op"]
            try:
                if t == "String":
                    lits[nid] = json.loads(op)
                elif t == "f64":
                    lits[nid] = float(op)
                elif t == "i64":
                    lits[nid] = int(op)
                elif t == "bool":
                    lits[nid] = op == "true"
            except (ValueError, json.JSONDecodeError):
                lits[nid] = op
        # term classes
        cindex: dict[str, int] = {}
        class_ids: list[str] = []
        for nid, nd in raw.items():
            if nd["op"] in CONSTRUCTORS or nd["op"] == "Subst" or ctype(nd["eclass"]) == "Term":
                ec = nd["eclass"]
                if ctype(ec) == "Term" and ec not in cindex:
                    cindex[ec] = len(class_ids)
                    class_ids.append(ec)
        if root_ids[0] not in cindex:
            raise EqsatError(f"{root} is not a Term")
        nodes: list[ENode] = []
        class_nodes: list[list[int]] = [[] for _ in class_ids]
        names: set[str] = set()
        for nid, nd in raw.items():
            ec = nd["eclass"]
            if ec not in cindex or nid.startswith("primitive"):
                continue
            args = []
            ok = True
            for ch in nd["children"]:
                cec = raw[ch]["eclass"] if ch in raw else None
                if cec in cindex:
                    args.append(("c", cindex[cec]))
                elif ch in lits:
                    args.append(("l", lits[ch]))
                    if isinstance(lits[ch], str):
                        names.add(lits[ch])
                else:
                    ok = False
            if not ok:
                continue
            node = ENode(nd["op"], cindex[ec], tuple(v for t, v in args if t == "c"), tuple(args),
                         bool(nd.get("subsumed", False)))
            class_nodes[node.cls].append(len(nodes))
            nodes.append(node)
        # fv of classes: fv rows (input node -> NameSet class), NameSet literal nodes (set-of names)
        sets: dict[str, frozenset] = {}
        for nid, nd in raw.items():
            if nid.startswith("primitive") and ctype(nd["eclass"]) == "NameSet":
                sets[nd["eclass"]] = frozenset(lits.get(ch) for ch in nd["children"])
        fv: list = [None] * len(class_ids)
        extents: dict[str, int] = {}
        ext_rel: list[tuple[str, int]] = []
        for nid, nd in raw.items():
            op = nd["op"]
            if op == "fv" and len(nd["children"]) == 1:
                ch = nd["children"][0]
                cec = raw[ch]["eclass"] if ch in raw else None
                s = sets.get(nd["eclass"])
                if cec in cindex and s is not None:
                    k = cindex[cec]
                    fv[k] = s if fv[k] is None else (fv[k] & s)
            elif op == "extv" and len(nd["children"]) == 1:
                name = lits.get(nd["children"][0])
                val = _i64_of(nd["eclass"], raw, lits)
                if isinstance(name, str) and val is not None:
                    extents[name] = min(val, extents.get(name, val))
            elif op == "ext" and len(nd["children"]) == 2:
                name = lits.get(nd["children"][0])
                ch = nd["children"][1]
                cec = raw[ch]["eclass"] if ch in raw else None
                if isinstance(name, str) and cec in cindex:
                    ext_rel.append((name, cindex[cec]))
        g = cls(class_ids, class_nodes, nodes, [f if f is not None else frozenset() for f in fv],
                cindex[root_ids[0]], extents, names)
        g.has_fv = [f is not None for f in fv]
        g.ext_classes = {}
        for name, k in ext_rel:
            g.ext_classes.setdefault(name, k)
        for n in nodes:
            if n.op in ("IFold", "Scan"):
                a, i = n.names()[:2]
                g.fold_vars.add(i)
                g.acc_vars.add(a)
            elif n.op == "Let":
                g.let_vars.add(n.names()[0])
        g._compute_fv()
        g._parents = None
        return g

    def _compute_fv(self) -> None:
        fv = self.fv
        for n in self.nodes:
            kind = n.kind
            if kind == "leaf":
                own = frozenset()
                ax = own
            elif n.op == "Var":
                own = frozenset([n.names()[0]])
                ax = own
            elif n.op == "Acc":
                own = frozenset(n.names()[:2])
                ax = own
            elif kind == "op":
                own = frozenset().union(*[fv[k] for k in n.kids]) if n.kids else frozenset()
                ax = own
            elif kind == "binder":
                s = n.names()[0]
                fsize, fbody = fv[n.kids[0]], fv[n.kids[1]]
                own = fsize | (fbody - {s})
                ax = fsize | fbody | {s}
            elif kind == "ifold":
                a, i = n.names()[:2]
                fb, fz, fn = (fv[k] for k in n.kids)
                own = fn | fz | (fb - {a, i})
                ax = fn | fz | fb | {i}
            else:
                own = ax = frozenset()
            n.own_fv, n.axes = own, ax

    # -- costs ---------------------------------------------------------------------------
    def extent(self, name: str, default: int, sizes: "dict | None" = None) -> int:
        """The extent of index ``name``: egglog's ``extv`` when the cost ruleset ran, else
        from its extent class (an ``Int`` literal or a ``Dim`` named in ``sizes``)."""
        if name in self.acc_vars or name in self.let_vars:
            return 1
        if name in self.extents:
            return self.extents[name]
        k = self.ext_classes.get(name)
        if k is not None:
            for nid in self.class_nodes[k]:
                n = self.nodes[nid]
                if n.op == "Int":
                    return max(int(n.names()[0]), 0)
                if n.op == "Dim" and sizes and n.names()[0] in sizes:
                    return int(sizes[n.names()[0]])
        return default

    def extractable(self, n: ENode) -> bool:
        if n.subsumed or n.op not in CONSTRUCTORS:
            return False
        if n.cls in n.kids:
            return False
        return n.own_fv == self.fv[n.cls] or not self.has_fv[n.cls]

    def _has_member(self, c: int, pred) -> bool:
        return any(pred(self.nodes[m]) for m in self.class_nodes[c])

    def _axis_names(self, m: "ENode", axis_vars: set) -> list:
        """The names of the index axes that ``m``'s operands are (empty unless all are)."""
        out = []
        for k in m.kids:
            names = [x.names()[0] for x in self._members(k, lambda x: x.op == "Var")
                     if x.names()[0] in axis_vars]
            if not names:
                return []
            out.append(names[0])
        return out

    def _members(self, c: int, pred) -> list:
        return [self.nodes[m] for m in self.class_nodes[c] if pred(self.nodes[m]) and not self.nodes[m].subsumed]

    def _is_acc(self, c: int, a: str) -> bool:
        return self._has_member(c, lambda m: m.op == "Acc" and m.names()[0] == a)

    def fold_shape(self, n: ENode) -> "tuple[str, int | None, ENode | None] | None":
        """How the backend computes this ``ifold`` (:func:`eqsat_ad.cost.semantics.fold_shape`,
        read on the members of its body class): ``(kind, term class, pattern member)`` for a
        vectorised shape (``identity``, ``sum``, ``sub``, ``prod``, ``max``, ``min``; the term
        class is None for an ``if``-shaped sum and for identity), None for a Python loop."""
        a = n.names()[0]
        body = n.kids[0]
        fv = self.fv
        if self._is_acc(body, a):
            return ("identity", None, None)
        kinds = {"Add": "sum", "Sub": "sub", "Mul": "prod"}

        def acc_op(m: ENode):
            if m.op not in kinds:
                return None
            x, y = m.kids
            if self._is_acc(x, a) and a not in fv[y]:
                return y
            if m.op != "Sub" and self._is_acc(y, a) and a not in fv[x]:
                return x
            return None

        for m in self._members(body, lambda m: m.op in kinds):
            t = acc_op(m)
            if t is not None:
                return (kinds[m.op], t, m)
        for m in self._members(body, lambda m: m.op == "If"):
            c, t, e = m.kids
            if a not in fv[c]:
                for this, other in ((t, e), (e, t)):
                    if self._is_acc(other, a) and self._has_member(this, lambda x: x.op == "Add"
                                                                   and acc_op(x) is not None):
                        return ("sum", None, m)
            # if (cmp t acc) t acc: Lt/Le(acc, t) is a max, Lt/Le(t, acc) a min ((> x y) is Lt(y, x))
            if self._is_acc(e, a) and a not in fv[t]:
                for cm in self._members(c, lambda x: x.op in ("Lt", "Le")):
                    x, y = cm.kids
                    if self._is_acc(x, a) and y == t:
                        return ("max", t, m)
                    if x == t and self._is_acc(y, a):
                        return ("min", t, m)
        return None

    def reduction_fold(self, n: ENode) -> bool:
        """Does the backend compile this ``ifold`` without a Python loop (a vectorised reduction,
        or its initial value)?  See :meth:`fold_shape`."""
        return self.fold_shape(n) is not None

    def _small_int_exponent(self, c: int) -> int | None:
        for m in self.class_nodes[c]:
            node = self.nodes[m]
            if node.op in ("Int", "Num") and not node.subsumed:
                v = node.names()[0]
                if float(v).is_integer() and abs(v) <= 4:
                    return int(v)
        return None

    def _is_zero(self, c: int) -> bool:
        return self._has_member(c, lambda m: m.op in ("Num", "Int") and not m.subsumed and m.names()[0] == 0)

    def _intish(self, c: int, index_vars: set) -> bool:
        """Is class ``c`` an integer (an index, a size, index arithmetic)?"""
        return self._has_member(c, lambda m: m.op in ("Int", "Len", "Dim")
                                or m.op == "Var" and m.names()[0] in index_vars)

    def assign_costs(self, model, sizes: "dict | None" = None) -> "EGraphView":
        """Cost of every node under ``model`` (a :class:`eqsat_ad.cost.CostModel`):
        ``model.node_cost(ctor, weight, calls)`` with weight the product of the extents of the
        node's index variables and calls the number of times the node's NumPy operation runs
        (the product of the extents of the sequential fold indices among them).  What the
        backend does with each shape is read from :mod:`eqsat_ad.cost.semantics`, as in
        ``CostModel.dag_cost``: a ``get`` along an index axis is a view (``GetAxis``), a
        ``build`` whose body ignores its index is a fill, a ``sum`` of such a body is one
        multiplication, ``pow`` by a small integer is multiplications, a ``sum`` of a product
        is one BLAS / ``einsum`` call, an ``ifold`` of a recognised shape is a vectorised
        reduction (not a Python loop).

        Patterns of two nodes (a contraction: ``Sum`` over ``Mul``; a reduction: ``IFold``
        over ``acc + t``) are priced at the outer node as what the pattern costs *minus* the
        pattern's inner member (never below 0), so that the sum over the chosen nodes is the
        pattern's cost when that member is the one chosen."""
        from ..cost.semantics import (FOLD_COMBINE, FOLD_REDUCTION, POW_MULS, RANGE_SELECT, contraction,
                                       ND_CALL, contraction_terms, diagonal_select, extra_axes,
                                       range_condition)
        from ..lang.ast import Int, Prim, Var
        from ..egraph.constructors import CTOR_TO_PRIM
        # equalities only: the node costs cannot see what the range's bounds are (the model
        # takes affine bounds and conjunctions; with < and <= of a literal alone, nested
        # guards priced cheaper than the conjunction made second-diff 13 % costlier)
        CMP_PRIM = {c: p for c, p in CTOR_TO_PRIM.items() if p == "="}
        default = int(getattr(model, "default_size", 1000))
        seq: set[str] = set()
        axis_vars: set[str] = set()
        shapes: dict[int, tuple] = {}
        for nid, n in enumerate(self.nodes):
            if n.op in ("Build", "Sum"):
                axis_vars.add(n.names()[0])
            elif n.op == "IFold":
                sh = shapes[nid] = self.fold_shape(n)
                (axis_vars if sh is not None else seq).add(n.names()[1])
            elif n.op == "Scan":        # a loop storing its states (eqsat_ad/ad/transpose.py)
                seq.add(n.names()[1])
        seq -= axis_vars            # a name bound both ways (not after renaming): count as axis
        self.fold_vars = seq
        index_vars = axis_vars | seq
        nonaxis = seq | self.acc_vars | self.let_vars

        extents: dict[str, float] = {}

        def ext(v) -> float:
            e = extents.get(v)
            if e is None:
                e = extents[v] = float(self.extent(v, default, sizes))
            return e

        diagonal: dict[int, "str | None"] = {}

        def diagonal_index(c: int) -> "str | None":
            """``i`` when class ``c`` (an ``if``'s condition) has a member ``(= i j)`` that the
            backend computes as a diagonal fill (``semantics.diagonal_select``: index axes
            ``i``, ``j`` of one extent), else None; per class, since many ``if``s share one."""
            if c not in diagonal:
                diagonal[c] = None
                for m in self.class_nodes[c]:
                    m = self.nodes[m]
                    if m.op != "Eq":
                        continue
                    names = self._axis_names(m, axis_vars)
                    if (diagonal_select(Prim("=", tuple(Var(v) for v in names)), lambda v: True) is not None
                            and len({ext(v) for v in names}) == 1):
                        diagonal[c] = names[0]
                        break
            return diagonal[c]

        ranges: dict[int, bool] = {}

        def range_guard(c: int) -> bool:
            """Has class ``c`` (an ``if``'s condition) a member the backend computes as a range
            guard on one index axis (``semantics.range_condition``: an index equal to an integer
            literal, ``(= 0 i)``), written as a slice rather than a where?"""
            if c not in ranges:
                ranges[c] = False
                for m in self._members(c, lambda x: x.op in CMP_PRIM):
                    args = []
                    for k in m.kids:
                        names = [x.names()[0] for x in self._members(k, lambda x: x.op == "Var")
                                 if x.names()[0] in axis_vars]
                        args.append(Var(names[0]) if names else
                                    Int(0) if self._has_member(k, lambda x: x.op == "Int") else None)
                    if None in args or len(args) != 2:
                        continue
                    rc = range_condition(Prim(CMP_PRIM[m.op], tuple(args)),
                                         lambda v: v if v in axis_vars else None, lambda x: False)
                    if rc is not None and len({f[0] for f in rc[1]}) == 1:
                        ranges[c] = True
                        break
            return ranges[c]

        def wc(axes) -> tuple[float, float]:
            w = calls = 1.0
            for v in axes:
                e = ext(v)
                w *= e
                if v in seq:
                    calls *= e
            return w, calls

        def cost(ctor: str, axes, times: float = 1.0) -> float:
            w, calls = wc(axes)
            c = float(model.node_cost(ctor, w * times, calls * times))
            k = extra_axes(ctor, len(frozenset(axes) - seq))
            if k:       # a call over several broadcast axes (semantics.ND_CALL)
                c += float(model.node_cost(ND_CALL, 0.0, calls * times * k))
            return c

        def size(axes) -> float:
            out = 1.0
            for v in axes:
                out *= ext(v)
            return out

        def sum_of(s: str, size_c: int, body_c: int, axes) -> tuple[float, "ENode | None"]:
            """A vectorised ``sum`` over ``s`` of class ``body_c``: its cost and the member of
            ``body_c`` it replaces (a product computed by one BLAS / einsum call)."""
            masked = bool(self.fv[size_c] - nonaxis)
            if not masked:
                for m in self._members(body_c, lambda m: m.op in ("Mul", "Pow")):
                    if m.op == "Mul":
                        u, w_ = m.kids
                    elif self._small_int_exponent(m.kids[1]) == 2:
                        u = w_ = m.kids[0]
                    else:
                        continue
                    if self._intish(u, index_vars) or self._intish(w_, index_vars):
                        continue
                    ua, wa = self.fv[u] - nonaxis, self.fv[w_] - nonaxis
                    kind = contraction(ua, wa, s)
                    if kind is None:
                        continue
                    loops = (self.fv[u] | self.fv[w_]) & seq
                    c = sum(cost(ctor, ax | loops) for ctor, ax in contraction_terms(kind, ua, wa, s, size))
                    return c, m
            c = cost("Sum", axes)
            if masked:
                c += cost("If", axes)
            return c, None

        leaf = getattr(model, "leaf_cost", None)
        inner: dict[int, ENode] = {}        # outer node -> the member its price replaces
        for nid, n in enumerate(self.nodes):
            if not self.extractable(n):
                n.cost = INF
                continue
            if n.op == "Let":
                n.cost = LET_EXTRACT_COST
                continue
            if n.kind in ("leaf", "var"):
                n.cost = float(leaf(n.op)) if leaf else 0.0
                continue
            op = n.op
            axes = n.axes
            if op == "Get":
                arr, idx = n.kids

                def axis(c: int) -> bool:     # an index axis the array does not vary along
                    return self._has_member(c, lambda m: m.op == "Var" and m.names()[0] in axis_vars
                                            and m.names()[0] not in self.fv[arr])

                def offset(m: ENode) -> bool:   # i + k, k + i, i - k with k a scalar integer
                    if m.op not in ("Add", "Sub"):
                        return False
                    x, y = m.kids
                    ok = lambda i, k: axis(i) and not (self.fv[k] - nonaxis) and self._intish(k, index_vars)  # noqa: E731
                    return ok(x, y) or (m.op == "Add" and ok(y, x))
                if axis(idx) or self._has_member(idx, offset):
                    op = "GetAxis"
            elif op in ("Build", "Sum"):
                s = n.names()[0]
                if s not in self.fv[n.kids[1]]:
                    if op == "Build":
                        op = "Fill"
                    else:
                        axes, op = n.own_fv, "Mul"
                elif op == "Sum":
                    n.cost, m = sum_of(s, n.kids[0], n.kids[1], axes)
                    if m is not None:
                        inner[nid] = m
                    continue
            elif op in ("And", "Or"):
                op = "If"
            elif op == "If" and diagonal_index(n.kids[0]) is not None:
                # a diagonal fill (semantics.diagonal_select): the off-diagonal branch written
                # into a fresh array, the diagonal set (one axis fewer)
                n.cost = cost("DiagFill", axes) + cost("DiagSet", axes - {diagonal_index(n.kids[0])})
                continue
            elif op == "If" and range_guard(n.kids[0]):
                # a range guard (CostModel._range_if): its bounds a few scalar operations, one
                # select (a slice write) over the axes
                n.cost = cost("Lt", frozenset(), 3) + cost(RANGE_SELECT, axes)
                continue
            elif op == "Pow":
                k = self._small_int_exponent(n.kids[1])
                if k is not None:
                    muls = POW_MULS[abs(k)]
                    c = cost("Mul", axes, muls) if muls else 0.0
                    if k < 0:
                        c += cost("Div", axes)
                    n.cost = float(c)
                    continue
            elif op == "IFold":
                a, i = n.names()[:2]
                sh = shapes.get(nid)
                own = n.own_fv
                if sh is None:
                    n.cost = cost("Loop", frozenset([i]) | self.fv[n.kids[2]])
                    continue
                kind, term, m = sh
                if kind == "identity":
                    n.cost = 0.0
                    continue
                body_axes = frozenset([i]) | self.fv[n.kids[2]] | (self.fv[n.kids[0]] - {a})
                if kind in ("sum", "sub"):
                    if term is not None:
                        c, _ = sum_of(i, n.kids[2], term, body_axes)
                    else:
                        c = cost("Sum", body_axes)
                    if not (kind == "sum" and self._is_zero(n.kids[1])):
                        c += cost(FOLD_COMBINE[kind], own)
                else:
                    c = cost(FOLD_REDUCTION[kind], body_axes) + cost(FOLD_COMBINE[kind], own)
                n.cost = c
                if m is not None:
                    inner[nid] = m
                continue
            n.cost = cost(op, axes)
        for nid, m in inner.items():
            n = self.nodes[nid]
            if m.cost < INF:
                n.cost = max(0.0, n.cost - m.cost)
        self.costed_with = model
        self.sizes = dict(sizes or {})
        return self

    def assign_egglog_costs(self, text: "str | dict") -> "EGraphView":
        """Use the integer costs egglog computed (``cost_table_*`` rows, divided by
        ``COST_SCALE``) instead of a Python model; nodes without a row cost inf
        (leaves 0)."""
        from ..egraph.costrules import COST_SCALE
        data = json.loads(text) if isinstance(text, str) else text
        raw = data["nodes"]
        table: dict[tuple, float] = {}
        for nid, nd in raw.items():
            op = nd["op"]
            if op.startswith("cost_table_"):
                key = (op[len("cost_table_"):],
                       tuple(raw[c]["eclass"] if not c.startswith("primitive") else raw[c]["op"]
                             for c in nd["children"]))
                v = _i64_of(nd["eclass"], raw, {})
                if v is not None:
                    table[key] = min(table.get(key, math.inf), v / COST_SCALE)
        for n in self.nodes:
            if not self.extractable(n):
                n.cost = INF
                continue
            if n.kind in ("leaf", "var"):
                n.cost = 0.0
                continue
            key = (n.op, tuple(self.class_ids[v] if t == "c" else _egg_lit(v) for t, v in n.args))
            n.cost = table.get(key, INF)
            if n.op == "Let" and n.cost < INF:
                n.cost = LET_EXTRACT_COST
        self.costed_with = "egglog"
        return self

    # -- helpers -----------------------------------------------------------------------
    def reachable(self, root: int | None = None) -> list[int]:
        """Classes reachable from ``root`` through extractable nodes."""
        root = self.root if root is None else root
        seen = {root}
        stack = [root]
        while stack:
            c = stack.pop()
            for nid in self.class_nodes[c]:
                n = self.nodes[nid]
                if n.cost == INF:
                    continue
                for k in n.kids:
                    if k not in seen:
                        seen.add(k)
                        stack.append(k)
        return sorted(seen)

    def parents(self) -> list[list[int]]:
        """For each class, the nodes that have it as a child (computed once: the view is
        read-only; callers must not change the lists)."""
        out = getattr(self, "_parents", None)
        if out is None:
            out = [[] for _ in self.class_ids]
            for nid, n in enumerate(self.nodes):
                for k in set(n.kids):
                    out[k].append(nid)
            self._parents = out
        return out

    def stats(self) -> dict:
        return {"eclasses": len(self.class_ids), "enodes": len(self.nodes),
                "extractable_enodes": sum(1 for n in self.nodes if n.cost < INF)}


def root_class_of(session, root: str = "$root") -> "str | None":
    """egglog's serialized class id (``Term-<value>``) of the global ``root``."""
    import re
    try:
        fn = session.eg.freeze().functions.get(root)
        if fn is None or not fn.rows:
            return None
        m = re.fullmatch(r"Value\((\d+)\)", str(fn.rows[0].output))
        return f"{fn.output_sort}-{m.group(1)}" if m else None
    except Exception:   # noqa: BLE001 - older bindings: fall back to the let annotation
        return None


def _i64_of(eclass: str, raw: dict, lits: dict) -> int | None:
    # egglog names a primitive's class after its sort and value ("i64-100"); the literal
    # node of that class is "primitive-i64-100"
    nd = raw.get("primitive-" + eclass)
    if nd is not None:
        try:
            return int(nd["op"])
        except ValueError:
            return None
    if eclass.startswith("i64-"):
        try:
            return int(eclass[4:])
        except ValueError:
            return None
    return None


def _egg_lit(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)
