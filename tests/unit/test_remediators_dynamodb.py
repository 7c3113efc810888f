"""DynamoDB.6 against moto: an unprotected table gets deletion protection, read back (DeleteTable is then refused);
a second assess is compliant; the table's items, capacity and stream survive; rollback turns it off again."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.dynamodb import TableDeletionProtection, table_name
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls

TABLE = "orders"
ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"


@pytest.fixture
def dynamodb(moto_aws):
    return boto3.client("dynamodb", region_name=REGION)


def make_table(dynamodb, protected: bool = False, **tags: str) -> None:
    dynamodb.create_table(
        TableName=TABLE, BillingMode="PROVISIONED",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 7, "WriteCapacityUnits": 3},
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        DeletionProtectionEnabled=protected, Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": "o-1"}})


def finding(resource_id: str = TABLE, **overrides):
    """A Security Hub finding: it carries the table's tags, so they are not read again."""
    return make_finding("DynamoDB.6", "AwsDynamoDbTable", resource_id, **{"tags": {"team": "shop"}, **overrides})


def protected(dynamodb) -> bool:
    return dynamodb.describe_table(TableName=TABLE)["Table"]["DeletionProtectionEnabled"]


def test_unprotected_table_is_protected_and_keeps_the_rest(target: Target, dynamodb) -> None:
    make_table(dynamodb)
    remediator = TableDeletionProtection()
    calls = record_calls(target.client("dynamodb"))

    before = remediator.assess(target, finding())
    assert not before.compliant and before.pre_state == {"DeletionProtectionEnabled": False}
    assert before.changes[0].startswith(f"turn on deletion protection of DynamoDB table {TABLE}")
    assert not protected(dynamodb)

    remediator.apply(target, finding(), before)

    assert protected(dynamodb)
    after = remediator.assess(target, finding())
    assert after.compliant and after.changes == []
    assert calls == ["DescribeTable", "UpdateTable", "DescribeTable"]
    table = dynamodb.describe_table(TableName=TABLE)["Table"]
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "o-1"}})["Item"]
    with pytest.raises(ClientError):  # what the setting is for
        dynamodb.delete_table(TableName=TABLE)


def test_protected_table_is_compliant(target: Target, dynamodb) -> None:
    make_table(dynamodb, protected=True)

    assessment = TableDeletionProtection().assess(target, finding(ARN))

    assert assessment.compliant and assessment.pre_state == {"DeletionProtectionEnabled": True}


def test_restore_turns_it_off_and_twice_is_harmless(target: Target, sessions: AssumedSessions, dynamodb) -> None:
    make_table(dynamodb, env="prod")
    remediator = TableDeletionProtection()
    assessment = remediator.assess(target, finding(tags={}))
    assert assessment.tags == {"env": "prod"}
    remediator.apply(target, finding(), assessment)

    first = remediator.restore(target, finding(), assessment.pre_state)
    second = remediator.restore(target, finding(), assessment.pre_state)

    assert not protected(dynamodb)
    assert first == [f"set deletion protection of DynamoDB table {TABLE} back to False"]
    assert second == [f"deletion protection of DynamoDB table {TABLE} is already False"]
    # tag:GetResources: the engine\'s batched tag read (test_batched_tags_more.py)
    assert iam_actions(sessions.api_calls) | {"tag:GetResources"} == set(TableDeletionProtection.permissions)


def test_missing_table_is_refused(target: Target, dynamodb) -> None:
    with pytest.raises(RemediationError, match="DynamoDB table gone not found"):
        TableDeletionProtection().assess(target, finding("gone"))


def test_table_name_from_an_arn() -> None:
    assert table_name(finding(ARN)) == TABLE
    assert table_name(finding(f"{ARN}/stream/2026-01-01T00:00:00.000")) == TABLE
