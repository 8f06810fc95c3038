"""Checking one rule directly: instantiate both sides, run them with the reference
interpreter, compare.  See :func:`check_rule`."""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import EqsatError, EvalError
from ..runtime import fp_ignore
from .instances import (Instance, Instantiator, NoInstance, TermGen, TypeClash, egg_text, outer_values,
                        show_t, term_size, to_expr)
from .rules import RuleSpec

#: Rules that may turn a run-time error of the left-hand side into a value (a refinement,
#: not an unsoundness).  name -> why.  ``build-get`` and its variants (fuse.egg: which reads of
#: a build are fused) are the only ones: dF~ assumes the index of ``get (build n f) k`` is in
#: range; an out-of-range get is an error of the original program.
_BUILD_GET_WHY = ("assumes 0 <= k < n (dF~'s F1): an out-of-range get of a build is an error in "
                  "the original program, and the rewrite only refines that error into a value")
REFINEMENT_RULES = {name: _BUILD_GET_WHY for name in (
    "build-get", "build-get-pair", "build-get-rows", "build-get-fill", "build-get-const", "build-get-add",
    "build-get-sub", "build-get-mul", "build-get-div", "build-get-mod")}

#: Assumptions a rule may declare in its comment (a line ``@assume finite`` directly above
#: the rule).  ``finite``: the rule is claimed only where no floating-point exception (division
#: by zero, overflow, invalid operation) happens on either side -- the usual fast-math
#: assumption that ``0/a => 0`` and ``x*0 => 0`` need.  Instances outside the assumption are
#: counted, not checked; a rule whose instances mostly fall outside it is reported skipped.
ASSUMPTIONS = {"finite"}


def declared_assumptions(spec: RuleSpec) -> frozenset:
    """The ``@assume NAME`` lines in a rule's comment."""
    import re
    return frozenset(m for m in re.findall(r"@assume\s+([\w-]+)", spec.comment or "") if m in ASSUMPTIONS)


RTOL, ATOL = 1e-7, 1e-9


@dataclass
class Counterexample:
    """The smallest failing instance found."""
    bindings: dict            # pattern variable -> egglog text
    types: dict               # pattern variable -> type text
    inputs: dict              # outer names -> values (lists for arrays)
    lhs: str
    rhs: str
    lhs_value: str
    rhs_value: str
    program_lhs: str = ""
    program_rhs: str = ""
    note: str = ""

    def describe(self, indent: str = "    ") -> str:
        out = [f"{indent}{v} = {t}   : {self.types.get(v, '')}" for v, t in self.bindings.items()]
        if self.inputs:
            out.append(f"{indent}with " + ", ".join(f"{k}={v}" for k, v in self.inputs.items()))
        out.append(f"{indent}lhs {self.lhs}")
        out.append(f"{indent}  = {self.lhs_value}")
        out.append(f"{indent}rhs {self.rhs}")
        out.append(f"{indent}  = {self.rhs_value}")
        if self.note:
            out.append(f"{indent}({self.note})")
        return "\n".join(out)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RuleResult:
    """What checking one rule found.  ``status``: ``sound`` (no counterexample in
    ``instances`` instances), ``unsound`` (see ``counterexample``), ``skipped`` (``reason``
    says why it could not be checked) or ``no equation`` (the rule only adds terms/facts)."""
    name: str
    ruleset: str
    file: str
    line: int
    status: str
    instances: int = 0
    reason: str = ""
    counterexample: Counterexample | None = None
    refined: int = 0            # instances where the rule turned an LHS error into a value
    both_errors: int = 0        # instance inputs where both sides failed (equal, nothing compared)
    assumed: int = 0            # instances outside the rule's declared assumptions (not checked)
    assumptions: tuple = ()     # the rule's declared assumptions
    only_colliding_names: bool = False   # unsound only when binder names collide
    mode: str = "direct"
    seconds: float = 0.0
    fired: dict = field(default_factory=dict)   # e-graph mode: rule -> matches

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def describe(self) -> str:
        head = f"{self.status.upper():<11} {self.name} ({self.where}, ruleset {self.ruleset or '-'})"
        if self.status == "sound" and self.mode == "egraph" and self.reason and not self.name.startswith("ruleset "):
            return head + f": {self.reason}"
        if self.status == "sound":
            return head + f": {self.instances} instances" + (f", {self.refined} refined errors" if self.refined else "") \
                + (f"; assumes {', '.join(self.assumptions)} ({self.assumed} instances outside it)"
                   if self.assumptions else "")
        if self.status == "unsound":
            extra = (" -- only when binder names collide (sound with the unique names the encoder "
                     "gives every program)") if self.only_colliding_names else ""
            return head + f": counterexample after {self.instances} instances{extra}\n" + \
                (self.counterexample.describe() if self.counterexample else "")
        return head + f": {self.reason}"

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "counterexample"}
        d["counterexample"] = self.counterexample.to_dict() if self.counterexample else None
        return d


