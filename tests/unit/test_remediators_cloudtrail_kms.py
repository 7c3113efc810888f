"""CloudTrail.2 TrailKmsEncryption against moto: create or reuse the CloudTrail key, encrypt the trail, roll back
without deleting the key."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.cloudtrail import TrailKmsEncryption
from functions.remediators.kms import cloudtrail_key_policy
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import (
    create_trail,
    iam_actions,
    make_trail_bucket,
    record_calls,
    recorded_pre_state,
    trail_arn,
)

ALIAS = "alias/cspm-cloudtrail"
OTHER_REGION = "us-west-2"


def trail_finding(name: str = "audit", **overrides):
    return make_finding("CloudTrail.2", "AwsCloudTrailTrail", name, **overrides)


def trail_key(name: str = "audit", region: str = REGION) -> str | None:
    """Independent read of the trail's KmsKeyId (moto reports "" once it was removed, AWS omits it)."""
    return boto3.client("cloudtrail", region_name=region).get_trail(Name=name)["Trail"].get("KmsKeyId") or None


def aliases(region: str = REGION) -> dict[str, str]:
    response = boto3.client("kms", region_name=region).list_aliases()
    return {a["AliasName"]: a["TargetKeyId"] for a in response["Aliases"] if "TargetKeyId" in a}


@pytest.fixture
def kms(moto_aws):
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def trail(moto_aws) -> str:
    """An unencrypted trail: the CloudTrail.2 failure."""
    create_trail("audit", make_trail_bucket("cspm-kms-trail-logs"))
    return "audit"


def test_unencrypted_trail_gets_a_new_rotating_key(target: Target, sessions: AssumedSessions, kms, trail: str) -> None:
    remediator, finding = TrailKmsEncryption(), trail_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"TrailARN": trail_arn(trail), "HomeRegion": REGION, "KmsKeyId": None}
    assert before.changes == [
        f"create KMS key {ALIAS} in {REGION} for CloudTrail (rotation on)",
        f"encrypt the log files of trail {trail_arn(trail)} with KMS key {ALIAS}",
    ]
    assert trail_key() is None and ALIAS not in aliases()

    remediator.apply(target, finding, before)

    key_arn = trail_key()
    assert key_arn == kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"]
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    assert policy == cloudtrail_key_policy("aws", ACCOUNT)
    assert before.context["created"] == {"KeyArn": key_arn, "AliasName": ALIAS}
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []  # rerun: noop
    assert iam_actions(sessions.api_calls) == set(TrailKmsEncryption.permissions)


def test_the_key_behind_the_alias_is_reused(target: Target, kms, trail: str) -> None:
    existing = kms.create_key(Policy=json.dumps(cloudtrail_key_policy("aws", ACCOUNT)))["KeyMetadata"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=existing["KeyId"])
    remediator, finding = TrailKmsEncryption(), trail_finding()
    calls = record_calls(target.client("kms"))

    assessment = remediator.assess(target, finding)
    assert assessment.changes == [f"encrypt the log files of trail {trail_arn(trail)} with KMS key {ALIAS}"]
    remediator.apply(target, finding, assessment)

    assert trail_key() == existing["Arn"]
    assert "created" not in assessment.context
    assert calls == ["DescribeKey"]
    assert len(kms.list_keys()["Keys"]) == 1


def test_an_alias_on_a_disabled_key_is_refused(target: Target, kms, trail: str) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
    kms.disable_key(KeyId=key_id)

    with pytest.raises(RemediationError, match="is Disabled: it cannot encrypt logs"):
        TrailKmsEncryption().assess(target, trail_finding())


def test_encrypted_trail_is_compliant(target: Target, kms) -> None:
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    create_trail("sealed", make_trail_bucket("cspm-kms-trail-logs"), KmsKeyId=key_arn)

    assessment = TrailKmsEncryption().assess(target, trail_finding("sealed"))

    assert assessment.compliant and assessment.pre_state == {}


def test_assess_alone_changes_nothing(target: Target, kms, trail: str) -> None:
    calls = record_calls(target.client("cloudtrail"))
    kms_calls, s3_calls = record_calls(target.client("kms")), record_calls(target.client("s3"))

    TrailKmsEncryption().assess(target, trail_finding())

    assert (calls, s3_calls, kms_calls) == (["DescribeTrails", "ListTags"], ["GetBucketLocation"], ["DescribeKey"])
    assert trail_key() is None and kms.list_keys()["Keys"] == []


def test_the_key_is_made_in_the_region_of_the_trail_bucket(target: Target, moto_aws) -> None:
    """CloudTrail needs the key in the bucket's region, which may differ from the trail's home region."""
    create_trail("audit", make_trail_bucket("cspm-west-trail-logs", OTHER_REGION))
    remediator, finding = TrailKmsEncryption(), trail_finding()

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert trail_key().startswith(f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT}:key/")
    assert ALIAS in aliases(OTHER_REGION) and ALIAS not in aliases(REGION)


def test_restore_turns_encryption_off_and_keeps_the_key(
    target: Target, sessions: AssumedSessions, kms, trail: str
) -> None:
    remediator, finding = TrailKmsEncryption(), trail_finding()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)
    key_arn = trail_key()

    for _ in range(2):  # restoring twice is harmless
        lines = remediator.restore(target, finding, recorded_pre_state(assessment))
        assert trail_key() is None
    assert lines == [
        f"turned SSE-KMS off again for trail {trail_arn(trail)} (new log files get SSE-S3)",
        f"kept KMS key {key_arn} ({ALIAS}): logs written meanwhile need it",
    ]
    assert kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"] == "Enabled"
    assert not remediator.assess(target, finding).compliant
    assert iam_actions(sessions.api_calls) <= set(TrailKmsEncryption.permissions)


@pytest.mark.stubber
def test_a_key_cloudtrail_may_not_use_is_a_remediation_error(target: Target, kms, trail: str) -> None:
    """moto does not check key policies: CloudTrail's refusal of a key is stubbed on update_trail."""
    remediator, finding = TrailKmsEncryption(), trail_finding()
    assessment = remediator.assess(target, finding)
    with Stubber(target.client("cloudtrail")) as stub:
        stub.add_client_error("update_trail", "InsufficientEncryptionPolicyException", "Insufficient permissions")
        with pytest.raises(RemediationError, match="its key policy must let cloudtrail"):
            remediator.apply(target, finding, assessment)


def test_missing_trail_is_refused(target: Target, trail: str) -> None:
    with pytest.raises(RemediationError, match="trail ghost not found"):
        TrailKmsEncryption().assess(target, trail_finding("ghost"))


@pytest.mark.parametrize("alias", ["cspm-cloudtrail", "alias/aws/cloudtrail"])
def test_key_alias_must_be_a_customer_alias(alias: str) -> None:
    with pytest.raises(ValueError, match="key_alias must be alias/<name>"):
        TrailKmsEncryption({"key_alias": alias})


def test_declarations() -> None:
    (rule,) = TrailKmsEncryption.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("CloudTrail.2", ("3.5",), False)
    assert TrailKmsEncryption.resource_types == ("AwsCloudTrailTrail",)
    assert TrailKmsEncryption.reversible
    assert TrailKmsEncryption.executors() == ("boto3",)
