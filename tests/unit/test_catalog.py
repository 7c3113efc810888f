"""Meta-tests: every remediator is fully self-describing, and declares every IAM action it calls."""

import re

import pytest

from functions.engine.catalog import CATALOG, REMEDIATORS, rule_rows
from functions.remediators.base import MODES, NotifyOnlyRemediator
from tests import permission_recorder

IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


def test_every_remediator_is_registered_in_the_catalog():
    unregistered = [c.__name__ for c in permission_recorder.remediator_classes() if c not in REMEDIATORS]
    assert not unregistered, f"not in functions/engine/catalog.py REMEDIATORS: {unregistered}"


@pytest.mark.parametrize("remediator", REMEDIATORS, ids=lambda c: c.__name__)
def test_declarations_are_complete(remediator):
    assert remediator.rules, "declares no rules"
    assert remediator.resource_types, "declares no resource types"
    assert isinstance(remediator.reversible, bool)
    for rule in remediator.rules:
        assert rule.title and rule.default_mode in MODES
    if issubclass(remediator, NotifyOnlyRemediator):
        assert all(rule.default_mode == "notify" for rule in remediator.rules)
        assert set(remediator.guidance) >= {rule.rule_id for rule in remediator.rules}
        return
    assert remediator.permissions, "declares no IAM actions"
    for action in (*remediator.permissions, *(remediator.runbook.permissions if remediator.runbook else ())):
        assert IAM_ACTION.match(action) and "*" not in action, action


def test_rules_listing_has_the_contract_columns():
    for row in rule_rows():
        assert {"rule_id", "title", "cis", "mode", "executor", "permissions", "reversible"} <= set(row)
    assert len(rule_rows()) == len(CATALOG)


def test_a_write_called_from_assess_is_undeclared():
    """The stage check itself: a write made while assessing is reported although the class declares it."""
    from functions.remediators.sqs import QueuePolicyNotPublic

    called = {QueuePolicyNotPublic: {"assess": {"sqs:GetQueueAttributes", "sqs:SetQueueAttributes"},
                                     "apply": {"sqs:SetQueueAttributes"}}}
    undeclared = permission_recorder.undeclared_calls(called)
    assert undeclared == {"QueuePolicyNotPublic": {"assess": ["sqs:SetQueueAttributes"]}}
