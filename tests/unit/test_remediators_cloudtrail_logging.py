"""CloudTrail.7 TrailBucketAccessLogging against moto: server access logging on the trail bucket, to a private log
bucket created in the same region when missing; bucket and trail findings; rollback keeps the log bucket."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.cloudtrail import TrailBucketAccessLogging, access_log_bucket_policy
from functions.remediators.s3 import ALL_BLOCKED
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import (
    bucket_policy,
    create_trail,
    iam_actions,
    make_trail_bucket,
    record_calls,
    recorded_pre_state,
    trail_arn,
)

TRAIL_BUCKET = "cspm-trail-logs"
LOG_BUCKET = f"{TRAIL_BUCKET}-access-logs"
OTHER_REGION = "us-west-2"


def bucket_finding(bucket: str = TRAIL_BUCKET, **overrides: Any):
    return make_finding("CloudTrail.7", "AwsS3Bucket", bucket, **overrides)


def trail_finding(name: str = "audit", **overrides: Any):
    return make_finding("CloudTrail.7", "AwsCloudTrailTrail", name, **overrides)


def logging_of(bucket: str = TRAIL_BUCKET, region: str = REGION) -> dict[str, str] | None:
    """Independent read of the bucket's server access logging target."""
    return boto3.client("s3", region_name=region).get_bucket_logging(Bucket=bucket).get("LoggingEnabled")


def bucket_names() -> set[str]:
    return {b["Name"] for b in boto3.client("s3", region_name=REGION).list_buckets()["Buckets"]}


@pytest.fixture
def trail_bucket(moto_aws) -> str:
    return make_trail_bucket(TRAIL_BUCKET)


