"""KMS.4 KeyRotation against moto: assess → apply → verify in two reads, read-only assess, the keys KMS cannot
rotate (refused with KMS's own errors, stubbed where moto accepts them), rollback; and the CloudTrail key (policy,
alias, rotation) the CloudTrail.2 remediator creates."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError
from functions.remediators.kms import KeyRotation, cloudtrail_key_policy, create_cloudtrail_key, find_key
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls, recorded_pre_state


def key_finding(key_id: str, **overrides):
    """A Security Hub finding: it carries the key's tags, so the key's own are not read (see test_tags_everywhere)."""
    return make_finding("KMS.4", "AwsKmsKey", key_id, **{"tags": {"team": "data"}, **overrides})


@pytest.fixture
def kms(moto_aws):
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def key_id(kms) -> str:
    """A customer managed symmetric key without rotation: the KMS.4 failure."""
    return kms.create_key(Description="app data")["KeyMetadata"]["KeyId"]


def test_non_compliant_key_is_remediated_and_verified(target: Target, kms, key_id: str) -> None:
    remediator = KeyRotation()
    finding = key_finding(key_id)
    calls = record_calls(target.client("kms"))

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"KeyId": key_id, "KeyRotationEnabled": False}
    assert before.changes == [f"enable automatic rotation of KMS key {key_id}"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False

    remediator.apply(target, finding, before)

    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    after = remediator.assess(target, finding)
    assert after.compliant
    assert after.changes == []
    assert calls == ["GetKeyRotationStatus", "EnableKeyRotation", "GetKeyRotationStatus"]


def test_remediating_an_eligible_key_reads_twice(target: Target, key_id: str) -> None:
    """The read budget: one read to check before writing, one to verify (no DescribeKey on the common path)."""
    remediator, finding = KeyRotation(), key_finding(key_id)
    calls = record_calls(target.client("kms"))

    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)
    assert remediator.assess(target, finding).compliant

    reads = [call for call in calls if call.startswith(("Describe", "Get", "List"))]
    assert len(reads) == 2


def test_rotating_key_is_compliant(target: Target, kms, key_id: str) -> None:
    kms.enable_key_rotation(KeyId=key_id)

    assessment = KeyRotation().assess(target, key_finding(key_id))

    assert assessment.compliant
    assert assessment.changes == []
    assert assessment.pre_state == {"KeyId": key_id, "KeyRotationEnabled": True}  # the live value, for rollback


def test_assess_alone_changes_nothing(target: Target, kms, key_id: str) -> None:
    def state() -> tuple:
        rotation = kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
        return kms.describe_key(KeyId=key_id)["KeyMetadata"], rotation

    calls = record_calls(target.client("kms"))
    snapshot = state()

    KeyRotation().assess(target, key_finding(key_id))

    assert state() == snapshot
    assert calls == ["GetKeyRotationStatus"]


def test_key_given_by_arn_is_rotated_by_id(target: Target, kms) -> None:
    metadata = kms.create_key()["KeyMetadata"]
    finding = key_finding(metadata["Arn"], resource_arn=metadata["Arn"])

    assessment = KeyRotation().assess(target, finding)
    KeyRotation().apply(target, finding, assessment)

    assert assessment.context == {"KeyId": metadata["KeyId"]}
    assert kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"] is True


def test_key_given_by_alias_is_resolved(target: Target, kms, key_id: str) -> None:
    """GetKeyRotationStatus takes no alias names (NotFoundException): DescribeKey resolves the alias."""
    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)

    assessment = KeyRotation().assess(target, key_finding("alias/app"))

    assert not assessment.compliant and assessment.context == {"KeyId": key_id}


def test_missing_key_is_refused(target: Target) -> None:
    missing = "11111111-2222-3333-4444-555555555555"

    with pytest.raises(RemediationError, match=f"KMS key {missing} not found"):
        KeyRotation().assess(target, key_finding(missing))


def test_ineligible_key_is_planned_when_kms_reports_it_not_rotating(target: Target, kms, key_id: str) -> None:
    """No DescribeKey before writing: a disabled key whose status reads "not enabled" is planned (dry-run shows
    "enable rotation"); KMS refuses the write, and apply explains it (stubbed below, moto accepts the write)."""
    kms.disable_key(KeyId=key_id)

    assessment = KeyRotation().assess(target, key_finding(key_id))

    assert assessment.changes == [f"enable automatic rotation of KMS key {key_id}"]


def _symmetric(**overrides) -> dict:
    return {
        "KeyManager": "CUSTOMER",
        "KeyState": "Enabled",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "Origin": "AWS_KMS",
        **overrides,
    }


def _stubbed_target() -> tuple[Target, object]:
    client = boto3.client("kms", region_name=REGION)
    return Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: client), client


@pytest.mark.stubber
@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (_symmetric(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY"), "key spec RSA_2048"),
        (_symmetric(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"), "key spec HMAC_256"),
        (_symmetric(Origin="EXTERNAL"), "origin EXTERNAL"),
        (_symmetric(Origin="AWS_CLOUDHSM"), "origin AWS_CLOUDHSM"),
    ],
    ids=["asymmetric", "hmac", "imported-material", "custom-key-store"],
)
def test_keys_without_automatic_rotation_are_refused_by_assess(metadata: dict, reason: str) -> None:
    """KMS answers GetKeyRotationStatus for these keys with UnsupportedOperationException (moto answers False):
    the documented error is stubbed, and one DescribeKey gives the reason."""
    target, client = _stubbed_target()
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_key_rotation_status", "UnsupportedOperationException", expected_params={"KeyId": "k1"}
        )
        stub.add_response("describe_key", {"KeyMetadata": {"KeyId": "k1", **metadata}}, {"KeyId": "k1"})
        with pytest.raises(RemediationError, match=reason):
            KeyRotation().assess(target, key_finding("k1"))
        stub.assert_no_pending_responses()


@pytest.mark.stubber
@pytest.mark.parametrize(
    ("error", "metadata", "reason"),
    [
        ("KMSInvalidStateException", _symmetric(KeyState="Disabled"), "KMS key k1 is Disabled"),
        ("KMSInvalidStateException", _symmetric(KeyState="PendingDeletion"), "KMS key k1 is PendingDeletion"),
        ("AccessDeniedException", {"KeyManager": "AWS", "KeyState": "Enabled"}, "AWS managed"),
        (
            "UnsupportedOperationException",
            _symmetric(
                MultiRegion=True,
                MultiRegionConfiguration={
                    "MultiRegionKeyType": "REPLICA",
                    "PrimaryKey": {"Arn": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/mrk-1", "Region": "us-west-2"},
                },
            ),
            "primary key arn:aws:kms:us-west-2:",
        ),
    ],
    ids=["disabled", "pending-deletion", "aws-managed", "multi-region-replica"],
)
def test_keys_kms_refuses_to_rotate_are_refused_by_apply(error: str, metadata: dict, reason: str) -> None:
    """assess reads only GetKeyRotationStatus ("not enabled") and plans the change; KMS refuses EnableKeyRotation
    with the documented error (moto accepts it, and makes every key customer managed and its replicas PRIMARY), and
    one DescribeKey on that error path gives the reason."""
    target, client = _stubbed_target()
    remediator, finding = KeyRotation(), key_finding("k1")
    with Stubber(client) as stub:
        stub.add_response("get_key_rotation_status", {"KeyRotationEnabled": False}, {"KeyId": "k1"})
        stub.add_client_error("enable_key_rotation", error, expected_params={"KeyId": "k1"})
        stub.add_response("describe_key", {"KeyMetadata": {"KeyId": "k1", **metadata}}, {"KeyId": "k1"})
        assessment = remediator.assess(target, finding)
        assert assessment.changes == ["enable automatic rotation of KMS key k1"]
        with pytest.raises(RemediationError, match=reason):
            remediator.apply(target, finding, assessment)
        stub.assert_no_pending_responses()


@pytest.mark.stubber
def test_a_refusal_describe_key_cannot_explain_is_raised_as_is() -> None:
    """AccessDeniedException on an eligible customer managed key is a missing permission, not an ineligible key:
    KMS's own error stands (stubbed: moto does not check IAM)."""
    target, client = _stubbed_target()
    with Stubber(client) as stub:
        stub.add_client_error("enable_key_rotation", "AccessDeniedException", expected_params={"KeyId": "k1"})
        stub.add_response("describe_key", {"KeyMetadata": {"KeyId": "k1", **_symmetric()}}, {"KeyId": "k1"})
        with pytest.raises(ClientError, match="AccessDeniedException"):
            KeyRotation().apply(target, key_finding("k1"), Assessment(compliant=False, context={"KeyId": "k1"}))
        stub.assert_no_pending_responses()


