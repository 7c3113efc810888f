"""Lambda remediators: function resource-based policy not public (Lambda.1).

The public statements (functions.remediators.policies, the same rule as SQS.3) are removed one by one with
RemovePermission; the removed statements are the rollback, re-added with AddPermission. AddPermission can only
express what it creates: one action, Principal "*" here, and the conditions SourceArn, SourceAccount,
PrincipalOrgID, EventSourceToken and FunctionUrlAuthType. A statement with anything else (several actions, other
condition keys or operators, NotPrincipal, extra fields) is reported as not restorable rather than re-added
broader than it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, live_tags
from functions.remediators.policies import as_list, describe_statement, split_public, statement_list

# (condition operator, key) as AddPermission writes them, lower case → the AddPermission argument.
_CONDITION_ARGUMENTS = {
    ("arnlike", "aws:sourcearn"): "SourceArn",
    ("stringequals", "aws:sourceaccount"): "SourceAccount",
    ("stringequals", "aws:principalorgid"): "PrincipalOrgID",
    ("stringequals", "lambda:eventsourcetoken"): "EventSourceToken",
    ("stringequals", "lambda:functionurlauthtype"): "FunctionUrlAuthType",
}
_STATEMENT_FIELDS = frozenset({"Sid", "Effect", "Principal", "Action", "Resource", "Condition"})


def permission_arguments(statement: Mapping[str, Any]) -> dict[str, str]:
    """AddPermission arguments that re-create a public statement exactly; ValueError says why they cannot."""
    extra = sorted(set(statement) - _STATEMENT_FIELDS)
    if extra:
        raise ValueError(f"{', '.join(extra)} cannot be expressed with AddPermission")
    actions = as_list(statement.get("Action"))
    if len(actions) != 1:
        raise ValueError(f"AddPermission grants one action, the statement has {len(actions)}")
    arguments = {"StatementId": str(statement["Sid"]), "Action": str(actions[0]), "Principal": "*"}
    for operator, entries in (statement.get("Condition") or {}).items():
        for key, value in entries.items():
            name, values = _CONDITION_ARGUMENTS.get((operator.lower(), key.lower())), as_list(value)
            if name is None or len(values) != 1:
                raise ValueError(f"condition {operator} {key} cannot be expressed with AddPermission")
            arguments[name] = str(values[0])
    return arguments


def _function(resource_id: str) -> dict[str, str]:
    """FunctionName (and Qualifier) arguments for a function name, `name:qualifier`, or an ARN."""
    if resource_id.startswith("arn:"):
        return {"FunctionName": resource_id}
    name, _, qualifier = resource_id.partition(":")
    return {"FunctionName": name, "Qualifier": qualifier} if qualifier else {"FunctionName": name}


def function_arn(target: Target, resource_id: str) -> str:
    """The unqualified function ARN (what ListTags takes: tags live on the function, not on versions or aliases)."""
    if resource_id.startswith("arn:"):
        return ":".join(resource_id.split(":")[:7])
    name = resource_id.partition(":")[0]
    return f"arn:{target.partition}:lambda:{target.api_region}:{target.account_id}:function:{name}"


class FunctionPolicyNotPublic(Remediator):
    """Lambda.1: remove the statements of a function's resource policy that let anyone invoke or manage it.

    The function's tags are read (one ListTags) when the finding carries none, so the exclusion tag holds for
    every source.
    """

    rules = (Rule("Lambda.1", "Lambda function policies should prohibit public access"),)
    resource_types = ("AwsLambdaFunction",)
    read_permissions = ("lambda:GetPolicy", "lambda:ListTags")
    write_permissions = ("lambda:RemovePermission",)
    restore_permissions = ("lambda:AddPermission",)
    reversible = True

    def assess(self, target: Target, finding: Finding) -> Assessment:
        _, public = split_public(self._policy(target, finding.resource_id))
        arn = function_arn(target, finding.resource_id)
        tags = live_tags(finding, lambda: target.client("lambda").list_tags(Resource=arn).get("Tags", {}))
        if not public:
            return Assessment(compliant=True, tags=tags)
        return Assessment(
            compliant=False,
            changes=[f"remove {describe_statement(s)} from function {finding.resource_id}" for s in public],
            pre_state={"Statements": public},
            tags=tags,
            context={"StatementIds": [s["Sid"] for s in public]},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        function = _function(finding.resource_id)
        for statement_id in assessment.context["StatementIds"]:
            try:
                target.client("lambda").remove_permission(StatementId=statement_id, **function)
            except ClientError as error:
                if aws_error_code(error) != "ResourceNotFoundException":  # already gone: that is the goal
                    raise

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        present = {s.get("Sid") for s in statement_list(self._policy(target, finding.resource_id))}
        done = []
        for statement in pre_state["Statements"]:
            what = f"{describe_statement(statement)} on function {finding.resource_id}"
            if statement.get("Sid") in present:
                done.append(f"{what} is already there")
                continue
            try:
                arguments = permission_arguments(statement)
            except ValueError as reason:
                done.append(f"cannot re-add {what}: {reason}; re-create it by hand: {json.dumps(statement)}")
                continue
            target.client("lambda").add_permission(**_function(finding.resource_id), **arguments)
            done.append(f"re-added {what}")
        return done

    @staticmethod
    def _policy(target: Target, resource_id: str) -> dict[str, Any]:
        """The function's resource policy ({} when it has none)."""
        try:
            response = target.client("lambda").get_policy(**_function(resource_id))
        except ClientError as error:
            if aws_error_code(error) != "ResourceNotFoundException":
                raise
            # The same code means "no policy" and "no function"; only the message tells them apart.
            if str(error.response.get("Error", {}).get("Message", "")).startswith("Function not found"):
                raise RemediationError(f"Lambda function {resource_id} not found") from error
            return {}
        return json.loads(response["Policy"])
