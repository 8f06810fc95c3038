"""Writes the repetitive parts of the e-graph schema: the operators' constructor declarations
and real-term facts in egraph/schema.egg (from the primitive table, eqsat_ad/lang/primitives.py),
the free-variable analysis egraph/fv.egg (one rule per constructor) and rules/subst.egg (one
guarded push rule per constructor).

Run after adding a primitive or a constructor: ``.venv/bin/python tools/gen_egg_tables.py``;
the outputs are checked in and ``tests/test_primitives.py`` checks that they are in sync.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eqsat_ad.egraph.constructors import CONSTRUCTORS, fv_rules_text, schema_text, subst_rules_text  # noqa: E402
from eqsat_ad.egraph.session import rules_dir  # noqa: E402

if __name__ == "__main__":
    schema = ROOT / "eqsat_ad/egraph/schema.egg"
    schema.write_text(schema_text(schema.read_text()))
    (ROOT / "eqsat_ad/egraph/fv.egg").write_text(fv_rules_text())
    (rules_dir() / "subst.egg").write_text(subst_rules_text())
    print("wrote", len(CONSTRUCTORS), "constructors")
