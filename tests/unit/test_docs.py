"""The README's rule table is generated from the declarations; this fails when it is stale."""

from functions.engine.catalog import CATALOG, rule_rows
from tools.docs import README, catalog_markdown, render_readme


def test_readme_rule_table_is_current():
    text = README.read_text(encoding="utf-8")
    assert render_readme(text) == text, "README is stale: run `python -m tools.docs`"


def test_every_rule_has_a_row():
    table = catalog_markdown()
    for rule_id in CATALOG:
        assert f"| {rule_id} |" in table


def test_every_source_has_a_row_in_the_sources_table():
    from functions.engine.pipeline import SOURCE_FACTS, SOURCES
    from tools.docs import sources_markdown

    assert set(SOURCE_FACTS) == set(SOURCES)
    table = sources_markdown()
    for source in SOURCES:
        assert f"| `{source}` |" in table


def test_the_rules_that_read_live_state_in_notify_mode_are_listed_from_the_flag():
    from tools.docs import notify_reads_markdown

    line = notify_reads_markdown()
    reading = {rule_id for rule_id, entry in CATALOG.items() if entry.remediator.notify_assesses}
    assert reading >= {"IAM.1", "netskope:iam-one-active-access-key"}
    listed = {rule_id for rule_id in CATALOG if f" {rule_id} (`" in line}
    assert listed == reading
    assert "`iam:ListEntitiesForPolicy`" in line and line in catalog_markdown()
    assert {row["rule_id"] for row in rule_rows() if row["notify_reads"]} == reading  # `rules --json` says it too


def test_the_guides_state_the_circuit_breakers_defaults_the_code_has():
    """Issue #11: the README and the deploy guide state the breaker's defaults; they must be Limits()'s."""
    import re

    from functions.engine.config import Limits

    limits = Limits()
    rule, account = limits.max_actions_per_rule, limits.max_actions_per_account
    readme = " ".join(README.read_text(encoding="utf-8").split())
    deploy = " ".join((README.parent / "cloudformation" / "DEPLOY.md").read_text(encoding="utf-8").split())
    assert re.search(rf"circuit breaker: at most {rule} actions per rule and {account} per account in one run by "
                     r"default", readme)
    assert re.search(rf"\*\*Circuit breaker\*\*: one run acts at most {rule} times per rule and {account} times per "
                     r"account \(the defaults;", deploy)
