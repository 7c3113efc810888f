"""Admin stack hardening (issue 12, item 6): encrypted and retained logs, nowhere for an event to be lost, a
dead-letter queue only the work queue may use."""

from __future__ import annotations

from typing import Any

from tools.templates import admin_template

ADMIN = admin_template()
RESOURCES: dict[str, Any] = ADMIN["Resources"]
UNDELIVERED = {"Fn::GetAtt": ["UndeliveredEventsQueue", "Arn"]}


def of_type(kind: str) -> dict[str, Any]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def key_statement(sid: str, key: str = "EncryptionKey") -> dict[str, Any]:
    (found,) = [s for s in RESOURCES[key]["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == sid]
    return found


def inline_statements(role: str) -> list[dict[str, Any]]:
    return [s for policy in RESOURCES[role]["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def sends_undelivered(role: str) -> bool:
    return any(s.get("Action") == ["sqs:SendMessage"] and s.get("Resource") == UNDELIVERED
               for s in inline_statements(role))


# -- log groups ------------------------------------------------------------------------------------------------------
def test_every_function_log_group_is_retained_and_encrypted_with_a_retained_key():
    groups = of_type("AWS::Logs::LogGroup")
    functions = of_type("AWS::Lambda::Function")
    assert {f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions.values()} == set(groups)
    for group in groups.values():
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["LogsKey", "Arn"]}
    key = RESOURCES["LogsKey"]
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"  # or the retained logs are unreadable
    assert key["Properties"]["EnableKeyRotation"] is True


def test_the_key_lets_cloudwatch_logs_encrypt_only_this_accounts_log_groups():
    statement = key_statement("LogsEncryptLogGroups", "LogsKey")
    assert statement["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    assert {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"} <= set(statement["Action"])
    assert statement["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"}}}


# -- undelivered events ----------------------------------------------------------------------------------------------
def test_asynchronously_invoked_functions_keep_failed_events_and_may_send_them():
    functions = of_type("AWS::Lambda::Function")
    asynchronous = {name for name, f in functions.items() if "DeadLetterConfig" in f["Properties"]}
    assert asynchronous == {"PullFunction", "EventsFunction", "CloudTrailEventsFunction",  # the queue's poller: not
                            "ActionTargetFunction"}
    for name in asynchronous:
        assert functions[name]["Properties"]["DeadLetterConfig"] == {"TargetArn": UNDELIVERED}
        assert sends_undelivered(name.replace("Function", "Role"))
    assert not sends_undelivered("RemediateRole")


def test_every_rule_target_retries_then_keeps_the_event():
    rules = of_type("AWS::Events::Rule")
    assert {"CustomActionRule", "ImportedFindingsRule", "ImportedFindingsV2Rule", "CloudTrailEventsRule"} <= set(rules)
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": UNDELIVERED}
            assert 0 < target["RetryPolicy"]["MaximumRetryAttempts"] <= 185
            assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86_400


def test_eventbridge_may_send_to_the_queue_only_for_the_stacks_own_rules():
    policy = RESOURCES["UndeliveredEventsQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "UndeliveredEventsQueue"}]
    deny, allow = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    condition, statement, otherwise = allow["Fn::If"]
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == UNDELIVERED
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    rules = of_type("AWS::Events::Rule")
    assert sources == [{"Fn::If": [r["Condition"], {"Fn::GetAtt": [name, "Arn"]}, {"Ref": "AWS::NoValue"}]}
                       for name, r in rules.items()]
    members = {c["Condition"] for c in ADMIN["Conditions"][condition]["Fn::Or"]}
    assert members == {r["Condition"] for r in rules.values()}
    # The queue is encrypted with the stack key: EventBridge may use it, for this account only.
    assert RESOURCES["UndeliveredEventsQueue"]["Properties"]["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}
    events_key = key_statement("EventBridgeSendsUndeliveredEvents")
    assert events_key["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_schedules_retry_their_delivery_then_keep_the_event_with_their_role():
    schedules = of_type("AWS::Scheduler::Schedule")
    assert schedules
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        assert target["DeadLetterConfig"] == {"Arn": UNDELIVERED}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert sends_undelivered("SchedulerRole")
    (use_key,) = [s for s in inline_statements("SchedulerRole") if s["Sid"] == "UseStackKey"]
    via_sqs = [{"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"}]
    assert use_key["Condition"] == {"StringEquals": {"kms:ViaService": via_sqs}}


def test_undelivered_events_raise_an_alarm():
    alarm = RESOURCES["UndeliveredEventsAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["UndeliveredEventsQueue",
                                                                                  "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}] and alarm["Threshold"] == 0


# -- the dead-letter queue -------------------------------------------------------------------------------------------
def test_only_the_work_queue_may_use_the_dead_letter_queue():
    name = RESOURCES["WorkQueue"]["Properties"]["QueueName"]
    allow = RESOURCES["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    (arn,) = allow["sourceQueueArns"]
    text, variables = arn["Fn::Sub"]
    assert text == "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Name}" and variables["Name"] == name


def test_the_work_queue_name_fits_sqs_whatever_the_stack_name():
    """Named from the stack id's UUID (always 36 characters), not the stack name (up to 128)."""
    separator, (prefix, uuid) = RESOURCES["WorkQueue"]["Properties"]["QueueName"]["Fn::Join"]
    assert uuid == {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    assert len(prefix + separator) + 36 <= 80


# -- the ExternalId --------------------------------------------------------------------------------------------------
def test_the_external_id_is_in_no_environment_only_its_secret_arn():
    secret = RESOURCES["ExternalIdSecret"]
    assert secret["Condition"] == "HasExternalId"
    assert secret["Properties"]["KmsKeyId"] == {"Ref": "EncryptionKey"}
    assert secret["Properties"]["SecretString"] == {"Ref": "ExternalId"}
    handlers = {name: f for name, f in of_type("AWS::Lambda::Function").items() if name != "ActionTargetFunction"}
    assert "Environment" not in RESOURCES["ActionTargetFunction"]["Properties"]
    for function in handlers.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert {"Ref": "ExternalId"} not in variables.values()
        assert variables["REMEDIATION_EXTERNAL_ID_SECRET"] == {"Fn::If": ["HasExternalId", {"Ref": "ExternalIdSecret"},
                                                                          ""]}


def test_only_the_remediate_function_may_read_the_external_id():
    def reads(role: str) -> list[Any]:
        return [s for s in inline_statements(role) if "secretsmanager:GetSecretValue" in str(s)
                and "ExternalIdSecret" in str(s)]

    (grant,) = reads("RemediateRole")
    condition, statement, _ = grant["Fn::If"]
    assert condition == "HasExternalId" and statement["Resource"] == {"Ref": "ExternalIdSecret"}
    assert set(statement["Action"]) == {"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}
    assert not reads("PullRole") and not reads("EventsRole") and not reads("CloudTrailEventsRole")
    (use_key,) = [s for s in inline_statements("RemediateRole") if s.get("Sid") == "UseStackKey"]
    assert {"Fn::If": ["HasExternalId", {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
                       {"Ref": "AWS::NoValue"}]} in use_key["Condition"]["StringEquals"]["kms:ViaService"]
