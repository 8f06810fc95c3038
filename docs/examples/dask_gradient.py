"""Gradients over data larger than the workers' memory: eqsat-ad's Dask backend on a
``distributed`` cluster (docs/backend-dask.md).

The loss is the mean logistic loss of a linear model, written in eqsat-ad's language;
``ea.grad`` differentiates it, ``ea.optimize`` makes the gradient O(N), and
``ea.compile(..., backend="dask")`` runs the optimised code on dask arrays.  The data ``X``
(N x d) and the labels ``y`` are generated chunk by chunk on the workers, so they never
exist whole anywhere: at the default size they are 4x the memory the workers may use.

* the gradient with respect to the weights ``w`` (d numbers: a reduction over all the
  rows, computed in one pass, block by block);
* the gradient with respect to the data ``X`` (N x d numbers, as large as the data: a
  saliency map) is streamed to disk, one ``.npy`` file per block (``da.to_npy_stack``).

Both are checked against the NumPy backend on a size both can run (the same generated data,
brought into memory).

Run it::

    python docs/examples/dask_gradient.py --small          # seconds: what the tests run
    python docs/examples/dask_gradient.py                  # 4 GiB of data, 2 workers x 512 MiB
    python docs/examples/dask_gradient.py --scheduler tcp://10.0.0.5:8786 --rows 500_000_000 \\
        --out /shared/grad_X                               # a real cluster (a shared directory)

It prints what it measured (data size, memory limit, wall time, the workers' peak memory)
and, with ``--json PATH``, writes it there.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import eqsat_ad as ea

LOSS = """
(fun ((X (mat N d)) (y (vec N)) (w (vec d)))
  (/ (sum N (lambda (i)
       (let ((z (sum d (lambda (j) (* (get (get X i) j) (get w j))))))
         (- (log1p (exp z)) (* (get y i) z)))))
     (real N)))