# --------------------------------------------------------------------------------------
# evaluation and comparison
# --------------------------------------------------------------------------------------
class _Crash(Exception):
    pass


def run_side(term, env: dict, strict_fp: bool = False):
    """('ok', value) or ('error', message) -- or ('fp', message) when ``strict_fp`` and a
    floating-point exception happened; raises _Crash for an ill-formed instance."""
    from ..lang.interp import eval_expr
    try:
        e = to_expr(term)
    except EqsatError as ex:
        return "error", str(ex)
    except Exception as ex:   # noqa: BLE001 - a term the decoder cannot read
        raise _Crash(f"{type(ex).__name__}: {ex}") from None
    try:
        if strict_fp:
            with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
                v = eval_expr(e, dict(env))
            if not _all_finite(v):
                return "fp", "non-finite value"
            return "ok", v
        with fp_ignore():
            return "ok", eval_expr(e, dict(env))
    except (FloatingPointError, ZeroDivisionError, OverflowError) as ex:
        if strict_fp:
            return "fp", str(ex)
        raise _Crash(f"{type(ex).__name__}: {ex}") from None
    except EvalError as ex:
        return "error", str(ex)
    except RecursionError:
        raise _Crash("too deep") from None
    except Exception as ex:   # noqa: BLE001 - the interpreter on an ill-typed instance
        raise _Crash(f"{type(ex).__name__}: {ex}") from None


def _all_finite(v) -> bool:
    if isinstance(v, (tuple, list)):
        return all(_all_finite(x) for x in v)
    try:
        return bool(np.all(np.isfinite(np.asarray(v, dtype=float))))
    except (TypeError, ValueError):
        return True


def close(a, b, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Values equal up to rounding (NaN equals NaN; shapes and kinds must agree)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and \
            all(close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, list) or isinstance(b, list):
        la, lb = list(a), list(b)
        return len(la) == len(lb) and all(close(x, y, rtol, atol) for x, y in zip(la, lb))
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and bool(a) == bool(b)
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    if x.shape != y.shape:
        return False
    scale = max(1.0, float(np.nanmax(np.abs(x[np.isfinite(x)]))) if np.isfinite(x).any() else 1.0)
    return bool(np.allclose(x, y, rtol=rtol, atol=atol * scale, equal_nan=True))


def _show_value(r) -> str:
    kind, v = r
    if kind == "error":
        return f"error: {v}"
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=6, threshold=12)
    if isinstance(v, tuple):
        return "(" + ", ".join(_show_value(("ok", x)) for x in v) + ")"
    return repr(float(v)) if isinstance(v, (np.floating,)) else repr(v)


def _inputs_shown(inst: Instance, env: dict) -> dict:
    from .instances import egg_fv
    used = set()
    for t in (inst.lhs, inst.rhs):
        used |= set(_names_in(t))
    used |= egg_fv(inst.lhs)
    out = {}
    for k, v in env.items():
        if k in used:
            out[k] = np.round(v, 4).tolist() if isinstance(v, np.ndarray) else v
    return out