def test_trail_bucket_gets_access_logging_to_a_new_private_bucket(
    target: Target, sessions: AssumedSessions, trail_bucket: str
) -> None:
    remediator, finding = TrailBucketAccessLogging(), bucket_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"BucketName": TRAIL_BUCKET, "Region": REGION, "LoggingEnabled": None}
    assert [change.split(" (")[0] for change in before.changes] == [
        f"create S3 bucket {LOG_BUCKET}",
        f"turn on server access logging of bucket {TRAIL_BUCKET} to s3://{LOG_BUCKET}/{TRAIL_BUCKET}/",
    ]
    assert logging_of() is None and LOG_BUCKET not in bucket_names()

    remediator.apply(target, finding, before)

    assert logging_of() == {"TargetBucket": LOG_BUCKET, "TargetPrefix": f"{TRAIL_BUCKET}/"}
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_public_access_block(Bucket=LOG_BUCKET)["PublicAccessBlockConfiguration"] == ALL_BLOCKED
    rules = s3.get_bucket_encryption(Bucket=LOG_BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # logs support SSE-S3 only
    assert bucket_policy(LOG_BUCKET) == access_log_bucket_policy("aws", ACCOUNT, LOG_BUCKET)
    assert before.context["created"] == {"BucketName": LOG_BUCKET}
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []  # rerun: noop
    assert iam_actions(sessions.api_calls) == set(TrailBucketAccessLogging.permissions) - {
        "cloudtrail:DescribeTrails", "cloudtrail:ListTags"}


def test_a_trail_finding_means_the_trail_bucket(target: Target, sessions: AssumedSessions, trail_bucket: str) -> None:
    create_trail("audit", trail_bucket)
    remediator, finding = TrailBucketAccessLogging(), trail_finding(resource_arn=trail_arn("audit"))

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert logging_of()["TargetBucket"] == LOG_BUCKET
    assert remediator.assess(target, finding).compliant
    assert "cloudtrail:DescribeTrails" in iam_actions(sessions.api_calls)


def test_an_existing_target_bucket_is_used_as_it_is(target: Target, trail_bucket: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="central-access-logs")
    s3.put_bucket_policy(
        Bucket="central-access-logs",
        Policy=json.dumps(access_log_bucket_policy("aws", ACCOUNT, "central-access-logs")),
    )
    params = {"target_bucket": "central-access-logs", "target_prefix": "trail/"}
    remediator, finding = TrailBucketAccessLogging(params), bucket_finding()

    assessment = remediator.assess(target, finding)
    assert assessment.changes == [
        f"turn on server access logging of bucket {TRAIL_BUCKET} to s3://central-access-logs/trail/"
    ]
    remediator.apply(target, finding, assessment)

    assert logging_of() == {"TargetBucket": "central-access-logs", "TargetPrefix": "trail/"}
    assert "created" not in assessment.context


def test_a_logging_bucket_is_compliant(target: Target, trail_bucket: str) -> None:
    remediator, finding = TrailBucketAccessLogging(), bucket_finding()
    remediator.apply(target, finding, remediator.assess(target, finding))

    assessment = TrailBucketAccessLogging({"target_bucket": "somewhere-else"}).assess(target, finding)

    assert assessment.compliant and assessment.pre_state == {}


def test_assess_alone_changes_nothing(target: Target, trail_bucket: str) -> None:
    calls = record_calls(target.client("s3"))

    TrailBucketAccessLogging().assess(target, bucket_finding())

    assert calls == ["GetBucketLocation", "GetBucketTagging", "GetBucketLogging", "HeadBucket"]
    assert logging_of() is None and LOG_BUCKET not in bucket_names()


def test_the_log_bucket_is_made_in_the_region_of_the_trail_bucket(target: Target, moto_aws) -> None:
    """S3 delivers access logs only to a bucket of the same region."""
    make_trail_bucket(TRAIL_BUCKET, OTHER_REGION)
    remediator, finding = TrailBucketAccessLogging(), bucket_finding()

    remediator.apply(target, finding, remediator.assess(target, finding))

    west = boto3.client("s3", region_name=OTHER_REGION)
    assert west.get_bucket_location(Bucket=LOG_BUCKET)["LocationConstraint"] == OTHER_REGION
    assert logging_of(region=OTHER_REGION)["TargetBucket"] == LOG_BUCKET


def test_restore_turns_logging_off_and_keeps_the_log_bucket(
    target: Target, sessions: AssumedSessions, trail_bucket: str
) -> None:
    remediator, finding = TrailBucketAccessLogging(), bucket_finding()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    for _ in range(2):  # restoring twice is harmless
        lines = remediator.restore(target, finding, recorded_pre_state(assessment))
        assert logging_of() is None
    assert lines == [
        f"turned server access logging of bucket {TRAIL_BUCKET} off",
        f"kept log bucket {LOG_BUCKET} and the access logs in it",
    ]
    assert LOG_BUCKET in bucket_names()
    assert not remediator.assess(target, finding).compliant
    assert iam_actions(sessions.api_calls) <= set(TrailBucketAccessLogging.permissions)


def test_restore_without_a_recorded_state_is_refused(target: Target, trail_bucket: str) -> None:
    with pytest.raises(RemediationError, match="no previous logging state"):
        TrailBucketAccessLogging().restore(target, bucket_finding(), {})


def test_missing_bucket_is_a_remediation_error(target: Target, moto_aws) -> None:
    with pytest.raises(RemediationError, match="S3 bucket no-such-bucket-here does not exist"):
        TrailBucketAccessLogging().assess(target, bucket_finding("no-such-bucket-here"))


def test_a_default_log_bucket_name_over_63_characters_is_refused(target: Target, moto_aws) -> None:
    long_name = "cspm-" + "x" * 52  # 57 characters: valid, but "-access-logs" makes 69
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=long_name)

    with pytest.raises(RemediationError, match="set target_bucket for this rule"):
        TrailBucketAccessLogging().assess(target, bucket_finding(long_name))


def test_runbook_parameters() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"
    runbook = TrailBucketAccessLogging.runbook
    assert runbook is not None and runbook.document == "AWS-ConfigureS3BucketLogging"
    expected = {
        "BucketName": [TRAIL_BUCKET],
        "TargetBucket": [LOG_BUCKET],
        "TargetPrefix": [f"{TRAIL_BUCKET}/"],
        "GranteeType": ["Group"],
        "GranteeUri": ["http://acs.amazonaws.com/groups/s3/LogDelivery"],
        "GrantedPermission": ["READ"],
        "AutomationAssumeRole": [role],
    }
    assert runbook.parameters(bucket_finding(), role) == expected
    # A trail finding names its bucket in the ASFF resource details.
    details = {"AwsCloudTrailTrail": {"S3BucketName": TRAIL_BUCKET}}
    raw = {"Resources": [{"Type": "AwsCloudTrailTrail", "Details": details}]}
    assert runbook.parameters(trail_finding(raw=raw), role) == expected
    with pytest.raises(RemediationError, match="use executor boto3"):
        runbook.parameters(trail_finding(), role)


def test_declarations() -> None:
    (rule,) = TrailBucketAccessLogging.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("CloudTrail.7", ("3.4",), False)
    assert TrailBucketAccessLogging.resource_types == ("AwsS3Bucket", "AwsCloudTrailTrail")
    assert TrailBucketAccessLogging.reversible
