"""The unit every model cost is in, in words and in seconds.

Costs (``res.cost``, ``res.cost_before``, ``CostModel.dag_cost``) are in **add-units**: one
add-unit is the time NumPy takes for one float64 addition on one array element.  The
calibration (``benchmarks/calibrate_costs.py``) measured that time on its machine and stored
it as ``unit_seconds`` in ``opcosts.json``, so ``cost x unit_seconds`` predicts the run time
of one call on that machine.  A model without that figure (a user's own) still counts in
its own units; then no time is predicted.

>>> from eqsat_ad.cost import CostModel
>>> m = CostModel(meta={"unit_seconds": 7e-10, "machine": "a test box"})
>>> predicted_seconds(2000.0, m)
1.4e-06
>>> format_seconds(1.4e-06)
'1.4 us'
>>> predicted_seconds(2000.0, CostModel()) is None
True
"""
from __future__ import annotations

#: the name of the unit of every model cost
UNIT = "add-units"


def _model(model):
    if model is None:
        from .model import default_cost_model
        return default_cost_model()
    return model


def unit_seconds(model=None) -> float | None:
    """Seconds per add-unit measured by the calibration of ``model`` (default: the default
    model), or None when the model was not calibrated."""
    meta = getattr(_model(model), "meta", None) or {}
    try:
        s = float(meta.get("unit_seconds"))
    except (TypeError, ValueError):
        return None
    return s if s > 0 else None


def predicted_seconds(cost: float | None, model=None) -> float | None:
    """The run time ``cost`` (add-units) predicts on the calibration machine, or None."""
    s = unit_seconds(model)
    if s is None or cost is None:
        return None
    return round(cost * s, 15)


def format_seconds(s: float) -> str:
    """``1.4 us``, ``2.3 ms``, ``1.2 s``, ``700 ns`` (three significant digits)."""
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if s >= scale:
            return f"{s / scale:.3g} {name}"
    return f"{s / 1e-9:.3g} ns"


def unit_meaning(model=None) -> str:
    """One sentence: what an add-unit is, with the calibrated figure when there is one."""
    s = unit_seconds(model)
    text = (f"{UNIT}: 1 add-unit is the time NumPy takes for one float64 addition on one array "
            "element")
    if s is None:
        return text + " (this model is not calibrated, so no run time is predicted)"
    meta = _model(model).meta
    where = meta.get("machine") or "the calibration machine"
    date = str(meta.get("date") or "")[:10]
    return (text + f", {format_seconds(s)} on the machine the model was calibrated on ({where}"
            + (f", {date}" if date else "") + ")")


def unit_json(model=None) -> dict:
    """The unit for JSON reports: ``{"name", "meaning", "seconds", "machine", "date"}``."""
    meta = getattr(_model(model), "meta", None) or {}
    return {"name": UNIT, "meaning": unit_meaning(model), "seconds": unit_seconds(model),
            "machine": meta.get("machine"), "date": meta.get("date")}
