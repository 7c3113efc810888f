"""IAM.1: customer managed policies that allow full "*" administrative privileges. Notify-only, read live.

Security Hub's control is the AWS Config rule iam-policy-no-statements-with-admin-access: a customer managed policy
is NON_COMPLIANT when its default version holds a statement with "Effect": "Allow", "Action": "*" and
"Resource": "*" ("service:*" on "*" is compliant; inline and AWS managed policies are not evaluated). `assess`
applies exactly that test to the policy the finding names (a list holding "*" is "*": IAM reads it the same way).

Why a person: which of the policy's statements its users, groups and roles need is for their owners to say, and
detaching it can lock out an administrator. So the notification names who has it: the live read lists every user,
group and role the policy is attached to (ListEntitiesForPolicy, paginated) with the exact detach call for each,
which the static guidance of a notify rule decided offline cannot; a policy fixed since the finding reads `noop`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import unquote

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import AwsClient, Target
from functions.remediators.base import Assessment, RemediationError, Rule, tag_dict
from functions.remediators.notify import ManualRemediation
from functions.remediators.policies import as_list, statement_list

RULE_ID = "IAM.1"
MAX_LISTED = 50  # entities named with their detach call; the rest counted (list-entities-for-policy lists all)
# What ListEntitiesForPolicy returns per kind: (response key, name field, detach subcommand, its name option).
ENTITY_KINDS = (
    ("PolicyUsers", "UserName", "user", "detach-user-policy --user-name"),
    ("PolicyGroups", "GroupName", "group", "detach-group-policy --group-name"),
    ("PolicyRoles", "RoleName", "role", "detach-role-policy --role-name"),
)

GUIDANCE = (
    "With the owners of the users, groups and roles that have it, replace it by a policy with the actions they use "
    "(IAM Access Analyzer > Generate policy from CloudTrail activity, or the last-accessed data: aws iam "
    "generate-service-last-accessed-details --arn ROLE_OR_USER_ARN), attach that, then detach this one. Give "
    "administrators the AWS managed AdministratorAccess policy through a group or role instead. List who has it: "
    "aws iam list-entities-for-policy --policy-arn {resource_arn}. Check: the policy's default version has no "
    "statement allowing * on *."
)


def full_admin(statement: Mapping[str, Any]) -> bool:
    """The Config rule's test: Effect Allow, Action "*" and Resource "*" (NotAction/NotResource are not it)."""
    return (statement.get("Effect") == "Allow" and "*" in as_list(statement.get("Action"))
            and "*" in as_list(statement.get("Resource")))


def policy_arn(finding: Finding) -> str:
    """The finding's ARN; a bare name is taken as a policy at the account's root path."""
    if finding.resource_arn:
        return finding.resource_arn
    return f"arn:{finding.partition}:iam::{finding.account_id}:policy/{finding.resource_id}"


def attachments(iam: AwsClient, arn: str) -> dict[str, list[str]]:
    """{kind: names} of the users, groups and roles the policy is attached to as a permissions policy (a policy used
    only as a permissions boundary grants nothing)."""
    found: dict[str, list[str]] = {kind: [] for _, _, kind, _ in ENTITY_KINDS}
    pages = iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=arn, PolicyUsageFilter="PermissionsPolicy")
    for page in pages:
        for key, name, kind, _ in ENTITY_KINDS:
            found[kind] += [str(entity[name]) for entity in page.get(key, [])]
    return found


def _document(version: Mapping[str, Any]) -> dict[str, Any]:
    document = version.get("Document") or {}
    return json.loads(unquote(document)) if isinstance(document, str) else dict(document)


class FullAdminPolicy(ManualRemediation):
    """IAM.1: tell a person which users, groups and roles hold a full-admin customer managed policy."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(RULE_ID, "IAM policies should not allow full \"*\" administrative privileges", default_mode="notify"),
    )
    resource_types: ClassVar[tuple[str, ...]] = ("AwsIamPolicy",)
    read_permissions = ("iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListEntitiesForPolicy")
    guidance: ClassVar[dict[str, str]] = {RULE_ID: GUIDANCE}
    notify_assesses = True

    def steps(self, finding: Finding) -> str:
        return GUIDANCE.format(resource_arn=policy_arn(finding))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        iam, arn = target.client("iam"), policy_arn(finding)
        try:
            policy = iam.get_policy(PolicyArn=arn)["Policy"]
            version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
        except ClientError as error:
            if aws_error_code(error) == "NoSuchEntity":
                raise RemediationError(f"IAM policy {arn} does not exist") from error
            raise
        tags = tag_dict(policy.get("Tags", []))  # GetPolicy returns them: no call for the exclusion tag
        admin = [s for s in statement_list(_document(version)) if full_admin(s)]
        state: dict[str, Any] = {"DefaultVersionId": policy["DefaultVersionId"],
                                 "AdminStatements": [s.get("Sid", "") for s in admin]}
        if not admin:
            return Assessment(compliant=True, pre_state=state, tags=tags)
        sids = ", ".join(f'"{s["Sid"]}"' for s in admin if s.get("Sid")) or "without a Sid"
        head = (f"manual: policy {arn} (default version {policy['DefaultVersionId']}) allows * on * "
                f"(statement {sids})")
        # AttachmentCount 0: attached to nothing, so nothing to list (one call fewer).
        found = attachments(iam, arn) if policy.get("AttachmentCount", 1) else {k: [] for _, _, k, _ in ENTITY_KINDS}
        state["Attachments"] = found
        return Assessment(compliant=False, changes=[head + "; " + self._who(arn, found)], pre_state=state, tags=tags)

    @staticmethod
    def _who(arn: str, found: Mapping[str, list[str]]) -> str:
        named = [(kind, name, detach) for _, _, kind, detach in ENTITY_KINDS for name in found[kind]]
        if not named:
            return f"it is attached to no user, group or role: delete it (aws iam delete-policy --policy-arn {arn}, " \
                   "after deleting its non-default versions) or keep it unattached"
        listed = ", ".join(f"{kind} {name}" for kind, name, _ in named[:MAX_LISTED])
        more = f" and {len(named) - MAX_LISTED} more" if len(named) > MAX_LISTED else ""
        calls = "; ".join(f"aws iam {detach} {name} --policy-arn {arn}" for _, name, detach in named[:MAX_LISTED])
        return f"attached to {len(named)}: {listed}{more}. Once each has its replacement, detach it: {calls}{more}"

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        raise RemediationError(f"{RULE_ID} needs a person for policy {policy_arn(finding)}: "
                               + "; ".join(assessment.changes))
