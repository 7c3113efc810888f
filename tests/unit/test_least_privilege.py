"""Issue 12's "done when", read off the renderings: the defaults (every rule dry-run) grant reads only, and no
rendering (defaults, all-enforce, each rule alone) grants an escalation action on "*" without the condition that
narrows it. Access levels come from the IAM definition parliament ships, not from our own declarations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.scan import all_renderings
from tools.scan.iam_lint import access_levels
from tools.scan.policies import policy_documents
from tools.templates.grants import ESCALATION_ACTIONS
from tools.templates.resolve import target_renderings

# Condition keys that bound an escalation action to what it was granted for (grants.py's MUST_BE_CONDITIONED,
# and iam:PolicyARN for the attach actions of IAM.18/IAM.27).
NARROWING_KEYS = {"iam:policyarn", "iam:passedtoservice", "iam:awsservicename", "kms:grantisforawsresource"}
# What parliament's privilege-escalation auditor and checkov's CKV_AWS_110 look for, besides grants.py's list.
MORE_ESCALATION = {"iam:createpolicy", "iam:attachrolepolicy", "lambda:createfunction", "lambda:updatefunctioncode",
                   "glue:updatedevendpoint", "cloudformation:createstack", "ec2:runinstances",
                   "iam:createinstanceprofile", "iam:addroletoinstanceprofile", "iam:*", "*"}
ESCALATION = {a.lower() for a in ESCALATION_ACTIONS} | MORE_ESCALATION


def allow_statements(rendering: dict) -> Iterator[tuple[str, dict]]:
    for doc in policy_documents(rendering):
        if doc.kind == "identity":
            for statement in doc.document["Statement"]:
                if statement["Effect"] == "Allow":
                    yield doc.where, statement


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_the_defaults_rendering_grants_read_and_list_actions_only():
    levels = access_levels()
    granted = {(where, action) for where, s in allow_statements(target_renderings()["target-defaults.yaml"])
               for action in listed(s["Action"])}
    assert len(granted) > 100  # every dry-run rule's reads
    assert sorted((w, a) for w, a in granted if levels.get(a.lower()) not in ("Read", "List")) == []


def test_all_enforce_does_grant_writes():
    """The read-only test above would pass on an empty rendering: enforce must add what dry-run holds back."""
    levels = access_levels()
    enforce = target_renderings()["target-all-enforce.yaml"]
    granted = {a for _, s in allow_statements(enforce) for a in listed(s["Action"])}
    assert any(levels.get(a.lower()) == "Write" for a in granted)


@pytest.fixture(scope="module")
def renderings() -> list[tuple[str, dict]]:
    return list(all_renderings())


def escalations_on_star(renderings: list[tuple[str, dict]]) -> list[tuple[str, str, str, list[str]]]:
    """(rendering, policy, sid, actions) of every Allow that grants an escalation action, or a wildcard action,
    on "*" without a narrowing condition."""
    offending = []
    for name, rendering in renderings:
        for where, statement in allow_statements(rendering):
            if "*" not in listed(statement["Resource"]):
                continue
            keys = {key.lower() for keys in statement.get("Condition", {}).values() for key in keys}
            actions = {a.lower() for a in listed(statement["Action"])}
            wildcard = {a for a in actions if a.endswith("*")}
            if (actions & ESCALATION or wildcard) and not keys & NARROWING_KEYS:
                offending.append((name, where, statement.get("Sid", ""), sorted(actions & ESCALATION | wildcard)))
    return offending


def test_no_rendering_grants_an_escalation_action_on_star_unconditioned(renderings):
    assert len(renderings) > 100
    assert escalations_on_star(renderings) == []


@pytest.mark.parametrize("statement", [
    {"Sid": "Planted", "Effect": "Allow", "Action": ["iam:PutUserPolicy"], "Resource": "*"},
    {"Sid": "Planted", "Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": ["*"],
     "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},  # a condition that narrows nothing
    {"Sid": "Planted", "Effect": "Allow", "Action": ["s3:*"], "Resource": "*"},
])
def test_the_check_sees_a_planted_escalation(statement):
    rendering = target_renderings()["target-all-enforce.yaml"]
    rendering["Resources"]["RemediationPolicy01"]["Properties"]["PolicyDocument"]["Statement"].append(statement)
    assert [(w, sid) for _, w, sid, _ in escalations_on_star([("planted", rendering)])] == [
        ("RemediationPolicy01/PolicyDocument", "Planted")]


def test_a_role_that_writes_bucket_policies_denies_itself_the_objects():
    """parliament's RESOURCE_POLICY_PRIVILEGE_ESCALATION (allowlisted): s3:PutBucketPolicy could grant the role
    the objects; its own Deny outranks whatever a bucket policy allows."""
    rendering = target_renderings()["target-all-enforce.yaml"]
    resources = rendering["Resources"]
    by_role: dict[str, list[dict]] = {}
    for doc in policy_documents(rendering):
        if doc.kind != "identity":
            continue
        body = resources[doc.resource]
        roles = [doc.resource] if body["Type"] == "AWS::IAM::Role" else [r["Ref"] for r in body["Properties"]["Roles"]]
        for role in roles:
            by_role.setdefault(role, []).extend(doc.document["Statement"])
    writers = [role for role, statements in by_role.items()
               if any(s["Effect"] == "Allow" and "s3:PutBucketPolicy" in listed(s["Action"]) for s in statements)]
    assert {"RemediationRole", "AutomationRole", "RollbackRole"} <= set(writers)
    for role in writers:
        denies = [s for s in by_role[role] if s["Effect"] == "Deny" and s["Resource"] == "*"]
        denied = {a for s in denies for a in listed(s["Action"])}
        assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= denied, role
