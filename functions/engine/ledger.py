"""What was done per finding: claims that make duplicate deliveries act once, and the outcome of every attempt.

One interface, two backends: DynamoDB in AWS, SQLite locally (the shape of Powertools' idempotency
persistence layer). Two kinds of record share one store:

* a **claim** per idempotency key: ``in_flight`` while a worker acts, then ``completed`` (an action was taken:
  ``remediated``/``started``/``notified``) or ``released`` (nothing was taken, or it failed: a later run may
  retry). ``claim`` is a conditional write, so of any number of concurrent claimants exactly one wins.
* a **result** per (run id, finding id): the full Result (pre_state, changes, execution id, reason) and when it was
  recorded, listed by run id (rollback, reports) or by finding id.
* **run state** shared by every invocation working on one run: the circuit breaker's counters per (run, rule) and
  (run, account), reserved atomically on both or neither (``reserve``), and a mark per tripped limit so it is
  reported once (``first_trip``). They expire like results.

Expiry: an in-flight claim older than its ``ttl_seconds`` lease is abandoned (the worker died) and may be
re-claimed; a completed claim blocks its key for ``hold_seconds`` and then lapses (a very late redelivery acts
again, and finds the resource compliant: remediators check before they write). Results are kept for
``retention_seconds``. Ownership: only the thread that claimed a key settles it with ``record``/``release``;
a duplicate that lost the claim can still ``record`` its own result without touching the winner's claim.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.engine.sessions import CLIENT_CONFIG
from functions.model import Result

IN_FLIGHT, COMPLETED, RELEASED = "in_flight", "completed", "released"
RULE_LIMIT, ACCOUNT_LIMIT = "rule", "account"  # the circuit breaker's limits, as ``reserve`` names them
# Outcomes that took an action on the finding: a duplicate of the same observation must not repeat them.
ACTION_OUTCOMES = frozenset({"remediated", "started", "notified"})

DEFAULT_CLAIM_TTL = 900  # seconds: at least the Lambda timeout, so a live worker is never taken over
DEFAULT_HOLD = 24 * 3600
DEFAULT_RETENTION = 90 * 24 * 3600
RESERVE_ATTEMPTS = 8  # a DynamoDB reservation cancelled by contention (TransactionConflict) is tried this often

RUN_INDEX = "run_id-index"
FINDING_INDEX = "finding_id-index"
TTL_ATTRIBUTE = "expires_at"

# The DynamoDB table the CloudFormation stack creates (property names as in AWS::DynamoDB::Table).
# Claims are items "claim#<key>"; results are items "result#<run_id>#<finding_id>" and alone carry run_id and
# finding_id, so the two GSIs are sparse and hold results only. Run state: counters "breaker#<run>#<limit>#<name>"
# (attribute n) and marks "tripped#<run>#<limit>#<name>".
TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "run_id", "AttributeType": "S"},
        {"AttributeName": "finding_id", "AttributeType": "S"},
        {"AttributeName": "recorded_at", "AttributeType": "N"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": attribute, "KeyType": "HASH"},
                {"AttributeName": "recorded_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for index, attribute in ((RUN_INDEX, "run_id"), (FINDING_INDEX, "finding_id"))
    ],
    "BillingMode": "PAY_PER_REQUEST",
    "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
}


class Observed(Protocol):
    """What a key is made of: a Finding (or anything shaped like one; ``last_observed`` is optional)."""

    @property
    def rule_id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def resource_id(self) -> str: ...


def idempotency_key(item: Observed) -> str:
    """Stable key of one *observation* of one violation: (rule, account, region, resource, last_observed).

    The same observation delivered twice (schedule + event, SQS redelivery, two workers) has the same
    last_observed, hence one key and one action. A violation that reappears after a fix is a new evaluation
    with a later last_observed: a new key, acted on again. Security Hub keeps the finding *Id* across
    FAILED → PASSED → FAILED, which is why the Id alone is not the key. Without last_observed the key is the
    (rule, resource) pair and a reappearance is acted on once the completed claim lapses (``hold_seconds``).
    """
    observed = getattr(item, "last_observed", None) or ""
    parts = (item.rule_id, item.account_id, item.region, item.resource_id, observed)
    return "v1:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def notification_key(item: Observed) -> str:
    """The claim key of the *notification* of an observation: apart from its action key, so a rule moved from
    notify to enforce is acted on at once instead of being taken for already done."""
    return "notify:" + idempotency_key(item)


def result_from_row(row: dict[str, Any]) -> Result:
    """A Result back from a ledger row (for reports and the SNS summary of a whole run)."""
    return Result(**{f.name: row[f.name] for f in fields(Result) if f.name in row})


class Ledger(ABC):
    """Claims and results. Backends implement the five storage primitives below; the policy lives here."""

    def __init__(
        self,
        hold_seconds: int = DEFAULT_HOLD,
        retention_seconds: int = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hold_seconds = hold_seconds
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._held = threading.local()  # key → token of the claims this thread won

    # -- public ---------------------------------------------------------------------------------
    def claim(self, key: str, run_id: str, ttl_seconds: int = DEFAULT_CLAIM_TTL) -> bool:
        """True for the one claimant of a key that is free: never claimed, released, lapsed, or abandoned
        (in flight for longer than ``ttl_seconds``). False when another claim is in flight or completed."""
        token, now = uuid.uuid4().hex, self._clock()
        won = self._try_claim(key, run_id, token, now, now - ttl_seconds, int(now + ttl_seconds))
        if won:
            self._tokens()[key] = token
        return won

    def record(self, result: Result, key: str | None = None) -> None:
        """Store the outcome (one per run and finding: a later record replaces it), then settle the claim:
        ``completed`` after an action, else ``released``.

        The default key, ``idempotency_key(result)``, is the finding's (a Result carries the finding's
        last_observed); pass the key you claimed when it is another (``notification_key``). Without a claim of
        this thread, ``remediated``/``started`` still mark the key completed and ``failed`` releases it (an SSM
        execution polled by a later invocation), unless another worker's claim is in flight; any other outcome
        (``notified`` too: only a claimed notification counts as sent) leaves the claim alone.
        """
        key = key or idempotency_key(result)
        now = self._clock()
        row = {**result.to_dict(), "key": key, "recorded_at": _iso(now)}
        self._put_result(row, now, int(now + self.retention_seconds))
        token = self._tokens().get(key)  # kept until settled: a failed write can still be released (release)
        status = COMPLETED if result.outcome in ACTION_OUTCOMES else RELEASED
        if token is not None or result.outcome in ("remediated", "started", "failed"):
            self._settle(key, status, json.dumps(row, default=str), token, now, int(now + self.hold_seconds))
        self._tokens().pop(key, None)

    def release(self, key: str) -> None:
        """Free a key after a failed attempt so a later run retries. A live in-flight claim of another
        worker is left alone."""
        now = self._clock()
        self._settle(key, RELEASED, None, self._tokens().pop(key, None), now, int(now + self.hold_seconds))

    def get(self, key: str) -> dict[str, Any] | None:
        """The claim of a key: {key, status, claimed_by, claimed_at, expires_at, result (last recorded)}."""
        return self._get_claim(key)

    def completed(self, key: str) -> dict[str, Any] | None:
        """The claim of a key while it is completed and unexpired (what ``claim`` would refuse for good), else
        None: a check before work that the claim would only refuse later."""
        row = self._get_claim(key)
        if row is None or row.get("status") != COMPLETED:
            return None
        expires = datetime.fromisoformat(str(row["expires_at"]).replace("Z", "+00:00")).timestamp()
        return row if expires >= self._clock() else None

    def reserve(self, run_id: str, rule_id: str, account_id: str, max_per_rule: int,
                max_per_account: int) -> str | None:
        """Take one action slot of a run on its (run, rule) counter and its (run, account) counter, both or
        neither, atomically across threads, processes and Lambda invocations. None when taken; else the limit
        already reached: ``"rule"`` (checked first) or ``"account"``. Counters only grow within a run."""
        counters = ((RULE_LIMIT, rule_id, max_per_rule), (ACCOUNT_LIMIT, account_id, max_per_account))
        for limit, _name, most in counters:
            if most <= 0:  # nothing may be taken, and nothing needs writing
                return limit
        now = self._clock()
        full = self._reserve([_run_state_key("breaker", run_id, limit, name) for limit, name, _ in counters],
                             [most for _, _, most in counters], int(now + self.retention_seconds))
        return None if full is None else counters[full][0]

    def first_trip(self, run_id: str, limit: str, name: str) -> bool:
        """True for exactly one caller per (run, limit, name), whatever the number of invocations asking: the
        one that logs the warning and sends the alert."""
        now = self._clock()
        return self._mark(_run_state_key("tripped", run_id, limit, name), int(now + self.retention_seconds))

    @abstractmethod
    def results(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Every result recorded under a run id, oldest first (Result fields + key + recorded_at)."""

    @abstractmethod
    def find(self, finding_id: str) -> list[dict[str, Any]]:
        """Every result recorded for a finding, oldest first."""

    @abstractmethod
    def all_results(self) -> Iterator[dict[str, Any]]:
        """Every result of every run, oldest first (history: ``run_summaries``). Read-only."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (a database connection)."""

    # -- storage primitives ---------------------------------------------------------------------
    @abstractmethod
    def _try_claim(self, key: str, run_id: str, token: str, now: float, abandoned_before: float,
                   expires_at: int) -> bool:
        """Atomically: write an in-flight claim unless a live (in flight since ``abandoned_before`` or later,
        or completed and not yet expired) claim exists."""

    @abstractmethod
    def _settle(self, key: str, status: str, result_json: str | None, token: str | None, now: float,
                expires_at: int) -> None:
        """Set the claim's status (and last result). With a token: only if the claim still carries it.
        Without: only if no other claim is in flight and unexpired."""

    @abstractmethod
    def _put_result(self, row: dict[str, Any], now: float, expires_at: int) -> None: ...

    @abstractmethod
    def _reserve(self, keys: list[str], limits: list[int], expires_at: int) -> int | None:
        """Atomically: add 1 to every counter (created at 0) if each is below its limit, else change nothing and
        return the index of the first counter at its limit."""

    @abstractmethod
    def _mark(self, key: str, expires_at: int) -> bool:
        """Create a mark unless it exists; True when this call created it."""

    @abstractmethod
    def _get_claim(self, key: str) -> dict[str, Any] | None: ...

    def _tokens(self) -> dict[str, str]:
        held = getattr(self._held, "tokens", None)
        if held is None:
            held = self._held.tokens = {}
        return held


