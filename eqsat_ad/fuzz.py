"""Differential fuzzing of the whole pipeline.

One *case* (:func:`check_case`): a random smooth program -> a random derivative of it
(``grad`` / ``jvp`` / ``jacobian`` when the types allow, or the program itself) ->
``ea.optimize`` with a random schedule (the default, every ruleset to saturation, or random
phases built from random subsets of the rulesets with the strategy combinators), random limits
and a random extractor (``tree``, ``dag``, ``ilp``) -> the optimised program is run with the
reference interpreter and the NumPy backend on two input sets (one with other sizes than the
optimiser was told) and compared with the reference interpreter on the unoptimised
derivative; that derivative is compared with central finite differences of the program.

:func:`fuzz` runs cases for a number of cases or seconds and counts programs, optimisations
and rule instances (the rule matches egglog reports).  Every case is reproducible from its
seed: ``run_case(seed)``.

>>> rep = fuzz(cases=1, seed=3)
>>> rep.cases, rep.failures
(1, [])
"""
from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from .errors import ADError, EqsatError
from .lang.ast import Param, Program
from .lang.types import REAL, ArrayT, mat, vec

PARAMS = (Param("x", vec("n")), Param("y", vec("n")), Param("z", vec("m")), Param("M", mat("m", "n")),
          Param("w", REAL), Param("v", REAL))
SUPPORT = ("analysis", "subst", "cost")
RTOL, ATOL = 1e-6, 1e-8           # optimised vs unoptimised (rewriting reassociates sums)
FD_RTOL, FD_ATOL = 1e-4, 1e-5     # AD vs central finite differences


# --------------------------------------------------------------------------------------
# random pieces
# --------------------------------------------------------------------------------------
def random_program(rng: random.Random, depth: int = 3, smooth: bool = True,
                   vector_result: bool | None = None, sizes: dict | None = None) -> Program:
    """A random well-typed program over ``x, y : (vec n)``, ``z : (vec m)``, ``M : (mat m n)``,
    ``w, v : real`` (all always parameters), of type ``real`` or ``(vec n)``; smooth = no
    ``if`` and no comparisons.  Built with the rule checker's term generator."""
    from .lang.typecheck import check_program
    from .rulecheck.instances import REAL as R, Entry, TermGen, outer_env, to_expr
    sizes = sizes or {"n": 3, "m": 2}      # index literals stay below these sizes
    env = {k: e for k, e in outer_env(sizes).items() if e.kind in ("input", "dim")}
    for _ in range(50):
        g = TermGen(rng, sizes, fresh_prefix="t")
        g.smooth = smooth
        vr = rng.random() < 0.3 if vector_result is None else vector_result
        t = ("arr", R, "n") if vr else R
        body = to_expr(g.gen(t, env, depth))
        prog = Program(PARAMS, body)
        try:
            check_program(prog)
        except EqsatError:
            continue
        return prog
    raise EqsatError("could not generate a well-typed program")   # pragma: no cover
    _ = Entry


def random_inputs(prog: Program, sizes: dict, nrng: np.random.Generator) -> dict:
    out = {}
    for p in prog.params:
        t = p.type
        if t == REAL:
            out[p.name] = float(nrng.uniform(-1.5, 1.5))
            continue
        shape = []
        while isinstance(t, ArrayT):
            shape.append(sizes[t.size] if isinstance(t.size, str) else t.size)
            t = t.elem
        out[p.name] = nrng.uniform(-1.5, 1.5, tuple(shape))
    return out


def used_params(prog: Program) -> list[str]:
    from .lang.binders import free_vars
    fv = free_vars(prog.body)
    return [p.name for p in prog.params if p.name in fv]


def random_derivative(prog: Program, rng: random.Random):
    """(kind, wrt, derivative program); kind is grad | jvp | jacobian | none."""
    from .ad import grad, jacobian, jvp
    from .lang.typecheck import check_program
    out_t = check_program(prog)
    wrts = [w for w in used_params(prog) if w != "M" or rng.random() < 0.3] or ["x"]
    wrt = rng.choice(wrts)
    kinds = ["jvp", "none"] + (["grad", "grad", "grad"] if out_t == REAL else []) + \
        (["jacobian", "jacobian"] if isinstance(out_t, ArrayT) and wrt != "M" else [])
    kind = rng.choice(kinds)
    try:
        if kind == "grad":
            return kind, wrt, grad(prog, wrt)
        if kind == "jacobian":
            return kind, wrt, jacobian(prog, wrt)
        if kind == "jvp":
            return kind, wrt, jvp(prog, wrt)
    except ADError:
        return "jvp", wrt, jvp(prog, wrt)
    return "none", "", prog


