"""The CloudFormation templates are generated from the catalog, current, and least-privilege (the Lambda zip:
tests/unit/test_package.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.engine.catalog import CATALOG, CatalogEntry
from functions.remediators.base import MODES, Remediator, Rule
from functions.remediators.ec2 import EbsDefaultEncryption
from tools import templates
from tools.templates import TEMPLATE_DIR, cfn, iam, rules, storage
from tools.templates.rules import active_condition, enabled_condition, toggle_name
from tools.templates.service_roles import declared_roles
from tools.templates.target import SSM_EXECUTOR_ACTIONS

ROOT = Path(__file__).resolve().parents[2]
ADMIN = templates.admin_template()
TARGET = templates.target_template()
STACKSET = templates.stackset_template()
ALL = {"admin": ADMIN, "target": TARGET, "stackset": STACKSET}
NO_VALUE = {"Ref": "AWS::NoValue"}


# -- helpers ---------------------------------------------------------------------------------------------------------
def guarded(item: Any) -> tuple[str | None, Any]:
    """(condition, value) of an Fn::If whose else-branch is AWS::NoValue; (None, item) otherwise."""
    if isinstance(item, dict) and "Fn::If" in item:
        condition, then, otherwise = item["Fn::If"]
        assert otherwise == NO_VALUE, item
        return condition, then
    return None, item


def role_statements(template: dict[str, Any], role: str) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(condition, statement) of every permission statement a role gets: inline and attached managed policies."""
    resources = template["Resources"]
    for item in resources[role]["Properties"].get("Policies", []):
        policy_condition, policy = guarded(item)
        for statement in policy["PolicyDocument"]["Statement"]:
            condition, statement = guarded(statement)
            yield condition or policy_condition, statement
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield guarded(statement)


def all_statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere in a template (policies, trust policies, key policies), through Fn::If."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
        for value in node.values():
            yield from all_statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_statements(value)


def condition_members(conditions: dict[str, Any], name: str) -> set[str]:
    """The conditions a generated Fn::Or condition is made of (the name itself when it is not one)."""
    definition = conditions.get(name, {})
    if "Fn::Or" not in definition:
        return {name}
    found: set[str] = set()
    pending = list(definition["Fn::Or"])
    while pending:
        operand = pending.pop()
        if "Condition" in operand:
            found.add(operand["Condition"])
        else:
            pending.extend(operand["Fn::Or"])
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def declared(rule_id: str) -> set[str]:
    return set(CATALOG[rule_id].remediator.permissions)


def runbook_declared(rule_id: str) -> set[str]:
    runbook = CATALOG[rule_id].remediator.runbook
    return set(runbook.role_permissions) if runbook else set()


def toggles(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: p for name, p in template["Parameters"].items() if name.startswith("Rule")}


ACTING = [entry.rule_id for entry in rules.acting_entries(list(CATALOG.values()))]
BY_CONDITION = {enabled_condition(rule_id): rule_id for rule_id in CATALOG}


# -- generated and current -------------------------------------------------------------------------------------------
def test_committed_templates_are_current():
    assert templates.stale_files() == [], "templates are stale: run `python -m tools.templates`"


def test_check_and_write(tmp_path):
    assert templates.main(["--check"]) == 0
    assert templates.main(["--check", "--out", str(tmp_path)]) == 1  # nothing there yet
    assert templates.main(["--out", str(tmp_path)]) == 0
    for name in (templates.ADMIN, templates.TARGET, templates.STACKSET):
        assert (tmp_path / name).read_text() == (TEMPLATE_DIR / name).read_text()


def test_committed_yaml_is_the_generated_structure():
    for name, template in ((templates.ADMIN, ADMIN), (templates.TARGET, TARGET), (templates.STACKSET, STACKSET)):
        assert yaml.safe_load((TEMPLATE_DIR / name).read_text()) == template


