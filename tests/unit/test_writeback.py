"""Security Hub write-back. moto does not implement BatchUpdateFindings: botocore Stubber checks every request
against the service model and against the exact body we expect."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.aws_lambda.writeback import (
    NOTE_MAX_CHARS,
    UPDATED_BY,
    SecurityHubWriteBack,
    note_text,
    update_for,
)
from functions.model import Result
from tests.factories import make_finding

PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/securityhub"
RUN = "20240501T100000Z-abcd1234"

pytestmark = pytest.mark.stubber


@pytest.fixture
def securityhub():
    client = boto3.client("securityhub", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def finding(n: int = 0, product_arn: str | None = PRODUCT):
    return make_finding("EC2.53", "AwsEc2SecurityGroup", f"sg-{n:05d}", product_arn=product_arn)


def result(f, outcome: str, reason: str = "", **extra: Any) -> Result:
    return Result(
        finding_id=f.finding_id, source=f.source, rule_id=f.rule_id, account_id=f.account_id, region=f.region,
        resource_type=f.resource_type, resource_id=f.resource_id, outcome=outcome, reason=reason or outcome,
        run_id=RUN, **extra,
    )


def identifiers(findings) -> list[dict[str, str]]:
    return [{"Id": f.finding_id, "ProductArn": PRODUCT} for f in findings]


def request(findings, note: str, status: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "FindingIdentifiers": identifiers(findings),
        "Note": {"Text": note, "UpdatedBy": UPDATED_BY},
    }
    if status:
        body["Workflow"] = {"Status": status}
    return body


def processed(findings, unprocessed=(), code: str = "ConcurrentUpdateError") -> dict[str, Any]:
    return {
        "ProcessedFindings": identifiers(findings),
        "UnprocessedFindings": [
            {"FindingIdentifier": i, "ErrorCode": code, "ErrorMessage": "try again"} for i in identifiers(unprocessed)
        ],
    }


def writeback(client, **kwargs: Any) -> tuple[SecurityHubWriteBack, list[float]]:
    slept: list[float] = []
    return SecurityHubWriteBack(client, sleep=slept.append, clock=lambda: 0.0, **kwargs), slept


NOOP_NOTE = f"Already compliant: no change made [{UPDATED_BY} run {RUN}]"


def test_250_identical_updates_go_in_three_requests(securityhub):
    client, stub = securityhub
    findings = [finding(n) for n in range(250)]
    for part in (findings[:100], findings[100:200], findings[200:]):
        stub.add_response("batch_update_findings", processed(part), request(part, NOOP_NOTE))
    sender, slept = writeback(client)
    for f in findings:
        sender.add(f, result(f, "noop"))
    report = sender.flush()
    assert (report.requests, report.updated, report.failed) == (3, 250, [])
    assert slept == [0.1, 0.1]  # paced to 10 requests/s


def test_status_policy_and_grouping(securityhub):
    client, stub = securityhub
    fixed, started, planned = finding(1), finding(2), finding(3)
    fixed_note = f"Remediated: revoke 0.0.0.0/0:22 [{UPDATED_BY} run {RUN}]"
    started_note = f"Remediation started: started AWS-X (execution e-1) [{UPDATED_BY} run {RUN}]"
    planned_note = f"Planned: dry-run: would revoke [{UPDATED_BY} run {RUN}]"
    stub.add_response("batch_update_findings", processed([fixed]), request([fixed], fixed_note, "RESOLVED"))
    stub.add_response("batch_update_findings", processed([started]), request([started], started_note, "NOTIFIED"))
    stub.add_response("batch_update_findings", processed([planned]), request([planned], planned_note))
    sender, _ = writeback(client)
    sender.add(fixed, result(fixed, "remediated", "x", changes=["revoke 0.0.0.0/0:22"]))
    sender.add(started, result(started, "started", "started AWS-X (execution e-1)"))
    sender.add(planned, result(planned, "planned", "dry-run: would revoke"))
    assert sender.flush().updated == 3


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("remediated", "RESOLVED"), ("started", "NOTIFIED"), ("noop", None), ("planned", None), ("skipped", None),
     ("excluded", None), ("failed", None), ("notified", None)],
)
def test_only_actions_change_the_workflow_status(outcome, status):
    assert update_for(result(finding(), outcome, "why")).status == status


def test_a_duplicate_result_does_not_overwrite_the_action(securityhub):
    client, stub = securityhub
    f = finding()
    note = f"Remediated: fixed [{UPDATED_BY} run {RUN}]"
    stub.add_response("batch_update_findings", processed([f]), request([f], note, "RESOLVED"))
    sender, _ = writeback(client)
    sender.add(f, result(f, "remediated", "fixed"))
    sender.add(f, result(f, "skipped", "duplicate: finding was delivered twice"))
    assert sender.flush().updated == 1


def test_unprocessed_findings_are_retried_until_they_succeed(securityhub):
    client, stub = securityhub
    findings = [finding(n) for n in range(5)]
    stub.add_response("batch_update_findings", processed(findings[:3], findings[3:]), request(findings, NOOP_NOTE))
    stub.add_response("batch_update_findings", processed([], findings[3:]), request(findings[3:], NOOP_NOTE))
    stub.add_response("batch_update_findings", processed(findings[3:]), request(findings[3:], NOOP_NOTE))
    sender, slept = writeback(client)
    for f in findings:
        sender.add(f, result(f, "noop"))
    report = sender.flush()
    assert (report.requests, report.updated, report.failed) == (3, 5, [])
    assert len(slept) == 4 and all(0 <= s <= 10 for s in slept)  # 2 backoffs + 2 paces


def test_permanent_failures_are_reported(securityhub):
    client, stub = securityhub
    gone, busy, fine = finding(1), finding(2), finding(3)
    stub.add_response("batch_update_findings", {
        "ProcessedFindings": [{"Id": fine.finding_id, "ProductArn": PRODUCT}],
        "UnprocessedFindings": [
            {"FindingIdentifier": {"Id": gone.finding_id, "ProductArn": PRODUCT}, "ErrorCode": "FindingNotFound",
             "ErrorMessage": "no such finding"},
            {"FindingIdentifier": {"Id": busy.finding_id, "ProductArn": PRODUCT},
             "ErrorCode": "ConcurrentUpdateError", "ErrorMessage": "busy"},
        ],
    }, request([gone, busy, fine], NOOP_NOTE))
    stub.add_response("batch_update_findings", processed([], [busy]), request([busy], NOOP_NOTE))
    sender, _ = writeback(client, max_attempts=2)
    for f in (gone, busy, fine):
        sender.add(f, result(f, "noop"))
    report = sender.flush()
    assert report.updated == 1
    assert [(u.finding_id, u.error_code) for u in report.failed] == [
        (gone.finding_id, "FindingNotFound"), (busy.finding_id, "ConcurrentUpdateError")]


def test_a_rejected_request_fails_its_findings_and_the_others_go_on(securityhub):
    client, stub = securityhub
    denied, fine = finding(1), finding(2)
    stub.add_client_error("batch_update_findings", "AccessDeniedException", "not allowed",
                          expected_params=request([denied], NOOP_NOTE))
    failed_note = f"Remediation failed: boom [{UPDATED_BY} run {RUN}]"
    stub.add_response("batch_update_findings", processed([fine]), request([fine], failed_note))
    sender, _ = writeback(client)
    sender.add(denied, result(denied, "noop"))
    sender.add(fine, result(fine, "failed", "boom"))
    report = sender.flush()
    assert report.updated == 1
    assert [(u.finding_id, u.error_code) for u in report.failed] == [(denied.finding_id, "AccessDeniedException")]


def test_a_request_the_client_gave_up_on_is_reported_not_retried_again(securityhub):
    """Throttling is retried by the client's standard mode (tests/unit/test_retry_config.py); the Stubber answers
    before that layer, so this is the write-back alone: one request, no second retry layer, the failure reported."""
    client, stub = securityhub
    f = finding()
    stub.add_client_error("batch_update_findings", "TooManyRequestsException", expected_params=request([f], NOOP_NOTE))
    sender, slept = writeback(client)
    sender.add(f, result(f, "noop"))
    report = sender.flush()
    assert report.requests == 1 and report.updated == 0 and slept == []
    assert [u.error_code for u in report.failed] == ["TooManyRequestsException"]


def test_findings_of_other_sources_are_ignored(securityhub):
    client, _ = securityhub
    sender, _ = writeback(client)
    netskope = finding(product_arn=None)
    assert sender.add(netskope, result(netskope, "remediated")) is False
    report = sender.flush()  # the stubber would fail on any call
    assert (report.requests, report.ignored) == (0, 1)


def test_result_of_another_finding_is_refused(securityhub):
    sender, _ = writeback(securityhub[0])
    with pytest.raises(ValueError, match="given for finding"):
        sender.add(finding(1), result(finding(2), "noop"))


def test_long_notes_are_cut_inside_the_detail_and_stay_valid(securityhub):
    client, stub = securityhub
    f = finding()
    long_reason = "apply failed: " + "x" * 2000
    note = update_for(result(f, "failed", long_reason)).note
    assert len(note) == NOTE_MAX_CHARS
    assert note.startswith("Remediation failed: apply failed: xxx") and note.endswith(f"x… [{UPDATED_BY} run {RUN}]")
    stub.add_response("batch_update_findings", processed([f]), request([f], note))
    sender, _ = writeback(client)
    sender.add(f, result(f, "failed", long_reason))
    assert sender.flush().updated == 1


def test_notes_are_one_line_and_mask_secret_looking_values():
    note = note_text("Remediation failed", "token=abc123\nkey AKIAABCDEFGHIJKLMNOP password: hunter2", "r")
    assert note == "Remediation failed: token=[redacted] key [redacted] password: [redacted] [cspm-remediation run r]"
    assert note_text("Planned", "", "") == "Planned: -"
