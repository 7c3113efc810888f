"""S3.4 (bucket default encryption): SSE-S3 for a bucket that has no default encryption configured.

The control (AWS Config rule s3-bucket-server-side-encryption-enabled) passes when the bucket has default
encryption (SSE-S3, SSE-KMS or DSSE-KMS), or when its policy denies uploads that ask for no server-side encryption.
Since January 2023 S3 applies SSE-S3 to every bucket, so on AWS a bucket nearly always reads compliant and this is a
`noop`; the rule still matters for findings raised before then, other S3 implementations and partitions that lag.

The change is the narrowest one: SSE-S3 (AES256) default encryption, only where none is configured. An existing
configuration (a KMS key above all: its key policy decides who reads the objects) is never replaced, and nothing is
re-encrypted: objects already stored stay as they are. Rollback removes the configuration the run set, and only
while it is still the one it set (on AWS the bucket then falls back to S3's own SSE-S3 base level).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import AwsClient, Target
from functions.remediators import tagging
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule
from functions.remediators.s3 import (
    SSE_S3,
    _as_list,
    bucket_arn,
    bucket_name,
    bucket_tags,
    owned,
    read_bucket_policy,
)

# What GetBucketEncryption answers for a bucket that has no default encryption configuration.
NO_CONFIGURATION = "ServerSideEncryptionConfigurationNotFoundError"
ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
SSE_HEADER = "s3:x-amz-server-side-encryption"


def read_encryption(s3: AwsClient, key: Mapping[str, str]) -> dict[str, Any] | None:
    """The bucket's ServerSideEncryptionConfiguration, or None when it has none."""
    try:
        return dict(s3.get_bucket_encryption(**key)["ServerSideEncryptionConfiguration"])
    except ClientError as error:
        code = aws_error_code(error)
        if code == NO_CONFIGURATION:
            return None
        if code == "NoSuchBucket":
            raise RemediationError(f"S3 bucket {key['Bucket']} does not exist") from error
        raise


def default_algorithm(configuration: Mapping[str, Any] | None) -> str | None:
    """The default encryption algorithm a configuration applies (AES256, aws:kms, aws:kms:dsse), or None."""
    for rule in (configuration or {}).get("Rules", []):
        algorithm = (rule.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
        if algorithm in ALGORITHMS:
            return str(algorithm)
    return None


def denies_unencrypted_uploads(statement: Mapping[str, Any], arn: str) -> bool:
    """True when the statement denies everyone s3:PutObject on the bucket's objects unless the request asks for
    server-side encryption (the header is absent, or names no S3 algorithm): the policy route the Config rule
    accepts instead of default encryption."""
    if statement.get("Effect") != "Deny" or {"NotPrincipal", "NotAction", "NotResource"} & set(statement):
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (isinstance(principal, dict) and _as_list(principal.get("AWS")) == ["*"]):
        return False
    if not {"*", "s3:*", "s3:putobject"} & {str(action).lower() for action in _as_list(statement.get("Action"))}:
        return False
    if not {"*", f"{arn}/*"} & set(_as_list(statement.get("Resource"))):
        return False
    condition = statement.get("Condition") or {}
    absent = (condition.get("Null") or {}).get(SSE_HEADER)
    if [str(v).lower() for v in _as_list(absent)] == ["true"] and len(condition) == 1:
        return True
    other = condition.get("StringNotEquals") or {}
    return set(condition) == {"StringNotEquals"} and set(other) == {SSE_HEADER} and \
        set(map(str, _as_list(other[SSE_HEADER]))) <= set(ALGORITHMS)


class BucketDefaultEncryption(Remediator):
    """S3.4: turn on SSE-S3 default encryption for a bucket that has no default encryption and no policy refusing
    unencrypted uploads.

    Reads: GetBucketEncryption; GetBucketPolicy only when there is no configuration; GetBucketTagging (or the
    engine's batched tag read) only when the finding carries no tags (so the exclusion tag holds whatever the
    source).
    """

    rules: ClassVar[tuple[Rule, ...]] = (
        # The title before Security Hub renamed the S3 controls in March 2024 (the control was retired before).
        Rule("S3.4", "S3 buckets should have server-side encryption enabled"),
    )
    resource_types = ("AwsS3Bucket",)
    read_permissions = (
        "s3:GetEncryptionConfiguration", "s3:GetBucketPolicy", "s3:GetBucketTagging",
        "tag:GetResources", "s3:ListAllMyBuckets",  # the engine's batched tag read (tagging.py)
    )
    write_permissions = ("s3:PutEncryptionConfiguration",)
    # DeleteBucketEncryption (rollback of a bucket that had none) is authorized by s3:PutEncryptionConfiguration.
    restore_permissions = ("s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration")
    reversible = True
    side_effects = "objects uploaded without encryption headers are stored SSE-S3 encrypted from then on"

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return tagging.bucket_arn(target, finding, bucket_name(finding))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        bucket, s3 = bucket_name(finding), target.client("s3")
        key = owned(target, bucket)
        configuration = read_encryption(s3, key)
        tags = self.resource_tags(target, finding, lambda: bucket_tags(s3, bucket, target.account_id))
        state = {"ServerSideEncryptionConfiguration": configuration}
        if default_algorithm(configuration):
            return Assessment(compliant=True, pre_state=state, tags=tags)
        text = read_bucket_policy(s3, bucket, target.account_id)
        statements = _as_list((json.loads(text) if text else {}).get("Statement", []))
        if any(denies_unencrypted_uploads(s, bucket_arn(target.partition, bucket)) for s in statements):
            return Assessment(compliant=True, pre_state=state, tags=tags)
        return Assessment(
            compliant=False,
            changes=[f"turn on default encryption with S3-managed keys (SSE-S3, AES256) for bucket {bucket}"],
            pre_state=state,
            tags=tags,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        if assessment.pre_state.get("ServerSideEncryptionConfiguration") is not None:
            # Never overwrite a configuration (a KMS key's above all), even one this code does not recognise.
            raise RemediationError(f"bucket {bucket_name(finding)} has a default encryption configuration: left as is")
        target.client("s3").put_bucket_encryption(
            **owned(target, bucket_name(finding)), ServerSideEncryptionConfiguration=SSE_S3
        )

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        if "ServerSideEncryptionConfiguration" not in state:
            return None
        return {"SSEAlgorithm": default_algorithm(state["ServerSideEncryptionConfiguration"])}

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        bucket = bucket_name(finding)
        if "ServerSideEncryptionConfiguration" not in pre_state:
            raise RemediationError(f"no previous encryption configuration recorded for bucket {bucket}")
        if pre_state["ServerSideEncryptionConfiguration"] is not None:
            return [f"bucket {bucket} had a default encryption configuration: nothing to undo"]
        s3, key = target.client("s3"), owned(target, bucket)
        live = read_encryption(s3, key)
        if live is None:
            return [f"bucket {bucket} already has no default encryption configuration"]
        if default_algorithm(live) != "AES256":
            return [f"bucket {bucket} now has another default encryption configuration: left as is"]
        s3.delete_bucket_encryption(**key)
        return [f"removed the default encryption configuration of bucket {bucket} (it had none before)"]
