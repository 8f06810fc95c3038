"""Seeing what happened: the e-graph of a (small) run as Graphviz DOT, and a plot of the
run (e-graph size per iteration per phase, best cost per phase).

* :func:`egraph_dot` writes the term e-graph from egglog's serialized JSON: one cluster per
  e-class (the root's drawn bold), one box per e-node, an edge from each e-node to the
  e-class of each argument; the extracted program (:func:`extracted_nodes`) filled and
  linked by thick red edges.  Analysis and cost tables are never drawn; by default the
  ``Subst`` bookkeeping e-nodes are left out, classes of literals and variables are written
  into their users' labels and only what the root reaches is drawn, so that a few hundred
  e-nodes stay readable.  Subsumed e-nodes are dashed.
* :func:`render` runs Graphviz ``dot`` when it is installed (returns False otherwise);
  :func:`write_dot` renders or, without Graphviz, writes the DOT text and says how to get it.
* :func:`plot_report` draws the run with matplotlib (returns False when matplotlib is
  not installed).
* :func:`best_cost_per_phase` extracts the best program after each phase by re-running the
  prefixes of the schedule (the driver is deterministic, so each prefix reaches exactly the
  e-graph the full run had at that point).

>>> import eqsat_ad as ea
>>> p = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (get x i))))")
>>> res = ea.optimize(ea.grad(p, "x"), sizes={"n": 10}, keep_egraph=True)
>>> dot = egraph_dot(res.session, program=res.program)
>>> print(dot.splitlines()[0])
digraph egraph {
>>> CHOSEN_FILL in dot          # the extracted program is marked
True
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from .errors import EqsatError

__all__ = ["egraph_dot", "egraph_summary", "extracted_nodes", "locate_program", "write_dot", "render", "plot_report",
           "best_cost_per_phase", "root_eclass", "no_graphviz_note"]

RENDER_FORMATS = ("svg", "png", "pdf")


# -- DOT ----------------------------------------------------------------------------------------

def _q(s: str) -> str:
    """A DOT double-quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def root_eclass(session) -> str | None:
    """The serialized e-class id (``Term-21``) of the program root ``$root``, if known."""
    try:
        fr = session.eg.freeze()
        rows = fr.functions["$root"].rows
        m = re.fullmatch(r"Value\((\d+)\)", str(rows[0].output))
        return f"Term-{m.group(1)}" if m else None
    except Exception:  # noqa: BLE001 -- best effort: the drawing works without it
        return None


def _term_nodes(session) -> tuple[dict, dict]:
    from .egraph.constructors import TERM_CTORS
    data = json.loads(session.serialize_json())
    nodes = data.get("nodes", {})
    terms = {nid: n for nid, n in nodes.items()
             if not nid.startswith("primitive-") and n.get("op") in TERM_CTORS}
    return terms, nodes


def egraph_summary(session) -> dict:
    """``{"enodes": N, "eclasses": M, "ops": {op: count}}`` of the term e-graph."""
    terms, _ = _term_nodes(session)
    ops: dict[str, int] = {}
    for n in terms.values():
        ops[n["op"]] = ops.get(n["op"], 0) + 1
    return {"enodes": len(terms), "eclasses": len({n["eclass"] for n in terms.values()}), "ops": ops}


#: what a drawing can show (``scope``)
SCOPES = ("reachable", "all", "extracted")
#: constructors with no term argument: drawn inside their users' labels when collapsed
LEAF_OPS = frozenset({"Num", "Int", "BTrue", "BFalse", "Input", "Dim", "Var", "Acc"})
#: an e-class holding one of these is collapsed as that constant, input or size (``Len(x)`` in
#: the class of ``n`` is not drawn)
CONSTANT_OPS = frozenset({"Num", "Int", "BTrue", "BFalse", "Input", "Dim"})
#: how the extracted program is drawn
CHOSEN_FILL, CHOSEN_LINE = "#ffe08a", "#c0392b"


def _literal(node) -> str:
    """A primitive argument as shown in a label: strings without their quotes."""
    op = node["op"] if node else "?"
    return op[1:-1] if len(op) >= 2 and op[0] == op[-1] == '"' else op


