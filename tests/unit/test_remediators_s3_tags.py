"""The exclusion tag for S3.8 and S3.5 whatever the source: a Netskope finding carries no tags, so assess reads the
bucket's live tags (one GetBucketTagging) and the engine reports `excluded` without writing."""

from __future__ import annotations

from typing import Any

import pytest

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.s3 import BucketPublicAccessBlock, BucketSecureTransportPolicy
from tests.factories import make_finding

EXCLUDE = {"cspm-remediation:exclude": "true"}


@pytest.fixture
def s3(target: Target) -> Any:
    return target.client("s3")


def tagged_bucket(s3: Any, name: str, tags: dict[str, str]) -> str:
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return name


def netskope_finding(rule_id: str, bucket: str) -> Any:
    return make_finding(rule_id, "AwsS3Bucket", bucket, source="netskope", tags={})


@pytest.mark.parametrize("remediator", [BucketPublicAccessBlock, BucketSecureTransportPolicy])
def test_assess_reports_the_live_tags(target: Target, s3: Any, remediator: type) -> None:
    rule_id = remediator.rules[0].rule_id
    assert remediator().assess(target, netskope_finding(rule_id, tagged_bucket(s3, "tagged", EXCLUDE))).tags == EXCLUDE
    assert remediator().assess(target, netskope_finding(rule_id, tagged_bucket(s3, "plain", {}))).tags == {}


@pytest.mark.parametrize("remediator", [BucketPublicAccessBlock, BucketSecureTransportPolicy])
def test_netskope_finding_on_a_tagged_bucket_is_excluded_under_global_enforce(
    target: Target, s3: Any, remediator: type
) -> None:
    bucket = tagged_bucket(s3, "orders-public", EXCLUDE)
    finding = netskope_finding(remediator.rules[0].rule_id, bucket)

    (result,) = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply").run([finding])

    assert result.outcome == "excluded"
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_public_access_block(Bucket=bucket)  # no Block Public Access configuration was written
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_policy(Bucket=bucket)  # no policy was written
