"""The bench's budget checks (bench/budgets.py) on made-up numbers: pure functions, no AWS, no moto."""

from __future__ import annotations

import pytest

from bench import budgets
from bench.budgets import RuleEconomy


@pytest.mark.parametrize(
    ("operation", "read"),
    [
        ("ec2.DescribeSecurityGroups", True),
        ("iam.GetAccountPasswordPolicy", True),
        ("iam.ListAccessKeys", True),
        ("ec2.RevokeSecurityGroupIngress", False),
        ("s3.PutPublicAccessBlock", False),
        ("kms.EnableKeyRotation", False),
        ("UpdateTrail", False),
    ],
)
def test_reads_are_describe_get_list(operation: str, read: bool) -> None:
    assert budgets.is_read(operation) is read


def test_assume_role_at_most_once_per_account_touched() -> None:
    assert budgets.assume_role(50, 50, "plan").ok
    assert budgets.assume_role(3, 50, "plan").ok
    failed = budgets.assume_role(51, 50, "apply")
    assert not failed.ok
    assert "51 calls" in failed.measured and "50 accounts" in failed.limit


@pytest.mark.parametrize(
    ("calls", "findings", "queries", "ok"),
    [
        (100, 10_000, 1, True),  # exactly full pages: no trailing empty page
        (101, 10_000, 1, True),  # one trailing empty page is allowed
        (102, 10_000, 1, False),
        (11, 1_001, 1, True),  # ceil(1001/100) = 11
        (12, 1_001, 1, True),
        (13, 1_001, 1, False),
        (1, 0, 1, True),  # an empty hub still costs one call
        (4, 250, 2, True),  # two regions: 3 pages + one extra last page each
        (6, 250, 2, False),
    ],
)
def test_get_findings_pages_at_100(calls: int, findings: int, queries: int, ok: bool) -> None:
    assert budgets.get_findings(calls, findings, queries, "N").ok is ok


@pytest.mark.parametrize(
    ("requests", "items", "page", "ok"),
    [
        (21, 100_000, 5_000, True),  # 20 full pages, then one empty page
        (22, 100_000, 5_000, False),
        (2, 2_999, 5_000, True),  # a short page, then the empty page that proves it was the last
        (3, 2_999, 5_000, False),  # anything beyond that empty page
        (12, 100_000, 9_999, True),
        (1, 0, 5_000, True),
    ],
)
def test_netskope_stops_at_the_first_empty_page(requests: int, items: int, page: int, ok: bool) -> None:
    assert budgets.netskope_requests(requests, items, page, "N").ok is ok


def test_rule_economy_counts_reads_writes_and_worst_case() -> None:
    economy = RuleEconomy()
    economy.add({"ec2.DescribeSecurityGroups": 2, "ec2.RevokeSecurityGroupIngress": 1}, minimal_writes=1)
    economy.add({"ec2.DescribeSecurityGroups": 2, "ec2.RevokeSecurityGroupIngress": 3}, minimal_writes=1)
    assert (economy.remediated, economy.reads, economy.writes) == (2, 4, 4)
    assert economy.max_reads == 2
    assert economy.max_extra_writes == 2
    assert economy.operations["ec2.RevokeSecurityGroupIngress"] == 4


def test_describe_before_write_flags_rules_over_budget() -> None:
    good, extra_read, extra_write = RuleEconomy(), RuleEconomy(), RuleEconomy()
    # Several reads, each once to assess and once to verify (state, tags for the exclusion, public status): fine.
    good.add({"s3.GetPublicAccessBlock": 2, "s3.GetBucketTagging": 1, "s3.GetBucketPolicyStatus": 2,
              "s3.PutPublicAccessBlock": 1}, minimal_writes=1)
    extra_read.add({"kms.DescribeKey": 1, "kms.GetKeyRotationStatus": 3, "kms.EnableKeyRotation": 1}, minimal_writes=1)
    extra_write.add({"iam.ListAccessKeys": 2, "iam.UpdateAccessKey": 3}, minimal_writes=2)
    never = RuleEconomy()  # a rule with nothing remediated is not judged
    results = {b.name: b for b in budgets.describe_before_write(
        {"S3.8": good, "KMS.4": extra_read, "IAM.3": extra_write, "EC2.7": never}
    )}
    assert set(results) == {"describe-before-write S3.8", "describe-before-write KMS.4", "describe-before-write IAM.3"}
    assert results["describe-before-write S3.8"].ok
    assert not results["describe-before-write KMS.4"].ok
    assert "one operation at most 3" in results["describe-before-write KMS.4"].measured
    assert not results["describe-before-write IAM.3"].ok


