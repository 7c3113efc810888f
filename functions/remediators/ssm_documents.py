"""SSM remediators: documents not shared publicly (SSM.4).

SSM.4 fails for a document of this account shared with "All" (every AWS account). Only that public share is removed;
shares with named accounts stay. Disruptive (access): an account outside the organization that runs the document
loses it. Rollback shares it publicly again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, tag_dict

_PUBLIC = "all"  # how SSM names the public share in AccountIds (compared case-insensitively)


def document_name(finding: Finding) -> str:
    """The document name: the finding's id, or the part after `document/` in an SSM document ARN."""
    resource = finding.resource_id
    return resource.split(":document/", 1)[1] if ":document/" in resource else resource


class DocumentNotPublic(Remediator):
    """SSM.4: remove the public share of a document (one DescribeDocumentPermission to check)."""

    rules = (Rule("SSM.4", "SSM documents should not be public", disruptive=True, disruption="access",
                  because="accounts outside the organization that run the document lose it"),)
    resource_types = ("AwsSsmDocument",)
    read_permissions = ("ssm:DescribeDocumentPermission", "ssm:ListTagsForResource", "tag:GetResources")
    write_permissions = ("ssm:ModifyDocumentPermission",)
    restore_permissions = ("ssm:ModifyDocumentPermission",)
    reversible = True
    state_keys = ("Public",)

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return f"arn:{target.partition}:ssm:{target.api_region}:{target.account_id}:document/{document_name(finding)}"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        name = document_name(finding)
        shared = self._shared_with(target, name)
        public = any(account.lower() == _PUBLIC for account in shared)
        if not public:
            return Assessment(compliant=True, pre_state={"Public": False}, context={"Name": name})
        ssm = target.client("ssm")
        tags = self.resource_tags(target, finding, lambda: tag_dict(ssm.list_tags_for_resource(
            ResourceType="Document", ResourceId=name).get("TagList", [])))
        others = sorted(a for a in shared if a.lower() != _PUBLIC)
        kept = f" (still shared with {', '.join(others)})" if others else ""
        return Assessment(compliant=False, changes=[f"stop sharing SSM document {name} publicly{kept}"],
                          pre_state={"Public": True}, tags=tags, context={"Name": name})

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("ssm").modify_document_permission(
            Name=assessment.context["Name"], PermissionType="Share", AccountIdsToRemove=["All"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        name = document_name(finding)
        if pre_state.get("Public") is not True:
            raise RemediationError(f"SSM document {name} was not public before: nothing to undo")
        if any(a.lower() == _PUBLIC for a in self._shared_with(target, name)):
            return [f"SSM document {name} is already public"]
        target.client("ssm").modify_document_permission(Name=name, PermissionType="Share", AccountIdsToAdd=["All"])
        return [f"shared SSM document {name} publicly again"]

    @staticmethod
    def _shared_with(target: Target, name: str) -> list[str]:
        try:
            response = target.client("ssm").describe_document_permission(Name=name, PermissionType="Share")
        except ClientError as error:
            if aws_error_code(error) == "InvalidDocument":
                raise RemediationError(f"SSM document {name} not found") from error
            raise
        return list(response.get("AccountIds", []))


PUBLIC_SHARING_SETTING = "/ssm/documents/console/public-sharing-permission"


class BlockPublicSharing(Remediator):
    """SSM.7: turn on the account's block public sharing setting for documents (the service setting
    /ssm/documents/console/public-sharing-permission = Disable) in the finding's region.

    Documents shared publicly already stay shared (SSM.4 removes that); sharing with named accounts is unaffected.
    One GetServiceSetting to check; rollback sets it back to Enable.
    """

    rules = (Rule("SSM.7", "SSM documents should have the block public sharing setting enabled"),)
    resource_types = ("AwsAccount",)
    read_permissions = ("ssm:GetServiceSetting",)
    write_permissions = ("ssm:UpdateServiceSetting",)
    restore_permissions = ("ssm:UpdateServiceSetting",)
    reversible = True
    state_keys = ("SettingValue",)
    side_effects = "nobody in the account can share a document publicly until the setting is turned off again"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        value = self._value(target)
        if value == "Disable":
            return Assessment(compliant=True, pre_state={"SettingValue": value})
        return Assessment(compliant=False, pre_state={"SettingValue": value},
                          changes=[f"block public sharing of SSM documents in account {target.account_id} "
                                   f"({target.api_region})"])

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("ssm").update_service_setting(SettingId=PUBLIC_SHARING_SETTING, SettingValue="Disable")

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        previous = pre_state.get("SettingValue")
        if previous not in ("Enable", "Disable"):
            raise RemediationError("no previous public sharing setting recorded")
        if self._value(target) == previous:
            return [f"public sharing setting of SSM documents is already {previous}"]
        target.client("ssm").update_service_setting(SettingId=PUBLIC_SHARING_SETTING, SettingValue=previous)
        return [f"set the public sharing setting of SSM documents back to {previous}"]

    @staticmethod
    def _value(target: Target) -> str:
        setting = target.client("ssm").get_service_setting(SettingId=PUBLIC_SHARING_SETTING)["ServiceSetting"]
        return str(setting.get("SettingValue", "Enable"))
