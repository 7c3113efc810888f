"""CloudFormation building blocks: intrinsic functions, conditions (Fn::Or beyond 10 operands), pruning of
unused conditions, template limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Json = dict[str, Any]

# Fn::Or takes 2..10 conditions; a template 200 parameters; a role 10 managed policies (default quota).
MAX_OR_OPERANDS = 10
MAX_PARAMETERS = 200
MAX_MANAGED_POLICIES_PER_ROLE = 10

NO_VALUE: Json = {"Ref": "AWS::NoValue"}


def ref(name: str) -> Json:
    return {"Ref": name}


def sub(text: str) -> Json:
    return {"Fn::Sub": text}


def get_att(resource: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [resource, attribute]}


def if_(condition: str, then: Any, otherwise: Any = NO_VALUE) -> Json:
    return {"Fn::If": [condition, then, otherwise]}


def equals(left: Any, right: Any) -> Json:
    return {"Fn::Equals": [left, right]}


def not_(condition: Json) -> Json:
    return {"Fn::Not": [condition]}


def any_of(condition_names: Sequence[str]) -> Json:
    """Fn::Or over named conditions, nested where there are more than Fn::Or's 10 operands."""
    operands: list[Json] = [{"Condition": name} for name in condition_names]
    while len(operands) > MAX_OR_OPERANDS:
        operands = [_or(operands[i:i + MAX_OR_OPERANDS]) for i in range(0, len(operands), MAX_OR_OPERANDS)]
    return {"Fn::Or": operands}


def _or(operands: list[Json]) -> Json:
    return operands[0] if len(operands) == 1 else {"Fn::Or": operands}


def define_any(conditions: Json, name: str, members: Sequence[str]) -> str | None:
    """The name of a condition true when any member is: the member itself when alone, else a new Fn::Or named
    `name`. None when there are no members (whatever it guards is never created)."""
    if not members:
        return None
    if len(members) == 1:
        return members[0]
    conditions[name] = any_of(members)
    return name


def used_conditions(template: Json) -> set[str]:
    """The conditions the resources and outputs use, directly or through other conditions."""
    used: set[str] = set()
    pending = _condition_references([template.get("Resources", {}), template.get("Outputs", {})])
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending |= _condition_references(template["Conditions"][name])
    return used


def _condition_references(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Condition" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::If":
                found.add(value[0])
            found |= _condition_references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _condition_references(value)
    return found


def pruned(template: Json) -> Json:
    """The template without conditions nothing uses (rules that grant nothing, Netskope-only rules...)."""
    if "Conditions" in template:
        used = used_conditions(template)
        template["Conditions"] = {k: v for k, v in template["Conditions"].items() if k in used}
    return template


def check_policy_count(resources: Json, role: str) -> None:
    attached = [r for r in resources.values() if ref(role) in r.get("Properties", {}).get("Roles", [])]
    if len(attached) > MAX_MANAGED_POLICIES_PER_ROLE:
        raise ValueError(f"{role} would need {len(attached)} managed policies (quota {MAX_MANAGED_POLICIES_PER_ROLE})")


def checked_parameters(parameters: Json) -> Json:
    if len(parameters) > MAX_PARAMETERS:
        raise ValueError(f"{len(parameters)} parameters: CloudFormation allows {MAX_PARAMETERS} per template")
    return parameters


def org_stackset(*, name: Json, description: str, capability: str, preferences: Json, template_url: Json,
                 parameters: Sequence[str], regions: Json) -> Json:
    """The Properties of a service-managed StackSet that deploys to the organization's OUs (OrganizationalUnitIds),
    follows accounts as they join and leave, and passes each of `parameters` through by name."""
    return {
        "StackSetName": name,
        "Description": description,
        "PermissionModel": "SERVICE_MANAGED",
        "CallAs": ref("CallAs"),
        "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
        "Capabilities": [capability],
        "ManagedExecution": {"Active": True},
        "OperationPreferences": preferences,
        "TemplateURL": template_url,
        "Parameters": [{"ParameterKey": parameter, "ParameterValue": ref(parameter)} for parameter in parameters],
        "StackInstancesGroup": [{
            "DeploymentTargets": {"OrganizationalUnitIds": ref("OrganizationalUnitIds")},
            "Regions": regions,
        }],
    }
