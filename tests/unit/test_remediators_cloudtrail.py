"""CloudTrail.4 TrailLogFileValidation against moto: assess → apply → verify, home regions, refusals, rollback."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.cloudtrail import TrailLogFileValidation
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import (
    create_trail,
    iam_actions,
    make_trail_bucket,
    record_calls,
    recorded_pre_state,
    trail_arn,
)

BUCKET = "cspm-test-cloudtrail-logs"
OTHER_REGION = "us-west-2"


def trail_finding(name: str, **overrides):
    return make_finding("CloudTrail.4", "AwsCloudTrailTrail", name, **overrides)


def validation_enabled(name: str, region: str = REGION) -> bool:
    """Independent read of the trail in its home region."""
    return boto3.client("cloudtrail", region_name=region).get_trail(Name=name)["Trail"]["LogFileValidationEnabled"]


@pytest.fixture
def bucket(moto_aws) -> str:
    return make_trail_bucket(BUCKET)


@pytest.fixture
def trail(bucket: str) -> str:
    """A trail without log file validation: the CloudTrail.4 failure."""
    create_trail("audit", bucket, EnableLogFileValidation=False)
    return "audit"


def test_non_compliant_trail_is_remediated_and_verified(target: Target, trail: str) -> None:
    remediator = TrailLogFileValidation()
    finding = trail_finding(trail)
    calls = record_calls(target.client("cloudtrail"))

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"TrailARN": trail_arn(trail), "HomeRegion": REGION, "LogFileValidationEnabled": False}
    assert before.changes == [f"enable log file validation on trail {trail_arn(trail)}"]
    assert validation_enabled(trail) is False

    remediator.apply(target, finding, before)

    assert validation_enabled(trail) is True
    after = remediator.assess(target, finding)
    assert after.compliant
    assert after.changes == []
    # The declared permissions are exactly the actions called (tag:GetResources: the engine's batched tag read,
    # tests/unit/test_batched_tags.py).
    assert {f"cloudtrail:{name}" for name in calls} | {"tag:GetResources"} == set(TrailLogFileValidation.permissions)


def test_validated_trail_is_compliant(target: Target, bucket: str) -> None:
    create_trail("validated", bucket, EnableLogFileValidation=True)

    assessment = TrailLogFileValidation().assess(target, trail_finding("validated"))

    assert assessment.compliant
    assert assessment.changes == [] and assessment.pre_state == {}


def test_assess_alone_changes_nothing(target: Target, trail: str) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    calls = record_calls(target.client("cloudtrail"))
    snapshot = cloudtrail.describe_trails()["trailList"]

    TrailLogFileValidation().assess(target, trail_finding(trail))

    assert cloudtrail.describe_trails()["trailList"] == snapshot
    assert calls == ["DescribeTrails", "ListTags"]


def test_trail_named_by_arn(target: Target, trail: str) -> None:
    finding = trail_finding(trail, resource_arn=trail_arn(trail))

    assessment = TrailLogFileValidation().assess(target, finding)
    TrailLogFileValidation().apply(target, finding, assessment)

    assert validation_enabled(trail) is True


def test_multi_region_trail_is_updated_in_its_home_region(target: Target, bucket: str) -> None:
    create_trail("org-wide", bucket, region=OTHER_REGION, IsMultiRegionTrail=True)
    finding = trail_finding("org-wide", resource_arn=trail_arn("org-wide", OTHER_REGION))

    assessment = TrailLogFileValidation().assess(target, finding)  # target is us-east-1: a shadow trail
    assert not assessment.compliant
    assert assessment.context["HomeRegion"] == OTHER_REGION

    TrailLogFileValidation().apply(target, finding, assessment)

    assert validation_enabled("org-wide", OTHER_REGION) is True
    assert TrailLogFileValidation().assess(target, finding).compliant


def test_a_name_means_the_trail_homed_here_before_a_shadow_trail(target: Target, bucket: str) -> None:
    create_trail("audit", bucket, region=OTHER_REGION, IsMultiRegionTrail=True)
    create_trail("audit", bucket, EnableLogFileValidation=False)

    assessment = TrailLogFileValidation().assess(target, trail_finding("audit"))

    assert assessment.context == {"TrailARN": trail_arn("audit"), "HomeRegion": REGION}


def test_missing_trail_is_refused(target: Target, bucket: str) -> None:
    with pytest.raises(RemediationError, match="trail ghost not found"):
        TrailLogFileValidation().assess(target, trail_finding("ghost"))


def test_missing_trail_by_arn_is_refused_even_if_the_name_exists(target: Target, trail: str) -> None:
    stale = trail_arn(trail, OTHER_REGION)

    with pytest.raises(RemediationError, match=f"trail {stale} not found"):
        TrailLogFileValidation().assess(target, trail_finding(trail, resource_arn=stale))


@pytest.mark.stubber
def test_organization_trail_of_another_account_is_refused() -> None:
    """moto lists only the caller's own trails; the shadow of a management-account trail is stubbed."""
    management_arn = trail_arn("org-trail", account="999999999999")
    client = boto3.client("cloudtrail", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: client)
    shadow = {
        "Name": "org-trail",
        "TrailARN": management_arn,
        "HomeRegion": REGION,
        "IsOrganizationTrail": True,
        "LogFileValidationEnabled": False,
    }
    with Stubber(client) as stub:
        stub.add_response("describe_trails", {"trailList": [shadow]}, {"includeShadowTrails": True})
        with pytest.raises(RemediationError, match="belongs to account 999999999999"):
            TrailLogFileValidation().assess(target, trail_finding("org-trail", resource_arn=management_arn))
        stub.assert_no_pending_responses()


