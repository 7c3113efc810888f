"""Deploy the generated templates on moto's CloudFormation and check that what gets created is what the parameters
asked for: toggles → target-role permissions, queue → DLQ redrive, ledger table, functions and their environment.

What moto (5.x) cannot do, and how this file copes:

* moto's CloudFormation has no model for AWS::SecretsManager::Secret, AWS::CloudWatch::Alarm,
  AWS::Scheduler::Schedule, AWS::SecurityHub::ActionTarget, AWS::SNS::Subscription (admin.yaml) nor
  AWS::CloudFormation::StackSet (organization-stackset.yaml). It skips such resources with a warning, and a Ref to
  one resolves to nothing — which then breaks the custom-action rule ("Empty arrays are not allowed"). So admin.yaml
  is deployed as a *variant* without those resources, each Ref/GetAtt to one replaced by the ARN CloudFormation
  would return (`moto_variant`). MOTO_UNSUPPORTED pins the list: a moto upgrade that models one fails
  `test_moto_still_lacks_exactly_these_types` so the variant can shrink. Those resources' properties are checked
  on the template itself in tests/unit/test_templates.py; organization-stackset.yaml is not deployed here.
* moto keeps `{"Ref": "AWS::NoValue"}` inside a list as a null element where CloudFormation removes the element,
  so IAM rejects our one-Fn::If-per-statement policies ("Syntax errors in policy"). The `no_value_in_lists`
  fixture wraps moto's template resolver to drop those nulls, as CloudFormation does.
* moto does not evaluate the template's Rules section (parameter assertions).
"""

from __future__ import annotations

import ast
import copy
import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from moto.cloudformation import parsing

from functions.engine.catalog import CATALOG
from tools.templates import TEMPLATE_DIR
from tools.templates.rules import reads_at_notify, toggle_name
from tools.templates.storage import ledger_schema
from tools.templates.target import SSM_EXECUTOR_ACTIONS

ACCOUNT = "123456789012"
ORG = "o-abcdefghij"
CODE_BUCKET = "cspm-code"
FAKE_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
MOTO_UNSUPPORTED = {
    "admin.yaml": {
        "AWS::CloudWatch::Alarm": None,
        "AWS::Lambda::EventInvokeConfig": None,
        "AWS::Events::EventBusPolicy": None,
        "AWS::SNS::Subscription": None,
        "AWS::Scheduler::Schedule": None,
        "AWS::SQS::QueuePolicy": None,
        "AWS::SecretsManager::Secret": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
                                       "secret:moto-stand-in",
        "AWS::SecurityHub::ActionTarget": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:"
                                          "action/custom/RemediateNow",
        # The custom action where CloudFormation lacks the type (moto would run its Lambda in Docker):
        # tests/unit/test_action_target.py runs its handler.
        "Custom::SecurityHubActionTarget": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:"
                                           "action/custom/RemediateNow",
    },
    "target-account.yaml": {},
    "organization-stackset.yaml": {"AWS::CloudFormation::StackSet": None},
    "event-forwarding.yaml": {},
}  # type → the ARN a Ref to it stands for in the variant (None: nothing may refer to it)


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((TEMPLATE_DIR / name).read_text())


def moto_variant(template: dict[str, Any], unsupported: dict[str, str | None]) -> dict[str, Any]:
    """The template without the resources moto cannot create; references to them become their ARN."""
    variant = copy.deepcopy(template)
    dropped = {k: unsupported[r["Type"]] for k, r in template["Resources"].items() if r["Type"] in unsupported}
    for logical_id in dropped:
        del variant["Resources"][logical_id]

    def replace(node: Any) -> Any:
        if isinstance(node, dict):
            target = node.get("Ref") or (node.get("Fn::GetAtt") or [None])[0]
            if target in dropped:
                assert dropped[target], f"{target} is referred to but has no stand-in"
                return {"Fn::Sub": dropped[target]}
            return {key: replace(value) for key, value in node.items()}
        if isinstance(node, list):
            return [replace(value) for value in node]
        return node

    variant["Resources"] = replace(variant["Resources"])
    variant["Outputs"] = replace(variant.get("Outputs", {}))
    return variant


