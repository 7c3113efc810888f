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
    ((_, result),) = rollback([row], AssumedSessions(), apply=True)
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
    code, planned = run_cli("rollback", "--run", results[0]["run_id"], "--ledger", ledger)
    assert [r["reason"].split(" by putting back")[0] for r in planned] == [  # what is undone, newest first
        "dry-run: would undo the run's change (revoke tcp 3389 from ::/0)",
        "dry-run: would undo the run's change (revoke tcp 22 from 0.0.0.0/0)"]
    assert ingress() != original  # the dry-run wrote nothing
    code, restored = run_cli("rollback", "--run", results[0]["run_id"], "--ledger", ledger, "--apply")
    assert code == 0 and [r["outcome"] for r in restored] == ["restored", "restored"]
    assert ingress() == original


# -- rollback that cannot do harm (issue 13) ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger_address(request, moto_aws, tmp_path):
    """Both ledgers: a SQLite file, and the DynamoDB table of a deployed stack (on moto)."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    from functions.engine.ledger import create_table
    create_table(boto3.client("dynamodb"), "cspm-ledger")
    return "dynamodb://cspm-ledger"


def test_a_field_changed_since_the_run_is_left_alone(weak_password_policy, ledger_address, capsys):
    """The issue's scenario: the run raises the length 8 → 14 and reuse 3 → 24; then someone sets the length to 20
    and requires uppercase. Rollback puts back the reuse setting only, leaves length 20 and uppercase, says why,
    is recorded as a run of its own, and the next apply acts on the restored finding again."""
    iam, original, findings, _ = weak_password_policy
    ledger = ledger_address
    _, results = run_cli("apply", str(findings), "--enforce", "--ledger", ledger)
    assert [r["outcome"] for r in results] == ["remediated", "remediated"]
    assert [r["post_state"] for r in results] == [{"MinimumPasswordLength": 14}, {"PasswordReusePrevention": 24}]
    run_id = results[0]["run_id"]
    iam.update_account_password_policy(MinimumPasswordLength=20, PasswordReusePrevention=24, RequireSymbols=True,
                                       RequireUppercaseCharacters=True)
    changed = iam.get_account_password_policy()["PasswordPolicy"]
    capsys.readouterr()

    code, planned = run_cli("rollback", "--run", run_id, "--ledger", ledger)
    by_rule = {r["rule_id"]: r for r in planned}
    assert code == 0 and by_rule["IAM.16"]["outcome"] == "planned"
    assert by_rule["IAM.16"]["reason"] == "dry-run: would restore PasswordReusePrevention: 24 -> 3"
    assert by_rule["IAM.15"]["outcome"] == "skipped"
    assert by_rule["IAM.15"]["reason"] == ("MinimumPasswordLength changed since the run (now 20, the run set 14): "
                                           "left as is; --force puts it back")
    assert "skipped [IAM.15]" in " ".join(capsys.readouterr().err.split())
    assert iam.get_account_password_policy()["PasswordPolicy"] == changed  # the dry-run wrote nothing

    code, restored = run_cli("rollback", "--run", run_id, "--ledger", ledger, "--apply")
    assert code == 0 and {r["rule_id"]: r["outcome"] for r in restored} == {"IAM.16": "restored",
                                                                           "IAM.15": "skipped"}
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy == {**changed, "PasswordReusePrevention": original["PasswordReusePrevention"]}
    assert policy["MinimumPasswordLength"] == 20 and policy["RequireUppercaseCharacters"] is True

    # The rollback is a run of its own in the ledger (stage rollback).
    out = io.StringIO()
    assert cli.main(["history", "--json", "--ledger", ledger], out=out) == 0
    runs = {r["run_id"]: r for r in json.loads(out.getvalue())}
    rollback_run = restored[0]["run_id"]
    assert runs[rollback_run]["stage"] == "rollback"
    assert runs[rollback_run]["counts"] == {"restored": 1, "skipped": 1}

    # The next apply acts on the finding the rollback made non-compliant again, not "already remediated".
    code, again = run_cli("apply", str(findings), "--enforce", "--ledger", ledger)
    assert {r["rule_id"]: r["outcome"] for r in again} == {"IAM.15": "noop", "IAM.16": "remediated"}


def test_rollback_without_later_changes_puts_back_exactly_the_original(weak_password_policy, ledger_address):
    iam, original, findings, _ = weak_password_policy
    _, results = run_cli("apply", str(findings), "--enforce", "--ledger", ledger_address)
    run_id = results[0]["run_id"]
    code, planned = run_cli("rollback", "--run", run_id, "--ledger", ledger_address)
    assert [r["reason"] for r in planned] == ["dry-run: would restore PasswordReusePrevention: 24 -> 3",
                                              "dry-run: would restore MinimumPasswordLength: 14 -> 8"]
    code, restored = run_cli("rollback", "--run", run_id, "--ledger", ledger_address, "--apply")
    assert code == 0 and [r["outcome"] for r in restored] == ["restored", "restored"]
    assert iam.get_account_password_policy()["PasswordPolicy"] == original
    # A second rollback finds everything as it was before the run: nothing is labelled restored.
    code, twice = run_cli("rollback", "--run", run_id, "--ledger", ledger_address, "--apply")
    assert [r["outcome"] for r in twice] == ["unchanged", "unchanged"]
    assert twice[0]["reason"] == "PasswordReusePrevention is 3 as before the run"


def test_force_restores_a_field_changed_since(weak_password_policy):
    iam, original, findings, ledger = weak_password_policy
    _, results = run_cli("apply", str(findings), "--enforce", "--ledger", str(ledger))
    iam.update_account_password_policy(MinimumPasswordLength=20, PasswordReusePrevention=24, RequireSymbols=True)
    code, restored = run_cli("rollback", "--run", results[0]["run_id"], "--ledger", str(ledger), "--apply",
                             "--force")
    assert code == 0 and [r["outcome"] for r in restored] == ["restored", "restored"]
    assert iam.get_account_password_policy()["PasswordPolicy"] == original


def test_rollback_of_a_policy_the_run_created_deletes_it(moto_aws, tmp_path):
    iam = boto3.client("iam")
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("IAM.15", "AwsAccount", ACCOUNT, region="us-east-1").to_dict()]))
    ledger = str(tmp_path / "ledger.sqlite")
    _, results = run_cli("apply", str(findings), "--enforce", "--ledger", ledger)
    assert results[0]["outcome"] == "remediated"
    code, restored = run_cli("rollback", "--run", results[0]["run_id"], "--ledger", ledger, "--apply")
    assert code == 0 and restored[0]["outcome"] == "restored"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_account_password_policy()


def test_a_failed_apply_that_created_something_is_rolled_back(moto_aws, tmp_path, monkeypatch):
    """EC2.6 creates the log group, then CreateFlowLogs fails: the failed row recorded `created`, and rollback
    deletes the log group."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    ec2, logs = boto3.client("ec2"), boto3.client("logs")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("EC2.6", "AwsEc2Vpc", vpc).to_dict()]))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rules": {"EC2.6": {"mode": "enforce"}}}))
    ledger = str(tmp_path / "ledger.sqlite")
    real_call = BaseClient._make_api_call

    def refuse_flow_logs(self, operation, params):
        if operation == "CreateFlowLogs":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, operation)
        return real_call(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse_flow_logs)
    code, results = run_cli("apply", str(findings), "--config", str(config), "--ledger", ledger)
    monkeypatch.setattr(BaseClient, "_make_api_call", real_call)
    assert results[0]["outcome"] == "failed" and results[0]["pre_state"]["created"]["LogGroupName"]
    group = results[0]["pre_state"]["created"]["LogGroupName"]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]

    code, restored = run_cli("rollback", "--run", results[0]["run_id"], "--ledger", ledger, "--apply",
                             "--config", str(config))
    assert code == 0 and [r["outcome"] for r in restored] == ["restored"]
    assert not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]


