"""Extraction of the cheapest program from a saturated e-graph, in Python.

``ea.optimize(..., extractor=...)`` offers three extractors over the same e-graph
(docs/cost-and-extraction.md).  All three answer to one measure: ``CostModel.dag_cost`` of
the program a candidate becomes (:func:`program_measure`, what ``optimize`` reports), and
each starts from the previous one's result, so ILP <= DAG <= tree holds by construction:

* ``"tree"`` -- the cheapest tree under the cost model's e-node costs (:func:`tree_choice`,
  Python: a model's own ``node_cost`` counts) or egglog's own tree extraction (costs
  computed inside egglog), whichever the measure prices lower;
* ``"dag"``  -- greedy DAG extraction (a shared sub-term paid once, scope-aware), then a local
  search that swaps in terms reusing what the program already computes
  (:func:`refine_sharing`), or the ``"tree"`` result when that is cheaper;
* ``"ilp"``  -- a 0-1 program (``scipy.optimize.milp``/HiGHS) over the same e-node costs with
  global sharing, with a time limit, or the ``"dag"`` result when that is cheaper.  Its
  solver status (``ilp_solver_status``) is about the 0-1 program's own objective, not
  about the measure: "optimal" there does not make the result optimal.

Every result is checked: it decodes (no ``Subst``), it is acyclic, no index variable is
free outside its binder, and it type-checks against the program (when given).

>>> import eqsat_ad as ea
>>> p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))")
>>> res = ea.optimize(ea.grad(p, "x"), sizes={"n": 100}, extractor="dag")
>>> res.report.extraction["extractor"], res.report.extraction["lets"]
('dag', 0)
"""
from __future__ import annotations

import time

from ..errors import EqsatError
from .algorithms import dag_choice, tree_choice
from .emit import InstanceDag, check_term, dag_cost, emit, instances, tree_cost
from .graph import INF, EGraphView

__all__ = ["extract", "extract_with", "EGraphView", "Extraction", "tree_choice", "dag_choice"]

#: the extractors, cheapest-found last (each starts from the one before); and the default:
#: the greedy DAG pays a shared sub-term once, as the measure and the backend do, and costs
#: little more time than the tree (docs/cost-and-extraction.md, "When each wins")
EXTRACTORS = ("tree", "dag", "ilp")
DEFAULT_EXTRACTOR = "dag"

DEFAULT_ILP_SECONDS = 5.0
#: egglog's own tree extraction is skipped when the tree it would return has more nodes than
#: this and than ``LET_ALL_RATIO`` x its distinct classes (egglog writes the whole tree out,
#: and a shared chain of lets, inlined, is exponentially large)
EGGLOG_TREE_MAX = 20_000
#: an emitted body whose tree (shared sub-terms counted at every use) has more nodes than
#: this, and than ``LET_ALL_RATIO`` x its instances, is emitted again with a let for every
#: shared instance, so that walking it (type checking, renaming, the interpreter) stays linear
EMIT_TREE_MAX = 5_000
LET_ALL_RATIO = 2


def tree_size(e, cap: int = 10**15) -> int:
    """Nodes of ``e`` as a tree (a Python object reached twice counts twice), computed over the
    distinct objects (linear), capped at ``cap``."""
    memo: dict[int, int] = {}
    stack = [e]
    while stack:
        x = stack[-1]
        if id(x) in memo:
            stack.pop()
            continue
        kids = x.children()
        todo = [c for c in kids if id(c) not in memo]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        memo[id(x)] = min(cap, 1 + sum(memo[id(c)] for c in kids))
    return memo[id(e)]


def _distinct(e) -> int:
    """Distinct Python objects in ``e``."""
    seen: set = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if id(x) not in seen:
            seen.add(id(x))
            stack.extend(x.children())
    return len(seen)


def _choice_tree_size(g: EGraphView, choice: dict, cap: int) -> tuple[int, int]:
    """Nodes of the tree ``choice`` gives the root (shared classes counted at every use), and
    its distinct classes; (0, 0) when the root has no term."""
    size: dict[int, int] = {}
    stack = [g.root]
    on: set = set()
    while stack:
        c = stack[-1]
        if c in size:
            stack.pop()
            continue
        nid = choice.get(c)
        if nid is None:
            return 0, 0                # nothing to extract
        kids = g.nodes[nid].kids
        todo = [k for k in kids if k not in size]
        if todo and c not in on:
            on.add(c)
            stack.extend(todo)
            continue
        stack.pop()
        size[c] = min(cap, 1 + sum(size.get(k, cap) for k in kids))
    return size[g.root], len(size)


