"""Generators of docs/benchmarks.md write only their own marked sections."""
from eqsat_ad.bench.report import section_markers, write_section


def test_write_section_replaces_only_its_own_section(tmp_path):
    page = tmp_path / "b.md"
    write_section(page, "a", "first A", "gen-a")
    page.write_text(page.read_text() + "\nhand-written text\n")
    write_section(page, "b", "first B", "gen-b")
    write_section(page, "a", "second A", "gen-a")
    text = page.read_text()
    assert "second A" in text and "first A" not in text
    assert "hand-written text" in text and "first B" in text
    assert text.index("second A") < text.index("hand-written text") < text.index("first B")
    assert text.count(section_markers("a", "gen-a")[0]) == 1


def test_the_docs_page_has_the_generated_sections():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md").read_text()
    for name in ("benchmark-results", "corpus-targets"):
        assert f"<!-- BEGIN {name} " in text and f"<!-- END {name} -->" in text
