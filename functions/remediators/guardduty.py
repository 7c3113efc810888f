"""GuardDuty remediators: GuardDuty enabled in the account and region (GuardDuty.1).

GuardDuty.1 fails where the account has no enabled detector in the region. The rule is disruptive because GuardDuty
costs money (billed on the CloudTrail, VPC flow log and DNS events it analyses), so it acts only with its own
`enforce`. A suspended detector is enabled again (its settings and findings kept) rather than joined by a new one;
a new detector is created with only Enable and the finding publishing frequency, so no optional protection plan is
chosen for the user. Rollback suspends the detector: charges stop, findings are kept (deleting the detector would
delete them, and is left to a person).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import Assessment, Grant, Param, RemediationError, Remediator, Rule


class GuardDutyEnabled(Remediator):
    """GuardDuty.1: enable the region's suspended detector, or create one.

    ListDetectors (a region holds at most one), then GetDetector for its status: two reads.
    """

    rules = (
        Rule(
            "GuardDuty.1",
            "GuardDuty should be enabled",
            disruptive=True,
            disruption="cost",
            because="GuardDuty bills the CloudTrail, VPC flow log and DNS events it analyses",
        ),
    )
    resource_types = ("AwsAccount", "AwsGuardDutyDetector")
    read_permissions = ("guardduty:ListDetectors", "guardduty:GetDetector")
    write_permissions = (
        "guardduty:CreateDetector",
        "guardduty:UpdateDetector",
        # The first detector of an account creates the service-linked role AWSServiceRoleForAmazonGuardDuty, which
        # IAM authorizes against the caller.
        "iam:CreateServiceLinkedRole",
    )
    restore_permissions = ("guardduty:UpdateDetector",)
    grants = (Grant(("iam:CreateServiceLinkedRole",),
                    conditions={"StringEquals": {"iam:AWSServiceName": "guardduty.amazonaws.com"}}),)
    reversible = True
    state_keys = ("Status",)
    params_schema = {
        "finding_publishing_frequency": Param(
            "SIX_HOURS", str, allowed=("FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"),
            description="how often a new detector exports updated findings (GuardDuty's default: SIX_HOURS)",
        ),
    }

    def assess(self, target: Target, finding: Finding) -> Assessment:
        detector_id, status = self._detector(target)
        state = {"DetectorId": detector_id, "Status": status}
        if status == "ENABLED":
            return Assessment(compliant=True, pre_state=state, context={"DetectorId": detector_id})
        where = f"account {target.account_id} ({target.api_region})"
        change = (f"enable the suspended GuardDuty detector {detector_id} in {where}" if detector_id
                  else f"create a GuardDuty detector in {where} (GuardDuty is billed by the events it analyses)")
        return Assessment(compliant=False, changes=[change], pre_state=state, context={"DetectorId": detector_id})

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        guardduty = target.client("guardduty")
        detector_id = assessment.context["DetectorId"]
        if detector_id:
            guardduty.update_detector(DetectorId=detector_id, Enable=True)
            return
        created = guardduty.create_detector(
            Enable=True, FindingPublishingFrequency=self.params["finding_publishing_frequency"])
        assessment.context["created"] = {"DetectorId": created["DetectorId"], "Region": target.api_region}

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        detector_id = (pre_state.get("created") or {}).get("DetectorId") or pre_state.get("DetectorId")
        if not detector_id:
            raise RemediationError("no GuardDuty detector recorded for this remediation: nothing to suspend")
        _, status = self._detector(target)
        if status != "ENABLED":
            return [f"GuardDuty detector {detector_id} is already suspended"]
        target.client("guardduty").update_detector(DetectorId=detector_id, Enable=False)
        return [f"suspended GuardDuty detector {detector_id} (findings kept; delete it by hand if it is not wanted)"]

    @staticmethod
    def _detector(target: Target) -> tuple[str | None, str]:
        """(detector id, ENABLED | DISABLED) of the region's detector, (None, NONE) when there is none."""
        guardduty = target.client("guardduty")
        ids = guardduty.list_detectors().get("DetectorIds", [])
        if not ids:
            return None, "NONE"
        return ids[0], str(guardduty.get_detector(DetectorId=ids[0]).get("Status", "DISABLED"))
