"""Tables, slopes, target checks and plots from benchmark results; ``docs/benchmarks.md``.

Everything here works from the JSON the runner writes, so the documentation can be
regenerated from a committed result file (:func:`render_docs`) without re-running anything.
"""
from __future__ import annotations

import math
from pathlib import Path

METHOD_ORDER = ("numpy", "opt", "unopt", "jax.grad+jit", "jax.grad", "jax.jacfwd+jit", "jax.jacfwd",
                "torch.func.grad", "torch.func.jacfwd")
LABELS = {"numpy": "NumPy (hand-written)", "opt": "eqsat-ad optimised", "unopt": "dual numbers, unoptimised",
          "jax.grad+jit": "jax.grad+jit", "jax.grad": "jax.grad", "jax.jacfwd+jit": "jax.jacfwd+jit",
          "jax.jacfwd": "jax.jacfwd", "torch.func.grad": "torch.func.grad",
          "torch.func.jacfwd": "torch.func.jacfwd"}
SHORT = {"numpy": "numpy", "opt": "**optimised**", "unopt": "unoptimised"}


# -- number formatting ----------------------------------------------------------------------
def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    if us >= 1e6:
        return f"{us / 1e6:.3g} s"
    if us >= 1e4:
        return f"{us / 1e3:,.0f} ms" if us >= 1e5 else f"{us / 1e3:.3g} ms"
    if us >= 100:
        return f"{us:,.0f}"
    return f"{us:.3g}"


def fmt_ratio(r: float) -> str:
    if r >= 1e4:
        return f"{r:.2g}".replace("e+0", "e").replace("e+", "e")
    if r >= 100:
        return f"{r:,.0f}"
    if r >= 10:
        return f"{r:.1f}"
    return f"{r:.2f}"


def fmt_n(n: int) -> str:
    if n >= 1000 and math.log10(n).is_integer():
        return f"10^{int(math.log10(n))}"
    return f"{n:,}"


def cell_text(c: dict | None, ratio_to: float | None = None) -> str:
    if c is None:
        return "—"
    st = c.get("status")
    if st in ("ok", "wrong"):
        v = c["median"]
        s = fmt_ratio(v / ratio_to) if ratio_to else fmt_us(v)
        return s + (" (wrong!)" if st == "wrong" else "")
    if st in ("T/O", "OOM"):
        note = c.get("note", st)
        if note.startswith(st):
            return note
        return st
    return st or "—"


def methods_present(rows: list[dict]) -> list[str]:
    seen = {m for r in rows for m in r["cells"]}
    return [m for m in METHOD_ORDER if m in seen]


def _ok(c):
    return c is not None and c.get("status") in ("ok", "wrong")


# -- tables ---------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["---"] * 2 + ["---:"] * (len(header) - 2)
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def time_table(rows: list[dict]) -> str:
    ms = methods_present(rows)
    header = ["program", "n"] + [SHORT.get(m, m) for m in ms] + ["optimise (s)", "e-nodes"]
    body = []
    for r in rows:
        o = r.get("opt") or {}
        opt_s = f"{o['seconds_total']:.2f}" if o.get("ok") else "failed"
        if o.get("ok") and o.get("stop_reason") not in ("saturated", "schedule completed"):
            opt_s += f" ({o['stop_reason']})"
        body.append([r["program"], fmt_n(r["n"])] + [cell_text(r["cells"].get(m)) for m in ms]
                    + [opt_s, str(o.get("enodes", "—"))])
    return _table(header, body)


def ratio_table(rows: list[dict]) -> str:
    ms = [m for m in methods_present(rows) if m != "numpy"]
    header = ["program", "n", "numpy (µs)"] + [SHORT.get(m, m) for m in ms]
    body = []
    for r in rows:
        base = r["cells"].get("numpy")
        b = base["median"] if _ok(base) else None
        body.append([r["program"], fmt_n(r["n"]), cell_text(base)]
                    + [cell_text(r["cells"].get(m), b) if b else cell_text(r["cells"].get(m))
                       for m in ms])
    return _table(header, body)


