"""Extraction of the cheapest program from a saturated e-graph, in Python.

``ea.optimize(..., extractor=...)`` offers three extractors over the same e-graph and the
same size-aware node costs (docs/cost-and-extraction.md):

* ``"tree"`` -- egglog's own extractor (costs computed inside egglog); :func:`extract`
  with ``"tree"`` is a Python re-implementation for cross-checking;
* ``"dag"``  -- greedy DAG extraction: a shared sub-term is paid once (scope-aware);
* ``"ilp"``  -- optimal DAG extraction by a 0-1 ILP (``scipy.optimize.milp``/HiGHS), with a
  time limit; falls back to the DAG result, saying why, when scipy is missing or the
  solver finds nothing in time.

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
from .graph import EGraphView

__all__ = ["extract", "extract_with", "EGraphView", "Extraction", "tree_choice", "dag_choice"]

DEFAULT_ILP_SECONDS = 5.0


class Extraction:
    """The outcome of one extractor: ``body`` (an Expr), ``choice`` (class -> node),
    ``cost`` (scoped DAG cost: what the backend computes), ``tree_cost`` and ``info``."""

    def __init__(self, name: str, g: EGraphView, choice: dict, dag: InstanceDag, body, lets: int, info=None):
        self.name = name
        self.choice = choice
        self.dag = dag
        self.body = body
        self.lets = lets
        self.cost = dag_cost(g, dag)
        self.tree_cost = tree_cost(g, dag)
        self.info = dict(info or {})

    def summary(self) -> dict:
        return {"cost": self.cost, "tree_cost": self.tree_cost, "lets": self.lets,
                "instances": len(self.dag), **self.info}


def _finish(name: str, g: EGraphView, choice: dict, program, let_all: bool, info=None) -> Extraction:
    dag = instances(g, choice)
    body, lets = emit(g, dag, let_all=let_all)
    check_term(g, body, program)
    return Extraction(name, g, choice, dag, body, lets, info)


def extract(g: EGraphView, extractor: str = "dag", *, program=None, time_limit: float = DEFAULT_ILP_SECONDS,
            let_all: bool = False) -> Extraction:
    """Run one extractor (``"tree"``, ``"dag"`` or ``"ilp"``) on a costed :class:`EGraphView`."""
    t0 = time.perf_counter()
    if extractor == "tree":
        choice, _ = tree_choice(g)
        if g.root not in choice:
            raise EqsatError("no finite term for the root (every candidate is subsumed, "
                             "unextractable or out of scope)")
        return _finish("tree", g, choice, program, let_all, {"seconds_solver": time.perf_counter() - t0})
    if extractor == "dag":
        choice, _ = dag_choice(g)
        info = {"seconds_solver": time.perf_counter() - t0}
        dag = None
        if g.root in choice:
            try:
                dag = instances(g, choice)
            except EqsatError as e:   # a greedy choice can close a cycle: use the tree choice
                info["fallback"] = f"greedy DAG choice unusable ({e}); tree choice used"
        else:
            info["fallback"] = "greedy DAG found no term for the root; tree choice used"
        if dag is None:
            choice, _ = tree_choice(g)
            if g.root not in choice:
                raise EqsatError("no finite term for the root (every candidate is subsumed, "
                                 "unextractable or out of scope)")
        return _finish("dag", g, choice, program, let_all, info)
    if extractor == "ilp":
        base = extract(g, "dag", program=program, let_all=let_all)
        from .ilp import ILPUnavailable, ilp_choice
        info = {"dag_cost": base.cost}
        try:
            choice, sinfo = ilp_choice(g, upper_bound=base.cost, time_limit=time_limit)
        except ILPUnavailable as e:
            base.name = "ilp"
            base.info.update(info, fallback=f"scipy.optimize.milp unavailable ({e}); greedy DAG result used")
            return base
        info.update({"ilp_" + k: v for k, v in sinfo.items() if k != "seconds_solver"})
        info["seconds_solver"] = sinfo.get("seconds_solver", 0.0)
        if choice is None or g.root not in choice:
            base.name = "ilp"
            base.info.update(info, fallback=f"ILP solver returned no solution ({sinfo.get('status')}); "
                                            "greedy DAG result used")
            return base
        try:
            res = _finish("ilp", g, choice, program, let_all, info)
        except EqsatError as e:
            base.name = "ilp"
            base.info.update(info, fallback=f"ILP solution rejected ({e}); greedy DAG result used")
            return base
        if base.cost < res.cost * (1 - 1e-12):
            # the ILP shares globally; under scoped sharing the greedy term can be cheaper
            base.name = "ilp"
            base.info.update(info, fallback="ILP choice costs more under scoped sharing than the greedy "
                                            "DAG choice; greedy DAG result used")
            return base
        if sinfo.get("status") != "optimal":
            res.info["fallback"] = f"ILP stopped early ({sinfo.get('status')}); best solution found used"
        return res
    raise EqsatError(f"unknown extractor {extractor!r}; choose tree, dag or ilp")


def extract_with(extractor: str, session, model, sizes: dict | None = None, *, program=None,
                 time_limit: float | None = None, costs: str = "model", let_all: bool = False):
    """Entry point used by :func:`eqsat_ad.optimize`: extract ``$root`` of ``session`` (after
    the schedule and ``session.compute_costs()`` ran).  Returns ``(body, extra)`` with
    ``extra`` a JSON-able summary for ``report.extraction``.

    ``costs="model"`` recomputes every node's cost with ``model`` (its full formula, including
    per-call overheads); ``costs="egglog"`` uses the integer costs egglog computed."""
    t0 = time.perf_counter()
    text = session.serialize_json()
    g = EGraphView.from_session(session, text=text)
    if costs == "egglog":
        g.assign_egglog_costs(text)
    else:
        g.assign_costs(model, sizes)
    t_parse = time.perf_counter() - t0
    res = extract(g, extractor, program=program,
                  time_limit=DEFAULT_ILP_SECONDS if time_limit is None else time_limit, let_all=let_all)
    extra = {"seconds_parse": t_parse, **g.stats(), **res.summary()}
    return res.body, extra
