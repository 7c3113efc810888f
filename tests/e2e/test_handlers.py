"""Lambda handlers end to end on moto: scheduled pull → SQS → remediate → resources fixed, ledger rows,
duplicates give one action, failures come back in batchItemFailures only.

moto has no BatchUpdateFindings: the Security Hub write-back client is a botocore Stubber that accepts the
documented request shape (the write-back module has its own exact-shape Stubber tests).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from functions.aws_lambda import handlers
from functions.engine.ledger import create_table, result_from_row
from tests.e2e.test_engine import open_ssh_group, world_ssh_open

ADMIN = "123456789012"
MEMBERS = ["111111111111", "222222222222"]
REGION = "us-east-1"
ASFF = json.loads((Path(__file__).parent.parent / "fixtures" / "asff_ec2_53.json").read_text())


def asff_for(account: str, group: str, n: int) -> dict:
    item = copy.deepcopy(ASFF)
    item["Id"] = f"arn:aws:securityhub:{REGION}:{ADMIN}:security-control/EC2.53/finding/{n:08d}"
    item["ProductArn"] = f"arn:aws:securityhub:{REGION}::product/aws/securityhub"
    item["Region"] = REGION
    item["AwsAccountId"] = account
    item["Resources"] = [{"Type": "AwsEc2SecurityGroup", "Region": REGION, "Partition": "aws",
                          "Id": f"arn:aws:ec2:{REGION}:{account}:security-group/{group}"}]
    return item


@pytest.fixture
def deployed(moto_aws, monkeypatch):
    """What the admin stack creates, on moto: queue, ledger table, topic; Security Hub with findings."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="cspm-work")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), "cspm-ledger")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="cspm")["TopicArn"]
    groups = {account: open_ssh_group(account) for account in MEMBERS}
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=[asff_for(a, g, i) for i, (a, g) in enumerate(groups.items())])
    for name, value in {
        "WORK_QUEUE_URL": queue, "LEDGER_TABLE": "cspm-ledger", "SNS_TOPIC_ARN": topic,
        "CSPM_SOURCE": "securityhub", "CSPM_REGIONS": REGION, "REMEDIATION_ROLE_NAME": "CSPMRemediationRole",
        "CSPM_RULE_MODES": json.dumps({"EC2.53": "enforce"}), "CSPM_SUMMARY_DELAY_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    rt = handlers.runtime()
    stub = Stubber(rt.client("securityhub"))
    for _ in range(10):
        stub.add_response("batch_update_findings", {"ProcessedFindings": [], "UnprocessedFindings": []},
                          {"FindingIdentifiers": ANY, "Workflow": ANY, "Note": ANY})
    stub.activate()
    yield {"sqs": sqs, "queue": queue, "groups": groups, "rt": rt, "stub": stub}
    stub.deactivate()
    handlers.reset_runtime()


def receive_all(sqs, queue) -> list[dict]:
    """SQS messages as the Lambda service hands them to the function (Records)."""
    records = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       AttributeNames=["ApproximateReceiveCount"]).get("Messages", []):
        for message in batch:
            records.append({"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                            "body": message["Body"], "attributes": message.get("Attributes", {}),
                            "eventSource": "aws:sqs"})
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return records


def kinds(records) -> list[str]:
    return sorted(json.loads(r["body"])["kind"] for r in records)


def test_scheduled_pull_then_remediate_fixes_every_account(deployed):
    report = handlers.pull({"source": "securityhub"})
    assert report["pulled"] == 2 and report["enqueued"] == 2
    records = receive_all(deployed["sqs"], deployed["queue"])
    assert kinds(records) == ["finding", "finding", "summary"]  # the summary waits 900 s by default

    response = handlers.remediate({"Records": records})
    assert response == {"batchItemFailures": []}
    assert not any(world_ssh_open(a, g) for a, g in deployed["groups"].items())
    rows = [result_from_row(r) for r in deployed["rt"].ledger.results(report["run_id"])]
    assert sorted(r.outcome for r in rows) == ["remediated", "remediated"]
    assert all(r.pre_state for r in rows)
    assert deployed["rt"].sessions.assume_role_calls == len(MEMBERS)


def test_a_duplicate_delivery_gives_no_second_action(deployed):
    handlers.pull({"source": "securityhub"})
    findings = [r for r in receive_all(deployed["sqs"], deployed["queue"]) if '"finding"' in r["body"]]
    twice = [*findings, {**findings[0], "messageId": "redelivered"}]
    assert handlers.remediate({"Records": twice}) == {"batchItemFailures": []}
    again = handlers.remediate({"Records": findings})  # a later redelivery: the resource is already fixed
    assert again == {"batchItemFailures": []}
    outcomes = sorted(r.outcome for run in {json.loads(f["body"])["run_id"] for f in findings}
                      for r in map(result_from_row, deployed["rt"].ledger.results(run)))
    assert outcomes.count("remediated") == 2  # one action per finding; the rest are duplicate or noop


