"""`cspm-remediate` on a Prowler scan: a moto world, a `prowler aws -M json-ocsf` file describing its
misconfigurations (written in Prowler's shape by demo/prowler_output.py), then pull → plan → apply → compliant, and
`run --source prowler` a second time changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from demo.prowler_output import ocsf_finding
from tests.e2e.test_cli import BUCKET, OWN, REGION, bucket_blocked, cli, cli_json, open_ssh_group, ssh_open

FSBP = "AWS-Foundational-Security-Best-Practices"


def password_policy_length() -> int | None:
    try:
        return boto3.client("iam").get_account_password_policy()["PasswordPolicy"]["MinimumPasswordLength"]
    except boto3.client("iam").exceptions.NoSuchEntityException:
        return None


@pytest.fixture
def scan(moto_aws, tmp_path: Path) -> dict[str, str]:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    group = open_ssh_group()
    boto3.client("iam").update_account_password_policy(MinimumPasswordLength=8)
    findings = [
        ocsf_finding("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22", OWN, REGION,
                     "AwsEc2SecurityGroup", f"arn:aws:ec2:{REGION}:{OWN}:security-group/{group}",
                     "Ensure no security groups allow ingress from 0.0.0.0/0 or ::/0 to SSH port 22.",
                     {FSBP: ["EC2.13"]}),
        ocsf_finding("s3_bucket_level_public_access_block", OWN, REGION, "AwsS3Bucket", f"arn:aws:s3:::{BUCKET}",
                     "Check S3 Bucket Level Public Access Block.", {FSBP: ["S3.8"]}),
        ocsf_finding("iam_password_policy_minimum_length_14", OWN, REGION, "AwsIamPolicy",
                     f"arn:aws:iam:{REGION}:{OWN}:password-policy",
                     "Ensure IAM password policy requires minimum length of 14 or greater.",
                     {FSBP: ["IAM.7", "IAM.10"], "CIS-3.0": ["1.8"]}, severity="Medium"),
        ocsf_finding("s3_bucket_secure_transport_policy", OWN, REGION, "AwsS3Bucket", f"arn:aws:s3:::{BUCKET}",
                     "Check if S3 buckets have secure transport policy.", {FSBP: ["S3.5"]}, status_code="PASS"),
        ocsf_finding("guardduty_is_enabled", OWN, REGION, "AwsGuardDutyDetector",
                     f"arn:aws:guardduty:{REGION}:{OWN}:detector/unknown", "GuardDuty is enabled", {}),
    ]
    path = tmp_path / "prowler-output-123456789012-20261130.ocsf.json"
    path.write_text(json.dumps(findings, indent=4))
    return {"group": group, "file": str(path)}


def test_pull_plan_apply_from_a_prowler_file(scan, tmp_path):
    code, findings = cli_json("pull", "--source", "prowler", "--input", scan["file"])
    assert code == 0
    assert sorted(f["rule_id"] for f in findings) == ["EC2.13", "IAM.15", "S3.8", "prowler:guardduty_is_enabled"]
    assert {f["source"] for f in findings} == {"prowler"}  # the PASS finding is not pulled
    pulled = tmp_path / "findings.json"
    pulled.write_text(json.dumps(findings))

    code, planned = cli_json("plan", pulled)
    assert code == 0
    assert {r["rule_id"]: r["outcome"] for r in planned} == {
        "EC2.13": "planned", "S3.8": "planned", "IAM.15": "planned", "prowler:guardduty_is_enabled": "skipped"}
    assert ssh_open(scan["group"]) and not bucket_blocked() and password_policy_length() == 8

    code, applied = cli_json("apply", pulled, "--enforce")
    assert code == 0
    assert {r["rule_id"]: r["outcome"] for r in applied if r["rule_id"] != "prowler:guardduty_is_enabled"} == {
        "EC2.13": "remediated", "S3.8": "remediated", "IAM.15": "remediated"}
    assert not ssh_open(scan["group"]) and bucket_blocked() and password_policy_length() >= 14


def test_run_from_a_prowler_file_fixes_then_changes_nothing(scan, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mode": "enforce"}))
    code, first = cli_json("run", "--source", "prowler", "--input", scan["file"], "--config", config)
    assert code == 0
    assert {r["rule_id"]: r["outcome"] for r in first if r["rule_id"] != "prowler:guardduty_is_enabled"} == {
        "EC2.13": "remediated", "S3.8": "remediated", "IAM.15": "remediated"}
    code, second = cli_json("run", "--source", "prowler", "--input", scan["file"], "--config", config)
    assert code == 0
    assert not [r for r in second if r["outcome"] in ("remediated", "started", "failed")]
    assert {r["rule_id"]: r["outcome"] for r in second}["EC2.13"] == "noop"


def test_prowler_source_needs_an_input_file(moto_aws, capsys):
    code, out = cli("pull", "--source", "prowler")
    assert code == 2 and out == ""
    assert "--source prowler needs --input FILE" in capsys.readouterr().err


def test_a_prowler_file_given_to_plan_names_the_step_before(scan, capsys):
    code, out = cli("plan", scan["file"])
    assert code == 2 and out == ""
    assert "normalize --source prowler" in capsys.readouterr().err


def test_normalize_reads_prowler_json_and_json_lines(tmp_path):
    fixture = Path(__file__).parent.parent / "fixtures" / "prowler_ocsf.json"
    code, findings = cli_json("normalize", "--source", "prowler", fixture)
    assert code == 0 and len(findings) == 8  # every finding, open or not: normalize does not filter
    lines = tmp_path / "scan.jsonl"
    lines.write_text("\n".join(json.dumps(item) for item in json.loads(fixture.read_text())))
    code, again = cli_json("normalize", "--source", "prowler", lines)
    assert code == 0 and [f["finding_id"] for f in again] == [f["finding_id"] for f in findings]


def test_several_scan_files_after_one_input_as_a_shell_glob_gives_them(scan, tmp_path):
    """`--input scans/prowler-output-*.ocsf.json` (the README's line) expands to every scan file of the folder."""
    items = json.loads(Path(scan["file"]).read_text())
    first, second = tmp_path / "prowler-output-a.ocsf.json", tmp_path / "prowler-output-b.ocsf.json"
    first.write_text(json.dumps(items[:2]))
    second.write_text(json.dumps(items[2:]))
    code, findings = cli_json("pull", "--source", "prowler", "--input", first, second)
    assert code == 0
    assert sorted(f["rule_id"] for f in findings) == ["EC2.13", "IAM.15", "S3.8", "prowler:guardduty_is_enabled"]
    code, again = cli_json("pull", "--source", "prowler", "--input", first, "--input", second)
    assert code == 0 and [f["finding_id"] for f in again] == [f["finding_id"] for f in findings]
