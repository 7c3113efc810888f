"""Rollback through the CLI on moto: remediate → rollback (dry-run, then for real) → state equals the original."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from functions.cli import main as cli
from tests.factories import make_finding

ACCOUNT = "123456789012"


def run_cli(*argv: str) -> tuple[int, list[dict]]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, json.loads(out.getvalue() or "[]")


@pytest.fixture
def weak_password_policy(moto_aws, tmp_path):
    iam = boto3.client("iam")
    iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=3, RequireSymbols=True)
    original = iam.get_account_password_policy()["PasswordPolicy"]
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([
        make_finding(rule, "AwsAccount", ACCOUNT, region="us-east-1").to_dict() for rule in ("IAM.15", "IAM.16")
    ]))
    return iam, original, findings, tmp_path / "ledger.sqlite"


def test_remediate_then_rollback_restores_the_original(weak_password_policy):
    iam, original, findings, ledger = weak_password_policy
    code, results = run_cli("apply", str(findings), "--enforce", "--ledger", str(ledger))
    assert code == 0 and [r["outcome"] for r in results] == ["remediated", "remediated"]
    assert iam.get_account_password_policy()["PasswordPolicy"] != original
    run_id = results[0]["run_id"]

    code, planned = run_cli("rollback", "--run", run_id, "--ledger", str(ledger))
    assert code == 0 and [r["outcome"] for r in planned] == ["planned", "planned"]
    assert iam.get_account_password_policy()["PasswordPolicy"] != original  # dry-run changed nothing

    code, restored = run_cli("rollback", "--run", run_id, "--ledger", str(ledger), "--apply")
    assert code == 0 and [r["outcome"] for r in restored] == ["restored", "restored"]
    assert iam.get_account_password_policy()["PasswordPolicy"] == original


def test_rollback_of_one_finding(weak_password_policy):
    iam, original, findings, ledger = weak_password_policy
    _, results = run_cli("apply", str(findings), "--enforce", "--ledger", str(ledger))
    only = results[1]  # IAM.16, applied last, undone alone
    code, restored = run_cli("rollback", "--run", only["run_id"], "--ledger", str(ledger), "--apply",
                             "--finding", only["finding_id"])
    assert code == 0 and [r["finding_id"] for r in restored] == [only["finding_id"]]
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy["PasswordReusePrevention"] == original["PasswordReusePrevention"]
    assert policy["MinimumPasswordLength"] == 14  # IAM.15's change stays


def test_irreversible_actions_are_refused(moto_aws, tmp_path):
    from functions.engine.ledger import SqliteLedger
    from functions.engine.rollback import rollback
    from functions.engine.sessions import AssumedSessions

    row = {"finding_id": "f", "rule_id": "IAM.26", "account_id": ACCOUNT, "region": "us-east-1",
           "resource_type": "AwsAccount", "resource_id": ACCOUNT, "outcome": "remediated",
           "reason": "deleted expired certificate old-cert", "pre_state": {"deleted": ["old-cert"]}}
    (result,) = rollback([row], AssumedSessions(), apply=True)
    assert result.outcome == "refused" and "not reversible" in result.reason
    SqliteLedger(tmp_path / "empty.sqlite").close()
    code, _ = run_cli("rollback", "--run", "nope", "--ledger", str(tmp_path / "empty.sqlite"))
    assert code == 2


def test_security_group_rollback_puts_back_exactly_what_was_revoked(moto_aws, tmp_path):
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="ops", Description="ops", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "temporary"}, {"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
    ])

    def ingress():
        """The group's ingress in a canonical order (AWS promises no order of permissions or ranges)."""
        perms = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
        canonical = [{k: sorted(v, key=json.dumps) if isinstance(v, list) else v for k, v in p.items()} for p in perms]
        return sorted(json.dumps(p, sort_keys=True) for p in canonical)

    original = ingress()
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding(rule, "AwsEc2SecurityGroup", group).to_dict()
                                    for rule in ("EC2.53", "EC2.54")]))
    ledger = str(tmp_path / "ledger.sqlite")
    _, results = run_cli("apply", str(findings), "--enforce", "--ledger", ledger)
    assert [r["outcome"] for r in results] == ["remediated", "remediated"] and ingress() != original
    code, restored = run_cli("rollback", "--run", results[0]["run_id"], "--ledger", ledger, "--apply")
    assert code == 0 and [r["outcome"] for r in restored] == ["restored", "restored"]
    assert ingress() == original
