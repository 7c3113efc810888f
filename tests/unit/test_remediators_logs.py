"""CloudWatch.16 against moto: a log group kept too briefly keeps events 365 days, read back; a second assess is
compliant; a group that never expires or keeps longer is left alone; its metric filters and tags survive; rollback
puts the old retention back (twice is harmless)."""

from __future__ import annotations

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.logs import LogGroupRetention, log_group_name
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls

GROUP = "/app/orders"


@pytest.fixture
def logs(moto_aws):
    client = boto3.client("logs", region_name=REGION)
    client.create_log_group(logGroupName=GROUP, tags={"team": "shop"})
    client.put_metric_filter(logGroupName=GROUP, filterName="errors", filterPattern="ERROR", metricTransformations=[
        {"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}])
    return client


def retention(logs) -> int | None:
    return logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0].get("retentionInDays")


def finding(**overrides):
    return make_finding("CloudWatch.16", "AwsLogsLogGroup", GROUP, **overrides)


def test_short_retention_is_raised_and_rolled_back(target: Target, sessions: AssumedSessions, logs) -> None:
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=30)
    remediator = LogGroupRetention()
    calls = record_calls(target.client("logs"))

    before = remediator.assess(target, finding(tags={}))
    assert not before.compliant and before.tags == {"team": "shop"}
    assert before.changes == [f"keep events of log group {GROUP} 365 days (was 30)"]
    remediator.apply(target, finding(), before)

    assert retention(logs) == 365
    after = remediator.assess(target, finding())
    assert after.compliant and remediator.changed_fields(before.pre_state, after.pre_state) == {
        "retentionInDays": 365}
    assert calls == ["DescribeLogGroups", "ListTagsForResource", "PutRetentionPolicy", "DescribeLogGroups"]
    assert [f["filterName"] for f in logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"]] == ["errors"]

    assert remediator.restore(target, finding(), before.pre_state)[0].startswith(
        f"set the retention of log group {GROUP} back to 30")
    assert remediator.restore(target, finding(), before.pre_state) == [
        f"log group {GROUP} already keeps events 30 days"]
    assert retention(logs) == 30
    # tag:GetResources: the engine's batched tag read (test_batched_tags_more.py)
    assert iam_actions(sessions.api_calls) == set(LogGroupRetention.permissions) - {
        "logs:DeleteRetentionPolicy", "tag:GetResources"}


@pytest.mark.parametrize("days", [None, 731])
def test_never_expiring_or_longer_retention_is_compliant(target: Target, logs, days) -> None:
    if days:
        logs.put_retention_policy(logGroupName=GROUP, retentionInDays=days)

    assert LogGroupRetention().assess(target, finding()).compliant
    assert retention(logs) == days


def test_missing_group_is_refused(target: Target, logs) -> None:
    with pytest.raises(RemediationError, match="log group /app/gone not found"):
        LogGroupRetention().assess(target, make_finding("CloudWatch.16", "AwsLogsLogGroup", "/app/gone"))


def test_group_name_from_an_arn() -> None:
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:*"
    assert log_group_name(make_finding("CloudWatch.16", "AwsLogsLogGroup", arn)) == GROUP