def drop_no_value_in_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, list):
            cleaned = (clean_json(value, resources_map) for value in resource_json)
            return [value for value in cleaned if value is not None]
        return original(resource_json, resources_map)

    monkeypatch.setattr(parsing, "clean_json", clean_json)


@contextmanager
def moto_account() -> Iterator[None]:
    """moto with fake credentials, AWS::NoValue handled as CloudFormation does, and the code bucket."""
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws(), warnings.catch_warnings():
        for name, value in FAKE_ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        drop_no_value_in_lists(monkeypatch)
        warnings.simplefilter("ignore")  # moto warns about every resource type it skips
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=CODE_BUCKET)
        s3.put_object(Bucket=CODE_BUCKET, Key="cspm-remediation.zip", Body=b"PK\x05\x06" + b"\0" * 18)
        yield


@pytest.fixture
def aws() -> Iterator[None]:
    with moto_account():
        yield


@pytest.fixture(scope="class")
def admin_outputs() -> Iterator[dict[str, str]]:
    """One admin stack (ADMIN_PARAMETERS) shared by the tests of a class that only read it."""
    with moto_account():
        yield deploy("admin.yaml", ADMIN_PARAMETERS)


def deploy(name: str, parameters: dict[str, str], stack: str = "cspm") -> dict[str, str]:
    """Create the stack from the moto variant of a committed template; returns its outputs. moto does not check
    the parameters' constraints: this does, as CloudFormation would, so every value a test deploys with is one the
    template accepts."""
    template = load(name)
    for key, value in parameters.items():
        declared = template["Parameters"][key]
        assert str(value) in map(str, declared.get("AllowedValues", [value])), f"{key}={value!r}: not allowed"
        assert len(value) <= declared.get("MaxLength", len(value)), f"{key}={value!r}: too long"
        assert re.fullmatch(declared.get("AllowedPattern", ".*"), value, re.S), f"{key}={value!r}: no match"
    body = json.dumps(moto_variant(template, MOTO_UNSUPPORTED[name]))
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=stack, TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def document(value: Any) -> dict[str, Any]:
    """moto returns policy documents as dicts, JSON, or (inline policies made by CloudFormation) Python reprs."""
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)


def role_statements(role: str) -> list[dict[str, Any]]:
    iam = boto3.client("iam")
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        statements += document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])["Statement"]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        policy = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
        statements += document(policy["Document"])["Statement"]
    return statements


