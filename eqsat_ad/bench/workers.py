"""Worker processes of the benchmark: start, talk to (with a timeout), restart, stop.

Each framework runs in its own process with every thread pool set to 1
(:data:`~eqsat_ad.bench.specs.THREAD_ENV`), so NumPy, XLA and PyTorch never compete for the
two cores inside one process.  A worker that crashes or overruns its time is killed (its own
process group, started here) and restarted for the next request; the row records why.
"""
from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .specs import THREAD_ENV

#: the directory holding the ``eqsat_ad`` package: the source checkout, or site-packages when
#: installed (the workers run with it first on ``PYTHONPATH``)
REPO = Path(__file__).resolve().parents[2]
#: the peer workers (JAX, PyTorch) ship inside the package
PEER_DIR = Path(__file__).resolve().parent / "peers"


def in_checkout() -> bool:
    """Whether this package runs from a source checkout (``benchmarks/`` and ``docs/`` beside
    it), not from an installed wheel."""
    return (REPO / "pyproject.toml").is_file() and (REPO / "benchmarks").is_dir()


def worker_env(cpus: str | None = None) -> dict:
    env = dict(os.environ)
    env.update(THREAD_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Worker:
    """One worker process speaking :mod:`eqsat_ad.bench.protocol`."""

    def __init__(self, name: str, argv: list[str], cwd: str | Path | None = None,
                 cpus: list[int] | None = None, start_timeout: float = 180.0):
        self.name, self.argv, self.cwd, self.cpus = name, argv, cwd, cpus
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._log = tempfile.TemporaryFile(mode="w+b")
        self.versions: dict = {}

    # -- process management -------------------------------------------------------------
    def start(self) -> dict:
        cpus = self.cpus

        def pre():  # pragma: no cover - runs in the child
            os.setsid()
            if cpus:
                os.sched_setaffinity(0, cpus)

        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, cwd=self.cwd, env=worker_env(),
                                     preexec_fn=pre)
        rep = self.request({"op": "versions"}, timeout=self.start_timeout, restart=False)
        if rep.get("ok"):
            self.versions = rep["versions"]
        return rep

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.proc = None

    def close(self) -> None:
        if self.alive():
            try:
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def stderr_tail(self, chars: int = 600) -> str:
        try:
            self._log.seek(0, 2)
            size = self._log.tell()
            self._log.seek(max(0, size - chars))
            return self._log.read().decode(errors="replace").strip()
        except OSError:
            return ""

    # -- requests -----------------------------------------------------------------------
    def request(self, req: dict, timeout: float = 300.0, restart: bool = True) -> dict:
        """Send one request and wait up to ``timeout`` seconds for the answer.  A crash or a
        timeout kills the worker (restarted for the next request) and returns
        ``{"ok": False, "kind": "crash"|"timeout", ...}``."""
        if not self.alive():
            if not restart:
                return {"ok": False, "kind": "crash", "error": "worker is not running"}
            self.restarts += 1
            rep = self.start()
            if not rep.get("ok"):
                return rep
        t0 = time.perf_counter()
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            return self._crashed(f"cannot write to worker: {exc}")
        fd = self.proc.stdout
        buf = b""
        while True:
            left = timeout - (time.perf_counter() - t0)
            if left <= 0:
                self.kill()
                return {"ok": False, "kind": "timeout",
                        "error": f"no answer within {timeout:.0f} s (worker killed)"}
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if r:
                chunk = os.read(fd.fileno(), 1 << 20)
                if not chunk:
                    return self._crashed("worker exited")
                buf += chunk
                if buf.endswith(b"\n"):
                    try:
                        return json.loads(buf.decode())
                    except ValueError:
                        continue
            elif self.proc.poll() is not None:
                return self._crashed("worker exited")

    def _crashed(self, what: str) -> dict:
        code = self.proc.poll() if self.proc else None
        if code is not None and code < 0:
            try:
                what += f" (signal {signal.Signals(-code).name}"
            except ValueError:
                what += f" (signal {-code}"
            what += ", likely out of memory)" if -code == signal.SIGKILL else ")"
        elif code is not None:
            what += f" (exit code {code})"
        tail = self.stderr_tail()
        self.kill()
        return {"ok": False, "kind": "crash", "error": what + (f": {tail[-300:]}" if tail else "")}


def our_worker(cpus=None) -> Worker:
    return Worker("eqsat-ad", [sys.executable, "-m", "eqsat_ad.bench.worker"], cwd=REPO, cpus=cpus)


PEERS = {"jax": ("jax", "jax_worker.py"), "torch": ("torch", "torch_worker.py")}


def peer_worker(name: str, cpus=None) -> tuple[Worker | None, str]:
    """Start the peer worker ``name`` ('jax' or 'torch'), or say why it is not available."""
    module, script = PEERS[name]
    if importlib.util.find_spec(module) is None:
        return None, "not installed"
    path = PEER_DIR / script
    if not path.exists():
        return None, f"worker script {path} not found (a broken install?)"
    w = Worker(name, [sys.executable, str(path)], cwd=PEER_DIR, cpus=cpus)
    rep = w.start()
    if not rep.get("ok"):
        w.kill()
        return None, f"failed to start: {rep.get('error')}"
    return w, "ok"
