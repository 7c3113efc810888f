"""IAM remediators against moto: the password policy (IAM.10 to IAM.17) and access key rotation (IAM.3).

Access keys are aged by editing moto's in-process backend (`iam_backends[account]["aws"].users[name].access_keys`,
attribute `create_date`, a naive UTC datetime): moto stamps every new key with "now" and has no API to change it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.iam.models import iam_backends

from functions.remediators.base import RemediationError
from functions.remediators.iam import REQUIREMENTS, AccessKeyRotation, PasswordPolicy
from functions.sessions import Target
from tests.factories import ACCOUNT, make_finding

ROLE = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"


def record_calls(client) -> list[str]:
    """Operation names the client sends from now on."""
    calls: list[str] = []
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


@pytest.fixture
def iam(moto_aws):
    return boto3.client("iam", region_name="us-east-1")


@pytest.fixture
def global_target(sessions) -> Target:
    """IAM findings are global (Netskope sends region "global"; Security Hub the home region)."""
    return sessions.target(ACCOUNT, "global")


# -- password policy ---------------------------------------------------------------------------------------------


def policy_finding(rule_id: str, **overrides: Any):
    return make_finding(rule_id, "AwsAccount", f"AWS::::Account:{ACCOUNT}", region="global", **overrides)


def current_policy(iam) -> dict[str, Any] | None:
    """An independent read of the account password policy, not through the remediator."""
    try:
        return iam.get_account_password_policy()["PasswordPolicy"]
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchEntity"
        return None


# After remediating each rule from a policy that only sets an 8-character minimum: the settings that rule checks.
EXPECTED_AFTER = {
    # IAM.10 asks for length >= 7: the current 8 passes, so it is left alone.
    "IAM.10": {
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "RequireNumbers": True,
        "MinimumPasswordLength": 8,
        "PasswordReusePrevention": 24,
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


@pytest.mark.parametrize("rule_id", sorted(EXPECTED_AFTER))
def test_weak_policy_is_remediated_and_verified(global_target: Target, iam, rule_id: str) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=8)
    weak = current_policy(iam)
    remediator = PasswordPolicy()
    finding = policy_finding(rule_id)
    calls = record_calls(global_target.client("iam"))

    before = remediator.assess(global_target, finding)
    assert not before.compliant
    assert before.changes
    assert before.pre_state == {"PasswordPolicy": weak}

    remediator.apply(global_target, finding, before)

    after_policy = current_policy(iam)
    expected = EXPECTED_AFTER[rule_id]
    assert {name: after_policy.get(name) for name in expected} == expected
    # Every setting the rule does not check is exactly as before.
    untouched = {name for name in weak if name not in expected and name != "ExpirePasswords"}
    assert {name: after_policy.get(name) for name in untouched} == {name: weak.get(name) for name in untouched}
    after = remediator.assess(global_target, finding)
    assert after.compliant
    assert after.changes == []
    assert {f"iam:{name}" for name in calls} == set(PasswordPolicy.permissions)


def test_stronger_and_unrelated_settings_survive(global_target: Target, iam) -> None:
    iam.update_account_password_policy(
        MinimumPasswordLength=20,
        RequireSymbols=True,
        AllowUsersToChangePassword=True,
        HardExpiry=True,
        MaxPasswordAge=30,
        PasswordReusePrevention=5,
    )
    remediator = PasswordPolicy()
    finding = policy_finding("IAM.16")

    remediator.apply(global_target, finding, remediator.assess(global_target, finding))

    policy = current_policy(iam)
    assert policy["PasswordReusePrevention"] == 24
    assert policy["MinimumPasswordLength"] == 20
    assert policy["MaxPasswordAge"] == 30
    assert policy["HardExpiry"] is True
    assert policy["AllowUsersToChangePassword"] is True
    assert policy["RequireSymbols"] is True
    assert policy["RequireUppercaseCharacters"] is False


def test_iam16_leaves_minimum_length_alone(global_target: Target, iam) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=3)
    remediator = PasswordPolicy()
    finding = policy_finding("IAM.16")

    assessment = remediator.assess(global_target, finding)
    assert assessment.changes == ["PasswordReusePrevention: 3 -> 24"]
    remediator.apply(global_target, finding, assessment)

    policy = current_policy(iam)
    assert (policy["MinimumPasswordLength"], policy["PasswordReusePrevention"]) == (8, 24)


def test_longer_minimum_length_is_already_compliant(global_target: Target, iam) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=20)

    assessment = PasswordPolicy().assess(global_target, policy_finding("IAM.15"))

    assert assessment.compliant
    assert assessment.changes == []


def test_shorter_expiry_is_kept_and_longer_is_lowered(global_target: Target, iam) -> None:
    remediator = PasswordPolicy()
    finding = policy_finding("IAM.17")
    iam.update_account_password_policy(MaxPasswordAge=30)
    assert remediator.assess(global_target, finding).compliant

    iam.update_account_password_policy(MaxPasswordAge=180)
    assessment = remediator.assess(global_target, finding)
    assert assessment.changes == ["MaxPasswordAge: 180 -> 90"]
    remediator.apply(global_target, finding, assessment)
    assert current_policy(iam)["MaxPasswordAge"] == 90


def test_no_policy_gets_a_full_first_policy(global_target: Target, iam) -> None:
    """Without a custom policy AWS applies its default (8 characters, 3 of 4 character classes): the first custom
    policy must not accept weaker passwords, so it gets every character class and the CIS length and reuse."""
    remediator = PasswordPolicy()
    finding = policy_finding("IAM.16")
    assert current_policy(iam) is None

    before = remediator.assess(global_target, finding)
    assert not before.compliant
    assert before.pre_state == {"PasswordPolicy": None}
    assert before.changes[0].startswith("create a custom password policy")

    remediator.apply(global_target, finding, before)

    policy = current_policy(iam)
    assert policy["PasswordReusePrevention"] == 24
    assert policy["MinimumPasswordLength"] == 14
    assert all(
        policy[name]
        for name in ("RequireUppercaseCharacters", "RequireLowercaseCharacters", "RequireSymbols", "RequireNumbers")
    )
    assert not policy.get("MaxPasswordAge")  # expiry is only set for the rules that check it
    assert remediator.assess(global_target, finding).compliant


def test_request_uses_request_names_only(global_target: Target, iam) -> None:
    """ExpirePasswords is response-only, and an unset MaxPasswordAge (0) is below the API minimum of 1."""
    iam.update_account_password_policy(MinimumPasswordLength=8, RequireNumbers=True)

    request = PasswordPolicy().assess(global_target, policy_finding("IAM.11")).context["request"]

    assert "ExpirePasswords" not in request
    assert "MaxPasswordAge" not in request
    assert request["RequireNumbers"] is True
    assert request["RequireUppercaseCharacters"] is True


def test_policy_assess_is_read_only(global_target: Target, iam) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=8)
    before = current_policy(iam)
    calls = record_calls(global_target.client("iam"))

    assessment = PasswordPolicy().assess(global_target, policy_finding("IAM.15"))

    assert not assessment.compliant
    assert calls == ["GetAccountPasswordPolicy"]
    assert current_policy(iam) == before


def test_configured_targets_are_used_but_never_below_the_control(global_target: Target, iam) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=8)
    remediator = PasswordPolicy({"min_length": 16})
    finding = policy_finding("IAM.15")

    remediator.apply(global_target, finding, remediator.assess(global_target, finding))

    assert current_policy(iam)["MinimumPasswordLength"] == 16


@pytest.mark.parametrize("params", [{"reuse_prevention": 30}, {"min_length": 5}, {"max_age_days": "90"}])
def test_out_of_range_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        PasswordPolicy(params)


def test_unknown_rule_is_a_remediation_error(global_target: Target, iam) -> None:
    with pytest.raises(RemediationError, match=r"IAM\.7"):
        PasswordPolicy().assess(global_target, policy_finding("IAM.7"))


def test_password_policy_runbook_parameters() -> None:
    runbook = PasswordPolicy.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-SetIAMPasswordPolicy"
    baseline = {
        "AutomationAssumeRole": [ROLE],
        "MinimumPasswordLength": ["14"],
        "PasswordReusePrevention": ["24"],
        "RequireUppercaseCharacters": ["true"],
        "RequireLowercaseCharacters": ["true"],
        "RequireSymbols": ["true"],
        "RequireNumbers": ["true"],
        "AllowUsersToChangePassword": ["true"],
    }
    assert runbook.parameters(policy_finding("IAM.15"), ROLE) == baseline
    assert runbook.parameters(policy_finding("IAM.17"), ROLE) == {**baseline, "MaxPasswordAge": ["90"]}


def test_password_policy_declarations() -> None:
    assert [rule.rule_id for rule in PasswordPolicy.rules] == sorted(REQUIREMENTS)
    cis = {rule.rule_id: rule.cis for rule in PasswordPolicy.rules if rule.cis}
    assert cis == {"IAM.15": ("1.8",), "IAM.16": ("1.9",)}
    assert PasswordPolicy.resource_types == ("AwsAccount",)
    assert PasswordPolicy.reversible


# -- access key rotation -----------------------------------------------------------------------------------------


def key_finding(user: str, **overrides: Any):
    return make_finding("IAM.3", "AwsIamUser", user, region="global", **overrides)


def create_key(iam, user: str, age_days: int = 0, status: str = "Active") -> str:
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    if status != "Active":
        iam.update_access_key(UserName=user, AccessKeyId=key_id, Status=status)
    if age_days:
        (key,) = [k for k in iam_backends[ACCOUNT]["aws"].users[user].access_keys if k.access_key_id == key_id]
        key.create_date -= timedelta(days=age_days)
    return key_id


def key_statuses(iam, user: str) -> dict[str, str]:
    """An independent read of the user's keys: id → status."""
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def test_old_active_key_is_deactivated_young_key_left_alone(global_target: Target, iam) -> None:
    iam.create_user(UserName="alice")
    old = create_key(iam, "alice", age_days=120)
    young = create_key(iam, "alice", age_days=10)
    remediator = AccessKeyRotation()
    finding = key_finding("alice")
    calls = record_calls(global_target.client("iam"))

    before = remediator.assess(global_target, finding)
    assert not before.compliant
    assert key_statuses(iam, "alice") == {old: "Active", young: "Active"}
    assert [k["AccessKeyId"] for k in before.pre_state["deactivated"]] == [old]
    assert before.pre_state["UserName"] == "alice"
    assert len(before.changes) == 1 and old in before.changes[0]
    assert before.tags is None

    remediator.apply(global_target, finding, before)

    # Deactivated, not deleted; the young key is untouched.
    assert key_statuses(iam, "alice") == {old: "Inactive", young: "Active"}
    after = remediator.assess(global_target, finding)
    assert after.compliant
    assert after.changes == []
    assert {f"iam:{name}" for name in calls} == set(AccessKeyRotation.permissions)


