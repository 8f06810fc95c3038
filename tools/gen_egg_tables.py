"""Writes the repetitive parts of the e-graph schema (free-variable analysis, one rule per
constructor) and of rules/subst.egg (one guarded push rule per constructor).

Run once after adding a constructor: ``python tools/gen_egg_tables.py``; the outputs are
checked in and ``tests/test_egraph_schema.py`` checks that they are in sync with the
constructor table in ``eqsat_ad/egraph/constructors.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eqsat_ad.egraph.constructors import CONSTRUCTORS, fv_rules_text, subst_rules_text  # noqa: E402

if __name__ == "__main__":
    (ROOT / "eqsat_ad/egraph/fv.egg").write_text(fv_rules_text())
    (ROOT / "rules/subst.egg").write_text(subst_rules_text())
    print("wrote", len(CONSTRUCTORS), "constructors")
