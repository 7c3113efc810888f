"""IAM remediators against moto: password policy (IAM.10-IAM.17), access keys (IAM.3), unused credentials (IAM.22),
user policies moved to a group (IAM.2). The account-level IAM rules are in test_remediators_iam_more.py.

Ages are set by editing moto's in-process backend (`iam_backends[account]["aws"].users[name]`), because moto stamps
"now" on everything it creates and has no API to change it: an access key's `create_date` and `last_used`, a
user's `password_last_used`, and the user's `create_date`, which moto also reports as the login profile's CreateDate.
moto's datetimes there are naive UTC.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.utils import utcnow
from moto.iam.models import AccessKeyLastUsed, iam_backends

from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator
from functions.remediators.iam import (
    REQUIREMENTS,
    AccessKeyRotation,
    PasswordPolicy,
    UnusedCredentials,
    UserPoliciesToGroup,
)
from tests.factories import ACCOUNT, make_finding

ROLE = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"


def record_calls(client) -> list[str]:
    """Operation names the client sends from now on."""
    calls: list[str] = []
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


@pytest.fixture
def iam(moto_aws):
    """A client of our own, for reads independent of the remediator's."""
    return boto3.client("iam", region_name="us-east-1")


@pytest.fixture
def global_target(sessions) -> Target:
    """IAM findings are global (Netskope sends region "global"; Security Hub the home region)."""
    return sessions.target(ACCOUNT, "global")


def engine_pre_state(assessment: Assessment) -> dict[str, Any]:
    """pre_state as the engine records it after apply (plus context["created"]), through JSON as a ledger keeps it."""
    recorded = dict(assessment.pre_state)
    if assessment.context.get("created"):
        recorded["created"] = assessment.context["created"]
    return json.loads(json.dumps(recorded))


def remediate(remediator: Remediator, target: Target, finding, read: Callable[[], Any]) -> Assessment:
    """The cycle every acting rule passes: assess finds work and writes nothing (a dry-run is just this), apply,
    then assess is compliant with nothing left to do, and stays so on a rerun (noop)."""
    before = read()
    assessment = remediator.assess(target, finding)
    assert not assessment.compliant
    assert assessment.changes
    assert read() == before
    remediator.apply(target, finding, assessment)
    verified = remediator.assess(target, finding)
    assert verified.compliant
    assert verified.changes == []
    assert remediator.assess(target, finding).compliant
    return assessment


def restore_twice(
    remediator: Remediator, target: Target, finding, assessment: Assessment, read: Callable[[], Any], original: Any
) -> list[str]:
    """restore() brings back the original state; a second restore is harmless and changes nothing."""
    pre_state = engine_pre_state(assessment)
    lines = remediator.restore(target, finding, pre_state)
    assert lines
    assert read() == original
    assert remediator.restore(target, finding, pre_state)
    assert read() == original
    return lines


def user_finding(rule_id: str, user: str, **overrides: Any):
    return make_finding(rule_id, "AwsIamUser", user, region="global", **overrides)


def moto_user(name: str):
    return iam_backends[ACCOUNT]["aws"].users[name]


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
    # IAM.7 asks for every character class and length >= 8: the current 8 passes, so it is left alone.
    "IAM.7": {
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "RequireSymbols": True,
        "RequireNumbers": True,
        "MinimumPasswordLength": 8,
    },
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
    assert {f"iam:{name}" for name in calls} <= set(PasswordPolicy.permissions)


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


def test_iam7_raises_only_what_fails_and_checks_no_reuse_or_expiry(global_target: Target, iam) -> None:
    """Security Hub's IAM.7 defaults: four character classes and 8 characters; its reuse and expiry parameters
    have no default, so neither is checked, set or lowered."""
    iam.update_account_password_policy(MinimumPasswordLength=6, RequireSymbols=True, PasswordReusePrevention=5,
                                       MaxPasswordAge=200, HardExpiry=True)
    remediator = PasswordPolicy()
    finding = policy_finding("IAM.7")

    assessment = remediate(remediator, global_target, finding, lambda: current_policy(iam))

    assert sorted(assessment.changes) == [
        "set the password policy's MinimumPasswordLength to 14 (now 6)",
        "set the password policy's RequireLowercaseCharacters to True (now False)",
        "set the password policy's RequireNumbers to True (now False)",
        "set the password policy's RequireUppercaseCharacters to True (now False)",
    ]
    policy = current_policy(iam)
    assert (policy["PasswordReusePrevention"], policy["MaxPasswordAge"], policy["HardExpiry"]) == (5, 200, True)
    assert policy["RequireSymbols"] is True