# -- one toggle per rule ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_every_rule_has_exactly_one_toggle(name):
    found = toggles(ALL[name])
    assert sorted(found) == sorted(toggle_name(rule_id) for rule_id in CATALOG)
    for rule_id, entry in CATALOG.items():
        parameter = found[toggle_name(rule_id)]
        assert parameter["Default"] == entry.rule.default_mode
        assert parameter["AllowedValues"] == rules.allowed_modes(entry)
        assert set(parameter["AllowedValues"]) <= set(MODES)
        assert parameter["Description"].startswith(f"{rule_id}: {entry.rule.title}")
        # says what the toggle does in that template (the stackset passes the target's)
        effect = rules.toggle_effect(entry, "admin" if name == "admin" else "target")
        assert effect in parameter["Description"]
        assert ("disruptive" in parameter["Description"]) == entry.rule.disruptive


def test_toggle_names_are_cloudformation_names():
    assert toggle_name("EC2.53") == "RuleEC2x53"
    assert toggle_name("netskope:nacl-allow-all-ingress").isalnum()


def test_colliding_toggle_names_are_refused():
    catalog = {rule_id: CatalogEntry(Rule(rule_id, "clash"), EbsDefaultEncryption) for rule_id in ("A-1", "A1")}
    with pytest.raises(ValueError, match="same parameter"):
        templates.target_template(catalog)


@pytest.mark.parametrize("name", ALL)
def test_console_groups_show_every_parameter_once(name):
    interface = ALL[name]["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(ALL[name]["Parameters"])
    assert set(interface["ParameterLabels"]) == set(toggles(ALL[name]))


# -- target role: a rule's actions only under its condition ----------------------------------------------------------
def stage_actions(rule_id: str, stage: str) -> set[str]:
    return set(CATALOG[rule_id].remediator.permissions_for(stage))


ENFORCED = {rules.enforced_condition(rule_id): rule_id for rule_id in CATALOG}
ROLLBACK = {rules.rollback_condition(rule_id): rule_id for rule_id in CATALOG}
EXECUTOR_SIDS = {"ReadRunbookExecutions", "PassAutomationRole"}


def allowed(template: dict[str, Any], role: str) -> Iterator[tuple[str | None, dict[str, Any]]]:
    return ((c, s) for c, s in role_statements(template, role) if s["Effect"] == "Allow")


def test_dry_run_grants_reads_and_enforce_adds_writes():
    reads: dict[str, set[str]] = {}
    writes: dict[str, set[str]] = {}
    for condition, statement in allowed(TARGET, "RemediationRole"):
        if statement["Sid"] in EXECUTOR_SIDS:
            continue
        if condition in BY_CONDITION:
            rule_id = BY_CONDITION[condition]
            assert actions(statement) <= stage_actions(rule_id, "read"), statement
            reads.setdefault(rule_id, set()).update(actions(statement))
        else:
            assert condition in ENFORCED, f"statement {statement['Sid']} is not guarded by a rule toggle"
            rule_id = ENFORCED[condition]
            assert actions(statement) <= stage_actions(rule_id, "write") | {"ssm:StartAutomationExecution"}
            writes.setdefault(rule_id, set()).update(actions(statement) - {"ssm:StartAutomationExecution"})
        assert statement["Sid"].startswith(toggle_name(rule_id))
    assert reads == {rule_id: stage_actions(rule_id, "read") for rule_id in ACTING}
    enforceable = [r for r in ACTING if "enforce" in rules.allowed_modes(CATALOG[r])]
    assert writes == {rule_id: stage_actions(rule_id, "write") for rule_id in enforceable}
    assert "IAM.2" not in writes  # its writes can grant any policy: never in the deployed role


def test_runbook_actions_appear_only_at_enforce():
    granted: dict[str, set[str]] = {}
    for condition, statement in allowed(TARGET, "AutomationRole"):
        rule_id = ENFORCED[condition]
        assert actions(statement) <= runbook_declared(rule_id)
        granted.setdefault(rule_id, set()).update(actions(statement))
    with_runbook = [r for r in ACTING if CATALOG[r].remediator.runbook and "enforce" in rules.allowed_modes(CATALOG[r])]
    assert granted == {rule_id: runbook_declared(rule_id) for rule_id in with_runbook}


def test_each_enforced_rule_may_start_only_its_own_runbook():
    starts = [(c, s) for c, s in allowed(TARGET, "RemediationRole") if "ssm:StartAutomationExecution" in actions(s)]
    assert starts
    for condition, statement in starts:
        rule_id = ENFORCED[condition]
        document = CATALOG[rule_id].remediator.runbook.document
        named = [r["Fn::Sub"] for r in statement["Resource"] if "automation-execution" not in r["Fn::Sub"]]
        assert named and all(name.split("/", 1)[1].split(":")[0] == document for name in named), statement


def test_ssm_executor_statements_exist_only_when_a_runbook_rule_is_enforced():
    condition = TARGET["Resources"]["AutomationRole"]["Condition"]
    assert condition == "AnyRunbookRuleEnforced"
    members = json.dumps(TARGET["Conditions"][condition])
    with_runbook = [r for r in ACTING if CATALOG[r].remediator.runbook and "enforce" in rules.allowed_modes(CATALOG[r])]
    assert all(f'"{rules.enforced_condition(r)}"' in members for r in with_runbook)
    assert not any(f'"{enabled_condition(r)}"' in members for r in ACTING)
    executor = {s["Sid"]: (c, s) for c, s in allowed(TARGET, "RemediationRole") if s["Sid"] in EXECUTOR_SIDS}
    assert set(executor) == EXECUTOR_SIDS
    assert {c for c, _ in executor.values()} == {condition}
    _, pass_role = executor["PassAutomationRole"]
    automation_role = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AutomationRoleName}"
    assert pass_role["Resource"] == {"Fn::Sub": automation_role}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}


