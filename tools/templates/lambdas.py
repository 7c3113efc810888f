"""The admin stack's functions: roles (least privilege per handler), log groups, alarms, the queue's event
source, schedules and Security Hub event rules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.securityhub_v2 import EVENT_DETAIL_TYPE as V2_EVENT_DETAIL_TYPE
from connectors.securityhub_v2 import IAM_ACTIONS as V2_IAM_ACTIONS
from connectors.securityhub_v2 import OPEN_STATUS_IDS as V2_OPEN_STATUS_IDS
from functions.engine.catalog import CatalogEntry
from tools.templates.cfn import Json, get_att, if_, ref, sub
from tools.templates.defaults import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME
from tools.templates.iam import inline_policy, service_trust, statement
from tools.templates.rules import active_condition, control_entries, rule_modes

# An EventBridge pattern holds 4,096 characters.
MAX_EVENT_PATTERN_CHARS = 4_096


@dataclass(frozen=True)
class Lambda:
    """One of the admin stack's functions. `name` is the logical-id stem and handler name."""

    name: str
    handler: str
    description: str
    timeout: int
    memory: int
    condition: str | None = None  # the admin Condition the function exists under (an opt-in feature)
    asynchronous: bool = True  # invoked asynchronously (a schedule, an EventBridge rule), not by the queue's poller


HANDLERS = "functions.aws_lambda.handlers"
PULL = Lambda("Pull", f"{HANDLERS}.pull", "Pull open findings from the sources into the work queue", 900, 512)
REMEDIATE = Lambda("Remediate", f"{HANDLERS}.remediate", "Remediate findings from the work queue", 300, 512,
                   asynchronous=False)
EVENTS = Lambda("Events", f"{HANDLERS}.events", "Security Hub events (imported, custom action) to the queue", 60, 256)
CLOUDTRAIL_EVENTS = Lambda("CloudTrailEvents", "functions.aws_lambda.cloudtrail_events.handler",
                           "CloudTrail API call events that can break a rule to the queue (RealTimeEvents)", 60, 256,
                           condition="UsesRealTimeEvents")
LAMBDAS = (PULL, REMEDIATE, EVENTS, CLOUDTRAIL_EVENTS)
QUEUE_VISIBILITY_TIMEOUT = 6 * REMEDIATE.timeout  # AWS: at least 6 x the function timeout
QUEUE_BATCH_SIZE = 10
QUEUE_MAX_CONCURRENCY = 5  # bounds the parallel AssumeRole / API pressure on target accounts
# Retries of a delivery that failed (EventBridge or Scheduler could not invoke the function; the function did not
# run). An event older than an hour is covered by the next pull (hourly by default); either way it goes to the queue
# of undelivered events, never nowhere.
RULE_RETRY_POLICY: Json = {"MaximumEventAgeInSeconds": 3_600, "MaximumRetryAttempts": 10}
SCHEDULE_RETRY_POLICY: Json = {"MaximumEventAgeInSeconds": 3_600, "MaximumRetryAttempts": 3}
UNDELIVERED = get_att("UndeliveredEventsQueue", "Arn")


def function_environment(entries: Sequence[CatalogEntry]) -> Json:
    """The CLI's environment variables (DESIGN §5) plus the AWS wiring; every function gets the same set."""
    return {"Variables": {
        "CSPM_MODE": ref("DefaultMode"),
        "CSPM_RULE_MODES": rule_modes(entries),
        "CSPM_SOURCE": if_("UsesBothSources", "securityhub,netskope", ref("Source")),
        # Empty: pull Security Hub in this region (an aggregation region sees every linked one), act on all.
        "CSPM_REGIONS": ref("Regions"),
        # The config document (modes, exclusions, limits, params, executor): a pointer, never the text — a
        # Lambda's environment holds 4 KB in all. Empty: no document, the toggles and DefaultMode only.
        "CSPM_CONFIG": if_("HasConfigDocument", {"Fn::Join": ["", ["ssm:", ref("ConfigParameter")]]},
                           ref("ConfigLocation")),
        "REMEDIATION_ROLE_NAME": ref("RemediationRoleName"),
        # The ExternalId is a NoEcho parameter: its secret's ARN here, never the id (the remediate function reads it
        # at its first AssumeRole; no other function assumes roles nor may read it).
        "REMEDIATION_EXTERNAL_ID_SECRET": if_("HasExternalId", ref("ExternalIdSecret"), ""),
        "REMEDIATION_AUTOMATION_ROLE_NAME": ref("AutomationRoleName"),
        "NETSKOPE_URL": ref("NetskopeUrl"),
        "CSPM_PROWLER_INPUT": if_("UsesProwler", sub("s3://${ProwlerBucket}/${ProwlerKey}"), ""),
        "NETSKOPE_TOKEN_SECRET": if_("UsesNetskope", ref("NetskopeTokenSecret"), ""),
        "LEDGER_TABLE": ref("LedgerTable"),
        "SNS_TOPIC_ARN": ref("NotificationTopic"),
        "WORK_QUEUE_URL": ref("WorkQueue"),
    }}