def test_minimal_writes_may_exceed_one() -> None:
    """EC2.6 creating its log group: three writes are the minimum, not a waste."""
    economy = RuleEconomy()
    economy.add({"ec2.DescribeFlowLogs": 2, "logs.CreateLogGroup": 1, "logs.PutRetentionPolicy": 1,
                 "ec2.CreateFlowLogs": 1}, minimal_writes=3)
    assert economy.max_extra_writes == 0
    assert all(b.ok for b in budgets.describe_before_write({"EC2.6": economy}))


@pytest.mark.parametrize(
    ("small", "large", "ok"),
    [(40.0, 40.0, True), (40.0, 60.0, True), (40.0, 60.1, False), (40.0, 30.0, True), (0.0, 10.0, False)],
)
def test_memory_at_ten_times_the_findings_within_one_and_a_half(small: float, large: float, ok: bool) -> None:
    assert budgets.memory_growth(small, large, 10_000, 100_000).ok is ok


def test_line_and_all_ok() -> None:
    passed = budgets.Budget("x", True, "1 call", "<= 2")
    failed = budgets.Budget("y", False, "3 calls", "<= 2")
    assert passed.line() == "PASS  x: 1 call (budget <= 2)"
    assert failed.line().startswith("FAIL  y")
    assert budgets.all_ok([passed])
    assert not budgets.all_ok([passed, failed])
    assert budgets.all_ok([])



def test_shared_reads_once_per_resource_until_a_write_in_the_account() -> None:
    """Eight password-policy findings in one account: one read in plan (the bench made eight before the cache);
    in apply one more per write (its live verification), and again after another rule wrote in the account."""
    policy, groups = "iam.GetAccountPasswordPolicy", "ec2.DescribeSecurityGroups"
    plan = budgets.SharedReads()
    for n in range(10, 18):
        plan.observe(f"IAM.{n}", "111111111111", "us-east-1", "account", "planned")
    for rule in ("EC2.13", "EC2.14", "EC2.53", "EC2.54"):
        plan.observe(rule, "111111111111", "us-east-1", "sg-1", "planned")
    assert (plan.expected[policy], plan.expected[groups]) == (1, 1)
    assert [b.ok for b in budgets.shared_reads({policy: 1, groups: 1}, plan, "plan")] == [True, True]
    assert [b.ok for b in budgets.shared_reads({policy: 8, groups: 4}, plan, "plan")] == [False, False]

    apply = budgets.SharedReads()
    apply.observe("IAM.10", "111111111111", "us-east-1", "account", "remediated")  # read, write, verify
    apply.observe("IAM.11", "111111111111", "us-east-1", "account", "noop")  # the verification's read
    apply.observe("EC2.6", "111111111111", "us-east-1", "vpc-1", "remediated")  # a write elsewhere: dropped
    apply.observe("IAM.12", "111111111111", "us-east-1", "account", "noop")  # read again
    apply.observe("IAM.13", "222222222222", "us-east-1", "account", "noop")  # another account
    assert apply.expected[policy] == 4
    assert apply.findings[policy] == 4


def test_calls_per_finding_and_per_remediation() -> None:
    assert budgets.calls_per_finding(600, 1000, budgets.MIXED_PLAN_CALLS_PER_FINDING, "plan").ok
    assert not budgets.calls_per_finding(601, 1000, budgets.MIXED_PLAN_CALLS_PER_FINDING, "plan").ok
    assert budgets.calls_per_finding(5, 800, budgets.SG_PLAN_CALLS_PER_FINDING, "sg").ok
    assert not budgets.calls_per_finding(800, 800, budgets.SG_PLAN_CALLS_PER_FINDING, "sg").ok
    assert budgets.calls_per_remediation(2200, 1000, budgets.APPLY_CALLS_PER_REMEDIATION, "apply").ok
    assert not budgets.calls_per_remediation(2201, 1000, budgets.APPLY_CALLS_PER_REMEDIATION, "apply").ok


