"""target-account.yaml: the roles of a member account.

- RemediationRole (assumed by the admin stack's remediate function): a rule's read actions while its toggle is
  dry-run (or notify, for a rule that reads live state in notify mode: Remediator.notify_assesses), its reads and
  writes at enforce; starting only the enforced rules' runbooks.
- AutomationRole (SSM Automation runs the enforced rules' AWS-owned runbooks with it).
- RollbackRole (own toggle, off by default; trusted by one named operator principal): the enabled reversible
  rules' reads and restore actions, for `cspm-remediate rollback`.
- The service roles remediators hand to AWS services (created while such a rule enforces).

Every role carries an explicit Deny on changing, or passing, the remediation roles themselves. Actions that can
hand out more than the call (iam:PassRole, iam:CreateServiceLinkedRole, kms:CreateGrant, role and policy writes)
are narrowed by the remediators' Grants, or refused by the generator (tools/templates/grants.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from functions.engine.automation import DEFAULT_AUTOMATION_ROLE_NAME
from functions.engine.catalog import CATALOG, CatalogEntry
from functions.remediators.base import AUTOMATION_CALLS, Remediator
from tools.templates.cfn import (
    MAX_MANAGED_POLICIES_PER_ROLE,
    Json,
    checked_parameters,
    define_any,
    equals,
    get_att,
    if_,
    not_,
    pruned,
    ref,
    sub,
)
from tools.templates.defaults import DEFAULT_REMEDIATE_FUNCTION_ROLE_NAME, DEFAULT_REMEDIATION_ROLE_NAME
from tools.templates.grants import statements_for
from tools.templates.iam import (
    MAX_INLINE_POLICY_CHARS,
    guarded_policies,
    inline_policy,
    policy_chars,
    service_trust,
    statement,
    trust_policy,
)
from tools.templates.parameters import ACCOUNT_ID, EXTERNAL_ID, ORGANIZATION_ID, ROLLBACK_OPERATOR
from tools.templates.parameters import ROLE_NAME as ROLE_NAME_CONSTRAINT
from tools.templates.rules import (
    acting_entries,
    allowed_modes,
    catalog_entries,
    enabled_condition,
    enabled_conditions,
    enforced_condition,
    enforced_conditions,
    rollback_condition,
    rule_modes,
    runbook_entries,
    toggle_groups,
    toggle_labels,
    toggle_name,
    toggle_parameters,
)
from tools.templates.service_roles import declared_roles, param_constraint, param_parameter

# What the SSM executor (functions/engine/automation.py) calls with the target role: start a runbook, read its status.
SSM_EXECUTOR_ACTIONS = AUTOMATION_CALLS
DEFAULT_ROLLBACK_ROLE_NAME = "CSPMRemediationRollbackRole"
POLICY_PATH = "/cspm-remediation/"  # every generated managed policy: the Deny below names them by it
ROLE_NAME_PARAMETER: Json = ROLE_NAME_CONSTRAINT.spec()
# What no role of this template may do to the remediation roles or their policies (as AWS's Automated Security
# Response denies on its own roles): a compromised caller must not widen, re-trust or unbound them.
SELF_ESCALATION_ACTIONS = (
    "iam:AttachRolePolicy", "iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary",
    "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:DeleteRole", "iam:TagRole", "iam:UntagRole",
    "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicyVersion", "iam:DeletePolicy",
)

OBJECT_DATA_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                       "s3:DeleteObjectVersion")


# -- what a rule is granted, per stage ------------------------------------------------------------------------------
def rule_statements(entry: CatalogEntry, stage: str) -> list[Json]:
    """The statements of one rule's stage (read / write / restore), narrowed as its remediator declares."""
    remediator = entry.remediator
    return statements_for(remediator, remediator.permissions_for(stage), f"{toggle_name(entry.rule_id)}{stage.title()}")


