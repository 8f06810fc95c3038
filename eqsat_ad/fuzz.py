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

Two more drivers, with programs of :mod:`eqsat_ad.random_programs` (pair accumulators, nested
folds reading outer accumulators and indices, guarded gets, ...):

* :func:`fuzz_backend` / :func:`backend_case`: the NumPy backend against the interpreter, no
  optimiser (value and representation, no memory shared with an input, inputs untouched);
* :func:`matrix_case`: one program's gradient or JVP through *every* schedule and extractor,
  each result run by both executors; ``benchmarks/fuzz_long.py`` counts the checks by
  (schedule, extractor, executor).

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


# ======================================================================================
# the NumPy backend against the reference interpreter, on programs that stress it
# ======================================================================================
def rich_program(rng: random.Random, smooth: bool = False, depth: int | None = None,
                 sizes: dict | None = None, int_division: bool = False,
                 range_guards: bool = False) -> tuple[Program, dict]:
    """(program, sizes): a random program of :mod:`eqsat_ad.random_programs` (pair
    accumulators, nested folds reading outer accumulators and indices, guarded gets, lets,
    conditionals, ...) over ``x : (vec n)`` and some of ``y, w, M, z, v``; result real,
    vector, matrix or (real, vector); with ``int_division``, indices computed by ``div``/``mod``
    too."""
    from .lang.types import PairT
    from .lang.typecheck import check_program
    from .random_programs import choose_params, generate

    def choose(k: int) -> int:
        return rng.randrange(k)
    params = choose_params(choose)
    names = [p.name for p in params]
    sizes = sizes or {"n": rng.randint(1, 3), "m": rng.randint(1, 3)}
    if not ({"M", "z"} & set(names)):
        sizes = {"n": sizes["n"]}
    results = [REAL, REAL, REAL, vec("n"), PairT(REAL, vec("n"))]
    if "m" in sizes:
        results.append(mat("m", "n"))
    result = rng.choice(results) if not smooth else rng.choice([REAL, REAL, vec("n")])
    depth = depth if depth is not None else rng.choice([2, 3, 3, 4, 4])
    for _ in range(20):
        prog = Program(params, generate(choose, params, result, sizes, smooth=smooth, max_depth=depth,
                                        int_division=int_division, range_guards=range_guards))
        try:
            check_program(prog)
        except EqsatError:           # pragma: no cover - the generator makes well-typed terms
            continue
        return prog, sizes
    raise EqsatError("could not generate a well-typed program")   # pragma: no cover


def program_features(prog: Program) -> set[str]:
    """Which of the shapes the backend fuzzer is meant to exercise ``prog`` has."""
    from .lang.ast import Get, If, IFold, Let, Prim, Sum, Var, iter_nodes
    from .lang.binders import free_vars
    from .lang.types import IndexT, PairT
    from .lang.typecheck import annotate, elaborate, program_env
    p = elaborate(prog)
    types = annotate(p.body, program_env(p))
    out: set[str] = set()

    def has_index(t) -> bool:
        return isinstance(t, IndexT) or isinstance(t, PairT) and (has_index(t.fst) or has_index(t.snd))
    from .lang.ast import Build
    for e in iter_nodes(p.body):
        if isinstance(e, Build) and any(
                isinstance(c, If) and e.var in free_vars(c.cond) and any(
                    isinstance(g, Get) and not isinstance(g.index, Var) for g in iter_nodes(c))
                for c in iter_nodes(e.body)):
            out.add("range-guarded build")
    for e in iter_nodes(p.body):
        t = types.get(id(e))
        if isinstance(e, Let):
            out.add("let")
        elif isinstance(e, If):
            out.add("if")
            bound = free_vars(e.cond)
            for br in (e.then, e.else_):
                if any(isinstance(g, Get) and not isinstance(g.index, Var) and free_vars(g.index) & bound
                       for g in iter_nodes(br)):
                    out.add("guarded get")
        elif isinstance(e, (IFold, Sum)):
            if free_vars(e.size) - {q.name for q in p.params} - _size_names(p):
                out.add("index-dependent loop size")
            if isinstance(e, IFold):
                out.add("ifold")
                if isinstance(t, PairT):
                    out.add("pair accumulator")
                if has_index(t):
                    out.add("index accumulator")
                for inner in iter_nodes(e.body):
                    if isinstance(inner, IFold) and inner is not e:
                        fv = free_vars(inner)
                        if e.acc in fv:
                            out.add("nested fold reads outer accumulator")
                        if e.var in fv:
                            out.add("nested fold reads outer index")
        elif isinstance(e, Prim) and e.op in ("+", "-") and isinstance(e.args[0], Var) and \
                types.get(id(e)) is not None and isinstance(types[id(e)], IndexT):
            out.add("index arithmetic")
    return out