def test_iam7_passes_at_eight_characters_without_reuse_or_expiry(global_target: Target, iam) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=True, RequireNumbers=True,
                                       RequireUppercaseCharacters=True, RequireLowercaseCharacters=True)

    assert PasswordPolicy().assess(global_target, policy_finding("IAM.7")).compliant


def test_iam16_leaves_minimum_length_alone(global_target: Target, iam) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=3)
    remediator = PasswordPolicy()
    finding = policy_finding("IAM.16")

    assessment = remediator.assess(global_target, finding)
    assert assessment.changes == ["set the password policy's PasswordReusePrevention to 24 (now 3)"]
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
    assert assessment.changes == ["set the password policy's MaxPasswordAge to 90 (now 180)"]
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
    with pytest.raises(RemediationError, match=r"IAM\.8"):
        PasswordPolicy().assess(global_target, policy_finding("IAM.8"))


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
    assert [rule.rule_id for rule in PasswordPolicy.rules] == list(REQUIREMENTS)
    cis = {rule.rule_id: rule.cis for rule in PasswordPolicy.rules if rule.cis}
    assert cis == {"IAM.15": ("1.8",), "IAM.16": ("1.9",)}
    assert PasswordPolicy.resource_types == ("AwsAccount",)
    assert PasswordPolicy.reversible


@pytest.mark.parametrize("rule_id", ["IAM.15", "IAM.10", "IAM.17"])
def test_password_policy_restore_puts_the_previous_policy_back(global_target: Target, iam, rule_id: str) -> None:
    iam.update_account_password_policy(MinimumPasswordLength=9, RequireSymbols=True, MaxPasswordAge=120)
    original = current_policy(iam)
    remediator = PasswordPolicy()
    finding = policy_finding(rule_id)

    assessment = remediate(remediator, global_target, finding, lambda: current_policy(iam))
    assert current_policy(iam) != original

    lines = restore_twice(remediator, global_target, finding, assessment, lambda: current_policy(iam), original)
    assert "MinimumPasswordLength=9" in lines[0]


def test_password_policy_restore_deletes_the_policy_it_created(global_target: Target, iam) -> None:
    remediator = PasswordPolicy()
    finding = policy_finding("IAM.16")

    assessment = remediate(remediator, global_target, finding, lambda: current_policy(iam))
    assert assessment.pre_state == {"PasswordPolicy": None}

    lines = restore_twice(remediator, global_target, finding, assessment, lambda: current_policy(iam), None)
    assert "AWS default policy" in lines[0]


# -- access key rotation -----------------------------------------------------------------------------------------


def key_finding(user: str, **overrides: Any):
    return user_finding("IAM.3", user, **overrides)


def create_key(iam, user: str, age_days: int = 0, status: str = "Active", used_days_ago: int | None = None) -> str:
    """A key created age_days ago, last used used_days_ago (None: never), set in moto's backend."""
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    if status != "Active":
        iam.update_access_key(UserName=user, AccessKeyId=key_id, Status=status)
    (key,) = [k for k in moto_user(user).access_keys if k.access_key_id == key_id]
    key.create_date -= timedelta(days=age_days)
    if used_days_ago is not None:
        key.last_used = AccessKeyLastUsed(utcnow() - timedelta(days=used_days_ago), "s3", "us-east-1")
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
    assert before.tags == {}  # the finding carries none: the user's own (none) were read

    remediator.apply(global_target, finding, before)

    # Deactivated, not deleted; the young key is untouched.
    assert key_statuses(iam, "alice") == {old: "Inactive", young: "Active"}
    after = remediator.assess(global_target, finding)
    assert after.compliant
    assert after.changes == []
    assert {f"iam:{name}" for name in calls} <= set(AccessKeyRotation.permissions)


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
    assert calls == ["ListAccessKeys", "ListUserTags"]
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


