"""Several password-policy rules on one account in one run: one read, one UpdateAccountPasswordPolicy, and still
one Result per finding with its own changes and its own field-level post_state (functions/engine/engine.py
_run_together, PasswordPolicy.apply_many). Through the engine on moto, counting calls with AssumedSessions.api_calls.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.rollback import rollback
from functions.engine.sessions import AssumedSessions
from functions.model import Stage
from tests.factories import ACCOUNT, make_finding

ENFORCE = {"mode": "enforce"}
RULES = ("IAM.11", "IAM.15", "IAM.16", "IAM.17")


def findings(rules: tuple[str, ...] = RULES) -> list[Any]:
    return [make_finding(rule, "AwsAccount", f"AWS::::Account:{ACCOUNT}", region="global") for rule in rules]


@pytest.fixture
def iam(moto_aws: None) -> Any:
    client = boto3.client("iam", region_name="us-east-1")
    client.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=True, HardExpiry=True)
    return client


def run(stage: Stage, found: list[Any], sessions: AssumedSessions | None = None) -> tuple[list[Any], AssumedSessions]:
    sessions = sessions or AssumedSessions()
    return Engine(config_from_dict(ENFORCE), sessions, stage=stage).run(found), sessions


def policy(iam: Any) -> dict[str, Any]:
    return dict(iam.get_account_password_policy()["PasswordPolicy"])


def test_n_rules_make_one_read_and_one_write_with_a_result_each(iam: Any) -> None:
    results, sessions = run("apply", findings())

    assert [r.outcome for r in results] == ["remediated"] * len(RULES)
    assert sessions.api_calls["iam.UpdateAccountPasswordPolicy"] == 1
    assert sessions.api_calls["iam.GetAccountPasswordPolicy"] == 2  # the assessment, and one shared verification
    by_rule = {r.rule_id: r for r in results}
    assert by_rule["IAM.11"].changes == ["set the password policy's RequireUppercaseCharacters to True (now False)"]
    assert by_rule["IAM.15"].changes == ["set the password policy's MinimumPasswordLength to 14 (now 8)"]
    # Each finding records only the fields its own rule set.
    assert by_rule["IAM.11"].post_state == {"RequireUppercaseCharacters": True}
    assert by_rule["IAM.15"].post_state == {"MinimumPasswordLength": 14}
    assert by_rule["IAM.16"].post_state == {"PasswordReusePrevention": 24}
    assert by_rule["IAM.17"].post_state == {"MaxPasswordAge": 90}
    now = policy(iam)
    assert (now["RequireUppercaseCharacters"], now["MinimumPasswordLength"], now["PasswordReusePrevention"],
            now["MaxPasswordAge"]) == (True, 14, 24, 90)
    assert now["RequireSymbols"] is True and now["HardExpiry"] is True  # unrelated settings kept

    again, sessions = run("apply", findings())
    assert [r.outcome for r in again] == ["noop"] * len(RULES)
    assert sessions.api_calls["iam.GetAccountPasswordPolicy"] == 1
    assert sessions.api_calls["iam.UpdateAccountPasswordPolicy"] == 0


def test_plan_reads_once_and_writes_nothing(iam: Any) -> None:
    results, sessions = run("plan", findings())

    assert [r.outcome for r in results] == ["planned"] * len(RULES)
    assert sessions.api_calls["iam.GetAccountPasswordPolicy"] == 1
    assert "iam.UpdateAccountPasswordPolicy" not in sessions.api_calls


def test_rollback_of_one_finding_puts_back_only_its_fields(iam: Any) -> None:
    original = policy(iam)
    results, _ = run("apply", findings())
    rows = [r.to_dict() for r in results]
    iam.update_account_password_policy(**{**_settable(policy(iam)), "PasswordReusePrevention": 10})  # a person

    only = next(row for row in rows if row["rule_id"] == "IAM.15")
    ((_, rolled),) = rollback(rows, AssumedSessions(), apply=True, finding_id=only["finding_id"])
    assert rolled.outcome == "restored" and rolled.fields == {"MinimumPasswordLength": 8}
    now = policy(iam)
    assert now["MinimumPasswordLength"] == 8
    assert (now["RequireUppercaseCharacters"], now["MaxPasswordAge"]) == (True, 90)  # the others' settings stay

    rolled_all = [r for _, r in rollback(rows, AssumedSessions(), apply=True)]
    by_rule = {r.rule_id: r for r in rolled_all}
    assert by_rule["IAM.16"].outcome == "skipped" and by_rule["IAM.16"].left  # changed since: left as is
    now = policy(iam)
    assert now["PasswordReusePrevention"] == 10
    assert {k: now.get(k) for k in ("RequireUppercaseCharacters", "MinimumPasswordLength", "MaxPasswordAge")} == \
        {k: original.get(k) for k in ("RequireUppercaseCharacters", "MinimumPasswordLength", "MaxPasswordAge")}


def test_another_writer_in_between_is_merged_not_clobbered(iam: Any) -> None:
    """Another invocation, working from the policy as it was before our write, writes its own rule's change right
    after ours (UpdateAccountPasswordPolicy replaces the whole policy): our verification finds our settings gone,
    and the second write merges onto the live policy, keeping the other writer's raised setting."""
    sessions = AssumedSessions()
    engine_iam = sessions.client(ACCOUNT, "us-east-1", "iam")  # the engine's own (clients are cached)
    stale = {**_settable(policy(iam)), "PasswordReusePrevention": 24}
    writes = {"n": 0}

    def other_writer(**_: Any) -> None:
        writes["n"] += 1
        if writes["n"] == 1:
            iam.update_account_password_policy(**stale)

    engine_iam.meta.events.register("after-call.iam.UpdateAccountPasswordPolicy", other_writer)
    results, _ = run("apply", findings(("IAM.11", "IAM.15")), sessions)

    assert [r.outcome for r in results] == ["remediated", "remediated"]
    assert sessions.api_calls["iam.UpdateAccountPasswordPolicy"] == 2
    now = policy(iam)
    assert (now["RequireUppercaseCharacters"], now["MinimumPasswordLength"], now["PasswordReusePrevention"]) == \
        (True, 14, 24)


def test_a_failed_combined_write_fails_each_finding_and_drops_the_read(iam: Any) -> None:
    sessions = AssumedSessions()
    engine_iam = sessions.client(ACCOUNT, "us-east-1", "iam")

    def refuse(**_: Any) -> None:
        raise RuntimeError("boom")

    engine_iam.meta.events.register("before-call.iam.UpdateAccountPasswordPolicy", refuse)
    engine = Engine(config_from_dict(ENFORCE), sessions, stage="apply")
    first = engine.run(findings(("IAM.11", "IAM.15")))
    assert [r.outcome for r in first] == ["failed", "failed"]
    engine_iam.meta.events.unregister("before-call.iam.UpdateAccountPasswordPolicy", refuse)
    later = engine.run(findings(("IAM.16",)))
    assert [r.outcome for r in later] == ["remediated"]
    assert sessions.api_calls["iam.GetAccountPasswordPolicy"] == 3  # assess, assess again (dropped), verify


def _settable(policy_now: dict[str, Any]) -> dict[str, Any]:
    from functions.remediators.iam import _settable as settable

    return settable(policy_now)