def test_restore_actions_live_only_in_the_rollback_role():
    role = TARGET["Resources"]["RollbackRole"]
    assert role["Condition"] == "CreateRollbackRole"
    assert TARGET["Parameters"]["Rollback"]["Default"] == "disabled"
    assert TARGET["Conditions"]["CreateRollbackRole"] == {"Fn::Equals": [{"Ref": "Rollback"}, "enabled"]}
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "RollbackOperatorArn"}}
    restores: dict[str, set[str]] = {}
    for condition, statement in allowed(TARGET, "RollbackRole"):
        rule_id = ROLLBACK[condition]
        assert TARGET["Conditions"][condition] == {"Fn::And": [{"Condition": "CreateRollbackRole"},
                                                               {"Condition": enabled_condition(rule_id)}]}
        assert actions(statement) <= stage_actions(rule_id, "read") | stage_actions(rule_id, "restore")
        restores.setdefault(rule_id, set()).update(actions(statement) & stage_actions(rule_id, "restore"))
    assert restores and all(CATALOG[r].remediator.reversible for r in restores)
    # a restore-only action is nowhere in the remediation role
    forward = {a for _, s in allowed(TARGET, "RemediationRole") for a in actions(s)}
    restore_only = {a for e in CATALOG.values() for a in e.remediator.permissions_for("restore")} - {
        a for e in CATALOG.values() for stage in ("read", "write") for a in e.remediator.permissions_for(stage)}
    assert restore_only and not restore_only & forward


def test_every_role_denies_changing_the_remediation_roles():
    for role in ("RemediationRole", "AutomationRole", "RollbackRole"):
        denies = [s for c, s in role_statements(TARGET, role) if s["Effect"] == "Deny"]
        assert {s["Sid"] for s in denies} == {"DenyChangingTheRemediationRoles", "DenyPassingTheRemediationRoles",
                                              "DenyObjectData"}
        changing = next(s for s in denies if s["Sid"] == "DenyChangingTheRemediationRoles")
        assert {"iam:AttachRolePolicy", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy",
                "iam:CreatePolicyVersion"} <= actions(changing)
        resources = json.dumps(changing["Resource"])
        for name in ("RemediationRoleName", "AutomationRoleName", "RollbackRoleName", "VpcFlowLogsDeliveryRoleName"):
            assert "${" + name + "}" in resources
    for resource in TARGET["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            assert resource["Properties"]["Path"] == "/cspm-remediation/"


ESCALATION = {"iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:PutUserPolicy",
              "iam:PutGroupPolicy", "iam:PutRolePolicy", "iam:CreateRole", "iam:AddUserToGroup", "iam:CreateGroup",
              "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:UpdateAssumeRolePolicy",
              "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:PassRole"}
CONDITION_KEYS = {"iam:CreateServiceLinkedRole": "iam:AWSServiceName", "kms:CreateGrant": "kms:GrantIsForAWSResource",
                  "iam:PassRole": "iam:PassedToService"}


def condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key for keys in statement.get("Condition", {}).values() for key in keys}