def test_access_key_restore_reactivates_what_it_deactivated(global_target: Target, iam) -> None:
    iam.create_user(UserName="grace")
    old = create_key(iam, "grace", age_days=120)
    young = create_key(iam, "grace", age_days=10)
    original = key_statuses(iam, "grace")
    remediator = AccessKeyRotation()
    finding = key_finding("grace")

    assessment = remediate(remediator, global_target, finding, lambda: key_statuses(iam, "grace"))
    assert key_statuses(iam, "grace") == {old: "Inactive", young: "Active"}

    lines = restore_twice(remediator, global_target, finding, assessment, lambda: key_statuses(iam, "grace"), original)
    assert lines == [f"reactivate access key {old} of user grace: done"]


# -- unused credentials (IAM.22) ---------------------------------------------------------------------------------


def unused_finding(user: str, **overrides: Any):
    return user_finding("IAM.22", user, **overrides)


def give_password(iam, user: str, created_days_ago: int = 0, used_days_ago: int | None = None) -> None:
    """A console password whose login profile is created_days_ago old (moto reports the user's CreateDate for it)."""
    iam.create_login_profile(UserName=user, Password="Correct-Horse-9")
    moto_user(user).create_date -= timedelta(days=created_days_ago)
    if used_days_ago is not None:
        moto_user(user).password_last_used = utcnow() - timedelta(days=used_days_ago)


def has_password(iam, user: str) -> bool:
    try:
        iam.get_login_profile(UserName=user)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchEntity"
        return False
    return True


def credentials(iam, user: str) -> tuple[dict[str, str], bool]:
    """An independent read of what IAM.22 changes: key statuses, and whether a console password exists."""
    return key_statuses(iam, user), has_password(iam, user)


def test_unused_key_is_deactivated_and_used_one_kept(global_target: Target, iam) -> None:
    iam.create_user(UserName="henry")
    used_long_ago = create_key(iam, "henry", age_days=200, used_days_ago=60)
    used_lately = create_key(iam, "henry", age_days=200, used_days_ago=5)
    remediator = UnusedCredentials()
    finding = unused_finding("henry")
    calls = record_calls(global_target.client("iam"))

    assessment = remediate(remediator, global_target, finding, lambda: credentials(iam, "henry"))

    assert key_statuses(iam, "henry") == {used_long_ago: "Inactive", used_lately: "Active"}
    assert [key["AccessKeyId"] for key in assessment.pre_state["deactivated"]] == [used_long_ago]
    assert assessment.changes[0].startswith(f"deactivate access key {used_long_ago} of user henry (last used ")
    assert assessment.pre_state["removed_login_profile"] is None
    assert {f"iam:{name}" for name in calls} <= set(UnusedCredentials.permissions)


@pytest.mark.parametrize(
    ("age_days", "used_days_ago", "status", "unused"),
    [
        (50, None, "Active", True),  # never used, created before the cutoff
        (10, None, "Active", False),  # never used, but new
        (200, 44, "Active", False),  # used within the 45 days
        (300, 100, "Inactive", False),  # unused, but already inactive
    ],
    ids=["never-used-old", "never-used-new", "used-lately", "inactive"],
)
def test_which_keys_count_as_unused(global_target: Target, iam, age_days, used_days_ago, status, unused) -> None:
    iam.create_user(UserName="hugo")
    key = create_key(iam, "hugo", age_days=age_days, status=status, used_days_ago=used_days_ago)

    assessment = UnusedCredentials().assess(global_target, unused_finding("hugo"))

    assert [k["AccessKeyId"] for k in assessment.pre_state["deactivated"]] == ([key] if unused else [])
    assert assessment.compliant is not unused
    if used_days_ago is None and unused:
        assert "(never used, created " in assessment.changes[0]


def test_unused_credentials_restore_reactivates_the_keys(global_target: Target, iam) -> None:
    iam.create_user(UserName="iris")
    stale = create_key(iam, "iris", age_days=100)
    original = credentials(iam, "iris")
    remediator = UnusedCredentials()
    finding = unused_finding("iris")

    assessment = remediate(remediator, global_target, finding, lambda: credentials(iam, "iris"))
    assert key_statuses(iam, "iris") == {stale: "Inactive"}

    restore_twice(remediator, global_target, finding, assessment, lambda: credentials(iam, "iris"), original)