# -- slopes ---------------------------------------------------------------------------------
def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log t against log n."""
    pts = [(math.log(n), math.log(t)) for n, t in points if n > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def slopes(rows: list[dict], min_n: int = 1) -> dict:
    """{program: {method: (slope, [n...])}} over the measured sizes with n >= min_n."""
    out: dict = {}
    for r in rows:
        if r["n"] < min_n:
            continue
        for m, c in r["cells"].items():
            if _ok(c):
                out.setdefault(r["program"], {}).setdefault(m, []).append((r["n"], c["median"]))
    return {p: {m: (slope(v), [n for n, _ in v]) for m, v in d.items()} for p, d in out.items()}


def slope_table(rows: list[dict]) -> str:
    s_all = slopes(rows)
    s_big = slopes(rows, 1000)
    ms = [m for m in methods_present(rows)]
    header = ["program"] + [SHORT.get(m, m) for m in ms]
    body = []
    for p in dict.fromkeys(r["program"] for r in rows):
        line = [p]
        for m in ms:
            a = s_all.get(p, {}).get(m, (None, []))
            b = s_big.get(p, {}).get(m, (None, []))
            if a[0] is None:
                line.append("—")
                continue
            txt = f"{a[0]:.2f}"
            if b[0] is not None and len(b[1]) < len(a[1]):
                txt += f" / {b[0]:.2f}"
            txt += f" ({fmt_n(min(a[1]))}–{fmt_n(max(a[1]))})"
            line.append(txt)
        body.append(line)
    return _table(header, body, ["---"] + ["---:"] * len(ms))


# -- targets --------------------------------------------------------------------------------
def targets(rows: list[dict]) -> list[dict]:
    """Per program: the numbers behind the targets of the benchmark issue."""
    out = []
    progs = list(dict.fromkeys(r["program"] for r in rows))
    sl = slopes(rows)
    sl_big = slopes(rows, 1000)
    for p in progs:
        rs = [r for r in rows if r["program"] == p]
        t = {"program": p}

        def ratio(r, m, base="numpy"):
            a, b = r["cells"].get(m), r["cells"].get(base)
            return a["median"] / b["median"] if _ok(a) and _ok(b) else None

        small = [r for r in rs if r["n"] == min(x["n"] for x in rs)]
        t["n_small"] = small[0]["n"]
        t["opt_vs_numpy_small"] = ratio(small[0], "opt")
        t["big_from"] = 10_000 if max(r["n"] for r in rs) >= 10_000 else 1_000   # matvec-jac: n ≤ 2000
        big = [r for r in rs if r["n"] >= t["big_from"]]
        rb = [ratio(r, "opt") for r in big]
        t["opt_vs_numpy_big_max"] = max([x for x in rb if x is not None], default=None)
        t["opt_failed_big"] = [f"{(r['cells'].get('opt') or {}).get('status')} at n={fmt_n(r['n'])}"
                               for r in big if not _ok(r["cells"].get("opt"))]
        t["big_sizes"] = [r["n"] for r in big]
        for peer in ("jax.grad+jit", "torch.func.grad", "jax.jacfwd+jit", "torch.func.jacfwd"):
            vals = []
            for r in big:
                a, b = r["cells"].get(peer), r["cells"].get("opt")
                if _ok(a) and _ok(b):
                    vals.append(a["median"] / b["median"])
            t[f"speedup_vs_{peer}"] = min(vals) if vals else None
        t["slope_opt"] = sl.get(p, {}).get("opt", (None,))[0]
        t["slope_opt_big"] = sl_big.get(p, {}).get("opt", (None,))[0]
        t["slope_unopt"] = sl.get(p, {}).get("unopt", (None,))[0]
        t["slope_unopt_big"] = sl_big.get(p, {}).get("unopt", (None,))[0]
        t["slope_numpy_big"] = sl_big.get(p, {}).get("numpy", (None,))[0]
        sl_top = slopes(rows, 10_000)
        t["slope_opt_top"] = sl_top.get(p, {}).get("opt", (None,))[0]
        t["slope_numpy_top"] = sl_top.get(p, {}).get("numpy", (None,))[0]
        secs = [r["opt"]["seconds_total"] for r in rs if (r.get("opt") or {}).get("ok")]
        t["opt_seconds_max"] = max(secs) if secs else None
        t["opt_seconds_median"] = sorted(secs)[len(secs) // 2] if secs else None
        t["enodes"] = max([r["opt"].get("enodes") or 0 for r in rs if (r.get("opt") or {}).get("ok")],
                          default=None)
        out.append(t)
    return out


def _f(x, spec=".2f", none="—"):
    return none if x is None else format(x, spec)


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def target_table(rows: list[dict]) -> str:
    header = ["program", "opt / numpy at smallest n (≤ 3)", "max opt / numpy at n ≥ 10^4 (≤ 1.5)",
              "slope n ≥ 10^3: unopt → opt (numpy)", "slope n ≥ 10^4: opt (numpy)", "jax.grad+jit / opt (n ≥ 10^4, min)",
              "torch.func.grad / opt (n ≥ 10^4, min)", "jacfwd / opt (n ≥ 10^4, min)",
              "optimise s, max (< 1)"]
    body = []
    for t in targets(rows):
        a = t["opt_vs_numpy_small"]
        b = t["opt_vs_numpy_big_max"]
        jf = [x for x in (t.get("speedup_vs_jax.jacfwd+jit"), t.get("speedup_vs_torch.func.jacfwd"))
              if x is not None]
        body.append([
            t["program"],
            (_f(a) + f" (n={t['n_small']})" + _mark(a <= 3 if a is not None else None)) if a is not None else "—",
            (fmt_ratio(b) if b is not None else "—") + (f" (n ≥ {fmt_n(t['big_from'])})" if t["big_from"] != 10_000 else "")
            + ("; " + ", ".join(t["opt_failed_big"]) + " ✗" if t["opt_failed_big"] else
                     _mark(b <= 1.5 if b is not None else None)),
            f"{_f(t['slope_unopt_big'])} → {_f(t['slope_opt_big'])} ({_f(t['slope_numpy_big'])})",
            f"{_f(t['slope_opt_top'])} ({_f(t['slope_numpy_top'])})",
            _f(t.get("speedup_vs_jax.grad+jit"), ".3g") + _mark(
                t.get("speedup_vs_jax.grad+jit") > 1 if t.get("speedup_vs_jax.grad+jit") else None),
            _f(t.get("speedup_vs_torch.func.grad"), ".3g") + _mark(
                t.get("speedup_vs_torch.func.grad") > 1 if t.get("speedup_vs_torch.func.grad") else None),
            _f(min(jf), ".3g") if jf else "—",
            _f(t["opt_seconds_max"]) + _mark(t["opt_seconds_max"] < 1 if t["opt_seconds_max"] else None),
        ])
    return _table(header, body, ["---"] + ["---:"] * (len(header) - 1))


def opt_table(rows: list[dict]) -> str:
    header = ["program", "n (cost model)", "cost before", "cost after", "e-nodes", "iterations", "stop",
              "e-graph s", "extract s", "total s", "check"]
    body = []
    seen = set()
    for r in rows:
        o = r.get("opt") or {}
        key = (r["program"], r.get("opt_n"))
        if key in seen:
            continue
        seen.add(key)
        if not o.get("ok"):
            body.append([r["program"], fmt_n(r.get("opt_n", r["n"])), "—", "—", "—", "—", "failed", "—", "—", "—",
                         str(o.get("error", ""))[:80]])
            continue
        body.append([r["program"], fmt_n(r.get("opt_n", r["n"])), f"{o['cost_before']:.3g}",
                     f"{o['cost']:.3g}", str(o["enodes"]), str(o["iterations"]), o["stop_reason"],
                     _f(o.get("seconds_egraph")), _f(o.get("seconds_extract")), _f(o["seconds_total"]),
                     "ok" if o.get("interp_check") == "ok" else str(o.get("interp_check"))[:60]])
    return _table(header, body)


def extraction_table(rows: list[dict]) -> str:
    header = ["program", "n", "schedule", "extractor", "extracted", "cost", "e-nodes", "iterations", "stop",
              "optimise s (e-graph + extract)", "time per call", "/ numpy"]
    body = []
    variants = extraction_variants(rows)
    for r in rows:
        o = r.get("opt") or {}
        c = r.get("cell")
        base = r.get("numpy")
        if not o.get("ok"):
            body.append([r["program"], fmt_n(r["n"]), r["schedule"], r["extractor"], "—", "—", "—", "—", "failed",
                         "—", cell_text(c), str(o.get("error", ""))[:80]])
            continue
        ratio = cell_text(c, base["median"]) if _ok(c) and _ok(base) else cell_text(c)
        body.append([r["program"], fmt_n(r["n"]), r["schedule"], r["extractor"],
                     variants[r["program"]].get(o["program"], "?"), f"{o['cost']:.4g}",
                     str(o["enodes"]), str(o["iterations"]), o["stop_reason"],
                     f"{o['seconds_total']:.2f} ({_f(o.get('seconds_egraph'))} + {_f(o.get('seconds_extract'), '.3f')})",
                     cell_text(c) + (" µs" if _ok(c) and c["median"] < 1e-2 else ""), ratio])
    return _table(header, body, ["---"] * 5 + ["---:"] * 3 + ["---"] + ["---:"] * 3)


def extraction_variants(rows: list[dict]) -> dict:
    """{program: {extracted text: letter}}: which extractions produced the same program."""
    out: dict = {}
    for r in rows:
        o = r.get("opt") or {}
        if o.get("ok"):
            d = out.setdefault(r["program"], {})
            d.setdefault(o["program"], "ABCDEFGHIJ"[min(len(d), 9)])
    return out


def variants_section(rows: list[dict]) -> str:
    parts = []
    for prog, d in extraction_variants(rows).items():
        if len(d) < 2:
            continue
        for text, letter in d.items():
            parts.append(f"{prog} {letter}:\n\n```lisp\n{text}\n```")
    return "\n\n".join(parts) if parts else "Every extraction produced the same program."


def programs_section(rows: list[dict]) -> str:
    out = []
    seen = set()
    for r in reversed(rows):
        o = r.get("opt") or {}
        if r["program"] in seen or not o.get("ok"):
            continue
        seen.add(r["program"])
        out.append(f"**{r['program']}** (optimised for n = {fmt_n(r.get('opt_n', r['n']))}):\n\n```lisp\n"
                   f"{o['program']}\n```")
    return "\n\n".join(reversed(out))


def failures_section(res: dict) -> str:
    fs = res.get("failures") or []
    if not fs:
        return "None."
    return "\n".join(f"- {f['group']}/{f['program']} n={f['n']} {f['method']}: {f['status']} — "
                     f"{str(f.get('error', '')).splitlines()[0][:200] if f.get('error') else ''}" for f in fs)


# -- plots ----------------------------------------------------------------------------------
STYLE = {"numpy": ("k", "o", "-"), "opt": ("tab:red", "s", "-"), "unopt": ("tab:gray", "x", "--"),
         "jax.grad+jit": ("tab:blue", "^", "-"), "jax.grad": ("tab:blue", "v", ":"),
         "jax.jacfwd+jit": ("tab:cyan", "D", "-"), "jax.jacfwd": ("tab:cyan", "d", ":"),
         "torch.func.grad": ("tab:orange", "P", "-"), "torch.func.jacfwd": ("tab:brown", "*", "-")}


def plot(rows: list[dict], path: Path, title: str) -> Path | None:
    rows = [r for r in rows if r["group"] != "cross"]
    if not rows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    progs = list(dict.fromkeys(r["program"] for r in rows))
    ncol = min(4, len(progs))
    nrow = math.ceil(len(progs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.6 * nrow), squeeze=False)
    ms = methods_present(rows)
    for ax, p in zip(axes.flat, progs):
        rs = [r for r in rows if r["program"] == p]
        for m in ms:
            pts = [(r["n"], r["cells"][m]["median"]) for r in rs if _ok(r["cells"].get(m))]
            if not pts:
                continue
            col, mk, ls = STYLE.get(m, ("tab:green", ".", "-"))
            ax.plot([x for x, _ in pts], [y for _, y in pts], color=col, marker=mk, linestyle=ls,
                    label=LABELS.get(m, m), markersize=5, linewidth=1.6 if m in ("opt", "numpy") else 1.1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(p)
        ax.set_xlabel("n")
        ax.set_ylabel("seconds per call")
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(progs):]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=9,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) > 5), 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- whole documents ------------------------------------------------------------------------
def header(res: dict) -> str:
    m = res["meta"]
    mc = m["machine"]
    v = m["versions"]
    vers = ", ".join(f"{k} {v[k]}" for k in ("python", "numpy", "egglog", "eqsat_ad", "jax", "jaxlib", "torch")
                     if k in v)
    peers = ", ".join(f"{k}: {s}" for k, s in m["peers"].items())
    pr = m["protocol"]
    return (f"Run of {m['date']}{' (quick)' if m['quick'] else ''} on {mc['cpu']} ({mc['cores']} cores, "
            f"affinity {mc['affinity']}, load at the end {', '.join(f'{x:.2f}' for x in mc['load'] or [])}), "
            f"{mc['platform']}; {vers}. Peers: {peers}. Every framework in its own process, every thread "
            f"pool set to 1. float64. Medians of {pr['repeats']} timeit repeats (autoranged to ≥ "
            f"{pr['target_seconds_per_repeat']} s per repeat; fewer repeats for calls that would exceed "
            f"{pr['budget_seconds_per_cell']} s per cell). T/O: over {pr['timeout_seconds']} s per call "
            f"(measured, or extrapolated from the previous n with the method's exponent); OOM: the n×n "
            f"forward-mode tangents would need over {pr['mem_limit_bytes'] / 1e9:.0f} GB. Optimisation "
            f"limits {pr['opt_time_limit_seconds']} s"
            f"{', %s e-nodes' % pr['opt_node_limit'] if pr.get('opt_node_limit') else ''} (checked between "
            f"iterations); "
            f"{'optimised at every n (once, at the first n, when that took over %s s)' % pr.get('sticky_seconds') if pr['opt_per_size'] else 'optimised once, at the largest n'}. "
            f"Wall time {m['wall_seconds']:.0f} s.")


def markdown(res: dict, plot_dir: str | None = None) -> str:
    """The result tables as markdown (``plot_dir``: where the PNGs are, relative to the page)."""
    parts = [header(res)]
    micro = [r for r in res.get("micro", []) if r["group"] == "micro"]
    cross = [r for r in res.get("micro", []) if r["group"] == "cross"]
    suite = res.get("suite", [])
    if micro or cross:
        parts.append("## Micro-benchmark (dF~ programs)")
        parts.append("### Time per call (µs unless marked; median)\n\n" + time_table(micro + cross))
        parts.append("### Ratio to the hand-written NumPy gradient\n\n" + ratio_table(micro + cross))
        if plot_dir and micro:
            parts.append(f"![micro-benchmark, log-log]({plot_dir}/micro.png)")
        parts.append("### Log-log slopes (least squares over all measured n / over n ≥ 10^3)\n\n"
                     + slope_table(micro))
        parts.append("### Targets\n\n" + target_table(micro))
    if suite:
        parts.append("## Suite (the peer-baseline programs)")
        parts.append("### Time per call (µs unless marked; median)\n\n" + time_table(suite))
        parts.append("### Ratio to the hand-written NumPy gradient\n\n" + ratio_table(suite))
        if plot_dir:
            parts.append(f"![suite, log-log]({plot_dir}/suite.png)")
        parts.append("### Log-log slopes (least squares over all measured n / over n ≥ 10^3)\n\n"
                     + slope_table(suite))
        parts.append("### Targets\n\n" + target_table(suite))
    if micro or cross or suite:
        parts.append("### Optimisation (default schedule, tree extractor)\n\n" + opt_table(micro + cross + suite))
    if res.get("extraction"):
        parts.append("## Extraction comparison (schedule × extractor)\n\n" + extraction_table(res["extraction"])
                     + "\n\nThe column *extracted* names the distinct programs of each row group (same letter = "
                     "same program text); where they differ:\n\n" + variants_section(res["extraction"]))
    if micro or cross or suite:
        parts.append("## Optimised programs\n\n" + programs_section(micro + cross + suite))
    parts.append("## Failures, timeouts and wrong results\n\n" + failures_section(res))
    return "\n\n".join(parts) + "\n"


DOC_INTRO = """# Benchmarks

