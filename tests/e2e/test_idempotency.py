"""The same finding delivered twice — two concurrent workers, schedule + event, SQS redelivery — gives one action.

Two engines race on the same findings in five accounts (moto), sharing the ledger the way Lambda workers do.
To make the race the worst case every time rather than now and then, a `Rendezvous` guard holds each engine
right before it asks the ledger for a finding's claim until the other engine gets there too: both have read
the resource as non-compliant, both want to act, and only the ledger's conditional write decides. Writes are
counted per API operation by each engine's AssumedSessions (api_calls).

moto's in-process backends have no locks: it applies a DynamoDB conditional write as check-then-write, so two
threads can both pass the check, and an EC2 describe racing a revoke can fail inside moto. AWS applies each
request atomically; `faults.serialized_moto` restores that (moto answers one request at a time, the workers
still interleave between requests), so the tests check the ledger's condition expressions and the engine's
claims, not moto's locking.

"a ledger each" on SQLite is two connections on one file, each shared by several engine threads: it found
SqliteLedger reading its cursors outside its lock, which made a claim fail with "database is locked" now and
then (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not wait out).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from connectors.finding import Finding
from functions.aws_lambda import handlers
from functions.engine import engine as engine_module
from functions.engine.config import config_from_dict
from functions.engine.engine import ActionGuard, Engine
from functions.engine.ledger import DynamoDbLedger, Ledger, LedgerGuard, SqliteLedger, create_table
from functions.model import Result
from tests.e2e.test_handlers import asff_for
from tests.factories import make_finding
from tests.faults import LEDGER_TABLE, REGION, LambdaStack, Org, assumed_sessions, lambda_stack, serialized_moto

ENFORCE = config_from_dict({"mode": "enforce"})
WRITES = ("ec2.RevokeSecurityGroupIngress", "ec2.EnableEbsEncryptionByDefault")


class Rendezvous:
    """An ActionGuard around a real one: a worker about to claim a finding waits until `parties` workers are
    about to claim the same resource, then they all ask at once."""

    def __init__(self, guard_for: Callable[[str], ActionGuard], parties: int = 2) -> None:
        self._guard_for = guard_for  # run id → the guard that worker uses
        self._barriers: dict[tuple[str, str, str, str], threading.Barrier] = defaultdict(
            lambda: threading.Barrier(parties, timeout=30)
        )
        self._lock = threading.Lock()

    def acquire(self, finding: Finding, run_id: str) -> str | None:
        with self._lock:
            barrier = self._barriers[finding.resource_key]
        barrier.wait()
        return self._guard_for(run_id).acquire(finding, run_id)

    def finish(self, finding: Finding, result: Result) -> None:
        self._guard_for(result.run_id).finish(finding, result)

    def release(self, finding: Finding) -> None:
        raise AssertionError("finish never fails here")


@pytest.fixture
def org(moto_aws, monkeypatch) -> Org:
    serialized_moto(monkeypatch)
    return Org()


@pytest.fixture(params=["sqlite", "dynamodb"])
def new_ledger(request, tmp_path, org) -> Iterator[Callable[[], Ledger]]:
    """A factory of ledgers on one store: each call is another worker's (another process's) view of it."""
    made: list[Ledger] = []
    if request.param == "sqlite":
        def make() -> Ledger:
            made.append(SqliteLedger(tmp_path / "ledger.db"))
            return made[-1]
    else:
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, LEDGER_TABLE)

        def make() -> Ledger:
            made.append(DynamoDbLedger(LEDGER_TABLE, client=client))
            return made[-1]
    yield make
    for ledger in made:
        ledger.close()


def org_findings(org: Org) -> list[Finding]:
    return [f for account, group in org.groups.items() for f in (
        make_finding("EC2.53", "AwsEc2SecurityGroup", group, account_id=account, last_observed="2026-11-22T23:41:17Z"),
        make_finding("EC2.7", "AwsAccount", account, account_id=account, last_observed="2026-11-22T23:41:17Z"),
    )]


def race(engines: list[Engine], findings: list[Finding]) -> list[list[Result]]:
    """Run every engine on the same findings at the same time; their results, in engine order."""
    start = threading.Barrier(len(engines))

    def run(engine: Engine) -> list[Result]:
        start.wait()
        return engine.run(findings)

    with ThreadPoolExecutor(len(engines)) as pool:
        return list(pool.map(run, engines))


def writes(engines: list[Engine]) -> dict[str, int]:
    return {operation: sum(e.sessions.api_calls[operation] for e in engines) for operation in WRITES}


@pytest.mark.parametrize("sharing", ["one guard", "a ledger each"])
def test_two_workers_at_the_same_moment_act_once_per_resource(org, new_ledger, sharing):
    """Two workers (threads of one process sharing a guard, or two Lambda containers each with its own ledger
    connection/client on the same file or table) want to act on the same resources at the same moment."""
    if sharing == "one guard":
        guards = dict.fromkeys(("worker-1", "worker-2"), LedgerGuard(new_ledger()))
    else:
        guards = {run_id: LedgerGuard(new_ledger()) for run_id in ("worker-1", "worker-2")}
    rendezvous = Rendezvous(guards.__getitem__)
    engines = [Engine(ENFORCE, assumed_sessions(), stage="apply", run_id=run_id, guard=rendezvous) for run_id in guards]
    findings = org_findings(org)
    runs = race(engines, findings)
    for index in range(len(findings)):
        assert sorted(run[index].outcome for run in runs) == ["remediated", "skipped"]
        skipped = next(run[index] for run in runs if run[index].outcome == "skipped")
        assert skipped.reason.startswith("duplicate: this observation is "), skipped.reason
    assert writes(engines) == dict.fromkeys(WRITES, len(org.groups))
    assert org.still_open() == []


def test_two_workers_racing_freely_act_once_per_resource(org, new_ledger):
    """No rendezvous: whoever comes second sees the claim (skipped) or the fixed resource (noop)."""
    guard = LedgerGuard(new_ledger())
    engines = [Engine(ENFORCE, assumed_sessions(), stage="apply", guard=guard) for _ in range(2)]
    findings = org_findings(org)
    runs = race(engines, findings)
    for index in range(len(findings)):
        outcomes = sorted(run[index].outcome for run in runs)
        assert outcomes in (["remediated", "skipped"], ["noop", "remediated"]), outcomes
    assert writes(engines) == dict.fromkeys(WRITES, len(org.groups))
    assert org.still_open() == []


# -- through the Lambdas --------------------------------------------------------------------------------

@pytest.fixture
def lambdas(org, monkeypatch) -> Iterator[LambdaStack]:
    with lambda_stack(org, monkeypatch) as stack:
        yield stack


def imported_event(org: Org) -> dict[str, Any]:
    """Security Hub's "Findings - Imported" event for the findings the scheduled pull also reads."""
    findings = [asff_for(account, group, n) for n, (account, group) in enumerate(org.groups.items())]
    return {"version": "0", "source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
            "region": REGION, "detail": {"findings": findings}}