class LedgerGuard:
    """The engine's ActionGuard on a ledger: claim a finding's key right before a write, record after.

    The engine calls both from the same worker thread, as the ledger's claim ownership requires.
    """

    def __init__(self, ledger: Ledger, ttl_seconds: int = DEFAULT_CLAIM_TTL) -> None:
        self.ledger = ledger
        self.ttl_seconds = ttl_seconds

    def acquire(self, finding: Finding, run_id: str) -> str | None:
        """None to go ahead; otherwise why this delivery must not act."""
        key = idempotency_key(finding)
        if self.ledger.claim(key, run_id, self.ttl_seconds):
            return None
        held = self.ledger.get(key) or {}
        state = "being remediated" if held.get("status") == IN_FLIGHT else "already remediated"
        return f"duplicate: this observation is {state} by run {held.get('claimed_by') or 'unknown'}"

    def finish(self, finding: Finding, result: Result) -> None:
        self.ledger.record(result, idempotency_key(finding))

    def release(self, finding: Finding) -> None:
        self.ledger.release(idempotency_key(finding))


def _run_state_key(kind: str, run_id: str, limit: str, name: str) -> str:
    """"breaker#<run>#rule#EC2.53" (a counter), "tripped#<run>#account#111111111111" (a mark)."""
    return f"{kind}#{run_id or '-'}#{limit}#{name}"


