"""The engine: finding → decision → (enforce) action → verification → one Result per finding.

Decisions that need no AWS call (rule known? mode? excluded? duplicate?) are taken first, in the caller's
thread. The rest runs per account in a bounded thread pool: findings of one account are handled in order
(they share one session and one set of clients), accounts run in parallel, and an error in one account or
finding becomes that finding's `failed` result — it never stops the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from connectors.finding import Finding
from connectors.securityhub import is_open_failed
from functions.engine.automation import DEFAULT_AUTOMATION_ROLE_NAME, execution_status, start_runbook
from functions.engine.catalog import CATALOG, CatalogEntry
from functions.engine.config import Config, Limits
from functions.engine.failures import aws_error_code, classify, classify_error, error_code
from functions.engine.ledger import (
    ACCOUNT_LIMIT,
    RULE_LIMIT,
    Ledger,
    LedgerGuard,
    idempotency_key,
    notification_key,
)
from functions.engine.pacing import DEFAULT_MAX_WORKERS
from functions.engine.sessions import AssumedSessions, TargetUnavailable
from functions.model import ReadCache, Result, Stage, Target
from functions.remediators.base import Assessment, RemediationError, Remediator, tags_known
from functions.remediators.tagging import prefetch_tags
from functions.report import first_sentence

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Trip:
    """A circuit-breaker refusal: which limit ("rule" or "account") is reached, and whether this is the first
    refusal of that limit in the run (the one that warns and alerts; the others only plan)."""

    limit: str
    first: bool


class Breaker(Protocol):
    """The circuit breaker's run-wide counters: reserve one action slot for (rule, account) before acting."""

    def reserve(self, rule_id: str, account_id: str, limits: Limits) -> Trip | None:
        """None: a slot was taken on both counters. Else the limit reached (nothing was taken)."""
        ...


class MemoryBreaker:
    """Counters of one Engine (the CLI without a ledger: one process is the whole run)."""

    def __init__(self) -> None:
        self._per_rule: dict[str, int] = defaultdict(int)
        self._per_account: dict[str, int] = defaultdict(int)
        self._tripped: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def reserve(self, rule_id: str, account_id: str, limits: Limits) -> Trip | None:
        with self._lock:
            if self._per_rule[rule_id] >= limits.max_actions_per_rule:
                return self._trip(RULE_LIMIT, rule_id)
            if self._per_account[account_id] >= limits.max_actions_per_account:
                return self._trip(ACCOUNT_LIMIT, account_id)
            self._per_rule[rule_id] += 1
            self._per_account[account_id] += 1
            return None

    def _trip(self, limit: str, name: str) -> Trip:
        first = (limit, name) not in self._tripped
        self._tripped.add((limit, name))
        return Trip(limit, first)


class LedgerBreaker:
    """Counters in the ledger, so a run's limits hold over every Lambda invocation that works on it.

    A limit this object has seen reached is not asked again (a run's counters only grow): past the limit, the
    rest of a batch costs no ledger write.
    """

    def __init__(self, ledger: Ledger, run_id: str) -> None:
        self.ledger, self.run_id = ledger, run_id
        self._full: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def reserve(self, rule_id: str, account_id: str, limits: Limits) -> Trip | None:
        for limit, name in ((RULE_LIMIT, rule_id), (ACCOUNT_LIMIT, account_id)):
            with self._lock:
                if (limit, name) in self._full:
                    return Trip(limit, first=False)
        reached = self.ledger.reserve(self.run_id, rule_id, account_id, limits.max_actions_per_rule,
                                      limits.max_actions_per_account)
        if reached is None:
            return None
        name = rule_id if reached == RULE_LIMIT else account_id
        with self._lock:
            known = (reached, name) in self._full
            self._full.add((reached, name))
        return Trip(reached, first=not known and self.ledger.first_trip(self.run_id, reached, name))


def trip_reason(trip: Trip, rule_id: str, account_id: str, limits: Limits) -> str:
    """A held finding's reason; functions/report.py reads the limit and its scope back from it."""
    if trip.limit == RULE_LIMIT:
        return f"circuit breaker: {limits.max_actions_per_rule} actions for rule {rule_id} this run; planning only"
    return f"circuit breaker: {limits.max_actions_per_account} actions in account {account_id} this run; planning only"


class ActionGuard(Protocol):
    """Cross-invocation idempotency (the ledger): asked right before a write, told the outcome after.

    acquire returns None to go ahead, or the reason this worker must not act (another delivery of the same
    finding holds or completed it). finish is called once per acquired finding, whatever happened.
    """

    def acquire(self, finding: Finding, run_id: str) -> str | None: ...

    def finish(self, finding: Finding, result: Result) -> None: ...

    def release(self, finding: Finding) -> None:
        """Free the finding's claim after finish failed (called from the thread that acquired it)."""


