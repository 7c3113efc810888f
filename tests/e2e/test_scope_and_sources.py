"""Region scope for every source, and sources that fail alone — through the CLI (`cspm-remediate run`) and the pull
Lambda handler, on moto with the fake Netskope API (demo/fake_netskope.py: a real HTTP server on 127.0.0.1 that
answers 500 for as many requests as asked).

* Findings outside `--regions` / `CSPM_REGIONS` are `skipped` with the reason, whatever their source (Netskope has
  no region filter server-side: its findings of every region come back).
* A source that fails (Netskope answering 500 on every retry) is named on stderr in one line, the exit code is 1,
  and the other sources' findings are still planned and printed; the handler enqueues them and then fails the
  invocation, naming the source.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from demo.fake_netskope import FakeNetskope
from functions.aws_lambda import handlers
from functions.cli.main import main
from functions.engine.ledger import create_table, result_from_row
from tests.e2e.test_cli import asff_for, import_to_security_hub, open_ssh_group

OWN = "123456789012"
REGION = "us-east-1"
TOKEN = "nsk-scope-token-51a7"
IRELAND = "Europe (Ireland)"
VIRGINIA = "US East(N. Virginia)"


def violation(bucket: str, region_name: str) -> dict[str, Any]:
    return {
        "account_id": OWN, "region_name": region_name, "resource_id": bucket, "resource_type": "Bucket",
        "rule_name": "Ensure S3 Bucket is not publicly accessible.", "severity": "High", "status": "Failed",
        "muted": "No", "cloud_provider": "aws",
    }


def store_token() -> str:
    """A fresh secret per test: the connector caches secret values per secret id, module-wide."""
    name = f"netskope-token-{uuid.uuid4().hex[:8]}"
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=name, SecretString=json.dumps({"token": TOKEN}))
    return name


def cli(*argv: str) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, json.loads(out.getvalue()) if out.getvalue() else []


@pytest.fixture
def two_region_netskope(moto_aws) -> Iterator[FakeNetskope]:
    """Netskope reports one public bucket in us-east-1 and one in eu-west-1, both in the caller's account."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="virginia-data")
    s3.create_bucket(Bucket="ireland-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with FakeNetskope([violation("virginia-data", VIRGINIA), violation("ireland-data", IRELAND)], TOKEN) as fake:
        yield fake


@pytest.fixture
def failing_netskope() -> Iterator[FakeNetskope]:
    """Answers HTTP 500 (Retry-After: 0, so the client's retries cost no time) to every request."""
    with FakeNetskope([violation("virginia-data", VIRGINIA)], TOKEN, fail_first=1000, fail_status=500) as fake:
        yield fake


# -- region scope: CLI ----------------------------------------------------------------------------
def test_run_skips_netskope_findings_outside_the_regions(two_region_netskope):
    code, results = cli("run", "--source", "netskope", "--regions", REGION, "--plan-only", "--netskope-url",
                        two_region_netskope.url, "--netskope-token-secret", store_token())
    assert code == 0
    by_region = {r["region"]: r for r in results}
    assert by_region[REGION]["outcome"] == "planned"
    assert by_region["eu-west-1"]["outcome"] == "skipped"
    assert by_region["eu-west-1"]["reason"] == "region eu-west-1 is outside the configured regions (us-east-1)"


def test_run_without_regions_acts_on_every_region(two_region_netskope):
    code, results = cli("run", "--source", "netskope", "--plan-only", "--netskope-url", two_region_netskope.url,
                        "--netskope-token-secret", store_token())
    assert code == 0
    assert {r["region"]: r["outcome"] for r in results} == {REGION: "planned", "eu-west-1": "planned"}


def test_the_env_variable_scopes_like_the_flag(two_region_netskope, monkeypatch):
    monkeypatch.setenv("CSPM_REGIONS", "eu-west-1")
    code, results = cli("run", "--source", "netskope", "--plan-only", "--netskope-url", two_region_netskope.url,
                        "--netskope-token-secret", store_token())
    assert code == 0
    assert {r["region"]: r["outcome"] for r in results} == {REGION: "skipped", "eu-west-1": "planned"}


# -- a failing source: CLI ------------------------------------------------------------------------
def test_run_with_a_failing_source_plans_the_others_and_exits_1(moto_aws, failing_netskope, capsys):
    group = open_ssh_group()
    import_to_security_hub(asff_for(group))
    code, results = cli("run", "--source", "securityhub", "--source", "netskope", "--regions", REGION,
                        "--netskope-url", failing_netskope.url, "--netskope-token-secret", store_token())
    err = capsys.readouterr().err
    assert code == 1
    assert [(r["source"], r["rule_id"], r["resource_id"], r["outcome"]) for r in results] == [
        ("securityhub", "EC2.53", group, "planned")]
    (line,) = [line for line in err.splitlines() if "pull failed" in line]
    assert line.startswith("ERROR cspm_remediate: netskope: pull failed, its findings are missing from the output: ")
    assert "HTTP 500" in line and TOKEN not in err
    assert len(failing_netskope.requests) > 1  # retried before giving up


# -- the pull handler -----------------------------------------------------------------------------
@pytest.fixture
def pull_lambda(moto_aws, monkeypatch) -> Iterator[dict[str, Any]]:
    """What the admin stack gives the pull function, on moto: the queue, the ledger, the topic."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="cspm-work")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), "cspm-ledger")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="cspm")["TopicArn"]
    for name, value in {"WORK_QUEUE_URL": queue, "LEDGER_TABLE": "cspm-ledger", "SNS_TOPIC_ARN": topic,
                        "NETSKOPE_TOKEN_SECRET": store_token(), "REMEDIATION_ROLE_NAME": "CSPMRemediationRole",
                        "CSPM_RULE_MODES": json.dumps({"S3.8": "dry-run"})}.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    yield {"sqs": sqs, "queue": queue}
    handlers.reset_runtime()


def enqueued_findings(sqs: Any, queue: str) -> list[dict[str, Any]]:
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return [body["finding"] for body in bodies if body["kind"] == "finding"]


def test_pull_handler_skips_netskope_findings_outside_the_regions(pull_lambda, two_region_netskope, monkeypatch):
    monkeypatch.setenv("NETSKOPE_URL", two_region_netskope.url)
    monkeypatch.setenv("CSPM_REGIONS", REGION)
    report = handlers.pull({"source": "netskope"})
    assert report["pulled"] == 2 and report["enqueued"] == 1 and report["failed_sources"] == {}
    assert [f["region"] for f in enqueued_findings(pull_lambda["sqs"], pull_lambda["queue"])] == [REGION]
    (skipped,) = [result_from_row(r) for r in handlers.runtime().ledger.results(report["run_id"])]
    assert (skipped.region, skipped.outcome) == ("eu-west-1", "skipped")
    assert skipped.reason == "region eu-west-1 is outside the configured regions (us-east-1)"


def test_pull_handler_goes_on_when_a_source_fails_then_fails_the_invocation(pull_lambda, failing_netskope,
                                                                            monkeypatch, caplog):
    monkeypatch.setenv("NETSKOPE_URL", failing_netskope.url)
    monkeypatch.setenv("CSPM_SOURCE", "netskope,securityhub")  # the failing source first: the other still runs
    monkeypatch.setenv("CSPM_REGIONS", REGION)
    group = open_ssh_group()
    import_to_security_hub(asff_for(group))
    with pytest.raises(handlers.PullIncomplete) as raised:
        handlers.pull({})
    report = raised.value.report
    assert set(report["failed_sources"]) == {"netskope"} and "HTTP 500" in report["failed_sources"]["netskope"]
    assert report["pulled"] == 1 and report["enqueued"] == 1
    message = str(raised.value)
    assert "\n" not in message and message.startswith("pull failed for netskope: ")
    assert f"run {report['run_id']} went on with the other sources: 1 finding(s) pulled, 1 enqueued" in message
    assert [f["resource_id"] for f in enqueued_findings(pull_lambda["sqs"], pull_lambda["queue"])] == [group]
    assert any(r.getMessage().startswith("netskope: pull failed") for r in caplog.records)
    assert TOKEN not in caplog.text