def test_password_policy_one_read_per_account_at_plan_two_and_one_write_at_apply() -> None:
    read, write = budgets.POLICY_READ, budgets.POLICY_WRITE
    assert budgets.password_policy({read: 50}, 50, "plan", "plan").ok
    assert not budgets.password_policy({read: 51}, 50, "plan", "plan").ok  # a rule read it again
    assert budgets.password_policy({read: 100, write: 50}, 50, "apply", "apply").ok
    assert not budgets.password_policy({read: 100, write: 51}, 50, "apply", "apply").ok  # a second write


def test_client_cpu_is_held_to_the_bare_boto3_floor_and_peak_memory_to_its_limit():
    assert budgets.client_cpu(4.8, 6.2, 1000).ok
    assert budgets.client_cpu(6.2, 6.2, 1000).ok
    over = budgets.client_cpu(6.3, 6.2, 1000)
    assert not over.ok and "1.02x" in over.measured
    assert budgets.client_peak(367.0, 1000).ok
    assert not budgets.client_peak(381.0, 1000).ok
    assert budgets.CLIENT_PEAK_MIB == 380


def test_deployed_assume_role_once_per_account_in_each_warm_container() -> None:
    five = [{"111111111111": 1, "222222222222": 1} for _ in range(5)]
    assert budgets.deployed_assume_role(five, 2, "deployed").ok  # 10 = 2 accounts x 5 containers
    assert budgets.deployed_assume_role([*five[:3], {"111111111111": 1}], 2, "deployed").ok
    again = budgets.deployed_assume_role([{"111111111111": 2}, {}], 2, "deployed")  # within 2 x 2, but twice in one
    assert not again.ok and "at most 2 per account" in again.measured
    over = budgets.deployed_assume_role([{"111111111111": 1, "222222222222": 1, "333333333333": 1}], 2, "deployed")
    assert not over.ok and "3 calls" in over.measured and "2 accounts x 1 containers = 2" in over.limit
    assert budgets.deployed_assume_role([], 0, "deployed").ok


def test_deployed_run_settles_every_finding() -> None:
    assert budgets.deployed_settled(1000, 1000, {"planned": 1000}, 0, 0, "deployed").ok
    assert not budgets.deployed_settled(1000, 999, {"planned": 999}, 0, 0, "deployed").ok  # a result missing
    assert not budgets.deployed_settled(1000, 1000, {"planned": 1000}, 1, 0, "deployed").ok  # left in the queue
    assert not budgets.deployed_settled(1000, 1000, {"planned": 1000}, 0, 1, "deployed").ok  # dead-lettered
    failed = budgets.deployed_settled(1000, 1000, {"planned": 998, "failed": 2}, 0, 0, "deployed")
    assert not failed.ok and "2 failed" in failed.measured
    assert budgets.deployed_settled(1000, 1000, {"planned": 998, "failed": 2}, 0, 0, "deployed",
                                    failed_expected=2).ok


def test_deployed_dry_run_calls_per_finding_budget() -> None:
    limit = budgets.DEPLOYED_DRY_RUN_CALLS_PER_FINDING
    assert budgets.calls_per_finding(870, 1000, limit, "deployed dry-run").ok  # measured 2026-12-03
    assert not budgets.calls_per_finding(1393, 1000, limit, "deployed dry-run").ok  # the waves of 2026-12-02
    assert not budgets.calls_per_finding(int(limit * 1000) + 1, 1000, limit, "deployed dry-run").ok


def test_deployed_enforce_calls_per_remediated_budget() -> None:
    limit = budgets.DEPLOYED_ENFORCE_CALLS_PER_REMEDIATED
    assert budgets.calls_per_remediation(2076, 832, limit, "deployed enforce").ok  # measured 2026-12-03
    assert not budgets.calls_per_remediation(3005, 755, limit, "deployed enforce").ok  # the waves: 3.98