def test_unused_password_is_kept_without_the_opt_in(global_target: Target, iam) -> None:
    iam.create_user(UserName="jack")
    give_password(iam, "jack", created_days_ago=200)
    stale = create_key(iam, "jack", age_days=100)
    remediator = UnusedCredentials()
    finding = unused_finding("jack")

    assessment = remediator.assess(global_target, finding)
    assert not assessment.compliant
    assert "remove_unused_passwords" in assessment.changes[-1]
    assert assessment.pre_state["removed_login_profile"] is None

    with pytest.raises(RemediationError, match=r"kept.*remove_unused_passwords.*1 unused access key"):
        remediator.apply(global_target, finding, assessment)

    assert credentials(iam, "jack") == ({stale: "Inactive"}, True)
    assert not remediator.assess(global_target, finding).compliant


def test_unused_password_is_removed_with_the_opt_in(global_target: Target, iam) -> None:
    iam.create_user(UserName="kate")
    give_password(iam, "kate", created_days_ago=300, used_days_ago=90)
    remediator = UnusedCredentials({"remove_unused_passwords": True})
    finding = unused_finding("kate")

    assessment = remediate(remediator, global_target, finding, lambda: credentials(iam, "kate"))

    assert not has_password(iam, "kate")
    assert "irreversible" in assessment.changes[0]
    assert assessment.pre_state["removed_login_profile"]["PasswordLastUsed"]
    # The keys part is reversible; a removed password is not, and restore says how to give the user a new one.
    lines = UnusedCredentials().restore(global_target, finding, engine_pre_state(assessment))
    assert "cannot be restored" in lines[-1]
    assert "aws iam create-login-profile --user-name kate" in lines[-1]
    assert not has_password(iam, "kate")


@pytest.mark.parametrize(
    ("created_days_ago", "used_days_ago"),
    [(200, 3), (2, None), (2, 100)],  # used lately; new and never used; re-created after its last use
    ids=["used-lately", "new-never-used", "recreated"],
)
def test_recent_password_is_compliant(global_target: Target, iam, created_days_ago, used_days_ago) -> None:
    iam.create_user(UserName="liam")
    give_password(iam, "liam", created_days_ago=created_days_ago, used_days_ago=used_days_ago)

    assert UnusedCredentials({"remove_unused_passwords": True}).assess(global_target, unused_finding("liam")).compliant


def test_unused_credentials_assess_is_read_only(global_target: Target, iam) -> None:
    iam.create_user(UserName="mia")
    give_password(iam, "mia", created_days_ago=100)
    create_key(iam, "mia", age_days=100)
    before = credentials(iam, "mia")
    calls = record_calls(global_target.client("iam"))

    UnusedCredentials({"remove_unused_passwords": True}).assess(global_target, unused_finding("mia"))

    assert set(calls) == {"ListAccessKeys", "GetAccessKeyLastUsed", "GetLoginProfile", "GetUser", "ListUserTags"}
    assert credentials(iam, "mia") == before


def test_max_unused_days_is_configurable(global_target: Target, iam) -> None:
    iam.create_user(UserName="noah")
    create_key(iam, "noah", age_days=40)

    assert UnusedCredentials().assess(global_target, unused_finding("noah")).compliant
    assert not UnusedCredentials({"max_unused_days": 30}).assess(global_target, unused_finding("noah")).compliant


@pytest.mark.parametrize(
    "params", [{"max_unused_days": 0}, {"max_unused_days": "45"}, {"remove_unused_passwords": "yes"}]
)
def test_unused_credentials_params_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="UnusedCredentials"):
        UnusedCredentials(params)


def test_unused_credentials_of_a_missing_user(global_target: Target, iam) -> None:
    with pytest.raises(RemediationError, match="nobody does not exist"):
        UnusedCredentials().assess(global_target, unused_finding("nobody"))


def test_unused_credentials_runbook_takes_the_user_id_from_security_hub() -> None:
    runbook = UnusedCredentials.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-RevokeUnusedIAMUserCredentials"
    raw = {"Resources": [{"Type": "AwsIamUser", "Details": {"AwsIamUser": {"UserId": "AIDAEXAMPLE"}}}]}

    assert runbook.parameters(unused_finding("olga", raw=raw), ROLE) == {
        "AutomationAssumeRole": [ROLE],
        "IAMResourceId": ["AIDAEXAMPLE"],
        "MaxCredentialUsageAge": ["45"],
    }
    with pytest.raises(RemediationError, match="use executor boto3"):
        runbook.parameters(unused_finding("olga", source="netskope"), ROLE)


