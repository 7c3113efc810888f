"""CloudWatch.1 to 14 against moto: for each control, a metric filter with the benchmark's pattern and an alarm to the
user's SNS topic appear on the multi-Region trail's log group, read back; a second assess is compliant; a filter
already there (other whitespace, other name) is reused, not duplicated; other filters survive; a topic nobody
confirmed is refused before anything is written; rollback deletes only what the run created."""

from __future__ import annotations

import json

import boto3
import pytest

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.cloudwatch import MONITORS, MonitoringAlarms, log_group_of, same_pattern
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, make_trail_bucket, record_calls, recorded_pre_state

GROUP = "aws-cloudtrail-logs"
TOPIC = "security-alerts"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}"
OTHER = {"filterName": "app-errors", "filterPattern": "ERROR",
         "metricTransformations": [{"metricName": "AppErrors", "metricNamespace": "App", "metricValue": "1"}]}


@pytest.fixture
def account(moto_aws):
    """A multi-Region trail delivering to a log group (with another filter on it) and a subscribed topic."""
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    logs.put_metric_filter(logGroupName=GROUP, **OTHER)
    group_arn = logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]["arn"]
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="trail-to-logs", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    boto3.client("cloudtrail", region_name=REGION).create_trail(
        Name="org-trail", S3BucketName=make_trail_bucket("trail-logs-cw"), IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=group_arn, CloudWatchLogsRoleArn=role)
    sns = boto3.client("sns", region_name=REGION)
    sns.create_topic(Name=TOPIC)
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.create_queue(QueueName="soc-inbox")
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:soc-inbox")
    return logs


def finding(rule_id: str):
    return make_finding(rule_id, "AwsAccount", f"AWS::::Account:{ACCOUNT}")


def filters(logs) -> dict[str, str]:
    return {f["filterName"]: f["filterPattern"] for f in logs.describe_metric_filters(logGroupName=GROUP)[
        "metricFilters"]}


def alarms() -> dict[str, dict]:
    found = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    return {a["AlarmName"]: a for a in found}


@pytest.mark.parametrize("monitor", MONITORS, ids=lambda m: m.rule_id)
def test_each_control_gets_its_filter_and_alarm(target: Target, account, monitor) -> None:
    remediator = MonitoringAlarms({"sns_topic": TOPIC})

    before = remediator.assess(target, finding(monitor.rule_id))
    assert not before.compliant and len(before.changes) == 2
    assert filters(account) == {"app-errors": "ERROR"}  # assess wrote nothing

    remediator.apply(target, finding(monitor.rule_id), before)

    assert filters(account) == {"app-errors": "ERROR", monitor.name: monitor.pattern}
    alarm = alarms()[f"cspm-{monitor.name}"]
    assert (alarm["MetricName"], alarm["Namespace"], alarm["AlarmActions"]) == (
        monitor.name, "CISBenchmark", [TOPIC_ARN])
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum", 1.0, "GreaterThanOrEqualToThreshold")
    after = remediator.assess(target, finding(monitor.rule_id))
    assert after.compliant and after.changes == []


def test_an_existing_filter_is_reused_and_only_the_alarm_is_created(target: Target, account) -> None:
    root = MONITORS[0]
    spaced = root.pattern.replace("&&", " && ").replace("{", "{ ").replace("}", " }")
    account.put_metric_filter(logGroupName=GROUP, filterName="root-use", filterPattern=spaced, metricTransformations=[
        {"metricName": "RootUse", "metricNamespace": "Security", "metricValue": "1"}])
    remediator = MonitoringAlarms({"sns_topic": TOPIC_ARN})
    calls = record_calls(target.client("logs"))

    assessment = remediator.assess(target, finding("CloudWatch.1"))
    assert assessment.changes == [f"create alarm cspm-{root.name} (Sum of Security/RootUse ≥ 1 in 5 minutes) "
                                  f"notifying {TOPIC_ARN}"]
    remediator.apply(target, finding("CloudWatch.1"), assessment)

    assert set(filters(account)) == {"app-errors", "root-use"}
    assert alarms()[f"cspm-{root.name}"]["MetricName"] == "RootUse"
    assert remediator.assess(target, finding("CloudWatch.1")).compliant
    assert calls == ["DescribeMetricFilters", "DescribeMetricFilters"]  # never PutMetricFilter


def test_a_topic_without_a_confirmed_subscription_is_refused_before_writing(target: Target, account) -> None:
    boto3.client("sns", region_name=REGION).create_topic(Name="nobody-listens")

    with pytest.raises(RemediationError, match=r"no confirmed subscription.*aws sns subscribe"):
        MonitoringAlarms({"sns_topic": "nobody-listens"}).assess(target, finding("CloudWatch.3"))
    assert filters(account) == {"app-errors": "ERROR"} and alarms() == {}


def test_without_a_topic_param_the_rule_says_which_param(target: Target, account) -> None:
    with pytest.raises(RemediationError, match=r"rules.CloudWatch.2.params.sns_topic"):
        MonitoringAlarms().assess(target, finding("CloudWatch.2"))


def test_without_cloudwatch_logs_delivery_it_points_to_cloudtrail_5(target: Target, moto_aws) -> None:
    boto3.client("cloudtrail", region_name=REGION).create_trail(
        Name="plain", S3BucketName=make_trail_bucket("trail-logs-plain"), IsMultiRegionTrail=True)

    with pytest.raises(RemediationError, match=r"CloudTrail\.5"):
        MonitoringAlarms({"sns_topic": TOPIC}).assess(target, finding("CloudWatch.1"))


def test_restore_deletes_only_what_it_created(target: Target, sessions: AssumedSessions, account) -> None:
    remediator = MonitoringAlarms({"sns_topic": TOPIC})
    assessment = remediator.assess(target, finding("CloudWatch.10"))
    remediator.apply(target, finding("CloudWatch.10"), assessment)

    lines = remediator.restore(target, finding("CloudWatch.10"), recorded_pre_state(assessment))

    assert lines == ["deleted alarm cspm-SecurityGroupChanges",
                     f"deleted metric filter SecurityGroupChanges of {GROUP}"]
    assert filters(account) == {"app-errors": "ERROR"} and alarms() == {}
    assert remediator.restore(target, finding("CloudWatch.10"), assessment.pre_state) == [
        "this remediation created no metric filter or alarm: nothing to delete"]
    remediator.assess(target, finding("CloudWatch.10"))  # the DescribeAlarmsForMetric path needs a filter first
    assert iam_actions(sessions.api_calls) >= set(MonitoringAlarms.permissions) - {"cloudwatch:DescribeAlarmsForMetric"}


def test_catalog_lists_all_fourteen_and_the_benchmark_numbers_are_data() -> None:
    assert all(f"CloudWatch.{n}" in CATALOG for n in range(1, 15))
    numbers = {m.rule_id: m.cis for m in MONITORS}
    assert numbers["CloudWatch.1"] == "4.3" and numbers["CloudWatch.2"] == "4.1" and numbers["CloudWatch.14"] == "4.14"


def test_helpers() -> None:
    assert same_pattern('{ $.a = "x" }', '{$.a="x"}') and not same_pattern("{$.a=1}", "{$.a=2}")
    arn = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:trail/logs:*"
    assert log_group_of({"CloudWatchLogsLogGroupArn": arn}) == ("trail/logs", "eu-west-1")
    assert log_group_of({}) is None
