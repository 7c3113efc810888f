"""The admin stack's storage: encryption key, Netskope token secret, work and dead-letter queues, the queue of
undelivered events, ledger table, notification topic."""

from __future__ import annotations

from typing import Any

from tools.templates.cfn import Json, get_att, if_, ref, sub
from tools.templates.iam import policy_document
from tools.templates.lambdas import QUEUE_VISIBILITY_TIMEOUT

DEAD_LETTER_RETENTION_SECONDS = 1_209_600  # SQS's maximum, 14 days: time to notice, read and redrive
# The work queue's name is fixed so that the dead-letter queue's RedriveAllowPolicy can name its ARN (a GetAtt of it
# would be a cycle: the work queue's RedrivePolicy already refers to the dead-letter queue). The stack's id ends in
# a UUID unique to the stack: the name is unique per stack and 58 characters whatever the stack's name (a stack name
# holds 128, a queue name 80).
STACK_UUID: Json = {"Fn::Select": [2, {"Fn::Split": ["/", ref("AWS::StackId")]}]}
WORK_QUEUE_NAME: Json = {"Fn::Join": ["-", ["cspm-remediation-work", STACK_UUID]]}
WORK_QUEUE_ARN: Json = {"Fn::Sub": ["arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Name}",
                                    {"Name": WORK_QUEUE_NAME}]}


def account_administers_key() -> Json:
    return {"Sid": "AccountAdministersKey", "Effect": "Allow",
            "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
            "Action": "kms:*", "Resource": "*"}


def logs_key() -> Json:
    """The functions' log groups are retained with the stack, so is their key: deleting the stack's key would leave
    retained logs nobody can read."""
    return {
        "Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Description": "CSPM remediation: the functions' log groups (retained with them)",
            "EnableKeyRotation": True,
            "KeyPolicy": policy_document([account_administers_key(), logs_use_key()]),
        },
    }


def encryption_key() -> Json:
    return {
        "Type": "AWS::KMS::Key",
        "Properties": {
            "Description": "CSPM remediation: Netskope token, work queues, notifications",
            "EnableKeyRotation": True,
            "KeyPolicy": policy_document([
                account_administers_key(),
                {"Sid": "AlarmsPublishToEncryptedTopic", "Effect": "Allow",
                 "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}},
                # EventBridge writes an event it could not deliver to the (encrypted) queue of undelivered events.
                {"Sid": "EventBridgeSendsUndeliveredEvents", "Effect": "Allow",
                 "Principal": {"Service": "events.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}},
            ]),
        },
    }


def logs_use_key() -> Json:
    """CloudWatch Logs encrypts the functions' log groups with the logs key: the regional service principal, only
    for log groups of this account and Region (the encryption context CloudWatch Logs sends is the log group's ARN,
    CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS"). Not narrower: the log groups
    have CloudFormation-generated names, as they are retained with the stack and a fixed name would collide with
    the retained group when the stack is created again."""
    return {
        "Sid": "LogsEncryptLogGroups", "Effect": "Allow",
        "Principal": {"Service": sub("logs.${AWS::Region}.amazonaws.com")},
        "Action": ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
        "Resource": "*",
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": sub(
            "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")}},
    }


def deny_without_tls(*queues: str) -> Json:
    """Refuses any request to the queues that is not over TLS (the functions' SDK always uses TLS; this holds for
    every other principal the account lets in)."""
    return {"Sid": "DenyWithoutTls", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
            "Resource": [get_att(queue, "Arn") for queue in queues],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def undelivered_events_policy(rules: dict[str, str], any_rule: str | None) -> Json:
    """The queue of undelivered events: TLS only, and EventBridge may send to it for the stack's own rules (their
    target's DeadLetterConfig). The functions and the schedules' role send with their IAM permissions."""
    statements = [deny_without_tls("UndeliveredEventsQueue")]
    if any_rule:
        statements.append(if_(any_rule, {
            "Sid": "EventBridgeSendsForTheStackRules", "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": get_att("UndeliveredEventsQueue", "Arn"),
            "Condition": {"ArnEquals": {"aws:SourceArn": [if_(condition, get_att(rule, "Arn"))
                                                          for rule, condition in rules.items()]}},
        }))
    return {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [ref("UndeliveredEventsQueue")], "PolicyDocument": policy_document(statements)}}


def storage_resources() -> Json:
    """Key, secret, queues, ledger table, topic."""
    return {
        "EncryptionKey": encryption_key(),
        "EncryptionKeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {
            "AliasName": sub("alias/${AWS::StackName}"), "TargetKeyId": ref("EncryptionKey")}},
        "LogsKey": logs_key(),
        "LogsKeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {
            "AliasName": sub("alias/${AWS::StackName}-logs"), "TargetKeyId": ref("LogsKey")}},
        "NetskopeTokenSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Condition": "UsesNetskope",
            "Properties": {
                "Description": "Netskope REST API token of the CSPM remediation pull function",
                "KmsKeyId": ref("EncryptionKey"),
                "SecretString": sub('{"token": "${NetskopeToken}"}'),
            },
        },
        # The ExternalId the target roles require, for the remediate function only (a NoEcho parameter must not be
        # copied into an environment anyone with lambda:GetFunctionConfiguration can read).
        "ExternalIdSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Condition": "HasExternalId",
            "Properties": {
                "Description": "sts:ExternalId the CSPM remediation target roles require",
                "KmsKeyId": ref("EncryptionKey"),
                "SecretString": ref("ExternalId"),
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
            "KmsMasterKeyId": ref("EncryptionKey"), "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
            # Only the work queue may use it as its dead-letter queue (and so only to it may messages be redriven).
            "RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": [WORK_QUEUE_ARN]}}},
        "WorkQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": WORK_QUEUE_NAME,
            "KmsMasterKeyId": ref("EncryptionKey"),
            "KmsDataKeyReusePeriodSeconds": 300,
            "VisibilityTimeout": QUEUE_VISIBILITY_TIMEOUT,
            "MessageRetentionPeriod": 345_600,
            "RedrivePolicy": {"deadLetterTargetArn": get_att("DeadLetterQueue", "Arn"),
                              "maxReceiveCount": ref("MaxReceiveCount")},
        }},
        # Deny only: access to the work queues comes from IAM.
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [ref("WorkQueue"), ref("DeadLetterQueue")],
            "PolicyDocument": policy_document([deny_without_tls("WorkQueue", "DeadLetterQueue")]),
        }},
        # Events the functions never processed: a schedule that could not invoke the pull function, an EventBridge
        # rule that could not invoke its function, an asynchronous invocation that failed every attempt. Apart from
        # the work items' dead-letter queue: these are events to replay, not work items to redrive.
        "UndeliveredEventsQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "KmsMasterKeyId": ref("EncryptionKey"), "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS}},
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
