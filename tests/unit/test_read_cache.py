"""The run's read cache (functions/model.py ReadCache, kept by the engine per run): reads several findings of one
account share are made once, and every write in the account drops them, so verification reads the live state.

Through the engine on moto, counting calls with AssumedSessions.api_calls ("service.Operation").
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import ACCOUNT_WIDE, ReadCache, Stage
from functions.remediators.iam import REQUIREMENTS
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_ec2 import make_group, perm, sg_finding

POLICY_RULES = list(REQUIREMENTS)  # IAM.7, IAM.10 … IAM.17
SG_RULES = ("EC2.13", "EC2.14", "EC2.53", "EC2.54")
ENFORCE = {"mode": "enforce"}


def policy_findings() -> list[Any]:
    return [make_finding(rule, "AwsAccount", f"AWS::::Account:{ACCOUNT}", region="global") for rule in POLICY_RULES]


@pytest.fixture
def iam(moto_aws: None) -> Any:
    client = boto3.client("iam", region_name=REGION)
    client.update_account_password_policy(MinimumPasswordLength=8)  # fails every password-policy rule
    return client


@pytest.fixture
def open_group(moto_aws: None) -> str:
    """SSH and RDP open to the world over IPv4 and IPv6: fails EC2.13, .14, .53 and .54."""
    ec2 = boto3.client("ec2", region_name=REGION)
    return make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0", "::/0"), perm("tcp", 3389, 3389, "0.0.0.0/0", "::/0")])


def run(stage: Stage, config: dict[str, Any], findings: list[Any]) -> tuple[list[Any], AssumedSessions]:
    sessions = AssumedSessions()
    results = Engine(config_from_dict(config), sessions, stage=stage).run(findings)
    return results, sessions


def test_plan_reads_the_password_policy_once_for_all_its_rules(iam: Any) -> None:
    results, sessions = run("plan", {}, policy_findings())

    assert [r.outcome for r in results] == ["planned"] * len(POLICY_RULES)
    assert sessions.api_calls["iam.GetAccountPasswordPolicy"] == 1  # was one per rule


def test_plan_describes_a_group_once_for_four_rules(open_group: str) -> None:
    results, sessions = run("plan", {}, [sg_finding(rule, open_group) for rule in SG_RULES])

    assert [r.outcome for r in results] == ["planned"] * 4
    assert sessions.api_calls["ec2.DescribeSecurityGroups"] == 1  # was 4


def test_the_rules_write_once_and_verify_with_one_live_read(iam: Any) -> None:
    """All the password rules of an account: one read to assess, one combined write, one live read that every
    rule's verification shares (test_password_policy_combined.py has the details)."""
    results, sessions = run("apply", ENFORCE, policy_findings())

    assert {r.outcome for r in results} == {"remediated"}
    assert sessions.api_calls["iam.UpdateAccountPasswordPolicy"] == 1
    assert sessions.api_calls["iam.GetAccountPasswordPolicy"] == 2
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy["MinimumPasswordLength"] >= 14 and policy["PasswordReusePrevention"] >= 24
    assert policy["MaxPasswordAge"] <= 90
    assert all(policy[flag] for flag in ("RequireUppercaseCharacters", "RequireLowercaseCharacters",
                                         "RequireSymbols", "RequireNumbers"))


def test_security_group_writes_are_verified_live(open_group: str) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    results, sessions = run("apply", ENFORCE, [sg_finding(rule, open_group) for rule in SG_RULES])

    remediated = sum(r.outcome == "remediated" for r in results)
    assert {r.outcome for r in results} <= {"remediated", "noop"} and remediated
    assert sessions.api_calls["ec2.DescribeSecurityGroups"] == 1 + remediated  # one live verification per write
    assert ec2.describe_security_groups(GroupIds=[open_group])["SecurityGroups"][0]["IpPermissions"] == []


def test_a_failed_write_drops_the_cached_read(open_group: str) -> None:
    """An apply that fails halfway may have changed something: the next finding on that group reads again."""
    sessions = AssumedSessions()
    engine = Engine(config_from_dict(ENFORCE), sessions, stage="apply")
    refused = {"calls": 0}

    def refuse_first(**_: Any) -> None:
        refused["calls"] += 1
        if refused["calls"] == 1:
            raise RuntimeError("boom")

    ec2 = sessions.client(ACCOUNT, REGION, "ec2")  # the engine's own (clients are cached)
    ec2.meta.events.register("before-call.ec2.RevokeSecurityGroupIngress", refuse_first)
    results = engine.run([sg_finding(rule, open_group) for rule in ("EC2.13", "EC2.14")])

    assert results[0].outcome == "failed"
    assert results[1].outcome == "remediated"
    # assess 1, assess 2 (not the first's read), verify 2
    assert sessions.api_calls["ec2.DescribeSecurityGroups"] == 3


