"""CloudWatch remediators: the CIS monitoring controls CloudWatch.1 to CloudWatch.14 (CIS v3.0.0 4.1 to 4.14).

Each control passes when the log group a multi-Region trail delivers to has a metric filter with the benchmark's
pattern, an alarm on that filter's metric, and the alarm notifies an SNS topic with at least one confirmed
subscription. One remediator serves all fourteen: the patterns are data (MONITORS, as Security Hub's control
reference and the CIS benchmark give them), the code is the same for each.

What it does, narrowly: it finds the trail's log group (DescribeTrails); a metric filter with the pattern already
there is reused (compared without whitespace), else one is created; an alarm already on that metric is reused, else
one is created that notifies the topic given in the params (`sns_topic`, a name or ARN: the topic is the user's,
never created here, because someone must subscribe to it and confirm). A topic without a confirmed subscription is
refused before anything is written: the control would keep failing. A trail not yet delivering to CloudWatch Logs
is CloudTrail.5's job and is refused with that reason. Rollback deletes only the filter and alarm this run created.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import Assessment, Param, RemediationError, Remediator, Rule


@dataclass(frozen=True)
class Monitor:
    """One CIS monitoring control: its Security Hub id and title, CIS v3.0.0 number, names, filter pattern."""

    rule_id: str
    title: str
    cis: str
    name: str  # the metric filter, metric and (with the prefix) alarm name
    pattern: str


def _any_event(*names: str, source: str = "") -> str:
    events = " || ".join(f"($.eventName={name})" for name in names)
    return f"{{($.eventSource={source}) && ({events})}}" if source else f"{{{events}}}"


MONITORS: tuple[Monitor, ...] = (
    Monitor("CloudWatch.1", "A log metric filter and alarm should exist for usage of the \"root\" user", "4.3",
            "RootAccountUsage",
            '{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}'),
    Monitor("CloudWatch.2", "A log metric filter and alarm should exist for unauthorized API calls", "4.1",
            "UnauthorizedAPICalls", '{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}'),
    Monitor("CloudWatch.3", "A log metric filter and alarm should exist for Management Console sign-in without MFA",
            "4.2", "ConsoleSigninWithoutMFA",
            '{($.eventName="ConsoleLogin") && ($.additionalEventData.MFAUsed !="Yes")}'),
    Monitor("CloudWatch.4", "A log metric filter and alarm should exist for IAM policy changes", "4.4",
            "IAMPolicyChanges", _any_event(
                "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
                "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
                "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy", "AttachGroupPolicy",
                "DetachGroupPolicy")),
    Monitor("CloudWatch.5", "A log metric filter and alarm should exist for CloudTrail configuration changes", "4.5",
            "CloudTrailChanges",
            _any_event("CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging")),
    Monitor("CloudWatch.6", "A log metric filter and alarm should exist for AWS Management Console authentication "
            "failures", "4.6", "ConsoleAuthenticationFailure",
            '{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}'),
    Monitor("CloudWatch.7", "A log metric filter and alarm should exist for disabling or scheduled deletion of "
            "customer managed keys", "4.7", "DisableOrDeleteCMK",
            _any_event("DisableKey", "ScheduleKeyDeletion", source="kms.amazonaws.com")),
    Monitor("CloudWatch.8", "A log metric filter and alarm should exist for S3 bucket policy changes", "4.8",
            "S3BucketPolicyChanges", _any_event(
                "PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle", "PutBucketReplication",
                "DeleteBucketPolicy", "DeleteBucketCors", "DeleteBucketLifecycle", "DeleteBucketReplication",
                source="s3.amazonaws.com")),
    Monitor("CloudWatch.9", "A log metric filter and alarm should exist for AWS Config configuration changes", "4.9",
            "AWSConfigChanges", _any_event(
                "StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel",
                "PutConfigurationRecorder", source="config.amazonaws.com")),
    Monitor("CloudWatch.10", "A log metric filter and alarm should exist for security group changes", "4.10",
            "SecurityGroupChanges", _any_event(
                "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
                "RevokeSecurityGroupEgress", "CreateSecurityGroup", "DeleteSecurityGroup")),
    Monitor("CloudWatch.11", "A log metric filter and alarm should exist for changes to Network Access Control Lists "
            "(NACL)", "4.11", "NetworkACLChanges", _any_event(
                "CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
                "ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation")),
    Monitor("CloudWatch.12", "A log metric filter and alarm should exist for changes to network gateways", "4.12",
            "NetworkGatewayChanges", _any_event(
                "CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway", "CreateInternetGateway",
                "DeleteInternetGateway", "DetachInternetGateway")),
    Monitor("CloudWatch.13", "A log metric filter and alarm should exist for route table changes", "4.13",
            "RouteTableChanges", _any_event(
                "CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation",
                "DeleteRouteTable", "DeleteRoute", "DisassociateRouteTable")),
    Monitor("CloudWatch.14", "A log metric filter and alarm should exist for VPC changes", "4.14",
            "VPCChanges", _any_event(
                "CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
                "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
                "AttachClassicLinkVpc", "DetachClassicLinkVpc", "DisableVpcClassicLink", "EnableVpcClassicLink")),
)
_BY_RULE = {monitor.rule_id: monitor for monitor in MONITORS}


def same_pattern(a: str, b: str) -> bool:
    """Filter patterns compared as CloudWatch Logs reads them: whitespace between tokens does not matter."""
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def log_group_of(trail: Mapping[str, Any]) -> tuple[str, str] | None:
    """(log group name, region) a trail delivers to, from CloudWatchLogsLogGroupArn; None without delivery."""
    arn = trail.get("CloudWatchLogsLogGroupArn") or ""
    match = re.match(r"arn:[\w-]+:logs:([\w-]+):\d{12}:log-group:(.+?)(:\*)?$", arn)
    return (match.group(2), match.group(1)) if match else None


class MonitoringAlarms(Remediator):
    """CloudWatch.1 to 14: a metric filter with the control's pattern on the multi-Region trail's log group, and an
    alarm on it to the user's SNS topic. Reads: DescribeTrails, DescribeMetricFilters, DescribeAlarmsForMetric (when
    the filter exists) and ListSubscriptionsByTopic (when something would be created)."""

    # Disruptive (cost) like every change that creates a billed resource: each alarm is billed (a standard-resolution
    # alarm, about $0.10 a month); the metric filters are free. Its params (the topic) are per rule anyway.
    # No `cis` on the rules: that field holds the numbers of AWS's CIS v3.0.0 standard, which has no CloudWatch
    # controls (Security Hub evaluates them under CIS v1.2.0 3.x and v1.4.0 4.x); the benchmark number is data here.
    rules = tuple(Rule(m.rule_id, m.title, disruptive=True, disruption="cost",
                       because="each CloudWatch alarm is billed") for m in MONITORS)
    resource_types = ("AwsAccount", "AwsLogsLogGroup", "AwsCloudTrailTrail")
    read_permissions = ("cloudtrail:DescribeTrails", "logs:DescribeMetricFilters", "cloudwatch:DescribeAlarmsForMetric",
                        "sns:ListSubscriptionsByTopic")
    write_permissions = ("logs:PutMetricFilter", "cloudwatch:PutMetricAlarm")
    restore_permissions = ("logs:DeleteMetricFilter", "cloudwatch:DeleteAlarms")
    reversible = True
    side_effects = "the SNS topic is notified whenever a matching event is delivered"
    params_schema = {
        "sns_topic": Param(None, str, pattern=r"(arn:aws[\w-]*:sns:[\w-]+:\d{12}:)?[\w-]{1,256}",
                           description="the SNS topic (name in each account, or ARN) the alarms notify; someone "
                                       "must have subscribed and confirmed"),
        "metric_namespace": Param("CISBenchmark", str, pattern=r"[^:$][^:]{0,254}"),
        "alarm_prefix": Param("cspm-", str, pattern=r"[\w.-]{0,64}"),
    }

    def assess(self, target: Target, finding: Finding) -> Assessment:
        monitor = self._monitor(finding)
        group, region = self._log_group(target)
        where = replace(target, region=region)
        filters = where.client("logs").describe_metric_filters(logGroupName=group).get("metricFilters", [])
        existing = next((f for f in filters if same_pattern(f.get("filterPattern", ""), monitor.pattern)), None)
        context: dict[str, Any] = {"logGroupName": group, "region": region}
        changes: list[str] = []
        if existing:
            transformation = existing["metricTransformations"][0]
            metric = (transformation["metricName"], transformation["metricNamespace"])
            alarms = where.client("cloudwatch").describe_alarms_for_metric(
                MetricName=metric[0], Namespace=metric[1]).get("MetricAlarms", [])
            notified = [a for t in (a.get("AlarmActions", []) for a in alarms) for a in t if ":sns:" in a]
            if notified and self._confirmed(where, notified):
                return Assessment(compliant=True, context=context)
        else:
            metric = (monitor.name, self.params["metric_namespace"])
            changes.append(f"create metric filter {monitor.name} ({monitor.pattern}) on log group {group} "
                           f"({region}), metric {metric[1]}/{metric[0]}")
            context["filter"] = {"filterName": monitor.name, "filterPattern": monitor.pattern,
                                 "metricTransformations": [{"metricName": metric[0], "metricNamespace": metric[1],
                                                            "metricValue": "1"}]}
        topic = self._topic(target, region, monitor)
        if not self._confirmed(where, [topic]):
            raise RemediationError(
                f"SNS topic {topic} has no confirmed subscription, so {monitor.rule_id} would still fail: subscribe "
                f"someone (aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint ADDRESS) "
                "and confirm, then run again")
        alarm = f"{self.params['alarm_prefix']}{monitor.name}"
        changes.append(f"create alarm {alarm} (Sum of {metric[1]}/{metric[0]} ≥ 1 in 5 minutes) notifying {topic}")
        context["alarm"] = {"AlarmName": alarm, "MetricName": metric[0], "Namespace": metric[1],
                            "AlarmActions": [topic]}
        return Assessment(compliant=False, changes=changes, pre_state={"LogGroupName": group, "Region": region},
                          context=context)

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        context = assessment.context
        where = replace(target, region=context["region"])
        created: dict[str, Any] = {"Region": context["region"]}
        if "filter" in context:
            where.client("logs").put_metric_filter(logGroupName=context["logGroupName"], **context["filter"])
            created["MetricFilter"] = {"logGroupName": context["logGroupName"],
                                       "filterName": context["filter"]["filterName"]}
            assessment.context["created"] = created
        alarm = context["alarm"]
        monitor = self._monitor(finding)
        description = f"{monitor.title} ({finding.rule_id}, CIS v3.0.0 {monitor.cis}, created by cspm-remediation)"
        where.client("cloudwatch").put_metric_alarm(
            **alarm, AlarmDescription=description,
            Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        )
        created["AlarmName"] = alarm["AlarmName"]
        assessment.context["created"] = created

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        created = pre_state.get("created") or {}
        if not created:
            return ["this remediation created no metric filter or alarm: nothing to delete"]
        where = replace(target, region=created["Region"])
        done = []
        if created.get("AlarmName"):
            where.client("cloudwatch").delete_alarms(AlarmNames=[created["AlarmName"]])
            done.append(f"deleted alarm {created['AlarmName']}")
        metric_filter = created.get("MetricFilter")
        if metric_filter:
            logs = where.client("logs")
            names = {f["filterName"] for f in logs.describe_metric_filters(
                logGroupName=metric_filter["logGroupName"]).get("metricFilters", [])}
            if metric_filter["filterName"] in names:
                logs.delete_metric_filter(**metric_filter)
                done.append(f"deleted metric filter {metric_filter['filterName']} of {metric_filter['logGroupName']}")
        return done

    @staticmethod
    def _monitor(finding: Finding) -> Monitor:
        monitor = _BY_RULE.get(finding.rule_id)
        if monitor is None:
            raise RemediationError(f"{finding.rule_id} is not a CloudWatch monitoring control")
        return monitor

    @staticmethod
    def _log_group(target: Target) -> tuple[str, str]:
        """The log group a multi-Region trail delivers to; one in the finding's region first."""
        trails = target.client("cloudtrail").describe_trails(includeShadowTrails=True).get("trailList", [])
        groups = [g for t in trails if t.get("IsMultiRegionTrail") and (g := log_group_of(t))]
        if not groups:
            raise RemediationError(
                f"no multi-Region trail of account {target.account_id} delivers to CloudWatch Logs: remediate "
                "CloudTrail.1 and CloudTrail.5 first (the metric filters need the trail's log group)")
        return sorted(groups, key=lambda g: g[1] != target.api_region)[0]

    def _topic(self, target: Target, region: str, monitor: Monitor) -> str:
        topic = self.params["sns_topic"]
        if not topic:
            raise RemediationError(
                f"{monitor.rule_id} needs rules.{monitor.rule_id}.params.sns_topic: the SNS topic (name or ARN) the "
                "alarm notifies, with a confirmed subscription")
        return topic if topic.startswith("arn:") else f"arn:{target.partition}:sns:{region}:{target.account_id}:{topic}"

    @staticmethod
    def _confirmed(where: Target, topics: list[str]) -> bool:
        """Whether any of the topics has a confirmed subscription (a pending one has no subscription ARN yet)."""
        sns = where.client("sns")
        for topic in dict.fromkeys(topics):
            try:
                subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", [])
            except sns.exceptions.NotFoundException:
                continue
            if any(s.get("SubscriptionArn", "").startswith("arn:") for s in subscriptions):
                return True
        return False