def test_unused_credentials_declarations() -> None:
    (rule,) = UnusedCredentials.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("IAM.22", ("1.12",), True)
    assert UnusedCredentials.resource_types == ("AwsIamUser",)
    assert UnusedCredentials.default_params == {"max_unused_days": 45, "remove_unused_passwords": False}
    assert "iam:DeleteAccessKey" not in UnusedCredentials.permissions  # keys are deactivated, never deleted


# -- policies attached to users (IAM.2) --------------------------------------------------------------------------

READ_BUCKETS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}]}
READ_LOGS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:Get*", "Resource": "*"}]}


def managed_policy(iam, name: str, document: dict = READ_BUCKETS) -> str:
    return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]


def user_with_policies(iam, user: str) -> tuple[str, str]:
    """A user with two managed policies attached and one inline policy."""
    iam.create_user(UserName=user)
    arns = managed_policy(iam, f"{user}-buckets"), managed_policy(iam, f"{user}-logs", READ_LOGS)
    for arn in arns:
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
    iam.put_user_policy(UserName=user, PolicyName="inline-logs", PolicyDocument=json.dumps(READ_LOGS))
    return arns


def policies_of(iam, kind: str, name: str) -> tuple[set[str], dict[str, Any]] | None:
    """An independent read: the managed policy ARNs and inline documents of a user or group (None: no such group)."""
    key = {"user": "UserName", "group": "GroupName"}[kind]
    try:
        attached = getattr(iam, f"list_attached_{kind}_policies")(**{key: name})["AttachedPolicies"]
        names = getattr(iam, f"list_{kind}_policies")(**{key: name})["PolicyNames"]
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchEntity"
        return None
    get_inline = getattr(iam, f"get_{kind}_policy")
    return {p["PolicyArn"] for p in attached}, {
        n: get_inline(**{key: name}, PolicyName=n)["PolicyDocument"] for n in names
    }


def members_of(iam, group: str) -> set[str] | None:
    try:
        return {user["UserName"] for user in iam.get_group(GroupName=group)["Users"]}
    except ClientError:
        return None


def permissions_state(iam, user: str, group: str):
    return policies_of(iam, "user", user), policies_of(iam, "group", group), members_of(iam, group)


def test_user_policies_move_to_a_new_group(global_target: Target, iam) -> None:
    arns = user_with_policies(iam, "paul")
    original = permissions_state(iam, "paul", "cspm-user-paul")
    assert original[1] is None
    remediator = UserPoliciesToGroup()
    finding = user_finding("IAM.2", f"arn:aws:iam::{ACCOUNT}:user/paul")

    assessment = remediate(remediator, global_target, finding, lambda: permissions_state(iam, "paul", "cspm-user-paul"))

    assert policies_of(iam, "user", "paul") == (set(), {})
    assert policies_of(iam, "group", "cspm-user-paul") == (set(arns), {"inline-logs": READ_LOGS})
    assert members_of(iam, "cspm-user-paul") == {"paul"}
    assert assessment.context["created"] == {"GroupName": "cspm-user-paul"}
    assert assessment.pre_state["InlinePolicies"] == {"inline-logs": READ_LOGS}
    assert assessment.changes[0] == "create group cspm-user-paul"

    restore_twice(
        remediator,
        global_target,
        finding,
        assessment,
        lambda: permissions_state(iam, "paul", "cspm-user-paul"),
        original,
    )


def test_the_user_keeps_every_permission_while_moving(global_target: Target, iam) -> None:
    """The group grants everything and the user is in it before the first policy leaves the user; restore gives
    everything back to the user before the group loses anything."""
    user_with_policies(iam, "quinn")
    remediator = UserPoliciesToGroup()
    finding = user_finding("IAM.2", "quinn")
    assessment = remediator.assess(global_target, finding)
    calls = record_calls(global_target.client("iam"))

    remediator.apply(global_target, finding, assessment)
    remediator.restore(global_target, finding, engine_pre_state(assessment))

    grants = ("AttachGroupPolicy", "PutGroupPolicy", "AddUserToGroup", "AttachUserPolicy", "PutUserPolicy")
    removals = ("DetachUserPolicy", "DeleteUserPolicy", "RemoveUserFromGroup", "DeleteGroupPolicy", "DetachGroupPolicy")
    apply_calls, restore_calls = (
        calls[: calls.index("DeleteUserPolicy") + 1],
        calls[calls.index("DeleteUserPolicy") + 1 :],
    )
    for phase in (apply_calls, restore_calls):
        last_grant = max(i for i, call in enumerate(phase) if call in grants)
        first_removal = min(i for i, call in enumerate(phase) if call in removals)
        assert last_grant < first_removal, phase