class Extraction:
    """The outcome of one extractor: ``body`` (an Expr), ``choice`` (class -> node; None for
    egglog's own tree extraction), ``cost`` (**the** measure: ``CostModel.dag_cost`` of the
    program the result becomes -- what ``optimize`` reports), ``graph_cost`` (the scoped DAG
    cost of the choice over the e-graph's node costs, what the greedy DAG extractor
    minimises), ``tree_cost`` (the same, every use paid) and ``info``."""

    def __init__(self, name: str, g: EGraphView, choice: "dict | None", dag: "InstanceDag | None", body,
                 lets: int, info=None, measure=None):
        self.name = name
        self.choice = choice
        self.dag = dag
        self.body = body
        self.lets = lets
        self.graph_cost = dag_cost(g, dag) if dag is not None else None
        self.tree_cost = tree_cost(g, dag) if dag is not None else None
        self.cost = float(measure(body)) if measure is not None else self.graph_cost
        self.info = dict(info or {})

    def summary(self) -> dict:
        return {"cost": self.cost, "graph_cost": self.graph_cost, "tree_cost": self.tree_cost,
                "lets": self.lets, "instances": len(self.dag) if self.dag is not None else None, **self.info}


def _finish(name: str, g: EGraphView, choice: dict, program, let_all: bool, info=None, measure=None) -> Extraction:
    dag = instances(g, choice)
    body, lets = emit(g, dag, let_all=let_all)
    if not let_all and tree_size(body, EMIT_TREE_MAX + 1) > max(EMIT_TREE_MAX, LET_ALL_RATIO * len(dag)):
        body, lets = emit(g, dag, let_all=True)     # a let per shared instance: linear size
    check_term(g, body, program)
    return Extraction(name, g, choice, dag, body, lets, info, measure)


def program_measure(model, sizes: "dict | None", program=None, deadline: float | None = None):
    """THE measure of an extracted body: ``model.dag_cost`` of the program ``optimize`` returns
    (``readable_names`` applied, so that sub-terms equal up to binder names are shared as the
    backend shares them).  Every extractor returns the cheapest of its candidates under it.
    With ``deadline``, pricing past it raises an :class:`EqsatError` (the candidate is left
    out) when the model's ``dag_cost`` takes one.  ``measure.program(body)`` is that program
    (renamed once per body: ``optimize`` returns the one its cost was computed on)."""
    import inspect
    from ..egraph.decode import readable_names
    from ..lang.ast import Program
    params = tuple(program.params) if program is not None else ()
    sz = dict(sizes or {})
    cost = getattr(model, "dag_cost", None) or model.program_cost
    kw = {}
    if deadline is not None:
        try:
            if "deadline" in inspect.signature(cost).parameters:
                kw = {"deadline": deadline}
        except (TypeError, ValueError):
            pass

    named: dict[int, tuple] = {}      # id(body) -> (body, its program): renaming is not cheap

    def program(body) -> Program:
        """The program ``body`` becomes (``readable_names``), computed once per body."""
        hit = named.get(id(body))
        if hit is None or hit[0] is not body:
            hit = named[id(body)] = (body, readable_names(Program(params, body)))
        return hit[1]

    def measure(body) -> float:
        return float(cost(program(body), sz, **kw))
    measure.program = program
    return measure


def _better(new: "Extraction | None", old: "Extraction | None") -> "Extraction | None":
    """``new`` if it is strictly cheaper under the measure (rounding aside), else ``old``."""
    if old is None:
        return new
    if new is None or not new.cost < old.cost - 1e-12 * max(abs(old.cost), 1.0):
        return old
    return new


def _chosen(best: Extraction, name: str, candidates: dict, info: dict) -> Extraction:
    """``best`` relabelled as the result of extractor ``name``, with the candidates' costs.
    When the stage's own candidate is missing, ``info["fallback"]`` says why (the notes)."""
    winner = best.name
    best.name = name
    best.info.update(info)
    if name not in candidates and info.get("notes"):
        best.info["fallback"] = "; ".join(info["notes"]) + f"; the {winner} result used"
    elif name == "ilp" and info.get("ilp_solver_status") not in (None, "optimal"):
        best.info["fallback"] = (f"ILP stopped early ({info['ilp_solver_status']}); its best solution "
                                 f"was a candidate")
    best.info["chosen"] = winner
    best.info["candidates"] = dict(candidates)
    return best


