"""IAM remediators, one class per control family.

PasswordPolicy (IAM.7, IAM.10-IAM.17), AccessKeyRotation (IAM.3), UnusedCredentials (IAM.22),
UserPoliciesToGroup (IAM.2), SupportRole (IAM.18), ExpiredServerCertificates (IAM.26), AccessAnalyzer (IAM.28),
CloudShellFullAccess (IAM.27).
IAM is global: these run against the partition's home region, except Access Analyzer, which is regional.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import AwsClient, Target
from functions.remediators.base import (
    ROLE_NAME,
    Assessment,
    Grant,
    Param,
    RemediationError,
    Remediator,
    Rule,
    Runbook,
    left_alone,
    live_tags,
    split_excluded,
    tag_dict,
)

# --------------------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------------------

# "The thing is not there" in IAM and in Access Analyzer.
_NOT_FOUND = ("NoSuchEntity", "ResourceNotFoundException")
# IAM user, group and role names (the API's own pattern); group names may be up to 128 characters.
_IAM_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")
_T = TypeVar("_T")


def iam_name(finding: Finding) -> str:
    """The IAM user, group or role of a finding; tolerates an ARN (`arn:aws:iam::1:user/path/name`): names never
    hold '/'."""
    return finding.resource_id.rsplit("/", 1)[-1]


def _all_items(client: AwsClient, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a paginated list call."""
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]


def _read_optional(read: Callable[[], _T]) -> _T | None:
    """What read() returns, or None when the entity it reads does not exist."""
    try:
        return read()
    except ClientError as error:
        if aws_error_code(error) in _NOT_FOUND:
            return None
        raise


def _if_exists(call: Callable[..., Any], **kwargs: Any) -> bool:
    """Run a write on something that may already be gone (a second restore, a parallel change). False if it was."""
    try:
        call(**kwargs)
    except ClientError as error:
        if aws_error_code(error) in _NOT_FOUND:
            return False
        raise
    return True


# A restore step: what it does (readable), the call, and its arguments.
_Step = tuple[str, Callable[..., Any], dict[str, Any]]


def _run_steps(steps: Iterable[_Step]) -> list[str]:
    """Idempotent steps: each line says what was done, or that its target was not there (already undone)."""
    return [
        f"{what}: done" if _if_exists(call, **kwargs) else f"{what}: skipped, not found" for what, call, kwargs in steps
    ]


@contextmanager
def _must_exist(what: str) -> Iterator[None]:
    """A not-found error from the calls inside means the finding's resource is gone: the engine reports why."""
    try:
        yield
    except ClientError as error:
        if aws_error_code(error) in _NOT_FOUND:
            raise RemediationError(f"{what} does not exist") from error
        raise