def test_a_deleted_resource_is_skipped_and_only_the_poison_message_comes_back(deployed):
    run_id = handlers.pull({"source": "securityhub"})["run_id"]
    records = [r for r in receive_all(deployed["sqs"], deployed["queue"]) if '"finding"' in r["body"]]
    body = json.loads(records[0]["body"])
    body["finding"]["resource_id"] = "sg-0000000000000dead"  # gone since the scan: the describe fails
    records[0] = {**records[0], "body": json.dumps(body)}
    poison = {"messageId": "poison", "body": "not json"}
    response = handlers.remediate({"Records": [*records, poison]})
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert failed == {"poison"}  # a permanent failure is recorded and its message deleted
    gone = next(r for r in map(result_from_row, deployed["rt"].ledger.results(run_id))
                if r.resource_id == "sg-0000000000000dead")
    assert gone.outcome == "skipped" and gone.reason.startswith("resource no longer exists: ")
    assert gone.error == "InvalidGroup.NotFound"


def test_custom_action_enforces_the_selected_findings_in_dry_run(deployed, monkeypatch):
    monkeypatch.setenv("CSPM_RULE_MODES", json.dumps({"EC2.53": "dry-run"}))
    handlers.reset_runtime()
    rt = handlers.runtime()
    rt.clients["securityhub"] = deployed["rt"].client("securityhub")  # the stubbed write-back client
    account, group = next(iter(deployed["groups"].items()))
    event = json.loads((Path(__file__).parent.parent / "fixtures" / "eventbridge_custom_action.json").read_text())
    event["detail"]["findings"] = [asff_for(account, group, 7)]
    assert handlers.events(event)["enqueued"] == 1
    records = receive_all(deployed["sqs"], deployed["queue"])
    assert json.loads(records[0]["body"])["enforce"] is True
    assert handlers.remediate({"Records": records}) == {"batchItemFailures": []}
    assert not world_ssh_open(account, group)


def test_imported_event_respects_dry_run(deployed, monkeypatch):
    monkeypatch.setenv("CSPM_RULE_MODES", json.dumps({"EC2.53": "dry-run"}))
    handlers.reset_runtime()
    handlers.runtime().clients["securityhub"] = deployed["rt"].client("securityhub")
    account, group = next(iter(deployed["groups"].items()))
    event = json.loads((Path(__file__).parent.parent / "fixtures" / "eventbridge_imported.json").read_text())
    event["detail"]["findings"] = [asff_for(account, group, 8)]
    handlers.events(event)
    assert handlers.remediate({"Records": receive_all(deployed["sqs"], deployed["queue"])}) == {
        "batchItemFailures": []
    }
    assert world_ssh_open(account, group)


def test_summary_message_publishes_the_run_from_the_ledger(deployed):
    report = handlers.pull({"source": "securityhub"})
    records = receive_all(deployed["sqs"], deployed["queue"])
    handlers.remediate({"Records": [r for r in records if '"finding"' in r["body"]]})
    sns = boto3.client("sns", region_name=REGION)
    sink = deployed["sqs"].create_queue(QueueName="inbox")["QueueUrl"]
    sink_arn = deployed["sqs"].get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=deployed["rt"].settings.sns_topic_arn, Protocol="sqs", Endpoint=sink_arn["QueueArn"])
    handlers.remediate({"Records": [r for r in records if '"summary"' in r["body"]]})
    published = deployed["sqs"].receive_message(QueueUrl=sink, MaxNumberOfMessages=10)["Messages"]
    message = json.loads(published[0]["Body"])
    assert report["run_id"] in message["Subject"] and "2 remediated" in message["Subject"]


def test_events_skip_a_foreign_product_and_an_unvouched_cross_account_resource(deployed, monkeypatch):
    """Provenance (#12): only Security Hub's own findings, and a resource of another account only when its reporter
    is the configured aggregator; each skipped finding is counted and logged with its reason."""
    monkeypatch.setenv("CSPM_RULE_MODES", json.dumps({"EC2.53": "dry-run"}))
    monkeypatch.setenv("CSPM_SECURITYHUB_AGGREGATORS", "999999999999")
    handlers.reset_runtime()
    handlers.runtime().clients["securityhub"] = deployed["rt"].client("securityhub")
    account, group = next(iter(deployed["groups"].items()))
    event = json.loads((Path(__file__).parent.parent / "fixtures" / "eventbridge_imported.json").read_text())
    imported_by_a_member = "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    foreign = {**asff_for(account, group, 9), "ProductArn": imported_by_a_member}
    other = asff_for(account, group, 10)
    other["AwsAccountId"] = "123456789012"  # a member account naming this account's security group
    vouched = {**asff_for(account, group, 11), "AwsAccountId": "999999999999"}
    event["detail"]["findings"] = [foreign, other, vouched]
    result = handlers.events(event)
    assert (result["findings"], result["rejected"]) == (1, 2)
    assert result["enqueued"] == 1
