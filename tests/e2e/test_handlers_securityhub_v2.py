"""The pull Lambda with Source securityhub-v2, then the remediate Lambda, on moto: findings of two member accounts
read through GetFindingsV2, fixed in the accounts, and written back through BatchUpdateFindingsV2.

moto lacks both OCSF operations: they are served by demo/fake_securityhub_v2.py, a small fake that validates each
request against botocore's service model and keeps the findings' status and comment.
"""

from __future__ import annotations

import json

import boto3
import pytest

from demo.fake_securityhub_v2 import FakeSecurityHubV2, control_finding
from functions.aws_lambda import handlers
from functions.engine.ledger import create_table
from tests.e2e.test_engine import open_ssh_group, world_ssh_open
from tests.e2e.test_handlers import MEMBERS, REGION, kinds, receive_all


@pytest.fixture
def deployed(moto_aws, monkeypatch):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="cspm-work")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), "cspm-ledger")
    groups = {account: open_ssh_group(account) for account in MEMBERS}
    fake = FakeSecurityHubV2([
        control_finding("EC2.13", account, REGION, "AWS::EC2::SecurityGroup",
                        f"arn:aws:ec2:{REGION}:{account}:security-group/{group}", "SSH open to the world")
        for account, group in groups.items()
    ])
    for name, value in {
        "WORK_QUEUE_URL": queue, "LEDGER_TABLE": "cspm-ledger", "CSPM_SOURCE": "securityhub-v2",
        "CSPM_REGIONS": REGION, "REMEDIATION_ROLE_NAME": "CSPMRemediationRole",
        "CSPM_RULE_MODES": json.dumps({"EC2.13": "enforce"}), "CSPM_SUMMARY_DELAY_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    with fake.installed():
        yield {"sqs": sqs, "queue": queue, "groups": groups, "fake": fake}
    handlers.reset_runtime()


def test_pull_remediate_and_write_back_through_the_ocsf_api(deployed):
    report = handlers.pull({"source": "securityhub-v2"})
    assert report["pulled"] == 2 and report["enqueued"] == 2
    records = receive_all(deployed["sqs"], deployed["queue"])
    assert kinds(records) == ["finding", "finding", "summary"]

    assert handlers.remediate({"Records": records}) == {"batchItemFailures": []}
    assert not any(world_ssh_open(a, g) for a, g in deployed["groups"].items())
    # Written back: Resolved (status_id 4) with the run's comment, by metadata.uid in one request.
    updates = [params for op, params in deployed["fake"].calls if op == "BatchUpdateFindingsV2"]
    assert len(updates) == 1 and len(updates[0]["MetadataUids"]) == 2 and updates[0]["StatusId"] == 4
    for finding in deployed["fake"].findings:
        assert finding["status_id"] == 4 and finding["status"] == "Resolved"
        assert finding["comment"].startswith("Remediated: ")


def test_a_findings_imported_v2_event_is_queued_and_a_passed_one_is_not(deployed):
    first, second = deployed["fake"].findings
    event = {"version": "0", "id": "e-1", "detail-type": "Findings Imported V2", "source": "aws.securityhub",
             "account": "123456789012", "region": REGION, "resources": ["x"], "detail": {"findings": [first]}}
    assert handlers.events(event)["findings"] == 1
    passed = json.loads(json.dumps(second))
    passed["compliance"].update(status="Pass", status_id=1)
    assert handlers.events({**event, "detail": {"findings": [passed]}})["findings"] == 0
    records = receive_all(deployed["sqs"], deployed["queue"])
    assert kinds(records) == ["finding"]
    assert json.loads(records[0]["body"])["finding"]["source"] == "securityhub-v2"


def test_pull_lambda_reads_a_prowler_scan_from_s3(deployed, monkeypatch):
    """Source prowler in the pull Lambda: the scan's json-ocsf output in S3 (CSPM_PROWLER_INPUT=s3://…); a missing
    object is one rejection naming it, the other file still pulled."""
    from demo.prowler_output import ocsf_finding

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="prowler-scans")
    account, group = next(iter(deployed["groups"].items()))
    scan = [ocsf_finding("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22", account, REGION,
                         "AwsEc2SecurityGroup", f"arn:aws:ec2:{REGION}:{account}:security-group/{group}", "SSH")]
    s3.put_object(Bucket="prowler-scans", Key="out/scan.ocsf.json", Body=json.dumps(scan).encode())
    monkeypatch.setenv("CSPM_SOURCE", "prowler")
    monkeypatch.setenv("CSPM_PROWLER_INPUT", "s3://prowler-scans/out/missing.json,s3://prowler-scans/out/scan.ocsf.json")
    handlers.reset_runtime()
    report = handlers.pull({})
    assert (report["pulled"], report["rejected"], report["enqueued"]) == (1, 1, 1)
    records = receive_all(deployed["sqs"], deployed["queue"])
    bodies = [json.loads(r["body"]) for r in records if json.loads(r["body"])["kind"] == "finding"]
    assert [(b["finding"]["source"], b["finding"]["rule_id"]) for b in bodies] == [("prowler", "EC2.13")]