#: :func:`refine_sharing`'s bounds: instance DAGs screened by graph cost in one extraction (each
#: a fraction of a millisecond on the corpus), moves priced per round under the measure (each an
#: emitted program and its ``dag_cost``: milliseconds, tens on the largest corpus gradients),
#: rounds, and neutral first steps looked past per round
SHARING_MAX_WORK = 100_000
SHARING_MAX_PRICED = 6
SHARING_MAX_ROUNDS = 8
SHARING_LOOKAHEAD = 12


def sharing_moves(g: EGraphView, choice: dict, used: set, reuse: bool = True) -> list[tuple[int, int]]:
    """The moves of :func:`refine_sharing`: ``(class, node)`` for every class the program uses
    and every other node of it that does not contain its own class, whose operands the program
    computes already (``reuse``) or that have a chosen term (added with the move)."""
    have = used if reuse else choice
    moves = []
    for c in sorted(used):
        cur = choice[c]
        for nid in g.class_nodes[c]:
            n = g.nodes[nid]
            if nid != cur and n.cost < INF and n.kids and c not in n.kids and all(k in have for k in n.kids):
                moves.append((c, nid))
    return moves


def refine_sharing(g: EGraphView, start: Extraction, program, let_all: bool, measure,
                   deadline: float | None = None) -> tuple[Extraction, int]:
    """Local search after the greedy DAG pass, which prices each class on its own and so misses
    a term that is dearer alone but reuses what the rest of the program computes (``a - (-2) dx``
    as ``a + (2 dx)`` where ``2 dx`` is computed anyway).

    A move gives one class the program uses another of its nodes (:func:`sharing_moves`; its
    operands keep or get their chosen terms).  Each round screens every move by the scoped graph
    cost of its instance DAG; where none lowers it, it looks one move past each of the first
    ``SHARING_LOOKAHEAD`` moves that leave it equal but change which classes the program computes
    (second moves reuse what the program then computes: ``t3 = (1/s)/r`` as ``(1/r)/s`` frees
    ``1/r`` for ``t7 = t6/r`` as ``t6 (1/r)``).  The ``SHARING_MAX_PRICED`` that lower it most are
    priced under the measure, and the cheapest strict improvement is taken.  It stops when none
    improves, after ``SHARING_MAX_ROUNDS`` rounds or ``SHARING_MAX_WORK`` instances screened, or
    at ``deadline``; nothing else depends on the clock.  Returns (the cheapest extraction found,
    rounds that improved it)."""
    best, taken = start, 0
    budget = [SHARING_MAX_WORK]

    def screen(choice: dict, used: set, base: float, reuse: bool = True):
        """(graph cost change, class, node, choice, its classes) of every move from ``choice``,
        whose instance DAG uses the classes ``used``."""
        out = []
        for c, nid in sharing_moves(g, choice, used, reuse):
            if budget[0] <= 0:
                break
            budget[0] -= len(used)
            moved = dict(choice)
            moved[c] = nid
            try:
                dag = instances(g, moved)
            except EqsatError:
                continue               # a cycle through other classes, or out of scope
            out.append((dag_cost(g, dag) - base, c, nid, moved, set(dag.cls)))
        return out

    for _ in range(SHARING_MAX_ROUNDS):
        base = best.graph_cost
        tol = 1e-9 * max(abs(base), 1.0)
        used = set(best.dag.cls)
        moves = screen(best.choice, used, base, reuse=False)
        better = [m for m in moves if m[0] < -tol]
        if not better:
            neutral = [m for m in moves if abs(m[0]) <= tol and m[4] != used][:SHARING_LOOKAHEAD]
            for m in neutral:
                better += [m2 for m2 in screen(m[3], m[4], base) if m2[0] < -tol]
        better.sort(key=lambda m: m[:3])
        round_best = best
        for _, _, _, choice, _ in better[:SHARING_MAX_PRICED]:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            try:
                round_best = _better(_finish("dag-shared", g, choice, program, let_all, measure=measure),
                                     round_best)
            except EqsatError:
                continue
        if round_best is best:
            break
        best, taken = round_best, taken + 1
    return best, taken