def test_runbook_parameters() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"
    runbook = TrailLogFileValidation.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-EnableCloudTrailLogFileValidation"

    by_arn = trail_finding("audit", resource_arn=trail_arn("audit"))
    assert runbook.parameters(by_arn, role) == {"TrailName": [trail_arn("audit")], "AutomationAssumeRole": [role]}
    assert runbook.parameters(trail_finding("audit"), role) == {"TrailName": ["audit"], "AutomationAssumeRole": [role]}


def test_declarations() -> None:
    (rule,) = TrailLogFileValidation.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("CloudTrail.4", ("3.2",), False)
    assert TrailLogFileValidation.resource_types == ("AwsCloudTrailTrail",)
    assert TrailLogFileValidation.reversible
    assert TrailLogFileValidation.executors() == ("boto3", "ssm")


def test_restore_disables_validation_again(target: Target, sessions: AssumedSessions, trail: str) -> None:
    remediator, finding = TrailLogFileValidation(), trail_finding(trail)
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    for _ in range(2):  # restoring twice is harmless
        lines = remediator.restore(target, finding, recorded_pre_state(assessment))
        assert validation_enabled(trail) is False
    assert lines == [f"disabled log file validation on trail {trail_arn(trail)} again (digests written stay)"]
    batched = {"tag:GetResources"}  # the engine's batched tag read (tests/unit/test_batched_tags.py)
    assert iam_actions(sessions.api_calls) | batched == set(TrailLogFileValidation.permissions)


def test_restore_of_a_multi_region_trail_happens_in_its_home_region(target: Target, bucket: str) -> None:
    create_trail("org-wide", bucket, region=OTHER_REGION, IsMultiRegionTrail=True)
    finding = trail_finding("org-wide", resource_arn=trail_arn("org-wide", OTHER_REGION))
    remediator = TrailLogFileValidation()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    remediator.restore(target, finding, recorded_pre_state(assessment))

    assert validation_enabled("org-wide", OTHER_REGION) is False


def test_restore_without_a_recorded_state_is_refused(target: Target, trail: str) -> None:
    with pytest.raises(RemediationError, match="no previous log file validation state"):
        TrailLogFileValidation().restore(target, trail_finding(trail), {})