def _acted(row: dict[str, Any]) -> int:
    """1 for an action outcome: such a row of a run is only ever replaced by another action (a redelivery's
    later `noop` must not hide that the run remediated the finding)."""
    return 1 if row.get("outcome") in ACTION_OUTCOMES else 0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _claim_view(key: str, status: str, claimed_by: str | None, claimed_at: float | None, expires_at: int,
                result_json: str | None) -> dict[str, Any]:
    return {
        "key": key,
        "status": status,
        "claimed_by": claimed_by,
        "claimed_at": _iso(claimed_at) if claimed_at is not None else None,
        "expires_at": _iso(expires_at),
        "result": json.loads(result_json) if result_json else None,
    }


# -- SQLite ---------------------------------------------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY, status TEXT NOT NULL, claimed_by TEXT, token TEXT,
    claimed_at REAL, expires_at INTEGER NOT NULL, result TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL, finding_id TEXT NOT NULL, recorded_at REAL NOT NULL,
    expires_at INTEGER NOT NULL, body TEXT NOT NULL, acted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, finding_id)
);
CREATE INDEX IF NOT EXISTS results_by_run ON results (run_id, recorded_at);
CREATE INDEX IF NOT EXISTS results_by_finding ON results (finding_id, recorded_at);
CREATE TABLE IF NOT EXISTS run_state (key TEXT PRIMARY KEY, n INTEGER NOT NULL, expires_at INTEGER NOT NULL);
"""

# A claim is free when released, lapsed, or in flight since before the abandonment cut-off.
_SQL_CLAIM = (
    "INSERT INTO claims (key, status, claimed_by, token, claimed_at, expires_at, result)"
    " VALUES (:key, 'in_flight', :run_id, :token, :now, :expires_at, NULL)"
    " ON CONFLICT (key) DO UPDATE SET status = 'in_flight', claimed_by = :run_id, token = :token,"
    " claimed_at = :now, expires_at = :expires_at"
    " WHERE claims.status = 'released' OR claims.expires_at < :now"
    " OR (claims.status = 'in_flight' AND claims.claimed_at < :abandoned_before)"
)
_SQL_SETTLE = (
    "INSERT INTO claims (key, status, expires_at, result) VALUES (:key, :status, :expires_at, :result)"
    " ON CONFLICT (key) DO UPDATE SET status = :status, token = NULL, expires_at = :expires_at,"
    " result = COALESCE(:result, claims.result)"
)
# Settle by the claimant (its token still on the claim), or by anyone when no other claim is live.
_SQL_SETTLE_OWN = _SQL_SETTLE + " WHERE claims.token = :token"
_SQL_SETTLE_FREE = _SQL_SETTLE + " WHERE NOT (claims.status = 'in_flight' AND claims.expires_at >= :now)"


class SqliteLedger(Ledger):
    """The local ledger: one file (or ":memory:"), WAL mode so several processes can share it.

    One connection per ledger guarded by a lock (threads of one process); across processes the conditional
    upsert is atomic under SQLite's write lock, and ``busy_timeout`` waits for it instead of failing.
    """

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SQLITE_SCHEMA)
        # No TTL sweeper locally: drop what DynamoDB's TTL would have deleted by now.
        for table in ("claims", "results", "run_state"):
            self._db.execute(f"DELETE FROM {table} WHERE expires_at < ?", (int(self._clock()),))  # noqa: S608

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> tuple[list[Any], int]:
        """(rows, rowcount), fetched under the lock: a cursor read later would keep a read snapshot open while
        another thread writes on this connection, and SQLite answers that with SQLITE_BUSY_SNAPSHOT at once."""
        with self._lock:
            cursor = self._db.execute(sql, params)
            return cursor.fetchall(), cursor.rowcount

    def _try_claim(self, key: str, run_id: str, token: str, now: float, abandoned_before: float,
                   expires_at: int) -> bool:
        _, changed = self._execute(
            _SQL_CLAIM,
            {"key": key, "run_id": run_id, "token": token, "now": now, "expires_at": expires_at,
             "abandoned_before": abandoned_before},
        )
        return changed == 1

    def _settle(self, key: str, status: str, result_json: str | None, token: str | None, now: float,
                expires_at: int) -> None:
        self._execute(
            _SQL_SETTLE_OWN if token else _SQL_SETTLE_FREE,
            {"key": key, "status": status, "expires_at": expires_at, "result": result_json, "token": token,
             "now": now},
        )

    def _put_result(self, row: dict[str, Any], now: float, expires_at: int) -> None:
        self._execute(
            "INSERT INTO results (run_id, finding_id, recorded_at, expires_at, body, acted) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, finding_id) DO UPDATE SET recorded_at = excluded.recorded_at,"
            " expires_at = excluded.expires_at, body = excluded.body, acted = excluded.acted"
            " WHERE results.acted = 0 OR excluded.acted = 1",
            (row["run_id"], row["finding_id"], now, expires_at, json.dumps(row, default=str), _acted(row)),
        )

    def _reserve(self, keys: list[str], limits: list[int], expires_at: int) -> int | None:
        # One write transaction (BEGIN IMMEDIATE takes SQLite's write lock at once, so two processes never both
        # read a counter below its limit); any counter at its limit rolls the others back.
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO run_state (key, n, expires_at) VALUES (?, 0, ?)"
                               " ON CONFLICT (key) DO NOTHING", [(key, expires_at) for key in keys])
                for index, (key, limit) in enumerate(zip(keys, limits, strict=True)):
                    taken = db.execute("UPDATE run_state SET n = n + 1, expires_at = ? WHERE key = ? AND n < ?",
                                       (expires_at, key, limit)).rowcount
                    if taken != 1:
                        db.execute("ROLLBACK")
                        return index
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return None

    def _mark(self, key: str, expires_at: int) -> bool:
        _, created = self._execute(
            "INSERT INTO run_state (key, n, expires_at) VALUES (?, 1, ?) ON CONFLICT (key) DO NOTHING",
            (key, expires_at),
        )
        return created == 1

    def _get_claim(self, key: str) -> dict[str, Any] | None:
        rows, _ = self._execute(
            "SELECT status, claimed_by, claimed_at, expires_at, result FROM claims WHERE key = ?", (key,)
        )
        return _claim_view(key, *rows[0]) if rows else None

    def results(self, run_id: str) -> Iterator[dict[str, Any]]:
        rows, _ = self._execute(
            "SELECT body FROM results WHERE run_id = ? ORDER BY recorded_at, finding_id", (run_id,)
        )
        return (json.loads(body) for (body,) in rows)

    def find(self, finding_id: str) -> list[dict[str, Any]]:
        rows, _ = self._execute(
            "SELECT body FROM results WHERE finding_id = ? ORDER BY recorded_at, finding_id", (finding_id,)
        )
        return [json.loads(body) for (body,) in rows]

    def all_results(self) -> Iterator[dict[str, Any]]:
        rows, _ = self._execute("SELECT body FROM results ORDER BY recorded_at, run_id, finding_id")
        return (json.loads(body) for (body,) in rows)


# -- DynamoDB -------------------------------------------------------------------------------------------

# Every attribute goes through a placeholder: "status", "token" and friends are DynamoDB reserved words.
_NAMES = {f"#{name}": name for name in
          ("pk", "status", "claimed_by", "token", "claimed_at", "expires_at", "result", "run_id", "finding_id")}
_DYNAMO_FREE = (
    "attribute_not_exists(#pk) OR #status = :released OR #expires_at < :now"
    " OR (#status = :in_flight AND #claimed_at < :abandoned_before)"
)
_NO_LIVE_CLAIM = "attribute_not_exists(#pk) OR #status <> :in_flight OR #expires_at < :now"


def create_table(client: Any, table_name: str) -> None:
    """Create the ledger table from TABLE_SCHEMA (local runs and tests; in AWS the stack creates it)."""
    spec = {k: v for k, v in TABLE_SCHEMA.items() if k != "TimeToLiveSpecification"}
    client.create_table(TableName=table_name, **spec)
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=TABLE_SCHEMA["TimeToLiveSpecification"])


class DynamoDbLedger(Ledger):
    """The ledger in AWS: one table (TABLE_SCHEMA), conditional writes for claims, a TTL on every item.

    The Result travels as a JSON string: DynamoDB takes no Python floats and no empty key values, and a
    pre_state is whatever the service returned. Results are read from GSIs, which are eventually consistent:
    a result recorded a moment ago may be missing from ``results``/``find`` for a second.
    """

    def __init__(self, table_name: str, client: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table_name = table_name
        self._client = client or boto3.client("dynamodb", config=CLIENT_CONFIG)
        self._sleep: Callable[[float], None] = time.sleep

    def _write(self, operation: str, **kwargs: Any) -> bool:
        """A conditional write: True when it happened, False when its condition did not hold."""
        try:
            getattr(self._client, operation)(TableName=self.table_name, **kwargs)
        except ClientError as error:
            if aws_error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _try_claim(self, key: str, run_id: str, token: str, now: float, abandoned_before: float,
                   expires_at: int) -> bool:
        return self._write(
            "put_item",
            Item=_item(pk=_claim_pk(key), status=IN_FLIGHT, claimed_by=run_id, token=token, claimed_at=now,
                       expires_at=expires_at),
            ConditionExpression=_DYNAMO_FREE,
            ExpressionAttributeNames=_used_names(_DYNAMO_FREE),
            ExpressionAttributeValues=_item(released=RELEASED, in_flight=IN_FLIGHT, now=now,
                                            abandoned_before=abandoned_before, prefix=":"),
        )

    def _settle(self, key: str, status: str, result_json: str | None, token: str | None, now: float,
                expires_at: int) -> None:
        update = "SET #status = :status, #expires_at = :expires_at" + (", #result = :result" if result_json else "")
        condition = "#token = :token" if token else _NO_LIVE_CLAIM
        values = _item(status=status, expires_at=expires_at, result=result_json, prefix=":")
        values.update(_item(token=token, prefix=":") if token else _item(in_flight=IN_FLIGHT, now=now, prefix=":"))
        self._write(
            "update_item",
            Key=_item(pk=_claim_pk(key)),
            UpdateExpression=update + " REMOVE #token",
            ConditionExpression=condition,
            ExpressionAttributeNames=_used_names(update + " #token " + condition),
            ExpressionAttributeValues=values,
        )

    def _put_result(self, row: dict[str, Any], now: float, expires_at: int) -> None:
        run_id, finding_id = row["run_id"] or "-", row["finding_id"]
        acted = _acted(row)
        condition = {} if acted else {
            "ConditionExpression": "attribute_not_exists(pk) OR acted = :no",
            "ExpressionAttributeValues": {":no": {"N": "0"}},
        }
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=_item(pk=f"result#{run_id}#{finding_id}", run_id=run_id, finding_id=finding_id,
                           recorded_at=now, expires_at=expires_at, result=json.dumps(row, default=str), acted=acted),
                **condition,
            )
        except ClientError as error:
            if aws_error_code(error) != "ConditionalCheckFailedException":
                raise

    def _reserve(self, keys: list[str], limits: list[int], expires_at: int) -> int | None:
        """One TransactWriteItems with an ``ADD n 1`` per counter, each conditioned on its limit: DynamoDB applies
        both updates or neither. A cancelled transaction says why per item (``CancellationReasons``, in item
        order): ``ConditionalCheckFailed`` is a limit reached; ``TransactionConflict`` (another reservation on
        the same counter at that moment) or throttling is retried here with jittered backoff. Each attempt has
        its own ClientRequestToken, so botocore's retry of one attempt (a timeout, a 5xx) never counts twice."""
        items = [{"Update": {
            "TableName": self.table_name,
            "Key": _item(pk=key),
            "UpdateExpression": "ADD #n :one SET #expires_at = :expires_at",
            "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
            "ExpressionAttributeNames": {"#n": "n", "#expires_at": "expires_at"},
            "ExpressionAttributeValues": _item(one=1, limit=limit, expires_at=expires_at, prefix=":"),
        }} for key, limit in zip(keys, limits, strict=True)]
        for attempt in range(1, RESERVE_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)
                return None
            except ClientError as error:
                if aws_error_code(error) != "TransactionCanceledException":
                    raise
                codes = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in codes:
                    return codes.index("ConditionalCheckFailed")
                if attempt == RESERVE_ATTEMPTS:
                    raise
                self._sleep(random.uniform(0, min(2.0, 0.05 * 2 ** attempt)))  # jitter: contenders spread out
        raise AssertionError("unreachable")

    def _mark(self, key: str, expires_at: int) -> bool:
        return self._write("put_item", Item=_item(pk=key, expires_at=expires_at),
                           ConditionExpression="attribute_not_exists(#pk)",
                           ExpressionAttributeNames={"#pk": "pk"})

    def _get_claim(self, key: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=_item(pk=_claim_pk(key)), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        value = _plain(item)
        return _claim_view(key, value["status"], value.get("claimed_by"), value.get("claimed_at"),
                           int(value["expires_at"]), value.get("result"))

    def results(self, run_id: str) -> Iterator[dict[str, Any]]:
        return self._query(RUN_INDEX, "run_id", run_id or "-")

    def find(self, finding_id: str) -> list[dict[str, Any]]:
        return list(self._query(FINDING_INDEX, "finding_id", finding_id))

    def all_results(self) -> Iterator[dict[str, Any]]:
        """A Scan of the result items (the filter skips claims): read-only, one pass over the table."""
        pages = self._client.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="begins_with(#pk, :result)",
            ProjectionExpression="#result",
            ExpressionAttributeNames={"#pk": "pk", "#result": "result"},
            ExpressionAttributeValues={":result": {"S": "result#"}},
        )
        rows = [json.loads(item["result"]["S"]) for page in pages for item in page["Items"]]
        rows.sort(key=lambda r: (str(r.get("recorded_at") or ""), r.get("run_id") or "", r.get("finding_id") or ""))
        return iter(rows)

    def _query(self, index: str, attribute: str, value: str) -> Iterator[dict[str, Any]]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=index,
            KeyConditionExpression=f"#{attribute} = :value",
            ExpressionAttributeNames={f"#{attribute}": attribute},
            ExpressionAttributeValues={":value": {"S": value}},
        )
        for page in pages:
            for item in page["Items"]:
                yield json.loads(item["result"]["S"])


