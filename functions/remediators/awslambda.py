"""Lambda remediators: function resource-based policy not public (Lambda.1).

The public statements (functions.remediators.policies, the same rule as SQS.3) are removed one by one with
RemovePermission; the removed statements are the rollback, re-added with AddPermission.

The control also fails a statement that lets the S3 service invoke the function without an aws:SourceAccount
condition (anyone's bucket named like the SourceArn could): such a statement is not removed but pinned — re-added
under the same Sid with SourceAccount set to the account that owns the bucket, so the bucket's notifications keep
invoking the function. The owner is confirmed with HeadBucket(ExpectedBucketOwner); when the statement names no
single bucket, or the bucket is not this account's, pinning to this account stops notifications from other
accounts' buckets, and the plan says so (disruptive for that finding). AddPermission can only
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

from connectors.arns import parse_arn
from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule
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


S3_SERVICE = "s3.amazonaws.com"


def _principal_argument(statement: Mapping[str, Any]) -> str:
    """AddPermission's Principal for a public statement ("*") or a single service principal."""
    principal = statement.get("Principal")
    services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
    if isinstance(principal, Mapping) and set(principal) == {"Service"} and len(services) == 1:
        return str(services[0])
    return "*"


def permission_arguments(statement: Mapping[str, Any]) -> dict[str, str]:
    """AddPermission arguments that re-create a public (or service) statement exactly; ValueError says why they
    cannot."""
    extra = sorted(set(statement) - _STATEMENT_FIELDS)
    if extra:
        raise ValueError(f"{', '.join(extra)} cannot be expressed with AddPermission")
    actions = as_list(statement.get("Action"))
    if len(actions) != 1:
        raise ValueError(f"AddPermission grants one action, the statement has {len(actions)}")
    arguments = {
        "StatementId": str(statement["Sid"]), "Action": str(actions[0]), "Principal": _principal_argument(statement),
    }
    for operator, entries in (statement.get("Condition") or {}).items():
        for key, value in entries.items():
            name, values = _CONDITION_ARGUMENTS.get((operator.lower(), key.lower())), as_list(value)
            if name is None or len(values) != 1:
                raise ValueError(f"condition {operator} {key} cannot be expressed with AddPermission")
            arguments[name] = str(values[0])
    return arguments


def s3_without_source_account(statement: Mapping[str, Any]) -> bool:
    """An Allow to the S3 service with no fixed aws:SourceAccount: Lambda.1 fails it (the Config rule: "invoked
    from Amazon S3, and the policy doesn't include a condition ... such as AWS:SourceAccount")."""
    principal = statement.get("Principal")
    if statement.get("Effect") != "Allow" or not isinstance(principal, Mapping):
        return False
    if S3_SERVICE not in as_list(principal.get("Service")):
        return False
    for operator, entries in (statement.get("Condition") or {}).items():
        if operator.lower() != "stringequals" or not isinstance(entries, Mapping):
            continue
        for key, value in entries.items():
            values = as_list(value)
            if key.lower() == "aws:sourceaccount" and values and all(str(v).isdigit() for v in values):
                return False
    return True


def _source_bucket(statement: Mapping[str, Any]) -> str | None:
    """The one bucket a statement's aws:SourceArn names (no wildcard), else None."""
    for entries in (statement.get("Condition") or {}).values():
        if not isinstance(entries, Mapping):
            continue
        for key, value in entries.items():
            values = as_list(value)
            if key.lower() == "aws:sourcearn" and len(values) == 1 and ":s3:::" in str(values[0]):
                bucket = str(values[0]).split(":s3:::", 1)[1]
                if bucket and not set("*?/$") & set(bucket):
                    return bucket
    return None


def _function(resource_id: str) -> dict[str, str]:
    """FunctionName (and Qualifier) arguments for a function name, `name:qualifier`, or an ARN."""
    if resource_id.startswith("arn:"):
        return {"FunctionName": resource_id}
    name, _, qualifier = resource_id.partition(":")
    return {"FunctionName": name, "Qualifier": qualifier} if qualifier else {"FunctionName": name}


def function_arn(target: Target, resource_id: str) -> str:
    """The unqualified function ARN (what ListTags takes: tags live on the function, not on versions or aliases)."""
    if resource_id.startswith("arn:"):
        arn = parse_arn(resource_id)  # arn:…:function:name[:qualifier]
        name = arn.resource_name.partition(":")[0]
        return f"arn:{arn.partition}:lambda:{arn.region}:{arn.account}:function:{name}"
    name = resource_id.partition(":")[0]
    return f"arn:{target.partition}:lambda:{target.api_region}:{target.account_id}:function:{name}"


