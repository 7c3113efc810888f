"""Rules only a person can fix (root credentials, MFA, MFA delete, AWS Config): the engine reports `notified`.

The rules and, per rule, the guidance a person needs are data: what to do, where in the console, and the CLI step
where one exists. Guidance may name the finding's resource with {resource_id}, {resource_arn}, {account_id},
{region} and {partition}; they are filled in per finding. {resource_arn} is for calls that take an ARN (a secret,
a topic, a policy): a finding's resource id is the ARN's last part (a policy's name, a stack's name/uuid), which
those calls refuse; it falls back to the resource id when the finding carries no ARN. Nothing here reads or writes
AWS.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.finding import Finding
from functions.remediators.base import NotifyOnlyRemediator, Rule


class ManualRemediation(NotifyOnlyRemediator):
    """Root user keys and MFA (IAM.4, IAM.9, IAM.6), MFA for console users (IAM.5), S3 MFA delete (S3.20), AWS Config
    (Config.1).

    The root user's keys and MFA devices can be managed only by the root user (or, with centralized root access, by
    the organization's management account); an MFA device is something a person holds; MFA delete can be turned on
    only by the root user with its MFA code; and turning on AWS Config takes decisions a remediator should not take
    alone (which bucket keeps the history, what it costs).
    """

    rules: ClassVar[tuple[Rule, ...]] = (  # (annotated: subclasses declare other rules)
        Rule("IAM.4", "IAM root user access key should not exist", cis=("1.4",), default_mode="notify"),
        Rule("IAM.9", "MFA should be enabled for the root user", cis=("1.5",), default_mode="notify"),
        Rule("IAM.6", "Hardware MFA should be enabled for the root user", cis=("1.6",), default_mode="notify"),
        Rule(
            "IAM.5",
            "MFA should be enabled for all IAM users that have a console password",
            cis=("1.10",),
            default_mode="notify",
        ),
        Rule(
            "S3.20", "S3 general purpose buckets should have MFA delete enabled", cis=("2.1.2",), default_mode="notify"
        ),
        Rule(
            "Config.1",
            "AWS Config should be enabled and use the service-linked role for resource recording",
            cis=("3.3",),
            default_mode="notify",
        ),
    )
    resource_types: ClassVar[tuple[str, ...]] = ("AwsAccount", "AwsIamUser", "AwsS3Bucket")
    guidance: ClassVar[dict[str, str]] = {
        "IAM.4": (
            "Delete the root user's access keys: sign in as the root user, open the account menu > Security "
            "credentials > Access keys, deactivate each key, check nothing breaks, then delete it (move any "
            "automation to an IAM role first). In an organization with centralized root access, the management "
            "account can do it instead: aws sts assume-root --target-principal {account_id} --task-policy-arn "
            "arn=arn:{partition}:iam::aws:policy/root-task/IAMDeleteRootUserCredentials, then with those "
            "credentials aws iam delete-access-key --access-key-id KEY_ID. "
            "Check: aws iam get-account-summary --query SummaryMap.AccountAccessKeysPresent returns 0."
        ),
        "IAM.9": (
            "Turn on MFA for the root user: sign in as the root user, open the account menu > Security credentials "
            "> Multi-factor authentication (MFA) > Assign MFA device, and register a device kept in a safe place "
            "(a hardware key also satisfies IAM.6). Check: aws iam get-account-summary --query "
            "SummaryMap.AccountMFAEnabled returns 1."
        ),
        "IAM.6": (
            "Give the root user a hardware MFA device: sign in as the root user, open the account menu > Security "
            "credentials > Multi-factor authentication (MFA) > Assign MFA device, choose a passkey/security key "
            "(FIDO) or a hardware TOTP token, then remove the virtual (authenticator app) device. Check: "
            "aws iam list-virtual-mfa-devices --assignment-status Assigned lists no device whose user is "
            "arn:{partition}:iam::{account_id}:root."
        ),
        "IAM.5": (
            "User {resource_id} can sign in to the console without MFA. Ask the user to sign in and assign an MFA "
            "device (IAM console > Users > {resource_id} > Security credentials > Assign MFA device), and consider "
            "a policy that denies everything but MFA set-up while aws:MultiFactorAuthPresent is false. If the user "
            "does not need the console: aws iam delete-login-profile --user-name {resource_id} (the password is "
            "lost). Check: aws iam list-mfa-devices --user-name {resource_id} lists a device."
        ),
        "S3.20": (
            "Turn on versioning with MFA delete for bucket {resource_id}. Only the root user can, with its own "
            "access key and MFA device, and only through the API or CLI (not the console): "
            "aws s3api put-bucket-versioning --bucket {resource_id} "
            "--versioning-configuration Status=Enabled,MFADelete=Enabled "
            '--mfa "arn:{partition}:iam::{account_id}:mfa/DEVICE_NAME CODE" (the device serial or ARN, a space, '
            "the current code). A bucket with a lifecycle configuration cannot use MFA delete. Delete the temporary "
            "root access key afterwards (IAM.4). Check: aws s3api get-bucket-versioning --bucket {resource_id} "
            "shows MFADelete Enabled."
        ),
        "Config.1": (
            "Turn on AWS Config recording in {region}: console AWS Config > Get started (or Settings) > record all "
            "resource types, deliver to an S3 bucket. CLI: aws iam create-service-linked-role --aws-service-name "
            "config.amazonaws.com (once per account); aws configservice put-configuration-recorder --region "
            "{region} --configuration-recorder name=default,roleARN=arn:{partition}:iam::{account_id}:role/"
            "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig --recording-group "
            "allSupported=true,includeGlobalResourceTypes=true; aws configservice put-delivery-channel --region "
            "{region} --delivery-channel name=default,s3BucketName=BUCKET; aws configservice "
            "start-configuration-recorder --region {region} --configuration-recorder-name default. Check: aws "
            "configservice describe-configuration-recorder-status --region {region} shows recording true."
        ),
    }

    def steps(self, finding: Finding) -> str:
        """The guidance with the finding's own names filled in, so a CLI step can be pasted."""
        steps = self.guidance.get(finding.rule_id)
        if not steps:
            return ""
        return steps.format(
            resource_id=finding.resource_id,
            resource_arn=finding.resource_arn or finding.resource_id,
            account_id=finding.account_id,
            region=finding.region,
            partition=finding.partition,
        )
