"""The types every layer shares: a finding's `Result` and its outcomes, and the `Target` a remediator acts in.

Kept apart from the engine so the ledger, reports, write-back and remediators depend on data, not on the engine.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

from connectors.finding import GLOBAL_REGION

# A botocore client. Its methods are generated at run time from the service's model, so a static type would need
# one stub package per service (mypy-boto3-*) and TypedDict responses everywhere; the calls are checked against
# moto and botocore's models by the tests instead, and what a remediator reads from a response is typed where it
# keeps it.
AwsClient = Any

_T = TypeVar("_T")

OUTCOMES = ("noop", "planned", "remediated", "started", "notified", "excluded", "skipped", "failed")
Stage = Literal["plan", "apply", "rollback"]


@dataclass
class Result:
    """What happened to one finding (JSON output of plan/apply/run)."""

    finding_id: str
    source: str
    rule_id: str
    account_id: str
    region: str
    resource_type: str
    resource_id: str
    outcome: str
    reason: str
    mode: str | None = None
    executor: str | None = None
    changes: list[str] = field(default_factory=list)
    pre_state: dict[str, Any] | None = None
    execution_id: str | None = None
    error: str | None = None
    circuit_breaker: bool = False
    run_id: str = ""
    resource_arn: str | None = None
    last_observed: str | None = None  # part of the ledger's idempotency key (a reappearance is a new action)
    product_arn: str | None = None  # Security Hub write-back needs it
    stage: str | None = None  # plan / apply / rollback: the kind of run it belongs to (history)
    # At verification, field name → the value the action set, for each field it changed (Remediator.state_fields;
    # None when the remediator declares no fields). Rollback restores a field only while it still holds that value.
    post_state: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Where "global" services (IAM, account-level S3 control) are called from, per partition.
GLOBAL_SERVICE_REGION = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1",
                         "aws-eusc": "eusc-de-east-1"}


class ReadCache:
    """Reads shared by several findings within one engine run (the password policy IAM.10-17 all check, a
    security group four rules describe): read once per account, not once per finding.

    The engine makes one per run and clears an account's entries around every write in that account, so a
    verification after apply reads the live state, never a cached one. Bounded (least recently used out) so a
    run's memory stays flat in its size. Values are handed out as deep copies: an assessment that edits what it
    read cannot change what the next finding sees. Accounts run in parallel threads, hence the lock.
    """

    def __init__(self, max_entries: int = 2048) -> None:
        self._values: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self._lasting: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()  # see `lasting`

    def get(self, key: tuple[Hashable, ...], read: Callable[[], _T]) -> _T:
        """key[0] is the account id (what clear takes)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return copy.deepcopy(self._values[key])
        value = read()  # an error is raised, not cached: the next finding reads again
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._max:
                self._values.popitem(last=False)
        return copy.deepcopy(value)

    def clear(self, account_id: str) -> None:
        with self._lock:
            for key in [key for key in self._values if key[0] == account_id]:
                del self._values[key]

    def lasting(self, key: tuple[Hashable, ...], read: Callable[[], _T]) -> _T:
        """Like `get`, for what no write of ours changes (a queue's URL from its name): kept apart, so neither
        `clear` nor a write drops it, and bounded the same way. Values must be immutable (no copies are made)."""
        with self._lock:
            if key in self._lasting:
                self._lasting.move_to_end(key)
                return self._lasting[key]
        value = read()
        with self._lock:
            self._lasting[key] = value
            while len(self._lasting) > self._max:
                self._lasting.popitem(last=False)
        return value


@dataclass
class Target:
    """Where a remediator acts: one account and region, with cached clients (and, in an engine run, cached reads)."""

    account_id: str
    region: str
    partition: str
    _client_for: Callable[[str, str], AwsClient] = field(repr=False)
    reads: ReadCache | None = field(default=None, repr=False)

    @property
    def api_region(self) -> str:
        """The region to call: a finding in region "global" is served by the partition's home region."""
        return GLOBAL_SERVICE_REGION[self.partition] if self.region == GLOBAL_REGION else self.region

    def client(self, service: str) -> AwsClient:
        return self._client_for(service, self.api_region)

    def read(self, key: tuple[Hashable, ...], read: Callable[[], _T]) -> _T:
        """`read()`, or the value it returned earlier in this run for this account, region and key. Use only in
        assess, for state that several findings read; outside an engine run (rollback, CLI tools) always live."""
        if self.reads is None:
            return read()
        return self.reads.get((self.account_id, self.api_region, *key), read)

    def lookup(self, key: tuple[Hashable, ...], read: Callable[[], _T]) -> _T:
        """`read()` once per run for this account, region and key, for an identity no write of ours changes (a
        queue URL): unlike `read`, a write in the account keeps it, so a verification does not look it up again.
        Outside an engine run always live."""
        if self.reads is None:
            return read()
        return self.reads.lasting((self.account_id, self.api_region, *key), read)
