"""The verification after a write re-reads the resource's state, not its tags (the first assessment read them)."""

from __future__ import annotations

import boto3

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from tests.factories import make_finding


def test_tags_read_for_the_exclusion_are_not_read_again_to_verify(moto_aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="web-assets")
    s3.put_bucket_tagging(Bucket="web-assets", Tagging={"TagSet": [{"Key": "team", "Value": "web"}]})
    sessions = AssumedSessions()
    finding = make_finding("S3.8", "AwsS3Bucket", "web-assets", source="netskope")  # carries no tags
    assert not finding.tags
    engine = Engine(config_from_dict({"rules": {"S3.8": {"mode": "enforce"}}}), sessions, stage="apply")
    [result] = engine.run([finding])
    assert result.outcome == "remediated", result.reason
    assert sessions.api_calls["s3.GetBucketTagging"] == 1  # assess only
    assert sessions.api_calls["s3.GetPublicAccessBlock"] >= 2  # assess and the verification read the state