def shipped_rulesets() -> list[str]:
    from .egraph.eggtext import read_forms, rulesets_in
    from .egraph.session import default_rule_files
    out: list[str] = []
    for f in default_rule_files():
        out += [r for r in rulesets_in(read_forms(f)) if r not in SUPPORT and r not in out]
    return sorted(out)


def random_schedule(rng: random.Random, rulesets: list[str]):
    """(description, schedule for ea.optimize)."""
    from .strategy.combinators import left_choice, phase, repeat, run, saturate, seq
    r = rng.random()
    if r < 0.3:
        return "default", None
    if r < 0.45:
        return "all", "all"
    phases, desc = [], []
    for i in range(rng.randint(1, 4)):
        sub = rng.sample(rulesets, rng.randint(1, min(4, len(rulesets))))
        u = rng.random()
        if u < 0.55:
            body, d = saturate(run(*sub)), f"saturate({'+'.join(sub)})"
        elif u < 0.9:
            k = rng.randint(1, 6)
            body, d = repeat(k, run(*sub)), f"repeat({k}, {'+'.join(sub)})"
        else:
            body, d = left_choice(run(sub[0]), run(*sub)), f"left_choice({sub[0]}, {'+'.join(sub)})"
        it = rng.choice([5, 20, 100])
        phases.append(phase(f"p{i}", body, iterations=it))
        desc.append(f"{d}[it<={it}]")
    return "; ".join(desc), seq(*phases)


def random_limits(rng: random.Random):
    from .strategy.combinators import Limits
    return Limits(iterations=rng.choice([10, 50, 300]), nodes=rng.choice([3000, 10000, 30000]),
                  seconds=rng.choice([2.0, 6.0]))


def extractors() -> list[str]:
    """The extractors available: ``tree`` always; ``dag``/``ilp`` when eqsat_ad.extract exists."""
    try:
        import eqsat_ad.extract  # noqa: F401
    except ImportError:
        return ["tree"]
    out = ["tree", "dag"]
    try:
        import scipy.optimize  # noqa: F401
        out.append("ilp")
    except ImportError:
        pass
    return out


# --------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------
def _flat(v) -> np.ndarray:
    from .testing import flatten_value
    return flatten_value(v)


def agree(a, b, rtol: float = RTOL, atol: float = ATOL) -> bool:
    x, y = _flat(a), _flat(b)
    if x.shape != y.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(x[np.isfinite(x)]))) if np.isfinite(x).any() else 1.0)
    return bool(np.allclose(x, y, rtol=rtol, atol=atol * scale, equal_nan=True))


# --------------------------------------------------------------------------------------
# one case
# --------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    """What one case did; ``problem`` is empty when everything agreed."""
    seed: int
    program: str = ""
    kind: str = ""
    wrt: str = ""
    schedule: str = ""
    extractor: str = ""
    limits: str = ""
    stop_reason: str = ""
    rule_matches: int = 0
    enodes: int = 0
    seconds: float = 0.0
    stage: str = ""            # fd | optimize | interpreter | backend | reference
    problem: str = ""
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def describe(self) -> str:
        return (f"case seed={self.seed} [{self.stage}] {self.problem}\n"
                f"  derivative: {self.kind} wrt {self.wrt or '-'}; schedule: {self.schedule}; "
                f"extractor: {self.extractor}; limits: {self.limits}; stop: {self.stop_reason}\n"
                f"  program: {self.program}\n"
                f"  replay: eqsat_ad.fuzz.run_case({self.seed})")