def _names_in(t):
    from .rules import App
    if isinstance(t, App):
        if t.head in ("Input", "Dim", "Var"):
            yield t.args[0]
        for a in t.args:
            yield from _names_in(a)


def outcome(inst: Instance, env: dict, refinement_ok: bool, assume_finite: bool = False):
    """None if both sides agree on ``env``; ``"both-error"`` if both fail (equal, but
    nothing was compared); ``"refined"`` / ``"assumed"`` for an allowed
    refinement / an instance outside the rule's assumption; else (lhs result, rhs result,
    note).  Raises _Crash when the left-hand side itself is ill-formed (discarded)."""
    lr = run_side(inst.lhs, env, assume_finite)
    try:
        rr = run_side(inst.rhs, env, assume_finite)
    except _Crash as ex:
        return lr, ("error", f"crash: {ex}"), "the right-hand side cannot be evaluated"
    if lr[0] == "fp" or rr[0] == "fp":
        return "assumed"
    if lr[0] == "error" and rr[0] == "error":
        return "both-error"
    if lr[0] == "error":
        if refinement_ok:
            return "refined"
        return lr, rr, "the left-hand side is an error but the right-hand side is a value"
    if rr[0] == "error":
        return lr, rr, "the right-hand side is an error but the left-hand side is a value"
    if close(lr[1], rr[1]):
        return None
    return lr, rr, ""


# --------------------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------------------
def _depth_for(frac: float) -> int:
    return 0 if frac < 0.15 else 1 if frac < 0.4 else 2 if frac < 0.75 else 3


def rule_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) & 0x7FFFFFFF


def check_rule(spec: RuleSpec, examples: int = 100, seed: int = 0, max_depth: int = 3,
               unique_names: bool = False) -> RuleResult:
    """Check one rule with ``examples`` random instances (each evaluated on two random
    inputs).  Instances grow from depth 0 to ``max_depth``, so the first counterexample is a
    small one; it is then shrunk variable by variable."""
    import time
    t0 = time.perf_counter()
    res = RuleResult(spec.name, spec.ruleset, spec.file, spec.line, "sound")
    if spec.skip_reason:
        res.status, res.reason = "skipped", spec.skip_reason
        return res
    if spec.no_equation:
        res.status, res.reason = "no equation", spec.no_equation
        return res
    rng = random.Random(rule_seed(seed, spec.name))
    nrng = np.random.default_rng(rule_seed(seed, spec.name))
    refine = (spec.name in REFINEMENT_RULES, "finite" in declared_assumptions(spec))
    res.assumptions = tuple(sorted(declared_assumptions(spec)))
    last_why = ""
    for eq in spec.equations:
        try:
            gen = Instantiator(eq, rng, unique_names=unique_names)
        except TypeClash as ex:
            res.status, res.reason = "skipped", f"cannot type the pattern variables ({ex})"
            return res
        checked, attempts = 0, 0
        while checked < examples and attempts < examples * 6:
            attempts += 1
            depth = min(max_depth, _depth_for(checked / examples))
            try:
                inst = gen.draw(depth)
            except (NoInstance, TypeClash) as ex:
                last_why = str(ex)
                continue
            try:
                if inst.rhs_type_error or inst.rhs_primitive_fails:
                    env = outer_values(inst, nrng)
                    lr = run_side(inst.lhs, env)
                    if inst.rhs_primitive_fails:
                        rr = ("error", f"egglog's primitive {inst.rhs_primitive_fails} fails")
                        note = ("a primitive of the right-hand side fails on this instance: egglog "
                                "stops the whole run when the rule fires here")
                    else:
                        rr = run_side(inst.rhs, env)
                        note = f"the right-hand side does not have the left-hand side's type ({inst.rhs_type_error})"
                    res.status, res.instances = "unsound", res.instances + checked + 1
                    res.counterexample = _counterexample(gen, inst, env, (lr, rr, note))
                    res.seconds = time.perf_counter() - t0
                    return res
                for _ in range(2):
                    env = outer_values(inst, nrng)
                    o = outcome(inst, env, *refine)
                    if o == "both-error":
                        res.both_errors += 1
                    elif o == "refined":
                        res.refined += 1
                    elif o == "assumed":
                        res.assumed += 1
                    elif o is not None:
                        inst, env, o = _shrink(gen, inst, env, o, refine, rng)
                        res.status, res.instances = "unsound", res.instances + checked + 1
                        res.counterexample = _counterexample(gen, inst, env, o)
                        if not unique_names and _collides(gen, inst):
                            again = check_rule(spec, examples, seed + 1, max_depth, unique_names=True)
                            res.only_colliding_names = again.status == "sound"
                        res.seconds = time.perf_counter() - t0
                        return res
            except _Crash as ex:
                last_why = f"ill-formed instance: {ex}"
                continue
            checked += 1
        res.instances += checked
        if checked and res.assumed > checked:     # two inputs per instance
            res.status = "skipped"
            res.reason = (f"most instances ({res.assumed} of {2 * checked}) fall outside the rule's "
                          f"declared assumption ({', '.join(res.assumptions)}): nothing checked")
        if checked == 0:
            res.status = "skipped"
            res.reason = f"no valid instance found in {attempts} attempts (last: {last_why})"
    res.seconds = time.perf_counter() - t0
    return res


