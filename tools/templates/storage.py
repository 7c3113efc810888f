"""The admin stack's storage: encryption key, Netskope token secret, work and dead-letter queues, ledger table,
notification topic."""

from __future__ import annotations

from typing import Any

from tools.templates.cfn import Json, get_att, ref, sub
from tools.templates.iam import policy_document
from tools.templates.lambdas import QUEUE_VISIBILITY_TIMEOUT


def encryption_key() -> Json:
    return {
        "Type": "AWS::KMS::Key",
        "Properties": {
            "Description": "CSPM remediation: Netskope token, work queues, notifications",
            "EnableKeyRotation": True,
            "KeyPolicy": policy_document([
                {"Sid": "AccountAdministersKey", "Effect": "Allow",
                 "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "AlarmsPublishToEncryptedTopic", "Effect": "Allow",
                 "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}},
            ]),
        },
    }


def storage_resources() -> Json:
    """Key, secret, queues, ledger table, topic."""
    return {
        "EncryptionKey": encryption_key(),
        "EncryptionKeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {
            "AliasName": sub("alias/${AWS::StackName}"), "TargetKeyId": ref("EncryptionKey")}},
        "NetskopeTokenSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Condition": "UsesNetskope",
            "Properties": {
                "Description": "Netskope REST API token of the CSPM remediation pull function",
                "KmsKeyId": ref("EncryptionKey"),
                "SecretString": sub('{"token": "${NetskopeToken}"}'),
            },
        },
        # The ConfigDocument parameter, where the functions read it at cold start (CSPM_CONFIG=ssm:<name>). A
        # String, not a SecureString (CloudFormation cannot create those): a config holds no secrets.
        "ConfigParameter": {"Type": "AWS::SSM::Parameter", "Condition": "HasConfigDocument", "Properties": {
            "Name": sub("/cspm-remediation/${AWS::StackName}/config"),
            "Description": "CSPM remediation config document (the stack's ConfigDocument parameter)",
            "Type": "String", "Tier": "Standard", "Value": ref("ConfigDocument"),
        }},
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "KmsMasterKeyId": ref("EncryptionKey"), "MessageRetentionPeriod": 1_209_600}},
        "WorkQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "KmsMasterKeyId": ref("EncryptionKey"),
            "KmsDataKeyReusePeriodSeconds": 300,
            "VisibilityTimeout": QUEUE_VISIBILITY_TIMEOUT,
            "MessageRetentionPeriod": 345_600,
            "RedrivePolicy": {"deadLetterTargetArn": get_att("DeadLetterQueue", "Arn"),
                              "maxReceiveCount": ref("MaxReceiveCount")},
        }},
        # Refuses any request to either queue that is not over TLS (the functions' SDK always uses TLS; this
        # holds for every other principal the account lets in). Deny only: access still comes from IAM.
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [ref("WorkQueue"), ref("DeadLetterQueue")],
            "PolicyDocument": policy_document([{
                "Sid": "DenyWithoutTls", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                "Resource": [get_att("WorkQueue", "Arn"), get_att("DeadLetterQueue", "Arn")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }]),
        }},
        "LedgerTable": ledger_table(),
        "NotificationTopic": {"Type": "AWS::SNS::Topic", "Properties": {
            "DisplayName": "CSPM remediation", "KmsMasterKeyId": ref("EncryptionKey")}},
        "NotificationSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasNotificationEmail",
            "Properties": {"Protocol": "email", "Endpoint": ref("NotificationEmail"),
                           "TopicArn": ref("NotificationTopic")},
        },
    }


# -- the ledger table ------------------------------------------------------------------------------------------------
DEFAULT_LEDGER_SCHEMA: Json = {
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "run_id", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "GlobalSecondaryIndexes": [{"IndexName": "run_id", "KeySchema": [{"AttributeName": "run_id", "KeyType": "HASH"}],
                                "Projection": {"ProjectionType": "ALL"}}],
    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
}
_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


def ledger_schema() -> Json:
    """functions.engine.ledger.TABLE_SCHEMA when the ledger module declares it (boto3 create_table arguments plus
    TimeToLiveSpecification), else the agreed default."""
    try:
        from functions.engine import ledger  # optional: written separately, may not declare a schema
    except ImportError:
        return DEFAULT_LEDGER_SCHEMA
    return getattr(ledger, "TABLE_SCHEMA", DEFAULT_LEDGER_SCHEMA)


def ledger_table(schema: Json | None = None) -> Json:
    schema = schema or ledger_schema()
    properties: Json = {"BillingMode": "PAY_PER_REQUEST"}
    for key in _TABLE_KEYS:
        if schema.get(key):
            properties[key] = [_without_throughput(item) for item in schema[key]]
    properties.update({
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": _ttl_attribute(schema), "Enabled": True},
    })
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": properties}


def _ttl_attribute(schema: Json) -> str:
    ttl = schema.get("TimeToLiveSpecification") or {}
    return ttl.get("AttributeName") or schema.get("TimeToLiveAttribute") or "expires_at"


def _without_throughput(item: Any) -> Any:
    """On-demand tables take no ProvisionedThroughput, on the table or its indexes."""
    return {k: v for k, v in item.items() if k != "ProvisionedThroughput"} if isinstance(item, dict) else item