def granted(role: str) -> set[str]:
    """What the role allows (its explicit Deny on changing the remediation roles set apart)."""
    return {a for s in role_statements(role) if s["Effect"] == "Allow"
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def denied(role: str) -> set[str]:
    return {s["Sid"] for s in role_statements(role) if s["Effect"] == "Deny"}


def role_names() -> set[str]:
    return {role["RoleName"] for role in boto3.client("iam").list_roles()["Roles"]}


def all_toggles(mode: str) -> dict[str, str]:
    return {toggle_name(rule_id): ("notify" if entry.notify_only and mode != "off" else mode)
            for rule_id, entry in CATALOG.items()}


# -- what moto can and cannot deploy ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MOTO_UNSUPPORTED))
def test_moto_still_lacks_exactly_these_types(name):
    types = {resource["Type"] for resource in load(name)["Resources"].values()}
    assert types - set(parsing.get_model_map()) == set(MOTO_UNSUPPORTED[name])


def test_the_admin_variant_lacks_only_those_resources():
    template = load("admin.yaml")
    unsupported = MOTO_UNSUPPORTED["admin.yaml"]
    variant = moto_variant(template, unsupported)
    assert set(variant["Resources"]) == {k for k, r in template["Resources"].items() if r["Type"] not in unsupported}
    _, native, custom = variant["Resources"]["CustomActionRule"]["Properties"]["EventPattern"]["resources"][0]["Fn::If"]
    assert "Fn::Sub" in native and "Fn::Sub" in custom


# -- admin.yaml ------------------------------------------------------------------------------------------------------
ADMIN_PARAMETERS = {
    "OrganizationId": ORG, "CodeS3Bucket": CODE_BUCKET, "Source": "both",
    "NetskopeUrl": "tenant.goskope.com", "NetskopeToken": "token-value", "ExternalId": "ext-123",
    "Regions": "us-east-1,eu-west-1", "MaxReceiveCount": "5", "LogRetentionDays": "30",
    toggle_name("EC2.53"): "enforce", toggle_name("IAM.3"): "off",
}


def functions_by_handler() -> dict[str, dict[str, Any]]:
    return {f["Handler"]: f for f in boto3.client("lambda").list_functions()["Functions"]}


class TestAdminStack:
    """Read-only checks of one admin stack deployed with ADMIN_PARAMETERS."""

    def test_stack_functions_and_environment(self, admin_outputs):
        outputs = admin_outputs
        functions = functions_by_handler()
        assert set(functions) == {f"functions.aws_lambda.handlers.{name}" for name in ("pull", "remediate", "events")}
        expected_modes = {rule_id: entry.rule.default_mode for rule_id, entry in CATALOG.items()}
        expected_modes.update({"EC2.53": "enforce", "IAM.3": "off"})
        for function in functions.values():
            assert function["Runtime"].startswith("python3.")
            variables = function["Environment"]["Variables"]
            assert json.loads(variables["CSPM_RULE_MODES"]) == expected_modes
            assert variables["CSPM_MODE"] == "dry-run"
            assert variables["CSPM_SOURCE"] == "securityhub,netskope"
            assert variables["CSPM_REGIONS"] == "us-east-1,eu-west-1"
            assert variables["REMEDIATION_ROLE_NAME"] == "CSPMRemediationRole"
            assert "ext-123" not in json.dumps(variables)  # NoEcho: only its secret's ARN
            assert variables["REMEDIATION_EXTERNAL_ID_SECRET"].startswith(
                f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:")
            assert variables["REMEDIATION_AUTOMATION_ROLE_NAME"] == "CSPMRemediationAutomation"
            assert variables["NETSKOPE_URL"] == "tenant.goskope.com"
            assert variables["NETSKOPE_TOKEN_SECRET"].startswith(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:")
            assert variables["WORK_QUEUE_URL"] == outputs["WorkQueueUrl"]
            assert variables["LEDGER_TABLE"] == outputs["LedgerTableName"]
            assert variables["SNS_TOPIC_ARN"] == outputs["NotificationTopicArn"]
        assert outputs["RemediateFunctionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/CSPMRemediationRemediateFunction"

    def test_queue_redrives_to_the_dead_letter_queue(self, admin_outputs):
        outputs = admin_outputs
        sqs = boto3.client("sqs")
        dead_letter_arn = sqs.get_queue_attributes(
            QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = sqs.get_queue_attributes(QueueUrl=outputs["WorkQueueUrl"], AttributeNames=["All"])["Attributes"]
        assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 5}
        remediate = functions_by_handler()["functions.aws_lambda.handlers.remediate"]
        assert int(attributes["VisibilityTimeout"]) >= 6 * remediate["Timeout"]
        assert attributes.get("KmsMasterKeyId")
        work_queue_arn = attributes["QueueArn"]
        (mapping,) = boto3.client("lambda").list_event_source_mappings(FunctionName=remediate["FunctionName"])[
            "EventSourceMappings"]
        assert mapping["EventSourceArn"] == work_queue_arn
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    def test_event_targets_keep_undelivered_events_in_their_queue(self, admin_outputs):
        sqs = boto3.client("sqs")
        undelivered = sqs.get_queue_attributes(QueueUrl=admin_outputs["UndeliveredEventsQueueUrl"],
                                               AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events")
        targets = [target for rule in events.list_rules()["Rules"]
                   for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
        assert targets and all(t["DeadLetterConfig"] == {"Arn": undelivered} for t in targets)
        assert all(t["RetryPolicy"]["MaximumRetryAttempts"] > 0 for t in targets)

    def test_work_queue_is_named_from_the_stack_id(self, admin_outputs):
        """A fixed name (the dead-letter queue's RedriveAllowPolicy names its ARN) within SQS's 80 characters."""
        (stack,) = boto3.client("cloudformation").describe_stacks(StackName="cspm")["Stacks"]
        name = admin_outputs["WorkQueueUrl"].rsplit("/", 1)[1]
        assert name == "cspm-remediation-work-" + stack["StackId"].rsplit("/", 1)[1] and len(name) <= 80

    def test_ledger_table(self, admin_outputs):
        outputs = admin_outputs
        table = boto3.client("dynamodb").describe_table(TableName=outputs["LedgerTableName"])["Table"]
        schema = ledger_schema()
        assert table["KeySchema"] == schema["KeySchema"]
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == {
            i["IndexName"] for i in schema.get("GlobalSecondaryIndexes", [])}
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    def test_event_rules_follow_the_toggles(self, admin_outputs):
        events = boto3.client("events")
        rules = {r["Name"]: json.loads(r["EventPattern"]) for r in events.list_rules()["Rules"]}
        imported = next(p for p in rules.values() if p["detail-type"] == ["Security Hub Findings - Imported"])
        controls = imported["detail"]["findings"]["Compliance"]["SecurityControlId"]
        assert "EC2.53" in controls and "IAM.3" not in controls
        custom = next(p for p in rules.values() if p["detail-type"] == ["Security Hub Findings - Custom Action"])
        assert custom["resources"] == [f"arn:aws:securityhub:us-east-1:{ACCOUNT}:action/custom/RemediateNow"]
        events_function = functions_by_handler()["functions.aws_lambda.handlers.events"]["FunctionArn"]
        for name in rules:
            assert [t["Arn"] for t in events.list_targets_by_rule(Rule=name)["Targets"]] == [events_function]

    def test_only_the_remediate_role_reads_the_external_id(self, admin_outputs):
        def reads(handler: str) -> list[str]:
            return [s["Sid"] for s in role_statements(_role_of(handler))
                    if "secretsmanager:GetSecretValue" in s["Action"]]

        assert reads("remediate") == ["ReadExternalId"]
        assert reads("events") == [] and reads("pull") == ["ReadNetskopeToken"]

    def test_remediate_role_assumes_only_the_target_role(self, admin_outputs):
        (assume,) = [s for s in role_statements("CSPMRemediationRemediateFunction") if "sts:AssumeRole" in s["Action"]]
        assert assume["Resource"] == "arn:aws:iam::*:role/CSPMRemediationRole"
        assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG}}


def test_admin_with_security_hub_only_and_every_rule_off(aws):
    deploy("admin.yaml", {"OrganizationId": ORG, "CodeS3Bucket": CODE_BUCKET, **all_toggles("off")})
    patterns = [json.loads(r["EventPattern"]) for r in boto3.client("events").list_rules()["Rules"]]
    assert [p["detail-type"] for p in patterns] == [["Security Hub Findings - Custom Action"]]
    for function in functions_by_handler().values():
        variables = function["Environment"]["Variables"]
        assert variables["CSPM_SOURCE"] == "securityhub"
        assert variables.get("CSPM_REGIONS", "") == ""  # no Regions: pull this region, act on every region
        assert variables.get("NETSKOPE_TOKEN_SECRET", "") == ""
        assert set(json.loads(variables["CSPM_RULE_MODES"]).values()) == {"off"}
        assert variables.get("REMEDIATION_EXTERNAL_ID_SECRET", "") == ""  # no ExternalId: no secret
    assert not [s for s in role_statements(_role_of("pull")) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert not [s for s in role_statements(_role_of("remediate")) if "secretsmanager:GetSecretValue" in s["Action"]]


def _role_of(handler: str) -> str:
    return functions_by_handler()[f"functions.aws_lambda.handlers.{handler}"]["Role"].rsplit("/", 1)[1]


# -- target-account.yaml ---------------------------------------------------------------------------------------------
TARGET_BASE = {"AdminAccountId": "111111111111", "OrganizationId": ORG}
SECURITY_GROUP_RULES = ("EC2.13", "EC2.14", "EC2.53", "EC2.54")


def sids(role: str) -> set[str]:
    return {s.get("Sid") for s in role_statements(role)}


def expected_grants(toggles: dict[str, str]) -> tuple[set[str], set[str]]:
    """What the remediation and automation roles should allow for these toggles (others at their defaults): the
    reads of the rules in dry-run or enforce, the writes of those in enforce, plus the SSM executor's when an
    enforced one has a runbook."""
    def mode(rule_id: str) -> str:
        return toggles.get(toggle_name(rule_id), CATALOG[rule_id].rule.default_mode)

    enabled = [e for rule_id, e in CATALOG.items() if (mode(rule_id) in ("dry-run", "enforce") and not e.notify_only)
               or (mode(rule_id) == "notify" and reads_at_notify(e))]  # reads live to name it in the message
    enforced = [e for e in enabled if mode(e.rule_id) == "enforce"]
    remediation = {a for e in enabled for a in e.remediator.permissions_for("read")}
    remediation |= {a for e in enforced for a in e.remediator.permissions_for("write")}
    runbooks = [e.remediator.runbook for e in enforced if e.remediator.runbook]
    if runbooks:
        remediation |= {*SSM_EXECUTOR_ACTIONS, "iam:PassRole"}
    return remediation, {a for runbook in runbooks for a in runbook.role_permissions}


def test_target_toggles_decide_the_role_permissions(aws):
    toggles = {toggle_name("EC2.53"): "off", toggle_name("S3.8"): "notify", toggle_name("EC2.6"): "enforce",
               toggle_name("KMS.4"): "dry-run"}
    outputs = deploy("target-account.yaml", {**TARGET_BASE, "ExternalId": "ext-123", **toggles})
    assert outputs["RemediationRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/CSPMRemediationRole"
    assert json.loads(outputs["RuleModes"])["EC2.53"] == "off"
    present = sids("CSPMRemediationRole")
    assert not any(sid.startswith((toggle_name("EC2.53"), toggle_name("S3.8"))) for sid in present if sid)
    assert {toggle_name("EC2.6") + "Write", toggle_name("KMS.4") + "Read", toggle_name("EC2.13") + "Read"} <= present
    assert toggle_name("KMS.4") + "Write" not in present  # dry-run: reads only
    remediation, automation = expected_grants(toggles)
    assert granted("CSPMRemediationRole") == remediation
    assert not automation and "CSPMRemediationAutomation" not in role_names()  # no runbook rule enforces
    assert "CSPMRemediationFlowLogsDelivery" in role_names()  # EC2.6 enforces
    assert "CSPMRemediationRollbackRole" not in role_names()  # its own toggle, off by default


def test_target_rules_off_means_their_actions_are_absent(aws):
    toggles = {toggle_name(rule_id): "off" for rule_id in SECURITY_GROUP_RULES}
    deploy("target-account.yaml", {**TARGET_BASE, **toggles})
    remediation, automation = expected_grants(toggles)
    assert granted("CSPMRemediationRole") == remediation
    assert not automation and "CSPMRemediationAutomation" not in role_names()  # defaults: dry-run, nothing starts
    off = tuple(toggle_name(rule_id) for rule_id in SECURITY_GROUP_RULES)
    assert not [sid for sid in sids("CSPMRemediationRole") if sid and sid.startswith(off)]


def test_target_trust_carries_organization_and_external_id(aws):
    deploy("target-account.yaml", {**TARGET_BASE, "ExternalId": "ext-123"})
    role = boto3.client("iam").get_role(RoleName="CSPMRemediationRole")["Role"]
    (trust,) = document(role["AssumeRolePolicyDocument"])["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::111111111111:role/CSPMRemediationRemediateFunction"}
    assert trust["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG, "sts:ExternalId": "ext-123"}}


def test_target_with_every_rule_off_grants_nothing(aws):
    deploy("target-account.yaml", {**TARGET_BASE, **all_toggles("off")})
    assert granted("CSPMRemediationRole") == set()
    assert denied("CSPMRemediationRole") == {"DenyChangingTheRemediationRoles", "DenyPassingTheRemediationRoles",
                                             "DenyObjectData"}
    assert role_names() == {"CSPMRemediationRole"}  # no automation role, no flow-logs delivery role
    role = boto3.client("iam").get_role(RoleName="CSPMRemediationRole")["Role"]
    (trust,) = document(role["AssumeRolePolicyDocument"])["Statement"]
    assert trust["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}  # no ExternalId given


def test_target_without_runbook_rules_has_no_ssm_executor(aws):
    boto3_only = next(rule_id for rule_id, entry in CATALOG.items() if entry.remediator.permissions
                      and entry.remediator.runbook is None and "iam:PassRole" not in entry.remediator.permissions)
    toggles = {**all_toggles("off"), toggle_name(boto3_only): "enforce"}
    deploy("target-account.yaml", {**TARGET_BASE, **toggles})
    remediator = CATALOG[boto3_only].remediator
    assert granted("CSPMRemediationRole") == {*remediator.permissions_for("read"), *remediator.permissions_for("write")}
    assert role_names() == {"CSPMRemediationRole"}


# KMS.4 (key rotation, boto3 or runbook, reversible): one rule alone at each toggle.
ALONE = "KMS.4"


def test_one_rule_at_dry_run_grants_only_its_reads(aws):
    deploy("target-account.yaml", {**TARGET_BASE, **all_toggles("off"), toggle_name(ALONE): "dry-run"})
    remediator = CATALOG[ALONE].remediator
    assert granted("CSPMRemediationRole") == set(remediator.permissions_for("read"))
    assert not set(remediator.permissions_for("write")) & granted("CSPMRemediationRole")
    assert role_names() == {"CSPMRemediationRole"}  # no runbook can start: no automation role


def test_one_rule_at_enforce_grants_its_reads_and_writes_and_its_runbook(aws):
    deploy("target-account.yaml", {**TARGET_BASE, **all_toggles("off"), toggle_name(ALONE): "enforce"})
    remediator = CATALOG[ALONE].remediator
    assert granted("CSPMRemediationRole") == {*remediator.permissions_for("read"), *remediator.permissions_for("write"),
                                              *SSM_EXECUTOR_ACTIONS, "iam:PassRole"}
    assert not set(remediator.permissions_for("restore")) & granted("CSPMRemediationRole")
    assert granted("CSPMRemediationAutomation") == set(remediator.runbook.role_permissions)
    starts = [s for s in role_statements("CSPMRemediationRole") if s["Action"] == ["ssm:StartAutomationExecution"]]
    assert [r for s in starts for r in s["Resource"] if "automation-execution/" not in r] == [
        f"arn:aws:ssm:*::document/{remediator.runbook.document}",
        f"arn:aws:ssm:*:*:automation-definition/{remediator.runbook.document}:*"]


def test_rollback_role_exists_only_with_its_toggle_and_holds_the_restores(aws):
    operator = "arn:aws:iam::111111111111:role/SecOps"
    deploy("target-account.yaml", {**TARGET_BASE, **all_toggles("off"), toggle_name(ALONE): "enforce",
                                   "Rollback": "enabled", "RollbackOperatorArn": operator})
    remediator = CATALOG[ALONE].remediator
    assert "CSPMRemediationRollbackRole" in role_names()
    assert granted("CSPMRemediationRollbackRole") == {*remediator.permissions_for("read"),
                                                      *remediator.permissions_for("restore")}
    role = boto3.client("iam").get_role(RoleName="CSPMRemediationRollbackRole")["Role"]
    (trust,) = document(role["AssumeRolePolicyDocument"])["Statement"]
    assert trust["Principal"] == {"AWS": operator}
    assert trust["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}


# -- the config document ---------------------------------------------------------------------------------------------
STACK_CONFIG = {
    "exclude": {"accounts": ["222222222222"], "resources": ["sg-0keepopen0000000"],
                "rules_per_account": {"111111111111": ["S3.8"]}},
    "limits": {"max_actions_per_rule": 5, "max_actions_per_account": 20},
    "rules": {"IAM.3": {"params": {"max_age_days": 120}}, "EC2.53": {"mode": "enforce"}, "S3.8": {"mode": "off"}},
}


def config_statements(role: str) -> list[dict[str, Any]]:
    return [s for s in role_statements(role) if s.get("Sid", "").startswith("ReadConfig")]


def test_admin_stores_the_config_document_and_every_function_reads_exactly_it(aws):
    from functions.engine.settings import Settings

    document_text = json.dumps(STACK_CONFIG)
    deploy("admin.yaml", {"OrganizationId": ORG, "CodeS3Bucket": CODE_BUCKET, "ConfigDocument": document_text,
                          toggle_name("S3.8"): "enforce"})
    name = "/cspm-remediation/cspm/config"
    parameter = boto3.client("ssm").get_parameter(Name=name)["Parameter"]
    assert (parameter["Value"], parameter["Type"]) == (document_text, "String")
    for handler, function in functions_by_handler().items():
        variables = function["Environment"]["Variables"]
        assert variables["CSPM_CONFIG"] == f"ssm:{name}", handler
        (statement,) = config_statements(function["Role"].rsplit("/", 1)[1])
        assert statement["Action"] == ["ssm:GetParameter"]
        assert statement["Resource"] == f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{name}"
        # What the function loads at cold start, from that parameter, with the stack's toggles on top.
        config = Settings.from_env(variables).config(known_rules=CATALOG)
        assert config.exclude.accounts == {"222222222222"} and config.exclude.resources == {"sg-0keepopen0000000"}
        assert config.exclude.rules_per_account == {"111111111111": {"S3.8"}}
        assert (config.limits.max_actions_per_rule, config.limits.max_actions_per_account) == (5, 20)
        assert config.rule("IAM.3").params == {"max_age_days": 120}
        # The more cautious of toggle and document: EC2.53's toggle (dry-run) holds the document's enforce
        # back; the document switches S3.8 off although its toggle says enforce.
        assert config.rule("EC2.53").mode == "dry-run" and config.rule("S3.8").mode == "off"


@pytest.mark.parametrize(("location", "action", "resource"), [
    ("s3://cspm-config-bucket/prod/config.json", "s3:GetObject", "arn:aws:s3:::cspm-config-bucket/prod/config.json"),
    ("ssm:/team/cspm/config", "ssm:GetParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/team/cspm/config"),
])
def test_admin_points_the_functions_at_a_config_location(aws, location, action, resource):
    deploy("admin.yaml", {"OrganizationId": ORG, "CodeS3Bucket": CODE_BUCKET, "ConfigLocation": location})
    assert not boto3.client("ssm").describe_parameters()["Parameters"]  # nothing stored by the stack
    for function in functions_by_handler().values():
        assert function["Environment"]["Variables"]["CSPM_CONFIG"] == location
        (statement,) = config_statements(function["Role"].rsplit("/", 1)[1])
        assert (statement["Action"], statement["Resource"]) == ([action], resource)


def test_admin_without_a_config_grants_no_config_read(aws):
    deploy("admin.yaml", {"OrganizationId": ORG, "CodeS3Bucket": CODE_BUCKET})
    for function in functions_by_handler().values():
        assert function["Environment"]["Variables"].get("CSPM_CONFIG", "") == ""
        assert config_statements(function["Role"].rsplit("/", 1)[1]) == []
