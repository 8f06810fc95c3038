"""Our benchmark worker: optimises and times eqsat-ad programs in its own process.

Run by the coordinator as ``python -m eqsat_ad.bench.worker`` with every thread pool set to 1
(:data:`eqsat_ad.bench.specs.THREAD_ENV`); speaks :mod:`eqsat_ad.bench.protocol`.

Methods: ``numpy`` (the hand-written gradient), ``unopt`` (the unoptimised dual-number
program compiled with ``ea.compile``) and ``opt`` (the optimised one; request fields
``schedule``, ``extractor`` and ``opt_n`` -- the size it was optimised for -- pick which).
Op ``optimize`` runs ``ea.optimize`` and answers the cost, e-graph size and times.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..extract import DEFAULT_EXTRACTOR
from . import protocol, specs

_PROGRAMS: dict = {}      # (group, name) -> derivative Program (unoptimised)
_COMPILED: dict = {}      # key -> compiled callable
_OPT: dict = {}           # (group, name, opt_n, schedule, extractor) -> info dict
_INPUTS: dict = {}        # (group, name, n) -> (args, reference)


def _schedule_arg(schedule: str):
    if schedule in (None, "default", "all"):
        return schedule
    if schedule == "user":
        return str(user_schedule_path())
    return schedule


def user_schedule_path() -> Path:
    """``eqsat_ad/bench/schedules/user_example.egg`` (shipped with the package), or the file
    named by ``EQSAT_AD_USER_SCHEDULE``."""
    env = os.environ.get("EQSAT_AD_USER_SCHEDULE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "schedules" / "user_example.egg"


def derivative(spec: specs.Spec):
    import eqsat_ad as ea
    key = (spec.group, spec.name)
    if key not in _PROGRAMS:
        p = ea.parse(spec.text)
        _PROGRAMS[key] = getattr(ea, spec.kind)(p, spec.wrt)
    return _PROGRAMS[key]


def _inputs(spec: specs.Spec, n: int):
    key = (spec.group, spec.name, n)
    if key not in _INPUTS:
        _INPUTS.clear()                     # keep one size in memory at a time
        args = specs.inputs(spec, n)
        _INPUTS[key] = (args, specs.reference(spec, n, args))
    return _INPUTS[key]


def optimize(spec: specs.Spec, n: int, schedule: str = "default", extractor: str = DEFAULT_EXTRACTOR,
             seconds: float = 20.0, nodes: int | None = None) -> dict:
    import eqsat_ad as ea
    key = (spec.group, spec.name, n, schedule, extractor)
    if key in _OPT:
        return _OPT[key]
    g = derivative(spec)
    t0 = time.perf_counter()
    res = ea.optimize(g, sizes=spec.sizes(n), schedule=_schedule_arg(schedule), extractor=extractor,
                      limits={"seconds": seconds, **({"nodes": nodes} if nodes else {})}, check=False)
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    from ..optimize import check_agrees
    try:
        check_agrees(g, res.program)
        checked = "ok"
    except Exception as exc:  # noqa: BLE001
        checked = f"{type(exc).__name__}: {exc}"[:300]
    fn = ea.compile(res.program)
    rep = res.report
    info = {"ok": True, "cost_before": res.cost_before, "cost": res.cost, "enodes": rep.enodes,
            "eclasses": getattr(rep, "eclasses", None), "iterations": rep.iterations,
            "stop_reason": rep.stop_reason, "seconds_total": wall, "seconds_egraph": rep.seconds,
            "seconds_extract": (rep.extraction or {}).get("seconds"),
            "program": ea.show_expr(res.program.body), "interp_check": checked,
            "check_seconds": time.perf_counter() - t0, "fallback": getattr(fn, "fallback", None),
            "phases": [{"name": p.name, "iterations": p.iterations, "enodes": p.enodes_after,
                        "seconds": p.seconds, "stop_reason": p.stop_reason} for p in rep.phases]}
    _OPT[key] = info
    _COMPILED[("opt",) + key] = fn
    return info


def _callable(spec: specs.Spec, req: dict, args: dict):
    method = req["method"]
    if method == "numpy":
        f = spec.numpy_grad
        a = [args[p] for p in spec.params]
        return lambda: f(*a)
    if method == "unopt":
        import eqsat_ad as ea
        key = ("unopt", spec.group, spec.name)
        if key not in _COMPILED:
            _COMPILED[key] = ea.compile(derivative(spec))
        fn = _COMPILED[key]
    elif method == "opt":
        key = (spec.group, spec.name, req.get("opt_n", req["n"]), req.get("schedule", "default"),
               req.get("extractor", DEFAULT_EXTRACTOR))
        if ("opt",) + key not in _COMPILED:
            optimize(spec, *key[2:], seconds=req.get("opt_seconds", 20.0), nodes=req.get("opt_nodes"))
        fn = _COMPILED[("opt",) + key]
    else:
        raise ValueError(f"unknown method {method!r}")
    kw = dict(args)
    return lambda: fn(**kw)


def handle(req: dict) -> dict:
    op = req.get("op")
    if op == "methods":
        return {"ok": True, "methods": ["numpy", "unopt", "opt"]}
    if op == "versions":
        import numpy
        import egglog  # noqa: F401
        from importlib.metadata import version
        import eqsat_ad
        return {"ok": True, "versions": {"numpy": numpy.__version__, "egglog": version("egglog"),
                                         "eqsat_ad": eqsat_ad.__version__,
                                         "python": sys.version.split()[0]}}
    spec = specs.get(req["group"], req["program"])
    if op == "optimize":
        return optimize(spec, req["n"], req.get("schedule", "default"), req.get("extractor", DEFAULT_EXTRACTOR),
                        req.get("opt_seconds", 20.0), req.get("opt_nodes"))
    if op == "source":
        key = ("opt", spec.group, spec.name, req["n"], req.get("schedule", "default"),
               req.get("extractor", DEFAULT_EXTRACTOR))
        fn = _COMPILED.get(key)
        return {"ok": fn is not None, "source": getattr(fn, "source", None)}
    if op == "time":
        args, ref = _inputs(spec, req["n"])
        return protocol.time_call(lambda: _callable(spec, req, args),
                                  lambda out: specs.max_rel_error(out, ref),
                                  req.get("repeats", 7), req.get("target", 0.2), req.get("budget", 30.0))
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    import eqsat_ad  # noqa: F401  (import before answering, so timings exclude it)
    protocol.serve(handle)


if __name__ == "__main__":
    main()