def test_block_public_access_rollback_turns_off_only_what_the_run_turned_on(moto_aws, tmp_path):
    """One bucket had BlockPublicAcls on (the rest off), another had no configuration. After the run someone turns
    IgnorePublicAcls off again on the first: rollback leaves BlockPublicAcls on (the run did not set it), turns off
    what the run set and still holds, and removes the configuration the run created on the second."""
    s3 = boto3.client("s3", region_name="us-east-1")
    for name in ("partly", "bare"):
        s3.create_bucket(Bucket=name)
    s3.put_public_access_block(Bucket="partly", PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("S3.8", "AwsS3Bucket", b, region="us-east-1").to_dict()
                                    for b in ("partly", "bare")]))
    ledger = str(tmp_path / "ledger.sqlite")
    _, results = run_cli("apply", str(findings), "--enforce", "--ledger", ledger)
    assert [r["outcome"] for r in results] == ["remediated", "remediated"]
    assert results[0]["post_state"] == {"BlockPublicPolicy": True, "IgnorePublicAcls": True,
                                        "RestrictPublicBuckets": True}
    s3.put_public_access_block(Bucket="partly", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})

    code, restored = run_cli("rollback", "--run", results[0]["run_id"], "--ledger", ledger, "--apply")
    assert code == 0 and [r["outcome"] for r in restored] == ["restored", "restored"]
    assert restored[1]["reason"] == ("BlockPublicPolicy: true -> false; RestrictPublicBuckets: true -> false; "
                                     "IgnorePublicAcls is false as before the run")
    assert s3.get_public_access_block(Bucket="partly")["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False}
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchPublicAccessBlockConfiguration"):
        s3.get_public_access_block(Bucket="bare")