def test_no_role_can_escalate_on_everything():
    for role in ("RemediationRole", "AutomationRole", "RollbackRole"):
        for _, statement in allowed(TARGET, role):
            risky = actions(statement) & ESCALATION
            if risky and statement["Resource"] == "*":
                assert "iam:PolicyARN" in condition_keys(statement), (role, statement)
            for action, key in CONDITION_KEYS.items():
                if action in actions(statement):
                    assert key in condition_keys(statement), (role, statement)


def test_support_role_and_cloudshell_are_anchored_to_their_aws_policies():
    def scoped(rule_id: str) -> list[dict[str, Any]]:
        return [s for c, s in allowed(TARGET, "RemediationRole")
                if c == rules.enforced_condition(rule_id) and "Scoped" in s["Sid"]]

    support = {s["Sid"]: s for s in scoped("IAM.18")}
    attach = next(s for s in support.values() if "iam:AttachRolePolicy" in actions(s))
    assert attach["Condition"] == {"ArnEquals": {"iam:PolicyARN": {
        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSSupportAccess"}}}
    create = next(s for s in support.values() if "iam:CreateRole" in actions(s))
    assert create["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${SupportRoleRoleName}"}
    (cloudshell,) = scoped("IAM.27")
    assert cloudshell["Condition"]["ArnEquals"]["iam:PolicyARN"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSCloudShellFullAccess"}


def test_an_escalation_action_on_everything_is_refused():
    class Escalates(Remediator):  # never registered: defined here, outside functions.remediators
        rules = (Rule("X.1", "attaches anything"),)
        resource_types = ("AwsIamRole",)
        read_permissions = ("iam:GetRole",)
        write_permissions = ("iam:AttachRolePolicy",)
        reversible = False

        def assess(self, target, finding):  # pragma: no cover - never run
            raise NotImplementedError

        def apply(self, target, finding, assessment):  # pragma: no cover - never run
            raise NotImplementedError

    with pytest.raises(ValueError, match="iam:AttachRolePolicy"):
        templates.target_template({"X.1": CatalogEntry(Escalates.rules[0], Escalates)})


def test_enabled_means_dry_run_or_enforce():
    for rule_id in ACTING:
        if rules.reads_at_notify(CATALOG[rule_id]):
            continue  # below
        condition = TARGET["Conditions"][enabled_condition(rule_id)]
        compared = {operand["Fn::Equals"][1] for operand in condition["Fn::Not"][0]["Fn::Or"]}
        assert compared == {"off", "notify"}


@pytest.mark.parametrize("rule_id", ["IAM.1", "netskope:iam-one-active-access-key"])
def test_a_rule_that_reads_live_state_in_notify_mode_has_its_reads_at_notify(rule_id):
    """Its toggle at notify grants exactly its read actions (the remediate function assesses before it notifies),
    never a write; off grants nothing."""
    assert CATALOG[rule_id].remediator.notify_assesses and rules.allowed_modes(CATALOG[rule_id]) == ["off", "notify"]
    condition = enabled_condition(rule_id)
    assert TARGET["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": toggle_name(rule_id)}, "off"]}]}
    granted = {a for c, s in allowed(TARGET, "RemediationRole") if c == condition for a in actions(s)}
    assert granted == stage_actions(rule_id, "read") and granted
    own = toggle_name(rule_id)  # its statements' Sids: the toggle, then the stage (RuleIAMx1Read, not RuleIAMx10…)
    anywhere = {c for c, s in role_statements(TARGET, "RemediationRole")
                if s["Sid"].startswith(own) and s["Sid"][len(own):][:1].isalpha()}
    assert anywhere == {condition}  # no write, no other guard


