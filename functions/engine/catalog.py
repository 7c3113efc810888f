"""The rule catalog, derived from the remediators' own declarations.

The list of remediator classes below is the only registration step (explicit, no import side effects). Every
other view of the catalog — the `rules` listing, the target-role IAM policy, CloudFormation toggles, the
README table — is computed from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from functions.remediators.account import SecurityContact
from functions.remediators.apigateway import StageCacheEncryption
from functions.remediators.athena import WorkGroupMetrics
from functions.remediators.awslambda import FunctionPolicyNotPublic
from functions.remediators.base import Remediator, Rule
from functions.remediators.cloudtrail import (
    MultiRegionTrail,
    S3DataEvents,
    TrailBucketAccessLogging,
    TrailKmsEncryption,
    TrailLogFileValidation,
)
from functions.remediators.cloudtrail_logs import TrailCloudWatchLogs
from functions.remediators.cloudwatch import MonitoringAlarms
from functions.remediators.dynamodb import TableDeletionProtection
from functions.remediators.ec2 import (
    DefaultSecurityGroupClosed,
    EbsDefaultEncryption,
    EbsSnapshotNotPublic,
    InstanceMetadataV2,
    NetworkAclOpenIngress,
    SecurityGroupAdminPorts,
    SecurityGroupHighRiskPorts,
    VpcFlowLogs,
)
from functions.remediators.ec2_subnets import SubnetNoAutoPublicIp
from functions.remediators.ecr import RepositoryScanOnPush
from functions.remediators.efs import FileSystemEncryption
from functions.remediators.guardduty import GuardDutyEnabled
from functions.remediators.iam import (
    AccessAnalyzer,
    AccessKeyRotation,
    CloudShellFullAccess,
    ExpiredServerCertificates,
    PasswordPolicy,
    SupportRole,
    UnusedCredentials,
    UserPoliciesToGroup,
)
from functions.remediators.iam_access_keys import OneActiveAccessKey
from functions.remediators.iam_admin_policies import FullAdminPolicy
from functions.remediators.iam_more import UnusedCredentials90
from functions.remediators.kms import KeyRotation
from functions.remediators.logs import LogGroupRetention
from functions.remediators.macie import MacieEnabled
from functions.remediators.network_settings import GroupElbHealthChecks, TransitGatewayNoAutoAccept
from functions.remediators.notify import ManualRemediation
from functions.remediators.notify_services import ServiceManualRemediation
from functions.remediators.rds import (
    AutoMinorVersionUpgrade,
    EncryptedReplacement,
    InstanceNotPublic,
    SnapshotNotPublic,
)
from functions.remediators.rds_settings import (
    ClusterCopyTagsToSnapshot,
    ClusterDeletionProtection,
    InstanceDeletionProtection,
    InstanceMultiAz,
)
from functions.remediators.redshift import ClusterNotPublic
from functions.remediators.redshift_settings import AllowVersionUpgrade, SnapshotRetention
from functions.remediators.s3 import AccountPublicAccessBlock, BucketPublicAccessBlock, BucketSecureTransportPolicy
from functions.remediators.s3_encryption import BucketDefaultEncryption
from functions.remediators.s3_public import BucketPublicReadWriteBlocked
from functions.remediators.sns import TopicEncryption
from functions.remediators.sqs import QueuePolicyNotPublic
from functions.remediators.sqs_encryption import QueueEncryption
from functions.remediators.ssm_documents import BlockPublicSharing, DocumentNotPublic

REMEDIATORS: tuple[type[Remediator], ...] = (
    SecurityGroupAdminPorts,
    SecurityGroupHighRiskPorts,
    DefaultSecurityGroupClosed,
    NetworkAclOpenIngress,
    InstanceMetadataV2,
    EbsSnapshotNotPublic,
    VpcFlowLogs,
    EbsDefaultEncryption,
    BucketPublicAccessBlock,
    AccountPublicAccessBlock,
    PasswordPolicy,
    AccessKeyRotation,
    UnusedCredentials,
    UserPoliciesToGroup,
    SupportRole,
    ExpiredServerCertificates,
    AccessAnalyzer,
    CloudShellFullAccess,
    ManualRemediation,
    BucketSecureTransportPolicy,
    KeyRotation,
    TrailLogFileValidation,
    MultiRegionTrail,
    TrailKmsEncryption,
    TrailBucketAccessLogging,
    S3DataEvents,
    AutoMinorVersionUpgrade,
    InstanceNotPublic,
    SnapshotNotPublic,
    EncryptedReplacement,
    FileSystemEncryption,
    ClusterNotPublic,
    QueuePolicyNotPublic,
    FunctionPolicyNotPublic,
    # issue 17: services ASR's playbook covers
    QueueEncryption,
    TopicEncryption,
    TableDeletionProtection,
    RepositoryScanOnPush,
    InstanceDeletionProtection,
    ClusterDeletionProtection,
    ClusterCopyTagsToSnapshot,
    SubnetNoAutoPublicIp,
    GuardDutyEnabled,
    MonitoringAlarms,
    TrailCloudWatchLogs,
    SnapshotRetention,
    AllowVersionUpgrade,
    ServiceManualRemediation,
    SecurityContact,
    MacieEnabled,
    LogGroupRetention,
    DocumentNotPublic,
    TransitGatewayNoAutoAccept,
    GroupElbHealthChecks,
    InstanceMultiAz,
    UnusedCredentials90,
    BucketPublicReadWriteBlocked,
    BlockPublicSharing,
    StageCacheEncryption,
    WorkGroupMetrics,
    BucketDefaultEncryption,
    OneActiveAccessKey,
    FullAdminPolicy,
)


@dataclass(frozen=True)
class CatalogEntry:
    rule: Rule
    remediator: type[Remediator]

    @property
    def rule_id(self) -> str:
        return self.rule.rule_id

    @property
    def notify_only(self) -> bool:
        return self.rule.default_mode == "notify"

    def as_row(self) -> dict[str, Any]:
        """The `rules --json` row."""
        runbook = self.remediator.runbook
        return {
            "rule_id": self.rule.rule_id,
            "title": self.rule.title,
            "cis": list(self.rule.cis),
            "mode": self.rule.default_mode,
            "disruptive": self.rule.disruptive,
            "disruption": self.rule.disruption,
            "because": self.rule.because,
            "side_effects": self.remediator.side_effects,
            "not_restorable": self.remediator.not_restorable,
            "executor": list(self.remediator.executors()),
            "runbook": runbook.document if runbook else None,
            "permissions": sorted(self.remediator.permissions),
            "reversible": self.remediator.reversible,
            "notify_reads": self.remediator.notify_assesses,  # in notify mode, reads live state for the message
            "resource_types": list(self.remediator.resource_types),
            "remediator": f"{self.remediator.__module__}.{self.remediator.__qualname__}",
        }


def build_catalog(remediators: Iterable[type[Remediator]] = REMEDIATORS) -> dict[str, CatalogEntry]:
    catalog: dict[str, CatalogEntry] = {}
    for remediator in remediators:
        for rule in remediator.rules:
            if rule.rule_id in catalog:
                other = catalog[rule.rule_id].remediator.__name__
                raise ValueError(f"rule {rule.rule_id} is declared by both {other} and {remediator.__name__}")
            catalog[rule.rule_id] = CatalogEntry(rule, remediator)
    return catalog


CATALOG: Mapping[str, CatalogEntry] = build_catalog()


def rule_rows(catalog: Mapping[str, CatalogEntry] = CATALOG) -> list[dict[str, Any]]:
    return [catalog[rule_id].as_row() for rule_id in sorted(catalog, key=_natural_key)]


def _natural_key(rule_id: str) -> tuple[Any, ...]:
    """EC2.2 before EC2.13: sort the numeric part as a number."""
    prefix, _, number = rule_id.partition(".")
    return (prefix, int(number) if number.isdigit() else 0, rule_id)