What the optimiser buys: the time per call of the gradients eqsat-ad produces, against the
unoptimised dual-number program, a hand-written NumPy gradient, and the AD tools people
would use instead (JAX, PyTorch) — measured side by side in one run on this project's
machine.  This page is generated from `benchmarks/results/latest.json` by
`eqsat_ad.bench.report.render_docs` (`python benchmarks/run_bench.py --render
benchmarks/results/latest.json`); do not edit the tables by hand.

## How to run

```sh
eqsat-ad bench --quick                 # reduced run (< 2 min): fewer sizes and repeats
python benchmarks/run_bench.py         # the full run: writes benchmarks/results/ and this page
python benchmarks/run_bench.py --programs dot,mlp --groups suite --no-peers
python benchmarks/run_bench.py --render benchmarks/results/latest.json   # only regenerate
```

Peers are optional: `pip install torch==2.13.0 jax jaxlib` (not project dependencies); a
peer that is not installed is left out and the run says so.

## Protocol

- **Methods.** `numpy`: the closed-form gradient written by hand in NumPy (the baseline of
  every ratio; for `dot` and `matvec-jac` it returns a copy of `w` / `A`).  `unoptimised`:
  `ea.compile(ea.grad(prog, x))`, the dual-number program as the AD transform emits it
  (O(n²) work for a gradient).  `optimised`: `ea.compile(ea.optimize(...).program)` with the
  default schedule and the tree extractor, optimised for the size it runs at.  Peers:
  `jax.grad` (eager and jitted), `jax.jacfwd` (eager and jitted), `torch.func.grad`,
  `torch.func.jacfwd`; for the Jacobian program the "grad" columns are `jax.jacrev` and
  `torch.func.jacrev`.