def test_cache_hands_out_copies_keeps_accounts_apart_and_does_not_cache_errors() -> None:
    cache = ReadCache(max_entries=2)
    reads: list[str] = []

    def read(value: str) -> dict[str, list[str]]:
        reads.append(value)
        return {"v": [value]}

    cache.get(("a", "k"), lambda: read("a1"))["v"].append("edited")
    assert cache.get(("a", "k"), lambda: read("a2")) == {"v": ["a1"]}  # one read, and unedited
    cache.get(("b", "k"), lambda: read("b1"))
    cache.clear("a")
    assert cache.get(("a", "k"), lambda: read("a3")) == {"v": ["a3"]}
    assert cache.get(("b", "k"), lambda: read("b2")) == {"v": ["b1"]}
    cache.get(("c", "k"), lambda: read("c1"))  # over max_entries: the least recently used ("a") goes
    assert cache.get(("a", "k"), lambda: read("a4")) == {"v": ["a4"]}
    assert reads == ["a1", "b1", "a3", "c1", "a4"]

    def broken() -> None:
        raise RuntimeError("throttled")

    with pytest.raises(RuntimeError):
        cache.get(("d", "k"), broken)
    assert cache.get(("d", "k"), lambda: read("d1")) == {"v": ["d1"]}


def test_without_a_run_every_read_is_live(sessions: AssumedSessions) -> None:
    """Rollback and the CLI tools build Targets without the engine's cache: nothing is remembered."""
    target = sessions.target(ACCOUNT, REGION)
    values = iter(range(3))
    assert [target.read(("k",), lambda: next(values)) for _ in range(3)] == [0, 1, 2]


def test_trail_rules_share_one_describe_and_a_write_drops_it(moto_aws: None) -> None:
    """CloudTrail.4 and CloudTrail.2 on one trail: one DescribeTrails at plan; at apply the CloudTrail.4 write
    drops it, so CloudTrail.2 assesses from a live read (the verification's)."""
    from tests.unit.test_remediators_cloudtrail import create_trail, make_trail_bucket

    create_trail("audit", make_trail_bucket("cspm-test-cache-trail"), EnableLogFileValidation=False)
    found = [make_finding(rule, "AwsCloudTrailTrail", "audit") for rule in ("CloudTrail.4", "CloudTrail.2")]

    results, sessions = run("plan", {}, found)
    assert [r.outcome for r in results] == ["planned", "planned"]
    assert sessions.api_calls["cloudtrail.DescribeTrails"] == 1

    config = {"mode": "dry-run", "rules": {"CloudTrail.4": ENFORCE}}
    results, sessions = run("apply", config, found)
    assert [r.outcome for r in results] == ["remediated", "planned"]
    assert sessions.api_calls["cloudtrail.DescribeTrails"] == 2  # assess, then the verification both share


def test_a_write_drops_only_what_its_finding_read(open_group: str) -> None:
    """Account-level settings (EBS default encryption, account Block Public Access, Access Analyzer) are read once
    per account and region; a security group write leaves them cached."""
    sessions = AssumedSessions()
    engine = Engine(config_from_dict({"mode": "dry-run", "rules": {"EC2.13": ENFORCE}}), sessions, stage="apply")
    account = f"AWS::::Account:{ACCOUNT}"
    found = [make_finding("EC2.7", "AwsAccount", account), make_finding("S3.1", "AwsAccount", account),
             sg_finding("EC2.13", open_group)]

    results = engine.run(found)

    assert [r.outcome for r in results] == ["planned", "planned", "remediated"]
    # EBS default encryption per region; the account's Block Public Access once for the account (any region).
    for cached in ((ACCOUNT, REGION, "ec2.GetEbsEncryptionByDefault"),
                   (ACCOUNT, ACCOUNT_WIDE, "s3control.GetPublicAccessBlock")):
        assert engine._reads.has(cached), cached
    assert not engine._reads.has((ACCOUNT, REGION, "ec2.DescribeSecurityGroups", open_group)) or \
        sessions.api_calls["ec2.DescribeSecurityGroups"] == 2  # dropped by the write, read again to verify


@pytest.mark.stubber
def test_access_analyzer_is_listed_once_per_account_and_region(moto_aws: None) -> None:
    """Stubber (moto lacks Access Analyzer): two IAM.28 assessments in one run make one ListAnalyzers."""
    from botocore.stub import Stubber

    from functions.remediators.iam import AccessAnalyzer

    target = AssumedSessions().target(ACCOUNT, REGION, reads=ReadCache())
    finding = make_finding("IAM.28", "AwsAccount", ACCOUNT)
    with Stubber(target.client("accessanalyzer")) as stub:
        stub.add_response("list_analyzers", {"analyzers": []}, {})
        assert not AccessAnalyzer().assess(target, finding).compliant
        assert not AccessAnalyzer().assess(target, finding).compliant
        stub.assert_no_pending_responses()
