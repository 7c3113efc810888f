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


# What each method's role holds: assess runs at dry-run (reads), apply at enforce (reads and writes), restore and
# restore_fields (the field-level rollback) with the rollback role (reads and restores).
STAGE_GRANTS = {"assess": ("read",), "apply": ("read", "write"), "restore": ("read", "restore"),
                "restore_fields": ("read", "restore")}


def undeclared_calls(called: dict, grants: dict = STAGE_GRANTS) -> dict[str, dict[str, list[str]]]:
    """{remediator: {method: actions called there but not granted to that method's role}}."""
    found: dict[str, dict[str, list[str]]] = {}
    for cls, by_method in called.items():
        for method, actions in by_method.items():
            granted = {a for stage in grants[method] for a in cls.permissions_for(stage)}
            if actions - granted:
                found.setdefault(cls.__name__, {})[method] = sorted(actions - granted)
    return found


def test_a_write_called_from_assess_is_undeclared():
    """The stage check itself: a write made while assessing is reported although the class declares it."""
    from functions.remediators.sqs import QueuePolicyNotPublic

    called = {QueuePolicyNotPublic: {"assess": {"sqs:GetQueueAttributes", "sqs:SetQueueAttributes"},
                                     "apply": {"sqs:SetQueueAttributes"}}}
    assert undeclared_calls(called) == {"QueuePolicyNotPublic": {"assess": ["sqs:SetQueueAttributes"]}}


@pytest.mark.after_all_remediator_tests
def test_every_called_action_is_declared_for_its_stage():
    """Runs last: compares the IAM actions each remediator's assess / apply / restore called during this test run
    with what that stage's role is granted."""
    if not permission_recorder.CALLED:
        pytest.skip("no remediator test ran in this session")
    undeclared = undeclared_calls(permission_recorder.CALLED)
    assert not undeclared, f"IAM actions called but not declared for their stage: {undeclared}"
