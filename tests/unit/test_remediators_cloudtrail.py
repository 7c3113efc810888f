"""CloudTrail.4 TrailLogFileValidation against moto: assess → apply → verify, home regions, refusals."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from functions.remediators.base import RemediationError
from functions.remediators.cloudtrail import TrailLogFileValidation
from functions.sessions import Target
from tests.factories import ACCOUNT, REGION, make_finding

BUCKET = "cspm-test-cloudtrail-logs"
OTHER_REGION = "us-west-2"


def trail_finding(name: str, **overrides):
    return make_finding("CloudTrail.4", "AwsCloudTrailTrail", name, **overrides)


def trail_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"


def record_calls(client) -> list[str]:
    """Operation names the client sends from now on."""
    calls: list[str] = []
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


def validation_enabled(name: str, region: str = REGION) -> bool:
    """Independent read of the trail in its home region."""
    return boto3.client("cloudtrail", region_name=region).get_trail(Name=name)["Trail"]["LogFileValidationEnabled"]


@pytest.fixture
def bucket(moto_aws) -> str:
    """A log bucket with the policy CloudTrail requires (moto itself only checks that the bucket exists)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": f"arn:aws:s3:::{BUCKET}",
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    return BUCKET


def create_trail(name: str, bucket: str, region: str = REGION, **kwargs) -> None:
    boto3.client("cloudtrail", region_name=region).create_trail(Name=name, S3BucketName=bucket, **kwargs)


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
    assert before.pre_state == {"LogFileValidationEnabled": False}
    assert before.changes == [f"enable log file validation on trail {trail_arn(trail)}"]
    assert validation_enabled(trail) is False

    remediator.apply(target, finding, before)

    assert validation_enabled(trail) is True
    after = remediator.assess(target, finding)
    assert after.compliant
    assert after.changes == []
    # The declared permissions are exactly the actions called.
    assert {f"cloudtrail:{name}" for name in calls} == set(TrailLogFileValidation.permissions)


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
    assert calls == ["DescribeTrails"]


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
