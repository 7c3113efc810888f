"""IAM.1 against moto: notify-only, read live; assess applies the Config rule's test (Allow, Action "*", Resource
"*", in the default version) and names every user, group and role the policy is attached to with its detach call;
nothing is changed; a policy fixed since the finding reads compliant."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.engine.catalog import CATALOG
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.iam_admin_policies import RULE_ID, FullAdminPolicy, attachments, full_admin
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions

ADMIN = {"Version": "2012-10-17", "Statement": [{"Sid": "Everything", "Effect": "Allow", "Action": "*",
                                                  "Resource": "*"}]}
SCOPED = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def policy_finding(arn: str, **overrides: Any):
    return make_finding(RULE_ID, "AwsIamPolicy", arn.rsplit("/", 1)[1], region=REGION, resource_arn=arn, **overrides)


@pytest.fixture
def iam(moto_aws: None) -> Any:
    return boto3.client("iam", region_name=REGION)


def admin_policy(iam: Any, name: str = "everything", document: dict[str, Any] = ADMIN) -> str:
    return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]


def attach_everywhere(iam: Any, arn: str) -> None:
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="ops")
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.attach_user_policy(UserName="alice", PolicyArn=arn)
    iam.attach_group_policy(GroupName="ops", PolicyArn=arn)
    iam.attach_role_policy(RoleName="deployer", PolicyArn=arn)


def test_a_full_admin_policy_names_who_has_it_with_the_exact_detach_calls(
    iam: Any, target: Target, sessions: AssumedSessions
) -> None:
    arn = admin_policy(iam)
    attach_everywhere(iam, arn)
    remediator = FullAdminPolicy()

    before = remediator.assess(target, policy_finding(arn))

    assert not before.compliant
    (change,) = before.changes
    assert f'policy {arn} (default version v1) allows * on * (statement "Everything")' in change
    assert "attached to 3: user alice, group ops, role deployer" in change
    for call in (f"aws iam detach-user-policy --user-name alice --policy-arn {arn}",
                 f"aws iam detach-group-policy --group-name ops --policy-arn {arn}",
                 f"aws iam detach-role-policy --role-name deployer --policy-arn {arn}"):
        assert call in change
    assert before.pre_state["Attachments"] == {"user": ["alice"], "group": ["ops"], "role": ["deployer"]}
    with pytest.raises(RemediationError, match="needs a person"):
        remediator.apply(target, policy_finding(arn), before)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 3  # nothing was changed
    assert iam_actions(sessions.api_calls) <= set(remediator.read_permissions)

    # what the person does: a scoped default version; the finding then reads compliant
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(SCOPED), SetAsDefault=True)
    assert remediator.assess(target, policy_finding(arn)).compliant


def test_an_unattached_admin_policy_says_so_without_listing(iam: Any, target: Target,
                                                            sessions: AssumedSessions) -> None:
    arn = admin_policy(iam)

    (change,) = FullAdminPolicy().assess(target, policy_finding(arn)).changes

    assert "attached to no user, group or role" in change and f"delete-policy --policy-arn {arn}" in change
    assert "iam:ListEntitiesForPolicy" not in iam_actions(sessions.api_calls)  # AttachmentCount 0: one call fewer


@pytest.mark.parametrize(("statement", "admin"), [
    ({"Effect": "Allow", "Action": "*", "Resource": "*"}, True),
    ({"Effect": "Allow", "Action": ["s3:GetObject", "*"], "Resource": ["*"]}, True),
    ({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
     True),  # the Config rule does not look at conditions
    ({"Effect": "Allow", "Action": "service:*", "Resource": "*"}, False),  # the rule's own compliant example
    ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::bucket/*"}, False),
    ({"Effect": "Deny", "Action": "*", "Resource": "*"}, False),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, False),  # not "Action": "*"
])
def test_full_admin_is_the_config_rules_test(statement: dict[str, Any], admin: bool) -> None:
    assert full_admin(statement) is admin


def test_only_the_default_version_counts(iam: Any, target: Target) -> None:
    arn = admin_policy(iam, document=SCOPED)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(ADMIN), SetAsDefault=False)

    assert FullAdminPolicy().assess(target, policy_finding(arn)).compliant


def test_attachments_read_every_page() -> None:
    pages = [{"PolicyUsers": [{"UserName": "a"}], "PolicyGroups": [], "PolicyRoles": [{"RoleName": "r1"}]},
             {"PolicyUsers": [], "PolicyGroups": [{"GroupName": "g"}], "PolicyRoles": [{"RoleName": "r2"}]}]
    asked: dict[str, Any] = {}

    class FakeIam:
        def get_paginator(self, name: str) -> Any:
            assert name == "list_entities_for_policy"

            class Paginator:
                def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                    asked.update(kwargs)
                    return pages
            return Paginator()

    found = attachments(FakeIam(), "arn:aws:iam::1:policy/p")

    assert found == {"user": ["a"], "group": ["g"], "role": ["r1", "r2"]}
    assert asked["PolicyUsageFilter"] == "PermissionsPolicy"  # a permissions boundary grants nothing


def test_missing_policy_is_a_clear_error(iam: Any, target: Target) -> None:
    with pytest.raises(RemediationError, match="does not exist"):
        FullAdminPolicy().assess(target, policy_finding(f"arn:aws:iam::{ACCOUNT}:policy/gone"))


def test_through_the_engine_the_notification_names_the_attachments(iam: Any) -> None:
    arn = admin_policy(iam)
    attach_everywhere(iam, arn)
    fixed = admin_policy(iam, "fixed", SCOPED)
    sent: list[str] = []

    notified, noop = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply",
                            notifier=lambda result: sent.append(result.reason)).run(
        [policy_finding(arn), policy_finding(fixed)])

    assert notified.outcome == "notified" and noop.outcome == "noop"
    assert "Found in the account now:" in notified.reason and "user alice, group ops, role deployer" in notified.reason
    assert f"aws iam list-entities-for-policy --policy-arn {arn}" in notified.reason  # the static steps follow
    assert notified.changes and sent == [notified.reason]  # only the non-compliant one is sent
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 3


def test_catalog_entry() -> None:
    entry = CATALOG[RULE_ID]
    assert (entry.notify_only, entry.remediator, entry.remediator.notify_assesses) == (True, FullAdminPolicy, True)


def test_a_policy_with_the_exclusion_tag_is_excluded_from_its_own_read(iam: Any) -> None:
    arn = iam.create_policy(PolicyName="break-glass", PolicyDocument=json.dumps(ADMIN),
                            Tags=[{"Key": "cspm-remediation:exclude", "Value": "true"}])["Policy"]["Arn"]
    sent: list[Any] = []

    (result,) = Engine(config_from_dict({}), AssumedSessions(), notifier=sent.append).run([policy_finding(arn)])

    assert (result.outcome, sent) == ("excluded", [])  # GetPolicy returns the tags: no extra call
