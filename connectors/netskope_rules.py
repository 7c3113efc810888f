"""Netskope CSPM rule names → canonical rule ids and resource types (CATALOG C), kept as data.

Netskope identifies a violated rule only by its display name, and the names carry stray spaces ("altered :
CloudTrail"). Matching therefore ignores case and whitespace (also around ':'); unknown names map to
`netskope:<rule_name>` so they are reported as having no remediator instead of being dropped. Users extend
the table with an `extra` mapping (same shape) rather than by editing code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

NACL_RULE_ID = "netskope:nacl-allow-all-ingress"

# Exact `rule_name` strings the Netskope API returns (CATALOG C) → canonical rule id.
RULES: dict[str, str] = {
    "Baseline network operations and data flows: Ensure VPC flow logging is enabled in all VPCs": "EC2.6",
    "Communications and control network protection: Ensure no security groups allow ingress from 0.0.0.0/0 "
    "to port 22": "EC2.13",
    "Communications and control network protection: Ensure no security groups allow ingress from 0.0.0.0/0 "
    "to port 3389": "EC2.14",
    "Access permissions and authorizations: Ensure RDS Instances do not have Publicly Accessible Snapshots": "RDS.1",
    "Access permissions and authorizations: Ensure Redshift Clusters are not Publicly accessible": "Redshift.1",
    "Secure audit trails so they cannot be altered : CloudTrail Log Files Lack Integrity Validation": "CloudTrail.4",
    "Communications and control network protection: Ensure no rule exists which allows all ingress traffic in "
    "default Network ACL": NACL_RULE_ID,
    "Communications and control network protection: Ensure no rule exists which allows all ingress traffic in "
    "Network ACL which is associated with a subnet": NACL_RULE_ID,
    "Ensure S3 Bucket is not publicly accessible.": "S3.8",
    "Remote access: Ensure access keys are rotated every 90 days or less.": "IAM.3",
}

# Canonical rule id → ASFF resource type of the resource the rule is about.
RULE_RESOURCE_TYPES: dict[str, str] = {
    "EC2.6": "AwsEc2Vpc",
    "EC2.13": "AwsEc2SecurityGroup",
    "EC2.14": "AwsEc2SecurityGroup",
    "RDS.1": "AwsRdsDbSnapshot",
    "Redshift.1": "AwsRedshiftCluster",
    "CloudTrail.4": "AwsCloudTrailTrail",
    NACL_RULE_ID: "AwsEc2NetworkAcl",
    "S3.8": "AwsS3Bucket",
    "IAM.3": "AwsIamUser",
}

# (ARN service, ARN resource type) → ASFF resource type, when only the ARN says what the resource is.
ARN_RESOURCE_TYPES: dict[tuple[str, str], str] = {
    ("ec2", "security-group"): "AwsEc2SecurityGroup",
    ("ec2", "vpc"): "AwsEc2Vpc",
    ("ec2", "network-acl"): "AwsEc2NetworkAcl",
    ("ec2", "instance"): "AwsEc2Instance",
    ("ec2", "volume"): "AwsEc2Volume",
    ("ec2", "subnet"): "AwsEc2Subnet",
    ("s3", ""): "AwsS3Bucket",
    ("iam", "user"): "AwsIamUser",
    ("iam", "role"): "AwsIamRole",
    ("iam", "policy"): "AwsIamPolicy",
    ("cloudtrail", "trail"): "AwsCloudTrailTrail",
    ("rds", "snapshot"): "AwsRdsDbSnapshot",
    ("rds", "cluster-snapshot"): "AwsRdsDbClusterSnapshot",
    ("rds", "db"): "AwsRdsDbInstance",
    ("redshift", "cluster"): "AwsRedshiftCluster",
    ("kms", "key"): "AwsKmsKey",
    ("lambda", "function"): "AwsLambdaFunction",
}

# Netskope's own resource type names (compared without case or punctuation) → ASFF resource type, for rules
# outside the table above. ASFF names themselves are accepted too.
NETSKOPE_RESOURCE_TYPES: dict[str, str] = {
    "SecurityGroup": "AwsEc2SecurityGroup",
    "EC2 Security Group": "AwsEc2SecurityGroup",
    "Bucket": "AwsS3Bucket",
    "S3 Bucket": "AwsS3Bucket",
    "IAM User": "AwsIamUser",
    "User": "AwsIamUser",
    "VPC": "AwsEc2Vpc",
    "CloudTrail": "AwsCloudTrailTrail",
    "Trail": "AwsCloudTrailTrail",
    "DB Snapshot": "AwsRdsDbSnapshot",
    "RDS Snapshot": "AwsRdsDbSnapshot",
    "DB Cluster Snapshot": "AwsRdsDbClusterSnapshot",
    "DB Instance": "AwsRdsDbInstance",
    "RDS Instance": "AwsRdsDbInstance",
    "Redshift Cluster": "AwsRedshiftCluster",
    "Network ACL": "AwsEc2NetworkAcl",
    "NACL": "AwsEc2NetworkAcl",
    "Instance": "AwsEc2Instance",
    "EC2 Instance": "AwsEc2Instance",
    "Volume": "AwsEc2Volume",
    "Subnet": "AwsEc2Subnet",
    "KMS Key": "AwsKmsKey",
    "Access Key": "AwsIamAccessKey",
    "IAM Role": "AwsIamRole",
    "IAM Policy": "AwsIamPolicy",
    "Lambda Function": "AwsLambdaFunction",
    "Account": "AwsAccount",
}
NETSKOPE_RESOURCE_TYPES.update({asff: asff for asff in set(NETSKOPE_RESOURCE_TYPES.values())})

_SPACES = re.compile(r"\s+")
_COLON = re.compile(r"\s*:\s*")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize_rule_name(rule_name: str) -> str:
    """Comparison key: whitespace runs collapsed, no space around ':', stripped, casefolded."""
    return _COLON.sub(":", _SPACES.sub(" ", rule_name).strip()).casefold()


_BY_KEY: dict[str, str] = {normalize_rule_name(name): rule_id for name, rule_id in RULES.items()}


def rule_id_for(rule_name: str, extra: Mapping[str, str] | None = None) -> str:
    """The canonical rule id for a Netskope rule name; `netskope:<rule_name>` when it is not in the table.

    `extra` (rule name → rule id) is consulted first, so users can add rules or override the built-in mapping.
    """
    key = normalize_rule_name(rule_name)
    if extra:
        for name, rule_id in extra.items():
            if normalize_rule_name(name) == key:
                return rule_id
    return _BY_KEY.get(key) or "netskope:" + rule_name.strip()


def rule_names_for(rule_ids: Iterable[str], extra: Mapping[str, str] | None = None) -> list[str]:
    """The exact Netskope rule names that map to any of `rule_ids` (to query the API by rule id)."""
    wanted = set(rule_ids)
    table = {**RULES, **(extra or {})}
    return [name for name, rule_id in table.items() if rule_id in wanted]


def resource_type_for(rule_id: str, netskope_type: object = None) -> str | None:
    """ASFF resource type: from the rule when known, else from Netskope's resource type; None when neither."""
    if rule_id in RULE_RESOURCE_TYPES:
        return RULE_RESOURCE_TYPES[rule_id]
    if isinstance(netskope_type, str) and netskope_type.strip():
        return _TYPES_BY_KEY.get(_NOT_ALNUM.sub("", netskope_type.casefold()))
    return None


_TYPES_BY_KEY: dict[str, str] = {
    _NOT_ALNUM.sub("", name.casefold()): asff for name, asff in NETSKOPE_RESOURCE_TYPES.items()
}