def test_old_inactive_and_young_keys_are_compliant(global_target: Target, iam) -> None:
    iam.create_user(UserName="bob")
    create_key(iam, "bob", age_days=400, status="Inactive")
    create_key(iam, "bob", age_days=30)

    assessment = AccessKeyRotation().assess(global_target, key_finding("bob"))

    assert assessment.compliant
    assert assessment.changes == []


def test_user_without_keys_is_compliant(global_target: Target, iam) -> None:
    iam.create_user(UserName="carol")

    assert AccessKeyRotation().assess(global_target, key_finding("carol")).compliant


def test_key_assess_is_read_only(global_target: Target, iam) -> None:
    iam.create_user(UserName="dave")
    old = create_key(iam, "dave", age_days=100)
    calls = record_calls(global_target.client("iam"))

    assessment = AccessKeyRotation().assess(global_target, key_finding("dave"))

    assert not assessment.compliant
    assert calls == ["ListAccessKeys"]
    assert key_statuses(iam, "dave") == {old: "Active"}


def test_max_age_is_configurable(global_target: Target, iam) -> None:
    iam.create_user(UserName="erin")
    create_key(iam, "erin", age_days=45)

    assert AccessKeyRotation().assess(global_target, key_finding("erin")).compliant
    assert not AccessKeyRotation({"max_age_days": 30}).assess(global_target, key_finding("erin")).compliant


def test_user_arn_and_access_key_resource_type(global_target: Target, iam) -> None:
    iam.create_user(UserName="frank", Path="/team/")
    old = create_key(iam, "frank", age_days=200)
    finding = make_finding("IAM.3", "AwsIamAccessKey", f"arn:aws:iam::{ACCOUNT}:user/team/frank", region="global")
    remediator = AccessKeyRotation()

    remediator.apply(global_target, finding, remediator.assess(global_target, finding))

    assert key_statuses(iam, "frank") == {old: "Inactive"}


def test_missing_user_is_a_remediation_error(global_target: Target, iam) -> None:
    with pytest.raises(RemediationError, match="nobody does not exist"):
        AccessKeyRotation().assess(global_target, key_finding("nobody"))


def test_access_key_declarations() -> None:
    assert [(rule.rule_id, rule.cis) for rule in AccessKeyRotation.rules] == [("IAM.3", ("1.14",))]
    assert AccessKeyRotation.resource_types == ("AwsIamUser", "AwsIamAccessKey")
    assert AccessKeyRotation.runbook is None
    assert AccessKeyRotation.reversible