def _leaf_text(n: dict, nodes: dict) -> str:
    args = [_literal(nodes.get(c)) for c in n.get("children", [])]
    if n["op"] in ("Num", "Int", "Input", "Dim", "Var"):
        return args[0] if args else n["op"]
    if n["op"] == "Acc":
        return args[0] if args else "acc"
    return {"BTrue": "true", "BFalse": "false"}.get(n["op"], n["op"])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(1, limit - 3)] + "..."


#: constructors whose two arguments may come in either order in the returned program (the
#: optimiser's post-processing may order them differently from the e-node it came from)
COMMUTATIVE = frozenset({"Add", "Mul", "Eq", "And", "Or"})


def extracted_nodes(session, program, terms: dict | None = None, nodes: dict | None = None,
                    root: str | None = None, budget: int = 200_000, seconds: float = 5.0) -> set[str] | None:
    """The e-nodes (serialized ids) that make up ``program`` (an optimisation's result) in the
    e-graph of ``session``, found by matching the program against the e-graph from the root:
    binders are matched up to their names, a ``let`` name stands for the e-class of its value,
    the arguments of commutative operations in either order.  When the program is not in the
    e-graph as it is (the optimiser's post-processing, e.g. materialising a shared sub-term,
    can reshape the extracted term), the e-nodes of the largest parts that are.  None when
    nothing is found, or the search takes more than ``budget`` steps or ``seconds``."""
    return locate_program(session, program, terms, nodes, root, budget, seconds)[0]