- **Processes and threads.** Each framework runs in its own worker process (ours included)
  with `OMP_NUM_THREADS`, `MKL_NUM_THREADS`, `OPENBLAS_NUM_THREADS` = 1,
  `XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"` and
  `torch.set_num_threads(1)`: with several frameworks in one process, their thread pools
  fought over the two cores and NumPy matrix-vector products became 10–100× slower
  (see the peer-baseline notes).
- **Side by side.** For each program and n the coordinator asks every worker in turn, so a
  row's cells are measured within seconds of each other; the NumPy baseline is timed before
  and after the others and its repeats pooled.  Ratios are taken within the row.
- **Timing.** `timeit`-style: calls per repeat autoranged (1, 2, 5, 10, … until a repeat takes
  the target time), the garbage collector off, the median of the repeats reported.  The first
  call (a JIT compilation for `+jit`) is recorded separately and excluded.  Every result is
  checked against the closed-form gradient (max relative error ≤ 1e-6).
- **Limits.** A method whose extrapolated time (`t(n_prev)·(n/n_prev)^e`, `e` = 2 for
  dual-number gradients and forward Jacobians, 3 for the Jacobian of `A x`) exceeds the time
  limit is not run: "T/O (est …)".  Forward-mode Jacobians whose n×n tangents (estimated at
  4 × 8 n² bytes) exceed the memory limit are not run: "OOM (est …)".