def remediation_statements(entries: Sequence[CatalogEntry]) -> list[tuple[str, Json]]:
    """(condition, statement): reads under the rule's Enabled condition, writes under its Enforced one; a rule that
    can never enforce through the deployed roles (grants_privileges) gets its reads only."""
    guarded: list[tuple[str, Json]] = []
    for entry in entries:
        guarded += [(enabled_condition(entry.rule_id), s) for s in rule_statements(entry, "read")]
        if "enforce" in allowed_modes(entry):
            guarded += [(enforced_condition(entry.rule_id), s) for s in rule_statements(entry, "write")]
            if entry.remediator.runbook is not None:
                guarded.append((enforced_condition(entry.rule_id), start_runbook_statement(entry)))
    return guarded


def rollback_entries(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    return [e for e in entries if e.remediator.reversible and e.remediator.permissions_for("restore")
            and not e.remediator.grants_privileges]


def rollback_statements(entries: Sequence[CatalogEntry]) -> list[tuple[str, Json]]:
    return [(rollback_condition(e.rule_id), s) for e in rollback_entries(entries)
            for stage in ("read", "restore") for s in rule_statements(e, stage)]


def runbook_statements(entry: CatalogEntry) -> list[Json]:
    """The automation role's statements of one rule: its runbook's own calls, and the automation calls on that
    runbook and its executions only (on "*" they would let any enforced rule's execution start every runbook)."""
    runbook = entry.remediator.runbook
    if runbook is None:
        return []
    sid = toggle_name(entry.rule_id) + "Runbook"
    own = [action for action in runbook.role_permissions if action not in AUTOMATION_CALLS]
    automation = [action for action in runbook.role_permissions if action in AUTOMATION_CALLS]
    return [*statements_for(entry.remediator, own, sid),
            statement(f"{sid}Automation", automation, [*runbook_arns(runbook.document), EXECUTIONS])]


def enforcing_runbook_entries(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    return [e for e in runbook_entries(entries) if "enforce" in allowed_modes(e)]


# -- parameters and conditions ---------------------------------------------------------------------------------------
def remediator_parameters(entries: Sequence[CatalogEntry]) -> Json:
    """A template parameter per remediator param a role name, resource or grant depends on (default: the
    remediator's default), so the roles follow an operator's override."""
    result: Json = {}
    for role in declared_roles(acting_entries(entries)):
        result.update(role.parameters())
    for entry in acting_entries(entries):
        for grant in entry.remediator.grants:
            for param in grant.params_used():
                result.setdefault(param_parameter(entry.remediator, param), _param_definition(entry.remediator, param))
    return result


def _param_definition(remediator: type[Remediator], param: str) -> Json:
    rule_ids = ", ".join(rule.rule_id for rule in remediator.rules)
    return {
        **param_constraint(remediator, param, 512).spec(), "Default": str(remediator.default_params[param]),
        "Description": f"{param} of {rule_ids}: the roles here are scoped to it; keep equal to the admin config's "
                       f"rules.<{rule_ids}>.params.{param} when overridden",
    }


def target_parameters(entries: Sequence[CatalogEntry]) -> Json:
    return {
        "AdminAccountId": {
            **ACCOUNT_ID.spec(),
            "Description": "The delegated security account where admin.yaml runs",
        },
        "AdminRemediateRoleName": {
            **ROLE_NAME_PARAMETER, "Default": DEFAULT_REMEDIATE_FUNCTION_ROLE_NAME,
            "Description": "The admin stack's remediate Lambda role (its RemediateFunctionRoleName parameter)",
        },
        "OrganizationId": {
            **ORGANIZATION_ID.spec(),
            "Description": "AWS Organizations id (o-...): only principals of this organization may assume the roles",
        },
        "ExternalId": {
            **EXTERNAL_ID.optional().spec(), "Default": "", "NoEcho": True,
            "Description": "Optional sts:ExternalId the admin stack presents (its ExternalId parameter)",
        },
        "RemediationRoleName": {
            **ROLE_NAME_PARAMETER, "Default": DEFAULT_REMEDIATION_ROLE_NAME,
            "Description": "Name of the role the admin stack assumes in this account",
        },
        "AutomationRoleName": {
            **ROLE_NAME_PARAMETER, "Default": DEFAULT_AUTOMATION_ROLE_NAME,
            "Description": "Name of the role SSM Automation runbooks run with",
        },
        "Rollback": {
            "Type": "String", "Default": "disabled", "AllowedValues": ["disabled", "enabled"],
            "Description": "enabled: create the rollback role, holding the restore actions of the enabled reversible "
                           "rules, assumable by RollbackOperatorArn only (cspm-remediate rollback --role-name)",
        },
        "RollbackRoleName": {
            **ROLE_NAME_PARAMETER, "Default": DEFAULT_ROLLBACK_ROLE_NAME,
            "Description": "Name of the rollback role (when Rollback is enabled)",
        },
        "RollbackOperatorArn": {
            **ROLLBACK_OPERATOR.spec(), "Default": "",
            "Description": "The IAM role or user (in the organization) allowed to assume the rollback role",
        },
        **remediator_parameters(entries),
        **toggle_parameters(entries, "target"),
    }


def target_conditions(entries: Sequence[CatalogEntry]) -> Json:
    conditions: Json = {
        "HasExternalId": not_(equals(ref("ExternalId"), "")),
        "CreateRollbackRole": equals(ref("Rollback"), "enabled"),
    }
    conditions.update(enabled_conditions(entries))
    conditions.update(enforced_conditions(entries))
    for entry in rollback_entries(entries):
        conditions[rollback_condition(entry.rule_id)] = {"Fn::And": [
            {"Condition": "CreateRollbackRole"}, {"Condition": enabled_condition(entry.rule_id)}]}
    return conditions


def target_rules() -> Json:
    return {"RollbackNeedsOperator": {
        "RuleCondition": equals(ref("Rollback"), "enabled"),
        "Assertions": [{"Assert": not_(equals(ref("RollbackOperatorArn"), "")),
                        "AssertDescription": "Rollback enabled: RollbackOperatorArn names who may assume it"}],
    }}


# -- roles -----------------------------------------------------------------------------------------------------------
def remediation_trust() -> Json:
    """Only the admin stack's remediate Lambda role, only from inside the organization, with the ExternalId when
    one is set."""
    org = {"aws:PrincipalOrgID": ref("OrganizationId")}
    with_external_id = {"StringEquals": {**org, "sts:ExternalId": ref("ExternalId")}}
    principal = {"AWS": sub("arn:${AWS::Partition}:iam::${AdminAccountId}:role/${AdminRemediateRoleName}")}
    return trust_policy(principal, if_("HasExternalId", with_external_id, {"StringEquals": org}))


def role_arn(name_parameter: str) -> Json:
    return sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/${{{name_parameter}}}")


def guard_policy(entries: Sequence[CatalogEntry]) -> Json:
    """The explicit Deny every role of this template carries."""
    roles = [role_arn("RemediationRoleName"), role_arn("AutomationRoleName"), role_arn("RollbackRoleName"),
             *(role.role_arn() for role in declared_roles(acting_entries(entries)))]
    policies = sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy{POLICY_PATH}*")
    return inline_policy("deny-self-escalation", [
        {**statement("DenyChangingTheRemediationRoles", SELF_ESCALATION_ACTIONS, [*roles, policies]), "Effect": "Deny"},
        # The automation and service roles are passed to their services by design; these two never are.
        {**statement("DenyPassingTheRemediationRoles", ["iam:PassRole"],
                     [role_arn("RemediationRoleName"), role_arn("RollbackRoleName")]), "Effect": "Deny"},
        # Rules that write bucket policies (S3.5, the CloudTrail buckets) could grant these roles the objects; an
        # identity-policy Deny outranks any bucket policy's Allow, and no rule reads or writes object data.
        {**statement("DenyObjectData", OBJECT_DATA_ACTIONS, "*"), "Effect": "Deny"},
    ])


EXECUTIONS = sub("arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:automation-execution/*")


def runbook_arns(document: str) -> list[Json]:
    """An AWS-owned runbook as IAM sees a start of it: the document (no account in an AWS-owned document's ARN)
    and its automation-definition (SSM's documented examples use the former, the Service Authorization Reference
    the latter, with an account field: "*" matches it whether IAM fills it or leaves it empty)."""
    return [sub(f"arn:${{AWS::Partition}}:ssm:*::document/{document}"),
            sub(f"arn:${{AWS::Partition}}:ssm:*:*:automation-definition/{document}:*")]


def start_runbook_statement(entry: CatalogEntry) -> Json:
    """The SSM executor may start an enforced rule's own runbook (and so create its execution), no other."""
    document = entry.remediator.runbook.document if entry.remediator.runbook else ""
    return statement(f"{toggle_name(entry.rule_id)}StartRunbook", ["ssm:StartAutomationExecution"],
                     [*runbook_arns(document), EXECUTIONS])


def executor_statements(entries: Sequence[CatalogEntry]) -> list[Json]:
    """What the SSM executor needs besides starting the runbooks (per rule, in the managed policies): read their
    executions, pass the automation role to SSM only."""
    return [
        statement("ReadRunbookExecutions", ["ssm:GetAutomationExecution"], EXECUTIONS),
        statement("PassAutomationRole", ["iam:PassRole"], role_arn("AutomationRoleName"),
                  {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}),
    ]


def remediation_role(entries: Sequence[CatalogEntry], runbooks_condition: str | None) -> Json:
    policies: list[Json] = [guard_policy(entries)]
    if runbooks_condition:
        executor = inline_policy("ssm-executor", executor_statements(entries))
        if policy_chars(executor["PolicyDocument"]) + policy_chars(policies[0]) > MAX_INLINE_POLICY_CHARS:
            raise ValueError("the SSM executor policy outgrows a role's inline policies: move it to a managed one")
        policies.append(if_(runbooks_condition, executor))
    return {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": ref("RemediationRoleName"),
        "Description": "Assumed by the CSPM remediation admin stack: reads of the dry-run and enforced rules, "
                       "writes of the enforced ones",
        "MaxSessionDuration": 3600,
        "AssumeRolePolicyDocument": remediation_trust(),
        "Policies": policies,
    }}


def automation_role(entries: Sequence[CatalogEntry], runbooks_condition: str) -> Json:
    ssm_source = {"ArnLike": {"aws:SourceArn": sub(
        "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:automation-execution/*")}}
    return {
        "Type": "AWS::IAM::Role",
        "Condition": runbooks_condition,
        "Properties": {
            "RoleName": ref("AutomationRoleName"),
            "Description": "AutomationAssumeRole of the AWS-owned runbooks of the enforced rules",
            "AssumeRolePolicyDocument": service_trust("ssm.amazonaws.com", ssm_source),
            "Policies": [guard_policy(entries)],
        },
    }


def rollback_role(entries: Sequence[CatalogEntry]) -> Json:
    trust = trust_policy({"AWS": ref("RollbackOperatorArn")},
                         {"StringEquals": {"aws:PrincipalOrgID": ref("OrganizationId")}})
    return {
        "Type": "AWS::IAM::Role",
        "Condition": "CreateRollbackRole",
        "Properties": {
            "RoleName": ref("RollbackRoleName"),
            "Description": "CSPM remediation rollback: restore actions of the enabled reversible rules, for an "
                           "operator running cspm-remediate rollback",
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": trust,
            "Policies": [guard_policy(entries)],
        },
    }


def service_role_resources(conditions: Json, entries: Sequence[CatalogEntry]) -> Json:
    """Service roles exist while a rule that hands them over may write (enforce)."""
    resources: Json = {}
    for role in declared_roles(acting_entries(entries)):
        members = [enforced_condition(e.rule_id) for e in acting_entries(entries)
                   if e.remediator is role.remediator and "enforce" in allowed_modes(e)]
        guard = define_any(conditions, f"{role.logical_id}Needed", members)
        if guard is None:
            continue
        resources[role.logical_id] = {
            "Type": "AWS::IAM::Role",
            "Condition": guard,
            "Properties": {
                "RoleName": role.role_name(),
                "Description": f"Handed to {role.service} by {role.remediator.__name__}",
                "AssumeRolePolicyDocument": service_trust(role.service),
                "Policies": [inline_policy("service", role.statements())],
            },
        }
    return resources


def target_template(catalog: Mapping[str, CatalogEntry] = CATALOG) -> Json:
    entries = catalog_entries(catalog)
    acting = acting_entries(entries)
    conditions = target_conditions(entries)
    runbooks = define_any(conditions, "AnyRunbookRuleEnforced", [enforced_condition(e.rule_id)
                                                                  for e in enforcing_runbook_entries(entries)])
    resources: Json = {"RemediationRole": remediation_role(entries, runbooks)}
    resources.update(guarded_policies(
        conditions, "RemediationPolicy", "RemediationRole",
        "Reads of the dry-run and enforced rules (and of the notify rules that read live state), writes of the "
        "enforced ones", remediation_statements(acting),
        path=POLICY_PATH,
    ))
    if runbooks:
        resources["AutomationRole"] = automation_role(entries, runbooks)
        resources.update(guarded_policies(
            conditions, "AutomationPolicy", "AutomationRole", "Runbook actions of the enforced rules",
            [(enforced_condition(e.rule_id), s) for e in enforcing_runbook_entries(entries)
             for s in runbook_statements(e)],
            path=POLICY_PATH,
        ))
    resources["RollbackRole"] = rollback_role(entries)
    resources.update(guarded_policies(
        conditions, "RollbackPolicy", "RollbackRole", "Restore actions of the enabled reversible rules",
        rollback_statements(acting), path=POLICY_PATH,
    ))
    resources.update(service_role_resources(conditions, entries))
    for role in ("RemediationRole", "AutomationRole", "RollbackRole"):
        check_policy_count(resources, role)
    outputs: Json = {
        "RemediationRoleArn": {"Value": get_att("RemediationRole", "Arn")},
        "RollbackRoleArn": {"Condition": "CreateRollbackRole", "Value": get_att("RollbackRole", "Arn")},
        # Every toggle, including those that grant nothing here (notify-only rules): compare with the admin stack.
        "RuleModes": {"Description": "The rule modes this account's roles were deployed for",
                      "Value": rule_modes(entries)},
    }
    if runbooks:
        outputs["AutomationRoleArn"] = {"Condition": runbooks, "Value": get_att("AutomationRole", "Arn")}
    return pruned({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "CSPM remediation: the roles the admin stack uses in a member account (deploy with StackSets)",
        "Metadata": {"AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {"Label": {"default": "Trust"}, "Parameters": ["AdminAccountId", "AdminRemediateRoleName",
                                                                "OrganizationId", "ExternalId"]},
                {"Label": {"default": "Roles"}, "Parameters": ["RemediationRoleName", "AutomationRoleName",
                                                                *remediator_parameters(entries)]},
                {"Label": {"default": "Rollback"}, "Parameters": ["Rollback", "RollbackRoleName",
                                                                   "RollbackOperatorArn"]},
                *toggle_groups(entries),
            ],
            "ParameterLabels": toggle_labels(entries),
        }},
        "Parameters": checked_parameters(target_parameters(entries)),
        "Rules": target_rules(),
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": outputs,
    })


def check_policy_count(resources: Json, role: str) -> None:
    attached = [r for r in resources.values() if ref(role) in r.get("Properties", {}).get("Roles", [])]
    if len(attached) > MAX_MANAGED_POLICIES_PER_ROLE:
        raise ValueError(f"{role} would need {len(attached)} managed policies (quota {MAX_MANAGED_POLICIES_PER_ROLE})")