def _after(prefix: str) -> Json:
    """ConfigLocation without its `ssm:` / `s3://` prefix. The prefix is appended first so that the split always
    has a second element, whichever kind of location was given (or none)."""
    return {"Fn::Select": [1, {"Fn::Split": [prefix, {"Fn::Join": ["", [ref("ConfigLocation"), prefix]]}]}]}


def location_kind() -> Json:
    """"ssm" or "s3" (or "") for ConfigLocation: what comes before its first colon."""
    return {"Fn::Select": [0, {"Fn::Split": [":", {"Fn::Join": ["", [ref("ConfigLocation"), ":"]]}]}]}


def read_config() -> list[Json]:
    """Every function loads the config document at cold start: read access to exactly that parameter or object."""
    partition_region_account = ["arn:", ref("AWS::Partition"), ":ssm:", ref("AWS::Region"), ":", ref("AWS::AccountId")]
    return [
        if_("HasConfigDocument", statement("ReadConfigParameter", ["ssm:GetParameter"], sub(
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ConfigParameter}"))),
        if_("ConfigInSsm", statement("ReadConfigLocationParameter", ["ssm:GetParameter"], {"Fn::Join": ["", [
            *partition_region_account, ":parameter", _after("ssm:")]]})),
        if_("ConfigInS3", statement("ReadConfigLocationObject", ["s3:GetObject"], {"Fn::Join": ["", [
            "arn:", ref("AWS::Partition"), ":s3:::", _after("s3://")]]})),
    ]


def use_key(*services: str, secrets_if: str | None = None) -> Json:
    """kms use of the stack key, only through the services that encrypt with it (Secrets Manager too under the
    condition `secrets_if`)."""
    via: list[Json] = [sub(f"{service}.${{AWS::Region}}.amazonaws.com") for service in services]
    if secrets_if:
        via.append(if_(secrets_if, sub("secretsmanager.${AWS::Region}.amazonaws.com")))
    return statement("UseStackKey", ["kms:Decrypt", "kms:GenerateDataKey"], get_att("EncryptionKey", "Arn"),
                     {"StringEquals": {"kms:ViaService": via}})


def write_logs(function: Lambda) -> Json:
    return statement("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                     get_att(f"{function.name}LogGroup", "Arn"))


def send_work() -> Json:
    return statement("SendWork", ["sqs:SendMessage"], get_att("WorkQueue", "Arn"))


def send_undelivered() -> Json:
    """Lambda writes an asynchronous event that failed every attempt to the function's dead-letter queue with the
    function's own role."""
    return statement("SendUndeliveredEvents", ["sqs:SendMessage"], UNDELIVERED)


HUB_ARN = sub("arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:hub/default")


def record_results() -> Json:
    """The pull and events functions record what they decide without AWS calls (off, excluded, notify...), and
    claim each notification (PutItem), read who sent it (GetItem) and settle it (UpdateItem), so an observation
    is notified once."""
    return statement("RecordDecisions", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                     get_att("LedgerTable", "Arn"))


def notify() -> Json:
    return statement("Notify", ["sns:Publish"], ref("NotificationTopic"))


def function_statements(function: Lambda) -> list[Json]:
    """Least privilege per function (what functions/aws_lambda/handlers.py and the modules it drives call)."""
    if function is PULL:
        return [
            write_logs(PULL), send_work(), send_undelivered(), record_results(), notify(),
            use_key("sqs", "sns", "secretsmanager"),
            *read_config(),
            statement("ReadFindings", ["securityhub:GetFindings"], HUB_ARN),
            # aws-secretsmanager-caching describes the secret to notice a new version, then reads it.
            # GetFindingsV2 is authorized by securityhub:GetFindings, and Security Hub (the OCSF generation)
            # supports no resource-level permissions: "*" for that read, only in a stack that pulls it.
            if_("UsesSecurityHubV2", statement("ReadOcsfFindings", [V2_IAM_ACTIONS["GetFindingsV2"]], "*")),
            if_("UsesProwler", statement("ReadProwlerOutput", ["s3:GetObject"],
                                         sub("arn:${AWS::Partition}:s3:::${ProwlerBucket}/${ProwlerKey}"))),
            if_("UsesNetskope", statement("ReadNetskopeToken", [
                "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], ref("NetskopeTokenSecret"))),
        ]
    if function is REMEDIATE:
        table = get_att("LedgerTable", "Arn")
        return [
            write_logs(REMEDIATE), notify(), use_key("sqs", "sns", secrets_if="HasExternalId"), *read_config(),
            if_("HasExternalId", statement("ReadExternalId", [
                "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], ref("ExternalIdSecret"))),
            statement("AssumeTargetRoles", ["sts:AssumeRole"],
                      sub("arn:${AWS::Partition}:iam::*:role/${RemediationRoleName}"),
                      {"StringEquals": {"aws:ResourceOrgID": ref("OrganizationId")}}),
            statement("ConsumeWork", ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                      "sqs:ReceiveMessage", "sqs:SendMessage"], get_att("WorkQueue", "Arn")),
            # UpdateItem also governs the circuit breaker's TransactWriteItems (two Updates): no action of its own.
            statement("Ledger", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                      [table, {"Fn::Join": ["/", [table, "index", "*"]]}]),
            statement("WriteBackFindings", ["securityhub:BatchUpdateFindings"], HUB_ARN),
            # BatchUpdateFindingsV2 (the same action; no resource-level permissions): status and comment only,
            # never the severity (securityhub:OCSFSyntaxPath/SeverityId must be absent).
            if_("UsesSecurityHubV2", statement("WriteBackOcsfFindings", [V2_IAM_ACTIONS["BatchUpdateFindingsV2"]], "*",
                                               {"Null": {"securityhub:OCSFSyntaxPath/SeverityId": "true"}})),
        ]
    # events and cloudtrail events: both only screen findings and enqueue them (handlers._enqueue_screened)
    return [write_logs(function), send_work(), send_undelivered(), record_results(), notify(), use_key("sqs", "sns"),
            *read_config()]


def function_resources(function: Lambda, entries: Sequence[CatalogEntry]) -> Json:
    # The remediate role has a fixed name: the target accounts' trust policy names it.
    role_name = {"RoleName": ref("RemediateFunctionRoleName")} if function is REMEDIATE else {}
    resources: Json = {
        f"{function.name}Role": {"Type": "AWS::IAM::Role", "Properties": {
            **role_name,
            "Description": f"CSPM remediation {function.name.lower()} function",
            "AssumeRolePolicyDocument": service_trust("lambda.amazonaws.com"),
            "Policies": [inline_policy(function.name.lower(), function_statements(function))],
        }},
        # Retained: the functions' logs are the record of what was changed, and outlive the stack. Encrypted with
        # their own retained key (its policy lets CloudWatch Logs use it for this account's log groups).
        f"{function.name}LogGroup": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain",
                                     "UpdateReplacePolicy": "Retain", "Properties": {
            "RetentionInDays": ref("LogRetentionDays"), "KmsKeyId": get_att("LogsKey", "Arn")}},
        f"{function.name}Function": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Description": function.description,
                "Runtime": LAMBDA_RUNTIME,
                "Architectures": [LAMBDA_ARCHITECTURE],
                "Handler": function.handler,
                "Code": {"S3Bucket": ref("CodeS3Bucket"), "S3Key": ref("CodeS3Key")},
                "Role": get_att(f"{function.name}Role", "Arn"),
                "Timeout": function.timeout,
                "MemorySize": function.memory,
                "LoggingConfig": {"LogGroup": ref(f"{function.name}LogGroup"), "LogFormat": "Text"},
                "Environment": function_environment(entries),
                **({"DeadLetterConfig": {"TargetArn": UNDELIVERED}} if function.asynchronous else {}),
            },
        },
        f"{function.name}ErrorsAlarm": alarm(
            f"The {function.name.lower()} function failed", "AWS/Lambda", "Errors", "Sum",
            [{"Name": "FunctionName", "Value": ref(f"{function.name}Function")}],
        ),
    }
    if function.condition:
        resources = {name: {"Type": r["Type"], "Condition": function.condition, **r} for name, r in resources.items()}
    return resources


def alarm(description: str, namespace: str, metric: str, statistic: str, dimensions: list[Json]) -> Json:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description,
        "Namespace": namespace, "MetricName": metric, "Dimensions": dimensions, "Statistic": statistic,
        "Period": 300, "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [ref("NotificationTopic")],
    }}


def queue_resources() -> Json:
    return {
        "WorkQueueEventSource": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "EventSourceArn": get_att("WorkQueue", "Arn"),
            "FunctionName": ref("RemediateFunction"),
            "BatchSize": QUEUE_BATCH_SIZE,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": QUEUE_MAX_CONCURRENCY},
        }},
        "DeadLetterQueueAlarm": alarm(
            "Work items failed every delivery and are in the dead-letter queue", "AWS/SQS",
            "ApproximateNumberOfMessagesVisible", "Maximum",
            [{"Name": "QueueName", "Value": get_att("DeadLetterQueue", "QueueName")}],
        ),
        "UndeliveredEventsAlarm": alarm(
            "Schedules or events the functions never processed are in the queue of undelivered events", "AWS/SQS",
            "ApproximateNumberOfMessagesVisible", "Maximum",
            [{"Name": "QueueName", "Value": get_att("UndeliveredEventsQueue", "QueueName")}],
        ),
    }


def schedule_resources() -> Json:
    resources: Json = {
        # A pull that fails (a source down) has already enqueued the other sources' findings and fails only so that
        # its alarm fires; Lambda's own retries of an asynchronous invocation (two by default) would pull every
        # source again. The next schedule is the retry.
        "PullInvokeConfig": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
            "FunctionName": ref("PullFunction"), "Qualifier": "$LATEST", "MaximumRetryAttempts": 0}},
    }
    resources["SchedulerRole"] = {"Type": "AWS::IAM::Role", "Properties": {
        "Description": "EventBridge Scheduler invokes the CSPM remediation pull function",
        "AssumeRolePolicyDocument": service_trust("scheduler.amazonaws.com"),
        "Policies": [inline_policy("invoke-pull", [
            statement("InvokePull", ["lambda:InvokeFunction"], get_att("PullFunction", "Arn")),
            # A schedule that could not invoke the function sends the event to its dead-letter queue with this role.
            statement("SendUndeliveredEvents", ["sqs:SendMessage"], UNDELIVERED), use_key("sqs")])],
    }}
    for source, condition in (("securityhub", "UsesSecurityHub"), ("securityhub-v2", "UsesSecurityHubV2"),
                              ("netskope", "UsesNetskope"), ("prowler", "UsesProwler")):
        resources[f"{condition.removeprefix('Uses')}Schedule"] = {
            "Type": "AWS::Scheduler::Schedule",
            "Condition": condition,
            "Properties": {
                "Description": f"Pull {source} findings",
                "ScheduleExpression": ref("ScheduleExpression"),
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "State": "ENABLED",
                "Target": {"Arn": get_att("PullFunction", "Arn"), "RoleArn": get_att("SchedulerRole", "Arn"),
                           "Input": json.dumps({"source": source}),
                           "RetryPolicy": SCHEDULE_RETRY_POLICY, "DeadLetterConfig": {"Arn": UNDELIVERED}},
            },
        }
    return resources