def _claim_pk(key: str) -> str:
    return f"claim#{key}"


def _item(prefix: str = "", **values: str | float | None) -> dict[str, dict[str, str]]:
    """Low-level DynamoDB attribute values; None is left out (DynamoDB has no use for empty attributes)."""
    return {
        prefix + name: {"N": repr(value)} if isinstance(value, int | float) else {"S": value}
        for name, value in values.items()
        if value is not None
    }


def _plain(item: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {name: float(value["N"]) if "N" in value else value["S"] for name, value in item.items()}


def _used_names(expression: str) -> dict[str, str]:
    return {placeholder: name for placeholder, name in _NAMES.items() if placeholder in expression}


# -- addresses and the read side (history, show, rollback) ------------------------------------------

DYNAMODB_SCHEME = "dynamodb://"
_SQLITE_MAGIC = b"SQLite format 3\x00"


class LedgerError(ValueError):
    """The ledger address names nothing usable (no such table, not a ledger file). Message is one line."""


def ledger_address(explicit: str | None, environ: Any = None) -> str | None:
    """The ledger a command uses: --ledger, else CSPM_LEDGER_PATH, else LEDGER_TABLE (the deployed stack's
    table, as dynamodb://TABLE), so the CLI reads the same table as the Lambda handlers."""
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    if environ.get("CSPM_LEDGER_PATH"):
        path: str = environ["CSPM_LEDGER_PATH"]
        return path
    table = environ.get("LEDGER_TABLE")
    return DYNAMODB_SCHEME + table if table else None


def open_ledger(address: str, *, create: bool = False, client: Any = None, **kwargs: Any) -> Ledger:
    """The ledger at a SQLite path or ``dynamodb://TABLE``.

    create=False (history, show, rollback): the ledger must exist; nothing is created. create=True (apply,
    run): a missing SQLite file starts a new ledger, but an existing file that is not one is still refused, so
    a mistyped address never turns into a new empty file or damages one. DynamoDB tables are never created
    here (the stack owns the table); opening one reads only its description (read-only credentials do).
    """
    if address.startswith(DYNAMODB_SCHEME):
        table = address[len(DYNAMODB_SCHEME):].strip("/")
        if not table:
            raise LedgerError(f"{address}: name the table: dynamodb://TABLE")
        client = client or boto3.client("dynamodb", config=CLIENT_CONFIG)
        try:
            description = client.describe_table(TableName=table)["Table"]
        except ClientError as error:
            if aws_error_code(error) == "ResourceNotFoundException":
                raise LedgerError(f"{address}: no DynamoDB table {table} in this account and region") from None
            raise
        keys = [k["AttributeName"] for k in description.get("KeySchema", [])]
        if keys != ["pk"]:
            raise LedgerError(f"{address}: table {table} is not a CSPM ledger (its key is {', '.join(keys)})")
        return DynamoDbLedger(table, client=client, **kwargs)
    path = Path(address)
    if path.is_dir():
        raise LedgerError(f"{address}: is a directory, not a ledger file")
    if not path.exists():
        if not create:
            hint = f" (a DynamoDB table? use {DYNAMODB_SCHEME}{path.name})" if not path.suffix else ""
            raise LedgerError(f"{address}: no ledger there{hint}")
        if not path.parent.is_dir():
            raise LedgerError(f"{address}: directory {path.parent} does not exist")
        return SqliteLedger(path, **kwargs)
    if not _is_sqlite_ledger(path, allow_empty=create):
        raise LedgerError(f"{address}: not a CSPM ledger (a SQLite file written by apply/run --ledger)")
    return SqliteLedger(path, **kwargs)


def _is_sqlite_ledger(path: Path, allow_empty: bool) -> bool:
    """Without writing: the file is SQLite and holds our results table (or is empty, when allowed)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError:
        return False
    if not head:
        return allow_empty
    if head != _SQLITE_MAGIC:
        return False
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return {"claims", "results"} <= tables


def run_stage(rows: Iterable[Mapping[str, Any]]) -> str:
    """A run's stage: recorded on each result (``stage``); rows older than that field are inferred."""
    stages = {row["stage"] for row in rows if row.get("stage") is not None}
    if stages:
        return "+".join(sorted(stages))
    return "apply" if any(r.get("outcome") in ACTION_OUTCOMES or r.get("mode") == "enforce" for r in rows) \
        else "plan"


def run_summaries(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One summary per run id, newest first: run_id, started/finished (first/last recorded_at), sources,
    stage, results, counts per outcome. Rows from ``Ledger.all_results``."""
    by_run: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_run.setdefault(row.get("run_id") or "-", []).append(row)
    summaries = []
    for run_id, run_rows in by_run.items():
        times = sorted(str(r.get("recorded_at") or "") for r in run_rows)
        counts: dict[str, int] = {}
        for r in run_rows:
            counts[r.get("outcome") or "?"] = counts.get(r.get("outcome") or "?", 0) + 1
        summaries.append({
            "run_id": run_id,
            "started": times[0] or None,
            "finished": times[-1] or None,
            "sources": sorted({r.get("source") or "?" for r in run_rows}),
            "stage": run_stage(run_rows),
            "results": len(run_rows),
            "counts": dict(sorted(counts.items())),
        })
    summaries.sort(key=lambda s: (s["started"] or "", s["run_id"]), reverse=True)
    return summaries