def _fd_ok(prog, kind, wrt, d, inputs, dval, nrng) -> str:
    """'' when the unoptimised derivative agrees with central finite differences."""
    from .lang.interp import evaluate
    from .testing import central_difference
    if kind == "none":
        return ""
    x = np.asarray(inputs[wrt], dtype=np.float64)
    vdir = nrng.standard_normal(x.shape)
    if kind == "jvp":
        dname = d.params[-1].name
        got = _flat(evaluate(d, **inputs, **{dname: float(vdir) if vdir.shape == () else vdir}))
    elif kind == "grad":
        got = np.array([np.sum(np.asarray(dval, dtype=float) * vdir)])
    else:   # jacobian
        jac = np.asarray(dval, dtype=float)
        got = _flat(jac @ vdir if x.ndim == 1 else jac * vdir)
    f0 = _flat(evaluate(prog, **inputs))
    scale = max(1.0, float(np.max(np.abs(f0))) if f0.size else 1.0)
    best = None
    for eps in (1e-6, 1e-5, 1e-7, 1e-4):
        fd = central_difference(prog, wrt, inputs, vdir, eps)
        if fd.shape != got.shape:
            return f"shape {got.shape} vs finite differences {fd.shape}"
        err = np.abs(got - fd) - (FD_ATOL * scale + FD_RTOL * np.abs(fd))
        if np.all(err <= 0):
            return ""
        if best is None or np.max(err) < best[0]:
            best = (float(np.max(err)), fd)
    return f"AD {np.round(got, 8).tolist()} vs central differences {np.round(best[1], 8).tolist()}"


def check_case(prog: Program, inputs: dict, rng: random.Random, seed: int = 0, *, kind=None, wrt=None,
               schedule=None, extractor=None, limits=None, second_sizes: dict | None = None,
               rulesets: list[str] | None = None) -> CaseResult:
    """Differentiate, optimise and compare one program (see the module docstring).  Anything
    left as None is drawn from ``rng``."""
    import eqsat_ad as ea
    from .lang.interp import evaluate
    from .lang.syntax import show_program
    t0 = time.perf_counter()
    nrng = np.random.default_rng(seed)
    res = CaseResult(seed, show_program(prog))
    try:
        if kind is None:
            kind, wrt, d = random_derivative(prog, rng)
        else:
            d = {"grad": ea.grad, "jvp": ea.jvp, "jacobian": ea.jacobian}[kind](prog, wrt) if kind != "none" else prog
        res.kind, res.wrt = kind, wrt or ""
        if schedule is None:
            res.schedule, schedule = random_schedule(rng, rulesets or shipped_rulesets())
        else:
            res.schedule = str(schedule)
        res.extractor = extractor = extractor or rng.choice(extractors())
        limits = limits or random_limits(rng)
        res.limits = ", ".join(f"{k}={v}" for k, v in limits.items())
        # the reference: the unoptimised derivative, with the interpreter
        din = dict(inputs)
        if kind == "jvp":
            p = d.params[-1]
            din[p.name] = random_inputs(Program((p,), d.body), _sizes(inputs, prog), nrng)[p.name]
        res.stage = "reference"
        ref = evaluate(d, **din)
        if not np.all(np.isfinite(_flat(ref))):
            res.skipped = "derivative not finite at these inputs"
            return res
        res.stage = "fd"
        prob = _fd_ok(prog, kind, wrt, d, inputs, ref, nrng)
        if prob:
            res.problem = "the unoptimised derivative disagrees with finite differences: " + prob
            return res
        res.stage = "optimize"
        sizes = _sizes(inputs, prog)
        out = ea.optimize(d, sizes=sizes, schedule=schedule, extractor=extractor, limits=limits, check=False)
        res.stop_reason = out.report.stop_reason
        res.rule_matches = sum(out.report.matches().values())
        res.enodes = out.report.enodes
        opt = out.program
        # same inputs, then other sizes than the optimiser was told
        sets = [(din, ref)]
        s2 = second_sizes or {k: v + rng.choice([1, 2]) for k, v in sizes.items()}
        in2 = random_inputs(d, s2, nrng)
        try:
            ref2 = evaluate(d, **in2)
            sets.append((in2, ref2))
        except EqsatError:
            pass
        fn = None
        try:
            fn = ea.compile(opt)
        except AttributeError:      # no backend in this checkout
            fn = None
        for inp, want in sets:
            res.stage = "interpreter"
            got = evaluate(opt, **inp)
            if not agree(got, want):
                res.problem = (f"optimised program (interpreted) gives {_short(got)}, the unoptimised "
                               f"{_short(want)} (sizes {_sizes(inp, d)})\n  optimised: {show_program(opt)}")
                return res
            if fn is not None:
                res.stage = "backend"
                got = fn(**inp)
                if not agree(got, want):
                    res.problem = (f"optimised program (NumPy backend) gives {_short(got)}, the "
                                   f"unoptimised {_short(want)} (sizes {_sizes(inp, d)})\n  optimised: "
                                   f"{show_program(opt)}")
                    return res
        res.stage = ""
    except Exception as e:   # noqa: BLE001 - every crash is a finding
        res.problem = f"{type(e).__name__}: {e}".strip()
        tb = traceback.extract_tb(e.__traceback__)
        if tb:
            res.problem += f" (at {tb[-1].filename.split('eqsat_ad/')[-1]}:{tb[-1].lineno})"
    finally:
        res.seconds = time.perf_counter() - t0
    return res