def imported_findings_pattern(entries: Sequence[CatalogEntry]) -> Json:
    """Failed, active, new findings of the active rules' controls."""
    def pattern(controls: list[Any]) -> Json:
        return {
            "source": ["aws.securityhub"],
            "detail-type": ["Security Hub Findings - Imported"],
            "detail": {"findings": {
                "Compliance": {"Status": ["FAILED"], "SecurityControlId": controls},
                "RecordState": ["ACTIVE"],
                "Workflow": {"Status": ["NEW"]},
            }},
        }

    every_control = [e.rule_id for e in control_entries(entries)]
    if len(json.dumps(pattern(every_control))) > MAX_EVENT_PATTERN_CHARS:
        raise ValueError("the imported-findings event pattern would exceed EventBridge's limit")
    return pattern([if_(active_condition(e.rule_id), e.rule_id) for e in control_entries(entries)])


def imported_v2_findings_pattern(entries: Sequence[CatalogEntry]) -> Json:
    """Security Hub's OCSF events: failed (compliance.status_id 3), open (New / In Progress) findings of the
    active rules' controls (connectors/securityhub_v2.py re-checks every field)."""
    if len(json.dumps([e.rule_id for e in control_entries(entries)])) * 2 > MAX_EVENT_PATTERN_CHARS:
        raise ValueError("the OCSF imported-findings event pattern would exceed EventBridge's limit")
    return {
        "source": ["aws.securityhub"],
        "detail-type": [V2_EVENT_DETAIL_TYPE],
        "detail": {"findings": {
            "compliance": {"status_id": [3],
                           "control": [if_(active_condition(e.rule_id), e.rule_id) for e in control_entries(entries)]},
            "status_id": list(V2_OPEN_STATUS_IDS),
        }},
    }


