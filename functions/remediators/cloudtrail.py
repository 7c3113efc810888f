"""CloudTrail remediators."""

from __future__ import annotations

import dataclasses
from typing import Any

from connectors.arns import ArnError, parse_arn
from connectors.finding import Finding
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook
from functions.sessions import Target


def _log_validation_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    # The runbook takes a name or an ARN; the ARN is unambiguous across regions.
    return {"TrailName": [finding.resource_arn or finding.resource_id], "AutomationAssumeRole": [automation_role_arn]}


def _find_trail(trails: list[dict[str, Any]], finding: Finding, region: str) -> dict[str, Any] | None:
    """The trail the finding names: by ARN when the finding has one, else by name (or an ARN as resource_id).

    A local trail and another region's multi-Region trail may share a name: the one homed here wins.
    """
    if finding.resource_arn:
        matches = [t for t in trails if t.get("TrailARN") == finding.resource_arn]
    else:
        matches = [t for t in trails if finding.resource_id in (t.get("Name"), t.get("TrailARN"))]
        matches.sort(key=lambda t: t.get("HomeRegion") != region)
    return matches[0] if matches else None


def _arn_account(arn: str) -> str | None:
    try:
        return parse_arn(arn).account or None
    except ArnError:
        return None


class TrailLogFileValidation(Remediator):
    """CloudTrail.4: turn on log file integrity validation (signed hourly digests) for a trail.

    Only adds digest files next to the logs; turning it off again (EnableLogFileValidation=False) undoes it.
    """

    rules = (Rule("CloudTrail.4", "CloudTrail log file validation should be enabled", cis=("3.2",)),)
    resource_types = ("AwsCloudTrailTrail",)
    permissions = ("cloudtrail:DescribeTrails", "cloudtrail:UpdateTrail")
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-EnableCloudTrailLogFileValidation",
        parameters=_log_validation_parameters,
        permissions=(
            "ssm:StartAutomationExecution",
            "ssm:GetAutomationExecution",
            "cloudtrail:GetTrail",
            "cloudtrail:UpdateTrail",
        ),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        # No trailNameList: with a plain name AWS only matches trails homed in this region, and a multi-Region
        # trail may be reported in any region. All trails plus shadow trails is one call; we pick ours locally.
        trails = target.client("cloudtrail").describe_trails(includeShadowTrails=True)["trailList"]
        trail = _find_trail(trails, finding, target.api_region)
        if trail is None:
            raise RemediationError(f"trail {finding.resource_arn or finding.resource_id} not found")
        arn = trail["TrailARN"]
        owner = _arn_account(arn)
        if owner and owner != target.account_id:
            raise RemediationError(
                f"trail {arn} belongs to account {owner} (organization trail): it can only be updated there"
            )
        home_region = trail.get("HomeRegion") or target.api_region
        context = {"TrailARN": arn, "HomeRegion": home_region}
        if trail.get("LogFileValidationEnabled"):
            return Assessment(compliant=True, context=context)
        return Assessment(
            compliant=False,
            changes=[f"enable log file validation on trail {arn}"],
            pre_state={"LogFileValidationEnabled": False},
            context=context,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        # UpdateTrail must be called in the trail's home region (else InvalidHomeRegionException); the account's
        # session is the same, only the region differs.
        home = dataclasses.replace(target, region=assessment.context["HomeRegion"])
        home.client("cloudtrail").update_trail(Name=assessment.context["TrailARN"], EnableLogFileValidation=True)