def test_runbook_parameters() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"
    finding = key_finding("1234abcd-12ab-34cd-56ef-1234567890ab")

    assert KeyRotation.runbook is not None
    assert KeyRotation.runbook.document == "AWSConfigRemediation-EnableKeyRotation"
    assert KeyRotation.runbook.parameters(finding, role) == {
        "KeyId": ["1234abcd-12ab-34cd-56ef-1234567890ab"],
        "AutomationAssumeRole": [role],
    }


def test_declarations() -> None:
    (rule,) = KeyRotation.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("KMS.4", ("3.6",), False)
    assert KeyRotation.resource_types == ("AwsKmsKey",)
    assert KeyRotation.reversible
    assert KeyRotation.executors() == ("boto3", "ssm")


def test_restore_disables_rotation_again(target: Target, sessions: AssumedSessions, kms, key_id: str) -> None:
    remediator, finding = KeyRotation(), key_finding(key_id)
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    for _ in range(2):  # restoring twice is harmless
        lines = remediator.restore(target, finding, recorded_pre_state(assessment))
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert lines == [f"disabled automatic rotation of KMS key {key_id} again (key material rotated meanwhile is kept)"]
    assert not remediator.assess(target, finding).compliant
    assert not remediator.assess(target, key_finding(key_id, tags={})).compliant  # no tags: ListResourceTags
    with pytest.raises(RemediationError, match="not found"):  # the refusal path reads DescribeKey
        remediator.assess(target, key_finding("11111111-2222-3333-4444-555555555555"))
    # Every call of assess, apply and restore is a declared permission, and every permission is used.
    batched = {"tag:GetResources"}  # the engine's batched tag read (tests/unit/test_batched_tags.py)
    assert iam_actions(sessions.api_calls) | batched == set(KeyRotation.permissions)