def test_managed_policies_exist_only_while_one_of_their_rules_is_enabled():
    """IAM rejects a policy without statements: each policy's Condition is the Or of its statements' ones."""
    for resource in TARGET["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            inside = {guarded(s)[0] for s in resource["Properties"]["PolicyDocument"]["Statement"]}
            assert condition_members(TARGET["Conditions"], resource["Condition"]) == inside


def test_every_managed_policy_fits_iam_limits_with_all_rules_enabled():
    for resource in TARGET["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            statements = [guarded(s)[1] for s in resource["Properties"]["PolicyDocument"]["Statement"]]
            assert iam.policy_chars(iam.policy_document(statements)) <= 6144


# -- least privilege -------------------------------------------------------------------------------------------------
def test_no_wildcard_action_and_no_assume_role_on_everything():
    for name, template in ALL.items():
        for statement in all_statements(template["Resources"]):
            assert "NotAction" not in statement, (name, statement)
            assert "*" not in actions(statement), (name, statement)
            if "sts:AssumeRole" in actions(statement) and "Principal" not in statement:
                assert statement["Resource"] != "*", (name, statement)
                assert "*" not in statement["Resource"], (name, statement)


def test_target_roles_allow_nothing_no_remediator_declares():
    everything_declared = {a for entry in CATALOG.values() for a in entry.remediator.permissions}
    runbooks = {a for rule_id in CATALOG for a in runbook_declared(rule_id)}
    permitted_by_role = {
        "RemediationRole": everything_declared | set(SSM_EXECUTOR_ACTIONS) | {"iam:PassRole"},
        "AutomationRole": runbooks,
        "RollbackRole": everything_declared,
    }
    for role, permitted in permitted_by_role.items():
        used = {a for _, s in allowed(TARGET, role) for a in actions(s)}
        assert used <= permitted, f"{role} allows undeclared actions: {sorted(used - permitted)}"


def test_pass_role_is_always_scoped_to_one_role_and_service():
    for _, statement in allowed(TARGET, "RemediationRole"):
        if "iam:PassRole" in actions(statement):
            assert actions(statement) == {"iam:PassRole"}
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"]
            assert statement["Resource"] != "*"


def test_service_roles_exist_only_with_their_rules():
    roles = declared_roles(list(CATALOG.values()))
    assert roles, "no remediator declares a service role"
    for role in roles:
        resource = TARGET["Resources"][role.logical_id]
        ids = [r for r in ACTING if CATALOG[r].remediator is role.remediator]
        assert resource["Condition"] in {rules.enforced_condition(r) for r in ids} | {f"{role.logical_id}Needed"}
        # named by a template parameter that defaults to the remediator's default param
        name_parameter = resource["Properties"]["RoleName"]["Ref"]
        assert TARGET["Parameters"][name_parameter]["Default"] == role.remediator.default_params[role.role.name_param]
        trust = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        assert trust["Principal"] == {"Service": role.service}
        assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_flow_logs_delivery_role_follows_ec2_6():
    resource = TARGET["Resources"]["FlowLogsDeliveryRole"]
    assert resource["Condition"] == rules.enforced_condition("EC2.6")
    assert resource["Properties"]["RoleName"] == {"Ref": "VpcFlowLogsDeliveryRoleName"}
    assert TARGET["Parameters"]["VpcFlowLogsDeliveryRoleName"]["Default"] == "CSPMRemediationFlowLogsDelivery"
    # the remediation role may pass exactly that role (an operator's override included), to that service only
    passes = [s for _, s in role_statements(TARGET, "RemediationRole") if "iam:PassRole" in actions(s)
              and "FlowLogs" in s["Sid"]]
    assert [s["Resource"] for s in passes] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${VpcFlowLogsDeliveryRoleName}"}]
    group = TARGET["Parameters"]["VpcFlowLogsLogGroupName"]["Default"]
    assert group == "/cspm-remediation/vpc-flow-logs"
    delivery = resource["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert {"Fn::Sub": "arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:${VpcFlowLogsLogGroupName}"} \
        in delivery["Resource"]


# -- trust -----------------------------------------------------------------------------------------------------------
def test_remediation_role_trusts_only_the_admin_remediate_role_in_the_organization():
    role = TARGET["Resources"]["RemediationRole"]["Properties"]
    assert role["RoleName"] == {"Ref": "RemediationRoleName"}
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AdminAccountId}:role/${AdminRemediateRoleName}"}}
    name, with_id, without_id = trust["Condition"]["Fn::If"]
    assert name == "HasExternalId"
    assert with_id == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"},
                                        "sts:ExternalId": {"Ref": "ExternalId"}}}
    assert without_id == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