def _size_names(p: Program) -> set[str]:
    from .lang.types import size_names
    return {s for q in p.params for s in size_names(q.type)}


def _leaves(v) -> list:
    return [x for part in v for x in _leaves(part)] if isinstance(v, tuple) else [v]


def same_value(got, want, rtol: float = 1e-7, atol: float = 1e-9) -> str:
    """'' when ``got`` is ``want`` up to rounding, in the same representation (pairs as
    tuples, reals as floats, indices as ints, arrays of the same shape and dtype); otherwise
    what differs."""
    if isinstance(want, tuple) or isinstance(got, tuple):
        if not (isinstance(want, tuple) and isinstance(got, tuple) and len(got) == len(want)):
            return f"a {type(got).__name__} where the interpreter gives a {type(want).__name__}"
        for k, (a, b) in enumerate(zip(got, want)):
            why = same_value(a, b, rtol, atol)
            if why:
                return f"component {k}: {why}"
        return ""
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        if not (isinstance(want, np.ndarray) and isinstance(got, np.ndarray)):
            return f"a {type(got).__name__} where the interpreter gives a {type(want).__name__}"
        if want.shape == (0,) and got.ndim > 1 and got.shape[0] == 0 and got.dtype == want.dtype:
            return ""    # the interpreter cannot see the element shape of an empty build of arrays
        if got.shape != want.shape or got.dtype != want.dtype:
            return f"{got.dtype}{list(got.shape)} where the interpreter gives {want.dtype}{list(want.shape)}"
    elif type(got) is not type(want):
        return f"a {type(got).__name__} where the interpreter gives a {type(want).__name__}"
    if not agree(got, want, rtol, atol):
        return f"{_short(got)} where the interpreter gives {_short(want)}"
    return ""


def check_backend(prog: Program, inputs: dict, fn=None, want=None, rtol: float = 1e-7,
                  atol: float = 1e-9) -> str:
    """'' when the compiled program gives what the interpreter gives on ``inputs`` (or
    raises the same kind of error), returns no memory shared with an input, and leaves the
    inputs as they were; otherwise the problem.  ``want``: the expected value, when it is
    known (e.g. the interpreter's on the unoptimised program)."""
    import eqsat_ad as ea
    from .lang.interp import evaluate
    werr = None
    if want is None:
        try:
            want = evaluate(prog, **inputs)
        except EqsatError as e:
            werr = e
    fn = fn or ea.compile(prog)
    before = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
    try:
        got = fn(**inputs)
    except EqsatError as e:
        if werr is not None and type(e) is type(werr):
            return ""
        return f"the backend raises {type(e).__name__}: {e}" + (
            f"; the interpreter {type(werr).__name__}: {werr}" if werr else
            f"; the interpreter gives {_short(want)}")
    if werr is not None:
        return f"the backend gives {_short(got)}; the interpreter raises {type(werr).__name__}: {werr}"
    why = same_value(got, want, rtol, atol)
    if why:
        return "the backend gives " + why
    outs = [o for o in _leaves(got) if isinstance(o, np.ndarray)]
    for k, v in inputs.items():
        if isinstance(v, np.ndarray) and not np.array_equal(v, before[k], equal_nan=True):
            return f"the backend changed its input {k!r}"
        for out in outs:
            if isinstance(v, np.ndarray) and np.shares_memory(out, v):
                return f"the result shares memory with the input {k!r}"
    for a in range(len(outs)):
        for b in range(a):
            if np.shares_memory(outs[a], outs[b]):
                return f"components {b} and {a} of the result share memory"
    return ""


