"""CIS 1.13 (netskope:iam-one-active-access-key) against moto: notify-only; assess lists a user's active keys with
their dates and the exact command for each key to deactivate, reads compliant once one is left, changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from connectors.prowler import rule_for
from functions.engine.catalog import CATALOG
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.iam_access_keys import RULE_ID, OneActiveAccessKey, active_keys
from tests.factories import REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions

USER = "deploy-bot"


def key_finding(user: str = USER, **overrides: Any):
    return make_finding(RULE_ID, "AwsIamUser", user, region="global", source="prowler", **overrides)


@pytest.fixture
def iam(moto_aws: None) -> Any:
    client = boto3.client("iam", region_name=REGION)
    client.create_user(UserName=USER, Tags=[{"Key": "team", "Value": "ci"}])
    return client


def keys(iam: Any, count: int) -> list[str]:
    return [iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"] for _ in range(count)]


def statuses(iam: Any) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]}


def test_two_active_keys_are_listed_with_dates_and_the_exact_commands(
    iam: Any, target: Target, sessions: AssumedSessions
) -> None:
    first, second = keys(iam, 2)
    remediator = OneActiveAccessKey()

    before = remediator.assess(target, key_finding())

    assert not before.compliant
    assert before.tags == {"team": "ci"}  # the finding carries none: read live for the exclusion tag
    (change,) = before.changes
    today = datetime.now(UTC).date().isoformat()
    assert f"{first} (created {today}, never used)" in change and f"{second} (created " in change
    listed = [k["AccessKeyId"] for k in active_keys(iam, USER)]
    kept, other = listed
    assert f"(most recently used: {kept})" in change
    assert change.endswith(f"aws iam update-access-key --user-name {USER} --access-key-id {other} --status Inactive")
    with pytest.raises(RemediationError, match="needs a person"):
        remediator.apply(target, key_finding(), before)
    assert statuses(iam) == {first: "Active", second: "Active"}  # nothing was changed
    assert iam_actions(sessions.api_calls) <= set(remediator.permissions)

    iam.update_access_key(UserName=USER, AccessKeyId=other, Status="Inactive")  # what the person does
    after = remediator.assess(target, key_finding())
    assert after.compliant and after.pre_state == {"ActiveAccessKeys": [kept]}


def test_the_most_recently_used_key_is_the_one_kept() -> None:
    used = {"AccessKeyId": "AKIAUSED", "CreateDate": datetime(2026, 1, 1, tzinfo=UTC),
            "LastUsedDate": datetime(2026, 11, 30, tzinfo=UTC)}
    newer_unused = {"AccessKeyId": "AKIANEW", "CreateDate": datetime(2026, 12, 1, tzinfo=UTC)}

    class FakeIam:
        def get_paginator(self, _: str) -> Any:
            return type("P", (), {"paginate": lambda self, **_: [{"AccessKeyMetadata": [
                {**newer_unused, "Status": "Active"}, {**used, "Status": "Active"},
                {"AccessKeyId": "AKIAOFF", "Status": "Inactive"}]}]})()

        def get_access_key_last_used(self, AccessKeyId: str) -> dict[str, Any]:
            if AccessKeyId == "AKIAUSED":
                return {"AccessKeyLastUsed": {"LastUsedDate": used["LastUsedDate"], "ServiceName": "s3",
                                              "Region": "eu-west-1"}}
            return {"AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}

    listed = active_keys(FakeIam(), USER)

    assert [k["AccessKeyId"] for k in listed] == ["AKIAUSED", "AKIANEW"]  # the inactive key is not listed


def test_one_active_key_and_inactive_ones_are_compliant(iam: Any, target: Target) -> None:
    _, second = keys(iam, 2)
    iam.update_access_key(UserName=USER, AccessKeyId=second, Status="Inactive")

    assert OneActiveAccessKey().assess(target, key_finding()).compliant


def test_missing_user_is_a_clear_error(moto_aws: None, target: Target) -> None:
    with pytest.raises(RemediationError, match="does not exist"):
        OneActiveAccessKey().assess(target, key_finding("nobody"))


def test_through_the_engine_the_notification_lists_the_keys_read_live(iam: Any) -> None:
    first, second = keys(iam, 2)
    sessions = AssumedSessions()
    config = config_from_dict({"mode": "enforce", "rules": {RULE_ID: {"mode": "enforce"}}})

    (result,) = Engine(config, sessions, stage="apply").run([key_finding()])

    assert result.outcome == "notified"  # notify-only: even an explicit enforce stays notify
    assert f"user {USER} has 2 active access keys" in result.reason
    assert f"{first} (created " in result.reason and f"{second} (created " in result.reason
    assert f"aws iam update-access-key --user-name {USER} --access-key-id " in result.reason
    assert "KEY_ID --status Inactive" not in result.reason  # the real key id, not a placeholder
    assert "{" not in result.reason and result.changes
    assert iam_actions(sessions.api_calls) <= set(OneActiveAccessKey.read_permissions)  # reads only
    assert all(status == "Active" for status in statuses(iam).values())


def test_a_user_left_with_one_key_is_noop_and_not_notified(iam: Any) -> None:
    _, second = keys(iam, 2)
    iam.update_access_key(UserName=USER, AccessKeyId=second, Status="Inactive")
    sent: list[Any] = []

    (result,) = Engine(config_from_dict({}), AssumedSessions(), notifier=sent.append).run([key_finding()])

    assert (result.outcome, sent) == ("noop", [])


def test_catalog_and_prowler_mapping() -> None:
    entry = CATALOG[RULE_ID]
    assert (entry.rule.cis, entry.notify_only, entry.remediator) == (("1.13",), True, OneActiveAccessKey)
    assert rule_for("iam_user_two_active_access_key", None) == RULE_ID