def remediate_at_once(batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Two remediate invocations at the same time (two Lambda instances on the one queue)."""
    start = threading.Barrier(len(batches))

    def invoke(records: list[dict[str, Any]]) -> dict[str, Any]:
        start.wait()
        return handlers.remediate({"Records": records})

    with ThreadPoolExecutor(len(batches)) as pool:
        return list(pool.map(invoke, batches))


def bodies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(r["body"])["finding"] for r in records]


def test_schedule_and_event_for_the_same_finding_give_one_action(lambdas, org):
    handlers.pull({"source": "securityhub"})
    scheduled = lambdas.finding_records()
    assert handlers.events(imported_event(org))["enqueued"] == len(org.groups)
    from_event = lambdas.finding_records()
    assert sorted(f["finding_id"] for f in bodies(scheduled)) == sorted(f["finding_id"] for f in bodies(from_event))

    assert handlers.remediate({"Records": scheduled}) == {"batchItemFailures": []}
    assert handlers.remediate({"Records": from_event}) == {"batchItemFailures": []}
    assert lambdas.rt.sessions.api_calls["ec2.RevokeSecurityGroupIngress"] == len(org.groups)
    assert org.still_open() == []
    for finding in bodies(scheduled):  # the event's run found the resource fixed: it reads before it writes
        outcomes = sorted(row["outcome"] for row in lambdas.rt.ledger.find(finding["finding_id"]))
        assert outcomes == ["noop", "remediated"], outcomes


@pytest.mark.parametrize("second", ["event", "sqs-redelivery"])
def test_two_deliveries_remediated_at_the_same_moment_give_one_action(lambdas, org, monkeypatch, second):
    guard = LedgerGuard(lambdas.rt.ledger)
    rendezvous = Rendezvous(lambda run_id: guard)
    # Every remediate engine meets here (the engine claims through its ledger's guard, and settles by recording).
    monkeypatch.setattr(engine_module, "LedgerGuard", lambda ledger: rendezvous)
    handlers.pull({"source": "securityhub"})
    scheduled = lambdas.finding_records()
    if second == "event":
        handlers.events(imported_event(org))
        other = lambdas.finding_records()
    else:  # the visibility timeout ran out while the first worker still held the batch
        other = [{**record, "receiptHandle": record["receiptHandle"] + "-2"} for record in scheduled]

    responses = remediate_at_once([scheduled, other])
    assert responses == [{"batchItemFailures": []}] * 2
    assert lambdas.rt.sessions.api_calls["ec2.RevokeSecurityGroupIngress"] == len(org.groups)
    assert org.still_open() == []
    for finding in bodies(scheduled):
        outcomes = [row["outcome"] for row in lambdas.rt.ledger.find(finding["finding_id"])]
        assert outcomes.count("remediated") == 1, outcomes
        # A redelivery is the same run: its row keeps the action, a duplicate never hides it.
        assert sorted(outcomes) == (["remediated", "skipped"] if second == "event" else ["remediated"])