def locate_program(session, program, terms: dict | None = None, nodes: dict | None = None,
                   root: str | None = None, budget: int = 200_000,
                   seconds: float = 5.0) -> tuple[set[str] | None, bool]:
    """:func:`extracted_nodes` and whether the whole program was found as it is."""
    import time
    from .egraph.constructors import PRIM_TO_CTOR
    from .lang.ast import BoolLit, Int, Let, Num, Var
    if terms is None:
        terms, nodes = _term_nodes(session)
    root = root or root_eclass(session)
    if root is None or program is None:
        return None, False
    by_class: dict[str, list[str]] = {}
    for nid in sorted(terms):
        if terms[nid]["op"] != "Subst":
            by_class.setdefault(terms[nid]["eclass"], []).append(nid)
    params = {p.name for p in program.params}
    deadline = time.perf_counter() + seconds
    steps = [0]
    memo: dict = {}
    # environments are interned: env id -> {program name: binding}; a binding is ("idx", name
    # in the e-graph), ("acc", name in the e-graph) or ("let", value expression, env id)
    envs: list[dict] = [{}]
    env_ids: dict = {}

    def extend(env: int, pairs: tuple) -> int:
        key = (env, tuple((k, b if b[0] != "let" else ("let", id(b[1]), b[2])) for k, b in pairs))
        if key not in env_ids:
            env_ids[key] = len(envs)
            envs.append({**envs[env], **dict(pairs)})
        return env_ids[key]

    def lit(c: str):
        return _literal(nodes.get(c))

    def children(nid):
        return terms[nid].get("children", [])

    def cls_of(c):
        return terms[c]["eclass"] if c in terms else None

    def match(cls: str, e, env: int):
        """A set of e-nodes spelling ``e`` in class ``cls`` under ``env``, or None."""
        key = (cls, id(e), env)
        if key in memo:
            return memo[key]
        steps[0] += 1
        if steps[0] > budget or (steps[0] % 1000 == 0 and time.perf_counter() > deadline):
            raise _GiveUp
        memo[key] = None                     # (a cycle through this key fails)
        found = _match(cls, e, env)
        memo[key] = found
        return found

    def first(cls, want_op, test):
        for nid in by_class.get(cls, ()):
            if terms[nid]["op"] != want_op:
                continue
            got = test(nid)
            if got is not None:
                return {nid} | got
        return None

    def kids(nid, pairs):
        """Match ``(child position, expr, env)`` pairs; the union of their e-nodes or None."""
        out: set = set()
        ch = children(nid)
        for pos, e, en in pairs:
            if pos >= len(ch) or cls_of(ch[pos]) is None:
                return None
            got = match(cls_of(ch[pos]), e, en)
            if got is None:
                return None
            out |= got
        return out

    def named(name):
        return lambda nid: set() if children(nid) and lit(children(nid)[0]) == name else None

    def _match(cls, e, env):
        if isinstance(e, Var):
            b = envs[env].get(e.name)
            if b is not None and b[0] == "let":
                return match(cls, b[1], b[2])
            if b is not None:
                return first(cls, "Var" if b[0] == "idx" else "Acc", named(b[1]))
            return first(cls, "Input" if e.name in params else "Dim", named(e.name))
        if isinstance(e, Num):
            return first(cls, "Num", lambda nid: set() if _num(lit(children(nid)[0])) == e.value else None)
        if isinstance(e, BoolLit):
            return first(cls, "BTrue" if e.value else "BFalse", lambda nid: set())
        if isinstance(e, Int):
            return first(cls, "Int", lambda nid: set() if lit(children(nid)[0]) == str(e.value) else None)
        if isinstance(e, Let):
            return match(cls, e.body, extend(env, ((e.name, ("let", e.value, env)),)))
        shapes = _compound_shapes(e, env, extend, lit, children, PRIM_TO_CTOR)
        if not shapes:
            return None
        ((op, parts),) = shapes

        def operands(nid):
            for order in parts(nid):
                got = kids(nid, order)
                if got is not None:
                    return got
            return None
        return first(cls, op, operands)

    # Not found as is (the optimiser's post-processing, e.g. the materialisation of shared
    # sub-terms, can reshape what was extracted): the e-nodes of the largest parts found.
    soft_memo: dict = {}

    def soft(cls: str, e, env: int) -> tuple[int, frozenset]:
        key = (cls, id(e), env)
        if key in soft_memo:
            return soft_memo[key]
        steps[0] += 1
        if steps[0] > 2 * budget or (steps[0] % 1000 == 0 and time.perf_counter() > deadline):
            raise _GiveUp
        soft_memo[key] = (0, frozenset())
        best = (0, frozenset())
        if isinstance(e, Var) and (envs[env].get(e.name) or ("",))[0] == "let":
            _, value, venv = envs[env][e.name]
            best = soft(cls, value, venv)
        elif isinstance(e, Let):
            best = soft(cls, e.body, extend(env, ((e.name, ("let", e.value, env)),)))
        elif isinstance(e, (Var, Num, Int, BoolLit)):
            got = match(cls, e, env)
            best = (1, frozenset(got)) if got is not None else best
        else:
            for op, parts in _compound_shapes(e, env, extend, lit, children, PRIM_TO_CTOR):
                for nid in by_class.get(cls, ()):
                    if terms[nid]["op"] != op:
                        continue
                    for order in parts(nid):
                        score, found = 1, {nid}
                        for pos, x, en in order:
                            ch = children(nid)
                            if pos < len(ch) and cls_of(ch[pos]) is not None:
                                sc, fs = soft(cls_of(ch[pos]), x, en)
                                score, found = score + sc, found | fs
                        if score > best[0]:
                            best = (score, frozenset(found))
        soft_memo[key] = best
        return best

    try:
        exact = match(root, program.body, 0)
        if exact is not None:
            return exact, True
        return set(soft(root, program.body, 0)[1]) or None, False
    except (_GiveUp, RecursionError):
        return None, False


