"""Netskope CSPM rule names → canonical rule ids and resource types (CATALOG C), kept as data.

Netskope identifies a violated rule only by its display name, and the names carry stray spaces ("altered :
CloudTrail"). Matching therefore ignores case and whitespace (also around ':'); unknown names map to
`netskope:<rule_name>` so they are reported as having no remediator instead of being dropped. Users extend
the table with an `extra` mapping (same shape) rather than by editing code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from connectors.standards import CIS_V120, CIS_V140, CIS_V300, CIS_V500, FSBP_V100, PCI_V321, security_control_id

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
    "RDS.1": "AwsRdsDbInstance",  # "RDS Instances do not have Publicly Accessible Snapshots": the instance's
    "Redshift.1": "AwsRedshiftCluster",
    "CloudTrail.4": "AwsCloudTrailTrail",
    NACL_RULE_ID: "AwsEc2NetworkAcl",
    "S3.8": "AwsS3Bucket",
    "IAM.3": "AwsIamUser",
}

# Rules whose items may name another resource than the rule's subject: the item's own resource type wins when it is
# one of these (an RDS.1 item on a snapshot is about that snapshot; one on an instance, about its snapshots).
RULE_RESOURCE_TYPE_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "RDS.1": ("AwsRdsDbSnapshot", "AwsRdsDbClusterSnapshot"),
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
    """ASFF resource type: from the rule when known (unless the item names one of the rule's alternatives), else
    from Netskope's resource type; None when neither."""
    own = None
    if isinstance(netskope_type, str) and netskope_type.strip():
        own = _TYPES_BY_KEY.get(_NOT_ALNUM.sub("", netskope_type.casefold()))
    if rule_id in RULE_RESOURCE_TYPES:
        return own if own in RULE_RESOURCE_TYPE_ALTERNATIVES.get(rule_id, ()) else RULE_RESOURCE_TYPES[rule_id]
    return own


_TYPES_BY_KEY: dict[str, str] = {
    _NOT_ALNUM.sub("", name.casefold()): asff for name, asff in NETSKOPE_RESOURCE_TYPES.items()
}


# Netskope's `compliance_standards[].standard` names (compared without case or punctuation) → the Security Hub
# standard whose control ids `connectors.standards` maps, for the fallback below.
NETSKOPE_STANDARDS: dict[str, str] = {
    "CIS-AWS-1.2.0": CIS_V120,
    "CIS-AWS-1.4.0": CIS_V140,
    "CIS-AWS-3.0.0": CIS_V300,
    "CIS-AWS-5.0.0": CIS_V500,
    "PCI-DSS-3.2.1": PCI_V321,
    "AWS-FSBP": FSBP_V100,
    "AWS Foundational Security Best Practices": FSBP_V100,
}
_STANDARDS_BY_KEY = {_NOT_ALNUM.sub("", name.casefold()): std for name, std in NETSKOPE_STANDARDS.items()}
_CONTROL_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*\.[0-9]+")  # a Security Hub control id such as "EC2.13"


def rule_id_from_standards(value: Any) -> str | None:
    """The Security Hub control id an unknown rule's `compliance_standards` point to, when they agree on exactly
    one; None otherwise (several candidates would be a guess, and a guess sends a finding to the wrong fixer).

    An entry `{"standard": "CIS-AWS-1.2.0", "section": "4", "control": "1"}` is CIS v1.2.0 4.1 → EC2.13; an FSBP
    entry whose control is already a control id (`"EC2.13"`) is taken as it is.
    """
    if not isinstance(value, list):
        return None
    found: set[str] = set()
    for entry in value:
        if not isinstance(entry, Mapping):
            continue
        standard = _STANDARDS_BY_KEY.get(_NOT_ALNUM.sub("", str(entry.get("standard") or "").casefold()))
        if standard is None:
            continue
        parts = [str(entry.get(k)).strip() for k in ("section", "control")
                 if isinstance(entry.get(k), str | int) and not isinstance(entry.get(k), bool)
                 and str(entry.get(k)).strip()]
        number = ".".join(parts)
        if standard == FSBP_V100:
            control = parts[-1] if parts else ""
            mapped = security_control_id(standard, control) or (control if _CONTROL_ID.fullmatch(control) else None)
        else:
            mapped = security_control_id(standard, number) if number else None
        if mapped:
            found.add(mapped)
    return found.pop() if len(found) == 1 else None