class FunctionPolicyNotPublic(Remediator):
    """Lambda.1: remove the statements of a function's resource policy that let anyone invoke or manage it.

    The function's tags are read (one ListTags) when the finding carries none, so the exclusion tag holds for
    every source.
    """

    rules = (Rule("Lambda.1", "Lambda function policies should prohibit public access"),)
    resource_types = ("AwsLambdaFunction",)
    # HeadBucket (whose bucket an S3 trigger names) is authorized by s3:ListBucket.
    read_permissions = ("lambda:GetPolicy", "lambda:ListTags", "s3:ListBucket", "tag:GetResources")
    write_permissions = ("lambda:RemovePermission", "lambda:AddPermission")
    restore_permissions = ("lambda:AddPermission", "lambda:RemovePermission")
    reversible = True
    not_restorable = "a statement AddPermission cannot express (several actions, other condition keys or operators)"

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return function_arn(target, finding.resource_id)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        kept, public = split_public(self._policy(target, finding.resource_id))
        unpinned = [s for s in kept if s.get("Sid") and s3_without_source_account(s)]
        arn = function_arn(target, finding.resource_id)
        tags = self.resource_tags(target, finding,
                                  lambda: target.client("lambda").list_tags(Resource=arn).get("Tags", {}))
        if not public and not unpinned:
            return Assessment(compliant=True, tags=tags)
        changes = [f"remove {describe_statement(s)} from function {finding.resource_id}" for s in public]
        pins, disruptive = [], []
        for statement in unpinned:
            try:
                arguments = permission_arguments(statement)
            except ValueError as reason:  # cannot be re-added pinned: removing it is the only compliant change
                public.append(statement)
                changes.append(f"remove S3 trigger statement \"{statement['Sid']}\" from function "
                               f"{finding.resource_id} ({reason}: it cannot be pinned to an account)")
                disruptive.append(f"the S3 trigger \"{statement['Sid']}\" stops")
                continue
            bucket = _source_bucket(statement)
            pins.append({**arguments, "SourceAccount": target.account_id})
            where = f"bucket {bucket}" if bucket else "any bucket"
            changes.append(f"pin S3 trigger statement \"{statement['Sid']}\" ({where}) of function "
                           f"{finding.resource_id} to SourceAccount {target.account_id}")
            if not (bucket and self._bucket_is_ours(target, bucket)):
                disruptive.append(f"S3 notifications from {where} of accounts other than {target.account_id} "
                                  f"stop invoking it (statement \"{statement['Sid']}\")")
        return Assessment(
            compliant=False,
            changes=changes,
            pre_state={"Statements": [*public, *[s for s in unpinned if s not in public]],
                       **({"Pinned": [pin["StatementId"] for pin in pins]} if pins else {})},
            tags=tags,
            context={"StatementIds": [s["Sid"] for s in public], "Pins": pins},
            disruptive="; ".join(disruptive),
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        function = _function(finding.resource_id)
        awslambda = target.client("lambda")
        for statement_id in assessment.context["StatementIds"]:
            self._remove(awslambda, function, statement_id)
        for pin in assessment.context.get("Pins", []):  # same Sid, same grant, one more condition
            self._remove(awslambda, function, pin["StatementId"])
            awslambda.add_permission(**function, **pin)

    @staticmethod
    def _remove(awslambda: Any, function: Mapping[str, str], statement_id: str) -> None:
        try:
            awslambda.remove_permission(StatementId=statement_id, **function)
        except ClientError as error:
            if aws_error_code(error) != "ResourceNotFoundException":  # already gone: that is the goal
                raise

    @staticmethod
    def _bucket_is_ours(target: Target, bucket: str) -> bool:
        """True when this account owns the bucket (HeadBucket with ExpectedBucketOwner answers 403 otherwise)."""
        try:
            target.client("s3").head_bucket(Bucket=bucket, ExpectedBucketOwner=target.account_id)
        except ClientError:
            return False
        return True

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        present = {s.get("Sid") for s in statement_list(self._policy(target, finding.resource_id))}
        pinned = set(pre_state.get("Pinned", []))
        done = []
        for statement in pre_state["Statements"]:
            what = f"{describe_statement(statement)} on function {finding.resource_id}"
            if statement.get("Sid") in pinned and statement.get("Sid") in present:
                try:
                    arguments = permission_arguments(statement)
                except ValueError as reason:
                    done.append(f"cannot unpin {what}: {reason}")
                    continue
                self._remove(target.client("lambda"), _function(finding.resource_id), statement["Sid"])
                target.client("lambda").add_permission(**_function(finding.resource_id), **arguments)
                done.append(f"put back {what} without its SourceAccount condition")
                continue
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
        policy: dict[str, Any] = json.loads(response["Policy"])
        return policy
