"""Run GradBench's own eval processes against ``eqsat-ad gradbench`` and report their checks.

GradBench's intermediary (``gradbench run``, a Rust program) normally sits between an eval and
a tool; this script plays its part: it starts the eval (``python -m gradbench.evals.NAME.run``
in a GradBench checkout) and the tool, forwards every line both ways, and prints each
evaluation with the eval's verdict (its ``analysis`` message).  The evals check outputs
against GradBench's C++ reference tool ``tools/manual``, which must be built first:

    cd GRADBENCH/tools/manual && make bin/lse bin/llsq ... NATIVE=no
        (needs nlohmann/json.hpp on the include path, e.g. pip install nlohmann-json and
         CPLUS_INCLUDE_PATH=.../nlohmann_json/include:.../nlohmann_json/include/nlohmann)
    python tools/run_gradbench_evals.py --gradbench GRADBENCH --python PY lse -- -n 2500 --min-seconds 0

``PY`` is an interpreter with the evals' dependencies (numpy, scipy, pydantic,
dataclasses-json); the tool runs with this interpreter.  Exit status 1 when an evaluation
failed or was found invalid.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gradbench", required=True, type=Path, help="a GradBench checkout")
    ap.add_argument("--python", default=sys.executable, help="interpreter with the evals' dependencies")
    ap.add_argument("eval", help="eval name, e.g. lse")
    ap.add_argument("eval_args", nargs="*", help="arguments of the eval (after --), e.g. -n 2500")
    ap.add_argument("--tool-args", nargs="*", default=[], help="arguments of eqsat-ad gradbench")
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(a.gradbench / "python" / "gradbench"))
    ev = subprocess.Popen([a.python, "-m", f"gradbench.evals.{a.eval}.run", *a.eval_args], cwd=a.gradbench,
                          env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    tool = subprocess.Popen([sys.executable, "-m", "eqsat_ad.gradbench", *a.tool_args], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    what, valid, bad = {}, 0, 0
    for line in ev.stdout:
        msg = json.loads(line)
        tool.stdin.write(line)
        tool.stdin.flush()
        reply = tool.stdout.readline()
        if not reply:
            print("the tool stopped", file=sys.stderr)
            bad += 1
            break
        resp = json.loads(reply)
        if msg.get("kind") == "evaluate":
            what[msg["id"]] = f"{msg['function']} {msg.get('description', '')}".strip()
            runs = sorted(t["nanoseconds"] for t in resp.get("timings", []) if t["name"] == "evaluate")
            med = f"{runs[len(runs) // 2] / 1e9:.3g} s" if runs else "-"
            print(f"  {what[msg['id']]}: success={resp['success']} median {med} {resp.get('error', '')}", flush=True)
            bad += not resp["success"]
        elif msg.get("kind") == "analysis":
            valid += bool(msg["valid"])
            bad += not msg["valid"]
            if not msg["valid"]:
                print(f"  INVALID {what.get(msg['of'])}: {msg.get('error', '')}", flush=True)
        elif msg.get("kind") == "define" and not resp.get("success"):
            print(f"  define failed: {resp.get('error')}", flush=True)
            bad += 1
        ev.stdin.write(json.dumps(resp) + "\n")
        ev.stdin.flush()
    ev.stdin.close()
    tool.stdin.close()
    ev.wait()
    tool.wait()
    print(f"{a.eval}: {valid} valid, {bad} failed or invalid (eval exit {ev.returncode})")
    return 1 if bad or ev.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
