"""IAM.8 against moto: IAM.22's remediator with Security Hub's 90-day threshold. A key unused for 100 days is
deactivated (not deleted) and read back; one unused for 60 days — past IAM.22's 45, within IAM.8's 90 — is kept;
a second assess is compliant; rollback reactivates."""

from __future__ import annotations

from functions.engine.catalog import CATALOG
from functions.model import Target
from functions.remediators.iam_more import UnusedCredentials90
from tests.unit.test_remediators_iam import create_key, global_target, iam, key_statuses, user_finding  # noqa: F401


def test_ninety_days_is_the_threshold(global_target: Target, iam) -> None:  # noqa: F811
    iam.create_user(UserName="quarterly")
    stale = create_key(iam, "quarterly", age_days=300, used_days_ago=100)
    recent = create_key(iam, "quarterly", age_days=300, used_days_ago=60)
    remediator, finding = UnusedCredentials90(), user_finding("IAM.8", "quarterly")

    before = remediator.assess(global_target, finding)
    assert [k["AccessKeyId"] for k in before.pre_state["deactivated"]] == [stale]
    remediator.apply(global_target, finding, before)

    assert key_statuses(iam, "quarterly") == {stale: "Inactive", recent: "Active"}
    assert remediator.assess(global_target, finding).compliant
    remediator.restore(global_target, finding, before.pre_state)
    assert key_statuses(iam, "quarterly") == {stale: "Active", recent: "Active"}


def test_declared_as_its_own_rule_with_boto3_only() -> None:
    entry = CATALOG["IAM.8"]
    assert entry.remediator is UnusedCredentials90 and entry.rule.disruption == "access"
    assert UnusedCredentials90.executors() == ("boto3",) and UnusedCredentials90.default_params["max_unused_days"] == 90