@dataclass
class BackendReport:
    """What :func:`fuzz_backend` did: programs, checks (input sets), features seen."""
    programs: int = 0
    checks: int = 0
    fallbacks: int = 0
    features: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)    # (seed, problem, program text)
    seconds: float = 0.0

    def add(self, seed: int, checks: int, feats: set, problems: list, text: str, fallback: bool) -> None:
        self.programs += 1
        self.checks += checks
        self.fallbacks += fallback
        for f in feats:
            self.features[f] = self.features.get(f, 0) + 1
        if problems:
            self.failures.append((seed, problems[0], text))

    def merge(self, other: "BackendReport") -> None:
        self.programs += other.programs
        self.checks += other.checks
        self.fallbacks += other.fallbacks
        for k, v in other.features.items():
            self.features[k] = self.features.get(k, 0) + v
        self.failures += other.failures

    def summary(self) -> str:
        feats = ", ".join(f"{k} {v}" for k, v in sorted(self.features.items()))
        lines = [f"backend vs interpreter: {self.programs} programs, {self.checks} checks "
                 f"({self.fallbacks} ran with the interpreter fallback) in {self.seconds:.0f} s; "
                 f"{len(self.failures)} mismatches", f"  programs with: {feats}"]
        for seed, problem, text in self.failures:
            lines.append(f"backend case seed={seed}: {problem}\n  program: {text}\n"
                         f"  replay: eqsat_ad.fuzz.backend_case({seed})")
        return "\n".join(lines)


def backend_case(seed: int) -> tuple[Program, set, list, int, bool]:
    """Backend case ``seed``: (program, its features, problems, checks, fell back)."""
    import eqsat_ad as ea
    rng = random.Random(seed)
    prog, sizes = rich_program(rng, smooth=rng.random() < 0.2, int_division=True, range_guards=True)
    nrng = np.random.default_rng(seed)
    # the drawn sizes, larger ones, and 0 or 1: empty loops, negative extents ((- n 1)),
    # index literals out of range (then both executors must raise the same kind of error)
    sets = [sizes, {k: v + rng.choice([1, 2]) for k, v in sizes.items()},
            {k: rng.choice([0, 1]) for k in sizes}]
    problems, checks = [], 0
    fn = ea.compile(prog)
    for sz in sets:
        inputs = random_inputs(prog, sz, nrng)
        checks += 1
        why = check_backend(prog, inputs, fn)
        if why:
            problems.append(f"{why} (sizes {sz})")
            break
    return prog, program_features(prog), problems, checks, fn.fallback is not None


def fuzz_backend(cases: int | None = None, seconds: float | None = None, seed: int = 0,
                 progress=None) -> BackendReport:
    """Backend cases ``seed, seed+1, ...`` until ``cases`` ran or ``seconds`` passed."""
    from .lang.syntax import show_program
    rep = BackendReport()
    t0 = time.perf_counter()
    k = 0
    while (cases is None or k < cases) and (seconds is None or time.perf_counter() - t0 < seconds):
        try:
            prog, feats, problems, checks, fb = backend_case(seed + k)
            rep.add(seed + k, checks, feats, problems, show_program(prog), fb)
        except Exception as e:   # noqa: BLE001 - a crash of the backend is a finding
            rep.add(seed + k, 1, set(), [f"{type(e).__name__}: {e}"], "(see replay)", False)
        if progress:
            progress(rep)
        k += 1
    rep.seconds = time.perf_counter() - t0
    return rep