- **Noise.** Two shared cores, shared with other work: repeated runs of one cell differ by
  ~1.1× typically and up to several × occasionally.  Only gaps over ~2× are meaningful.
"""


def section_markers(name: str, generator: str) -> tuple[str, str]:
    """The comment lines around the part of a docs page that ``generator`` writes."""
    return (f"<!-- BEGIN {name} (generated by {generator}; do not edit by hand) -->",
            f"<!-- END {name} -->")


def write_section(path: Path, name: str, text: str, generator: str) -> None:
    """Put ``text`` between the markers of section ``name`` of the page ``path``, leaving the
    rest of the page (hand-written sections, other generators' sections) as it is; a page
    without that section gets it at the end (a missing page: just the section)."""
    import re
    begin, end = section_markers(name, generator)
    block = f"{begin}\n{text.strip()}\n{end}\n"
    old = path.read_text() if path.exists() else ""
    pat = re.compile(rf"<!-- BEGIN {re.escape(name)} [^\n]*-->\n.*?<!-- END {re.escape(name)} -->\n?", re.S)
    if pat.search(old):
        new = pat.sub(lambda _m: block, old, count=1)
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block
    path.write_text(new)


DOCS_SECTION = "benchmark-results"


def render_docs(res: dict, notes: str | None = None, plot_dir: str = "../benchmarks/results") -> str:
    """``docs/benchmarks.md`` from results (and optional hand-written notes on the findings)."""
    parts = [DOC_INTRO.rstrip()]
    if notes:
        parts.append(notes.strip())
    import re
    body = re.sub(r"(?m)^(#+) ", r"#\1 ", markdown(res, plot_dir))
    parts.append("## Latest results\n\n" + body.rstrip())
    return "\n\n".join(parts) + "\n"


def write_outputs(res: dict, out_dir: Path, docs: Path | None = None, notes_file: Path | None = None) -> dict:
    """Write ``latest.md``, ``micro.png`` and ``suite.png`` to ``out_dir`` (and the docs page)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    micro = [r for r in res.get("micro", []) if r["group"] == "micro"]
    try:
        if micro:
            written["micro.png"] = plot(micro, out_dir / "micro.png",
                                        "Micro-benchmark: gradient time per call vs n")
        if res.get("suite"):
            written["suite.png"] = plot(res["suite"], out_dir / "suite.png",
                                        "Suite: gradient time per call vs n")
    except ImportError as exc:  # matplotlib missing
        written["plot_error"] = str(exc)
    md = out_dir / "latest.md"
    md.write_text("# Benchmark results\n\n" + markdown(res, "."))
    written["latest.md"] = md
    if docs is not None:
        notes = notes_file.read_text() if notes_file and notes_file.exists() else None
        import os
        rel = os.path.relpath(out_dir, docs.parent)
        # only this generator's section: the page's other sections (the realistic corpus,
        # layouts, strategies: other scripts, or by hand) are left as they are
        write_section(docs, DOCS_SECTION, render_docs(res, notes, rel), "eqsat_ad.bench.report.render_docs")
        written["docs"] = docs
    return written
