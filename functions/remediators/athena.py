"""Athena remediators: workgroup publishes query metrics to CloudWatch (Athena.4).

Athena.4 fails for a workgroup with PublishCloudWatchMetricsEnabled false. Only that setting changes (one
UpdateWorkGroup with just it): the result location, encryption, engine version and limits stay. Rollback turns it
off again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, tag_dict


def workgroup_name(finding: Finding) -> str:
    resource = finding.resource_id
    return resource.split(":workgroup/", 1)[1] if ":workgroup/" in resource else resource


class WorkGroupMetrics(Remediator):
    """Athena.4: PublishCloudWatchMetricsEnabled=true (one GetWorkGroup to check)."""

    rules = (Rule("Athena.4", "Athena workgroups should have logging enabled"),)
    resource_types = ("AwsAthenaWorkGroup",)
    read_permissions = ("athena:GetWorkGroup", "athena:ListTagsForResource", "tag:GetResources")
    write_permissions = ("athena:UpdateWorkGroup",)
    restore_permissions = ("athena:UpdateWorkGroup",)
    reversible = True
    state_keys = ("PublishCloudWatchMetricsEnabled",)
    side_effects = "query metrics of the workgroup appear in CloudWatch (namespace AWS/Athena)"

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        where = f"{target.partition}:athena:{target.api_region}:{target.account_id}"
        return f"arn:{where}:workgroup/{workgroup_name(finding)}"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        name = workgroup_name(finding)
        enabled = self._enabled(target, name)
        state = {"PublishCloudWatchMetricsEnabled": enabled}
        if enabled:
            return Assessment(compliant=True, pre_state=state, context={"name": name})
        arn = str(self.tagging_arn(target, finding))
        athena = target.client("athena")
        tags = self.resource_tags(target, finding, lambda: tag_dict(
            athena.list_tags_for_resource(ResourceARN=arn).get("Tags", [])))
        return Assessment(compliant=False, pre_state=state, tags=tags, context={"name": name},
                          changes=[f"publish query metrics of Athena workgroup {name} to CloudWatch"])

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._set(target, assessment.context["name"], True)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        name, previous = workgroup_name(finding), bool(pre_state["PublishCloudWatchMetricsEnabled"])
        if self._enabled(target, name) == previous:
            return [f"PublishCloudWatchMetricsEnabled of Athena workgroup {name} is already {previous}"]
        self._set(target, name, previous)
        return [f"set PublishCloudWatchMetricsEnabled back to {previous} on Athena workgroup {name}"]

    @staticmethod
    def _set(target: Target, name: str, value: bool) -> None:
        target.client("athena").update_work_group(
            WorkGroup=name, ConfigurationUpdates={"PublishCloudWatchMetricsEnabled": value})

    @staticmethod
    def _enabled(target: Target, name: str) -> bool:
        try:
            group = target.client("athena").get_work_group(WorkGroup=name)["WorkGroup"]
        except ClientError as error:
            if aws_error_code(error) == "InvalidRequestException":
                raise RemediationError(f"Athena workgroup {name} not found") from error
            raise
        return bool(group.get("Configuration", {}).get("PublishCloudWatchMetricsEnabled"))