def test_automation_role_is_for_ssm_of_this_account_only():
    (trust,) = TARGET["Resources"]["AutomationRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ssm.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_admin_remediate_role_assumes_only_the_named_role_in_the_organization():
    resources = ADMIN["Resources"]
    assert resources["RemediateRole"]["Properties"]["RoleName"] == {"Ref": "RemediateFunctionRoleName"}
    for admin_name, target_name in (("RemediateFunctionRoleName", "AdminRemediateRoleName"),
                                    ("RemediationRoleName", "RemediationRoleName"),
                                    ("AutomationRoleName", "AutomationRoleName")):
        assert ADMIN["Parameters"][admin_name]["Default"] == TARGET["Parameters"][target_name]["Default"]
    assume = [s for _, s in role_statements(ADMIN, "RemediateRole") if "sts:AssumeRole" in actions(s)]
    assert assume == [{
        "Sid": "AssumeTargetRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"],
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${RemediationRoleName}"},
        "Condition": {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}},
    }]
    for role in ("PullRole", "EventsRole", "SchedulerRole"):
        assert not any("sts:AssumeRole" in actions(s) for _, s in role_statements(ADMIN, role))


def test_service_trusts_carry_source_account():
    for name, template in (("admin", ADMIN), ("target", TARGET)):
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                if "Service" in statement["Principal"]:
                    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, (
                        name, logical_id)


# -- admin stack -----------------------------------------------------------------------------------------------------
def function_properties(name: str) -> dict[str, Any]:
    return ADMIN["Resources"][f"{name}Function"]["Properties"]


def test_functions_run_the_handlers_with_the_cli_environment():
    from functions.engine.settings import ENV  # the lead's table of variable names (DESIGN §5)

    for name, handler in (("Pull", "pull"), ("Remediate", "remediate"), ("Events", "events")):
        properties = function_properties(name)
        assert properties["Handler"] == f"functions.aws_lambda.handlers.{handler}"
        assert properties["Architectures"] == ["arm64"]
        assert properties["Runtime"].startswith("python3.")
        variables = properties["Environment"]["Variables"]
        assert set(variables) <= set(ENV.values()), set(variables) - set(ENV.values())
        assert {"CSPM_MODE", "CSPM_RULE_MODES", "REMEDIATION_ROLE_NAME", "LEDGER_TABLE", "WORK_QUEUE_URL",
                "SNS_TOPIC_ARN", "NETSKOPE_TOKEN_SECRET"} <= set(variables)


def test_rule_modes_hold_every_toggle():
    text = function_properties("Remediate")["Environment"]["Variables"]["CSPM_RULE_MODES"]["Fn::Sub"]
    assert json.loads(text) == {rule_id: f"${{{toggle_name(rule_id)}}}" for rule_id in CATALOG}