def _fails(gen: Instantiator, inst: Instance, env: dict, refine: tuple):
    if gen.violated(inst):
        return None
    try:
        o = outcome(inst, env, *refine)
    except _Crash:
        return None
    return None if o in (None, "both-error", "refined", "assumed") else o


def _shrink(gen: Instantiator, inst: Instance, env: dict, o, refine: tuple, rng: random.Random):
    """Greedy: replace each variable's term by a smaller random one while the instance still
    fails (same inputs)."""
    tg = TermGen(rng, inst.sizes, fresh_prefix="h")
    for _round in range(3):
        improved = False
        for v in sorted(inst.types):
            cur = inst.bindings[v]
            best = None
            for d in (0, 0, 0, 0, 0, 0, 1, 1):
                try:
                    cand = tg.gen(inst.types[v], inst.envs[v], d)
                except NoInstance:
                    continue
                if term_size(cand) >= term_size(cur if best is None else best):
                    continue
                b = dict(inst.bindings)
                b[v] = cand
                try:
                    new = gen.build(b, inst.sizes, inst.outer, inst.types, inst.envs, inst.depth)
                except NoInstance:
                    continue
                no = _fails(gen, new, env, refine)
                if no is not None:
                    best, inst, o, improved = cand, new, no, True
        if not improved:
            break
    return inst, env, o


def _collides(gen: Instantiator, inst: Instance) -> bool:
    names = [inst.bindings[v] for v in gen.string_vars if v in inst.bindings]
    return len(set(names)) < len(names) or any(n in ("p", "q") for n in names)


def _counterexample(gen: Instantiator, inst: Instance, env: dict, o) -> Counterexample:
    from ..lang.syntax import show_expr
    lr, rr, note = o
    if _collides(gen, inst):
        note = (note + "; " if note else "") + ("binder names collide in this instance (the encoder "
                                                "makes names unique; rewriting can duplicate binders)")

    def prog(t):
        try:
            return show_expr(to_expr(t))
        except Exception:   # noqa: BLE001
            return ""
    lits = {k: egg_text(v) for k, v in sorted(inst.bindings.items())}
    return Counterexample(lits, {k: show_t(t) for k, t in inst.types.items()}, _inputs_shown(inst, env),
                          egg_text(inst.lhs), egg_text(inst.rhs), _show_value(lr), _show_value(rr),
                          prog(inst.lhs), prog(inst.rhs), note)