def _compound_shapes(e, env, extend, lit, children, prim_to_ctor):
    """``[(constructor, nid -> [[(child position, expr, env), ...], ...])]``: how the e-nodes
    of a compound ``e`` line up with its parts (each list one order of the arguments); used by
    the exact match and by the search for the largest parts found."""
    from .lang.ast import Build, Fst, Get, If, IFold, Length, Pair, Prim, Snd, Sum
    if isinstance(e, (Build, Sum)):
        return [(type(e).__name__, lambda nid: [[(1, e.size, env), (2, e.body, extend(
            env, ((e.var, ("idx", lit(children(nid)[0]))),)))]] if len(children(nid)) >= 3 else [])]
    if isinstance(e, IFold):
        return [("IFold", lambda nid: [[(2, e.body, extend(env, ((e.acc, ("acc", lit(children(nid)[0]))),
                                                                 (e.var, ("idx", lit(children(nid)[1])))))),
                                        (3, e.init, env), (4, e.size, env)]] if len(children(nid)) >= 5 else [])]
    simple = {Get: ("Get", lambda e: (e.array, e.index)), Length: ("Len", lambda e: (e.array,)),
              If: ("If", lambda e: (e.cond, e.then, e.else_)), Pair: ("Pair", lambda e: (e.fst, e.snd)),
              Fst: ("Fst", lambda e: (e.pair,)), Snd: ("Snd", lambda e: (e.pair,))}
    if type(e) in simple:
        op, parts = simple[type(e)]
        args = parts(e)
    elif isinstance(e, Prim):
        args = tuple(e.args)
        if e.op in (">", ">="):
            op, args = ("Lt" if e.op == ">" else "Le"), args[::-1]
        else:
            op = prim_to_ctor.get(e.op, e.op)
    else:
        return []
    orders = [args] + ([args[::-1]] if op in COMMUTATIVE and len(args) == 2 else [])
    return [(op, lambda nid: [[(k, x, env) for k, x in enumerate(a)] for a in orders])]


class _GiveUp(Exception):
    pass


def _num(text: str) -> float | None:
    try:
        return float({"inf": "inf", "-inf": "-inf", "NaN": "nan"}.get(text, text))
    except ValueError:
        return None


