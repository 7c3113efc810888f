"""`cspm-remediate --source securityhub-v2` end to end: a moto world, its control findings served by a small
faithful fake of GetFindingsV2 (demo/fake_securityhub_v2.py: moto lacks the OCSF API; requests are validated
against botocore's model), then run fixes them and a second run changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo.fake_securityhub_v2 import FakeSecurityHubV2, control_finding
from tests.e2e.test_cli import BUCKET, OWN, REGION, bucket_blocked, cli_json, open_ssh_group, ssh_open

FIXTURE = Path(__file__).parent.parent / "fixtures" / "securityhub_v2_getfindings.json"


@pytest.fixture
def hub(moto_aws):
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    group = open_ssh_group()
    fake = FakeSecurityHubV2([
        control_finding("EC2.13", OWN, REGION, "AWS::EC2::SecurityGroup",
                        f"arn:aws:ec2:{REGION}:{OWN}:security-group/{group}", "SSH open to the world"),
        control_finding("S3.8", OWN, REGION, "AWS::S3::Bucket", f"arn:aws:s3:::{BUCKET}", "bucket not blocked"),
        control_finding("S3.5", OWN, REGION, "AWS::S3::Bucket", f"arn:aws:s3:::{BUCKET}", "passed",
                        compliance_status_id=1),
    ])
    with fake.installed():
        yield {"fake": fake, "group": group}


def test_run_fixes_then_changes_nothing(hub, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mode": "enforce"}))
    code, first = cli_json("run", "--source", "securityhub-v2", "--config", config)
    assert code == 0
    assert {r["rule_id"]: r["outcome"] for r in first} == {"EC2.13": "remediated", "S3.8": "remediated"}
    assert not ssh_open(hub["group"]) and bucket_blocked()
    # Every request was a valid GetFindingsV2 request at the page maximum, with the open-failed filters.
    calls = [params for op, params in hub["fake"].calls if op == "GetFindingsV2"]
    assert calls and all(p["MaxResults"] == 100 for p in calls)
    assert all(any(f.get("FieldName") == "compliance.status_id" for c in p["Filters"]["CompositeFilters"]
                   for f in c.get("NumberFilters", [])) for p in calls)
    code, second = cli_json("run", "--source", "securityhub-v2", "--config", config)
    assert code == 0
    assert {r["rule_id"]: r["outcome"] for r in second} == {"EC2.13": "noop", "S3.8": "noop"}


def test_pull_prints_findings_and_normalize_reads_the_api_response(hub):
    code, pulled = cli_json("pull", "--source", "securityhub-v2", "--region", REGION)
    assert code == 0 and sorted(f["rule_id"] for f in pulled) == ["EC2.13", "S3.8"]
    assert {f["source"] for f in pulled} == {"securityhub-v2"}
    code, normalized = cli_json("normalize", "--source", "securityhub-v2", FIXTURE)
    assert code == 0 and len(normalized) == 7  # every finding of the response, open or not


def test_a_raw_getfindingsv2_response_given_to_plan_names_the_step_before(moto_aws, capsys):
    from tests.e2e.test_cli import cli

    code, out = cli("plan", FIXTURE)
    assert code == 2 and out == ""
    assert "normalize --source securityhub-v2" in capsys.readouterr().err
