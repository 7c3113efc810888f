"""The README's rule table is generated from the declarations; this fails when it is stale."""

from functions.engine.catalog import CATALOG
from tools.docs import README, catalog_markdown, render_readme


def test_readme_rule_table_is_current():
    text = README.read_text(encoding="utf-8")
    assert render_readme(text) == text, "README is stale: run `python -m tools.docs`"


def test_every_rule_has_a_row():
    table = catalog_markdown()
    for rule_id in CATALOG:
        assert f"| {rule_id} |" in table
