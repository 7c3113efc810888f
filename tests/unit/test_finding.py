"""The Finding model: the ★ field set, validation, JSON round-trip."""

import json

import pytest

from connectors.finding import Finding, FindingError, stable_finding_id
from tests.factories import make_finding

CONTRACT_FIELDS = [
    "source", "finding_id", "rule_id", "source_rule", "account_id", "region", "resource_type", "resource_id",
    "resource_arn", "severity", "title", "compliance_status", "workflow_status", "record_state", "standards",
    "first_observed", "last_observed", "tags", "product_arn", "raw",
]


def test_json_form_has_exactly_the_contract_fields():
    finding = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0123456789abcdef0", tags={"a": "b"})
    assert list(finding.to_dict()) == CONTRACT_FIELDS


def test_json_round_trip_preserves_every_field():
    finding = make_finding(
        "S3.8", "AwsS3Bucket", "logs", standards=("cis-aws-foundations-benchmark/v/3.0.0 2.1.4",),
        tags={"env": "prod"}, raw={"x": 1}, product_arn="arn:aws:securityhub:us-east-1::product/aws/securityhub",
    )
    again = Finding.from_dict(json.loads(json.dumps(finding.to_dict())))
    assert again == finding
    assert again.raw == {"x": 1}


def test_finding_is_immutable_including_tags():
    finding = make_finding("S3.8", "AwsS3Bucket", "logs", tags={"env": "prod"})
    with pytest.raises(AttributeError):
        finding.rule_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        finding.tags["env"] = "dev"  # type: ignore[index]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("account_id", "12345", "12 digits"),
        ("account_id", 123456789012, "12 digits"),
        ("region", "Mars (North)", "region"),
        ("severity", "SEVERE", "severity"),
        ("compliance_status", "failed", "compliance_status"),
        ("source", "", "source"),
    ],
)
def test_invalid_values_are_rejected_with_the_field_name(field, value, message):
    with pytest.raises(FindingError, match=message):
        make_finding("S3.8", "AwsS3Bucket", "logs", **{field: value})


def test_empty_resource_id_is_rejected():
    with pytest.raises(FindingError, match="resource_id"):
        make_finding("S3.8", "AwsS3Bucket", " ")


def test_from_dict_names_missing_fields():
    with pytest.raises(FindingError, match="missing field"):
        Finding.from_dict({"source": "securityhub"})


def test_stable_id_is_deterministic_and_distinct():
    a = stable_finding_id("netskope", "r", "111111111111", "us-east-1", "sg-1")
    assert a == stable_finding_id("netskope", "r", "111111111111", "us-east-1", "sg-1")
    assert a != stable_finding_id("netskope", "r", "111111111111", "us-east-1", "sg-2")


@pytest.mark.parametrize(
    ("arn", "region", "partition"),
    [
        (None, "cn-north-1", "aws-cn"),
        (None, "us-gov-west-1", "aws-us-gov"),
        (None, "eusc-de-east-1", "aws-eusc"),
        (None, "global", "aws"),
        ("arn:aws-us-gov:s3:::b", "us-gov-east-1", "aws-us-gov"),
    ],
)
def test_partition_from_arn_or_region(arn, region, partition):
    assert make_finding("S3.8", "AwsS3Bucket", "b", resource_arn=arn, region=region).partition == partition