def test_restore_without_a_recorded_state_is_refused(target: Target, key_id: str) -> None:
    with pytest.raises(RemediationError, match="no previous rotation state"):
        KeyRotation().restore(target, key_finding(key_id), {})


# -- the CloudTrail key ----------------------------------------------------------------------------------------


def test_cloudtrail_key_is_created_with_alias_policy_and_rotation(kms) -> None:
    arn = create_cloudtrail_key(kms, "alias/trail-logs", "aws", ACCOUNT)

    metadata = kms.describe_key(KeyId="alias/trail-logs")["KeyMetadata"]
    assert metadata["Arn"] == arn
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
    assert policy == cloudtrail_key_policy("aws", ACCOUNT)


def test_cloudtrail_key_policy_lets_only_this_accounts_trails_encrypt() -> None:
    statements = {s["Sid"]: s for s in cloudtrail_key_policy("aws-cn", ACCOUNT)["Statement"]}
    trails = f"arn:aws-cn:cloudtrail:*:{ACCOUNT}:trail/*"

    assert statements["EnableIAMPolicies"]["Principal"] == {"AWS": f"arn:aws-cn:iam::{ACCOUNT}:root"}
    encrypt = statements["AllowCloudTrailToEncryptLogs"]
    assert encrypt["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert encrypt["Action"] == "kms:GenerateDataKey*"
    assert encrypt["Condition"] == {
        "StringLike": {"aws:SourceArn": trails, "kms:EncryptionContext:aws:cloudtrail:arn": trails}
    }
    # Nobody is granted kms:Decrypt by the key policy itself: reading logs is granted through IAM.
    assert not any("Decrypt" in str(s["Action"]) for s in statements.values())


def test_find_key_by_alias(kms, key_id: str) -> None:
    kms.create_alias(AliasName="alias/present", TargetKeyId=key_id)

    assert find_key(kms, "alias/present")["KeyId"] == key_id
    assert find_key(kms, "alias/absent") is None
