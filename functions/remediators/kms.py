"""KMS remediators."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook
from functions.sessions import Target


def _enable_key_rotation_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {"KeyId": [finding.resource_id], "AutomationAssumeRole": [automation_role_arn]}


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


class KeyRotation(Remediator):
    """KMS.4: enable automatic rotation of a customer managed symmetric key.

    Rotation keeps old key material for decryption, so nothing encrypted becomes unreadable; disabling rotation
    again (DisableKeyRotation) undoes it.
    """

    rules = (Rule("KMS.4", "AWS KMS key rotation should be enabled", cis=("3.6",)),)
    resource_types = ("AwsKmsKey",)
    permissions = ("kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation")
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-EnableKeyRotation",
        parameters=_enable_key_rotation_parameters,
        permissions=(
            "ssm:StartAutomationExecution",
            "ssm:GetAutomationExecution",
            "kms:EnableKeyRotation",
            "kms:GetKeyRotationStatus",
        ),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        kms = target.client("kms")
        try:
            metadata = kms.describe_key(KeyId=finding.resource_id)["KeyMetadata"]
        except ClientError as error:
            if aws_error_code(error) == "NotFoundException":
                raise RemediationError(f"KMS key {finding.resource_id} not found") from error
            raise
        key_id = metadata["KeyId"]
        refusal = _rotation_refusal(key_id, metadata)
        if refusal:
            raise RemediationError(refusal)
        if kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]:
            return Assessment(compliant=True, context={"KeyId": key_id})
        return Assessment(
            compliant=False,
            changes=[f"enable automatic rotation of KMS key {key_id}"],
            pre_state={"KeyRotationEnabled": False},
            context={"KeyId": key_id},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("kms").enable_key_rotation(KeyId=assessment.context["KeyId"])