# ======================================================================================
# the long run: every schedule x extractor x executor on each program
# ======================================================================================
SCHEDULES = ("default", "all")
MATRIX_LIMITS = dict(iterations=300, nodes=30000, seconds=10.0)


@dataclass
class MatrixResult:
    """One program of :func:`matrix_case`: its derivative went through every (schedule,
    extractor) and ran with every executor; ``checks`` counts the comparisons by
    ``(schedule, extractor, executor)``, ``mismatches`` the ones that failed."""
    seed: int
    generator: str = ""
    program: str = ""
    kind: str = ""
    wrt: str = ""
    checks: dict = field(default_factory=dict)
    mismatches: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)     # text, with what to replay
    skipped: str = ""
    seconds: float = 0.0

    def count(self, key: tuple, problem: str) -> None:
        self.checks[key] = self.checks.get(key, 0) + 1
        if problem:
            self.mismatches[key] = self.mismatches.get(key, 0) + 1
            self.problems.append(f"{'/'.join(key)}: {problem}")


def matrix_case(seed: int, schedules=SCHEDULES, extractor_names=None, depth: int = 3) -> MatrixResult:
    """Program ``seed`` (the rule checker's smooth terms, or :mod:`.random_programs` terms,
    smooth or not) and its gradient (real result) or JVP: the program and the unoptimised
    derivative through the backend; the derivative through ``ea.optimize`` with each
    schedule and extractor, each result run by the interpreter and the backend on two input
    sets (the optimiser's sizes and larger ones), compared with the interpreter on the
    unoptimised derivative; smooth programs' derivatives against finite differences."""
    import eqsat_ad as ea
    from .ad import grad, jvp
    from .lang.interp import evaluate
    from .lang.syntax import show_program
    from .lang.typecheck import check_program
    t0 = time.perf_counter()
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    res = MatrixResult(seed)
    try:
        res.generator = rng.choice(["termgen", "rich-smooth", "rich"])
        if res.generator == "termgen":
            sizes = {"n": rng.choice([1, 2, 3]), "m": rng.choice([1, 2, 3])}
            prog = random_program(rng, depth=rng.randint(1, depth), sizes=sizes)
        else:
            prog, sizes = rich_program(rng, smooth=res.generator == "rich-smooth",
                                       depth=rng.randint(2, depth))
        res.program = show_program(prog)
        inputs = random_inputs(prog, sizes, nrng)
        res.count(("program", "-", "backend"), check_backend(prog, inputs))
        wrts = [w for w in used_params(prog) if w != "M" or rng.random() < 0.3]
        if not wrts:
            res.skipped = "no differentiable input is used"
            return res
        res.wrt = rng.choice(wrts)
        real_result = check_program(prog) == REAL
        res.kind = "grad" if real_result and rng.random() < 0.7 else "jvp"
        d = grad(prog, res.wrt) if res.kind == "grad" else jvp(prog, res.wrt)
        din = dict(inputs)
        if res.kind == "jvp":
            p = d.params[-1]
            din[p.name] = random_inputs(Program((p,), d.body), sizes, nrng)[p.name]
        want = evaluate(d, **din)
        if not np.all(np.isfinite(_flat(want))):
            res.skipped = "derivative not finite at these inputs"
            return res
        if res.generator != "rich":
            prob = _fd_ok(prog, res.kind, res.wrt, d, inputs, want, nrng)
            res.count(("unoptimised", "-", "finite differences"),
                      prob and "the derivative disagrees with finite differences: " + prob)
        sets = [(din, want)]
        in2 = random_inputs(d, {k: v + rng.choice([1, 2]) for k, v in sizes.items()}, nrng)
        try:
            sets.append((in2, evaluate(d, **in2)))
        except EqsatError:
            pass
        for inp, w in sets:
            res.count(("unoptimised", "-", "backend"), check_backend(d, inp, want=w))
        from .strategy.combinators import Limits
        for sched in schedules:
            for ex in extractor_names or extractors():
                key, before = (sched, ex), len(res.problems)
                strategy, limits = (None if sched == "default" else sched), Limits(**MATRIX_LIMITS)
                if sched == "random":          # random phases of random rulesets, random limits
                    desc, strategy = random_schedule(rng, shipped_rulesets())
                    limits = random_limits(rng)
                try:
                    out = ea.optimize(d, sizes=sizes, schedule=strategy, extractor=ex, limits=limits,
                                      check=False)
                except Exception as e:   # noqa: BLE001 - every crash is a finding
                    res.count(key + ("optimize",), f"{type(e).__name__}: {e}"
                              + (f" (schedule {desc})" if sched == "random" else ""))
                    continue
                opt = out.program
                fn = ea.compile(opt)
                for inp, w in sets:
                    try:
                        got = evaluate(opt, **inp)
                        why = same_value(got, w, RTOL, ATOL)
                    except EqsatError as e:
                        why = f"{type(e).__name__}: {e}"
                    res.count(key + ("interpreter",), why and f"the optimised program gives {why}"
                              f" (sizes {_sizes(inp, d)})\n    optimised: {show_program(opt)}")
                    why = check_backend(opt, inp, fn, want=w, rtol=RTOL, atol=ATOL)
                    res.count(key + ("backend",), why and f"{why} (sizes {_sizes(inp, d)})\n"
                              f"    optimised: {show_program(opt)}")
                if sched == "random" and len(res.problems) > before:
                    res.problems[-1] += f"\n    schedule: {desc}; limits: {limits}"
    except Exception as e:   # noqa: BLE001 - every crash is a finding
        res.problems.append(f"crash: {type(e).__name__}: {e}")
    finally:
        res.seconds = time.perf_counter() - t0
    return res