def test_queue_redrive_and_visibility():
    queue = ADMIN["Resources"]["WorkQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": {"Ref": "MaxReceiveCount"}}
    assert ADMIN["Parameters"]["MaxReceiveCount"]["Default"] == 3
    assert queue["VisibilityTimeout"] >= 6 * function_properties("Remediate")["Timeout"]
    assert "KmsMasterKeyId" in queue and "KmsMasterKeyId" in ADMIN["Resources"]["DeadLetterQueue"]["Properties"]
    mapping = ADMIN["Resources"]["WorkQueueEventSource"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["FunctionName"] == {"Ref": "RemediateFunction"}


def test_ledger_table_follows_the_ledger_schema():
    table = ADMIN["Resources"]["LedgerTable"]
    properties = table["Properties"]
    schema = storage.ledger_schema()
    assert properties["KeySchema"] == schema["KeySchema"]
    assert properties["AttributeDefinitions"] == schema["AttributeDefinitions"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["TimeToLiveSpecification"]["Enabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_ledger_schema_shapes():
    with_ttl = {**storage.DEFAULT_LEDGER_SCHEMA, "TimeToLiveSpecification": {"AttributeName": "ttl"}}
    assert storage.ledger_table(with_ttl)["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "ttl"
    provisioned = {**storage.DEFAULT_LEDGER_SCHEMA, "GlobalSecondaryIndexes": [
        {**storage.DEFAULT_LEDGER_SCHEMA["GlobalSecondaryIndexes"][0], "ProvisionedThroughput": {}}]}
    index = storage.ledger_table(provisioned)["Properties"]["GlobalSecondaryIndexes"][0]
    assert "ProvisionedThroughput" not in index


def test_imported_findings_rule_filters_failed_new_findings_of_active_controls():
    rule = ADMIN["Resources"]["ImportedFindingsRule"]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Security Hub Findings - Imported"]
    findings = pattern["detail"]["findings"]
    assert findings["Compliance"]["Status"] == ["FAILED"]
    assert findings["RecordState"] == ["ACTIVE"] and findings["Workflow"]["Status"] == ["NEW"]
    controls = [guarded(item) for item in findings["Compliance"]["SecurityControlId"]]
    assert controls == [(active_condition(r), r) for r in (e.rule_id for e in rules.catalog_entries())
                        if rules.CONTROL_ID.match(r)]
    assert rule["Condition"] == "WatchImportedFindings"


def test_custom_action_goes_to_the_events_function():
    rule = ADMIN["Resources"]["CustomActionRule"]["Properties"]
    assert rule["EventPattern"]["detail-type"] == ["Security Hub Findings - Custom Action"]
    assert rule["EventPattern"]["resources"] == [{"Fn::If": [  # tests/unit/test_action_target.py
        "NativeActionTarget", {"Ref": "RemediateNowAction"}, {"Ref": "RemediateNowActionCustom"}]}]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["EventsFunction", "Arn"]}
    assert ADMIN["Resources"]["RemediateNowAction"]["Properties"]["Id"] == "RemediateNow"


def test_netskope_secret_only_with_netskope():
    secret = ADMIN["Resources"]["NetskopeTokenSecret"]
    assert secret["Condition"] == "UsesNetskope"
    assert secret["Properties"]["KmsKeyId"] == {"Ref": "EncryptionKey"}
    assert secret["Properties"]["SecretString"] == {"Fn::Sub": '{"token": "${NetskopeToken}"}'}
    assert ADMIN["Parameters"]["NetskopeToken"]["NoEcho"] is True
    read = [(c, s) for c, s in role_statements(ADMIN, "PullRole") if "secretsmanager:GetSecretValue" in actions(s)]
    assert read == [("UsesNetskope", read[0][1])]
    assert read[0][1]["Resource"] == {"Ref": "NetskopeTokenSecret"}


def test_schedules_per_source_and_alarms_to_the_topic():
    resources = ADMIN["Resources"]
    assert resources["SecurityHubSchedule"]["Condition"] == "UsesSecurityHub"
    assert resources["NetskopeSchedule"]["Condition"] == "UsesNetskope"
    for name in ("SecurityHubSchedule", "NetskopeSchedule"):
        target = resources[name]["Properties"]["Target"]
        assert target["Arn"] == {"Fn::GetAtt": ["PullFunction", "Arn"]}
        assert json.loads(target["Input"])["source"] in {"securityhub", "netskope"}
    alarms = {k: r for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"DeadLetterQueueAlarm", "UndeliveredEventsAlarm", "PullErrorsAlarm", "RemediateErrorsAlarm",
                           "EventsErrorsAlarm", "CloudTrailEventsErrorsAlarm"}
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "NotificationTopic"}]
        assert alarm["Properties"]["Threshold"] == 0
    assert resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}
    assert resources["NotificationSubscription"]["Condition"] == "HasNotificationEmail"


