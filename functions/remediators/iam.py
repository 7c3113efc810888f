"""IAM remediators: the account password policy (IAM.10 to IAM.17) and access key rotation (IAM.3)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook
from functions.sessions import Target

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


def _settable(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The request that recreates `policy`: UpdateAccountPasswordPolicy replaces the whole policy, so every current
    setting is sent back. A number of 0 means "not set" (AWS omits it, moto returns 0) and is below the API's
    minimum, so it is left out, which keeps it unset."""
    request: dict[str, Any] = {name: policy[name] for name in _BOOLEAN_SETTINGS if policy.get(name) is not None}
    request.update({name: policy[name] for name in _NUMBER_SETTINGS if policy.get(name)})
    return request


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
    """IAM.10 to IAM.17: raise the account password policy to what the finding's control requires.

    Only the settings the finding's rule checks are changed, and only when they fail it: each is raised to the
    configured target (never below the control's threshold). A setting that already passes, however it compares to
    the target, and every unrelated setting are sent back unchanged, so the policy never gets weaker.
    """

    rules = (
        Rule("IAM.10", "Password policies for IAM users should have strong configurations"),
        Rule("IAM.11", "Ensure IAM password policy requires at least one uppercase letter"),
        Rule("IAM.12", "Ensure IAM password policy requires at least one lowercase letter"),
        Rule("IAM.13", "Ensure IAM password policy requires at least one symbol"),
        Rule("IAM.14", "Ensure IAM password policy requires at least one number"),
        Rule("IAM.15", "Ensure IAM password policy requires minimum password length of 14 or greater", cis=("1.8",)),
        Rule("IAM.16", "Ensure IAM password policy prevents password reuse", cis=("1.9",)),
        Rule("IAM.17", "Ensure IAM password policy expires passwords within 90 days or less"),
    )
    resource_types = ("AwsAccount",)
    permissions = ("iam:GetAccountPasswordPolicy", "iam:UpdateAccountPasswordPolicy")
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-SetIAMPasswordPolicy",
        parameters=_runbook_parameters,
        permissions=(
            "ssm:StartAutomationExecution",
            "ssm:GetAutomationExecution",
            "iam:GetAccountPasswordPolicy",
            "iam:UpdateAccountPasswordPolicy",
        ),
    )
    default_params = {"min_length": 14, "reuse_prevention": 24, "max_age_days": 90}

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        for name, (low, high) in _PARAM_RANGES.items():
            value = self.params[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"PasswordPolicy: {name} must be an integer from {low} to {high}, got {value!r}")

    def _target_value(self, setting: str, required: bool | int) -> bool | int:
        if isinstance(required, bool):
            return True
        configured = self.params[_PARAM_FOR[setting]]
        return min(configured, required) if setting == "MaxPasswordAge" else max(configured, required)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        requirements = REQUIREMENTS.get(finding.rule_id)
        if requirements is None:
            raise RemediationError(f"PasswordPolicy does not handle rule {finding.rule_id}")
        try:
            current = target.client("iam").get_account_password_policy()["PasswordPolicy"]
        except ClientError as error:
            if aws_error_code(error) != "NoSuchEntity":
                raise
            current = None

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
                changes.append(f"{setting}: {request.get(setting, 'not set')} -> {new}")
                request[setting] = new
        # Without a policy the rule's own requirements fail too, so "no change" means exactly "the rule passes".
        return Assessment(
            compliant=not changes,
            changes=changes,
            pre_state={"PasswordPolicy": current},
            context={"request": request},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("iam").update_account_password_policy(**assessment.context["request"])


# --------------------------------------------------------------------------------------------------------------
# Access key rotation
# --------------------------------------------------------------------------------------------------------------


def user_name(finding: Finding) -> str:
    """The IAM user of a finding; tolerates a user ARN (`arn:aws:iam::1:user/path/name`): names never hold '/'."""
    return finding.resource_id.rsplit("/", 1)[-1]


class AccessKeyRotation(Remediator):
    """IAM.3: deactivate the user's active access keys older than max_age_days.

    Keys are deactivated, never deleted, so UpdateAccessKey Status=Active restores them. Deactivating a key still in
    use stops whatever uses it: that is the point of the control, and why the default mode is dry-run. The user's
    tags are not read (ListUserTags would be one more call per finding).
    """

    # Disruptive: a workload still using an old key loses access when it is deactivated, so this acts only on
    # an explicit per-rule opt-in, never on a global `enforce`.
    rules = (
        Rule("IAM.3", "IAM users' access keys should be rotated every 90 days or less", cis=("1.14",), disruptive=True),
    )
    resource_types = ("AwsIamUser", "AwsIamAccessKey")
    permissions = ("iam:ListAccessKeys", "iam:UpdateAccessKey")
    reversible = True
    default_params = {"max_age_days": 90}

    def assess(self, target: Target, finding: Finding) -> Assessment:
        user = user_name(finding)
        paginator = target.client("iam").get_paginator("list_access_keys")
        try:
            keys = [key for page in paginator.paginate(UserName=user) for key in page["AccessKeyMetadata"]]
        except ClientError as error:
            if aws_error_code(error) == "NoSuchEntity":
                raise RemediationError(f"IAM user {user} does not exist") from error
            raise
        cutoff = datetime.now(UTC) - timedelta(days=self.params["max_age_days"])
        stale = [key for key in keys if key["Status"] == "Active" and key["CreateDate"] < cutoff]
        return Assessment(
            compliant=not stale,
            changes=[
                f"deactivate access key {key['AccessKeyId']} of user {user} (created {key['CreateDate']:%Y-%m-%d})"
                for key in stale
            ],
            pre_state={
                "UserName": user,
                "deactivated": [
                    {"AccessKeyId": key["AccessKeyId"], "Status": "Active", "CreateDate": key["CreateDate"].isoformat()}
                    for key in stale
                ],
            },
            context={"user": user, "access_key_ids": [key["AccessKeyId"] for key in stale]},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        iam = target.client("iam")
        for access_key_id in assessment.context["access_key_ids"]:
            iam.update_access_key(UserName=assessment.context["user"], AccessKeyId=access_key_id, Status="Inactive")
