"""KMS remediators (KMS.4), and the customer managed key the CloudTrail.2 remediator encrypts trails with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import AwsClient, Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook, tag_dict


def _enable_key_rotation_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {"KeyId": [finding.resource_id], "AutomationAssumeRole": [automation_role_arn]}


def find_key(kms: AwsClient, key_id: str) -> dict[str, Any] | None:
    """KeyMetadata of a key given by id, ARN or alias name; None when there is no such key."""
    try:
        metadata: dict[str, Any] = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        return metadata
    except ClientError as error:
        if aws_error_code(error) == "NotFoundException":
            return None
        raise


def cloudtrail_key_policy(partition: str, account_id: str) -> dict[str, Any]:
    """Key policy for CloudTrail log encryption: the account administers the key through IAM, and CloudTrail may
    use it only for this account's trails (aws:SourceArn and the encryption context both name them).

    No trail name in the conditions, so one key serves every trail of the account; reading the logs needs
    kms:Decrypt granted by IAM (the root statement delegates to IAM policies), nobody gets it from the key policy.
    """
    trails = f"arn:{partition}:cloudtrail:*:{account_id}:trail/*"
    cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableIAMPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "AllowCloudTrailToEncryptLogs",
                "Effect": "Allow",
                "Principal": cloudtrail,
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {"aws:SourceArn": trails, "kms:EncryptionContext:aws:cloudtrail:arn": trails}
                },
            },
            {
                "Sid": "AllowCloudTrailToDescribeKey",
                "Effect": "Allow",
                "Principal": cloudtrail,
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:SourceArn": trails}},
            },
        ],
    }


def create_cloudtrail_key(kms: AwsClient, alias: str, partition: str, account_id: str) -> str:
    """Create the CloudTrail key with its alias and automatic rotation (KMS.4); returns the key ARN."""
    metadata = kms.create_key(
        Policy=json.dumps(cloudtrail_key_policy(partition, account_id)),
        Description="CloudTrail log file encryption (created by cspm-remediation for CloudTrail.2)",
    )["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
    kms.enable_key_rotation(KeyId=metadata["KeyId"])
    arn: str = metadata["Arn"]
    return arn


def _rotation_refusal(key_id: str, metadata: dict[str, Any]) -> str | None:
    """Why KMS would refuse EnableKeyRotation on this key (None when it would accept it).

    AWS rotates AWS managed keys itself; automatic rotation exists only for enabled, symmetric encryption keys
    whose material KMS generated; a multi-Region replica follows its primary key.
    """
    if metadata.get("KeyManager") != "CUSTOMER":
        return f"KMS key {key_id} is AWS managed: AWS rotates it and its rotation cannot be changed"
    state = metadata.get("KeyState")
    if state != "Enabled":
        return f"KMS key {key_id} is {state}: rotation can only be enabled on an Enabled key"
    spec = metadata.get("KeySpec")
    if spec != "SYMMETRIC_DEFAULT":
        return f"KMS key {key_id} has key spec {spec}: automatic rotation is only supported for symmetric keys"
    origin = metadata.get("Origin")
    if origin != "AWS_KMS":
        return (
            f"KMS key {key_id} has origin {origin} (imported material or custom key store): "
            "automatic rotation is not supported"
        )
    region_config = metadata.get("MultiRegionConfiguration") or {}
    if region_config.get("MultiRegionKeyType") == "REPLICA":
        primary = (region_config.get("PrimaryKey") or {}).get("Arn", "its primary key")
        return f"KMS key {key_id} is a multi-Region replica: rotation is set on the primary key {primary}"
    return None


# Errors KMS raises for a key it cannot rotate (GetKeyRotationStatus, EnableKeyRotation): asymmetric, HMAC,
# imported or custom-key-store keys and replicas (UnsupportedOperationException), disabled or pending-deletion keys
# (KMSInvalidStateException), missing keys (NotFoundException), AWS managed keys (AccessDeniedException).
_REFUSED = frozenset(
    {"UnsupportedOperationException", "KMSInvalidStateException", "NotFoundException", "AccessDeniedException"}
)


def _key_id(resource_id: str) -> str:
    """The key id in a key ARN (arn:aws:kms:region:account:key/<id>); anything else as given."""
    if resource_id.startswith("arn:") and ":key/" in resource_id:
        return resource_id.split(":key/", 1)[1]
    return resource_id


def _explain(kms: AwsClient, key_id: str, error: ClientError) -> dict[str, Any]:
    """After KMS refused a rotation call for key_id: raise RemediationError saying why (one DescribeKey), or
    return the key's metadata when DescribeKey finds nothing wrong with it. DescribeKey's own failure re-raises the
    original error."""
    try:
        metadata = find_key(kms, key_id)
    except ClientError:
        raise error from None
    if metadata is None:
        raise RemediationError(f"KMS key {key_id} not found") from error
    refusal = _rotation_refusal(metadata["KeyId"], metadata)
    if refusal:
        raise RemediationError(refusal) from error
    return metadata


class KeyRotation(Remediator):
    """KMS.4: enable automatic rotation of a customer managed symmetric key.

    Rotation keeps old key material for decryption, so nothing encrypted becomes unreadable; disabling rotation
    again (DisableKeyRotation) undoes it.
    """

    rules = (Rule("KMS.4", "AWS KMS key rotation should be enabled", cis=("3.6",)),)
    resource_types = ("AwsKmsKey",)
    read_permissions = ("kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "tag:GetResources")
    write_permissions = ("kms:EnableKeyRotation",)
    restore_permissions = ("kms:DisableKeyRotation",)
    reversible = True
    side_effects = "each yearly rotation adds to the key's monthly fee (the first two)"
    state_keys = ("KeyRotationEnabled",)
    runbook = Runbook(
        document="AWSConfigRemediation-EnableKeyRotation",
        parameters=_enable_key_rotation_parameters,
        permissions=(
            "kms:EnableKeyRotation",
            "kms:GetKeyRotationStatus",
        ),
    )

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        """The key's ARN as the finding names it, or from its key id; an alias names no key without a read."""
        for name in (finding.resource_arn or "", finding.resource_id):
            if name.startswith("arn:") and ":key/" in name:
                return name
        if finding.resource_id.startswith(("arn:", "alias/")):
            return None
        return f"arn:{target.partition}:kms:{target.api_region}:{target.account_id}:key/{finding.resource_id}"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        """One read in the common case: GetKeyRotationStatus (enabled → compliant; AWS managed keys report enabled).
        DescribeKey is read only when KMS refuses the call, to say why; keys KMS cannot rotate that still report
        "not enabled" are planned and refused by apply (see apply)."""
        kms = target.client("kms")
        key_id = _key_id(finding.resource_id)
        try:
            enabled = kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
        except ClientError as error:
            if aws_error_code(error) not in _REFUSED:
                raise
            resolved = _explain(kms, key_id, error)["KeyId"]
            if resolved == key_id:  # nothing wrong with the key that DescribeKey shows: KMS's own error stands
                raise
            key_id = resolved  # an alias name: GetKeyRotationStatus takes only key ids and ARNs
            enabled = kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
        # The key's tags (one ListResourceTags: a key has at most 50) when the finding carries none, for the
        # exclusion tag; only for a key that would change.
        if enabled:
            return Assessment(compliant=True, pre_state={"KeyId": key_id, "KeyRotationEnabled": True},
                              context={"KeyId": key_id})
        tags = self.resource_tags(target, finding, lambda: tag_dict(
            kms.list_resource_tags(KeyId=key_id).get("Tags", []), "TagKey", "TagValue"))
        return Assessment(
            compliant=False,
            changes=[f"enable automatic rotation of KMS key {key_id}"],
            tags=tags,
            pre_state={"KeyId": key_id, "KeyRotationEnabled": False},
            context={"KeyId": key_id},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        """EnableKeyRotation without a DescribeKey before it (the read budget is one read to check, one to verify);
        when KMS refuses the key, one DescribeKey turns the refusal into the reason (_rotation_refusal)."""
        kms = target.client("kms")
        key_id = assessment.context["KeyId"]
        try:
            kms.enable_key_rotation(KeyId=key_id)
        except ClientError as error:
            if aws_error_code(error) not in _REFUSED:
                raise
            _explain(kms, key_id, error)
            raise

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if pre_state.get("KeyRotationEnabled") is not False:
            raise RemediationError(f"no previous rotation state recorded for KMS key {finding.resource_id}")
        key_id = pre_state.get("KeyId", finding.resource_id)
        target.client("kms").disable_key_rotation(KeyId=key_id)
        return [f"disabled automatic rotation of KMS key {key_id} again (key material rotated meanwhile is kept)"]
