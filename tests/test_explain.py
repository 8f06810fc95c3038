"""``eqsat-ad explain`` names each number it prints and its unit; the cost unit and the glossary."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eqsat_ad import glossary
from eqsat_ad.cli import main
from eqsat_ad.cost import CostModel
from eqsat_ad.cost.units import UNIT, format_seconds, predicted_seconds, unit_json, unit_seconds

SUMSQ = str(Path(__file__).resolve().parent.parent / "docs" / "examples" / "sumsq.ad")


def explain(capsys, *argv):
    rc = main(["explain", SUMSQ, "--grad", "x", *map(str, argv)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


@pytest.fixture(scope="module")
def text():
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        assert main(["explain", SUMSQ, "--grad", "x", "--size", "n=100", "--extractor", "ilp"]) == 0
    return buf.getvalue()


def test_every_cost_line_names_what_it_is_and_its_unit(text):
    lines = text.splitlines()
    cost_lines = [ln for ln in lines if re.search(r"\bcost\b", ln) and not ln.startswith("legend")
                  and ln in lines[:lines.index("optimised program:")]]
    assert cost_lines
    for ln in cost_lines:
        # a bare "cost N" is not allowed: it is a model cost, a tree cost or egglog's estimate
        assert re.search(r"model cost|tree cost|egglog's estimate|every e-class paid once", ln), ln
        if "model cost" in ln:
            assert UNIT in ln, ln
    assert re.search(r"^input: \d+ e-nodes; model cost [\d.e+]+ add-units \(predicted [\d.]+ \w?s per call\)$",
                     text, re.M)
    assert re.search(r"^model cost: \S+ -> \S+ add-units \(\S+x cheaper\)$", text, re.M)
    assert re.search(r"^predicted time per call: [\d.]+ \w?s -> [\d.]+ \w?s \(on the calibration machine\)$",
                     text, re.M)
    assert "egglog's estimate" in text and "(egglog's integer units)" in text
    assert re.search(r"^  ILP: \d+ variables, \d+ constraints, solver status \w+, objective", text, re.M)
    assert "s of rewriting; stopped: saturated" in text
    assert "check: verified" in text


def test_the_legend_defines_the_terms_and_the_unit(text):
    legend = text[text.index("\nlegend: "):]
    flat = " ".join(legend.split())
    for term in glossary.EXPLAIN_TERMS:
        assert f"{term} = " in flat, term
    assert "1 add-unit is the time NumPy takes for one float64 addition" in flat
    assert format_seconds(unit_seconds()) in flat          # the calibrated figure
    assert all(len(ln) <= 100 for ln in legend.splitlines())


def test_no_legend(capsys):
    out = explain(capsys, "--no-phase-costs", "--no-legend")
    assert "legend:" not in out and out.rstrip().endswith("(get x i)))))")


def test_json_keeps_the_optimize_keys_and_adds_the_unit(capsys, tmp_path):
    explain(capsys, "--no-phase-costs", "--no-legend", "--json", tmp_path / "e.json")
    main(["optimize", SUMSQ, "--grad", "x", "--json", str(tmp_path / "o.json"), "-q"])
    capsys.readouterr()
    e = json.loads((tmp_path / "e.json").read_text())
    o = json.loads((tmp_path / "o.json").read_text())
    assert set(o) - {"input"} <= set(e)
    assert e["cost_unit"]["name"] == "add-units"
    assert e["cost_unit"]["seconds"] == unit_seconds() > 0
    assert "float64 addition" in e["cost_unit"]["meaning"]


def test_units_of_an_uncalibrated_model():
    m = CostModel()
    assert unit_seconds(m) is None and predicted_seconds(100.0, m) is None
    assert "not calibrated" in unit_json(m)["meaning"] and unit_json(m)["seconds"] is None
    assert predicted_seconds(1000.0, CostModel(meta={"unit_seconds": 1e-9})) == 1e-6
    assert [format_seconds(s) for s in (2.5, 0.0123, 4.2e-6, 7e-10)] == ["2.5 s", "12.3 ms", "4.2 us", "0.7 ns"]


def test_optimize_report_says_model_cost_and_unit(capsys):
    assert main(["optimize", SUMSQ, "--grad", "x"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^;; model cost: \S+ -> \S+ add-units \([\d,.]+x cheaper\)$", out, re.M)


def test_times_cheaper_wording():
    from eqsat_ad.driver import times_cheaper
    assert times_cheaper(208520, 2762.3) == "75.5x cheaper"
    assert times_cheaper(2.006e7, 3599.3) == "5,573x cheaper"
    assert times_cheaper(3409.3, 3409.3) == "no cheaper"
