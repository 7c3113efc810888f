"""CloudTrail.5 against moto: a trail delivering to S3 only also delivers to a new log group (with retention) in its
home region, with the template's delivery role, read back; a second assess is compliant; the S3 bucket, log file
validation and the trail's other settings survive; an existing group of that name is reused; rollback stops the
delivery and keeps the group."""

from __future__ import annotations

import json

import boto3
import pytest

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.cloudtrail_logs import TrailCloudWatchLogs
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import (
    create_trail,
    iam_actions,
    make_trail_bucket,
    record_calls,
    recorded_pre_state,
    trail_arn,
)

GROUP = "/cspm-remediation/cloudtrail/audit"


@pytest.fixture
def trail(moto_aws) -> str:
    """A trail to S3 with validation on, and the delivery role the target template creates."""
    boto3.client("iam", region_name=REGION).create_role(
        RoleName="CSPMRemediationCloudTrailDelivery",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    return create_trail("audit", make_trail_bucket("audit-logs"), IsMultiRegionTrail=True,
                        EnableLogFileValidation=True)


def finding(**overrides):
    return make_finding("CloudTrail.5", "AwsCloudTrailTrail", "audit", resource_arn=trail_arn("audit"),
                        **{"tags": {"team": "sec"}, **overrides})


def described() -> dict:
    return boto3.client("cloudtrail", region_name=REGION).describe_trails(trailNameList=["audit"])["trailList"][0]


def test_trail_gets_cloudwatch_logs_delivery_and_keeps_the_rest(target: Target, trail: str) -> None:
    remediator = TrailCloudWatchLogs()
    logs = boto3.client("logs", region_name=REGION)

    before = remediator.assess(target, finding())
    assert not before.compliant
    role = f"arn:aws:iam::{ACCOUNT}:role/CSPMRemediationCloudTrailDelivery"
    assert before.changes == [f"create log group {GROUP} in {REGION} (retention 365 days)",
                              f"deliver trail {trail} to log group {GROUP} with role {role}"]
    assert logs.describe_log_groups()["logGroups"] == []

    remediator.apply(target, finding(), before)

    (group,) = logs.describe_log_groups()["logGroups"]
    assert (group["logGroupName"], group["retentionInDays"]) == (GROUP, 365)
    now = described()
    assert now["CloudWatchLogsLogGroupArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:*"
    assert now["CloudWatchLogsRoleArn"] == role
    assert (now["S3BucketName"], now["LogFileValidationEnabled"], now["IsMultiRegionTrail"]) == (
        "audit-logs", True, True)
    after = remediator.assess(target, finding())
    assert after.compliant and after.changes == []


def test_an_existing_group_of_that_name_is_reused(target: Target, trail: str) -> None:
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=30)
    remediator = TrailCloudWatchLogs()
    calls = record_calls(target.client("logs"))

    assessment = remediator.assess(target, finding())
    assert assessment.changes[0].startswith(f"deliver trail {trail}")
    remediator.apply(target, finding(), assessment)

    assert calls == ["DescribeLogGroups"]  # never created, its retention never changed
    assert logs.describe_log_groups()["logGroups"][0]["retentionInDays"] == 30
    assert remediator.assess(target, finding()).compliant


def test_restore_stops_the_delivery_and_keeps_the_group(target: Target, sessions: AssumedSessions, trail: str) -> None:
    remediator = TrailCloudWatchLogs()
    assessment = remediator.assess(target, finding(tags={}))
    remediator.apply(target, finding(), assessment)

    lines = remediator.restore(target, finding(), recorded_pre_state(assessment))

    assert lines == [f"stopped CloudWatch Logs delivery of trail {trail} (log group {GROUP} kept: it holds the "
                     "delivered events)"]
    assert not described().get("CloudWatchLogsLogGroupArn")
    assert [g["logGroupName"] for g in boto3.client("logs", region_name=REGION).describe_log_groups()[
        "logGroups"]] == [GROUP]
    assert remediator.restore(target, finding(), assessment.pre_state) == [
        f"trail {trail} already delivers to S3 only"]
    assert iam_actions(sessions.api_calls) == set(TrailCloudWatchLogs.permissions) - {"iam:PassRole"}


def test_restore_without_a_recorded_state_is_refused(target: Target, trail: str) -> None:
    with pytest.raises(RemediationError, match="no previous CloudWatch Logs state"):
        TrailCloudWatchLogs().restore(target, finding(), {})


def test_passes_only_its_own_role_to_cloudtrail() -> None:
    assert TrailCloudWatchLogs.passed_roles() == (("CSPMRemediationCloudTrailDelivery", "cloudtrail.amazonaws.com"),)
    assert CATALOG["CloudTrail.5"].rule.disruption == "cost"