def egraph_dot(session, max_nodes: int = 2000, title: str | None = None, *, program=None,
               scope: str = "reachable", show_support: bool = False, collapse_leaves: bool = True,
               max_label: int = 24, rankdir: str = "LR") -> str:
    """The term e-graph of ``session`` (an :class:`~eqsat_ad.egraph.session.EGraphSession`, e.g.
    ``optimize(..., keep_egraph=True).session``) as Graphviz DOT text.

    * one cluster per e-class (the root's red, bold), one box per e-node, an edge from each
      e-node to the e-class of each argument (numbered when there are several);
    * ``program`` (the optimisation's result, ``res.program``): its e-nodes are filled and its
      edges drawn thick and red, so the extracted program reads as a path through the graph;
    * ``scope``: ``"reachable"`` (default) draws the e-classes reachable from the root,
      ``"all"`` every e-class, ``"extracted"`` only the classes of the extracted program (with
      every alternative e-node in them; arguments outside are small grey points);
    * ``show_support``: also draw ``Subst`` e-nodes (pending substitutions: bookkeeping of the
      rewrites, never extracted); analysis tables (``fv``, costs) are never drawn;
    * ``collapse_leaves``: an e-class of literals, inputs, sizes and variables only is written
      into the label of each e-node that uses it (``Get(x, i1)``) instead of being drawn;
    * ``max_label``: labels are cut to this many characters; ``rankdir``: ``LR`` or ``TB``.

    Raises :class:`EqsatError` when more than ``max_nodes`` e-nodes would be drawn: a drawing
    is for small runs (use small sizes and a short schedule to look at one)."""
    if session is None:
        raise EqsatError("no e-graph to draw: run optimize(..., keep_egraph=True)")
    if scope not in SCOPES:
        raise EqsatError(f"unknown drawing scope {scope!r}; choose one of {', '.join(SCOPES)}")
    terms, nodes = _term_nodes(session)
    root = root_eclass(session)
    chosen: set = set()
    whole = False

    def locate():
        nonlocal chosen, whole
        if program is not None:
            found, whole = locate_program(session, program, terms, nodes, root)
            chosen = found or set()
    if scope == "extracted":
        locate()
    hidden_support = 0
    classes: dict[str, list[str]] = {}
    for nid, n in terms.items():
        if n["op"] == "Subst" and not show_support:
            hidden_support += 1
            continue
        classes.setdefault(n["eclass"], []).append(nid)

    def term_children(nid):
        return [c for c in terms[nid].get("children", []) if c in terms]

    def is_leaf_class(cls):
        """Only leaves, or equal to a constant, an input or a size (then shown as that)."""
        ops = [terms[m]["op"] for m in classes[cls]]
        return all(op in LEAF_OPS for op in ops) or any(op in CONSTANT_OPS for op in ops)
    leaf_classes = {c for c in classes if collapse_leaves and c != root and is_leaf_class(c)}
    chosen_classes = {terms[nid]["eclass"] for nid in chosen}
    if scope == "extracted" and chosen_classes:
        shown = set(chosen_classes)
    elif scope in ("reachable", "extracted") and root in classes:
        shown, todo = set(), [root]
        while todo:
            c = todo.pop()
            if c in shown or c not in classes:
                continue
            shown.add(c)
            for m in classes[c]:
                todo.extend(terms[k]["eclass"] for k in term_children(m))
    else:
        shown = set(classes)
    drawn = {c for c in shown if c not in leaf_classes}
    n_drawn = sum(len(classes[c]) for c in drawn)
    if n_drawn > max_nodes:
        raise EqsatError(f"the drawing would have {n_drawn} e-nodes, more than {max_nodes}; a drawing is "
                         "meant for small runs (raise the limit with max_nodes / --dot-max-nodes, draw "
                         "less with scope='extracted' / --dot-scope extracted, or use --limit iterations=N)")
    if scope != "extracted":          # (after the size check: a graph too big is refused at once)
        locate()
        chosen_classes = {terms[nid]["eclass"] for nid in chosen}
    for c, members in classes.items():
        if c in leaf_classes:       # the leaf first: it is what the users' labels show
            members.sort(key=lambda nid: (terms[nid]["op"] not in LEAF_OPS, _node_key(nid)))
        else:                       # the chosen e-node first: the edges into the class aim at it
            members.sort(key=lambda nid: (nid not in chosen, _node_key(nid)))
    ids = {nid: f"n{k}" for k, nid in enumerate(sorted(terms, key=_node_key))}
    out = ["digraph egraph {",
           "  compound=true; newrank=true;",
           f"  rankdir={'TB' if rankdir.upper() == 'TB' else 'LR'}; nodesep=0.15; ranksep=0.35;",
           "  fontname=helvetica; fontsize=10;",
           '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=helvetica, fontsize=10,'
           ' margin="0.06,0.02", height=0.25];',
           "  edge [arrowsize=0.5, color=gray40, fontname=helvetica, fontsize=8, fontcolor=gray35];"]
    notes = []
    if program is not None:
        notes.append("filled boxes and thick red edges: the extracted program" if chosen and whole else
                     "filled boxes and thick red edges: the parts of the extracted program found in "
                     "the e-graph as they are (the optimiser reshaped the rest after extraction)"
                     if chosen else "the extracted program was not found in this e-graph")
    if leaf_classes & shown:
        notes.append(f"{len(leaf_classes & shown)} e-classes of literals and variables written into labels")
    if hidden_support:
        notes.append(f"{hidden_support} Subst e-nodes (substitution bookkeeping) not drawn")
    if scope != "all" and len(shown) < len(classes):
        notes.append(f"{len(classes) - len(shown)} e-classes outside the scope '{scope}' not drawn")
    head = title or "e-graph"
    out.append(f"  label={_q(head + ''.join(chr(10) + n for n in notes))}; labelloc=t; labeljust=l;")
    edges = []
    stubs: set[str] = set()

    def label_of(nid):
        n = terms[nid]
        if n["op"] in LEAF_OPS:
            return _clip(f"{n['op']} {_leaf_text(n, nodes)}" if n["op"] not in ("BTrue", "BFalse")
                         else _leaf_text(n, nodes), max_label)
        args = []
        for c in n.get("children", []):
            if c in terms:
                cc = terms[c]["eclass"]
                args.append(_leaf_text(terms[classes[cc][0]], nodes) if cc in leaf_classes else "_")
            else:
                args.append(_literal(nodes.get(c)))
        return _clip(f"{n['op']}({', '.join(args)})" if args else n["op"], max_label)

    for cls in sorted(drawn, key=_class_key):
        members = classes[cls]
        is_root = cls == root
        on_path = cls in chosen_classes
        out.append(f"  subgraph {_q('cluster_' + cls)} {{")
        out.append(f"    label={_q(cls + (' (root)' if is_root else ''))}; fontsize=8; fontcolor=gray35;")
        out.append('    style="rounded,bold"; color=red;' if is_root else
                   f'    style="rounded"; color={_q(CHOSEN_LINE)};' if on_path else
                   '    style="rounded,dashed"; color=gray60;')
        for nid in members:
            n = terms[nid]
            attrs = [f"label={_q(label_of(nid))}"]
            style = ["rounded", "filled"]
            if nid in chosen:
                attrs.append(f"fillcolor={_q(CHOSEN_FILL)}, color={_q(CHOSEN_LINE)}, penwidth=2")
                style.append("bold")
            elif n["op"] == "Subst":
                attrs.append("fillcolor=gray90, fontcolor=gray30")
            if n.get("subsumed"):
                style.append("dashed")
            attrs.append(f"style={_q(','.join(style))}")
            out.append(f"    {ids[nid]} [{', '.join(attrs)}];")
            kids = term_children(nid)
            drawn_kids = [c for c in kids if terms[c]["eclass"] not in leaf_classes]
            for k, c in enumerate(kids):
                tgt_cls = terms[c]["eclass"]
                if tgt_cls in leaf_classes or tgt_cls not in classes:
                    continue
                lab = f", taillabel={_q(str(k + 1))}" if len(drawn_kids) > 1 else ""
                hot = nid in chosen and any(m in chosen for m in classes[tgt_cls])
                look = f", color={_q(CHOSEN_LINE)}, penwidth=2.2" if hot else ""
                if tgt_cls in drawn:
                    tgt = next((m for m in classes[tgt_cls] if m in chosen), classes[tgt_cls][0]) if hot \
                        else classes[tgt_cls][0]
                    edges.append(f"  {ids[nid]} -> {ids[tgt]} [lhead={_q('cluster_' + tgt_cls)}{lab}{look}];")
                else:                          # outside the scope: a small stub per class
                    stub = "c_" + re.sub(r"\W", "_", tgt_cls)
                    stubs.add(f"  {stub} [shape=point, width=0.08, color=gray60, label=\"\"];")
                    edges.append(f"  {ids[nid]} -> {stub} [style=dashed{lab}];")
        out.append("  }")
    out.extend(sorted(stubs))
    out.extend(edges)
    out.append("}")
    return "\n".join(out) + "\n"


