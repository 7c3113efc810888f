"""S3.4 BucketDefaultEncryption against moto: SSE-S3 where a bucket has no default encryption, nothing else.

moto (unlike AWS since January 2023) gives a new bucket no default encryption: GetBucketEncryption answers
ServerSideEncryptionConfigurationNotFoundError, which is the non-compliant state this rule fixes.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.s3_encryption import BucketDefaultEncryption
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import bucket_policy, iam_actions

BUCKET = "cspm-sse-bucket"
ARN = f"arn:aws:s3:::{BUCKET}"
KMS = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/app"},
                  "BucketKeyEnabled": True}]}
APP_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Sid": "ReadFromApp", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "s3:GetObject", "Resource": f"{ARN}/*"}]}
DENY_UNENCRYPTED = {"Sid": "DenyUnencrypted", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                    "Resource": f"{ARN}/*", "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}


def sse_finding(bucket: str = BUCKET, **overrides: Any):
    return make_finding("S3.4", "AwsS3Bucket", bucket, **overrides)


@pytest.fixture
def s3(moto_aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(APP_POLICY))
    return client


def encryption(s3: Any) -> dict[str, Any] | None:
    try:
        return s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    except s3.exceptions.ClientError:
        return None


def test_bucket_without_default_encryption_gets_sse_s3_and_keeps_the_rest(
    target: Target, sessions: AssumedSessions, s3: Any
) -> None:
    remediator, finding = BucketDefaultEncryption(), sse_finding()
    assert encryption(s3) is None  # moto: a new bucket has none (AWS now gives every bucket SSE-S3)

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"ServerSideEncryptionConfiguration": None}
    assert before.tags == {"team": "data"}  # read live: the finding carries none
    remediator.apply(target, finding, before)

    algorithm = encryption(s3)["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert algorithm == "AES256"
    after = remediator.assess(target, finding)
    assert after.compliant
    assert remediator.changed_fields(before.pre_state, after.pre_state) == {"SSEAlgorithm": "AES256"}
    # what must survive: the bucket's policy and tags
    assert bucket_policy(BUCKET) == APP_POLICY
    assert s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"] == [{"Key": "team", "Value": "data"}]
    assert iam_actions(sessions.api_calls) <= set(remediator.permissions)


def test_a_kms_configuration_is_compliant_and_never_replaced(target: Target, s3: Any) -> None:
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration=KMS)
    remediator = BucketDefaultEncryption()

    assessment = remediator.assess(target, sse_finding())

    assert assessment.compliant
    with pytest.raises(RemediationError, match="left as is"):  # even if asked to, apply does not overwrite it
        remediator.apply(target, sse_finding(), assessment)
    assert encryption(s3) == KMS


def test_a_policy_refusing_unencrypted_uploads_passes_without_a_write(target: Target, s3: Any) -> None:
    policy = {**APP_POLICY, "Statement": [*APP_POLICY["Statement"], DENY_UNENCRYPTED]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))

    assert BucketDefaultEncryption().assess(target, sse_finding()).compliant
    narrowed = {**DENY_UNENCRYPTED, "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({**APP_POLICY, "Statement": [narrowed]}))
    assert not BucketDefaultEncryption().assess(target, sse_finding()).compliant  # one principal only: not enough


def test_through_the_engine_apply_then_noop_and_rollback_removes_what_it_set(s3: Any) -> None:
    config = config_from_dict({"rules": {"S3.4": {"mode": "enforce"}}})
    (planned,) = Engine(config_from_dict({}), AssumedSessions(), stage="plan").run([sse_finding()])
    assert planned.outcome == "planned"
    assert encryption(s3) is None  # dry-run wrote nothing

    (done,) = Engine(config, AssumedSessions(), stage="apply").run([sse_finding()])
    assert (done.outcome, done.post_state) == ("remediated", {"SSEAlgorithm": "AES256"})
    (again,) = Engine(config, AssumedSessions(), stage="apply").run([sse_finding(last_observed="2026-12-03")])
    assert again.outcome == "noop"

    target = AssumedSessions().target(ACCOUNT, REGION)
    assert BucketDefaultEncryption().restore(target, sse_finding(), done.pre_state) == [
        f"removed the default encryption configuration of bucket {BUCKET} (it had none before)"]
    assert encryption(s3) is None


def test_rollback_leaves_a_configuration_someone_changed_since(target: Target, s3: Any) -> None:
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration=KMS)

    changes = BucketDefaultEncryption().restore(target, sse_finding(), {"ServerSideEncryptionConfiguration": None})

    assert changes == [f"bucket {BUCKET} now has another default encryption configuration: left as is"]
    assert encryption(s3) == KMS


def test_the_exclusion_tag_holds_for_a_finding_without_tags(s3: Any) -> None:
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "cspm-remediation:exclude", "Value": "true"}]})
    config = config_from_dict({"rules": {"S3.4": {"mode": "enforce"}}})

    (result,) = Engine(config, AssumedSessions(), stage="apply").run([sse_finding(source="netskope", tags={})])

    assert result.outcome == "excluded"
    assert encryption(s3) is None


def test_missing_bucket_is_a_clear_error(target: Target) -> None:
    with pytest.raises(RemediationError, match="does not exist"):
        BucketDefaultEncryption().assess(target, sse_finding("cspm-no-such-bucket"))
