"""CATALOG C: Netskope rule names → rule ids, tolerant of whitespace and case, extensible, never dropping."""

from __future__ import annotations

import pytest

from connectors.netskope_rules import (
    NACL_RULE_ID,
    RULE_RESOURCE_TYPES,
    RULES,
    normalize_rule_name,
    resource_type_for,
    rule_id_for,
    rule_names_for,
)

CATALOG_C = {
    "Baseline network operations and data flows: Ensure VPC flow logging is enabled in all VPCs": "EC2.6",
    "Communications and control network protection: Ensure no security groups allow ingress from 0.0.0.0/0 to port "
    "22": "EC2.13",
    "Communications and control network protection: Ensure no security groups allow ingress from 0.0.0.0/0 to port "
    "3389": "EC2.14",
    "Access permissions and authorizations: Ensure RDS Instances do not have Publicly Accessible Snapshots": "RDS.1",
    "Access permissions and authorizations: Ensure Redshift Clusters are not Publicly accessible": "Redshift.1",
    "Secure audit trails so they cannot be altered : CloudTrail Log Files Lack Integrity Validation": "CloudTrail.4",
    "Communications and control network protection: Ensure no rule exists which allows all ingress traffic in default "
    "Network ACL": "netskope:nacl-allow-all-ingress",
    "Communications and control network protection: Ensure no rule exists which allows all ingress traffic in Network "
    "ACL which is associated with a subnet": "netskope:nacl-allow-all-ingress",
    "Ensure S3 Bucket is not publicly accessible.": "S3.8",
    "Remote access: Ensure access keys are rotated every 90 days or less.": "IAM.3",
}


def test_table_is_exactly_catalog_c() -> None:
    assert RULES == CATALOG_C
    assert "Secure audit trails so they cannot be altered : CloudTrail" in next(k for k in RULES if "audit" in k)


@pytest.mark.parametrize(("name", "rule_id"), sorted(CATALOG_C.items()))
def test_exact_names(name: str, rule_id: str) -> None:
    assert rule_id_for(name) == rule_id


@pytest.mark.parametrize(
    ("name", "rule_id"),
    [
        (
            "Secure audit trails so they cannot be altered: CloudTrail Log Files Lack Integrity Validation",
            "CloudTrail.4",
        ),
        (
            "secure audit trails so they cannot be altered  :  cloudtrail log files lack integrity validation",
            "CloudTrail.4",
        ),
        ("  Ensure S3 Bucket is not publicly accessible.  ", "S3.8"),
        ("ENSURE S3 BUCKET IS NOT PUBLICLY ACCESSIBLE.", "S3.8"),
        ("Remote access:Ensure access keys are rotated every 90 days or less.", "IAM.3"),
        ("Remote access: Ensure\taccess keys are\nrotated every 90 days or less.", "IAM.3"),
    ],
)
def test_whitespace_and_case_tolerant(name: str, rule_id: str) -> None:
    assert rule_id_for(name) == rule_id


def test_unknown_names_are_kept_not_dropped() -> None:
    assert rule_id_for("  Ensure EBS volumes are encrypted ") == "netskope:Ensure EBS volumes are encrypted"
    assert rule_id_for("Ensure S3 Bucket is not publicly accessible") == (
        "netskope:Ensure S3 Bucket is not publicly accessible"
    )  # the trailing '.' is part of the name


def test_extra_mapping_extends_and_overrides() -> None:
    extra = {"Ensure EBS volumes are encrypted": "EC2.7", "Ensure S3 Bucket is not publicly accessible.": "S3.2"}
    assert rule_id_for("ensure  EBS volumes are encrypted", extra) == "EC2.7"
    assert rule_id_for("Ensure S3 Bucket is not publicly accessible.", extra) == "S3.2"
    assert rule_id_for("Remote access: Ensure access keys are rotated every 90 days or less.", extra) == "IAM.3"
    assert rule_id_for("Something else", None) == "netskope:Something else"


def test_rule_names_for_ids() -> None:
    assert rule_names_for(["S3.8"]) == ["Ensure S3 Bucket is not publicly accessible."]
    assert len(rule_names_for([NACL_RULE_ID])) == 2
    assert rule_names_for(["EC2.7"], {"Ensure EBS volumes are encrypted": "EC2.7"}) == [
        "Ensure EBS volumes are encrypted"
    ]
    assert rule_names_for(["KMS.4"]) == []


def test_normalize_rule_name() -> None:
    assert normalize_rule_name("  A  :  B\tC ") == "a:b c"


def test_every_rule_has_a_resource_type() -> None:
    assert set(CATALOG_C.values()) <= set(RULE_RESOURCE_TYPES)
    assert resource_type_for("S3.8") == "AwsS3Bucket"
    assert resource_type_for("IAM.3") == "AwsIamUser"
    assert resource_type_for(NACL_RULE_ID) == "AwsEc2NetworkAcl"


def test_rds1_is_about_the_instance_unless_the_item_names_a_snapshot() -> None:
    """Netskope's RDS.1 rule is "RDS Instances do not have Publicly Accessible Snapshots": an item on an instance
    is about its snapshots; an item whose own type is a snapshot is about that snapshot. Other rules keep theirs."""
    assert resource_type_for("RDS.1") == "AwsRdsDbInstance"
    assert resource_type_for("RDS.1", "DB Instance") == "AwsRdsDbInstance"
    assert resource_type_for("RDS.1", "DBSnapshot") == "AwsRdsDbSnapshot"
    assert resource_type_for("RDS.1", "DB Cluster Snapshot") == "AwsRdsDbClusterSnapshot"
    assert resource_type_for("S3.8", "DBSnapshot") == "AwsS3Bucket"


def test_resource_type_from_netskope_type_for_unknown_rules() -> None:
    assert resource_type_for("netskope:x", "SecurityGroup") == "AwsEc2SecurityGroup"
    assert resource_type_for("netskope:x", "security group") == "AwsEc2SecurityGroup"
    assert resource_type_for("netskope:x", "IAMUser") == "AwsIamUser"
    assert resource_type_for("netskope:x", "AwsKmsKey") == "AwsKmsKey"
    assert resource_type_for("netskope:x", "Quantum Widget") is None
    assert resource_type_for("netskope:x", 42) is None
    assert resource_type_for("netskope:x") is None
