"""The types every layer shares: a finding's `Result` and its outcomes, and the `Target` a remediator acts in.

Kept apart from the engine so the ledger, reports, write-back and remediators depend on data, not on the engine.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar, cast

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


CacheKey = tuple[Hashable, ...]
ACCOUNT_WIDE = "*"  # the region part of the cache key of an account-wide setting (Target.read(account_wide=True))


class ReadCache:
    """Reads shared by several findings within one engine run (the password policy all its rules check, a security
    group four rules describe, an account-level setting): read once per account and region, not once per finding.

    The engine makes one per run. After a write it drops exactly the entries the written finding's assessment read
    (`invalidate`; `clear` drops a whole account), so the verification reads the live state and the account's
    other cached reads stay. Batched reads store what they fetched for many resources at once (`put`). Bounded
    (least recently used out) so a run's memory stays flat in its size. Values are handed out as deep copies: an
    assessment that edits what it read cannot change what the next finding sees. Accounts run in parallel
    threads, hence the lock; which keys an assessment read is recorded per thread (`recording`).
    """

    def __init__(self, max_entries: int = 2048) -> None:
        self._values: OrderedDict[CacheKey, Any] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self._lasting: OrderedDict[CacheKey, Any] = OrderedDict()  # see `lasting`
        self._local = threading.local()
        self._clock = 0  # counts invalidations: an assessment taken at stamp s is stale once a key it read drops
        self._dropped: dict[CacheKey, int] = {}  # key → clock of its last drop (small: one per write)

    def get(self, key: CacheKey, read: Callable[[], _T], record: bool = True) -> _T:
        """key[0] is the account id (what clear takes). record=False: not among what the asking assessment's write
        changes (see Target.read)."""
        if record:
            self._record(key)
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return cast(_T, copy.deepcopy(self._values[key]))
        value = read()  # an error is raised, not cached: the next finding reads again
        self.put(key, value)
        return copy.deepcopy(value)

    def put(self, key: CacheKey, value: Any) -> None:
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._max:
                self._values.popitem(last=False)

    def has(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._values

    def invalidate(self, keys: Iterable[CacheKey]) -> None:
        """Drop these entries (what a write changed), in every region of their account: some settings show in
        other regions too (a new multi-Region trail is listed everywhere)."""
        dropped = {_regionless(key) for key in keys}
        with self._lock:
            self._clock += 1
            for key in [key for key in self._values if _regionless(key) in dropped]:
                del self._values[key]
            for key in dropped:
                self._dropped[key] = self._clock

    def clear(self, account_id: str) -> None:
        with self._lock:
            self._clock += 1
            for key in [key for key in self._values if key[0] == account_id]:
                del self._values[key]
            self._dropped[(account_id,)] = self._clock

    def stamp(self) -> int:
        with self._lock:
            return self._clock

    def fresh(self, keys: Iterable[CacheKey], since: int) -> bool:
        """None of `keys` (nor their account as a whole) was dropped after `since`."""
        with self._lock:
            return all(self._dropped.get(_regionless(key), -1) <= since and self._dropped.get(key[:1], -1) <= since
                       for key in keys)

    @contextmanager
    def recording(self) -> Iterator[set[CacheKey]]:
        """The keys this thread asks for inside the block (an assessment's reads: what its write invalidates)."""
        outer = getattr(self._local, "keys", None)
        keys: set[CacheKey] = set()
        self._local.keys = keys
        try:
            yield keys
        finally:
            self._local.keys = outer
            if outer is not None:
                outer.update(keys)

    def lasting(self, key: tuple[Hashable, ...], read: Callable[[], _T]) -> _T:
        """Like `get`, for what no write of ours changes (a queue's URL from its name): kept apart, so neither
        `clear` nor a write drops it, and bounded the same way. Values must be immutable (no copies are made)."""
        with self._lock:
            if key in self._lasting:
                self._lasting.move_to_end(key)
                return cast(_T, self._lasting[key])
        value = read()
        with self._lock:
            self._lasting[key] = value
            while len(self._lasting) > self._max:
                self._lasting.popitem(last=False)
        return value

    def _record(self, key: CacheKey) -> None:
        keys = getattr(self._local, "keys", None)
        if keys is not None:
            keys.add(key)


def _regionless(key: CacheKey) -> CacheKey:
    """(account, region, *key) → (account, *key)."""
    return (key[0], *key[2:])


@dataclass
class Target:
    """Where a remediator acts: one account and region, with cached clients (and, in an engine run, cached reads)."""

    account_id: str
    region: str
    partition: str
    _client_for: Callable[[str, str], AwsClient] = field(repr=False)
    reads: ReadCache | None = field(default=None, repr=False)
    # The run's exclusion by tag (config `exclude.tag`), for the items an account-level finding covers (each public
    # snapshot of EC2.1, each identity of IAM.27): why one is left alone, or None. Unset outside an engine run.
    exclusion: Callable[[Mapping[str, str] | None], str | None] | None = field(default=None, repr=False)

    def excluded(self, tags: Mapping[str, str] | None) -> str | None:
        """Why an item with these tags is left alone (it carries the exclusion tag), or None."""
        return self.exclusion(tags) if self.exclusion is not None else None

    @property
    def api_region(self) -> str:
        """The region to call: a finding in region "global" is served by the partition's home region."""
        return GLOBAL_SERVICE_REGION[self.partition] if self.region == GLOBAL_REGION else self.region

    def client(self, service: str) -> AwsClient:
        return self._client_for(service, self.api_region)

    def read(self, key: tuple[Hashable, ...], read: Callable[[], _T], account_wide: bool = False,
             written: bool = True) -> _T:
        """`read()`, or the value it returned earlier in this run for this account, region and key. Use only in
        assess, for state that several findings read; outside an engine run (rollback, CLI tools) always live.

        account_wide: a setting of the account whichever region asks (S3's account Block Public Access), kept once
        per account. written=False: state this finding only consults and its write does not change (another rule's
        setting), so that write keeps the entry for the next finding; the rule that changes it reads it with
        written=True, and its write drops it."""
        if self.reads is None:
            return read()
        return self.reads.get(self.cache_key(key, account_wide), read, record=written)

    def lookup(self, key: tuple[Hashable, ...], read: Callable[[], _T]) -> _T:
        """`read()` once per run for this account, region and key, for an identity no write of ours changes (a
        queue URL): unlike `read`, a write in the account keeps it, so a verification does not look it up again.
        Outside an engine run always live."""
        if self.reads is None:
            return read()
        return self.reads.lasting(self.cache_key(key), read)

    def cache_key(self, key: tuple[Hashable, ...], account_wide: bool = False) -> CacheKey:
        return (self.account_id, ACCOUNT_WIDE if account_wide else self.api_region, *key)

    @property
    def batching(self) -> bool:
        """A batched read pays off only where its values are kept for the findings' own reads (an engine run)."""
        return self.reads is not None

    def cached(self, key: tuple[Hashable, ...]) -> bool:
        return self.reads is not None and self.reads.has(self.cache_key(key))

    def keep(self, key: tuple[Hashable, ...], value: Any) -> None:
        """Store what a batched read fetched for one resource, for that resource's own `read` (no-op outside a
        run)."""
        if self.reads is not None:
            self.reads.put(self.cache_key(key), value)