def _check_int(owner: str, params: Mapping[str, Any], name: str, low: int, high: int) -> None:
    value = params[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{owner}: {name} must be an integer from {low} to {high}, got {value!r}")


def _aws_policy_arn(target: Target, name: str) -> str:
    return f"arn:{target.partition}:iam::aws:policy/{name}"


def _iso(moment: datetime | None) -> str | None:
    """A date for pre_state, which must survive JSON (the ledger)."""
    return moment.isoformat() if moment else None


def _day(moment: datetime | str) -> str:
    return (datetime.fromisoformat(moment) if isinstance(moment, str) else moment).strftime("%Y-%m-%d")


# --------------------------------------------------------------------------------------------------------------
# Password policy
# --------------------------------------------------------------------------------------------------------------

# UpdateAccountPasswordPolicy's parameters. The GetAccountPasswordPolicy response has the same names plus
# ExpirePasswords, which is derived from MaxPasswordAge and cannot be sent.
_BOOLEAN_SETTINGS = (
    "RequireUppercaseCharacters",
    "RequireLowercaseCharacters",
    "RequireSymbols",
    "RequireNumbers",
    "AllowUsersToChangePassword",
    "HardExpiry",
)
_NUMBER_SETTINGS = ("MinimumPasswordLength", "PasswordReusePrevention", "MaxPasswordAge")

# What each Security Hub control checks, with the control's own threshold (Security Hub control reference).
# True: the flag must be on; MaxPasswordAge: passwords must expire within that many days; other numbers: at least.
REQUIREMENTS: dict[str, dict[str, bool | int]] = {
    # The Config rule iam-password-policy with Security Hub's defaults: all four character classes and at least
    # 8 characters. Its reuse and expiry parameters have no default there, so by default it checks neither.
    "IAM.7": {
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "RequireSymbols": True,
        "RequireNumbers": True,
        "MinimumPasswordLength": 8,
    },
    "IAM.10": {  # the PCI DSS v3.2.1 composite
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "RequireNumbers": True,
        "MinimumPasswordLength": 7,
        "PasswordReusePrevention": 4,
        "MaxPasswordAge": 90,
    },
    "IAM.11": {"RequireUppercaseCharacters": True},
    "IAM.12": {"RequireLowercaseCharacters": True},
    "IAM.13": {"RequireSymbols": True},
    "IAM.14": {"RequireNumbers": True},
    "IAM.15": {"MinimumPasswordLength": 14},
    "IAM.16": {"PasswordReusePrevention": 24},
    "IAM.17": {"MaxPasswordAge": 90},
}

# The numeric settings a user may tune (`rules.<id>.params`), with the range UpdateAccountPasswordPolicy accepts.
_PARAM_FOR = {
    "MinimumPasswordLength": "min_length",
    "PasswordReusePrevention": "reuse_prevention",
    "MaxPasswordAge": "max_age_days",
}
_PARAM_RANGES = {"min_length": (6, 128), "reuse_prevention": (1, 24), "max_age_days": (1, 1095)}

# Without a custom policy, AWS applies its default one (8 characters, three of the four character classes), which
# a custom policy cannot express. Creating a policy with only the finding's setting would let weaker passwords
# through, so the first policy also gets these: all four character classes and the CIS length and reuse settings.
_FIRST_POLICY_RULES = ("IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16")


def _meets(setting: str, value: Any, required: bool | int) -> bool:
    if isinstance(required, bool):
        return bool(value)
    if setting == "MaxPasswordAge":
        return 0 < (value or 0) <= required  # 0 or absent: passwords never expire
    return (value or 0) >= required


def _stronger(setting: str, one: Any, other: Any) -> Any:
    """The stricter of two values of one setting (None: not set): a flag on, the shorter expiry, the larger
    number. The two administrative flags (AllowUsersToChangePassword, HardExpiry) are never raised by a rule, so
    both values are what was read."""
    if one is None or other is None:
        return other if one is None else one
    if setting in _BOOLEAN_SETTINGS:
        return bool(one or other)
    return min(one, other) if setting == "MaxPasswordAge" else max(one, other)


def _settable(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The request that recreates `policy`: UpdateAccountPasswordPolicy replaces the whole policy, so every current
    setting is sent back. A number of 0 means "not set" (AWS omits it, moto returns 0) and is below the API's
    minimum, so it is left out, which keeps it unset."""
    request: dict[str, Any] = {name: policy[name] for name in _BOOLEAN_SETTINGS if policy.get(name) is not None}
    request.update({name: policy[name] for name in _NUMBER_SETTINGS if policy.get(name)})
    return request


def _configured_policy(finding: Finding, params: Mapping[str, Any]) -> dict[str, list[str]]:
    """The runbook's numbers from the rule's params, as the boto3 executor targets them: never weaker than the CIS
    baseline the runbook is given, nor than the finding's own control."""
    rule = REQUIREMENTS.get(finding.rule_id, {})

    def at_least(setting: str, param: str, baseline: str) -> list[str]:
        return [str(max(int(params[param]), int(REQUIREMENTS[baseline][setting]), int(rule.get(setting, 0))))]

    configured = {
        "MinimumPasswordLength": at_least("MinimumPasswordLength", "min_length", "IAM.15"),
        "PasswordReusePrevention": at_least("PasswordReusePrevention", "reuse_prevention", "IAM.16"),
    }
    if "MaxPasswordAge" in rule:
        configured["MaxPasswordAge"] = [str(min(int(params["max_age_days"]), int(rule["MaxPasswordAge"])))]
    return configured


def _runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    """The runbook sets the whole policy from its parameters (unset ones fall back to weak defaults) and cannot
    read the current policy first, so it gets the full CIS baseline, plus expiry for the rules that check it.
    Unlike the boto3 executor it can lower a stricter current setting: prefer boto3 where that matters."""
    defaults = PasswordPolicy.default_params
    parameters = {
        "AutomationAssumeRole": [automation_role_arn],
        "MinimumPasswordLength": [str(defaults["min_length"])],
        "PasswordReusePrevention": [str(defaults["reuse_prevention"])],
        "RequireUppercaseCharacters": ["true"],
        "RequireLowercaseCharacters": ["true"],
        "RequireSymbols": ["true"],
        "RequireNumbers": ["true"],
        "AllowUsersToChangePassword": ["true"],
    }
    if "MaxPasswordAge" in REQUIREMENTS.get(finding.rule_id, {}):
        parameters["MaxPasswordAge"] = [str(defaults["max_age_days"])]
    return parameters


class PasswordPolicy(Remediator):
    """IAM.7 and IAM.10 to IAM.17: raise the account password policy to what the finding's control requires.

    Only the settings the finding's rule checks are changed, and only when they fail it: each is raised to the
    configured target (never below the control's threshold). A setting that already passes, however it compares to
    the target, and every unrelated setting are sent back unchanged, so the policy never gets weaker.
    """

    rules = (
        Rule("IAM.7", "Password policies for IAM users should have strong configurations"),
        Rule("IAM.10", "Password policies for IAM users should have strong AWS Configurations"),
        Rule("IAM.11", "Ensure IAM password policy requires at least one uppercase letter"),
        Rule("IAM.12", "Ensure IAM password policy requires at least one lowercase letter"),
        Rule("IAM.13", "Ensure IAM password policy requires at least one symbol"),
        Rule("IAM.14", "Ensure IAM password policy requires at least one number"),
        Rule("IAM.15", "Ensure IAM password policy requires minimum password length of 14 or greater", cis=("1.8",)),
        Rule("IAM.16", "Ensure IAM password policy prevents password reuse", cis=("1.9",)),
        Rule("IAM.17", "Ensure IAM password policy expires passwords within 90 days or less"),
    )
    resource_types = ("AwsAccount",)
    read_permissions = ("iam:GetAccountPasswordPolicy",)
    write_permissions = ("iam:UpdateAccountPasswordPolicy",)
    restore_permissions = (
        "iam:UpdateAccountPasswordPolicy",
        "iam:DeleteAccountPasswordPolicy",  # when there was no custom policy
    )
    reversible = True
    combines_writes = True  # one account policy: the run's rules on an account are written with one call
    runbook = Runbook(
        document="AWSConfigRemediation-SetIAMPasswordPolicy",
        parameters=_runbook_parameters,
        configured=_configured_policy,
        permissions=("iam:GetAccountPasswordPolicy", "iam:UpdateAccountPasswordPolicy"),
    )
    params_schema = {  # IAM's bounds are checked on construction
        "min_length": Param(14, int),
        "reuse_prevention": Param(24, int),
        "max_age_days": Param(90, int),
    }

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        for name, (low, high) in _PARAM_RANGES.items():
            _check_int("PasswordPolicy", self.params, name, low, high)

    def _target_value(self, setting: str, required: bool | int) -> bool | int:
        if isinstance(required, bool):
            return True
        configured: int = self.params[_PARAM_FOR[setting]]
        return min(configured, required) if setting == "MaxPasswordAge" else max(configured, required)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        requirements = REQUIREMENTS.get(finding.rule_id)
        if requirements is None:
            raise RemediationError(f"PasswordPolicy does not handle rule {finding.rule_id}")
        iam = target.client("iam")
        # One read per account for all eight rules of the run (the engine drops it at any write in the account).
        current = target.read(("iam.GetAccountPasswordPolicy",),
                              lambda: _read_optional(lambda: iam.get_account_password_policy()["PasswordPolicy"]))

        request = _settable(current or {})
        checks: dict[str, bool | int] = {}
        changes: list[str] = []
        if current is None:
            for rule in _FIRST_POLICY_RULES:
                checks.update(REQUIREMENTS[rule])
            changes.append("create a custom password policy (the account uses the AWS default policy)")
        checks.update(requirements)
        for setting, required in checks.items():
            if not _meets(setting, request.get(setting), required):
                new = self._target_value(setting, required)
                changes.append(f"set the password policy's {setting} to {new} (now {request.get(setting, 'not set')})")
                request[setting] = new
        # Without a policy the rule's own requirements fail too, so "no change" means exactly "the rule passes".
        return Assessment(
            compliant=not changes,
            changes=changes,
            pre_state={"PasswordPolicy": current},
            context={"request": request},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self.apply_many(target, [(finding, assessment)])

    def apply_many(self, target: Target, items: Sequence[tuple[Finding, Assessment]]) -> None:
        """One UpdateAccountPasswordPolicy for every rule's change: the requests (each the policy they read with
        their rule's settings raised) merged setting by setting, the strongest value winning, so no rule lowers
        what another raised. The engine verifies each rule afterwards and, should another writer's policy have
        come in between, merges again onto the live one."""
        merged: dict[str, Any] = {}
        for _, assessment in items:
            for setting, value in assessment.context["request"].items():
                merged[setting] = _stronger(setting, merged.get(setting), value)
        target.client("iam").update_account_password_policy(**merged)

    def fields_changed_by(self, assessment: Assessment) -> frozenset[str] | None:
        """The settings this rule's own request sets differently from the policy it read."""
        before = self.state_fields(assessment.pre_state) or {}
        after = self.state_fields({"PasswordPolicy": assessment.context.get("request", {})}) or {}
        return frozenset(name for name in after if after[name] != before.get(name))

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Send the previous policy back whole (UpdateAccountPasswordPolicy replaces every setting), or delete the
        custom policy when there was none, which brings back the AWS default policy."""
        iam = target.client("iam")
        previous = pre_state["PasswordPolicy"]
        if previous is None:
            if _if_exists(iam.delete_account_password_policy):
                return ["deleted the custom password policy: the account uses the AWS default policy again"]
            return ["no custom password policy to delete: the account already uses the AWS default policy"]
        request = _settable(previous)
        iam.update_account_password_policy(**request)
        return ["password policy set back to " + ", ".join(f"{name}={value}" for name, value in request.items())]

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        """Each setting of the policy (no policy: every flag off, no number set)."""
        if "PasswordPolicy" not in state:
            return None
        policy = state["PasswordPolicy"] or {}
        fields: dict[str, Any] = {name: bool(policy.get(name)) for name in _BOOLEAN_SETTINGS}
        fields.update({name: policy.get(name) or None for name in _NUMBER_SETTINGS})
        return fields

    def restore_fields(
        self, target: Target, finding: Finding, pre_state: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> list[str]:
        """The live policy with only `fields` set back (UpdateAccountPasswordPolicy replaces every setting, so the
        others are sent as they are now). When the run created the policy and every setting goes back, the custom
        policy is deleted, which brings back the AWS default policy."""
        iam = target.client("iam")
        live = _read_optional(lambda: iam.get_account_password_policy()["PasswordPolicy"]) or {}
        request = _settable(live)
        for name, value in fields.items():
            if value:
                request[name] = value
            else:
                request.pop(name, None)  # off / not set: what UpdateAccountPasswordPolicy does with an omitted one
        lines = [f"set the password policy's {name} back to {_not_set(value)} (was {_not_set(live.get(name))})"
                 for name, value in fields.items()]
        if pre_state.get("PasswordPolicy") is None and self.state_fields({"PasswordPolicy": request}) == \
                self.state_fields({"PasswordPolicy": None}):
            _if_exists(iam.delete_account_password_policy)
            return ["deleted the custom password policy the run created: the account uses the AWS default policy "
                    "again"]
        iam.update_account_password_policy(**request)
        return lines


def _not_set(value: Any) -> Any:
    return "not set" if value is None else value


# --------------------------------------------------------------------------------------------------------------
# Access keys and console passwords: IAM.3, IAM.22
# --------------------------------------------------------------------------------------------------------------


def user_tags(iam: AwsClient, finding: Finding, user: str) -> dict[str, str] | None:
    """The user's live tags (one ListUserTags: a user has at most 50) when the finding carries none."""
    with _must_exist(f"IAM user {user}"):
        return live_tags(finding, lambda: tag_dict(iam.list_user_tags(UserName=user).get("Tags", [])))


def identity_tags(iam: AwsClient, kind: str, name: str) -> dict[str, str] | None:
    """A user's or role's tags (one call; groups have none, and one deleted meanwhile has none either)."""
    call = {"User": ("list_user_tags", "UserName"), "Role": ("list_role_tags", "RoleName")}.get(kind)
    if call is None:
        return None
    try:
        return tag_dict(getattr(iam, call[0])(**{call[1]: name}).get("Tags", []))
    except ClientError as error:
        if aws_error_code(error) == "NoSuchEntity":
            return None
        raise


def _certificate_tags(iam: AwsClient, name: str) -> dict[str, str]:
    return tag_dict(iam.list_server_certificate_tags(ServerCertificateName=name).get("Tags", []))


def _access_keys(iam: AwsClient, user: str) -> list[dict[str, Any]]:
    with _must_exist(f"IAM user {user}"):
        return _all_items(iam, "list_access_keys", "AccessKeyMetadata", UserName=user)


def _deactivate_keys(iam: AwsClient, user: str, access_key_ids: list[str]) -> None:
    for access_key_id in access_key_ids:
        iam.update_access_key(UserName=user, AccessKeyId=access_key_id, Status="Inactive")


def _reactivate_keys(iam: AwsClient, pre_state: Mapping[str, Any]) -> list[str]:
    """The restore of both key remediators: Status=Active again for every key their pre_state lists."""
    user = pre_state["UserName"]
    return _run_steps(
        (
            f"reactivate access key {key['AccessKeyId']} of user {user}",
            iam.update_access_key,
            {"UserName": user, "AccessKeyId": key["AccessKeyId"], "Status": "Active"},
        )
        for key in pre_state["deactivated"]
    )


def _unused_since(cutoff: datetime, last_used: datetime | None, created: datetime) -> bool:
    """Idle since before cutoff, counted from the later of the last use and the creation: a credential created
    (or re-created) recently is never taken for an old unused one."""
    return max(moment for moment in (last_used, created) if moment is not None) < cutoff


def _usage(last_used: datetime | str | None, created: datetime | str) -> str:
    return f"last used {_day(last_used)}" if last_used else f"never used, created {_day(created)}"


class AccessKeyRotation(Remediator):
    """IAM.3: deactivate the user's active access keys older than max_age_days.

    Keys are deactivated, never deleted, so UpdateAccessKey Status=Active restores them. Deactivating a key still in
    use stops whatever uses it: that is the point of the control, and why the default mode is dry-run. The user's
    tags are read (one ListUserTags) when the finding carries none, so the exclusion tag holds for every source.
    """

    # Disruptive: a workload still using an old key loses access when it is deactivated, so this acts only on
    # an explicit per-rule opt-in, never on a global `enforce`.
    rules = (
        Rule(
            "IAM.3",
            "IAM users' access keys should be rotated every 90 days or less",
            cis=("1.14",),
            disruptive=True,
            disruption="access",
            because="a workload still using an old key loses access",
        ),
    )
    resource_types = ("AwsIamUser", "AwsIamAccessKey")
    read_permissions = ("iam:ListAccessKeys", "iam:ListUserTags")
    write_permissions = ("iam:UpdateAccessKey",)
    restore_permissions = ("iam:UpdateAccessKey",)
    reversible = True
    params_schema = {"max_age_days": Param(90, int, minimum=1)}

    def assess(self, target: Target, finding: Finding) -> Assessment:
        user = iam_name(finding)
        keys = _access_keys(target.client("iam"), user)
        cutoff = datetime.now(UTC) - timedelta(days=self.params["max_age_days"])
        stale = [key for key in keys if key["Status"] == "Active" and key["CreateDate"] < cutoff]
        return Assessment(
            compliant=not stale,
            tags=user_tags(target.client("iam"), finding, user),
            changes=[
                f"deactivate access key {key['AccessKeyId']} of user {user} (created {_day(key['CreateDate'])})"
                for key in stale
            ],
            pre_state={
                "UserName": user,
                "deactivated": [
                    {"AccessKeyId": key["AccessKeyId"], "Status": "Active", "CreateDate": _iso(key["CreateDate"])}
                    for key in stale
                ],
            },
            context={"user": user, "access_key_ids": [key["AccessKeyId"] for key in stale]},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        _deactivate_keys(target.client("iam"), assessment.context["user"], assessment.context["access_key_ids"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        return _reactivate_keys(target.client("iam"), pre_state)


def _unused_credentials_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    """AWS's runbook takes the user's unique id (AIDA…), which it resolves through AWS Config, not the user name;
    only a Security Hub finding carries it (Resources[0].Details.AwsIamUser.UserId)."""
    try:
        user_id = finding.raw["Resources"][0]["Details"]["AwsIamUser"]["UserId"]
    except (KeyError, IndexError, TypeError):
        raise RemediationError(
            f"{finding.rule_id}: the runbook needs the IAM user id, which this {finding.source} finding does not "
            "carry; use executor boto3"
        ) from None
    return {
        "AutomationAssumeRole": [automation_role_arn],
        "IAMResourceId": [user_id],
        "MaxCredentialUsageAge": [str(UnusedCredentials.default_params["max_unused_days"])],
    }


def _configured_unused_credentials(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """The runbook deletes every unused console password it finds: only when the rule allows that."""
    if not params.get("remove_unused_passwords"):
        raise RemediationError(
            "AWSConfigRemediation-RevokeUnusedIAMUserCredentials deletes unused console passwords, which "
            "remove_unused_passwords: false forbids: use executor boto3 (or allow it)"
        )
    return {"MaxCredentialUsageAge": [str(params["max_unused_days"])]}


class UnusedCredentials(Remediator):
    """IAM.22: deactivate access keys, and optionally remove the console password, unused for max_unused_days.

    Keys are deactivated, never deleted: restore() reactivates them. Removing a console password loses it for good,
    so it happens only with remove_unused_passwords: true; without it the password is reported and kept, apply says
    so, and the finding stays open. The SSM runbook does not honour that switch (it deletes unused login profiles,
    and its permission list allows deleting keys) and uses the default 45 days: prefer boto3.
    """

    # Disruptive: a job that uses its key rarely (quarterly reports) breaks, and a removed password is gone.
    rules = (
        Rule(
            "IAM.22",
            "IAM user credentials unused for 45 days should be removed",
            cis=("1.12",),
            disruptive=True,
            disruption="access",
            because="a rarely used key (quarterly job) stops working",
        ),
    )
    resource_types = ("AwsIamUser",)
    read_permissions = (
        "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:GetLoginProfile", "iam:GetUser", "iam:ListUserTags",
    )
    write_permissions = ("iam:UpdateAccessKey", "iam:DeleteLoginProfile")
    restore_permissions = ("iam:UpdateAccessKey",)
    reversible = True  # the keys
    not_restorable = "a removed console password (only with remove_unused_passwords: true)"
    runbook: ClassVar[Runbook | None] = Runbook(
        document="AWSConfigRemediation-RevokeUnusedIAMUserCredentials",
        parameters=_unused_credentials_runbook_parameters,
        configured=lambda finding, params: _configured_unused_credentials(params),
        permissions=(
            "config:ListDiscoveredResources",
            "iam:DeleteAccessKey",
            "iam:DeleteLoginProfile",
            "iam:GetAccessKeyLastUsed",
            "iam:GetLoginProfile",
            "iam:GetUser",
            "iam:ListAccessKeys",
            "iam:UpdateAccessKey",
        ),
    )
    params_schema = {"max_unused_days": Param(45, int, minimum=1), "remove_unused_passwords": Param(False, bool)}

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        _check_int("UnusedCredentials", self.params, "max_unused_days", 1, 3650)
        if not isinstance(self.params["remove_unused_passwords"], bool):
            raise ValueError("UnusedCredentials: remove_unused_passwords must be true or false")

    def assess(self, target: Target, finding: Finding) -> Assessment:
        iam = target.client("iam")
        user = iam_name(finding)
        cutoff = datetime.now(UTC) - timedelta(days=self.params["max_unused_days"])
        stale_keys = []
        for key in _access_keys(iam, user):
            if key["Status"] != "Active":
                continue
            used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
            last_used = used.get("LastUsedDate")
            if _unused_since(cutoff, last_used, key["CreateDate"]):
                stale_keys.append(
                    {
                        "AccessKeyId": key["AccessKeyId"],
                        "CreateDate": _iso(key["CreateDate"]),
                        "LastUsedDate": _iso(last_used),
                    }
                )
        stale_password = self._stale_password(iam, user, cutoff)
        remove_password = stale_password is not None and self.params["remove_unused_passwords"]

        changes = [
            f"deactivate access key {key['AccessKeyId']} of user {user} "
            f"({_usage(key['LastUsedDate'], key['CreateDate'])})"
            for key in stale_keys
        ]
        if stale_password:
            usage = _usage(stale_password["PasswordLastUsed"], stale_password["CreateDate"])
            changes.append(
                f"remove the console password of user {user} ({usage}; irreversible)"
                if remove_password
                else f"keep the console password of user {user} ({usage}): removing it is irreversible and needs "
                "params.remove_unused_passwords: true"
            )
        return Assessment(
            compliant=not changes,
            changes=changes,
            tags=user_tags(iam, finding, user),
            pre_state={
                "UserName": user,
                "deactivated": stale_keys,
                "removed_login_profile": stale_password if remove_password else None,
            },
            context={
                "user": user,
                "access_key_ids": [key["AccessKeyId"] for key in stale_keys],
                "remove_password": remove_password,
                "kept_password": stale_password is not None and not remove_password,
            },
        )

    @staticmethod
    def _stale_password(iam: AwsClient, user: str, cutoff: datetime) -> dict[str, Any] | None:
        """The login profile when its password is unused since before cutoff, else None."""
        profile = _read_optional(lambda: iam.get_login_profile(UserName=user)["LoginProfile"])
        if profile is None:
            return None
        with _must_exist(f"IAM user {user}"):
            last_used = iam.get_user(UserName=user)["User"].get("PasswordLastUsed")
        if not _unused_since(cutoff, last_used, profile["CreateDate"]):
            return None
        return {
            "CreateDate": _iso(profile["CreateDate"]),
            "PasswordLastUsed": _iso(last_used),
            "PasswordResetRequired": profile.get("PasswordResetRequired", False),
        }

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        iam = target.client("iam")
        context = assessment.context
        _deactivate_keys(iam, context["user"], context["access_key_ids"])
        if context["remove_password"]:
            _if_exists(iam.delete_login_profile, UserName=context["user"])
        elif context["kept_password"]:
            raise RemediationError(
                f"the console password of user {context['user']} is unused but was kept: removing it is irreversible; "
                f"set rules.{finding.rule_id}.params.remove_unused_passwords: true to allow it"
                + (
                    f" ({len(context['access_key_ids'])} unused access key(s) were deactivated)"
                    if context["access_key_ids"]
                    else ""
                )
            )

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        lines = _reactivate_keys(target.client("iam"), pre_state)
        if pre_state.get("removed_login_profile"):
            user = pre_state["UserName"]
            lines.append(
                f"the console password of user {user} was removed and cannot be restored; if the user needs the "
                f"console again: aws iam create-login-profile --user-name {user} --password-reset-required "
                "--password '<new password>'"
            )
        return lines


# --------------------------------------------------------------------------------------------------------------
# Policies attached to users: IAM.2
# --------------------------------------------------------------------------------------------------------------


class UserPoliciesToGroup(Remediator):
    """IAM.2: move the policies of a user (managed and inline) to a group, and put the user in that group.

    The group gets every policy and the user joins it before anything is taken off the user, so the user never
    loses a permission, even when a call fails half-way (a rerun reuses the group and goes on). The group is named by
    params.group_name, where {user} is the user name; an existing group of that name is reused, but never one whose
    inline policy of the same name says something else.
    """

    rules = (Rule("IAM.2", "IAM users should not have IAM policies attached", cis=("1.15",)),)
    resource_types = ("AwsIamUser",)
    read_permissions = (
        "iam:ListAttachedUserPolicies",
        "iam:ListUserPolicies",
        "iam:GetUserPolicy",
        "iam:GetGroup",
        "iam:ListAttachedGroupPolicies",
        "iam:ListGroupPolicies",
        "iam:GetGroupPolicy",
        "iam:ListUserTags",
    )
    write_permissions = (
        "iam:CreateGroup",
        "iam:AttachGroupPolicy",
        "iam:PutGroupPolicy",
        "iam:AddUserToGroup",
        "iam:DetachUserPolicy",
        "iam:DeleteUserPolicy",
    )
    restore_permissions = (
        "iam:AttachUserPolicy",
        "iam:PutUserPolicy",
        "iam:DetachGroupPolicy",
        "iam:DeleteGroupPolicy",
        "iam:RemoveUserFromGroup",
        "iam:DeleteGroup",
    )
    reversible = True
    side_effects = "the user's former policies live on a group: whoever is added to that group later gets them too"
    params_schema = {"group_name": Param("cspm-user-{user}", str)}  # a template: checked per user
    # It copies whatever policies a user holds to a new group and adds the user: no IAM condition can tell those
    # from AdministratorAccess, so the deployed roles never get these writes (notify / dry-run there).
    grants_privileges = True

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        template = self.params["group_name"]
        try:
            template.format(user="user")
        except (AttributeError, KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"UserPoliciesToGroup: group_name must be a text where only {{user}} is replaced, got {template!r}"
            ) from error

    def assess(self, target: Target, finding: Finding) -> Assessment:
        iam = target.client("iam")
        user = iam_name(finding)
        with _must_exist(f"IAM user {user}"):
            attached = [
                policy["PolicyArn"]
                for policy in _all_items(iam, "list_attached_user_policies", "AttachedPolicies", UserName=user)
            ]
            inline = {
                name: iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
                for name in _all_items(iam, "list_user_policies", "PolicyNames", UserName=user)
            }
        tags = user_tags(iam, finding, user)
        if not attached and not inline:
            return Assessment(compliant=True, tags=tags)

        group = self.params["group_name"].format(user=user)
        if not _IAM_NAME.match(group):
            raise RemediationError(f"{group!r} is not a valid IAM group name: check params.group_name")
        members = _read_optional(lambda: _all_items(iam, "get_group", "Users", GroupName=group))
        group_attached: set[str] = set()
        group_inline: set[str] = set()
        if members is not None:
            group_attached = {
                policy["PolicyArn"]
                for policy in _all_items(iam, "list_attached_group_policies", "AttachedPolicies", GroupName=group)
            }
            group_inline = set(_all_items(iam, "list_group_policies", "PolicyNames", GroupName=group))
        clashes = [
            name
            for name in inline
            if name in group_inline
            and iam.get_group_policy(GroupName=group, PolicyName=name)["PolicyDocument"] != inline[name]
        ]
        if clashes:
            raise RemediationError(
                f"group {group} already has inline policies named {', '.join(clashes)} with other documents; "
                "set params.group_name to another group"
            )

        plan = {
            "UserName": user,
            "GroupName": group,
            "AttachedPolicyArns": attached,
            "InlinePolicies": inline,
            "GroupAttached": [arn for arn in attached if arn not in group_attached],
            "GroupInline": [name for name in inline if name not in group_inline],
            "AddedToGroup": members is None or all(member["UserName"] != user for member in members),
        }
        changes = [f"create group {group}"] if members is None else []
        changes += [f"attach {arn} to group {group}" for arn in plan["GroupAttached"]]
        changes += [f"copy inline policy {name} of user {user} to group {group}" for name in plan["GroupInline"]]
        changes += [f"add user {user} to group {group}"] if plan["AddedToGroup"] else []
        changes += [f"detach {arn} from user {user}" for arn in attached]
        changes += [f"delete inline policy {name} from user {user}" for name in inline]
        context = {**plan, "create_group": members is None}
        return Assessment(compliant=False, changes=changes, pre_state=plan, tags=tags, context=context)

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        iam = target.client("iam")
        plan = assessment.context
        user, group = plan["UserName"], plan["GroupName"]
        if plan["create_group"]:
            iam.create_group(GroupName=group)
            assessment.context["created"] = {"GroupName": group}
        for arn in plan["GroupAttached"]:
            iam.attach_group_policy(GroupName=group, PolicyArn=arn)
        for name in plan["GroupInline"]:
            iam.put_group_policy(
                GroupName=group, PolicyName=name, PolicyDocument=json.dumps(plan["InlinePolicies"][name])
            )
        if plan["AddedToGroup"]:
            iam.add_user_to_group(GroupName=group, UserName=user)
        # Only now does the group grant the user everything: take the policies off the user.
        for arn in plan["AttachedPolicyArns"]:
            iam.detach_user_policy(UserName=user, PolicyArn=arn)
        for name in plan["InlinePolicies"]:
            iam.delete_user_policy(UserName=user, PolicyName=name)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """The user's policies go back first, then what apply added to the group is taken off, in the reverse
        order, so here too the user never lacks a permission. A group apply created is deleted."""
        iam = target.client("iam")
        user, group = pre_state["UserName"], pre_state["GroupName"]
        lines = []
        with _must_exist(f"IAM user {user}"):
            for arn in pre_state["AttachedPolicyArns"]:
                iam.attach_user_policy(UserName=user, PolicyArn=arn)  # attaching twice is a no-op
                lines.append(f"attach {arn} to user {user}: done")
            for name, document in pre_state["InlinePolicies"].items():
                iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=json.dumps(document))
                lines.append(f"put inline policy {name} back on user {user}: done")
        steps = (
            [
                (
                    f"remove user {user} from group {group}",
                    iam.remove_user_from_group,
                    {"GroupName": group, "UserName": user},
                )
            ]
            if pre_state["AddedToGroup"]
            else []
        )
        steps += [
            (
                f"delete inline policy {name} from group {group}",
                iam.delete_group_policy,
                {"GroupName": group, "PolicyName": name},
            )
            for name in pre_state["GroupInline"]
        ]
        steps += [
            (f"detach {arn} from group {group}", iam.detach_group_policy, {"GroupName": group, "PolicyArn": arn})
            for arn in pre_state["GroupAttached"]
        ]
        if pre_state.get("created"):
            steps.append((f"delete group {group}", iam.delete_group, {"GroupName": group}))
        return lines + _run_steps(steps)


# --------------------------------------------------------------------------------------------------------------
# AWS managed policies on identities: IAM.18 (AWSSupportAccess must be on a role), IAM.27 (AWSCloudShellFullAccess
# must be on nobody)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _IdentityKind:
    """How ListEntitiesForPolicy and the attach/detach calls name one kind of IAM identity."""

    listed_as: str  # the ListEntitiesForPolicy response key
    name_key: str  # the name field there, which is also the name parameter of attach/detach
    attach: str
    detach: str


_IDENTITY_KINDS = {
    "User": _IdentityKind("PolicyUsers", "UserName", "attach_user_policy", "detach_user_policy"),
    "Group": _IdentityKind("PolicyGroups", "GroupName", "attach_group_policy", "detach_group_policy"),
    "Role": _IdentityKind("PolicyRoles", "RoleName", "attach_role_policy", "detach_role_policy"),
}
_KIND_OF_RESOURCE_TYPE = {"AwsIamUser": "User", "AwsIamGroup": "Group", "AwsIamRole": "Role"}


def _identities_with_policy(iam: AwsClient, policy_arn: str, kind: str | None = None) -> list[tuple[str, str]]:
    """(kind, name) of each identity the managed policy is attached to; none when the partition lacks the policy."""
    kwargs = {"PolicyArn": policy_arn, **({"EntityFilter": kind} if kind else {})}
    pages = _read_optional(lambda: list(iam.get_paginator("list_entities_for_policy").paginate(**kwargs))) or []
    return [
        (name, item[spec.name_key])
        for page in pages
        for name, spec in _IDENTITY_KINDS.items()
        for item in page.get(spec.listed_as, [])
    ]


def _policy_step(iam: AwsClient, verb: str, kind: str, name: str, policy_arn: str) -> _Step:
    """An attach or detach of a managed policy on one identity, as a (description, call, kwargs) step."""
    spec = _IDENTITY_KINDS[kind]
    preposition = "to" if verb == "attach" else "from"
    return (
        f"{verb} {policy_arn.rsplit('/', 1)[-1]} {preposition} {kind.lower()} {name}",
        getattr(iam, getattr(spec, verb)),
        {spec.name_key: name, "PolicyArn": policy_arn},
    )


def _account_trust_policy(target: Target) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{target.partition}:iam::{target.account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


class SupportRole(Remediator):
    """IAM.18: create a role with AWSSupportAccess, so incidents can be handled with AWS Support.

    Compliant when any role has the policy. The role trusts the account itself (CIS 1.17): who may assume it is
    then decided by the account's own IAM policies. An existing role of the configured name is used only when it
    already has exactly that trust policy; any other would hand support access to whoever it trusts.
    """

    rules = (
        Rule("IAM.18", "Ensure a support role has been created to manage incidents with AWS Support", cis=("1.17",)),
    )
    resource_types = ("AwsAccount",)
    read_permissions = ("iam:ListEntitiesForPolicy", "iam:GetRole")
    write_permissions = ("iam:CreateRole", "iam:AttachRolePolicy")
    restore_permissions = ("iam:DetachRolePolicy", "iam:DeleteRole")
    reversible = True
    side_effects = "a role any principal of the account allowed sts:AssumeRole on it may use for AWS Support"
    params_schema = {"role_name": Param("AWSSupportAccessRole", str, pattern=ROLE_NAME)}
    # As AWS's Automated Security Response does: that one role, and only AWS's AWSSupportAccess policy on it.
    grants = (
        Grant(("iam:GetRole", "iam:CreateRole", "iam:DeleteRole"),
              ("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/{role_name}",)),
        Grant(("iam:AttachRolePolicy", "iam:DetachRolePolicy"),
              ("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/{role_name}",),
              {"ArnEquals": {"iam:PolicyARN": "arn:${AWS::Partition}:iam::aws:policy/AWSSupportAccess"}}),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        iam = target.client("iam")
        policy_arn = _aws_policy_arn(target, "AWSSupportAccess")
        if _identities_with_policy(iam, policy_arn, "Role"):
            return Assessment(compliant=True)
        name = self.params["role_name"]
        trust = _account_trust_policy(target)
        role = _read_optional(lambda: iam.get_role(RoleName=name)["Role"])
        if role is not None and role.get("AssumeRolePolicyDocument") != trust:
            raise RemediationError(
                f"role {name} exists with another trust policy: giving it AWSSupportAccess could grant support access "
                "to others; set params.role_name to a new role name"
            )
        principal = trust["Statement"][0]["Principal"]["AWS"]
        changes = [] if role else [f"create role {name} trusted by {principal}"]
        return Assessment(
            compliant=False,
            changes=[*changes, f"attach {policy_arn} to role {name}"],
            pre_state={"RoleName": name, "PolicyArn": policy_arn, "RoleExisted": role is not None},
            context={"role_name": name, "policy_arn": policy_arn, "trust": trust, "create": role is None},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        iam = target.client("iam")
        context = assessment.context
        if context["create"]:
            iam.create_role(
                RoleName=context["role_name"],
                AssumeRolePolicyDocument=json.dumps(context["trust"]),
                Description="Manages incidents with AWS Support (CIS 1.17); created by cspm-remediation",
            )
            assessment.context["created"] = {"RoleName": context["role_name"]}
        iam.attach_role_policy(RoleName=context["role_name"], PolicyArn=context["policy_arn"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Detach the policy; delete the role only when this remediation created it."""
        iam = target.client("iam")
        name = pre_state["RoleName"]
        steps = [_policy_step(iam, "detach", "Role", name, pre_state["PolicyArn"])]
        if pre_state.get("created"):
            steps.append((f"delete role {name}", iam.delete_role, {"RoleName": name}))
        return _run_steps(steps)


class CloudShellFullAccess(Remediator):
    """IAM.27: detach the AWS managed policy AWSCloudShellFullAccess from users, groups and roles.

    A finding on a user, group or role is about that identity only; a finding on the policy or the account covers
    every identity the policy is attached to. The identities lose CloudShell (a shell with internet access and file
    transfer) and nothing else; restore() attaches the policy again.
    """

    rules = (
        Rule("IAM.27", "IAM identities should not have the AWSCloudShellFullAccess policy attached", cis=("1.22",)),
    )
    resource_types = ("AwsIamUser", "AwsIamGroup", "AwsIamRole", "AwsIamPolicy", "AwsAccount")
    read_permissions = ("iam:ListEntitiesForPolicy", "iam:ListUserTags", "iam:ListRoleTags")
    write_permissions = ("iam:DetachUserPolicy", "iam:DetachGroupPolicy", "iam:DetachRolePolicy")
    restore_permissions = ("iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy")
    grants = (Grant(
        ("iam:DetachUserPolicy", "iam:DetachGroupPolicy", "iam:DetachRolePolicy",
         "iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy"),
        conditions={"ArnEquals": {"iam:PolicyARN": "arn:${AWS::Partition}:iam::aws:policy/AWSCloudShellFullAccess"}},
    ),)
    reversible = True

    def assess(self, target: Target, finding: Finding) -> Assessment:
        iam = target.client("iam")
        policy_arn = _aws_policy_arn(target, "AWSCloudShellFullAccess")
        kind = _KIND_OF_RESOURCE_TYPE.get(finding.resource_type)
        identities = _identities_with_policy(iam, policy_arn, kind)
        tags = None
        left: list[str] = []
        if kind:
            identities = [(kind, name) for kind, name in identities if name == iam_name(finding)]
            tags = self._identity_tags(iam, finding, kind) if identities else None
        else:  # a finding on the policy or the account: each identity's own exclusion tag holds
            kinds = {f"{kind.lower()} {name}": (kind, name) for kind, name in identities}
            acting, left = split_excluded(target, (
                (label, functools.partial(identity_tags, iam, *identity)) for label, identity in kinds.items()))
            identities = [kinds[label] for label in acting]
            if not identities and left:
                return Assessment(compliant=True, excluded="every identity with AWSCloudShellFullAccess carries "
                                  f"the exclusion tag: {', '.join(left)}")
        return Assessment(
            compliant=not identities,
            tags=tags,
            changes=[_policy_step(iam, "detach", kind, name, policy_arn)[0] for kind, name in identities]
            + left_alone("identity", left),
            pre_state={
                "PolicyArn": policy_arn,
                "detached": [{"Type": kind, "Name": name} for kind, name in identities],
            },
            context={"policy_arn": policy_arn, "identities": identities},
        )

    @staticmethod
    def _identity_tags(iam: AwsClient, finding: Finding, kind: str) -> dict[str, str] | None:
        """A user's or role's live tags (one call; groups have none) when the finding carries none."""
        name = iam_name(finding)
        if kind == "User":
            return user_tags(iam, finding, name)
        if kind == "Role":
            with _must_exist(f"IAM role {name}"):
                return live_tags(finding, lambda: tag_dict(iam.list_role_tags(RoleName=name).get("Tags", [])))
        return None

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        iam = target.client("iam")
        policy_arn = assessment.context["policy_arn"]
        # Idempotent: an identity detached (or deleted) meanwhile is no error.
        _run_steps(
            _policy_step(iam, "detach", kind, name, policy_arn) for kind, name in assessment.context["identities"]
        )

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        iam = target.client("iam")
        return _run_steps(
            _policy_step(iam, "attach", identity["Type"], identity["Name"], pre_state["PolicyArn"])
            for identity in pre_state["detached"]
        )


# --------------------------------------------------------------------------------------------------------------
# Expired server certificates: IAM.26
# --------------------------------------------------------------------------------------------------------------


class ExpiredServerCertificates(Remediator):
    """IAM.26: delete the IAM server certificates that have expired.

    A finding on the account covers every expired certificate; one on a certificate (Security Hub reports the
    resource type AWS::IAM::ServerCertificate) covers that one. A certificate a load balancer still uses cannot be
    deleted (DeleteConflict): the finding fails with that reason.
    """

    # Disruptive and irreversible: the certificate and its private key are gone for good, so this needs its own
    # opt-in. pre_state lists what was deleted, for the record only.
    rules = (
        Rule(
            "IAM.26",
            "Expired SSL/TLS certificates managed in IAM should be removed",
            cis=("1.19",),
            disruptive=True,
            disruption="data",
            because="the certificate and its private key are deleted for good",
        ),
    )
    resource_types = ("AwsAccount", "AwsIamServerCertificate", "Other")
    # ListServerCertificateTags: a finding on one certificate that carries no tags (the exclusion tag).
    read_permissions = ("iam:ListServerCertificates", "iam:ListServerCertificateTags")
    write_permissions = ("iam:DeleteServerCertificate",)
    reversible = False

    def assess(self, target: Target, finding: Finding) -> Assessment:
        certificates = _all_items(target.client("iam"), "list_server_certificates", "ServerCertificateMetadataList")
        if finding.resource_type != "AwsAccount":
            wanted = {finding.resource_id, iam_name(finding), finding.resource_arn}
            certificates = [c for c in certificates if {c["ServerCertificateName"], c["Arn"]} & wanted]
        now = datetime.now(UTC)
        expired = [c for c in certificates if c["Expiration"] <= now]
        left: list[str] = []
        if finding.resource_type == "AwsAccount" and expired:  # each certificate's own exclusion tag holds
            iam = target.client("iam")
            acting, left = split_excluded(target, ((c["ServerCertificateName"], functools.partial(
                _certificate_tags, iam, c["ServerCertificateName"])) for c in expired))
            expired = [c for c in expired if c["ServerCertificateName"] in acting]
            if not expired:
                return Assessment(compliant=True, excluded="every expired server certificate carries the exclusion "
                                  f"tag: {', '.join(left)}")
        tags = None
        if finding.resource_type != "AwsAccount" and len(certificates) == 1:
            name = certificates[0]["ServerCertificateName"]
            tags = live_tags(finding, lambda: tag_dict(
                target.client("iam").list_server_certificate_tags(ServerCertificateName=name).get("Tags", [])))
        return Assessment(
            compliant=not expired,
            tags=tags,
            changes=[
                f"delete server certificate {c['ServerCertificateName']} (expired {_day(c['Expiration'])}; "
                "irreversible)"
                for c in expired
            ] + left_alone("expired server certificate", left),
            pre_state={
                "deleted": [
                    {
                        "ServerCertificateName": c["ServerCertificateName"],
                        "Arn": c["Arn"],
                        "ServerCertificateId": c.get("ServerCertificateId"),
                        "Expiration": _iso(c["Expiration"]),
                    }
                    for c in expired
                ]
            },
            context={"names": [c["ServerCertificateName"] for c in expired]},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        iam = target.client("iam")
        for name in assessment.context["names"]:
            _if_exists(iam.delete_server_certificate, ServerCertificateName=name)  # gone already: fine


# --------------------------------------------------------------------------------------------------------------
# IAM Access Analyzer: IAM.28
# --------------------------------------------------------------------------------------------------------------


def _analyzer_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {
        "AutomationAssumeRole": [automation_role_arn],
        "AnalyzerName": [AccessAnalyzer.default_params["analyzer_name"]],
    }


class AccessAnalyzer(Remediator):
    """IAM.28: create an account-level external access analyzer in the finding's region when none is enabled.

    An ACCOUNT or ORGANIZATION analyzer that is ACTIVE, or CREATING (it becomes ACTIVE within moments; creating a
    second one would be wrong), counts as enabled. Analyzers are regional: the finding's region is the one checked.
    """

    rules = (Rule("IAM.28", "IAM Access Analyzer external access analyzer should be enabled", cis=("1.20",)),)
    resource_types = ("AwsAccount", "AwsAccessAnalyzerAnalyzer", "Other")
    read_permissions = ("access-analyzer:ListAnalyzers",)
    write_permissions = (
        "access-analyzer:CreateAnalyzer",
        # The first analyzer of an account creates the service-linked role AWSServiceRoleForAccessAnalyzer, which
        # IAM authorizes against the caller.
        "iam:CreateServiceLinkedRole",
    )
    restore_permissions = ("access-analyzer:DeleteAnalyzer",)
    grants = (Grant(("iam:CreateServiceLinkedRole",),
                    conditions={"StringEquals": {"iam:AWSServiceName": "access-analyzer.amazonaws.com"}}),)
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-EnableAccountAccessAnalyzer",
        parameters=_analyzer_runbook_parameters,
        configured=lambda finding, params: {"AnalyzerName": [str(params["analyzer_name"])]},
        permissions=(
            "access-analyzer:CreateAnalyzer",
            "access-analyzer:GetAnalyzer",
            "iam:CreateServiceLinkedRole",
        ),
    )
    params_schema = {"analyzer_name": Param("cspm-account-analyzer", str, pattern=r"[A-Za-z][\w.-]{0,254}")}

    def assess(self, target: Target, finding: Finding) -> Assessment:
        analyzers = target.read(("accessanalyzer.ListAnalyzers",),
                                lambda: _all_items(target.client("accessanalyzer"), "list_analyzers", "analyzers"))
        if any(a["type"] in ("ACCOUNT", "ORGANIZATION") and a["status"] in ("ACTIVE", "CREATING") for a in analyzers):
            return Assessment(compliant=True)
        name = self.params["analyzer_name"]
        return Assessment(
            compliant=False,
            changes=[f"create account analyzer {name} in {target.api_region}"],
            pre_state={"AnalyzerName": name, "Region": target.api_region},
            context={"analyzer_name": name},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        name = assessment.context["analyzer_name"]
        target.client("accessanalyzer").create_analyzer(analyzerName=name, type="ACCOUNT")
        assessment.context["created"] = {"AnalyzerName": name, "Region": target.api_region}

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Delete the analyzer only when this remediation created it."""
        created = pre_state.get("created")
        if not created:
            return [f"analyzer {pre_state['AnalyzerName']} was not created by this remediation: nothing to delete"]
        analyzer = target.client("accessanalyzer")
        name = created["AnalyzerName"]
        return _run_steps(
            [(f"delete analyzer {name} in {target.api_region}", analyzer.delete_analyzer, {"analyzerName": name})]
        )