"""


def gradients(rows_hint: int, cols: int) -> dict:
    """The optimised gradient programs of the loss w.r.t. ``w`` and ``X``."""
    f = ea.parse(LOSS)
    sizes = {"N": rows_hint, "d": cols}
    return {wrt: ea.optimize(ea.grad(f, wrt), sizes=sizes).program for wrt in ("w", "X")}


def data(rows: int, cols: int, chunk_rows: int, seed: int = 0):
    """``X`` (rows x cols, standard normal) and labels ``y`` of a noisy linear model, as lazy
    dask arrays: each block is generated where it is needed."""
    import dask.array as da
    rng = da.random.default_rng(seed)
    X = rng.standard_normal((rows, cols), chunks=(chunk_rows, cols))
    noise = rng.standard_normal(rows, chunks=chunk_rows)
    y = ((X @ np.linspace(-1.0, 1.0, cols) + noise) > 0).astype(np.float64)
    return X, y


class PeakMemory:
    """The largest memory any worker reported (sampled every 0.2 s while running)."""

    def __init__(self, client):
        self.client, self.peak, self._stop = client, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                for w in self.client.scheduler_info()["workers"].values():
                    self.peak = max(self.peak, int(w["metrics"]["memory"]))
            except Exception:   # noqa: BLE001 - a sample missed while the cluster is busy
                pass
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def check_against_numpy(progs: dict, rows: int, cols: int, chunk_rows: int, out: Path) -> float:
    """The largest relative difference between the Dask and NumPy backends' gradients on
    data both can hold (the same generated data, computed into memory)."""
    import dask.array as da
    X, y = data(rows, cols, chunk_rows, seed=1)
    w = np.linspace(0.5, -0.5, cols)
    Xn, yn = X.compute(), y.compute()
    worst = 0.0
    for wrt, prog in progs.items():
        lazy = ea.compile(prog, backend="dask")(X, y, w)
        if wrt == "X":          # through the disk, as the large run does
            da.to_npy_stack(str(out), lazy, axis=0)
            got = da.from_npy_stack(str(out)).compute()
            shutil.rmtree(out)
        else:
            got = lazy.compute()
        want = ea.compile(prog)(Xn, yn, w)
        worst = max(worst, float(np.max(np.abs(got - want)) / np.max(np.abs(want))))
    return worst


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="a few seconds (what the tests run)")
    ap.add_argument("--scheduler", help="address of a running distributed scheduler (default: a local cluster)")
    ap.add_argument("--workers", type=int, default=2, help="local cluster: worker processes")
    ap.add_argument("--memory-limit", default="512MiB", help="local cluster: memory limit per worker")
    ap.add_argument("--rows", type=int, help="N (default: data 4x the workers' total memory limit)")
    ap.add_argument("--cols", type=int, default=16, help="d")
    ap.add_argument("--chunk-rows", type=int, help="rows per block (default: 32 MiB blocks of X)")
    ap.add_argument("--check-rows", type=int, default=200_000, help="rows of the check against NumPy")
    ap.add_argument("--out", help="directory for the X-gradient (default: a temporary one; on a real "
                                  "cluster, one every worker can write to)")
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args(argv)

    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    from dask.utils import format_bytes, parse_bytes

    if args.small:
        args.memory_limit, args.check_rows = "256MiB", 20_000
    cols = args.cols
    chunk_rows = args.chunk_rows or (20_000 if args.small else (32 << 20) // (8 * cols))
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
        limits = [w["memory_limit"] for w in client.scheduler_info()["workers"].values()]
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit,
                               dashboard_address=None)
        client = Client(cluster)
        limits = [parse_bytes(args.memory_limit)] * args.workers
    total_limit = sum(limits)
    rows = args.rows or (200_000 if args.small else 4 * total_limit // (8 * cols))
    tmp = Path(tempfile.mkdtemp(prefix="eqsat_dask_"))
    out = Path(args.out) if args.out else tmp / "grad_X"
    report: dict = {"rows": rows, "cols": cols, "chunk_rows": chunk_rows, "workers": len(limits),
                    "memory_limit_total": total_limit, "data_bytes": rows * cols * 8}
    try:
        with dask.config.set({"array.chunk-size": f"{chunk_rows * cols * 8}B"}):
            t0 = time.perf_counter()
            progs = gradients(rows, cols)
            report["optimize_s"] = time.perf_counter() - t0
            check_rows = min(args.check_rows, rows)
            report["check_max_rel_diff"] = check_against_numpy(
                progs, check_rows, cols, max(1, min(chunk_rows, check_rows // 4)), tmp / "check")
            X, y = data(rows, cols, chunk_rows)
            w = np.linspace(0.5, -0.5, cols)
            grad_w = ea.compile(progs["w"], backend="dask")
            grad_X = ea.compile(progs["X"], backend="dask")
            with PeakMemory(client) as mem:
                t0 = time.perf_counter()
                gw = grad_w(X, y, w).compute()
                report["grad_w_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                da.to_npy_stack(str(out), grad_X(X, y, w), axis=0)
                report["grad_X_s"] = time.perf_counter() - t0
            report["peak_worker_memory"] = mem.peak
            first = np.load(out / "0.npy")
            report["grad_X_blocks"] = len(list(out.glob("*.npy")))
            report["grad_w_norm"] = float(np.linalg.norm(gw))
            assert np.all(np.isfinite(gw)) and np.all(np.isfinite(first)) and first.shape == (chunk_rows, cols)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    gb = report["data_bytes"]
    print(f"data X: {rows:,} x {cols} float64 = {format_bytes(gb)} "
          f"({gb / total_limit:.1f}x the workers' total memory limit {format_bytes(total_limit)}, "
          f"{len(limits)} workers)")
    print(f"gradient w.r.t. w ({cols} numbers): {report['grad_w_s']:.1f} s "
          f"({gb / report['grad_w_s'] / 1e9:.2f} GB/s of X)")
    print(f"gradient w.r.t. X ({format_bytes(gb)}) streamed to {report['grad_X_blocks']} .npy files: "
          f"{report['grad_X_s']:.1f} s")
    print(f"peak worker memory: {format_bytes(report['peak_worker_memory'])} "
          f"(limit {format_bytes(max(limits))} per worker)")
    print(f"Dask vs NumPy backend on {min(args.check_rows, rows):,} rows: max relative difference "
          f"{report['check_max_rel_diff']:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
