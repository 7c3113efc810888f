"""CloudWatch Logs remediators: log group retention of at least a year (CloudWatch.16).

CloudWatch.16 fails for a log group whose retention is shorter than the minimum (Security Hub's default: 365 days);
a group that never expires passes. The change only lengthens retention, so no event is deleted by it (events
older than the old retention are already gone); storage grows, which is billed. Rollback shortens it again (events
beyond the old retention are then deleted by CloudWatch Logs: said in the plan of the rollback, not done here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import Assessment, Param, RemediationError, Remediator, Rule
from functions.remediators.ec2 import RETENTION_DAYS


def log_group_name(finding: Finding) -> str:
    """The group name: the finding's id, or the name in a log group ARN (…:log-group:NAME or …:log-group:NAME:*)."""
    resource = finding.resource_id
    if ":log-group:" not in resource:
        return resource
    return resource.split(":log-group:", 1)[1].removesuffix(":*")


class LogGroupRetention(Remediator):
    """CloudWatch.16: raise a log group's retention to `min_retention_days` (one DescribeLogGroups to check)."""

    rules = (Rule("CloudWatch.16", "CloudWatch log groups should be retained for a specified period of time"),)
    resource_types = ("AwsLogsLogGroup",)
    read_permissions = ("logs:DescribeLogGroups", "logs:ListTagsForResource", "tag:GetResources")
    write_permissions = ("logs:PutRetentionPolicy",)
    restore_permissions = ("logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy")
    reversible = True
    not_restorable = "events older than the old retention that a rollback lets CloudWatch Logs delete"
    state_keys = ("retentionInDays",)
    side_effects = "events are kept longer (log storage is billed)"
    params_schema = {"min_retention_days": Param(365, int, allowed=tuple(d for d in sorted(RETENTION_DAYS) if d >= 365),
                                                 description="the retention set when it is shorter")}

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        """The group's ARN as GetResources names it (no trailing ":*")."""
        where = f"{target.partition}:logs:{target.api_region}:{target.account_id}"
        return f"arn:{where}:log-group:{log_group_name(finding)}"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        name = log_group_name(finding)
        group = self._describe(target, name)
        current = group.get("retentionInDays")  # absent: never expires
        state = {"retentionInDays": current}
        if current is None or current >= self.params["min_retention_days"]:
            return Assessment(compliant=True, pre_state=state, context={"logGroupName": name})
        logs = target.client("logs")
        arn = str(group.get("arn", "")).removesuffix(":*")
        tags = self.resource_tags(target, finding, lambda: logs.list_tags_for_resource(resourceArn=arn).get("tags", {}))
        wanted = self.params["min_retention_days"]
        return Assessment(compliant=False, changes=[f"keep events of log group {name} {wanted} days (was {current})"],
                          pre_state=state, tags=tags, context={"logGroupName": name, "retentionInDays": wanted})

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("logs").put_retention_policy(logGroupName=assessment.context["logGroupName"],
                                                   retentionInDays=assessment.context["retentionInDays"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        name, previous = log_group_name(finding), pre_state.get("retentionInDays")
        if self._describe(target, name).get("retentionInDays") == previous:
            return [f"log group {name} already keeps events {previous or 'forever'} days"]
        logs = target.client("logs")
        if previous is None:
            logs.delete_retention_policy(logGroupName=name)
        else:
            logs.put_retention_policy(logGroupName=name, retentionInDays=previous)
        return [f"set the retention of log group {name} back to {previous or 'never expire'} (CloudWatch Logs "
                "deletes events older than that)"]

    @staticmethod
    def _describe(target: Target, name: str) -> dict[str, Any]:
        groups: list[dict[str, Any]] = target.client("logs").describe_log_groups(logGroupNamePrefix=name).get(
            "logGroups", [])
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            raise RemediationError(f"log group {name} not found")
        return group
