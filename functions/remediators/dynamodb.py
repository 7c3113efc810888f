"""DynamoDB remediators: table deletion protection (DynamoDB.6).

Deletion protection only refuses DeleteTable until it is turned off again: reads, writes, capacity and backups are
untouched. What it can stop is a deliberate deletion by a pipeline (a CloudFormation stack delete fails on the
table), so the plan says so; turning it off again is the rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, tag_dict


def table_name(finding: Finding) -> str:
    """The table name: the finding's id, or the last part of a table ARN (arn:…:dynamodb:r:a:table/NAME)."""
    resource = finding.resource_id
    return resource.split(":table/", 1)[1].split("/", 1)[0] if ":table/" in resource else resource


class TableDeletionProtection(Remediator):
    """DynamoDB.6: turn on DeletionProtectionEnabled (one UpdateTable carrying only that setting).

    One DescribeTable reads the setting (and the ARN the tag read needs); the table's tags (ListTagsOfResource,
    or the engine's batched tag read) only for a table that would change and whose finding carries none.
    """

    rules = (Rule("DynamoDB.6", "DynamoDB tables should have deletion protection enabled"),)
    resource_types = ("AwsDynamoDbTable",)
    read_permissions = ("dynamodb:DescribeTable", "dynamodb:ListTagsOfResource", "tag:GetResources")
    write_permissions = ("dynamodb:UpdateTable",)
    restore_permissions = ("dynamodb:UpdateTable",)
    reversible = True
    side_effects = "deleting the table (a stack delete too) needs deletion protection turned off first"
    state_keys = ("DeletionProtectionEnabled",)

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return f"arn:{target.partition}:dynamodb:{target.api_region}:{target.account_id}:table/{table_name(finding)}"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        name = table_name(finding)
        table = self._describe(target, name)
        state = {"DeletionProtectionEnabled": bool(table.get("DeletionProtectionEnabled"))}
        if state["DeletionProtectionEnabled"]:
            return Assessment(compliant=True, pre_state=state, context={"TableName": name})
        dynamodb = target.client("dynamodb")
        tags = self.resource_tags(target, finding, lambda: tag_dict(
            dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])))
        return Assessment(
            compliant=False,
            changes=[f"turn on deletion protection of DynamoDB table {name} (a stack or script deleting it must "
                     "turn it off first)"],
            pre_state=state,
            tags=tags,
            context={"TableName": name},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._set(target, assessment.context["TableName"], True)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        name, previous = table_name(finding), bool(pre_state["DeletionProtectionEnabled"])
        if bool(self._describe(target, name).get("DeletionProtectionEnabled")) == previous:
            return [f"deletion protection of DynamoDB table {name} is already {previous}"]
        self._set(target, name, previous)
        return [f"set deletion protection of DynamoDB table {name} back to {previous}"]

    @staticmethod
    def _set(target: Target, name: str, enabled: bool) -> None:
        try:
            target.client("dynamodb").update_table(TableName=name, DeletionProtectionEnabled=enabled)
        except ClientError as error:
            if aws_error_code(error) == "ResourceInUseException":  # another update is in progress
                raise RemediationError(f"DynamoDB table {name} is being updated: try again later") from error
            raise

    @staticmethod
    def _describe(target: Target, name: str) -> dict[str, Any]:
        try:
            table: dict[str, Any] = target.client("dynamodb").describe_table(TableName=name)["Table"]
            return table
        except ClientError as error:
            if aws_error_code(error) == "ResourceNotFoundException":
                raise RemediationError(f"DynamoDB table {name} not found") from error
            raise
