"""SSM remediators: documents not shared publicly (SSM.4).

SSM.4 fails for a document of this account shared with "All" (every AWS account). Only that public share is removed;
shares with named accounts stay. Disruptive (access): an account outside the organization that runs the document
loses it. Rollback shares it publicly again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, live_tags, tag_dict

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
    read_permissions = ("ssm:DescribeDocumentPermission", "ssm:ListTagsForResource")
    write_permissions = ("ssm:ModifyDocumentPermission",)
    restore_permissions = ("ssm:ModifyDocumentPermission",)
    reversible = True
    state_keys = ("Public",)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        name = document_name(finding)
        shared = self._shared_with(target, name)
        public = any(account.lower() == _PUBLIC for account in shared)
        if not public:
            return Assessment(compliant=True, pre_state={"Public": False}, context={"Name": name})
        ssm = target.client("ssm")
        tags = live_tags(finding, lambda: tag_dict(ssm.list_tags_for_resource(
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
