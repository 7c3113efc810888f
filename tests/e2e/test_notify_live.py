"""Notify rules that read live state (Remediator.notify_assesses), as a user sees them.

The deployed path on moto: the pull handler reads a Prowler output file and, unable to assume the target role,
enqueues CIS 1.13's findings instead of deciding them offline; the remediate handler reads the user's keys in the
target account and publishes one SNS message naming them (the operator's inbox is an SQS queue subscribed to the
topic), once per observation: a second pull of the same observation sends nothing, nor does an SQS redelivery. A
user left with one active key is `noop` and no message. And the CLI: `plan` of an IAM.1 finding names the users,
groups and roles the full-admin policy is attached to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from demo.deployed import answer_writeback
from demo.prowler_output import ocsf_finding
from functions.aws_lambda import handlers
from functions.engine.sessions import AssumedSessions
from functions.remediators.iam_access_keys import RULE_ID as ONE_KEY
from tests.e2e.test_cli import cli_json, write_json
from tests.e2e.test_deployed_path import inbox, stack_runtime, topic_with_inbox
from tests.e2e.test_handlers import receive_all
from tests.factories import make_finding

REGION = "us-east-1"
A1 = "111111111111"
OWN = "123456789012"  # moto's account for the caller's own credentials (the CLI without a role)
NOTICE = f"[cspm-remediation] action needed: {ONE_KEY} in {A1}"


def iam_of(account: str) -> Any:
    return AssumedSessions(role_name="OrganizationAccountAccessRole").target(account, REGION).client("iam")


def user_with_keys(iam: Any, user: str, active: int, inactive: int = 0) -> list[str]:
    iam.create_user(UserName=user)
    keys = [iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"] for _ in range(active + inactive)]
    for key in keys[active:]:
        iam.update_access_key(UserName=user, AccessKeyId=key, Status="Inactive")
    return keys[:active]


def key_statuses(iam: Any, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


@pytest.fixture(params=["dynamodb", "sqlite"])
def stack(request, moto_aws, monkeypatch, tmp_path):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    topic, mail = topic_with_inbox(sqs)

    iam = iam_of(A1)
    two = user_with_keys(iam, "deploy-bot", active=2)
    user_with_keys(iam, "report-bot", active=1, inactive=1)  # the finding is stale: compliant now
    output = write_json(tmp_path / "prowler.ocsf.json", [
        ocsf_finding("iam_user_two_active_access_key", A1, REGION, "AwsIamUser", f"arn:aws:iam::{A1}:user/{user}",
                     "IAM users should have at most one active access key")
        for user in ("deploy-bot", "report-bot")])

    env = {"WORK_QUEUE_URL": queue, "SNS_TOPIC_ARN": topic, "CSPM_SOURCE": "prowler",
           "CSPM_PROWLER_INPUT": str(output), "REMEDIATION_ROLE_NAME": "CSPMRemediationRole",
           "CSPM_SUMMARY_DELAY_SECONDS": "0"}
    rt = stack_runtime(monkeypatch, env, request.param, tmp_path)
    answer_writeback(rt.session)
    yield {"sqs": sqs, "queue": queue, "mail": mail, "rt": rt, "iam": iam, "keys": two}
    handlers.reset_runtime()


def findings_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if json.loads(r["body"])["kind"] == "finding"]


def notices(stack: dict[str, Any]) -> list[dict[str, str]]:
    return [m for m in inbox(stack["sqs"], stack["mail"]) if m["subject"].startswith(NOTICE)]


def test_the_remediate_function_reads_the_keys_and_notifies_once_per_observation(stack):
    sqs, rt, iam = stack["sqs"], stack["rt"], stack["iam"]
    first, second = stack["keys"]

    pulled = handlers.pull({})

    assert pulled["enqueued"] == 2 and "notified" not in pulled["decided_at_pull"]  # not decided offline
    records = receive_all(sqs, stack["queue"])
    assert handlers.remediate({"Records": findings_of(records)}) == {"batchItemFailures": []}
    (notice,) = notices(stack)
    body = " ".join(notice["body"].split())  # the guidance is wrapped for e-mail
    assert "user deploy-bot has 2 active access keys" in body
    assert f"{first} (created " in body and f"{second} (created " in body
    deactivate = {key for key in (first, second)
                  if f"update-access-key --user-name deploy-bot --access-key-id {key} --status Inactive" in body}
    assert len(deactivate) == 1  # every key but the one in use, by its real id
    rows = {r["resource_id"]: r for r in rt.ledger.results(pulled["run_id"])}
    assert {user: row["outcome"] for user, row in rows.items()} == {"deploy-bot": "notified", "report-bot": "noop"}
    assert rows["deploy-bot"]["changes"]

    # SQS delivers the same message again: the notification claim holds, nothing is sent
    assert handlers.remediate({"Records": findings_of(records)}) == {"batchItemFailures": []}
    # the next scheduled pull of the same observation: decided before any read, nothing is sent
    again = handlers.pull({})
    assert again["decided_at_pull"] == {"skipped": 1} and again["enqueued"] == 1  # report-bot is read again
    handlers.remediate({"Records": findings_of(receive_all(sqs, stack["queue"]))})
    assert notices(stack) == []
    assert [row["reason"] for row in rt.ledger.results(again["run_id"]) if row["resource_id"] == "deploy-bot"] == [
        f"duplicate: this observation was already notified by run {pulled['run_id']}"]
    assert set(key_statuses(iam, "deploy-bot").values()) == {"Active"}  # notify-only: nothing was changed


def test_cli_plan_of_a_full_admin_policy_names_its_attachments(moto_aws, tmp_path: Path):
    iam = boto3.client("iam", region_name=REGION)
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="break-glass", PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    iam.create_user(UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn=arn)
    iam.create_group(GroupName="ops")
    iam.attach_group_policy(GroupName="ops", PolicyArn=arn)
    scoped = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    fine = iam.create_policy(PolicyName="storage", PolicyDocument=json.dumps(scoped))["Policy"]["Arn"]
    findings = [make_finding("IAM.1", "AwsIamPolicy", name, account_id=OWN, region=REGION, resource_arn=policy)
                .to_dict() for name, policy in (("break-glass", arn), ("storage", fine))]

    code, results = cli_json("plan", write_json(tmp_path / "findings.json", findings))

    assert code == 0
    notified, noop = results
    assert (notified["outcome"], noop["outcome"]) == ("notified", "noop")
    assert "attached to 2: user alice, group ops" in notified["reason"]
    assert f"aws iam detach-user-policy --user-name alice --policy-arn {arn}" in notified["reason"]
    assert f"aws iam detach-group-policy --group-name ops --policy-arn {arn}" in notified["reason"]
    assert any("user alice, group ops" in change for change in notified["changes"])
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 2  # plan changes nothing