def _node_key(nid: str):
    m = re.match(r"function-(\d+)-(.*)$", nid)
    return (m.group(2), int(m.group(1))) if m else (nid, 0)


def _class_key(cls: str):
    m = re.search(r"(\d+)$", cls)
    return (int(m.group(1)) if m else 0, cls)


def render(dot_text: str, out: str | Path, fmt: str | None = None, timeout: float = 60.0) -> bool:
    """Render DOT text to ``out`` (format from ``fmt`` or the file suffix: svg, png, pdf) with
    Graphviz ``dot``.  Returns False (and writes nothing) when ``dot`` is not installed."""
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in RENDER_FORMATS:
        raise EqsatError(f"cannot render to {out}: use a .svg, .png or .pdf file")
    exe = shutil.which("dot")
    if exe is None:
        return False
    try:
        proc = subprocess.run([exe, f"-T{fmt}", "-o", str(out)], input=dot_text.encode(),
                              capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EqsatError(f"Graphviz dot failed: {e}") from None
    if proc.returncode != 0:
        raise EqsatError(f"Graphviz dot failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
    return True


def no_graphviz_note(dot_path, out) -> str:
    """One line: Graphviz is missing, what was written instead, how to get it and render."""
    fmt = Path(out).suffix.lstrip(".").lower() or "svg"
    return (f"Graphviz 'dot' is not installed, so only {dot_path} was written; get Graphviz "
            f"(apt install graphviz, brew install graphviz or conda install graphviz) and run: "
            f"dot -T{fmt} {dot_path} -o {out}")


def write_dot(dot_text: str, out: str | Path) -> list[str]:
    """Write DOT text to ``out``.  For ``out.svg``/``.png``/``.pdf`` also render it when Graphviz
    is installed (the DOT text goes next to it as ``out.dot``).  Returns the files written."""
    out = Path(out)
    if out.suffix.lower().lstrip(".") in RENDER_FORMATS:
        dot_path = out.with_suffix(".dot")
        dot_path.write_text(dot_text)
        written = [str(dot_path)]
        if render(dot_text, out):
            written.append(str(out))
        else:
            import sys
            print("eqsat-ad: note: " + no_graphviz_note(dot_path, out), file=sys.stderr)
        return written
    out.write_text(dot_text)
    return [str(out)]


# -- plots ----------------------------------------------------------------------------------------

def plot_report(report, out: str | Path, phase_costs: list[float] | None = None,
                title: str | None = None) -> bool:
    """Plot a :class:`~eqsat_ad.driver.RunReport`: e-nodes per iteration (one colour per phase)
    and, when given, the best cost after each phase (log scale).  Writes ``out`` (format from
    the suffix).  Returns False when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    ncols = 2 if phase_costs is not None else 1
    fig = Figure(figsize=(5.5 * ncols, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, ncols, 1)
    it = 0
    for k, ph in enumerate(report.phases):
        ys = [ph.enodes_before] + list(ph.enodes_per_iteration)
        xs = list(range(it, it + len(ys)))
        ax.plot(xs, ys, marker="." if len(ys) < 60 else None, label=ph.name, color=f"C{k % 10}")
        if k:
            ax.axvline(it, color="gray", lw=0.5, ls=":")
        it += len(ph.enodes_per_iteration)
    ax.set_xlabel("iteration")
    ax.set_ylabel("e-nodes")
    ax.set_title("e-graph size per iteration")
    if report.phases:
        ax.legend(fontsize=8)
    if phase_costs is not None:
        cx = fig.add_subplot(1, ncols, 2)
        before = report.cost_before if report.cost_before is not None else float("nan")
        vals = [before] + list(phase_costs)
        names = (["start"] + [p.name for p in report.phases] + [""] * len(vals))[:len(vals)]
        pos = [max(v, 1e-12) if v == v else float("nan") for v in vals]
        cx.plot(range(len(vals)), pos, marker="o", drawstyle="steps-post")
        cx.set_xticks(range(len(vals)))
        cx.set_xticklabels(names, rotation=30, fontsize=8)
        if all(v > 0 for v in pos if v == v):
            cx.set_yscale("log")
        cx.set_ylabel("model cost of the best program (add-units)")
        cx.set_title("best program after each phase")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(str(out))
    return True


def best_cost_per_phase(prog, final=None, **optimize_kwargs) -> list[float]:
    """The cost of the best program after each phase of ``schedule`` (an ``optimize`` keyword,
    default the default schedule).  Re-runs the prefixes of the schedule; ``final`` (the
    result of the full run, if you have it) saves the last run."""
    from .optimize import optimize
    from .strategy.combinators import Strategy, phases_of, seq
    from .strategy.defaults import default_schedule
    from .strategy.schedule_file import load_schedule
    sched = optimize_kwargs.pop("schedule", None)
    if sched is None or sched == "default":
        strat: Strategy | None = default_schedule()
    elif isinstance(sched, Strategy):
        strat = sched
    elif sched in ("all", "saturate-all", "saturate_all"):
        strat = None                    # one phase
    else:
        strat = load_schedule(sched)
    phases = phases_of(strat) if strat is not None else [None]
    optimize_kwargs.setdefault("check", False)
    costs = []
    for k in range(1, len(phases) + 1):
        if k == len(phases) and final is not None:
            costs.append(final.cost)
            break
        s = sched if strat is None else seq(*phases[:k])
        costs.append(optimize(prog, schedule=s, **optimize_kwargs).cost)
    return costs
