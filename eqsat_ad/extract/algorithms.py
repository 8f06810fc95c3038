"""Extraction algorithms over an :class:`~eqsat_ad.extract.graph.EGraphView` whose node costs
are assigned.  Each returns a *choice*: ``{class: node}`` for the classes it could extract.

* :func:`tree_choice` -- cheapest tree (a shared sub-term is paid every time it appears);
  the same objective as egglog's extractor, in Python, for cross-checking.
* :func:`dag_choice` -- greedy DAG extraction (extraction-gym's ``faster_greedy_dag``): a
  class's cost is the sum over the *set* of classes its chosen term uses, so a shared
  sub-term is paid once -- but only where the backend really computes it once: a sub-term
  with a free index variable is shared only under binders that give it the same values (the
  item is re-keyed by the binder when the bottom-up pass crosses it): a sum, build or let by
  its bound name and the class of its extent (bound value), so alpha-equal loops share, as the
  NumPy backend's value numbering and ``CostModel.dag_cost`` share them; a fold by its node
  (its accumulator's values depend on the whole fold).
* the 0-1 program (exact for the global-sharing objective) is in :mod:`eqsat_ad.extract.ilp`.

These are candidate generators: :mod:`eqsat_ad.extract` judges every candidate by the
program measure (``CostModel.dag_cost``) and keeps the cheapest.
"""
from __future__ import annotations

import heapq
import math
import time
from collections import deque

from .graph import INF, EGraphView


def body_positions(op: str, kind: str) -> tuple[int, ...]:
    """Positions (among the Term children) that are inside the node's binder."""
    if kind == "binder":
        return (1,)
    if kind == "ifold":
        return (0,)
    return ()


def bound_names(g: EGraphView, nid: int) -> frozenset:
    n = g.nodes[nid]
    if n.kind == "binder":
        return frozenset(n.names()[:1])
    if n.kind == "ifold":
        return frozenset(n.names()[:2])
    return frozenset()


def tree_choice(g: EGraphView) -> tuple[dict[int, int], list[float]]:
    """Cheapest tree per class (Knuth's generalisation of Dijkstra: node costs are
    non-negative, so a class is final when popped).  Ties go to the smaller term.
    Returns (choice, tree cost per class)."""
    C = len(g.class_ids)
    nodes = g.nodes
    best_cost: list[float] = [INF] * C
    best_size: list[int] = [0] * C
    choice: dict[int, int] = {}
    parents = g.parents()
    missing = [len(set(n.kids)) for n in nodes]
    done = [False] * C
    heap = [(n.cost, 1, nid) for nid, n in enumerate(nodes) if n.cost < INF and not n.kids]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        cost, size, nid = pop(heap)
        c = nodes[nid].cls
        if done[c]:
            continue
        done[c] = True
        best_cost[c], best_size[c] = cost, size
        choice[c] = nid
        for pid in parents[c]:
            p = nodes[pid]
            if p.cost == INF:
                continue
            left = missing[pid] - 1
            missing[pid] = left
            if left == 0 and not done[p.cls]:
                tc, ts = 0.0, 0
                for k in p.kids:
                    tc += best_cost[k]
                    ts += best_size[k]
                push(heap, (p.cost + tc, 1 + ts, pid))
    return choice, best_cost


def dag_choice(g: EGraphView, max_rounds: int = 10_000,
               deadline: float | None = None) -> tuple[dict[int, int], list[float]]:
    """Greedy scope-aware DAG extraction.  Returns (choice, DAG cost of each class's term).
    At ``deadline`` (a ``time.perf_counter()`` value) it stops with the choice so far: every
    class in it has a term (the greedy pass only ever improves one)."""
    C = len(g.class_ids)
    fv = g.fv
    sets: list = [None] * C           # class -> {item key: cost}; key = (class, binder nodes...)
    total: list[tuple[float, int]] = [(INF, 0)] * C
    uses: list = [None] * C           # class -> the classes its chosen term uses (the keys' [0])
    choice: dict[int, int] = {}
    parents = g.parents()
    nodes = g.nodes
    work = deque(nid for nid, n in enumerate(nodes) if n.cost < INF and not n.kids)
    queued = set(work)
    rounds = 0
    bound_cache: dict[int, frozenset] = {}
    while work and rounds < max_rounds * max(1, len(nodes)):
        rounds += 1
        if deadline is not None and not rounds & 1023 and time.perf_counter() >= deadline:
            break
        nid = work.popleft()
        queued.discard(nid)
        n = nodes[nid]
        c = n.cls
        if any(sets[k] is None for k in n.kids):
            continue
        merged: dict = {}
        body = body_positions(n.op, n.kind)
        if body:
            b = bound_cache.get(nid)
            if b is None:
                b = bound_cache[nid] = bound_names(g, nid)
            # what the bound names range over: for a sum/build/let its extent (bound value) class
            # (two sums over j < n give a sub-term in j the same values), for a fold the node
            scope = (b, n.kids[0]) if n.kind == "binder" else nid
        for pos, k in enumerate(n.kids):
            s = sets[k]
            if pos in body:
                for key, v in s.items():
                    if fv[key[0]] & b:
                        merged[key + (scope,)] = v
                    else:
                        merged[key] = v
            else:
                merged.update(s)
        if any(c in uses[k] for k in n.kids):
            continue                      # the chosen sub-terms already use this class: a cycle
        merged[(c,)] = n.cost
        tot = (math.fsum(merged.values()), len(merged))
        if tot < total[c]:
            total[c] = tot
            sets[c] = merged
            uses[c] = frozenset().union(*(uses[k] for k in n.kids), (c,))
            choice[c] = nid
            for pid in parents[c]:
                if nodes[pid].cost < INF and pid not in queued:
                    queued.add(pid)
                    work.append(pid)
    return choice, [t[0] for t in total]
