"""CloudTrail remediators: trail delivering to CloudWatch Logs (CloudTrail.5).

CloudTrail.5 fails for a trail whose CloudWatchLogsLogGroupArn is empty. The change: a log group for the trail in
its home region (`log_group_prefix` + trail name, with a retention so it does not grow forever), and UpdateTrail
naming it and the delivery role CloudTrail assumes to write there. The role is the one the target template creates
for this rule (ServiceRole below, AWS's documented CloudTrail-to-CloudWatch-Logs policy), so apply only passes it.

Disruptive (cost): CloudWatch Logs bills the ingestion and storage of every event the trail delivers. The S3
delivery, event selectors, encryption and every other trail setting are untouched. Rollback stops the delivery
again; the log group is kept, because it holds the events delivered meanwhile (deleting it is left to a person).
The CIS monitoring controls (CloudWatch.1 to 14, functions/remediators/cloudwatch.py) build on this log group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import ROLE_NAME, Assessment, Param, RemediationError, Remediator, Rule, ServiceRole
from functions.remediators.cloudtrail import resolve_trail, trail_tags
from functions.remediators.ec2 import RETENTION_DAYS


class TrailCloudWatchLogs(Remediator):
    """CloudTrail.5: deliver the trail's events to a CloudWatch Logs group as well as to S3.

    Reads: DescribeTrails (the trail and its home region), ListTags when the finding carries no tags, and
    DescribeLogGroups for a trail that would change (an existing group of that name is reused, never modified).
    """

    rules = (Rule("CloudTrail.5", "CloudTrail trails should be integrated with Amazon CloudWatch Logs",
                  disruptive=True, disruption="cost",
                  because="CloudWatch Logs bills the ingestion and storage of every event the trail delivers"),)
    resource_types = ("AwsCloudTrailTrail",)
    read_permissions = ("cloudtrail:DescribeTrails", "cloudtrail:ListTags", "logs:DescribeLogGroups")
    write_permissions = ("logs:CreateLogGroup", "logs:PutRetentionPolicy", "cloudtrail:UpdateTrail")
    restore_permissions = ("cloudtrail:UpdateTrail",)
    reversible = True
    side_effects = "events also go to a CloudWatch Logs group (kept at rollback: it holds the delivered events)"
    params_schema = {
        "log_group_prefix": Param("/cspm-remediation/cloudtrail/", str, pattern=r"[\w#/.-]{1,384}",
                                  description="the log group is this prefix and the trail's name"),
        "retention_days": Param(365, int, allowed=tuple(sorted(RETENTION_DAYS))),
        "delivery_role_name": Param("CSPMRemediationCloudTrailDelivery", str, pattern=ROLE_NAME),
    }
    # AWS's documented role for CloudTrail to write its log streams, limited to the groups this rule creates.
    service_roles = (ServiceRole(
        logical_id="TrailToLogsDeliveryRole",
        name_param="delivery_role_name",
        service="cloudtrail.amazonaws.com",
        statements=(
            (("logs:CreateLogStream", "logs:PutLogEvents"),
             ("arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:{log_group_prefix}*",)),
        ),
    ),)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        trail = resolve_trail(target, finding)
        arn, home = trail["TrailARN"], trail.get("HomeRegion") or target.api_region
        tags = trail_tags(target, finding, trail)
        state = {"TrailARN": arn, "HomeRegion": home, "CloudWatchLogsLogGroupArn": trail.get(
            "CloudWatchLogsLogGroupArn") or "", "CloudWatchLogsRoleArn": trail.get("CloudWatchLogsRoleArn") or ""}
        if state["CloudWatchLogsLogGroupArn"]:
            return Assessment(compliant=True, tags=tags, pre_state=state, context=state)
        group = f"{self.params['log_group_prefix']}{trail['Name']}"
        logs = replace(target, region=home).client("logs")
        exists = any(g["logGroupName"] == group
                     for g in logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", []))
        role = f"arn:{target.partition}:iam::{target.account_id}:role/{self.params['delivery_role_name']}"
        changes = [] if exists else [
            f"create log group {group} in {home} (retention {self.params['retention_days']} days)"]
        changes.append(f"deliver trail {arn} to log group {group} with role {role}")
        return Assessment(
            compliant=False, changes=changes, tags=tags, pre_state=state,
            context={**state, "group": group, "create_group": not exists, "role": role,
                     "group_arn": f"arn:{target.partition}:logs:{home}:{target.account_id}:log-group:{group}:*"},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        context = assessment.context
        home = replace(target, region=context["HomeRegion"])
        if context["create_group"]:
            logs = home.client("logs")
            logs.create_log_group(logGroupName=context["group"])
            logs.put_retention_policy(logGroupName=context["group"], retentionInDays=self.params["retention_days"])
            assessment.context["created"] = {"LogGroup": context["group"], "Region": context["HomeRegion"]}
        home.client("cloudtrail").update_trail(Name=context["TrailARN"], CloudWatchLogsLogGroupArn=context["group_arn"],
                                               CloudWatchLogsRoleArn=context["role"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if "TrailARN" not in pre_state or pre_state.get("CloudWatchLogsLogGroupArn"):
            raise RemediationError(f"no previous CloudWatch Logs state recorded for trail {finding.resource_id}")
        trail = resolve_trail(target, finding)
        if not trail.get("CloudWatchLogsLogGroupArn"):
            return [f"trail {pre_state['TrailARN']} already delivers to S3 only"]
        replace(target, region=pre_state["HomeRegion"]).client("cloudtrail").update_trail(
            Name=pre_state["TrailARN"], CloudWatchLogsLogGroupArn="", CloudWatchLogsRoleArn="")
        kept = (pre_state.get("created") or {}).get("LogGroup")
        note = f" (log group {kept} kept: it holds the delivered events)" if kept else ""
        return [f"stopped CloudWatch Logs delivery of trail {pre_state['TrailARN']}{note}"]
