"""S3 Block Public Access remediators: the bucket setting (S3.8) and the account setting (S3.1).

Both turn on all four Block Public Access settings; nothing less makes the control pass. The previous
configuration (None when there was none) is recorded so the change can be undone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook
from functions.sessions import Target

SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
ALL_BLOCKED: dict[str, bool] = dict.fromkeys(SETTINGS, True)
_SSM_ALL_BLOCKED = {name: ["true"] for name in SETTINGS}


def bucket_name(finding: Finding) -> str:
    """The bucket of a finding; tolerates an S3 ARN (`arn:aws:s3:::name`) in place of the name."""
    resource_id = finding.resource_id
    return resource_id.split(":::", 1)[1] if resource_id.startswith("arn:") else resource_id


def _read_configuration(get: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, bool] | None:
    """The current PublicAccessBlockConfiguration, or None when none was ever set (all four are then off)."""
    try:
        return get(**kwargs)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        if aws_error_code(error) == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise


def _assess(configuration: dict[str, bool] | None, where: str) -> Assessment:
    current = configuration or {}
    off = [name for name in SETTINGS if not current.get(name, False)]
    return Assessment(
        compliant=not off,
        changes=[f"turn on {', '.join(off)} for {where}"] if off else [],
        pre_state={"PublicAccessBlockConfiguration": configuration},
    )


def _bucket_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {
        "BucketName": [bucket_name(finding)],
        "AutomationAssumeRole": [automation_role_arn],
        **_SSM_ALL_BLOCKED,
    }


def _account_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {
        "AccountId": [finding.account_id],
        "AutomationAssumeRole": [automation_role_arn],
        **_SSM_ALL_BLOCKED,
    }


class BucketPublicAccessBlock(Remediator):
    """S3.8: turn on the four bucket-level Block Public Access settings.

    The bucket's tags are not read (GetBucketTagging would be one more call per finding); exclusion by tag
    relies on the tags the finding carries.
    """

    rules = (Rule("S3.8", "S3 general purpose buckets should block public access", cis=("2.1.4.2",)),)
    resource_types = ("AwsS3Bucket",)
    permissions = ("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock")
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-ConfigureS3BucketPublicAccessBlock",
        parameters=_bucket_runbook_parameters,
        permissions=(
            "ssm:StartAutomationExecution",
            "ssm:GetAutomationExecution",
            "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
        ),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        bucket = bucket_name(finding)
        try:
            configuration = _read_configuration(target.client("s3").get_public_access_block, Bucket=bucket)
        except ClientError as error:
            if aws_error_code(error) == "NoSuchBucket":
                raise RemediationError(f"S3 bucket {bucket} does not exist") from error
            raise
        return _assess(configuration, f"bucket {bucket}")

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("s3").put_public_access_block(
            Bucket=bucket_name(finding), PublicAccessBlockConfiguration=ALL_BLOCKED
        )


class AccountPublicAccessBlock(Remediator):
    """S3.1: turn on the four account-level Block Public Access settings (S3 Control API, any region)."""

    rules = (
        Rule("S3.1", "S3 general purpose buckets should have block public access settings enabled", cis=("2.1.4.1",)),
    )
    resource_types = ("AwsAccount",)
    permissions = ("s3:GetAccountPublicAccessBlock", "s3:PutAccountPublicAccessBlock")
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-ConfigureS3PublicAccessBlock",
        parameters=_account_runbook_parameters,
        permissions=(
            "ssm:StartAutomationExecution",
            "ssm:GetAutomationExecution",
            "s3:GetAccountPublicAccessBlock",
            "s3:PutAccountPublicAccessBlock",
        ),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        configuration = _read_configuration(
            target.client("s3control").get_public_access_block, AccountId=target.account_id
        )
        return _assess(configuration, f"account {target.account_id}")

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("s3control").put_public_access_block(
            AccountId=target.account_id, PublicAccessBlockConfiguration=ALL_BLOCKED
        )
