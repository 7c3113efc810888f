"""target-account.yaml: the remediation role, the SSM automation role and the service roles of a member account.

A rule's declared IAM actions appear in the remediation role only inside a statement guarded by its toggle's
Condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from functions.engine.automation import DEFAULT_AUTOMATION_ROLE_NAME
from functions.engine.catalog import CATALOG, CatalogEntry
from functions.remediators.base import AUTOMATION_CALLS
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
from tools.templates.iam import (
    MAX_INLINE_POLICY_CHARS,
    guarded_policies,
    inline_policy,
    policy_chars,
    service_trust,
    statement,
    trust_policy,
)
from tools.templates.rules import (
    acting_entries,
    catalog_entries,
    enabled_condition,
    enabled_conditions,
    rule_modes,
    runbook_entries,
    toggle_groups,
    toggle_labels,
    toggle_name,
    toggle_parameters,
)
from tools.templates.service_roles import SERVICE_ROLES, service_roles_of

# What the SSM executor (functions/engine/automation.py) calls with the target role: start a runbook, read its status.
SSM_EXECUTOR_ACTIONS = AUTOMATION_CALLS  # the remediation role starts runbooks and reads their status


def rule_statements(entry: CatalogEntry) -> list[Json]:
    """The target-role statements of one rule: its declared actions on "*", and iam:PassRole scoped to the
    service roles its remediator hands over (a remediator that passes an undeclared role is an error)."""
    sid = toggle_name(entry.rule_id)
    actions = set(entry.remediator.permissions)
    statements = []
    if actions - {"iam:PassRole"}:
        statements.append(statement(sid, actions - {"iam:PassRole"}, "*"))
    if "iam:PassRole" in actions:
        roles = service_roles_of(entry.remediator)
        if not roles:
            raise ValueError(f"{entry.remediator.__name__} declares iam:PassRole but no ServiceRole says which role")
        for role in roles:
            statements.append(statement(
                f"{sid}Pass{role.logical_id}", ["iam:PassRole"],
                sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{role.role_name}"),
                {"StringEquals": {"iam:PassedToService": role.service}},
            ))
    return statements


def runbook_statements(entry: CatalogEntry) -> list[Json]:
    runbook = entry.remediator.runbook
    if runbook is None or not runbook.permissions:
        return []
    return [statement(toggle_name(entry.rule_id) + "Runbook", runbook.permissions, "*")]


def target_parameters(entries: Sequence[CatalogEntry]) -> Json:
    return {
        "AdminAccountId": {
            "Type": "String", "AllowedPattern": r"^\d{12}$",
            "Description": "The delegated security account where admin.yaml runs",
        },
        "AdminRemediateRoleName": {
            "Type": "String", "Default": DEFAULT_REMEDIATE_FUNCTION_ROLE_NAME,
            "Description": "The admin stack's remediate Lambda role (its RemediateFunctionRoleName parameter)",
        },
        "OrganizationId": {
            "Type": "String", "AllowedPattern": r"^o-[a-z0-9]{10,32}$",
            "Description": "AWS Organizations id (o-...): only principals of this organization may assume the role",
        },
        "ExternalId": {
            "Type": "String", "Default": "", "NoEcho": True, "AllowedPattern": r"^$|^[\w+=,.@:/-]{2,1224}$",
            "Description": "Optional sts:ExternalId the admin stack presents (its ExternalId parameter)",
        },
        "RemediationRoleName": {
            "Type": "String", "Default": DEFAULT_REMEDIATION_ROLE_NAME,
            "Description": "Name of the role the admin stack assumes in this account",
        },
        "AutomationRoleName": {
            "Type": "String", "Default": DEFAULT_AUTOMATION_ROLE_NAME,
            "Description": "Name of the role SSM Automation runbooks run with",
        },
        **toggle_parameters(entries),
    }


def target_conditions(entries: Sequence[CatalogEntry]) -> Json:
    conditions: Json = {"HasExternalId": not_(equals(ref("ExternalId"), ""))}
    conditions.update(enabled_conditions(entries))
    return conditions


def remediation_trust() -> Json:
    """Only the admin stack's remediate Lambda role, only from inside the organization, with the ExternalId when
    one is set."""
    org = {"aws:PrincipalOrgID": ref("OrganizationId")}
    with_external_id = {"StringEquals": {**org, "sts:ExternalId": ref("ExternalId")}}
    principal = {"AWS": sub("arn:${AWS::Partition}:iam::${AdminAccountId}:role/${AdminRemediateRoleName}")}
    return trust_policy(principal, if_("HasExternalId", with_external_id, {"StringEquals": org}))


def executor_statements(entries: Sequence[CatalogEntry]) -> list[Json]:
    """What the SSM executor needs with the target role: start the catalog's runbooks, read their executions, and
    pass the automation role to SSM only."""
    documents = sorted({e.remediator.runbook.document for e in runbook_entries(entries) if e.remediator.runbook})
    executions = sub("arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:automation-execution/*")
    # AWS-owned runbooks: no account in their ARN. IAM evaluates the start against the document and the
    # automation-definition (SSM's documented examples use the former, the Service Authorization Reference the
    # latter) and the new execution.
    runbooks = [sub(f"arn:${{AWS::Partition}}:ssm:*::{kind}/{doc}{suffix}") for doc in documents
                for kind, suffix in (("document", ""), ("automation-definition", ":*"))]
    return [
        statement("StartRunbooks", ["ssm:StartAutomationExecution"], [*runbooks, executions]),
        statement("ReadRunbookExecutions", ["ssm:GetAutomationExecution"], executions),
        statement("PassAutomationRole", ["iam:PassRole"],
                  sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AutomationRoleName}"),
                  {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}),
    ]


def remediation_role(entries: Sequence[CatalogEntry], runbooks_condition: str | None) -> Json:
    properties: Json = {
        "RoleName": ref("RemediationRoleName"),
        "Description": "Assumed by the CSPM remediation admin stack; permissions follow the rule toggles",
        "MaxSessionDuration": 3600,
        "AssumeRolePolicyDocument": remediation_trust(),
    }
    if runbooks_condition:
        executor = inline_policy("ssm-executor", executor_statements(entries))
        if policy_chars(executor["PolicyDocument"]) > MAX_INLINE_POLICY_CHARS:
            raise ValueError("the SSM executor policy outgrows a role's inline policies: move it to a managed one")
        properties["Policies"] = [if_(runbooks_condition, executor)]
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def automation_role(runbooks_condition: str) -> Json:
    ssm_source = {"ArnLike": {"aws:SourceArn": sub(
        "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:automation-execution/*")}}
    return {
        "Type": "AWS::IAM::Role",
        "Condition": runbooks_condition,
        "Properties": {
            "RoleName": ref("AutomationRoleName"),
            "Description": "AutomationAssumeRole of the AWS-owned runbooks the enabled rules may run",
            "AssumeRolePolicyDocument": service_trust("ssm.amazonaws.com", ssm_source),
        },
    }


def service_role_resources(conditions: Json, entries: Sequence[CatalogEntry]) -> Json:
    resources: Json = {}
    for role in SERVICE_ROLES:
        members = [enabled_condition(e.rule_id) for e in acting_entries(entries) if e.remediator is role.remediator]
        guard = define_any(conditions, f"{role.logical_id}Needed", members)
        if guard is None:
            continue
        resources[role.logical_id] = {
            "Type": "AWS::IAM::Role",
            "Condition": guard,
            "Properties": {
                "RoleName": role.role_name,
                "Description": f"Handed to {role.service} by {role.remediator.__name__}",
                "AssumeRolePolicyDocument": service_trust(role.service),
                "Policies": [inline_policy("service", list(role.statements))],
            },
        }
    return resources


def target_template(catalog: Mapping[str, CatalogEntry] = CATALOG) -> Json:
    entries = catalog_entries(catalog)
    acting = acting_entries(entries)
    conditions = target_conditions(entries)
    runbooks = define_any(conditions, "AnyRunbookRuleEnabled", [enabled_condition(e.rule_id)
                                                                 for e in runbook_entries(entries)])
    resources: Json = {"RemediationRole": remediation_role(entries, runbooks)}
    resources.update(guarded_policies(
        conditions, "RemediationPolicy", "RemediationRole", "Remediation actions of the enabled rules",
        [(enabled_condition(e.rule_id), s) for e in acting for s in rule_statements(e)],
    ))
    if runbooks:
        resources["AutomationRole"] = automation_role(runbooks)
        resources.update(guarded_policies(
            conditions, "AutomationPolicy", "AutomationRole", "Runbook actions of the enabled rules",
            [(enabled_condition(e.rule_id), s) for e in runbook_entries(entries) for s in runbook_statements(e)],
        ))
    resources.update(service_role_resources(conditions, entries))
    check_policy_count(resources, "RemediationRole")
    outputs: Json = {
        "RemediationRoleArn": {"Value": get_att("RemediationRole", "Arn")},
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
                {"Label": {"default": "Roles"}, "Parameters": ["RemediationRoleName", "AutomationRoleName"]},
                *toggle_groups(entries),
            ],
            "ParameterLabels": toggle_labels(entries),
        }},
        "Parameters": checked_parameters(target_parameters(entries)),
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": outputs,
    })


def check_policy_count(resources: Json, role: str) -> None:
    attached = [r for r in resources.values() if ref(role) in r.get("Properties", {}).get("Roles", [])]
    if len(attached) > MAX_MANAGED_POLICIES_PER_ROLE:
        raise ValueError(f"{role} would need {len(attached)} managed policies (quota {MAX_MANAGED_POLICIES_PER_ROLE})")