def _sizes(inputs: dict, prog: Program | None = None) -> dict:
    """Size names -> values, read off the input shapes (x : (vec n), z : (vec m) by default)."""
    if prog is None:
        return {"n": int(np.asarray(inputs["x"]).shape[0]), "m": int(np.asarray(inputs["z"]).shape[0])}
    out = {}
    for p in prog.params:
        t, a, axis = p.type, np.asarray(inputs[p.name]), 0
        while isinstance(t, ArrayT):
            if isinstance(t.size, str):
                out[t.size] = int(a.shape[axis])
            t, axis = t.elem, axis + 1
    return out


def _short(v) -> str:
    return np.array2string(_flat(v), precision=6, threshold=8)


def run_case(seed: int, depth: int = 3) -> CaseResult:
    """Case number ``seed`` of :func:`fuzz` (reproducible)."""
    rng = random.Random(seed)
    sizes = {"n": rng.choice([1, 2, 3]), "m": rng.choice([1, 2, 3])}
    prog = random_program(rng, depth=rng.randint(1, depth), sizes=sizes)
    inputs = random_inputs(prog, sizes, np.random.default_rng(seed))
    return check_case(prog, inputs, rng, seed)


@dataclass
class FuzzReport:
    cases: int = 0
    skipped: int = 0
    failures: list = field(default_factory=list)
    rule_matches: int = 0
    optimizations: int = 0
    seconds: float = 0.0
    by_extractor: dict = field(default_factory=dict)
    by_stop_reason: dict = field(default_factory=dict)
    by_kind: dict = field(default_factory=dict)

    def add(self, r: CaseResult) -> None:
        self.cases += 1
        if r.skipped:
            self.skipped += 1
            return
        if r.problem:
            self.failures.append(r)
        if r.stop_reason:
            self.optimizations += 1
            self.rule_matches += r.rule_matches
            self.by_stop_reason[r.stop_reason] = self.by_stop_reason.get(r.stop_reason, 0) + 1
        self.by_extractor[r.extractor] = self.by_extractor.get(r.extractor, 0) + 1
        self.by_kind[r.kind] = self.by_kind.get(r.kind, 0) + 1

    def summary(self) -> str:
        lines = [f"{self.cases} programs ({self.skipped} skipped: derivative not finite), "
                 f"{self.optimizations} optimisations, {self.rule_matches} rule instances (matches) "
                 f"in {self.seconds:.0f} s; {len(self.failures)} failures",
                 f"  derivatives: {self.by_kind}", f"  extractors: {self.by_extractor}",
                 f"  stop reasons: {self.by_stop_reason}"]
        for f in self.failures:
            lines.append(f.describe())
        return "\n".join(lines)


def fuzz(cases: int | None = None, seconds: float | None = None, seed: int = 0, depth: int = 3,
         progress=None) -> FuzzReport:
    """Run cases ``seed, seed+1, ...`` until ``cases`` were run or ``seconds`` passed."""
    if cases is None and seconds is None:
        cases = 10
    rep = FuzzReport()
    t0 = time.perf_counter()
    k = 0
    while (cases is None or k < cases) and (seconds is None or time.perf_counter() - t0 < seconds):
        r = run_case(seed + k, depth)
        rep.add(r)
        if progress:
            progress(r)
        k += 1
    rep.seconds = time.perf_counter() - t0
    return rep
