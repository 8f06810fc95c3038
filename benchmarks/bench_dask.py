"""Throughput of a gradient on the Dask backend vs the block size (issue 15, item 3).

The gradient: the example's (docs/examples/dask_gradient.py) mean logistic loss w.r.t. the
weights, optimised, over ``X`` (N x d float64, in memory so that the NumPy backend runs on
the same data).  For each block size (rows per block) it is timed

* with Dask's threaded scheduler (``X`` a ``da.from_array`` view of the NumPy array), and
* on a local ``distributed`` cluster of 2 single-threaded workers (``X`` cut into blocks and
  persisted on the workers first: the time is the computation and its scheduling, not the
  transfer of the data),

and the NumPy backend at the same size is the reference.  Throughput is bytes of ``X`` per
second.  Median of ``--repeats`` runs after one warm-up; one run, side by side.

    python benchmarks/bench_dask.py                    # N = 2^20 rows x 16 (128 MiB)
    python benchmarks/bench_dask.py --rows 4194304      # larger
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

import eqsat_ad as ea  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _example():
    """docs/examples/dask_gradient.py as a module (its loss and data are the benchmark's)."""
    spec = importlib.util.spec_from_file_location("dask_gradient", ROOT / "docs" / "examples" / "dask_gradient.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1 << 20)
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--blocks", type=int, nargs="*", default=[1 << 13, 1 << 15, 1 << 17, 1 << 19])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "dask"))
    args = ap.parse_args(argv)

    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster, wait

    ex = _example()
    N, d = args.rows, args.cols
    prog = ex.gradients(N, d)["w"]
    X, y = ex.data(N, d, min(N, 1 << 17), seed=0)
    Xn, yn = X.compute(scheduler="threads"), y.compute(scheduler="threads")
    w = np.linspace(0.5, -0.5, d)
    nbytes = Xn.nbytes
    numpy_fn = ea.compile(prog)
    want = numpy_fn(Xn, yn, w)
    rows: list[dict] = [{"scheduler": "NumPy backend", "block_rows": N, "blocks": 1,
                         "seconds": median_time(lambda: numpy_fn(Xn, yn, w), args.repeats)}]
    fn = ea.compile(prog, backend="dask")
    for b in args.blocks:
        Xd, yd = da.from_array(Xn, chunks=(b, d)), da.from_array(yn, chunks=b)
        np.testing.assert_allclose(fn(Xd, yd, w).compute(scheduler="threads"), want, rtol=1e-9, atol=1e-12)
        with dask.config.set(scheduler="threads"):
            rows.append({"scheduler": "threads (2)", "block_rows": b, "blocks": -(-N // b),
                         "seconds": median_time(lambda Xd=Xd, yd=yd: fn(Xd, yd, w).compute(), args.repeats)})
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        for b in args.blocks:
            with warnings.catch_warnings():     # the data goes to the workers once, in the graph
                warnings.simplefilter("ignore", UserWarning)
                Xd, yd = client.persist(da.from_array(Xn, chunks=(b, d))), client.persist(da.from_array(yn, chunks=b))
                wait([Xd, yd])
            np.testing.assert_allclose(fn(Xd, yd, w).compute(), want, rtol=1e-9, atol=1e-12)
            rows.append({"scheduler": "distributed (2 workers)", "block_rows": b, "blocks": -(-N // b),
                         "seconds": median_time(lambda Xd=Xd, yd=yd: fn(Xd, yd, w).compute(), args.repeats)})
            del Xd, yd
    for r in rows:
        r["GB_per_s"] = nbytes / r["seconds"] / 1e9
        r["Melem_per_s"] = Xn.size / r["seconds"] / 1e6
    out = {"rows": N, "cols": d, "x_bytes": nbytes, "repeats": args.repeats, "results": rows,
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "versions": {"dask": dask.__version__, "numpy": np.__version__}}
    Path(args.out + ".json").write_text(json.dumps(out, indent=2) + "\n")
    lines = ["# Dask backend: gradient throughput vs block size\n",
             f"Gradient of the mean logistic loss w.r.t. the weights (docs/examples/dask_gradient.py), "
             f"optimised; X is {N:,} x {d} float64 ({nbytes / 2**20:.0f} MiB) in memory; "
             f"{out['machine']}; dask {dask.__version__}; median of {args.repeats} after a warm-up; "
             f"`python benchmarks/bench_dask.py`.  The machine was shared with other jobs: compare rows "
             f"of one run, not runs.\n",
             "| scheduler | rows per block | blocks | seconds | GB/s of X | M elements/s | vs NumPy backend |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    base = rows[0]["seconds"]
    for r in rows:
        lines.append(f"| {r['scheduler']} | {r['block_rows']:,} | {r['blocks']} | {r['seconds']:.3f} | "
                     f"{r['GB_per_s']:.2f} | {r['Melem_per_s']:.0f} | {r['seconds'] / base:.2f}x |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
