"""The e-graph mode: rules checked the way egglog runs them.

For every ruleset of a file, random instances of the patterns its rules match (the query
roots, with unique binder names as the encoder gives them) are added, :data:`BATCH` to an
e-graph, to e-graphs with the schema, the free-variable analysis and the substitution rules;
the ruleset runs a few iterations together with ``analysis`` and ``subst``, the substitutions
finished after each; then up to ``variants`` members of each seed's e-class are extracted and
every one is compared with the seed on random inputs (reference interpreter).  A file egglog
refuses part of is not run (its forms are ``unloadable``).  This covers what the direct mode cannot
instantiate -- rules over relations computed by other rules, such as the loop-fission
candidate -- and the analyses the side conditions rely on (``fv``, ``ext``).
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np

from ..egraph.allowlist import check_rule_files
from ..egraph.decode import decode_termdag
from ..egraph.encode import shape_facts
from ..egraph.session import EGraphSession
from ..errors import EqsatError
from ..lang.types import mat, vec
from . import Report, _files, unloadable_results
from .direct import RuleResult, _show_value, close, rule_seed, run_side
from .loading import load_file
from .instances import (Instantiator, NoInstance, TypeClash, egg_fv, egg_text, outer_values)
from .rules import Equation, rules_in_file


def _seeds(specs, rng, examples: int):
    out = []
    for spec in specs:
        for root in spec.query_roots:
            eq = Equation(root, root, [c for c in spec.conditions if c.head != "="] if spec.kind == "rule"
                          else (spec.equations[0].conditions if spec.equations else []),
                          spec.sorts or (spec.equations[0].sorts if spec.equations else {}))
            try:
                gen = Instantiator(eq, rng, unique_names=True)
            except (TypeClash, Exception):   # noqa: BLE001 - a pattern we cannot type
                continue
            made, tries = 0, 0
            while made < examples and tries < examples * 6:
                tries += 1
                gen.name_prefix = f"k{len(out)}_"      # names unique across all seeds
                gen.fixed_sizes = {"n": 3, "m": 2}      # one e-graph: one size per size name
                try:
                    inst = gen.draw(rng.randint(0, 2))
                except (NoInstance, TypeClash):
                    continue
                free = egg_fv(inst.lhs)
                if any(n not in ("p", "q") and n not in inst.outer for n in free):
                    continue
                if any(n in inst.outer and inst.outer[n].kind != "index" for n in free):
                    continue
                out.append((spec, inst))
                made += 1
    return out


def _wrap(inst, term: str) -> str:
    """Bind the free index names of a seed with builds, so ``ext`` facts exist for them."""
    free = egg_fv(inst.lhs)
    for name in sorted(free):
        if name == "p":
            size = '(Dim "n")'
        elif name == "q":
            size = '(Dim "m")'
        else:
            s = inst.outer[name].type[1]
            size = f'(Dim "{s}")' if isinstance(s, str) else f"(Int {s})"
        term = f'(Build "{name}" {size} {term})'
    return term


def check_rules_egraph(files=None, examples: int = 10, seed: int = 0, rules: list[str] | None = None,
                       iterations: int = 4, variants: int = 8, node_limit: int = 10_000,
                       progress=None) -> Report:
    """Check each ruleset of ``files`` in an e-graph (see the module docstring); one
    :class:`RuleResult` per ruleset, named ``ruleset <name>``; ``progress(result)`` is called
    after each."""
    t0 = time.perf_counter()
    check_rule_files(_files(files))     # untrusted text: allowlisted before anything reads it
    rep = Report(files=[str(f) for f in _files(files)], mode="egraph")
    for f in _files(files):
        load = load_file(f)
        every = rules_in_file(f)
        rep.results += unloadable_results(load, every, rules, mode="egraph")
        specs = [s for s in every if rules is None or s.name in rules]
        by_rs: dict[str, list] = {}
        for s in specs:
            by_rs.setdefault(s.ruleset, []).append(s)
        for rs, group in by_rs.items():
            if load.errors:      # a file egglog refuses is not checked (the run fails)
                rep.results.append(RuleResult(f"ruleset {rs}", rs, str(f), group[0].line, "skipped", mode="egraph",
                                              reason="not checked: egglog refuses part of the file "
                                                     "(see the unloadable forms)"))
            else:
                rep.results.append(_check_ruleset(Path(f), rs, group, examples, seed, iterations, variants,
                                                  node_limit, load.context))
            if progress:
                progress(rep.results[-1])
    rep.seconds = time.perf_counter() - t0
    return rep


#: seeds per e-graph: seeds share e-classes (the inputs, p and q, constants), and a few hundred
#: one-hot conditionals in one e-graph can make a single iteration of cond outgrow memory
BATCH = 24


def _check_ruleset(f, rs, specs, examples, seed, iterations, variants, node_limit, context,
                   also: tuple = ()) -> RuleResult:
    t0 = time.perf_counter()
    res = RuleResult(f"ruleset {rs}", rs, str(f), specs[0].line, "sound", mode="egraph")
    rng = random.Random(rule_seed(seed, rs))
    nrng = np.random.default_rng(rule_seed(seed, rs))
    files = list(context) + [f]          # what the file loads after (loading.load_file)
    seeds = _seeds(specs, rng, examples)
    if not seeds:
        res.status, res.reason = "skipped", "no instance of any query pattern could be made"
        return res
    checked = 0
    for start in range(0, len(seeds), BATCH):
        batch = list(enumerate(seeds))[start:start + BATCH]
        try:
            s, matches = _run(files, (rs,) + tuple(also), batch, iterations, node_limit)
        except EqsatError as e:
            res.status, res.reason = "skipped", f"the e-graph run failed: {e}"
            return res
        for k2, v in matches.items():
            if v:
                res.fired[k2] = res.fired.get(k2, 0) + v
        got = _compare(s, batch, specs, matches, variants, nrng, res)
        checked += got
        if res.status == "unsound":
            res.instances = checked
            res.seconds = time.perf_counter() - t0
            return res
    res.instances = checked
    res.reason = f"{len(seeds)} seeds"
    res.seconds = time.perf_counter() - t0
    return res


def _run(files, rulesets, batch, iterations, node_limit):
    """One e-graph with the seeds of ``batch`` ((index, (spec, instance)) pairs), the rulesets
    run a few iterations with ``analysis`` and ``subst``, substitutions finished."""
    s = EGraphSession(files)
    from ..lang.ast import Param
    for p in (Param("x", vec("n")), Param("y", vec("n")), Param("z", vec("m")), Param("M", mat("m", "n"))):
        s.run_text("\n".join(shape_facts(p.name, p.type)))
    for k, (_spec, inst) in batch:
        s.add_term(f"s{k}", egg_text(inst.lhs))
        s.add_term(f"w{k}", _wrap(inst, f"$s{k}"))
    names = ("analysis", "subst") + tuple(r for r in rulesets if r not in ("analysis", "subst"))
    matches: dict[str, int] = {}
    before = s.enode_count()
    for _ in range(iterations):
        st = s.step(names)
        for k2, v in st.matches.items():
            matches[k2] = matches.get(k2, 0) + v
        # finish the substitutions (and the analyses) before the next iteration, as a phase of
        # the optimiser would get to: a side condition on the free variables of a substituted
        # body (fission) can only hold once the substitution is pushed through
        s.saturate(("analysis", "subst"), max_iterations=100)
        now = s.enode_count()
        # the limit is checked between iterations, and one iteration can multiply the e-graph
        # (one-hot conditionals: onehot-if on the class of 0): stop when the next would
        # probably pass twice the limit at this growth rate
        if not st.updated or now > node_limit or now * now / max(before, 1) > 2 * node_limit:
            break
        before = now
    s.saturate(("analysis", "subst"), max_iterations=500)
    return s, matches


def _compare(s, batch, specs, matches, variants, nrng, res) -> int:
    """Extract up to ``variants`` members of each seed's class and compare each with the seed
    (a counterexample goes into ``res``); returns how many were compared."""
    checked = 0
    # rules that fired and declare "@assume finite": compare only where no floating-point
    # exception happens (see direct.ASSUMPTIONS)
    from .direct import REFINEMENT_RULES, declared_assumptions
    finite = any(matches.get(sp.name) and "finite" in declared_assumptions(sp) for sp in specs)
    refined = any(matches.get(r) for r in REFINEMENT_RULES)
    for k, (spec, inst) in batch:
        try:
            (out,) = s.run_text(f"(extract $s{k} {variants})")
        except BaseException:   # noqa: BLE001 - egglog 13.2 can panic in multi-variant extraction
            try:
                (out,) = s.run_text(f"(extract $s{k})")
                out.terms = [out.term]
            except BaseException:   # noqa: BLE001
                continue
        env = outer_values(inst, nrng)
        want = run_side(inst.lhs, env, finite)
        if want[0] == "fp":
            res.assumed += 1
            continue
        for term in out.terms:
            try:
                e = decode_termdag(out.termdag, term)
            except EqsatError:
                continue
            from ..lang.binders import free_vars
            from ..lang.interp import eval_expr
            from ..runtime import fp_ignore
            extra = free_vars(e) - (egg_fv(inst.lhs) | set(env))
            if extra and not any(x.startswith(f"k{k}_") for x in extra):
                continue     # a member that mentions another seed's index: out of scope here
                             # (extraction's scope guard never picks it)
            if finite and not extra:
                got = run_side(e, env, True)
                if got[0] == "fp":
                    res.assumed += 1
                    continue
            elif extra:      # a name of this seed's own, free where it is not bound: wrong
                got = ("error", f"free variable(s) {', '.join(sorted(extra))} (bound nowhere)")
            else:
                try:
                    with fp_ignore():
                        got = ("ok", eval_expr(e, dict(env)))
                except EqsatError as ex:
                    got = ("error", str(ex))
            same = (not extra and want[0] == got[0] == "error") or (want[0] == got[0] == "ok" and close(want[1], got[1]))
            if refined and not extra and {want[0], got[0]} == {"error", "ok"}:
                same = True          # the documented refinement: in an e-graph a union is
                                     # symmetric, so the class of an out-of-range get also
                                     # holds the value build-get gave it
            checked += 1
            if not same:
                from ..lang.syntax import show_expr
                from .direct import Counterexample
                fired = sorted(r for r, v in matches.items() if v and not r.startswith(("fv-", "ext-", "real-")))
                res.status = "unsound"
                res.counterexample = Counterexample(
                    {"seed": egg_text(inst.lhs)}, {}, {kk: (np.round(v, 4).tolist() if isinstance(v, np.ndarray)
                                                            else v) for kk, v in env.items()},
                    egg_text(inst.lhs), show_expr(e), _show_value(want), _show_value(got),
                    note=f"an extracted member of the seed's e-class differs; rules that fired: {', '.join(fired)}")
                return checked
    return checked


def check_rule_in_egraph(spec, file_specs, load, examples: int = 10, seed: int = 0, iterations: int = 4,
                         variants: int = 8, node_limit: int = 10_000) -> RuleResult:
    """Check one rule whose query matches a relation other rules compute (the direct mode
    cannot instantiate it): the rule and the rules of its file that add facts to that
    relation run in an e-graph (as :func:`check_rules_egraph` does for a ruleset), seeded
    with instances of the producers' patterns.  Sound only if the rule fired; a rule that
    never fires is ``skipped`` (nothing was checked)."""
    import tempfile

    from ..egraph.eggtext import read_forms
    wanted = set(spec.uses_relations)
    producers = [s for s in file_specs if s is not spec and wanted & set(s.adds_facts)]
    # and the rules that compute what the producers match (a demand relation that starts a
    # derived one: deepinv's inv-demand before inv-split), transitively
    needed = set(wanted)
    while True:
        needed |= {r for s in producers for r in s.uses_relations}
        more = [s for s in file_specs if s is not spec and s not in producers and needed & set(s.adds_facts)]
        if not more:
            break
        producers += more
    res = RuleResult(spec.name, spec.ruleset, spec.file, spec.line, "skipped", mode="egraph")
    if not producers:
        res.reason = (f"its query matches {', '.join(sorted(wanted))}, which no rule of its file "
                      f"computes: it cannot be instantiated from a pattern")
        return res
    keep = {s.line: s.text for s in producers + [spec]}      # (their text: a mutant's, too)
    text = "\n".join(keep.get(f.line, f.text) for f in read_forms(spec.file)
                     if f.head not in ("rewrite", "birewrite", "rule") or f.line in keep)
    with_ = ", ".join(s.name for s in producers)
    fired = seeds = 0
    # random seeds rarely meet the relation's conditions (fission: neither body reads the other
    # half of the accumulator): rounds of fresh seeds until the rule has fired a few times
    # the tuple rules run too, as in the default schedule's phases: the candidate's bodies read
    # the new accumulators through (fst (pair ..)) until they do
    from ..egraph.session import rules_dir
    tuple_egg = rules_dir() / "tuple.egg"
    also = () if Path(spec.file).resolve() == tuple_egg.resolve() or spec.ruleset == "tuple" else ("tuple",)
    context = list(load.context) + ([tuple_egg] if also and tuple_egg not in load.context else [])
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / Path(spec.file).name
        part.write_text(text + "\n")
        for k in range(EGRAPH_ROUNDS):
            r = _check_ruleset(part, spec.ruleset, producers + [spec], max(20, examples), seed + k, iterations,
                               variants, node_limit, context, also)
            res.instances += r.instances
            res.seconds += r.seconds
            for name, v in r.fired.items():
                res.fired[name] = res.fired.get(name, 0) + v
            if r.status == "unsound":
                res.status, res.counterexample = "unsound", r.counterexample
                return res
            if r.status != "sound":
                res.reason = (f"its query matches {', '.join(sorted(wanted))}; in an e-graph with {with_} it "
                              f"could not be checked ({r.reason})")
                return res
            seeds += int(r.reason.split()[0]) if r.reason[:1].isdigit() else 0
            fired = res.fired.get(spec.name, 0)
            if fired >= EGRAPH_FIRINGS:
                break
    if not fired:
        res.reason = (f"its query matches {', '.join(sorted(wanted))}; in an e-graph with {with_} it "
                      f"never fired on {seeds} seeds: nothing was checked")
        return res
    res.status = "sound"
    res.reason = (f"checked in an e-graph with {with_} (its query matches {', '.join(sorted(wanted))}): "
                  f"fired {fired} time(s) on {seeds} seeds, {res.instances} extracted variants compared")
    return res


#: at most this many rounds of seeds for :func:`check_rule_in_egraph`
EGRAPH_ROUNDS = 10
#: ... and until the rule has fired this often
EGRAPH_FIRINGS = 8