def event_rule(condition: str, description: str, pattern: Json) -> Json:
    return {"Type": "AWS::Events::Rule", "Condition": condition, "Properties": {
        "Description": description, "State": "ENABLED", "EventPattern": pattern,
        "Targets": [rule_target(get_att("EventsFunction", "Arn"), "events-function")],
    }}


def rule_target(arn: Json, target_id: str) -> Json:
    """An EventBridge rule's function target: delivery retried, then the event kept in the queue of undelivered
    events (the queue's policy lets EventBridge send for the stack's rules)."""
    return {"Arn": arn, "Id": target_id, "RetryPolicy": RULE_RETRY_POLICY, "DeadLetterConfig": {"Arn": UNDELIVERED}}


def invoke_permission(condition: str, rule: str) -> Json:
    return {"Type": "AWS::Lambda::Permission", "Condition": condition, "Properties": {
        "Action": "lambda:InvokeFunction", "FunctionName": ref("EventsFunction"),
        "Principal": "events.amazonaws.com", "SourceArn": get_att(rule, "Arn"),
    }}


def event_resources(entries: Sequence[CatalogEntry], conditions: Json, custom_action_arn: Json) -> Json:
    """The rules that invoke the events function (custom_action_arn: the "Remediate now" action's, see
    tools/templates/action_target.py)."""
    resources: Json = {
        "CustomActionRule": event_rule("UsesSecurityHub", "Findings sent with the Remediate now action", {
            "source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Custom Action"],
            "resources": [custom_action_arn],
        }),
        "CustomActionPermission": invoke_permission("UsesSecurityHub", "CustomActionRule"),
    }
    if "WatchImportedFindings" in conditions:
        resources["ImportedFindingsRule"] = event_rule(
            "WatchImportedFindings", "New failed findings of the active rules", imported_findings_pattern(entries))
        resources["ImportedFindingsPermission"] = invoke_permission("WatchImportedFindings", "ImportedFindingsRule")
    if "WatchImportedFindingsV2" in conditions:
        resources["ImportedFindingsV2Rule"] = event_rule("WatchImportedFindingsV2",
                                                         "New failed OCSF findings of the active rules",
                                                         imported_v2_findings_pattern(entries))
        resources["ImportedFindingsV2Permission"] = invoke_permission("WatchImportedFindingsV2",
                                                                      "ImportedFindingsV2Rule")
    return resources