@dataclass
class MatrixReport:
    programs: int = 0
    skipped: int = 0
    crashed: int = 0
    checks: dict = field(default_factory=dict)
    mismatches: dict = field(default_factory=dict)
    by_generator: dict = field(default_factory=dict)
    by_kind: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)     # MatrixResult with problems
    seconds: float = 0.0

    def add(self, r: MatrixResult) -> None:
        self.programs += 1
        self.skipped += bool(r.skipped)
        self.crashed += any(p.startswith("crash") for p in r.problems)
        for src, dst in ((r.checks, self.checks), (r.mismatches, self.mismatches)):
            for k, v in src.items():
                dst[k] = dst.get(k, 0) + v
        self.by_generator[r.generator] = self.by_generator.get(r.generator, 0) + 1
        if r.kind:
            self.by_kind[r.kind] = self.by_kind.get(r.kind, 0) + 1
        if r.problems:
            self.failures.append(r)

    def summary(self) -> str:
        total = sum(self.checks.values())
        bad = sum(self.mismatches.values())
        lines = [f"pipeline matrix: {self.programs} programs ({self.skipped} skipped: derivative not "
                 f"finite or nothing to differentiate; {self.crashed} crashed), {total} checks, "
                 f"{bad} mismatches, {len(self.failures)} programs with a problem, in "
                 f"{self.seconds / 60:.1f} min",
                 f"  generators: {self.by_generator}; derivatives: {self.by_kind}",
                 "  checks (mismatches) by schedule / extractor / executor:"]
        for k in sorted(self.checks):
            lines.append(f"    {'/'.join(k):45s} {self.checks[k]:7d} ({self.mismatches.get(k, 0)})")
        for r in self.failures:
            lines.append(f"case seed={r.seed} ({r.generator}, {r.kind} wrt {r.wrt or '-'}):")
            lines += ["  " + p for p in r.problems[:3]]
            lines.append(f"  program: {r.program}\n  replay: eqsat_ad.fuzz.matrix_case({r.seed})")
        return "\n".join(lines)
