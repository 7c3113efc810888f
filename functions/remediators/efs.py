"""EFS remediators: encryption at rest (EFS.1).

An EFS file system is encrypted at creation or never: there is no in-place change, so the rule is notify-only like
the root-account rules (same guidance mechanism; the config keeps notify-default rules at notify). Unlike them it
can still read the resource: assess tells an encrypted file system (a stale finding: `noop`) from one that needs
the migration and plans it, and apply refuses with the steps — creating a file system nobody mounts and copying
data into it is not something to do unattended.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, NotifyOnlyRemediator, RemediationError, Rule

GUIDANCE = (
    "Encryption cannot be turned on for an existing file system. "
    "1) Create a new file system with encryption at rest (console: Amazon EFS > Create file system > Customize > "
    "Enable encryption of data at rest; CLI: aws efs create-file-system --encrypted [--kms-key-id KEY]) with the "
    "same performance and throughput mode, and mount targets in the same subnets and security groups. "
    "2) Copy the data with an AWS DataSync EFS-to-EFS task (or restore an AWS Backup recovery point to the new "
    "file system). 3) Stop writers, run a final DataSync pass, switch clients (mounts, access points, fstab) to "
    "the new file system and check them. 4) Delete the old file system once nothing uses it. "
    "To stop new unencrypted file systems, deny elasticfilesystem:CreateFileSystem when "
    "elasticfilesystem:Encrypted is false (SCP or IAM)."
)


class FileSystemEncryption(NotifyOnlyRemediator):
    """EFS.1: detect an unencrypted file system and hand the migration to a person."""

    rules = (
        Rule(
            "EFS.1",
            "Elastic File System should be configured to encrypt file data at-rest using AWS KMS",
            cis=("2.4.1",),
            default_mode="notify",
        ),
    )
    resource_types = ("AwsEfsFileSystem",)
    read_permissions = ("elasticfilesystem:DescribeFileSystems",)
    guidance = {"EFS.1": GUIDANCE}

    def assess(self, target: Target, finding: Finding) -> Assessment:
        file_system = self._describe(target, finding.resource_id)
        tags = {tag["Key"]: tag["Value"] for tag in file_system.get("Tags", [])}
        if file_system.get("Encrypted"):
            return Assessment(compliant=True, tags=tags)
        return Assessment(
            compliant=False,
            changes=[
                f"manual: create an encrypted file system like {finding.resource_id} (performance mode "
                f"{file_system.get('PerformanceMode')}, throughput mode {file_system.get('ThroughputMode')}, "
                f"{file_system.get('NumberOfMountTargets', 0)} mount target(s)), copy the data with AWS DataSync, "
                f"switch clients over, then delete {finding.resource_id}"
            ],
            tags=tags,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        raise RemediationError(f"EFS.1 needs a person for file system {finding.resource_id}. {GUIDANCE}")

    @staticmethod
    def _describe(target: Target, file_system_id: str) -> dict[str, Any]:
        try:
            file_system: dict[str, Any] = target.client("efs").describe_file_systems(FileSystemId=file_system_id)[
                "FileSystems"][0]
            return file_system
        except ClientError as error:
            if aws_error_code(error) == "FileSystemNotFound":
                raise RemediationError(f"EFS file system {file_system_id} not found") from error
            raise
