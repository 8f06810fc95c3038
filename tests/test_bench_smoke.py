"""Smoke test of the benchmark code (not a benchmark): one tiny program, n = 10, one repeat."""
import json

from eqsat_ad.bench import protocol, report, runner, specs


def test_specs_reference_gradients_have_the_right_shape():
    for s in specs.ALL:
        n = s.quick_sizes[0]
        args = specs.inputs(s, n)
        g = specs.reference(s, n, args)
        assert g.shape == (args[s.wrt].shape if s.kind == "grad" else (n, n))
        assert specs.max_rel_error(g, g) == 0.0


def test_measure_and_slope():
    res = protocol.measure(lambda: sum(range(10)), repeats=2, target=0.001, budget=1.0)
    assert res["repeats"] == 2 and res["median"] > 0
    assert abs(report.slope([(10, 1.0), (100, 100.0), (1000, 10_000.0)]) - 2.0) < 1e-9


def test_tiny_run_and_report(tmp_path):
    cfg = runner.Config(repeats=1, target=0.001, budget=1.0, timeout=2.0, opt_seconds=10.0,
                        groups=("micro",), programs=("vsum",), sizes=(10,), peers=())
    res = runner.run(cfg)
    row = res["micro"][0]
    assert row["opt"]["ok"], row["opt"]
    for m in ("numpy", "opt", "unopt"):
        assert row["cells"][m]["status"] == "ok", row["cells"][m]
        assert row["cells"][m]["error"] < 1e-9
    assert res["meta"]["peers"]["jax"].startswith("disabled")
    json.dumps(res)
    md = report.markdown(res, None)
    assert "| vsum | 10 |" in md
    doc = report.render_docs(res)
    assert doc.startswith("# Benchmarks") and "Latest results" in doc
