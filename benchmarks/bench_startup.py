"""Start-up time: ``import eqsat_ad``, ``eqsat-ad --version`` and the first uses, each in a
fresh process, median of 5 (after one untimed warm-up run, so the files are in the page cache).

    python benchmarks/bench_startup.py                 # writes benchmarks/results/startup.{json,md}
    python benchmarks/bench_startup.py --src OLD_TREE  # time another checkout's package instead
    python benchmarks/bench_startup.py --before OLD    # both, side by side (OLD: a folder holding
                                                       # an older eqsat_ad, e.g. from git archive)

The target (issue 14): ``import eqsat_ad`` <= 0.5 s, ``eqsat-ad --version`` well under a second.
The import loads neither egglog nor scipy nor matplotlib; ``ea.optimize`` loads egglog.
Issue 15: a compiled Numba kernel loaded from the disk cache in a fresh process (the first one
includes ``import numba`` and Numba's one-time start-up; the difference of the 1- and
5-kernel lines is the time of 4 more).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

CASES = {
    "python -c pass (the interpreter alone)": "pass",
    "import eqsat_ad": "import eqsat_ad",
    "eqsat-ad --version": "import sys; sys.argv = ['eqsat-ad', '--version']\n"
                          "from eqsat_ad.cli import main\n"
                          "try:\n    main()\nexcept SystemExit:\n    pass",
    "import eqsat_ad; ea.parse + ea.grad": "import eqsat_ad as ea\n"
                                           "ea.grad(ea.parse('(fun ((x (vec n))) (sum n (lambda (i) "
                                           "(* (get x i) (get x i)))))'), 'x')",
    "import eqsat_ad; touch ea.optimize (loads egglog)": "import eqsat_ad as ea\nea.optimize",
    # the Numba backend (issue 15): kernels from the disk cache (the warm-up run fills it)
    "import numba": "import numba",
    "numba backend: import eqsat_ad, 1 kernel from the disk cache": (
        "import eqsat_ad as ea\nfrom eqsat_ad.backend import numba_backend as nb\n"
        "nb.compile(ea.parse('(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))'))"),
    "numba backend: import eqsat_ad, 5 kernels from the disk cache": (
        "import eqsat_ad as ea\nfrom eqsat_ad.backend import numba_backend as nb\n"
        "for op in ('exp', 'log', 'tanh', 'sin', 'sqrt'):\n"
        "    nb.compile(ea.parse(f'(fun ((x (vec n))) (sum n (lambda (i) ({op} (get x i)))))'))"),
}


#: the console script itself (a separate process start, as a user types it)
SCRIPT = Path(sys.executable).with_name("eqsat-ad")


def _once(code, env: dict) -> float:
    argv = code if isinstance(code, list) else [sys.executable, "-c", code]
    t = time.perf_counter()
    # run outside the checkout, so that only the installed (or --src) package is found
    subprocess.run(argv, check=True, env=env, cwd=tempfile.gettempdir(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def measure(repeats: int = 5, src: str | None = None) -> dict:
    env = dict(os.environ)
    env["EQSAT_AD_CACHE_DIR"] = tempfile.mkdtemp(prefix="eqsat-ad-startup-")   # (Numba kernels)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve())] + [p for p in [env.get("PYTHONPATH")] if p])
    rows = {}
    cases = dict(CASES)
    if SCRIPT.exists() and not src:
        cases["eqsat-ad --version (the console script)"] = [str(SCRIPT), "--version"]
    for name, code in cases.items():
        _once(code, env)                                  # warm the page cache
        times = [_once(code, env) for _ in range(repeats)]
        rows[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                      "runs": times}
    return {"repeats": repeats, "src": src or "this checkout", "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "cases": rows,
            "date": time.strftime("%Y-%m-%d"), "load": os.getloadavg()}


def markdown(res: dict, before: dict | None = None) -> str:
    out = [f"# Start-up time ({res['src']})", "",
           f"Each line: a fresh `python -c` process (Python {res['python']}, {res['machine']}), "
           f"median of {res['repeats']} after one warm-up run; measured {res['date']} with "
           "`python benchmarks/bench_startup.py`" + (f" --before {before['src']}" if before else "") + ", "
           f"load average {', '.join(f'{x:.1f}' for x in res.get('load', ()))}. "
           "The machine may be busy: compare lines of one table, not tables of different runs.", ""]
    if before:
        out += ["| what | before: median s | now: median s | now: min s | now: max s |",
                "|---|---:|---:|---:|---:|"]
    else:
        out += ["| what | median s | min s | max s |", "|---|---:|---:|---:|"]
    for name, r in res["cases"].items():
        old = (before or {}).get("cases", {}).get(name)
        first = (f"{old['median_s']:.3f} | " if old else "– | ") if before else ""
        out.append(f"| {name} | {first}{r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--src", help="a directory holding another eqsat_ad package to time instead")
    ap.add_argument("--before", help="a directory holding an older eqsat_ad package: timed too, "
                    "shown side by side")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/startup.json; "
                    "'-': print only)")
    a = ap.parse_args(argv)
    before = measure(a.repeats, a.before) if a.before else None
    res = measure(a.repeats, a.src)
    if before:
        res["before"] = before
    md = markdown(res, before)
    print(md)
    if a.out != "-":
        out = Path(a.out) if a.out else RESULTS / "startup.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1) + "\n")
        out.with_suffix(".md").write_text(md)
        print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