def test_an_existing_group_is_reused_and_kept_on_restore(global_target: Target, iam) -> None:
    buckets, logs = user_with_policies(iam, "rosa")
    iam.create_group(GroupName="cspm-user-rosa")
    iam.attach_group_policy(GroupName="cspm-user-rosa", PolicyArn=buckets)
    iam.put_group_policy(GroupName="cspm-user-rosa", PolicyName="inline-logs", PolicyDocument=json.dumps(READ_LOGS))
    original = permissions_state(iam, "rosa", "cspm-user-rosa")
    remediator = UserPoliciesToGroup()
    finding = user_finding("IAM.2", "rosa")

    assessment = remediate(remediator, global_target, finding, lambda: permissions_state(iam, "rosa", "cspm-user-rosa"))

    assert "create group cspm-user-rosa" not in assessment.changes
    assert assessment.pre_state["GroupAttached"] == [logs]
    assert assessment.pre_state["GroupInline"] == []
    assert "created" not in assessment.context
    restore_twice(
        remediator,
        global_target,
        finding,
        assessment,
        lambda: permissions_state(iam, "rosa", "cspm-user-rosa"),
        original,
    )


def test_a_group_with_a_different_inline_policy_of_the_same_name_is_refused(global_target: Target, iam) -> None:
    user_with_policies(iam, "sam")
    iam.create_group(GroupName="cspm-user-sam")
    iam.put_group_policy(GroupName="cspm-user-sam", PolicyName="inline-logs", PolicyDocument=json.dumps(READ_BUCKETS))

    with pytest.raises(RemediationError, match="inline-logs"):
        UserPoliciesToGroup().assess(global_target, user_finding("IAM.2", "sam"))


def test_user_without_policies_is_compliant(global_target: Target, iam) -> None:
    iam.create_user(UserName="tina")
    calls = record_calls(global_target.client("iam"))

    assert UserPoliciesToGroup().assess(global_target, user_finding("IAM.2", "tina")).compliant
    assert calls == ["ListAttachedUserPolicies", "ListUserPolicies", "ListUserTags"]


def test_user_policies_assess_is_read_only(global_target: Target, iam) -> None:
    user_with_policies(iam, "uma")
    before = permissions_state(iam, "uma", "cspm-user-uma")
    calls = record_calls(global_target.client("iam"))

    UserPoliciesToGroup().assess(global_target, user_finding("IAM.2", "uma"))

    assert all(call.startswith(("List", "Get")) for call in calls)
    assert permissions_state(iam, "uma", "cspm-user-uma") == before


def test_group_name_is_configurable(global_target: Target, iam) -> None:
    user_with_policies(iam, "vera")
    remediator = UserPoliciesToGroup({"group_name": "team-{user}"})

    remediator.apply(
        global_target, user_finding("IAM.2", "vera"), remediator.assess(global_target, user_finding("IAM.2", "vera"))
    )

    assert members_of(iam, "team-vera") == {"vera"}


def test_bad_group_names_are_refused(global_target: Target, iam) -> None:
    with pytest.raises(ValueError, match="group_name"):
        UserPoliciesToGroup({"group_name": "{team}-{user}"})
    user_with_policies(iam, "walt")
    with pytest.raises(RemediationError, match="not a valid IAM group name"):
        UserPoliciesToGroup({"group_name": "my group {user}"}).assess(global_target, user_finding("IAM.2", "walt"))


def test_user_policies_of_a_missing_user(global_target: Target, iam) -> None:
    with pytest.raises(RemediationError, match="nobody does not exist"):
        UserPoliciesToGroup().assess(global_target, user_finding("IAM.2", "nobody"))


def test_user_policies_declarations() -> None:
    (rule,) = UserPoliciesToGroup.rules
    assert (rule.rule_id, rule.cis, rule.disruptive, rule.default_mode) == ("IAM.2", ("1.15",), False, "dry-run")
    assert UserPoliciesToGroup.resource_types == ("AwsIamUser",)
    assert UserPoliciesToGroup.reversible
    assert UserPoliciesToGroup.runbook is None
