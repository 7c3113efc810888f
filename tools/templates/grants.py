"""A remediator's declared actions → IAM statements: "*" by default, narrowed by its Grants, iam:PassRole scoped
to its service roles; actions that can hand out more than the call itself are refused unless narrowed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from functions.remediators.base import Grant, Remediator
from tools.templates.cfn import Json, sub
from tools.templates.iam import statement
from tools.templates.service_roles import param_parameter, roles_of

# Actions that must carry a condition with this key wherever they are granted (a Grant of the remediator).
MUST_BE_CONDITIONED = {
    "iam:CreateServiceLinkedRole": "iam:AWSServiceName",
    "kms:CreateGrant": "kms:GrantIsForAWSResource",
    "iam:PassRole": "iam:PassedToService",
}
# Actions that, on "*", let the role give itself or anyone more privileges; they must be narrowed by a Grant
# (resource or iam:PolicyARN). A rule whose remediator declares grants_privileges never gets them at all.
ESCALATION_ACTIONS = frozenset({
    "iam:AddUserToGroup", "iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:AttachUserPolicy",
    "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:CreatePolicyVersion", "iam:CreateRole",
    "iam:PutGroupPolicy", "iam:PutRolePolicy", "iam:PutUserPolicy", "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy", "iam:UpdateLoginProfile", "iam:PassRole", "iam:CreateGroup",
    "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", "iam:PutUserPermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary", "sts:AssumeRole",
})


def _resource(remediator: type[Remediator], text: str) -> Any:
    if text == "*":
        return "*"
    if "$" not in text and "{" not in text:
        return text
    return sub(re.sub(r"(?<!\$)\{(\w+)\}", lambda m: "${" + param_parameter(remediator, m.group(1)) + "}", text))


def _conditions(node: Mapping[str, Mapping[str, Any]]) -> Json:
    """Condition values with CloudFormation pseudo parameters become Fn::Sub."""
    return {op: {key: (sub(value) if isinstance(value, str) and "${" in value else value)
                 for key, value in keys.items()} for op, keys in node.items()}


def _condition_keys(grant: Grant) -> set[str]:
    return {key for keys in grant.conditions.values() for key in keys}


def statements_for(remediator: type[Remediator], actions: Iterable[str], sid: str) -> list[Json]:
    """Statements granting `actions` as the remediator declares them: grant-covered actions per grant, iam:PassRole
    per service role, everything else on "*" (ValueError for an action that must not be granted that way)."""
    wanted = list(dict.fromkeys(actions))
    result: list[Json] = []
    covered: set[str] = set()
    for number, grant in enumerate(remediator.grants, start=1):
        mine = [a for a in wanted if a in grant.actions]
        if not mine:
            continue
        for action in mine:
            key = MUST_BE_CONDITIONED.get(action)
            if key and key not in _condition_keys(grant):
                raise ValueError(f"{remediator.__name__}: {action} needs a {key} condition in its Grant")
        resources = [_resource(remediator, r) for r in grant.resources]
        result.append(statement(f"{sid}Scoped{number}", mine, resources[0] if len(resources) == 1 else resources,
                                _conditions(grant.conditions) or None))
        covered.update(mine)
    if "iam:PassRole" in wanted and "iam:PassRole" not in covered:
        roles = roles_of(remediator)
        if not roles:
            raise ValueError(f"{remediator.__name__} needs iam:PassRole but declares no service role")
        for role in roles:
            result.append(statement(f"{sid}Pass{role.logical_id}", ["iam:PassRole"], role.role_arn(),
                                    {"StringEquals": {"iam:PassedToService": role.service}}))
        covered.add("iam:PassRole")
    rest = [a for a in wanted if a not in covered]
    unsafe = sorted(a for a in rest if a in MUST_BE_CONDITIONED or a in ESCALATION_ACTIONS)
    if unsafe:
        raise ValueError(f"{remediator.__name__}: {', '.join(unsafe)} on \"*\" would let the role grant itself "
                         "more: narrow it with a Grant (resource, iam:PolicyARN...) or declare grants_privileges")
    if rest:
        result.insert(0, statement(sid, rest, "*"))
    return result
