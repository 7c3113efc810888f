"""Faults in one account or one source, over a five-account org on moto: the rest of the run finishes, a retried
call succeeds when the fault clears, and what cannot be done ends `failed` with the error code and is done by
the next run (or the next SQS delivery). Every finding is counted exactly once in every run.

AWS faults are real error responses at the HTTP level (tests/faults.py), so botocore's standard retry mode
(AWS_TOTAL_ATTEMPTS = 5 attempts, the one retry layer for AWS calls) classifies and retries them as it would
AWS's. No test sleeps: every backoff is recorded and skipped.

fault (in one account, or one source)       what happens                                                   lost
------------------------------------------  -------------------------------------------------------------  ----
EC2 RequestLimitExceeded (503), 3 times     botocore retries; attempt 4 succeeds; all remediated              0
EC2 revoke RequestLimitExceeded, 3 times    botocore retries the write; attempt 4 succeeds                    0
STS Throttling (400) on AssumeRole, 3 times botocore retries; attempt 4 succeeds                              0
STS Throttling on AssumeRole, 8 times       botocore gives up after 5 attempts (no second layer): the         0
                                            account's findings `failed` "cannot assume …: Throttling", one
                                            AssumeRole per invocation; the redelivery remediates
EC2 RequestLimitExceeded, never clearing    that finding `failed` "cannot read current state:                 0
                                            RequestLimitExceeded: …" after 5 attempts; next run remediates
EC2 500 InternalError / 503, twice          botocore retries; attempt 3 succeeds                              0
Security Hub GetFindings 429                botocore retries; the pull gets every finding                     0
  TooManyRequestsException, 3 times
connection closed / read timeout, twice     botocore retries; attempt 3 succeeds                              0
connection closed, every attempt            the account's findings `failed` naming the connection error;      0
                                            next run remediates
AssumeRole AccessDenied (403)               the account's findings `skipped` "remediation role missing or     0
                                            refused …: AccessDenied"; one AssumeRole, not retried (its
                                            message is deleted); next run remediates
RevokeSecurityGroupIngress                  that finding `failed` "apply failed: UnauthorizedOperation: …",   0
  UnauthorizedOperation (403)               not retried, group untouched; next run remediates
session token expired mid-run (ExpiredToken one re-assume, the refused call is retried with the new           0
  / ExpiredTokenException / RequestExpired) credentials and succeeds
token refused again after the re-assume     `failed` "cannot read current state: ExpiredToken: …" (one        0
                                            re-assume per call, no loop); next run remediates
Netskope 429 / 500 / 503 (Retry-After: 0),  the wait is what Retry-After says; request 3 succeeds             0
  twice
Netskope drops the connection, twice        retried with backoff; request 3 succeeds                          0
Netskope failing on every attempt           the pull raises "still failing after 6 attempt(s): … HTTP 503"    0
                                            before emitting any finding; they stay in Netskope
Secrets Manager InternalServiceError /      after 3 attempts (the token cache's client keeps botocore's       0
  ServiceUnavailable on GetSecretValue      defaults) the Netskope pull raises "cannot read the Netskope
                                            token from secret '…': <code>" and calls nothing; the Security
                                            Hub pull enqueues every finding
Secrets Manager 503, twice                  botocore retries; the Netskope pull gets its token                0
SSM execution ends Failed / TimedOut        follow_up → `failed` "SSM execution … Failed: <message>"; the     0
                                            ledger frees the finding; the next run starts the runbook again
a transient one in the remediate Lambda     only that message is in batchItemFailures; its redelivery         0
                                            (after the fault) remediates
a permanent one in the remediate Lambda     recorded `failed`/`skipped` with its reason, the message deleted  0
  (UnauthorizedOperation, role refused)     (not in batchItemFailures, never in the DLQ); next run acts
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.stub import ANY, Stubber

from connectors.finding import Finding, FindingError
from connectors.netskope import NetskopeConnector, NetskopeError
from connectors.securityhub import SecurityHubConnector
from demo.fake_netskope import FakeNetskope
from functions.aws_lambda import handlers
from functions.engine.config import Config, config_from_dict
from functions.engine.engine import Engine
from functions.engine.ledger import LedgerGuard, SqliteLedger
from functions.engine.sessions import AWS_TOTAL_ATTEMPTS, CLIENT_CONFIG
from functions.model import Result
from functions.report import outcome_counts
from tests.e2e.test_handlers import asff_for
from tests.factories import make_finding
from tests.faults import (
    ACCOUNTS,
    ANY_OPERATION,
    CALLER,
    NETSKOPE_TOKEN,
    REGION,
    ROLE,
    FaultInjector,
    LambdaStack,
    Org,
    assumed_sessions,
    assuming,
    base_session,
    lambda_stack,
    netskope_violations,
    no_backoff,
    reassume_outside_remediators,
)

FAULTY = ACCOUNTS[2]
ENFORCE = config_from_dict({"mode": "enforce"})


@pytest.fixture
def waits(monkeypatch):
    return no_backoff(monkeypatch)


@pytest.fixture
def faults(waits, monkeypatch) -> FaultInjector:
    reassume_outside_remediators(monkeypatch)
    return FaultInjector()


@pytest.fixture
def org(moto_aws) -> Org:
    return Org()


def sg_finding(account: str, group: str) -> Finding:
    return make_finding("EC2.53", "AwsEc2SecurityGroup", group, account_id=account)


def ebs_finding(account: str) -> Finding:
    return make_finding("EC2.7", "AwsAccount", account, account_id=account)


def org_findings(org: Org) -> list[Finding]:
    """Two findings per account: its open security group, and EBS encryption by default off."""
    return [f for account, group in org.groups.items() for f in (sg_finding(account, group), ebs_finding(account))]


def run(findings: list[Finding], faults: FaultInjector, config: Config = ENFORCE,
        **kwargs) -> tuple[Engine, list[Result]]:
    """One engine run with the faults wired into every session; checks the run counted each finding once."""
    engine = Engine(config, assumed_sessions(faults), stage="apply", **kwargs)
    results = engine.run(findings)
    assert_counted_once(findings, results)
    return engine, results


def assert_counted_once(findings: list[Finding], results: list[Result]) -> None:
    assert len(results) == len(findings)
    assert [r.finding_id for r in results] == [f.finding_id for f in findings]
    assert len({r.finding_id for r in results}) == len(findings)
    assert sum(outcome_counts(results).values()) == len(findings)


def assert_all_remediated(org: Org, results: list[Result]) -> None:
    """Every result says remediated, and moto agrees."""
    assert [r.outcome for r in results] == ["remediated"] * len(results), [r.reason for r in results]
    assert org.still_open() == []
    assert all(org.ebs_encrypted_by_default(r.account_id) for r in results if r.rule_id == "EC2.7")


def assert_others_remediated(org: Org, results: list[Result], faulty: str = FAULTY) -> None:
    """The accounts without the fault finished: remediated, and moto agrees."""
    others = [r for r in results if r.account_id != faulty]
    assert {r.outcome for r in others} == {"remediated"}, [r.reason for r in others]
    assert org.still_open() in ([], [faulty])
    assert all(org.ebs_encrypted_by_default(account) for account in ACCOUNTS if account != faulty)


def rerun_after_the_fault_clears(org: Org, findings: list[Finding], faults: FaultInjector,
                                 first: list[Result]) -> None:
    """The next run, with the fault gone: what failed is remediated now, what was done is a noop."""
    faults.clear()
    _, again = run(findings, faults)
    expected = ["remediated" if r.outcome in ("failed", "skipped") else "noop" for r in first]
    assert [r.outcome for r in again] == expected, [r.reason for r in again]
    assert org.still_open() == []


# -- throttling and 5xx that clear while being retried -------------------------------------------------------

CLEARING = {
    # id: (session, operation, error code, times, when)
    "ec2-RequestLimitExceeded": (FAULTY, "ec2.DescribeSecurityGroups", "RequestLimitExceeded", 3, None),
    "ec2-revoke-RequestLimitExceeded": (FAULTY, "ec2.RevokeSecurityGroupIngress", "RequestLimitExceeded", 3, None),
    "sts-Throttling": (CALLER, "sts.AssumeRole", "Throttling", 3, assuming(FAULTY)),
    "ec2-500-InternalError": (FAULTY, "ec2.DescribeSecurityGroups", "InternalError", 2, None),
    "ec2-503-Unavailable": (FAULTY, "ec2.EnableEbsEncryptionByDefault", "Unavailable", 2, None),
}


@pytest.mark.parametrize("fault", CLEARING.values(), ids=CLEARING.keys())
def test_a_fault_that_clears_within_botocore_retries_loses_nothing(org, faults, waits, fault):
    session, operation, code, times, when = fault
    injected = faults.error(session, operation, code, times=times, when=when)
    _, results = run(org_findings(org), faults)
    assert_all_remediated(org, results)
    assert injected.injected == times
    unfaulted = len(ACCOUNTS) if session == CALLER else faults.count(ACCOUNTS[0], operation)  # a clean account
    assert faults.count(session, operation) == unfaulted + times
    assert len(waits.botocore) == times


def test_throttling_that_outlasts_botocore_fails_that_account_without_a_second_retry_layer(org, faults, waits):
    faults.error(CALLER, "sts.AssumeRole", "Throttling", times=8, when=assuming(FAULTY))
    findings = org_findings(org)
    engine, results = run(findings, faults)
    assert_others_remediated(org, results)
    expected = f"cannot assume arn:aws:iam::{FAULTY}:role/{ROLE}: Throttling"
    assert [(r.outcome, r.reason) for r in results if r.account_id == FAULTY] == [("failed", expected)] * 2
    faulty_attempts = faults.count(CALLER, "sts.AssumeRole") - (len(ACCOUNTS) - 1)
    assert faulty_attempts == AWS_TOTAL_ATTEMPTS == len(waits.botocore) + 1  # botocore's attempts, nothing on top
    assert engine.sessions.assume_role_calls == len(ACCOUNTS)  # the failure is remembered for the invocation


def test_throttling_that_never_clears_fails_that_finding_with_the_code(org, faults):
    faults.error(FAULTY, "ec2.DescribeSecurityGroups", "RequestLimitExceeded")
    findings = org_findings(org)
    _, results = run(findings, faults)
    assert_others_remediated(org, results)
    sg, ebs = (r for r in results if r.account_id == FAULTY)
    assert sg.outcome == "failed" and sg.reason.startswith("cannot read current state: RequestLimitExceeded: ")
    assert ebs.outcome == "remediated"  # another API of the same account is not throttled
    assert faults.count(FAULTY, "ec2.DescribeSecurityGroups") == AWS_TOTAL_ATTEMPTS  # botocore alone
    rerun_after_the_fault_clears(org, findings, faults, results)


def test_security_hub_throttling_is_retried_and_the_pull_gets_every_finding(org, faults, waits):
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=[asff_for(a, g, i) for i, (a, g) in enumerate(org.groups.items())])
    session = base_session()
    faults.hook(session, CALLER)
    faults.error(CALLER, "securityhub.GetFindings", "TooManyRequestsException", times=3)
    connector = SecurityHubConnector(session.client("securityhub", region_name=REGION, config=CLIENT_CONFIG))
    pulled = list(connector.fetch(["EC2.53"]))
    assert sorted(f.resource_id for f in pulled) == sorted(org.groups.values())
    assert faults.count(CALLER, "securityhub.GetFindings") == 4 and len(waits.botocore) == 3
    _, results = run(pulled, faults)
    assert_all_remediated(org, results)


# -- connection errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("error", [ConnectionClosedError, ReadTimeoutError])
def test_a_dropped_connection_is_retried(org, faults, error):
    faults.connection_error(FAULTY, "ec2.RevokeSecurityGroupIngress", error, times=2)
    _, results = run(org_findings(org), faults)
    assert_all_remediated(org, results)
    assert faults.count(FAULTY, "ec2.RevokeSecurityGroupIngress") == 3


def test_a_connection_that_never_comes_back_fails_that_account_clearly(org, faults):
    faults.connection_error(FAULTY, ANY_OPERATION, ConnectionClosedError)
    findings = org_findings(org)
    _, results = run(findings, faults)
    assert_others_remediated(org, results)
    for result in (r for r in results if r.account_id == FAULTY):
        assert result.outcome == "failed" and result.error == "ConnectionClosedError"
        assert result.reason.startswith("cannot read current state: Connection was closed before we received")
    rerun_after_the_fault_clears(org, findings, faults, results)


# -- access denied -------------------------------------------------------------------------------------------

def test_access_denied_on_assume_role_fails_that_account_only(org, faults):
    faults.error(CALLER, "sts.AssumeRole", "AccessDenied", when=assuming(FAULTY))
    findings = org_findings(org)
    engine, results = run(findings, faults)
    assert_others_remediated(org, results)
    expected = (f"remediation role missing or refused in that account: cannot assume "
                f"arn:aws:iam::{FAULTY}:role/{ROLE}: AccessDenied")
    assert [(r.outcome, r.reason) for r in results if r.account_id == FAULTY] == [("skipped", expected)] * 2
    assert engine.sessions.assume_role_calls == len(ACCOUNTS)  # remembered for the run, not retried per finding
    assert faults.count(CALLER, "sts.AssumeRole") == len(ACCOUNTS)  # and not retried: access denied is final
    rerun_after_the_fault_clears(org, findings, faults, results)


def test_access_denied_on_one_api_fails_that_finding_and_changes_nothing(org, faults):
    faults.error(FAULTY, "ec2.RevokeSecurityGroupIngress", "UnauthorizedOperation")
    findings = org_findings(org)
    _, results = run(findings, faults)
    assert_others_remediated(org, results)
    sg, ebs = (r for r in results if r.account_id == FAULTY)
    assert sg.outcome == "failed" and sg.reason.startswith("apply failed: UnauthorizedOperation: ")
    assert ebs.outcome == "remediated"
    assert faults.count(FAULTY, "ec2.RevokeSecurityGroupIngress") == 1  # not retried
    assert org.ssh_open(FAULTY)  # the refused call changed nothing
    rerun_after_the_fault_clears(org, findings, faults, results)


# -- expired credentials -------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_a_session_that_expires_mid_run_is_re_assumed_once(org, faults, code):
    expiry = faults.expire_session(FAULTY, after=2, code=code)  # the SG's describe and revoke go through
    engine, results = run(org_findings(org), faults)
    assert_all_remediated(org, results)
    assert expiry.injected == 1  # one refusal: re-assumed, and the call retried with the new credentials
    assert engine.sessions.assume_role_calls == len(ACCOUNTS) + 1


def test_a_token_refused_even_after_re_assuming_fails_with_the_code(org, faults):
    faults.error(FAULTY, ANY_OPERATION, "ExpiredToken")
    findings = org_findings(org)
    engine, results = run(findings, faults)
    assert_others_remediated(org, results)
    for result in (r for r in results if r.account_id == FAULTY):
        assert result.outcome == "failed" and result.reason.startswith("cannot read current state: ExpiredToken: ")
    assert engine.sessions.assume_role_calls == len(ACCOUNTS) + 2  # one re-assume per refused call, no loop
    rerun_after_the_fault_clears(org, findings, faults, results)


# -- SSM Automation ------------------------------------------------------------------------------------------

EXECUTION_IDS = ("0b6b7c1d-1111-2222-3333-444455556666", "0b6b7c1d-1111-2222-3333-777788889999")


def start_response(stub: Stubber, execution_id: str) -> None:
    expected = {"DocumentName": "AWSConfigRemediation-EnableCloudTrailLogFileValidation", "Parameters": ANY,
                "ClientToken": ANY, "Tags": ANY}
    stub.add_response("start_automation_execution", {"AutomationExecutionId": execution_id}, expected)


@pytest.mark.stubber  # moto does not implement SSM Automation: the ssm client of the target account is stubbed
@pytest.mark.parametrize("status", ["Failed", "TimedOut"])
def test_a_runbook_that_ends_badly_is_failed_with_its_reason_and_started_again_next_run(org, faults, tmp_path, status):
    config = config_from_dict({"mode": "enforce", "rules": {"CloudTrail.4": {"mode": "enforce", "executor": "ssm"}}})
    ledger = SqliteLedger(tmp_path / "ledger.db")
    engine = Engine(config, assumed_sessions(faults), stage="apply", guard=LedgerGuard(ledger), on_result=ledger.record)
    target = engine.sessions.target(FAULTY, REGION)
    target.client("s3").create_bucket(Bucket="trail-logs")
    target.client("cloudtrail").create_trail(Name="main", S3BucketName="trail-logs")
    trail = make_finding("CloudTrail.4", "AwsCloudTrailTrail", "main", account_id=FAULTY)
    findings = [*org_findings(org), trail]
    failure = "Step fails when it is Executing. Fail reason: AccessDenied on cloudtrail:UpdateTrail."
    first, second = EXECUTION_IDS
    with Stubber(target.client("ssm")) as ssm:
        start_response(ssm, first)
        ssm.add_response("get_automation_execution", {"AutomationExecution": {
            "AutomationExecutionId": first, "AutomationExecutionStatus": status, "FailureMessage": failure}},
            {"AutomationExecutionId": first})
        results = engine.run(findings)
        assert_counted_once(findings, results)
        assert [r.outcome for r in results] == ["remediated"] * 10 + ["started"]
        followed = engine.follow_up(trail, first)  # what the delayed "status" message does
        ssm.assert_no_pending_responses()
    assert followed is not None and followed.outcome == "failed"
    assert followed.reason == f"SSM execution {first} {status}: {failure}"
    ledger.record(followed)  # as the remediate Lambda records a follow-up: the finding is free again

    again = Engine(config, assumed_sessions(faults), stage="apply", guard=LedgerGuard(ledger))
    with Stubber(again.sessions.target(FAULTY, REGION).client("ssm")) as ssm:
        start_response(ssm, second)
        (result,) = again.run([trail])
    assert (result.outcome, result.execution_id) == ("started", second)


# -- Netskope ------------------------------------------------------------------------------------------------

def pull(url: str, sleeps: list[float]) -> tuple[NetskopeConnector, list[Finding | FindingError]]:
    connector = NetskopeConnector(url, NETSKOPE_TOKEN, sleep=sleeps.append)
    return connector, list(connector.fetch())


class DroppingNetskope(FakeNetskope):
    """FakeNetskope that reads the first `drop_first` requests and closes the connection without an answer
    (what a client sees of a reset or a load balancer dropping it)."""

    def __init__(self, *args, drop_first: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.drop_first = drop_first

    def handle(self, *args, **kwargs):
        with self._lock:
            drop, self.drop_first = self.drop_first > 0, self.drop_first - 1
        if drop:
            raise ConnectionAbortedError("dropped by the fault suite")
        return super().handle(*args, **kwargs)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_netskope_errors_that_clear_are_retried_honouring_retry_after(org, faults, status):
    sleeps: list[float] = []
    with FakeNetskope(netskope_violations(org.groups), NETSKOPE_TOKEN, fail_first=2, fail_status=status) as fake:
        connector, pulled = pull(fake.url, sleeps)
    assert connector.requests_made == 4 and len(fake.requests) == 4  # 2 failures, the page, the empty page
    assert sleeps == [0.0, 0.0]  # the fake sends Retry-After: 0, and the connector waits what it says
    _, results = run(pulled, faults)
    assert_all_remediated(org, results)


def test_a_dropped_netskope_connection_is_retried(org, faults):
    sleeps: list[float] = []
    with DroppingNetskope(netskope_violations(org.groups), NETSKOPE_TOKEN, drop_first=2) as fake:
        connector, pulled = pull(fake.url, sleeps)
    assert connector.requests_made == 4 and len(sleeps) == 2  # 2 dropped, the page, the empty page
    assert sorted(f.resource_id for f in pulled) == sorted(org.groups.values())


def test_netskope_down_for_longer_than_the_retries_fails_the_pull_before_any_finding():
    sleeps: list[float] = []
    pulled: list[Finding | FindingError] = []
    groups = {account: "sg-0123456789abcdef0" for account in ACCOUNTS}
    with FakeNetskope(netskope_violations(groups), NETSKOPE_TOKEN, fail_first=100, fail_status=503) as fake:
        connector = NetskopeConnector(fake.url, NETSKOPE_TOKEN, sleep=sleeps.append)
        with pytest.raises(NetskopeError, match=r"still failing after 6 attempt\(s\): Netskope API HTTP 503"):
            pulled.extend(connector.fetch())
    assert pulled == [] and connector.requests_made == 6 and len(sleeps) == 5


# -- through the Lambdas: Secrets Manager, batchItemFailures --------------------------------------------------

@pytest.fixture
def lambdas(org, faults, monkeypatch) -> Iterator[LambdaStack]:
    with lambda_stack(org, monkeypatch, faults) as stack:
        yield stack


@pytest.mark.parametrize("code", ["InternalServiceError", "ServiceUnavailable"])
def test_secrets_manager_down_fails_the_netskope_pull_clearly_and_not_the_security_hub_pull(lambdas, faults, code):
    faults.error(CALLER, "secrets-manager.GetSecretValue", code)
    with pytest.raises(handlers.PullIncomplete,
                       match=rf"^pull failed for netskope: cannot read the Netskope token from secret "
                             rf"'netskope-token': {code} — "):
        handlers.pull({"source": "netskope"})
    # The token cache's client keeps botocore's default retries (3 attempts), not CLIENT_CONFIG's 5.
    assert faults.count(CALLER, "secrets-manager.GetSecretValue") == 3
    assert lambdas.netskope.requests == []  # never called without a token
    assert lambdas.finding_records() == []  # nothing half-enqueued: the violations wait in Netskope

    assert handlers.pull({"source": "securityhub"})["enqueued"] == len(ACCOUNTS)
    assert len(lambdas.finding_records()) == len(ACCOUNTS)


def test_secrets_manager_errors_that_clear_are_retried(lambdas, faults):
    faults.error(CALLER, "secrets-manager.GetSecretValue", "ServiceUnavailable", times=2)
    assert handlers.pull({"source": "netskope"})["enqueued"] == len(ACCOUNTS)
    assert faults.count(CALLER, "secrets-manager.GetSecretValue") == 3


TRANSIENT_LAMBDA_FAULTS = {  # never clearing while the invocation runs: botocore's attempts are used up
    "revoke-RequestLimitExceeded": (FAULTY, "ec2.RevokeSecurityGroupIngress", "RequestLimitExceeded", None),
    "assume-role-Throttling": (CALLER, "sts.AssumeRole", "Throttling", assuming(FAULTY)),
}


@pytest.mark.parametrize("fault", TRANSIENT_LAMBDA_FAULTS.values(), ids=TRANSIENT_LAMBDA_FAULTS.keys())
def test_a_transient_failure_in_the_lambda_comes_back_alone_and_its_redelivery_remediates(lambdas, org, faults,
                                                                                           fault):
    session, operation, code, when = fault
    faults.error(session, operation, code, when=when)
    run_id = handlers.pull({"source": "securityhub"})["run_id"]
    records = lambdas.finding_records()
    response = handlers.remediate({"Records": records})
    faulty = [r["messageId"] for r in records if json.loads(r["body"])["finding"]["account_id"] == FAULTY]
    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == faulty
    assert org.still_open() == [FAULTY]
    rows = {row["account_id"]: row for row in lambdas.rt.ledger.results(run_id)}
    assert len(rows) == len(ACCOUNTS) and rows[FAULTY]["outcome"] == "failed" and code in rows[FAULTY]["reason"]

    faults.clear()  # SQS redelivers the failed message after its visibility timeout
    redelivered = [r for r in records if r["messageId"] in faulty]
    assert handlers.remediate({"Records": redelivered}) == {"batchItemFailures": []}
    assert org.still_open() == []
    outcomes = [row["outcome"] for row in lambdas.rt.ledger.results(run_id)]
    assert outcomes == ["remediated"] * len(ACCOUNTS)


PERMANENT_LAMBDA_FAULTS = {  # a redelivery could only fail the same way
    "revoke-UnauthorizedOperation": (FAULTY, "ec2.RevokeSecurityGroupIngress", "UnauthorizedOperation", None,
                                     "failed"),
    "assume-role-AccessDenied": (CALLER, "sts.AssumeRole", "AccessDenied", assuming(FAULTY), "skipped"),
}


@pytest.mark.parametrize("fault", PERMANENT_LAMBDA_FAULTS.values(), ids=PERMANENT_LAMBDA_FAULTS.keys())
def test_a_permanent_failure_in_the_lambda_is_recorded_and_its_message_deleted(lambdas, org, faults, fault):
    session, operation, code, when, outcome = fault
    faults.error(session, operation, code, when=when)
    run_id = handlers.pull({"source": "securityhub"})["run_id"]
    response = handlers.remediate({"Records": lambdas.finding_records()})
    assert response == {"batchItemFailures": []}  # acknowledged: never cycled into the DLQ
    assert org.still_open() == [FAULTY]
    rows = {row["account_id"]: row for row in lambdas.rt.ledger.results(run_id)}
    assert rows[FAULTY]["outcome"] == outcome and code in rows[FAULTY]["reason"]
    assert {row["outcome"] for account, row in rows.items() if account != FAULTY} == {"remediated"}