def extract(g: EGraphView, extractor: str = DEFAULT_EXTRACTOR, *, program=None, time_limit: float = DEFAULT_ILP_SECONDS,
            let_all: bool = False, measure=None, seeds=(), deadline: float | None = None) -> Extraction:
    """Run one extractor (``"tree"``, ``"dag"`` or ``"ilp"``) on a costed :class:`EGraphView`.

    Every extractor returns the cheapest of its candidates under one measure (``measure``:
    body -> cost; by default ``dag_cost`` of the model the view was costed with, at its
    sizes), and each one starts from the previous one's result, so ILP <= DAG <= tree holds
    by construction:

    * ``tree``: the cheapest tree under the e-graph's node costs (:func:`tree_choice`) and the
      ``seeds`` (e.g. egglog's own tree extraction);
    * ``dag``: the greedy scope-aware DAG choice, or the ``tree`` result when that is cheaper,
      then :func:`refine_sharing` from the cheaper one (candidate ``"dag-shared"``);
    * ``ilp``: the 0-1 program's choice, or the ``dag`` result when that is cheaper.

    ``info["candidates"]`` has every candidate's cost, ``info["chosen"]`` the winner."""
    if extractor not in EXTRACTORS:
        raise EqsatError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    if measure is None and hasattr(g.costed_with, "dag_cost"):
        measure = program_measure(g.costed_with, getattr(g, "sizes", None), program)
    t0 = time.perf_counter()
    candidates: dict = {}
    notes: list = []
    best = None
    for s in seeds:
        candidates[s.name] = s.cost
        best = _better(s, best)
    late = deadline is not None and best is not None and time.perf_counter() >= deadline
    if late:     # pricing a candidate (the model's dag_cost) cannot be interrupted: one is enough
        notes.append("time limit: the cost model's tree candidate was left out")
    own = None           # the cheapest candidate extracted from this e-graph (it has a choice)
    choice, _ = tree_choice(g) if not late else ({}, None)
    if g.root in choice:
        try:
            t = _finish("tree", g, choice, program, let_all, measure=measure)
            candidates["tree"] = t.cost
            best = _better(t, best)
            own = t
        except EqsatError as e:
            notes.append(f"tree choice unusable ({e})")
    if best is None:
        raise EqsatError("no finite term for the root (every candidate is subsumed, "
                         "unextractable or out of scope)")
    info = {"seconds_solver": time.perf_counter() - t0}
    if late:
        info["stopped"] = "time limit"
    if extractor == "tree":
        return _chosen(best, "tree", candidates, {**info, **({"notes": notes} if notes else {})})
    if deadline is not None and time.perf_counter() >= deadline:
        notes.append("time limit: no time left for the DAG stage")
        return _chosen(best, extractor, candidates, {**info, "notes": notes, "stopped": "time limit"})
    bound = min((c.graph_cost for c in (best,) if c.graph_cost is not None), default=INF)
    choice, _ = dag_choice(g, deadline=deadline)
    if deadline is not None and time.perf_counter() >= deadline:
        info["stopped"] = "time limit"
        notes.append("time limit: the greedy DAG pass was cut short")
    if g.root in choice:
        try:
            d = _finish("dag", g, choice, program, let_all, measure=measure)
            candidates["dag"] = d.cost
            bound = min(bound, d.graph_cost)
            best = _better(d, best)
            own = _better(d, own)
        except EqsatError as e:   # a greedy choice can close a cycle
            notes.append(f"greedy DAG choice unusable ({e})")
    else:
        notes.append("greedy DAG found no term for the root")
    if own is not None and (deadline is None or time.perf_counter() < deadline):
        t_share = time.perf_counter()
        refined, moves = refine_sharing(g, own, program, let_all, measure, deadline=deadline)
        info["seconds_sharing"] = time.perf_counter() - t_share
        if moves:
            candidates["dag-shared"] = refined.cost
            info["sharing_moves"] = moves
            bound = min(bound, refined.graph_cost)
            best = _better(refined, best)
    info["seconds_solver"] = time.perf_counter() - t0
    if extractor == "dag":
        return _chosen(best, "dag", candidates, {**info, **({"notes": notes} if notes else {})})
    if deadline is not None:
        left = deadline - time.perf_counter()
        if left <= 0:
            notes.append("time limit: no time left for the ILP stage")
            return _chosen(best, "ilp", candidates, {**info, "notes": notes, "stopped": "time limit"})
        time_limit = min(time_limit, left)
    from .ilp import ILPUnavailable, ilp_choice
    try:
        choice, sinfo = ilp_choice(g, upper_bound=bound, time_limit=time_limit)
    except ILPUnavailable as e:
        notes.append(f"scipy.optimize.milp unavailable ({e})")
        return _chosen(best, "ilp", candidates, {**info, "notes": notes})
    info.update({"ilp_" + k: v for k, v in sinfo.items() if k not in ("seconds_solver", "status")})
    info["ilp_solver_status"] = sinfo.get("status")
    info["seconds_solver"] = time.perf_counter() - t0
    if choice is None or g.root not in choice:
        notes.append(f"ILP solver returned no solution ({sinfo.get('status')})")
    else:
        try:
            i = _finish("ilp", g, choice, program, let_all, measure=measure)
            candidates["ilp"] = i.cost
            best = _better(i, best)
        except EqsatError as e:
            notes.append(f"ILP solution rejected ({e})")
    return _chosen(best, "ilp", candidates, {**info, **({"notes": notes} if notes else {})})