# -- stackset --------------------------------------------------------------------------------------------------------
def test_stackset_passes_every_target_parameter():
    stackset = STACKSET["Resources"]["TargetRolesStackSet"]["Properties"]
    assert stackset["PermissionModel"] == "SERVICE_MANAGED"
    assert stackset["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert stackset["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    passed = {p["ParameterKey"]: p["ParameterValue"] for p in stackset["Parameters"]}
    assert passed == {name: {"Ref": name} for name in TARGET["Parameters"]}
    for name in TARGET["Parameters"]:
        assert STACKSET["Parameters"][name] == TARGET["Parameters"][name]
    (group,) = stackset["StackInstancesGroup"]
    assert group["DeploymentTargets"] == {"OrganizationalUnitIds": {"Ref": "OrganizationalUnitIds"}}
    assert group["Regions"] == [{"Ref": "DeploymentRegion"}]


# -- the building blocks ---------------------------------------------------------------------------------------------
def test_any_of_respects_fn_or_limits():
    def check(node: Any) -> None:
        if isinstance(node, dict):
            if "Fn::Or" in node:
                assert 2 <= len(node["Fn::Or"]) <= 10
            for value in node.values():
                check(value)
        elif isinstance(node, list):
            for value in node:
                check(value)

    names = [f"C{i}" for i in range(123)]
    condition = cfn.any_of(names)
    check(condition)
    assert json.dumps(condition).count('"Condition"') == 123
    for template in ALL.values():
        check(template.get("Conditions", {}))


def test_define_any():
    conditions: dict[str, Any] = {}
    assert cfn.define_any(conditions, "X", []) is None
    assert cfn.define_any(conditions, "X", ["A"]) == "A" and conditions == {}
    assert cfn.define_any(conditions, "X", ["A", "B"]) == "X" and "X" in conditions


def test_statements_are_packed_into_policies_that_fit():
    guarded_statements = [(f"C{i}", iam.statement(f"S{i}", [f"ec2:Action{i}"], "*")) for i in range(40)]
    conditions: dict[str, Any] = {}
    policies = iam.guarded_policies(conditions, "P", "Role", "test", guarded_statements, budget=600)
    assert len(policies) > 1
    seen = []
    for policy in policies.values():
        document = policy["Properties"]["PolicyDocument"]
        assert sum(iam.policy_chars(guarded(s)[1]) + 1 for s in document["Statement"]) <= 600
        inside = [guarded(s)[0] for s in document["Statement"]]
        seen += inside
        assert condition_members(conditions, policy["Condition"]) == set(inside)
    assert seen == [c for c, _ in guarded_statements]
    with pytest.raises(ValueError, match="exceeds"):
        iam.pack_guarded(guarded_statements, budget=10)


# -- the permissions table of DEPLOY.md ------------------------------------------------------------------------------
def test_deploy_md_permissions_table_is_generated_and_current():
    from tools.templates import permissions_doc

    assert not permissions_doc.stale(), "DEPLOY.md's permissions table is stale: run `python -m tools.templates`"
    table = permissions_doc.permissions_table()
    lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(CATALOG) <= set(lines)
    kms = lines["KMS.4"]
    assert "`kms:GetKeyRotationStatus`" in kms.split(" | ")[1] and "`kms:DisableKeyRotation`" in kms.split(" | ")[3]
    assert "never deployed" in lines["IAM.2"]
    assert permissions_doc.with_table("intro\n", table).endswith(table + "\n")  # appended when the markers are missing


def test_a_failed_pull_is_not_retried_by_lambda():
    """The pull fails after enqueuing the sources that worked (a source down): a Lambda retry would pull them all
    again; the schedule is the retry."""
    from tools.templates import admin_template

    resources = admin_template()["Resources"]
    (config,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert config == {"FunctionName": {"Ref": "PullFunction"}, "Qualifier": "$LATEST", "MaximumRetryAttempts": 0}


def test_both_queues_refuse_requests_without_tls():
    from tools.templates.admin import admin_template

    resources = admin_template()["Resources"]
    policy = resources["QueuePolicy"]  # the queue of undelivered events: tests/unit/test_templates_admin.py
    assert policy["Properties"]["Queues"] == [{"Ref": "WorkQueue"}, {"Ref": "DeadLetterQueue"}]
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "sqs:*" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(statement["Resource"]) == 2
