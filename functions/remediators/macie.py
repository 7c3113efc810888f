"""Macie remediators: Amazon Macie enabled in the account and region (Macie.1).

Macie.1 fails where Macie is not enabled. The rule is disruptive (cost): Macie bills the S3 buckets it monitors
and the data it inspects. A paused Macie is resumed (its jobs, findings and settings kept) rather than enabled anew;
otherwise EnableMacie with only the status and the finding publishing frequency. Rollback pauses Macie again:
charges for monitoring stop and nothing is deleted (DisableMacie would delete its findings and configuration, so it
is left to a person).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, Grant, Param, RemediationError, Remediator, Rule

# GetMacieSession answers these while Macie is not enabled (AccessDenied: "Macie is not enabled").
_NOT_ENABLED = ("ResourceNotFoundException", "AccessDeniedException")


class MacieEnabled(Remediator):
    """Macie.1: resume a paused Macie, or enable it (one GetMacieSession to check)."""

    rules = (Rule("Macie.1", "Amazon Macie should be enabled", disruptive=True, disruption="cost",
                  because="Macie bills the S3 buckets it monitors and the objects it inspects"),)
    resource_types = ("AwsAccount",)
    read_permissions = ("macie2:GetMacieSession",)
    write_permissions = (
        "macie2:EnableMacie",
        "macie2:UpdateMacieSession",
        # The first EnableMacie of an account creates the service-linked role AWSServiceRoleForAmazonMacie.
        "iam:CreateServiceLinkedRole",
    )
    restore_permissions = ("macie2:UpdateMacieSession",)
    grants = (Grant(("iam:CreateServiceLinkedRole",),
                    conditions={"StringEquals": {"iam:AWSServiceName": "macie.amazonaws.com"}}),)
    reversible = True
    state_keys = ("Status",)
    params_schema = {
        "finding_publishing_frequency": Param("FIFTEEN_MINUTES", str,
                                              allowed=("FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS")),
    }

    def assess(self, target: Target, finding: Finding) -> Assessment:
        status = self._status(target)
        if status == "ENABLED":
            return Assessment(compliant=True, pre_state={"Status": status})
        where = f"account {target.account_id} ({target.api_region})"
        change = (f"resume the paused Amazon Macie of {where}" if status == "PAUSED"
                  else f"enable Amazon Macie in {where} (billed by the buckets it monitors)")
        return Assessment(compliant=False, changes=[change], pre_state={"Status": status})

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        macie = target.client("macie2")
        if assessment.pre_state["Status"] == "PAUSED":
            macie.update_macie_session(status="ENABLED")
        else:
            macie.enable_macie(status="ENABLED",
                               findingPublishingFrequency=self.params["finding_publishing_frequency"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if pre_state.get("Status") not in ("PAUSED", "NONE"):
            raise RemediationError(f"Macie of account {target.account_id} was enabled before: nothing to undo")
        if self._status(target) != "ENABLED":
            return [f"Amazon Macie of account {target.account_id} is already paused or off"]
        target.client("macie2").update_macie_session(status="PAUSED")
        return [f"paused Amazon Macie of account {target.account_id} ({target.api_region}): findings and settings "
                "kept; disable it by hand to delete them"]

    @staticmethod
    def _status(target: Target) -> str:
        try:
            return str(target.client("macie2").get_macie_session().get("status", "NONE"))
        except ClientError as error:
            if aws_error_code(error) in _NOT_ENABLED:
                return "NONE"
            raise