def extract_with(extractor: str, session, model, sizes: dict | None = None, *, program=None,
                 time_limit: float | None = None, costs: str = "model", let_all: bool = False,
                 deadline: float | None = None, egglog: bool = True, measure=None, seeds=()):
    """Entry point used by :func:`eqsat_ad.optimize`: extract ``$root`` of ``session`` (after
    the schedule and ``session.compute_costs()`` ran).  Returns ``(body, extra)`` with
    ``extra`` a JSON-able summary for ``report.extraction``.

    egglog's own tree extraction (over the costs computed in egglog) is one more candidate
    of the ``tree`` stage.  ``costs="model"`` prices every e-node with ``model`` (its full
    formula: per-call overheads, the backend's shapes, a subclass's ``node_cost``);
    ``costs="egglog"`` uses the integer costs egglog computed.  Either way every candidate
    is judged by ``model.dag_cost`` of the program it becomes (:func:`program_measure`).

    ``deadline`` (a ``time.perf_counter()`` value): the DAG and ILP stages stop there with the
    best candidate so far (``info["stopped"]``).  egglog's tree (``egglog=False`` leaves it
    out) is skipped when the tree it would write out is larger than ``EGGLOG_TREE_MAX``
    nodes (predicted from the same costs in Python): egglog cannot be interrupted, and such a
    tree can be exponentially larger than the e-graph.  ``measure``: :func:`program_measure`
    of ``model`` at ``sizes`` (made here when not given).  ``seeds``: ``(name, body)``, more
    candidates (programs extracted earlier in the run)."""
    t0 = time.perf_counter()
    if measure is None:
        measure = program_measure(model, sizes, program, deadline=deadline)
    seeds = [Extraction(name, None, None, None, body, 0, measure=measure) for name, body in seeds]
    egg_info: dict = {}
    import json
    data = json.loads(session.serialize_json())    # parsed once: the view and egglog's costs read it
    g = EGraphView.from_session(session, text=data)
    t_parse = time.perf_counter() - t0
    if egglog:
        g.assign_egglog_costs(data)
        choice, _ = tree_choice(g)
        size, distinct = _choice_tree_size(g, choice, 10**15)
        if not size:
            egglog = False
            egg_info["egglog_tree"] = "skipped (no term for the root)"
        elif size > max(EGGLOG_TREE_MAX, LET_ALL_RATIO * distinct):
            egglog = False
            egg_info["egglog_tree"] = f"skipped (its tree would have {size:.3g} nodes)"
    t1 = time.perf_counter()
    if egglog:
        try:
            body, egg_cost = session.extract_root()
            big = max(EGGLOG_TREE_MAX, LET_ALL_RATIO * _distinct(body))
            if tree_size(body, big + 1) > big:
                raise EqsatError(f"its tree has more than {big} nodes")
            check_term(None, body, program)
            seeds.append(Extraction("egglog-tree", None, None, None, body, 0, measure=measure))
            egg_info["egglog_cost"] = egg_cost
        except EqsatError as e:
            egg_info["egglog_tree"] = f"unusable ({e})"
    t_egg = time.perf_counter() - t1
    t2 = time.perf_counter()
    if costs == "egglog":
        g.assign_egglog_costs(data)
    else:
        g.assign_costs(model, sizes)
    t_parse += time.perf_counter() - t2
    res = extract(g, extractor, program=program,
                  time_limit=DEFAULT_ILP_SECONDS if time_limit is None else time_limit, let_all=let_all,
                  measure=measure, seeds=seeds, deadline=deadline)
    extra = {"seconds_egglog": t_egg, "seconds_parse": t_parse, **g.stats(), **egg_info, **res.summary()}
    return res.body, extra
