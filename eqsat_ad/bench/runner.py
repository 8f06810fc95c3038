"""The benchmark coordinator: sweep, suite and extraction comparison.

For every program and size the coordinator asks each worker process in turn (ours first,
then the peers) to time its methods, so that all columns of a row are measured side by
side, minutes apart at most; the hand-written NumPy gradient is timed before and after the
other methods of its row and its repeats pooled.  Methods whose time grows as ``n**e`` are
skipped once the extrapolation from the previous size passes the time limit ("T/O (est
...)"); forward-mode Jacobians whose ``n x n`` tangents would not fit the memory limit are
skipped as "OOM (est ...)".
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..extract import DEFAULT_EXTRACTOR
from . import specs
from .workers import REPO, Worker, our_worker, peer_worker

OURS = ("numpy", "opt", "unopt")
PEER_METHODS = {
    "jax": ("jax.grad+jit", "jax.grad", "jax.jacfwd+jit", "jax.jacfwd"),
    "torch": ("torch.func.grad", "torch.func.jacfwd"),
}
FORWARD_JACOBIAN = ("jax.jacfwd", "jax.jacfwd+jit", "torch.func.jacfwd")
SCHEDULES = ("default", "all", "user")
EXTRACTORS = ("tree", "dag", "ilp")


@dataclass
class Config:
    quick: bool = False
    repeats: int = 7
    target: float = 0.1             # seconds per repeat (autorange)
    budget: float = 20.0            # seconds per cell (fewer repeats for slow calls)
    timeout: float = 10.0           # a call over this is T/O (measured or extrapolated)
    mem_limit: float = 4e9          # bytes; forward Jacobians over this are OOM (est)
    opt_seconds: float = 20.0       # time limit of one optimisation
    opt_nodes: int | None = None    # e-node limit of one optimisation (None: the library's)
    sticky_seconds: float = 5.0     # an optimisation slower than this is reused for larger n
    opt_per_size: bool = True       # optimise at every n (else once, at the largest n)
    groups: tuple[str, ...] = ("micro", "suite", "extraction")
    programs: tuple[str, ...] | None = None
    peers: tuple[str, ...] = ("jax", "torch")
    sizes: tuple[int, ...] | None = None
    cmp_n: int = 10_000             # size of the extraction comparison (matvec-jac: cmp_n_mat)
    cmp_n_mat: int = 1_000
    cpus: list[int] | None = None
    log: object = None              # callable(str) for progress lines

    @classmethod
    def quick_config(cls, **kw) -> "Config":
        base = dict(quick=True, repeats=3, target=0.01, budget=3.0, timeout=2.0, opt_seconds=5.0,
                    opt_nodes=5_000,
                    opt_per_size=False, cmp_n=1_000, cmp_n_mat=100)
        base.update(kw)
        return cls(**base)


@dataclass
class Bench:
    cfg: Config
    ours: Worker | None = None
    peers: dict = field(default_factory=dict)
    peer_status: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def say(self, msg: str) -> None:
        if self.cfg.log:
            self.cfg.log(msg)

    # -- workers -------------------------------------------------------------------------
    def start(self) -> None:
        self.ours = our_worker(self.cfg.cpus)
        rep = self.ours.start()
        if not rep.get("ok"):
            raise RuntimeError(f"cannot start the eqsat-ad benchmark worker: {rep.get('error')}")
        for name in ("jax", "torch"):
            if name not in self.cfg.peers:
                self.peer_status[name] = "disabled (--no-peers)"
                continue
            t0 = time.perf_counter()
            w, why = peer_worker(name, self.cfg.cpus)
            self.peer_status[name] = why
            if w is not None:
                self.peers[name] = w
                self.say(f"peer {name}: started in {time.perf_counter() - t0:.1f} s {w.versions}")
            else:
                self.say(f"peer {name}: {why}")

    def stop(self) -> None:
        for w in [self.ours, *self.peers.values()]:
            if w is not None:
                w.close()

    def methods(self) -> list[tuple[str, Worker]]:
        out = [(m, self.ours) for m in OURS]
        for name, w in self.peers.items():
            out += [(m, w) for m in PEER_METHODS[name]]
        return out

    # -- one cell ------------------------------------------------------------------------
    def _time(self, w: Worker, req: dict, est: float | None = None) -> dict:
        cfg = self.cfg
        req = dict(req, op="time", repeats=cfg.repeats, target=cfg.target, budget=cfg.budget)
        limit = 120.0 + 2 * cfg.budget + 4 * max(cfg.timeout, est or 0.0)
        rep = w.request(req, timeout=limit)
        if not rep.get("ok"):
            err = rep.get("error", "?")
            kind = rep.get("kind")
            if kind is None and ("ResourceLimitError" in err or "MemoryError" in err):
                kind = "oom"
            cell = {"status": {"oom": "OOM", "timeout": "T/O", "crash": "crash"}.get(kind, "error"),
                    "note": err[:400]}
            self.failures.append({**{k: req[k] for k in ("group", "program", "n", "method")},
                                  "status": cell["status"], "error": err[:400]})
            return cell
        cell = {"status": "ok", **{k: rep[k] for k in ("median", "times", "number", "repeats",
                                                          "first", "setup", "error") if k in rep}}
        if rep.get("error") is not None and rep["error"] > 1e-6:
            cell["status"] = "wrong"
            cell["note"] = f"max relative error {rep['error']:.3g} against the closed-form gradient"
            self.failures.append({"group": req["group"], "program": req["program"], "n": req["n"],
                                  "method": req["method"], "status": "wrong", "error": cell["note"]})
        return cell

    # -- the sweep -----------------------------------------------------------------------
    def exponent(self, spec: specs.Spec, method: str) -> int:
        if method == "unopt" or method in FORWARD_JACOBIAN:
            return spec.naive_exponent
        if spec.kind == "jacobian":
            return spec.naive_exponent if method not in ("numpy", "opt") else 2
        return 1

    def sweep(self, group_specs: list[specs.Spec]) -> list[dict]:
        cfg = self.cfg
        rows = []
        for spec in group_specs:
            sizes = cfg.sizes or (spec.quick_sizes if cfg.quick else spec.bench_sizes)
            if spec.group == "cross":
                sizes = (3,)
            last: dict[str, tuple[int, float]] = {}
            stopped: dict[str, str] = {}
            sticky = None
            for n in sizes:
                opt_n = sticky or (n if cfg.opt_per_size else sizes[-1])
                self.say(f"{spec.group}/{spec.name} n={n}: optimising (n={opt_n})")
                info = self.ours.request(self._opt_req(spec, opt_n), timeout=self._opt_timeout())
                if cfg.opt_per_size and sticky is None and (info.get("seconds_total") or 0) > cfg.sticky_seconds:
                    sticky = opt_n      # too slow to repeat at every size: reuse this program
                row = {"group": spec.group, "program": spec.name, "n": n, "dims": spec.dims(n),
                       "opt_n": opt_n, "opt": info, "cells": {}}
                base = {"group": spec.group, "program": spec.name, "n": n}
                first_np = self._time(self.ours, dict(base, method="numpy"))
                for method, w in self.methods():
                    if method == "numpy":
                        continue
                    if method == "opt" and not info.get("ok"):
                        row["cells"][method] = {"status": "error",
                                                "note": "optimisation failed: " + str(info.get("error"))[:300]}
                        continue
                    e = self.exponent(spec, method)
                    est = None
                    if method in last:
                        n0, t0 = last[method]
                        est = t0 * (n / n0) ** e
                    if method in FORWARD_JACOBIAN:
                        need = 32.0 * spec.dims(n) ** 2
                        if need > cfg.mem_limit:
                            row["cells"][method] = {"status": "OOM", "est_bytes": need,
                                                    "note": f"OOM (est {_gb(need)})"}
                            continue
                    if method in stopped or (est is not None and est > cfg.timeout):
                        row["cells"][method] = {"status": "T/O", "est_seconds": est,
                                                "note": f"T/O (est {_secs(est)})" if est else
                                                f"T/O ({stopped.get(method)})"}
                        continue
                    req = dict(base, method=method, opt_n=opt_n, opt_seconds=cfg.opt_seconds,
                               opt_nodes=cfg.opt_nodes)
                    cell = self._time(w, req, est)
                    row["cells"][method] = cell
                    if cell["status"] in ("ok", "wrong"):
                        last[method] = (n, cell["median"])
                        if cell["median"] > cfg.timeout:
                            stopped[method] = f"{_secs(cell['median'])} at n={n}"
                    elif cell["status"] in ("T/O", "crash", "OOM"):
                        stopped[method] = f"{cell['status']} at n={n}"
                    self.say(f"  {method:18s} {_cell_text(cell)}")
                second_np = self._time(self.ours, dict(base, method="numpy"))
                row["cells"]["numpy"] = _pool(first_np, second_np)
                self.say(f"  {'numpy':18s} {_cell_text(row['cells']['numpy'])}")
                rows.append(row)
        return rows

    def _opt_req(self, spec, n, schedule="default", extractor=DEFAULT_EXTRACTOR) -> dict:
        return {"op": "optimize", "group": spec.group, "program": spec.name, "n": n, "schedule": schedule,
                "extractor": extractor, "opt_seconds": self.cfg.opt_seconds, "opt_nodes": self.cfg.opt_nodes}

    def _opt_timeout(self) -> float:
        # egglog cannot stop inside an iteration: a run overshoots its time limit by up to one
        # (possibly long) iteration
        return self.cfg.opt_seconds * 10 + 180

    # -- extraction comparison -----------------------------------------------------------
    def extraction(self, suite: list[specs.Spec]) -> list[dict]:
        cfg = self.cfg
        rows = []
        for spec in suite:
            n = cfg.cmp_n_mat if spec.kind == "jacobian" else cfg.cmp_n
            base = {"group": spec.group, "program": spec.name, "n": n}
            for sched in SCHEDULES:
                for ex in EXTRACTORS:
                    self.say(f"extraction {spec.name} n={n} schedule={sched} extractor={ex}")
                    info = self.ours.request(self._opt_req(spec, n, sched, ex), timeout=self._opt_timeout())
                    row = {"program": spec.name, "n": n, "schedule": sched, "extractor": ex, "opt": info}
                    if info.get("ok"):
                        # the NumPy baseline right before and after, pooled (side by side)
                        np1 = self._time(self.ours, dict(base, method="numpy"))
                        row["cell"] = self._time(self.ours, dict(base, method="opt", opt_n=n, schedule=sched,
                                                                 extractor=ex, opt_seconds=cfg.opt_seconds,
                                                                 opt_nodes=cfg.opt_nodes))
                        row["numpy"] = _pool(np1, self._time(self.ours, dict(base, method="numpy")))
                    else:
                        row["cell"] = {"status": "error", "note": str(info.get("error"))[:400]}
                        self.failures.append({"group": "extraction", "program": spec.name, "n": n,
                                              "method": f"opt[{sched},{ex}]", "status": "error",
                                              "error": str(info.get("error"))[:400]})
                    self.say(f"  -> {_cell_text(row['cell'])}")
                    rows.append(row)
        return rows


def _pool(a: dict, b: dict) -> dict:
    if a.get("status") != "ok" or b.get("status") != "ok":
        return a if a.get("status") == "ok" else b
    import statistics
    times = a["times"] + b["times"]
    return {**a, "times": times, "median": statistics.median(times), "repeats": len(times),
            "error": max(a.get("error") or 0.0, b.get("error") or 0.0)}


def _gb(b: float) -> str:
    return f"{b / 1e9:.3g} GB"


def _secs(s: float | None) -> str:
    if s is None:
        return "?"
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    return f"{s:.3g} s"


def _cell_text(c: dict) -> str:
    if c.get("status") == "ok":
        return f"{c['median'] * 1e6:12.2f} us  (x{c.get('number')}, {c.get('repeats')} reps)"
    return f"{c.get('status')}: {c.get('note', '')[:120]}"


# -- machine --------------------------------------------------------------------------------
def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        affinity = None
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu,
            "cores": os.cpu_count(), "affinity": affinity, "memory_bytes": mem,
            "python": platform.python_version(),
            "load": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def run(cfg: Config) -> dict:
    """Run the benchmark and return the results (a JSON-able dict)."""
    t_start = time.perf_counter()
    started = _dt.datetime.now().astimezone()
    b = Bench(cfg)
    b.start()
    try:
        def keep(s):
            return cfg.programs is None or s.name in cfg.programs
        micro = [s for s in specs.MICRO if keep(s)]
        suite = [s for s in specs.SUITE if keep(s)]
        out: dict = {"micro": [], "suite": [], "extraction": []}
        if "micro" in cfg.groups:
            out["micro"] = b.sweep(micro)
        if "suite" in cfg.groups:
            out["suite"] = b.sweep(suite)
        if "extraction" in cfg.groups:
            out["extraction"] = b.extraction(suite)
        versions = dict(b.ours.versions)
        for name, w in b.peers.items():
            versions.update(w.versions)
        machine = machine_info()
        meta = {
            "date": started.isoformat(timespec="seconds"),
            "quick": cfg.quick, "machine": machine, "versions": versions,
            "peers": b.peer_status, "thread_env": specs.THREAD_ENV,
            "protocol": {"repeats": cfg.repeats, "target_seconds_per_repeat": cfg.target,
                         "budget_seconds_per_cell": cfg.budget, "timeout_seconds": cfg.timeout,
                         "mem_limit_bytes": cfg.mem_limit, "opt_time_limit_seconds": cfg.opt_seconds,
                         "opt_node_limit": cfg.opt_nodes, "sticky_seconds": cfg.sticky_seconds,
                         "opt_per_size": cfg.opt_per_size, "cpus": cfg.cpus,
                         "extraction_sizes": {"vector": cfg.cmp_n, "matvec-jac": cfg.cmp_n_mat}},
            "worker_restarts": {w.name: w.restarts for w in [b.ours, *b.peers.values()]},
            "wall_seconds": None,
        }
        out = {"meta": meta, **out, "failures": b.failures}
    finally:
        b.stop()
    out["meta"]["wall_seconds"] = time.perf_counter() - t_start
    return out


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


__all__ = ["Config", "run", "write_json", "machine_info", "REPO"]
