"""RealTimeEvents in the templates, deployed on moto's CloudFormation: the admin stack's rule and function exist only
with the toggle, the member accounts' forwarding rule sends the watched calls to the admin bus with a role that may
do nothing else, and the shared pattern matches real-shaped events but not failed calls (moto's EventBridge pattern
matcher, the one its rules use: its TestEventPattern API answers nothing).
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto.events.models import EventPattern

from connectors.cloudtrail_events import watched_events
from demo import cloudtrail_records as ct
from tests.e2e.test_cloudformation_moto import (
    ACCOUNT,
    CODE_BUCKET,
    ORG,
    deploy,
    functions_by_handler,
    load,
    moto_account,
    role_statements,
)
from tools.templates.forwarding import cloudtrail_pattern

HANDLER = "functions.aws_lambda.cloudtrail_events.handler"
ADMIN = {"OrganizationId": ORG, "CodeS3Bucket": CODE_BUCKET}


def _rules_targeting(arn_part: str) -> list[dict]:
    events = boto3.client("events")
    return [r for r in events.list_rules()["Rules"]
            if any(arn_part in t["Arn"] for t in events.list_targets_by_rule(Rule=r["Name"])["Targets"])]


def test_admin_stack_without_the_toggle_has_no_cloudtrail_function_or_rule() -> None:
    with moto_account():
        deploy("admin.yaml", ADMIN)
        assert HANDLER not in functions_by_handler()
        assert not [r for r in boto3.client("events").list_rules()["Rules"]
                    if json.loads(r["EventPattern"]).get("detail-type") == ["AWS API Call via CloudTrail"]]


def test_admin_stack_with_real_time_events_routes_the_watched_calls_to_the_function() -> None:
    with moto_account():
        deploy("admin.yaml", {**ADMIN, "RealTimeEvents": "enabled"})
        functions = functions_by_handler()
        function = functions[HANDLER]
        events_function = functions["functions.aws_lambda.handlers.events"]
        assert function["Environment"]["Variables"] == events_function["Environment"]["Variables"]
        (rule,) = _rules_targeting(function["FunctionArn"])
        assert json.loads(rule["EventPattern"]) == cloudtrail_pattern()
        role = function["Role"].rsplit("/", 1)[-1]
        events_role = events_function["Role"].rsplit("/", 1)[-1]
        # The same screening code, the same grants (logs of its own group): nothing to read in member accounts.
        assert {s["Sid"] for s in role_statements(role)} == {s["Sid"] for s in role_statements(events_role)}
        assert not [s for s in role_statements(role) if "sts:AssumeRole" in s["Action"]]
    policy = load("admin.yaml")["Resources"]["OrganizationEventsPolicy"]
    assert policy["Condition"] == "UsesRealTimeEvents"
    assert policy["Properties"]["Statement"]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {
        "Ref": "OrganizationId"}}}


def test_member_accounts_forward_to_the_admin_bus_with_a_put_events_only_role() -> None:
    with moto_account():
        deploy("event-forwarding.yaml", {"AdminAccountId": "210987654321", "AdminRegion": "eu-west-1"})
        bus = "arn:aws:events:eu-west-1:210987654321:event-bus/default"
        (rule,) = _rules_targeting(bus)
        assert json.loads(rule["EventPattern"]) == cloudtrail_pattern()
        (target,) = boto3.client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
        role = target["RoleArn"].rsplit("/", 1)[-1]
        assert [(s["Action"], s["Resource"]) for s in role_statements(role)] == [(["events:PutEvents"], bus)]


def test_the_admin_account_does_not_forward_to_its_own_bus() -> None:
    template = load("event-forwarding.yaml")
    assert {r["Condition"] for r in template["Resources"].values()} == {"NotTheAdminBus"}
    with moto_account():
        deploy("event-forwarding.yaml", {"AdminAccountId": ACCOUNT, "AdminRegion": "us-east-1"})
        assert not boto3.client("events").list_rules()["Rules"]


@pytest.mark.parametrize("body", [
    ct.authorize_security_group_ingress("sg-0a1b2c3d4e5f60718"),
    ct.add_permission("resize"),
    ct.update_account_password_policy(),
    ct.account_public_access_block(),
], ids=lambda b: b["eventName"])
def test_the_pattern_matches_watched_calls_and_not_failed_ones(body: dict) -> None:
    pattern = EventPattern.load(json.dumps(cloudtrail_pattern()))
    assert pattern.matches_event(ct.event(body))
    assert not pattern.matches_event(ct.event(dict(body, errorCode="AccessDenied")))
    assert not pattern.matches_event(ct.event(dict(body, eventName="DescribeSecurityGroups")))
    assert body["eventName"] in watched_events()[body["eventSource"]]
