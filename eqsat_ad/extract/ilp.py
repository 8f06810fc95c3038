"""DAG extraction as a 0-1 integer program, solved by HiGHS through ``scipy.optimize.milp``.

Variables: ``x_n`` (binary) per candidate e-node, ``t_c`` (continuous, ``0..K``) per class.

* the root class picks one node: ``sum_{n in root} x_n = 1``;
* a class picks at most one node: ``sum_{n in c} x_n <= 1``;
* a picked node needs every child class: ``x_n <= sum_{m in d} x_m`` for each child class d;
* acyclicity by topological levels: ``x_n = 1  =>  t_c >= t_d + 1`` for each child class d,
  i.e. ``t_c - t_d - K x_n >= 1 - K``;
* objective: ``sum cost_n x_n`` -- every class used is paid once (global sharing).

Candidates are pruned first: only classes reachable from the root, no node with infinite
cost or a cost above the upper bound (the e-graph cost of the best choice already known: any
term using such a node costs more under this objective), iterated until stable.

**What "optimal" means here.**  The objective is *not* the measure the result is judged by
(``CostModel.dag_cost`` of the program, :func:`eqsat_ad.extract.program_measure`): it shares
every class globally, while the backend shares a sub-term with free index variables only
among loops of the same depth and extent, and it prices two-node shapes (a contraction, a
reduction ``ifold``) at the e-nodes, not at the emitted program.  So the solver's
``optimal`` is about this 0-1 program only; :mod:`eqsat_ad.extract` reports it as
``ilp_solver_status``, evaluates the choice under the measure and keeps the DAG stage's
result when that is cheaper (ILP <= DAG <= tree under the measure, by construction).
"""
from __future__ import annotations

import time

import numpy as np

from .graph import INF, EGraphView


class ILPUnavailable(Exception):
    """scipy (with ``milp``) is not installed."""


def ilp_choice(g: EGraphView, upper_bound: float = INF, time_limit: float = 5.0,
               mip_rel_gap: float = 1e-6) -> tuple[dict[int, int] | None, dict]:
    """Solve the extraction ILP.  Returns (choice or None, info) where info has ``status``
    (``optimal``, ``time-limit``, ``infeasible``, ...), ``objective``, ``bound``,
    ``seconds_solver``, ``variables`` and ``constraints``."""
    try:
        from scipy.optimize import Bounds, LinearConstraint, milp
        from scipy.sparse import coo_array
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ILPUnavailable(str(e)) from None

    # -- prune -------------------------------------------------------------------------
    alive = {nid for nid, n in enumerate(g.nodes) if n.cost < INF and n.cost <= upper_bound * (1 + 1e-9)}
    changed = True
    classes: set[int] = set()
    while changed:
        changed = False
        has = {}
        for nid in alive:
            has[g.nodes[nid].cls] = True
        dead = [nid for nid in alive if any(k not in has for k in g.nodes[nid].kids)]
        if dead:
            alive.difference_update(dead)
            changed = True
            continue
        # reachability from the root through alive nodes
        seen = {g.root}
        stack = [g.root]
        by_class: dict[int, list[int]] = {}
        for nid in alive:
            by_class.setdefault(g.nodes[nid].cls, []).append(nid)
        while stack:
            c = stack.pop()
            for nid in by_class.get(c, ()):
                for k in g.nodes[nid].kids:
                    if k not in seen:
                        seen.add(k)
                        stack.append(k)
        unreached = [nid for nid in alive if g.nodes[nid].cls not in seen]
        if unreached:
            alive.difference_update(unreached)
            changed = True
        classes = seen
    info: dict = {"variables": 0, "constraints": 0}
    if not any(g.nodes[nid].cls == g.root for nid in alive):
        info["status"] = "infeasible"
        return None, info

    nodes = sorted(alive)
    col = {nid: k for k, nid in enumerate(nodes)}
    cls_list = sorted(classes)
    ccol = {c: len(nodes) + k for k, c in enumerate(cls_list)}
    nv = len(nodes) + len(cls_list)
    K = float(len(cls_list))
    members: dict[int, list[int]] = {}
    for nid in nodes:
        members.setdefault(g.nodes[nid].cls, []).append(nid)

    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0

    def add(entries, lb, ub):
        nonlocal r
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        lo.append(lb)
        hi.append(ub)
        r += 1

    add([(col[n], 1.0) for n in members[g.root]], 1.0, 1.0)
    for c in cls_list:
        if c != g.root and len(members[c]) > 1:
            add([(col[n], 1.0) for n in members[c]], 0.0, 1.0)
    for nid in nodes:
        n = g.nodes[nid]
        for d in set(n.kids):
            # x_n - sum_{m in d} x_m <= 0
            add([(col[nid], 1.0)] + [(col[m], -1.0) for m in members[d]], -np.inf, 0.0)
            # t_c - t_d - K x_n >= 1 - K
            add([(ccol[n.cls], 1.0), (ccol[d], -1.0), (col[nid], -K)], 1.0 - K, np.inf)

    costs = np.array([g.nodes[nid].cost for nid in nodes], dtype=float)
    scale = float(costs.max()) if costs.size and costs.max() > 0 else 1.0
    c_obj = np.concatenate([costs / scale, np.zeros(len(cls_list))])
    # a tiny per-node term prefers smaller terms among equal costs (and breaks zero-cost ties)
    c_obj[:len(nodes)] += 1e-9
    A = coo_array((vals, (rows, cols)), shape=(r, nv)).tocsr()
    integrality = np.concatenate([np.ones(len(nodes)), np.zeros(len(cls_list))])
    lb = np.zeros(nv)
    ub = np.concatenate([np.ones(len(nodes)), np.full(len(cls_list), K)])
    info.update(variables=nv, constraints=r)
    t0 = time.perf_counter()
    res = milp(c_obj, constraints=[LinearConstraint(A, lo, hi)], integrality=integrality,
               bounds=Bounds(lb, ub),
               options={"time_limit": float(time_limit), "disp": False, "mip_rel_gap": mip_rel_gap})
    info["seconds_solver"] = time.perf_counter() - t0
    info["status"] = {0: "optimal", 1: "time-limit", 2: "infeasible", 3: "unbounded"}.get(res.status,
                                                                                         f"status-{res.status}")
    if res.x is None:
        return None, info
    x = res.x
    choice: dict[int, int] = {}
    for nid in nodes:
        if x[col[nid]] > 0.5:
            choice.setdefault(g.nodes[nid].cls, nid)
    info["objective"] = float(sum(g.nodes[n].cost for n in choice.values()))
    bound = getattr(res, "mip_dual_bound", None)
    if bound is not None and np.isfinite(bound):
        info["bound"] = float(max(bound - 1e-9 * len(nodes), 0.0) * scale)
    return choice, info
