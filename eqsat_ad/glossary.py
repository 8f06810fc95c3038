"""The words the reports use, in plain language: one definition each, shared by the legend of
``eqsat-ad explain`` and by the demo (``python -m eqsat_ad.demo``).

>>> print(define("e-node"))
e-node: one operation applied to its arguments, e.g. (* a b), where each argument is an e-class; the size of an e-graph is counted in e-nodes
>>> "add-units" in legend()
True
"""
from __future__ import annotations

import textwrap

#: term -> its meaning, in plain words (a phrase that follows "TERM = ")
TERMS: dict[str, str] = {
    "e-graph": "the data structure of equality saturation: it holds the input program and every "
               "program the rewrite rules proved equal to it, sharing their common parts",
    "e-node": "one operation applied to its arguments, e.g. (* a b), where each argument is an "
              "e-class; the size of an e-graph is counted in e-nodes",
    "e-class": "a set of e-nodes proved equal, any of which can stand for the others",
    "phase": "one step of the schedule: a group of rulesets run together until they stop",
    "iteration": "one pass of a phase: every rule is matched against the whole e-graph and what "
                 "the matches produce is added",
    "saturated": "the stop reason of a phase whose last iteration added nothing new, so every "
                 "program its rules can reach is in the e-graph (the other stop reasons are its "
                 "limits: iteration, node, time, memory; or 'schedule completed')",
    "seconds": "wall-clock time of this run on this machine (per phase, for rewriting, for "
               "extraction)",
    "model cost": "the cost model's prediction of the run time of one call of a program under the "
                  "NumPy backend, in add-units",
    "tree cost": "the model cost with every repeated sub-term paid each time it occurs (the "
                 "model cost pays it once, as the backend computes it once)",
    "egglog's estimate": "the integer cost egglog's built-in extractor minimises (a guide to that "
                         "extractor only, not in add-units)",
    "extraction": "choosing one e-node in each e-class the program needs, so that the program "
                  "they form has the lowest model cost the extractor can find",
    "optimised": "the extracted program: equal to the input program (and checked against it on "
                 "random inputs), with the lowest model cost found; the input itself is kept when "
                 "nothing cheaper was found",
}

#: the terms the legend of ``eqsat-ad explain`` defines, in order
EXPLAIN_TERMS = ("e-node", "e-class", "phase", "iteration", "saturated", "model cost", "tree cost",
                 "egglog's estimate", "extraction")


def define(term: str) -> str:
    """``term: meaning``."""
    return f"{term}: {TERMS[term]}"


def legend(model=None, width: int = 100) -> str:
    """One paragraph for the end of ``eqsat-ad explain``: every term and number it prints.
    ``model``: the cost model whose unit is described (default: the default model)."""
    from .cost.units import unit_meaning
    parts = [f"{t} = {TERMS[t]}." for t in EXPLAIN_TERMS]
    parts.append(f"Unit: {unit_meaning(model)}; a predicted time is model cost x that time.")
    parts.append(f"Seconds (s) = {TERMS['seconds']}.")
    return textwrap.fill("legend: " + " ".join(parts), width=width, break_on_hyphens=False)
