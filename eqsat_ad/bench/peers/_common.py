"""Shared by the peer workers: load the benchmark specs and protocol by file path (without
importing eqsat_ad/egglog into a JAX or PyTorch process) and answer timing requests."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

_BENCH = Path(os.environ.get("EQSAT_AD_BENCH_DIR", Path(__file__).resolve().parents[1]))


def _load(name: str):
    modname = f"_eqsat_ad_bench_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, _BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


specs = _load("specs")
protocol = _load("protocol")


def run_worker(methods: dict, to_numpy, versions: dict, convert) -> None:
    """Serve timing requests.

    ``methods``: name -> builder(spec, fn, argnum, args) -> zero-argument callable, where
    ``fn`` is the peer definition of the program and ``args`` the converted inputs (a list in
    parameter order); ``to_numpy(out)`` turns a result into an ndarray; ``convert(ndarray)``
    makes a framework array."""
    cache: dict = {}

    def handle(req: dict) -> dict:
        op = req.get("op")
        if op == "methods":
            return {"ok": True, "methods": sorted(methods)}
        if op == "versions":
            return {"ok": True, "versions": versions}
        if op != "time":
            raise ValueError(f"unknown op {op!r}")
        spec = specs.get(req["group"], req["program"])
        n = req["n"]
        key = (spec.group, spec.name, n)
        if key not in cache:
            cache.clear()
            raw = specs.inputs(spec, n)
            cache[key] = ([convert(raw[p]) for p in spec.params], specs.reference(spec, n, raw))
        args, ref = cache[key]
        build = methods[req["method"]]
        fn = PEER_FUNCTIONS[spec.peer]
        argnum = spec.params.index(spec.wrt)
        return protocol.time_call(lambda: build(spec, fn, argnum, args),
                                  lambda out: specs.max_rel_error(to_numpy(out), ref),
                                  req.get("repeats", 7), req.get("target", 0.2), req.get("budget", 30.0))

    protocol.serve(handle)


PEER_FUNCTIONS: dict = {}


def define(np_like, matmul=None, cross=None):
    """The benchmark programs written with ``np_like`` (jax.numpy or torch)."""
    m = matmul or (lambda A, x: A @ x)
    PEER_FUNCTIONS.update({
        "vsum": lambda x: np_like.sum(x),
        "dot": lambda x, w: np_like.sum(x * w),
        "sqnorm": lambda x: np_like.sum(x * x),
        "add3": lambda v1, v2, v3: np_like.sum(v1 + v2 + v3),
        "cross": lambda a, b: np_like.sum(cross(a, b)),
        "sumsq": lambda x: np_like.sum(x ** 2),
        "sigmoid": lambda x: np_like.sum(1.0 / (1.0 + np_like.exp(-x))),
        "lse": lambda x: np_like.log(np_like.sum(np_like.exp(x))),
        "poly": lambda x: np_like.sum(x ** 3 + 3.0 * x ** 2 + x),
        "mlp": lambda W, x, b: np_like.sum(np_like.tanh(m(W, x) + b)),
        "matvec": lambda A, x: m(A, x),
    })
