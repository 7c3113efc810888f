"""CIS 1.13 (v1.4.0 and v3.0.0; 1.12 in v5.0.0): only one active access key per IAM user. Notify-only.

Security Hub has no control for it (its CIS standards skip the requirement), so the rule id is not a Security Hub
control id but `netskope:iam-one-active-access-key`, like the catalog's other rule without one; Prowler's check
iam_user_two_active_access_key maps to it (connectors/prowler_checks.py).

Why a person: the key that stays is the one the user's applications use, which only its owner knows; deactivating
the wrong one stops them. The notification gives the exact calls, to list the active keys with their last use and
to deactivate one. It is read live (notify_assesses): `assess` reads the keys (ListAccessKeys, GetAccessKeyLastUsed
per active key) in the target account, and the notification lists each with its creation and last-use dates and
the exact command for every key but the most recently used one; a user left with one active key reads `noop`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import AwsClient, Target
from functions.remediators.base import Assessment, RemediationError, Rule, found_text, live_tags, tag_dict
from functions.remediators.notify import ManualRemediation

RULE_ID = "netskope:iam-one-active-access-key"

GUIDANCE = (
    "User {resource_id} has more than one active access key. List them with their creation dates: aws iam "
    "list-access-keys --user-name {resource_id} --query \"AccessKeyMetadata[?Status=='Active'].[AccessKeyId,"
    "CreateDate]\" --output text; and when each was last used: aws iam get-access-key-last-used --access-key-id "
    "KEY_ID. With the user, keep the key their applications use (the most recently used one, if it is less than 90 "
    "days old) and deactivate each other active key: aws iam update-access-key --user-name {resource_id} "
    "--access-key-id KEY_ID --status Inactive (reversible: --status Active). Once nothing has failed for a while, "
    "delete it: aws iam delete-access-key --user-name {resource_id} --access-key-id KEY_ID. Check: aws iam "
    "list-access-keys --user-name {resource_id} lists at most one Active key."
)


def _day(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value or "?")


def active_keys(iam: AwsClient, user: str) -> list[dict[str, Any]]:
    """The user's active keys, each with its creation date and last use (None: never used): the most recently
    used first, then the never used ones, newest first."""
    try:
        pages = iam.get_paginator("list_access_keys").paginate(UserName=user)
        keys = [key for page in pages for key in page["AccessKeyMetadata"] if key.get("Status") == "Active"]
    except ClientError as error:
        if aws_error_code(error) == "NoSuchEntity":
            raise RemediationError(f"IAM user {user} does not exist") from error
        raise
    found = []
    for key in keys:
        used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get("AccessKeyLastUsed", {})
        found.append({"AccessKeyId": key["AccessKeyId"], "CreateDate": key.get("CreateDate"),
                      "LastUsedDate": used.get("LastUsedDate"), "ServiceName": used.get("ServiceName"),
                      "Region": used.get("Region")})
    used = sorted((k for k in found if k["LastUsedDate"]), key=lambda k: k["LastUsedDate"], reverse=True)
    never = sorted((k for k in found if not k["LastUsedDate"]), key=lambda k: str(k["CreateDate"]), reverse=True)
    return used + never


def describe_key(key: dict[str, Any]) -> str:
    used = "never used" if key["LastUsedDate"] is None else (
        f"last used {_day(key['LastUsedDate'])} ({key['ServiceName']}, {key['Region']})")
    return f"{key['AccessKeyId']} (created {_day(key['CreateDate'])}, {used})"


class OneActiveAccessKey(ManualRemediation):
    """CIS 1.13: tell a person which of a user's active access keys to deactivate, and how."""

    rules = (Rule(RULE_ID, "IAM users should have at most one active access key", cis=("1.13",),
                  default_mode="notify"),)
    resource_types = ("AwsIamUser",)
    read_permissions = ("iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:ListUserTags")
    guidance: ClassVar[dict[str, str]] = {RULE_ID: GUIDANCE}
    notify_assesses = True

    def notify_detail(self, finding: Finding, assessment: Assessment) -> str:
        """The live key list and commands, then what the static steps add to them (delete later, check)."""
        user = finding.resource_id
        return self._message(finding, f"Found in the account now: {found_text(assessment)} Reversible: --status "
                             "Active. Once nothing has failed for a while, delete each deactivated key: aws iam "
                             f"delete-access-key --user-name {user} --access-key-id KEY_ID. Check: aws iam "
                             f"list-access-keys --user-name {user} lists at most one Active key.")

    def assess(self, target: Target, finding: Finding) -> Assessment:
        user, iam = finding.resource_id, target.client("iam")
        keys = active_keys(iam, user)
        tags = live_tags(finding, lambda: tag_dict(iam.list_user_tags(UserName=user).get("Tags", [])))
        state = {"ActiveAccessKeys": [k["AccessKeyId"] for k in keys]}
        if len(keys) <= 1:
            return Assessment(compliant=True, pre_state=state, tags=tags)
        keep, *others = keys
        changes = [f"manual: user {user} has {len(keys)} active access keys: "
                   + "; ".join(describe_key(k) for k in keys)
                   + f". Keep the one in use (most recently used: {keep['AccessKeyId']}) and deactivate the others: "
                   + "; ".join(f"aws iam update-access-key --user-name {user} --access-key-id {k['AccessKeyId']} "
                               "--status Inactive" for k in others)]
        return Assessment(compliant=False, changes=changes, pre_state=state, tags=tags)

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        raise RemediationError(f"{RULE_ID} needs a person for user {finding.resource_id}: "
                               + "; ".join(assessment.changes))