class _Seen:
    """What this run has already taken on: the same finding twice, or two findings on one (rule, resource).

    Holds 16-byte digests, not the ids and keys themselves: a run's memory must stay flat in its size.
    """

    def __init__(self) -> None:
        self._ids: set[bytes] = set()
        self._keys: set[bytes] = set()

    def duplicate_reason(self, finding: Finding) -> str | None:
        finding_digest = _digest(finding.finding_id)
        if finding_digest in self._ids:
            return f"duplicate: finding {finding.finding_id} was delivered twice"
        self._ids.add(finding_digest)
        key_digest = _digest("\x1f".join(finding.resource_key))
        if key_digest in self._keys:
            return "duplicate: same rule and resource as an earlier finding of this run"
        self._keys.add(key_digest)
        return None


@dataclass
class _Action:
    """A finding decided to act on: where, with what, and the result it has so far (planned)."""

    target: Target
    finding: Finding
    entry: CatalogEntry
    remediator: Remediator
    assessment: Assessment
    planned: Result


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class Engine:
    """Runs findings through the catalog. stage "plan" never writes; "apply" writes for enforce-mode rules.

    With a ``ledger`` (the Lambdas; the CLI with --ledger) the engine keeps its run-wide state there: each result
    is recorded once, an action is claimed before its write (``LedgerGuard``), the circuit breaker's counters
    are the ledger's (``LedgerBreaker``), and a notify-only finding is handed to ``notifier`` once per
    observation. Without one, the breaker counts in memory and ``notifier`` gets every notified finding.
    ``on_trip`` is told once per run and tripped limit (the first held finding), as is the warning logged.
    """

    def __init__(
        self,
        config: Config,
        sessions: AssumedSessions,
        stage: Stage = "plan",
        catalog: Mapping[str, CatalogEntry] = CATALOG,
        max_workers: int = DEFAULT_MAX_WORKERS,
        automation_role_name: str = DEFAULT_AUTOMATION_ROLE_NAME,
        on_result: Callable[[Result], None] | None = None,
        run_id: str | None = None,
        guard: ActionGuard | None = None,
        enforce_findings: frozenset[str] = frozenset(),
        precondition: Callable[[Finding, Remediator, Assessment], str | None] | None = None,
        ledger: Ledger | None = None,
        notifier: Callable[[Result], None] | None = None,
        on_trip: Callable[[Result], None] | None = None,
        out_of_time: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.stage = stage
        self.catalog = catalog
        self.max_workers = max(1, max_workers)
        self.automation_role_name = automation_role_name
        self.on_result = on_result
        self.ledger = ledger
        # A guard of the engine's own ledger is settled by the engine's one write of the result (_emit).
        self._own_guard = guard is None and ledger is not None and stage == "apply"
        self.guard = LedgerGuard(ledger) if self._own_guard and ledger is not None else guard
        self.notifier = notifier
        self.on_trip = on_trip
        # Findings an analyst explicitly asked to remediate (Security Hub custom action): enforce unless off.
        self.enforce_findings = enforce_findings
        # Asked after each assessment (apply --plan: the reviewed plan's pre-state): a reason → `skipped`.
        self.precondition = precondition
        # Asked before each finding or group is started (the remediate Lambda: its remaining time). Once true, the
        # rest are returned unstarted (NOT_STARTED, neither recorded nor claimed) for the caller to hand back.
        self.out_of_time = out_of_time
        self.run_id = run_id or new_run_id()
        self.breaker: Breaker = LedgerBreaker(ledger, self.run_id) if ledger is not None else MemoryBreaker()
        # Findings whose result could not be written to the ledger (on_result or the guard raised): not lost,
        # the caller retries them (their claim, if any, was released so the retry is not a "duplicate").
        self.unrecorded: set[str] = set()
        self._remediators: dict[str, Remediator] = {}
        self._remediators_lock = threading.Lock()
        # Reads several findings share (the password policy, a security group), per account for this run;
        # an account's entries are dropped at each write there (_apply, _start_runbook).
        self._reads = ReadCache()

    # -- public ---------------------------------------------------------------------------------
    def run(self, findings: Iterable[Finding]) -> list[Result]:
        """One Result per input finding, in input order."""
        return list(self.stream(findings))

    def stream(self, findings: Iterable[Finding], chunk_size: int = 500) -> Iterator[Result]:
        """Results as they are decided, in input order, holding at most one chunk of findings in memory.

        Each chunk is grouped by account and the accounts run in parallel; sessions and clients are cached
        across chunks, so AssumeRole is still called once per account per run.
        """
        seen = _Seen()
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="account") as pool:
            for chunk in _chunks(findings, chunk_size):
                yield from self._run_chunk(chunk, seen, pool)

    def screen(self, findings: Iterable[Finding]) -> Iterator[tuple[Finding, Result | None]]:
        """The decisions that need no AWS call (for the pull Lambda, which enqueues only what needs work):
        (finding, Result) when decided — unknown rule, off, excluded, duplicate, notify — else (finding, None).
        A notify rule whose remediator notify_assesses is not decided here (the live read needs the target role)
        unless its observation was notified already.
        """
        seen = _Seen()
        for finding in findings:
            decided = self._decide_offline(finding, seen)
            yield finding, (self._emit_decided(finding, decided) if isinstance(decided, Result) else None)

    def _run_chunk(self, chunk: list[Finding], seen: _Seen, pool: ThreadPoolExecutor) -> list[Result]:
        results: dict[int, Result] = {}
        by_account: dict[str, list[tuple[int, Finding, CatalogEntry, str]]] = defaultdict(list)
        for index, finding in enumerate(chunk):
            decided = self._decide_offline(finding, seen)
            if isinstance(decided, Result):
                results[index] = self._emit_decided(finding, decided)
            else:
                entry, mode = decided
                by_account[finding.account_id].append((index, finding, entry, mode))
        for account_results in pool.map(self._run_account, by_account.values()):
            results.update(account_results)
        return [results[i] for i in range(len(chunk))]

    # -- offline decisions ----------------------------------------------------------------------
    def _decide_offline(self, finding: Finding, seen: _Seen) -> Result | tuple[CatalogEntry, str]:
        only = self.config.only_rules
        if only is not None and finding.rule_id not in only:
            return self._result(finding, "skipped", "rule not selected (--rules)")
        out_of_region = self.config.region_reason(finding.region)
        if out_of_region:
            return self._result(finding, "skipped", out_of_region)
        if not is_open_failed(finding):
            state = "/".join(
                s for s in (finding.compliance_status, finding.workflow_status, finding.record_state) if s
            )
            return self._result(finding, "skipped", f"finding is not open and failed ({state})")
        entry = self.catalog.get(finding.rule_id)
        if entry is None:
            return self._result(finding, "skipped", f"no remediator for rule {finding.rule_id}")
        mode = self.config.mode_for(entry.rule_id, entry.rule.default_mode, entry.rule.disruptive)
        if finding.finding_id in self.enforce_findings and mode in ("dry-run", "enforce"):
            mode = "enforce"  # an analyst asked for this one; a rule that is off or notify-only stays so
        if mode == "off":
            return self._result(finding, "skipped", f"rule {finding.rule_id} is off", mode=mode)
        if finding.resource_type not in entry.remediator.resource_types:
            return self._result(
                finding,
                "skipped",
                f"{entry.remediator.__name__} does not handle resource type {finding.resource_type}",
                mode=mode,
            )
        excluded = self.config.exclude.reason(
            finding.rule_id, finding.account_id, finding.resource_id, finding.resource_arn
        ) or self.config.exclude.tag_reason(finding.tags)
        if excluded:
            return self._result(finding, "excluded", excluded, mode=mode)
        duplicate = seen.duplicate_reason(finding)
        if duplicate:
            return self._result(finding, "skipped", duplicate, mode=mode)
        if mode == "notify":
            remediator = self._remediator(entry)
            if not remediator.notify_assesses:
                return self._result(finding, "notified", remediator.notify_message(finding), mode=mode)
            return self._already_notified(finding, mode) or (entry, mode)  # read live first, then notify
        return entry, mode

    # -- per account ----------------------------------------------------------------------------
    def _run_account(self, items: list[tuple[int, Finding, CatalogEntry, str]]) -> dict[int, Result]:
        """In input order, except that the findings of one group (region and rule, or region and remediator class
        for one that combines writes) are assessed together where their first one comes: batched reads, and one
        combined write where several rules change one account-level object."""
        out: dict[int, Result] = {}
        self._prefetch_tags(items)
        groups: dict[tuple[str, str], list[tuple[int, Finding, CatalogEntry, str]]] = defaultdict(list)
        for item in items:
            groups[self._group_key(item[1], item[2])].append(item)
        done: set[tuple[str, str]] = set()
        for item in items:
            key = self._group_key(item[1], item[2])
            if key in done:
                continue
            if key[1]:
                done.add(key)
            members = groups[key] if key[1] else [item]
            if self._stopping():
                out.update({index: self._not_started(finding, mode) for index, finding, _, mode in members})
                continue
            out.update(self._run_group(members, batched=bool(key[1])))
        return out

    def _stopping(self) -> bool:
        return self.out_of_time is not None and self.out_of_time()

    def _not_started(self, finding: Finding, mode: str) -> Result:
        """Not emitted: nothing was read, claimed or recorded for it, so its redelivery starts afresh."""
        return self._result(finding, "skipped", NOT_STARTED, mode=mode)

    def _prefetch_tags(self, items: list[tuple[int, Finding, CatalogEntry, str]]) -> None:
        """The tags of the account's findings that carry none, for every rule at once: one Resource Groups Tagging
        API call per region and 100 resources (tagging.prefetch_tags), kept in the run's read cache where each
        remediator's own tag read finds them. Anything it cannot settle is read per resource, as without it."""
        by_region: dict[str, list[tuple[Finding, CatalogEntry]]] = defaultdict(list)
        for _, finding, entry, _ in items:
            if not finding.tags and entry.remediator.batches_tags():
                by_region[finding.region].append((finding, entry))
        for pairs in by_region.values():
            first = pairs[0][0]
            try:
                target = self._target(first.account_id, first.region, first.partition, self._reads)
                prefetch_tags(target, [arn for finding, entry in pairs
                                       if (arn := self._remediator(entry).tagging_arn(target, finding))])
            except Exception as error:  # the per-resource reads decide: an unreachable account says why there
                log.debug("no batched tag read in %s %s: %s", first.account_id, first.region, error)

    def _run_group(self, group: list[tuple[int, Finding, CatalogEntry, str]], batched: bool) -> dict[int, Result]:
        """One finding, or a group's findings, each result recorded (_emit) as soon as it is decided. A bug in one
        remediator must not lose the rest of the batch: an unexpected error fails the findings it may have
        touched (one, or a combined group)."""
        out: dict[int, Result] = {}
        try:
            pre = self._assess_group(group) if batched else {}
            if len(group) > 1 and group[0][2].remediator.combines_writes:
                together = self._run_together(group, pre)
                return {index: self._emit_decided(finding, together[index]) for index, finding, _, _ in group}
        except Exception as error:
            return {index: self._emit(self._unexpected(finding, mode, error), finding)
                    for index, finding, _, mode in group}
        for index, finding, entry, mode in group:
            if out and self._stopping():  # a group's first finding was cleared to start by _run_account
                out[index] = self._not_started(finding, mode)
                continue
            try:
                result = self._handle(finding, entry, mode, pre.get(index))
            except Exception as error:
                result = self._unexpected(finding, mode, error)
            out[index] = self._emit_decided(finding, result)
        return out

    def _unexpected(self, finding: Finding, mode: str, error: Exception) -> Result:
        log.exception("unexpected error on finding %s", finding.finding_id)
        return self._result(finding, "failed", f"unexpected error: {type(error).__name__}: "
                            f"{first_sentence(str(error), 200)}", mode=mode, error=error_code(error))

    def batch_key(self, finding: Finding) -> tuple[str, str, str]:
        """(account, region, group): the findings one run handles together (a rule's batched reads, one combined
        write) share it; group is "" for a finding handled alone. The deployed path keeps them together."""
        entry = self.catalog.get(finding.rule_id)
        group = self._group_key(finding, entry)[1] if entry is not None else ""
        return finding.account_id, finding.region, group

    @staticmethod
    def _group_key(finding: Finding, entry: CatalogEntry) -> tuple[str, str]:
        """(region, group) for remediators that batch reads or combine writes; (region, "") handles it alone."""
        remediator = entry.remediator
        if remediator.combines_writes:
            return finding.region, f"class:{remediator.__module__}.{remediator.__qualname__}"
        if remediator.batches_reads():
            return finding.region, f"rule:{entry.rule_id}"
        return finding.region, ""

    def _assess_group(self, group: list[tuple[int, Finding, CatalogEntry, str]]) -> dict[int, Assessment | Exception]:
        """assess_many per rule of the group (one remediator instance each, with its params). An unreachable
        account leaves it to each finding's own handling (which reports why)."""
        first = group[0][1]
        try:
            target = self._target(first.account_id, first.region, first.partition, self._reads)
        except TargetUnavailable:
            return {}
        by_rule: dict[str, list[tuple[int, Finding, CatalogEntry, str]]] = defaultdict(list)
        for item in group:
            by_rule[item[2].rule_id].append(item)
        pre: dict[int, Assessment | Exception] = {}
        for items in by_rule.values():
            remediator = self._remediator(items[0][2])
            assessed = remediator.assess_many(target, [finding for _, finding, _, _ in items])
            pre.update({index: outcome for (index, _, _, _), outcome in zip(items, assessed, strict=True)})
        return pre

    def _current(self, pre: Assessment | Exception | None) -> Assessment | Exception | None:
        """A group's assessment while still valid: none of the cached reads it used was dropped by a write since
        (else the finding assesses again, mostly from the cache). One that used no cached read is not kept."""
        if isinstance(pre, Assessment) and (not pre.read_keys or not self._reads.fresh(pre.read_keys, pre.stamp)):
            return None
        return pre

    def _handle(self, finding: Finding, entry: CatalogEntry, mode: str,
                pre: Assessment | Exception | None = None) -> Result:
        prepared = self._prepare(finding, entry, mode, pre)
        if isinstance(prepared, Result):
            return prepared
        if self.guard is not None:
            refusal = self.guard.acquire(finding, self.run_id)
            if refusal:
                return self._result(finding, "skipped", refusal, mode=mode, executor=prepared.planned.executor)
        result = prepared.planned
        try:
            result = self._act(prepared)
        finally:
            if self.guard is not None and not self._own_guard:
                self._finish(self.guard, finding, result)
        return result

    def _prepare(self, finding: Finding, entry: CatalogEntry, mode: str,
                 pre: Assessment | Exception | None = None) -> Result | _Action:
        """Everything before the write: the target, the assessment, and each reason not to act."""
        executor = self.config.rule(entry.rule_id).executor or "boto3"
        try:
            target = self._target(finding.account_id, finding.region, finding.partition, self._reads)
        except TargetUnavailable as unavailable:
            failure = classify(unavailable.code, assume_role=True)  # a missing role is skipped, throttling failed
            outcome = "skipped" if unavailable.skip else failure.outcome
            reason = unavailable.reason if outcome == "failed" or unavailable.skip else \
                f"{failure.label}: {unavailable.reason}"
            return self._result(finding, outcome, reason, mode=mode, executor=executor, error=unavailable.code)
        remediator = self._remediator(entry)
        pre = self._current(pre)
        try:
            if isinstance(pre, Exception):
                raise pre
            assessment = pre if pre is not None else remediator.assess_recorded(target, finding)
        except (RemediationError, ClientError, BotoCoreError) as error:
            return self._error_result(finding, "cannot read current state", error, mode, executor)

        tag_excluded = self.config.exclude.tag_reason(assessment.tags) or assessment.excluded
        if tag_excluded:
            return self._result(finding, "excluded", tag_excluded, mode=mode, executor=executor)
        if assessment.compliant:
            return self._result(finding, "noop", "already compliant", mode=mode, executor=executor)
        if mode == "notify":  # notify_assesses: the notification names what was read (delivered by _emit_decided)
            return self._result(finding, "notified", remediator.notify_detail(finding, assessment), mode=mode,
                                executor=executor, changes=assessment.changes)
        unmet = self.precondition(finding, remediator, assessment) if self.precondition else None
        if unmet:
            return self._result(finding, "skipped", unmet, mode=mode, executor=executor,
                                changes=assessment.changes, pre_state=assessment.pre_state)

        planned = self._result(
            finding, "planned", "", mode=mode, executor=executor, changes=assessment.changes,
            pre_state=assessment.pre_state,
        )
        held = self._held_as_disruptive(finding, entry, mode, assessment)
        if self.stage == "plan" or mode != "enforce" or held:
            planned.reason = "dry-run: would " + "; ".join(assessment.changes or ["remediate"])
            if assessment.disruptive:
                planned.reason += f" (disruptive for this finding: {assessment.disruptive}{held})"
            if entry.rule.disruptive:
                planned.reason += f" [disruptive ({entry.rule.disruption}): {entry.rule.because}]"
            if remediator.side_effects:
                planned.reason += f" [side effects: {remediator.side_effects}]"
            return planned
        return _Action(target, finding, entry, remediator, assessment, planned)

    def _run_together(self, group: list[tuple[int, Finding, CatalogEntry, str]],
                      pre: Mapping[int, Assessment | Exception]) -> dict[int, Result]:
        """Findings of several rules on one account-level object (the password policy): each decided as alone, the
        ones that act written with one call (apply_many merges their changes), then each verified on its own."""
        out: dict[int, Result] = {}
        acting: list[tuple[int, _Action]] = []
        for index, finding, entry, mode in group:
            prepared = self._prepare(finding, entry, mode, pre.get(index))
            if isinstance(prepared, Result):
                out[index] = prepared
                continue
            if prepared.planned.executor != "boto3":  # a runbook writes the whole object: one by one
                out[index] = self._handle(finding, entry, mode, prepared.assessment)
                continue
            refusal = self.guard.acquire(finding, self.run_id) if self.guard is not None else None
            if refusal:
                out[index] = self._result(finding, "skipped", refusal, mode=mode, executor="boto3")
                continue
            held = self._reserve(prepared)
            if held is not None:
                out[index] = held
                self._settle(prepared, held)
                continue
            acting.append((index, prepared))
        if acting:
            try:
                results = self._apply_together([action for _, action in acting])
            except Exception as error:  # settled below all the same: no claim is left held
                results = [self._unexpected(a.finding, a.planned.mode or "enforce", error) for _, a in acting]
            for (index, action), result in zip(acting, results, strict=True):
                out[index] = result
                self._settle(action, result)
        return out

    def _settle(self, action: _Action, result: Result) -> None:
        if self.guard is not None and not self._own_guard:
            self._finish(self.guard, action.finding, result)

    def _apply_together(self, actions: list[_Action], attempts: int = 3) -> list[Result]:
        """One write for every action, then one verification each (they share one live read). A verification that
        finds a setting of ours weaker again (another invocation's write of the same object came in between) reads
        and merges once more from the live state, so no writer's raised field is lost; at most `attempts` writes."""
        target, remediator = actions[0].target, actions[0].remediator
        current = {id(action): action.assessment for action in actions}
        results: dict[int, Result] = {}
        pending = list(actions)
        for attempt in range(attempts):
            try:
                remediator.apply_many(target, [(a.finding, current[id(a)]) for a in pending])
            except (RemediationError, ClientError, BotoCoreError) as error:
                for action in pending:
                    results[id(action)] = self._error_result(action.finding, "apply failed", error,
                                                             action.planned.mode, "boto3", action.planned)
                pending = []
            finally:
                self._invalidate(target, [current[id(a)] for a in pending] or [a.assessment for a in actions])
            again: list[_Action] = []
            for action in pending:
                result, after = self._verify(action)
                if after is not None and not after.compliant and attempt + 1 < attempts:
                    current[id(action)] = after  # merge onto what is live now
                    again.append(action)
                results[id(action)] = result
            pending = again
            if not pending:
                break
        return [results[id(action)] for action in actions]

    def _finish(self, guard: ActionGuard, finding: Finding, result: Result) -> None:
        """Tell the guard the outcome. When that write fails the result is not lost: the finding is listed as
        unrecorded (its message is retried) and its claim released, so the retry is not refused as a duplicate
        (it re-reads the resource before acting: a change that was made is a noop then)."""
        try:
            guard.finish(finding, result)
        except Exception as error:
            self._not_recorded(finding.finding_id, error)
            try:
                guard.release(finding)
            except Exception as again:  # the claim lapses after its lease (DEFAULT_CLAIM_TTL) instead
                log.error("claim of finding %s not released: %s", finding.finding_id, error_code(again))

    def _held_as_disruptive(self, finding: Finding, entry: CatalogEntry, mode: str, assessment: Assessment) -> str:
        """A change its remediator found disruptive for this finding (no narrow change exists) acts only when the
        rule's own entry (or an analyst's request for this finding) says enforce. Returns why it is held, or ""."""
        if not assessment.disruptive or mode != "enforce":
            return ""
        if self.config.rule(entry.rule_id).mode == "enforce" or finding.finding_id in self.enforce_findings:
            return ""
        return f"; acts only when rule {entry.rule_id}'s own entry says enforce"

    def _reserve(self, action: _Action) -> Result | None:
        """A slot of the circuit breaker, or the planned result held back by it."""
        limits = self.config.limits
        trip = self.breaker.reserve(action.entry.rule_id, action.finding.account_id, limits)
        if not trip:
            return None
        planned = action.planned
        planned.reason = trip_reason(trip, action.entry.rule_id, action.finding.account_id, limits)
        planned.circuit_breaker = True
        if trip.first:  # once per run and limit, however many invocations and findings it holds back
            log.warning("run %s: %s", self.run_id, planned.reason)
            self._tell_trip(planned)
        return planned

    def _act(self, action: _Action) -> Result:
        held = self._reserve(action)
        if held is not None:
            return held
        if action.planned.executor == "ssm":
            return self._start_runbook(action)
        return self._apply(action)

    def _invalidate(self, target: Target, assessments: Iterable[Assessment]) -> None:
        """After a write (or half a write): the reads it may have changed are read live again; the account's
        other cached reads stay. An assessment that read nothing through the cache drops nothing."""
        del target
        keys = {key for assessment in assessments for key in assessment.read_keys}
        if keys:
            self._reads.invalidate(keys)

    def _apply(self, action: _Action) -> Result:
        target, finding, remediator = action.target, action.finding, action.remediator
        assessment, result = action.assessment, action.planned
        try:
            remediator.apply(target, finding, assessment)
        except (RemediationError, ClientError, BotoCoreError) as error:
            return self._error_result(finding, "apply failed", error, result.mode, result.executor, result)
        finally:
            # Whatever the write did (or half did): the verification below, and the next findings on this
            # resource, read the live state.
            self._invalidate(target, [assessment])
            if assessment.context.get("created"):  # recorded whatever happened, so a rollback can find it
                result.pre_state = {**(result.pre_state or {}), "created": assessment.context["created"]}
        return self._verify(action)[0]

    def _verify(self, action: _Action) -> tuple[Result, Assessment | None]:
        """The result after a write, from a fresh assessment (also returned; None when there is none)."""
        target, finding, remediator, result = action.target, action.finding, action.remediator, action.planned
        if not remediator.verifies_in_place:
            result.outcome = "started"
            result.reason = "started: " + "; ".join(result.changes) + " (the finding stays open until a person " \
                "switches over)"
            return result, None
        # The verification re-reads the state, not the tags: no write of ours changes tags, and the first
        # assessment read them already when the finding carried none (remediators read live tags only then).
        first = action.assessment
        verify = dataclasses.replace(finding, tags=first.tags) if first.tags and not finding.tags else finding
        try:
            with tags_known(first.tags):  # also when it read none: live_tags answers them, without a call
                after = remediator.assess_recorded(target, verify)
        except (RemediationError, ClientError, BotoCoreError) as error:
            return self._error_result(finding, "applied but cannot verify", error, result.mode, result.executor,
                                      result), None
        if not after.compliant:
            result.outcome = "failed"
            result.reason = "verification failed: still non-compliant after " + "; ".join(result.changes)
            return result, after
        result.outcome = "remediated"
        result.reason = "; ".join(result.changes) or "remediated"
        # What the run set, field by field: rollback puts back only fields that still hold it. A combined write
        # set other findings' fields too: each records its own.
        changed = remediator.changed_fields(first.pre_state, after.pre_state)
        own = remediator.fields_changed_by(first)
        result.post_state = changed if changed is None or own is None else \
            {name: value for name, value in changed.items() if name in own}
        log.info("remediated %s %s in %s: %s", finding.rule_id, finding.resource_id, finding.account_id, result.reason)
        return result, after

    def _start_runbook(self, action: _Action) -> Result:
        target, finding, remediator = action.target, action.finding, action.remediator
        assessment, result = action.assessment, action.planned
        runbook = remediator.runbook
        if runbook is None:
            result.outcome, result.reason = "failed", f"rule {finding.rule_id} has no SSM runbook; use executor boto3"
            return result
        if "runbook_pre_state" in assessment.context:  # the runbook changes more than the boto3 path: record that
            result.pre_state = assessment.context["runbook_pre_state"]
        try:
            result.execution_id = start_runbook(
                target, runbook, finding, self.automation_role_name, self.run_id, remediator.params
            )
        except (RemediationError, ClientError, BotoCoreError) as error:
            return self._error_result(finding, "cannot start runbook", error, result.mode, result.executor, result)
        finally:
            self._reads.clear(finding.account_id)  # the runbook changes the resource from now on, at its own pace
        result.outcome = "started"
        result.reason = f"started {runbook.document} (execution {result.execution_id})"
        return result

    # -- helpers --------------------------------------------------------------------------------
    def _target(self, account_id: str, region: str, partition: str, reads: ReadCache | None = None) -> Target:
        """The sessions' Target, with the run's exclusion by tag for the items of account-level findings."""
        target = self.sessions.target(account_id, region, partition, reads)
        return dataclasses.replace(target, exclusion=self.config.exclude.tag_reason)

    def _remediator(self, entry: CatalogEntry) -> Remediator:
        """One instance per remediator class and rule params, shared by all findings of the run."""
        with self._remediators_lock:
            instance = self._remediators.get(entry.rule_id)
            if instance is None:
                instance = entry.remediator(self.config.rule(entry.rule_id).params)
                self._remediators[entry.rule_id] = instance
            return instance

    def _error_result(
        self,
        finding: Finding,
        what: str,
        error: Exception,
        mode: str | None,
        executor: str | None,
        base: Result | None = None,
    ) -> Result:
        code = aws_error_code(error)
        detail = f"{code}: {_client_error_message(error)}" if code else str(error)
        result = base or self._result(finding, "failed", "", mode=mode, executor=executor)
        failure = classify_error(error)  # failures.py: a deleted resource is skipped, throttling failed (retried)
        reason = f"{what}: {detail}" if failure.outcome == "failed" else f"{failure.label}: {what}: {detail}"
        result.outcome, result.reason, result.error = failure.outcome, reason, error_code(error)
        log.warning("%s %s in %s: %s", finding.rule_id, finding.resource_id, finding.account_id, result.reason)
        return result

    def _result(self, finding: Finding, outcome: str, reason: str, **extra: Any) -> Result:
        return make_result(finding, outcome, reason, self.run_id, stage=self.stage, **extra)

    def follow_up(self, finding: Finding, execution_id: str,
                  pre_state: Mapping[str, Any] | None = None) -> Result | None:
        """The outcome of a runbook this engine started: None while it runs; `remediated` only when the
        resource now reads compliant (the runbook's own success is not taken on trust).

        `pre_state` is the started result's: this result replaces that one in the ledger, so it carries it on,
        and with it the post_state read now (field by field, as a boto3 action records it) for the rollback."""
        entry = self.catalog.get(finding.rule_id)
        executor: dict[str, Any] = {"mode": "enforce", "executor": "ssm", "execution_id": execution_id,
                                    "pre_state": dict(pre_state) if pre_state else None}
        try:
            target = self._target(finding.account_id, finding.region, finding.partition)
            status = execution_status(target, execution_id)
            if status.outcome is None:
                return None
            if status.outcome != "remediated" or entry is None:
                return self._result(finding, "failed", status.reason, **executor)
            remediator = self._remediator(entry)
            after = remediator.assess(target, finding)
        except TargetUnavailable as unavailable:
            return self._result(finding, "failed", unavailable.reason, **executor)
        except (RemediationError, ClientError, BotoCoreError) as error:
            return self._error_result(finding, "cannot check the runbook's work", error, "enforce", "ssm",
                                      self._result(finding, "failed", "", **executor))
        if not after.compliant:
            return self._result(finding, "failed", f"{status.reason}, but the resource is still non-compliant",
                                **executor)
        post_state = remediator.changed_fields(pre_state, after.pre_state) if pre_state else None
        return self._result(finding, "remediated", status.reason, post_state=post_state, **executor)

    def _tell_trip(self, held: Result) -> None:
        if self.on_trip is None:
            return
        try:
            self.on_trip(held)
        except Exception:  # the alert is a report: the run summary lists the trip too
            log.exception("run %s: the alert for a reached limit was not sent", self.run_id)

    def _already_notified(self, finding: Finding, mode: str) -> Result | None:
        """A notify_assesses finding whose observation was notified already (the ledger's completed notification
        claim): skipped before any read, so a scheduled pull does not send it to be assessed again."""
        if self.ledger is None or self.notifier is None:
            return None
        held = self.ledger.completed(notification_key(finding))
        if held is None:
            return None
        return self._result(finding, "skipped", f"duplicate: this observation was already notified by run "
                            f"{held.get('claimed_by') or 'unknown'}", mode=mode)

    def _emit_decided(self, finding: Finding, result: Result) -> Result:
        """A decision; a notified one is delivered first (once per observation with a ledger)."""
        if result.outcome != "notified" or self.notifier is None:
            return self._emit(result, finding)
        key = notification_key(finding)
        if self.ledger is not None and not self.ledger.claim(key, self.run_id):
            held = self.ledger.get(key) or {}
            return self._emit(self._result(
                finding, "skipped", f"duplicate: this observation was already notified by run "
                f"{held.get('claimed_by') or 'unknown'}", mode=result.mode), finding)
        try:
            self.notifier(result)
        except Exception as error:  # one notification lost must not stop the others; the claim is released
            log.warning("%s %s in %s: notification not sent: %s", finding.rule_id, finding.resource_id,
                        finding.account_id, error)
            result = self._result(finding, "failed", f"notification not sent: {type(error).__name__}: {error}",
                                  mode=result.mode, error=error_code(error))
        return self._emit(result, finding, key)

    def _emit(self, result: Result, finding: Finding, key: str | None = None) -> Result:
        """Record the result (the one ledger write per finding: it also settles this thread's claim), then
        hand it on. A refused write is logged and the claim released; the result is still returned."""
        if self.ledger is not None:
            try:
                self.ledger.record(result, key)
            except Exception as error:
                self._not_recorded(finding.finding_id, error)
                self._release(key or idempotency_key(finding))
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception as error:
                self._not_recorded(result.finding_id, error)
        return result

    def _not_recorded(self, finding_id: str, error: Exception) -> None:
        log.error("result of finding %s not recorded: %s: %s", finding_id, error_code(error),
                  first_sentence(str(error), 200))
        self.unrecorded.add(finding_id)  # set.add is atomic: account threads may add at once

    def _release(self, key: str) -> None:
        try:
            self.ledger.release(key)  # type: ignore[union-attr]
        except Exception as error:  # the claim lapses after its lease (DEFAULT_CLAIM_TTL) instead
            log.error("claim %s not released: %s", key, error_code(error))


# The reason of a finding the engine did not start because out_of_time said so (see Engine.out_of_time).
NOT_STARTED = "not started: the invocation is about to time out"


def new_run_id() -> str:
    """Sortable and unique: 20261123T051200Z-1a2b3c4d."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def make_result(finding: Finding, outcome: str, reason: str, run_id: str, **extra: Any) -> Result:
    return Result(
        finding_id=finding.finding_id,
        source=finding.source,
        rule_id=finding.rule_id,
        account_id=finding.account_id,
        region=finding.region,
        resource_type=finding.resource_type,
        resource_id=finding.resource_id,
        outcome=outcome,
        reason=reason,
        run_id=run_id,
        resource_arn=finding.resource_arn,
        last_observed=finding.last_observed,
        product_arn=finding.product_arn,
        **extra,
    )


def _chunks(items: Iterable[Finding], size: int) -> Iterator[list[Finding]]:
    chunk: list[Finding] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _client_error_message(error: Exception) -> str:
    if isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
    else:
        message = str(error)
    # An HTML error page or a multi-line body (a proxy, an emulator) would spread over many log lines.
    return first_sentence(message, 300) if "\n" in message or "<" in message else message
