"""Lambda entry points: thin adapters from AWS events to the engine (DESIGN §1).

    pull        EventBridge Scheduler → pull a source, screen offline, enqueue what needs work (+ a delayed
                "summary" message for the run)
    remediate   SQS consumer (ReportBatchItemFailures): findings → engine (apply) with the ledger as guard;
                Security Hub write-back; "status" messages follow started runbooks; "summary" publishes
    events      Security Hub EventBridge events: "Findings - Imported" (enabled rules) and "Custom Action"
                (an analyst's "remediate now": enforced for the selected findings)

Configuration comes from the same environment variables as the CLI (functions/settings.py). Everything that
is expensive to build (sessions, clients, the ledger) lives in one Runtime per warm container.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from connectors import asff, securityhub_v2
from connectors.finding import Finding, FindingError
from connectors.netskope import NetskopeError
from functions.aws_lambda import work_queue
from functions.aws_lambda.notifications import notify_message, publish, publish_one, trip_message
from functions.aws_lambda.writeback_v2 import FindingWriteBack  # ASFF → BatchUpdateFindings, OCSF → …V2
from functions.engine.catalog import CATALOG
from functions.engine.config import Config, ConfigError, is_remote
from functions.engine.engine import NOT_STARTED, Engine, make_result, new_run_id
from functions.engine.failures import retried as failure_retried
from functions.engine.ledger import (
    ACTION_OUTCOMES,
    COMPLETED,
    DynamoDbLedger,
    Ledger,
    SqliteLedger,
    idempotency_key,
    result_from_row,
)
from functions.engine.pipeline import PullStats, pull_netskope, pull_prowler, pull_securityhub, pull_securityhub_v2
from functions.engine.sessions import CLIENT_CONFIG, AssumedSessions, aws_client, external_id_from_secret
from functions.engine.settings import Settings, csv, env
from functions.engine.startup import tune_gc
from functions.model import Result, Stage
from functions.report import summarize_error

log = logging.getLogger("cspm_remediate.handlers")
log.setLevel(logging.INFO)

STATUS_FIRST_DELAY = 60  # seconds before the first look at a started runbook
STATUS_MAX_ATTEMPTS = 12  # 60 s doubling, capped at SQS's 900 s: about 2 h in all
CUSTOM_ACTION = "Security Hub Findings - Custom Action"
CONFIG_TTL_SECONDS = 300  # a changed config document (SSM, S3) reaches warm containers within this time


@dataclass
class Runtime:
    """What a warm Lambda container keeps between invocations."""

    settings: Settings
    config: Config
    sessions: AssumedSessions
    ledger: Ledger | None
    session: boto3.Session = field(default_factory=boto3.Session)
    clients: dict[str, Any] = field(default_factory=dict, repr=False)
    config_loaded: float = field(default_factory=time.monotonic)
    # Actions whose result the ledger refused (it keeps the pre-state a rollback needs): written again at the
    # start of this container's next invocation. Their messages are returned too; the redelivery finds the
    # resource fixed (noop), and a noop never replaces a recorded action.
    unrecorded: list[Result] = field(default_factory=list, repr=False)

    def config_expired(self) -> bool:
        """A document in SSM or S3 can change under a warm container (a stack update rewrites the parameter but
        not the functions' environment): it is read again after CONFIG_TTL_SECONDS."""
        remote = bool(self.settings.config_path) and is_remote(self.settings.config_path or "")
        return remote and time.monotonic() - self.config_loaded >= CONFIG_TTL_SECONDS

    def reload_config(self) -> None:
        self.config = self.settings.config(known_rules=CATALOG)  # a ConfigError leaves the old one, unused
        self.config_loaded = time.monotonic()

    @classmethod
    def from_env(cls) -> Runtime:
        settings = Settings.from_env()
        ledger: Ledger | None = None
        if settings.ledger_table:
            ledger = DynamoDbLedger(settings.ledger_table)
        elif settings.ledger_path:
            ledger = SqliteLedger(settings.ledger_path)
        return cls(
            settings=settings,
            config=settings.config(known_rules=CATALOG),
            sessions=AssumedSessions(
                role_name=settings.role_name, external_id=settings.external_id,
                external_id_provider=(external_id_from_secret(settings.external_id_secret)
                                      if settings.external_id_secret else None)),
            ledger=ledger,
        )

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = aws_client(self.session, service, config=CLIENT_CONFIG)
        return self.clients[service]

    def engine(self, stage: Stage, run_id: str, enforce: frozenset[str] = frozenset(),
               out_of_time: Callable[[], bool] | None = None) -> Engine:
        """The engine of one invocation. Its run-wide state is the ledger's (claims, circuit-breaker counters,
        notifications sent), so one run split over many invocations keeps its limits and notifies once."""
        topic = self.settings.sns_topic_arn
        return Engine(
            self.config, self.sessions, stage=stage, run_id=run_id,
            max_workers=self.settings.max_workers,
            automation_role_name=self.settings.automation_role_name,
            enforce_findings=enforce,
            ledger=self.ledger,
            notifier=self._sender(notify_message) if topic else None,
            on_trip=self._sender(trip_message) if topic else None,
            out_of_time=out_of_time,
        )

    def _sender(self, message: Callable[[Result], tuple[str, str]]) -> Callable[[Result], None]:
        topic = self.settings.sns_topic_arn
        assert topic  # callers pass a sender only when the topic is set

        def send(result: Result) -> None:
            publish_one(self.client("sns"), topic, message(result))
        return send

    def enqueue(self, messages: Iterable[work_queue.Message]) -> int:
        if not self.settings.work_queue_url:
            raise RuntimeError("WORK_QUEUE_URL is not set")
        return work_queue.send(self.client("sqs"), self.settings.work_queue_url, messages)


_RUNTIME: Runtime | None = None


def runtime() -> Runtime:
    """The warm container's Runtime, built on the first invocation (the cold start). A configuration that does not
    load or validate fails that invocation with one line naming the problem — the function's Errors alarm fires,
    SQS keeps the batch for redelivery — and nothing runs on defaults; the next invocation tries again, so fixing
    the parameter or object is enough. A document in SSM or S3 is read again every CONFIG_TTL_SECONDS."""
    global _RUNTIME
    try:
        if _RUNTIME is None:
            _RUNTIME = Runtime.from_env()
        elif _RUNTIME.config_expired():
            _RUNTIME.reload_config()
    except ConfigError as error:
        log.error("configuration rejected, nothing was done: %s", error)
        raise
    return _RUNTIME


def reset_runtime() -> None:
    """For tests: the next invocation reads the environment again."""
    global _RUNTIME
    _RUNTIME = None


# -- pull -----------------------------------------------------------------------------------------
def pull(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Scheduled pull. Event (the schedule's Input): {"source": "securityhub" | "netskope"} or nothing (all)."""
    rt = runtime()
    sources = [event["source"]] if isinstance(event, dict) and event.get("source") else list(rt.settings.sources)
    run_id = new_run_id()
    stats = PullStats()
    failed: dict[str, str] = {}
    findings = _findings_only(_pull_sources(rt, sources, stats, failed), stats)
    summary = _enqueue_screened(rt, run_id, findings, enforce=False)
    rt.enqueue([work_queue.summary_message(run_id, "apply", rt.settings.summary_delay)])
    report = {"run_id": run_id, "sources": sources, "pulled": stats.findings, "rejected": stats.rejected,
              "requests": stats.requests, "failed_sources": failed, **summary}
    log.info("pull %s", report)
    if failed:
        # Raised only now, once the other sources' findings are enqueued: the invocation must count as an error
        # so the pull function's Errors alarm tells a person. A source failing on every schedule (an expired
        # token, Security Hub disabled in a region) would otherwise leave its findings unremediated, silently.
        raise PullIncomplete(report)
    return report


class PullIncomplete(RuntimeError):
    """Some sources (or Security Hub regions) could not be pulled; the others' findings were enqueued. The
    message is the one line Lambda reports; `report` is the full pull report."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        failed = "; ".join(f"{name}: {why}" for name, why in report["failed_sources"].items())
        super().__init__(f"pull failed for {failed} — run {report['run_id']} went on with the other sources: "
                         f"{report['pulled']} finding(s) pulled, {report.get('enqueued', 0)} enqueued")


def _pull_sources(rt: Runtime, sources: list[str], stats: PullStats,
                  failed: dict[str, str]) -> Iterator[Finding | FindingError]:
    """Each source, and each Security Hub region, on its own: one that fails is logged in one line and
    recorded in `failed` (name → why), and the rest are still pulled."""
    settings = rt.settings

    def netskope() -> Iterator[Finding | FindingError]:
        if not settings.netskope_url or not settings.netskope_token_secret:
            raise RuntimeError("netskope needs NETSKOPE_URL and NETSKOPE_TOKEN_SECRET")
        return pull_netskope(settings.netskope_url, settings.netskope_token_secret, stats=stats,
                             auth=settings.netskope_auth, extra_rules=rt.config.netskope_rules)

    def prowler_files() -> Iterator[Finding | FindingError]:
        inputs = csv(env("prowler_input"))
        if not inputs:
            raise RuntimeError("prowler needs CSPM_PROWLER_INPUT (s3://BUCKET/KEY of a Prowler json-ocsf output)")
        return pull_prowler(inputs, stats=stats, session=rt.session)

    units: list[tuple[str, Callable[[], Iterable[Finding | FindingError]]]] = []
    for source in sources:
        if source in ("securityhub", "securityhub-v2"):
            pull = pull_securityhub if source == "securityhub" else pull_securityhub_v2
            for region in list(settings.regions) or [rt.session.region_name or "us-east-1"]:
                units.append((f"{source} {region}", partial(pull, [region], None, session=rt.session, stats=stats)))
        elif source == "netskope":
            units.append(("netskope", netskope))
        elif source == "prowler":
            units.append(("prowler", prowler_files))
        else:
            units.append((source, partial(_unknown_source, source)))
    for name, pull_unit in units:
        try:
            yield from pull_unit()
        except Exception as error:  # whatever breaks one source must not cost the others their findings
            failed[name] = summarize_error(error)
            log.error("%s: pull failed, its findings are missing from this run: %s", name, failed[name],
                      exc_info=not isinstance(error, ClientError | BotoCoreError | NetskopeError))


def _unknown_source(source: str) -> Iterator[Finding | FindingError]:
    raise RuntimeError(f"unknown source {source!r} in CSPM_SOURCE (securityhub, securityhub-v2, netskope, prowler)")


def _findings_only(items: Iterable[Finding | FindingError], stats: PullStats) -> Iterator[Finding]:
    for item in items:
        if isinstance(item, FindingError):
            log.error("rejected finding: %s", item)  # counted in stats by the pipeline
        else:
            yield item


def _enqueue_screened(rt: Runtime, run_id: str, findings: Iterable[Finding], enforce: bool) -> dict[str, Any]:
    """Screen offline (rule known and on, not excluded, not a duplicate); enqueue the rest; everything decided
    here is counted. A notify-only finding is published to SNS as it is screened: once per observation with a
    ledger (a later pull of the same observation records it `skipped` as already notified), on every pull
    without one (nothing remembers what was sent)."""
    engine = rt.engine("plan", run_id)
    decided: Counter[str] = Counter()

    def to_enqueue() -> Iterator[tuple[tuple[str, str, str], work_queue.Message]]:
        for finding, result in engine.screen(findings):
            if result is None:
                yield engine.batch_key(finding), work_queue.finding_message(finding, run_id, enforce=enforce)
            else:
                decided[result.outcome] += 1

    enqueued = rt.enqueue(work_queue.side_by_side(to_enqueue()))
    return {"enqueued": enqueued, "decided_at_pull": dict(decided)}


# -- remediate ------------------------------------------------------------------------------------
# Stop starting work this long before the function's timeout, and hand the records not yet started back as
# batchItemFailures: one finding's calls can take tens of seconds (botocore: 5 attempts with up to ~15 s of
# backoff, 30 s read timeout), and the write-back and follow-up sends after the last one need a few more. A
# function killed by its timeout fails the whole batch instead: SQS redelivers what was already done, and the
# claims it held block those redeliveries until their lease ends.
REMAINING_TIME_MARGIN_MS = 30_000


@dataclass
class _Item:
    """One finding message of the batch."""

    message_id: str
    run_id: str
    finding: Finding
    enforce: bool
    receive_count: int


class _Batch:
    """The records' fates: which messages come back (batchItemFailures). Every record is settled on its own.

    Not Powertools' BatchProcessor, though it is its per-record model: its handler takes one record at a time,
    and this batch's findings run together through one engine (accounts in parallel); the messages to return
    are decided by outcome (failure classes, unrecorded results) as well as by exceptions; and records are
    returned unstarted when time runs short, which BatchProcessor does not do. Measured with aws-lambda-powertools
    3.37.0 in the lock: `make package` 18.24 MB → 19.34 MB, and 0.1-0.6 s more cold start to import its batch
    utility, for about thirty lines it would replace.
    """

    def __init__(self, context: Any) -> None:
        self._remaining = getattr(context, "get_remaining_time_in_millis", None)
        self.returned: list[str] = []

    def retry(self, message_id: str, why: str) -> None:
        log.warning("message %s returned to the queue: %s", message_id, why)
        self.returned.append(message_id)

    def out_of_time(self) -> bool:
        return self._remaining is not None and self._remaining() < REMAINING_TIME_MARGIN_MS

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in dict.fromkeys(self.returned)]}


def remediate(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batch. Returns {"batchItemFailures": [...]}: the messages to deliver again — a transient failure
    (engine/failures.py), a result the ledger did not take, an error in that record's own handling, or a record
    not started before the time margin. Permanent failures are recorded and their messages deleted. Whatever
    goes wrong for one record is that record's alone."""
    rt = runtime()
    rt.sessions.forget_failures()
    _record_unrecorded(rt)
    batch = _Batch(context)
    findings: dict[str, list[_Item]] = defaultdict(list)
    others: list[tuple[str, dict[str, Any]]] = []
    for record in event.get("Records", []):
        message_id = record.get("messageId", "")
        try:
            body = work_queue.decode(record.get("body", ""))
            if body["kind"] == "finding":
                run_id = body.get("run_id") or new_run_id()
                receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
                findings[run_id].append(_Item(message_id, run_id, Finding.from_dict(body["finding"]),
                                              bool(body.get("enforce")), receives))
            else:
                others.append((message_id, body))
        except (ValueError, TypeError, KeyError) as error:  # FindingError is a ValueError
            # Nothing to record it under: it goes round to the DLQ, whose alarm shows it to a person.
            batch.retry(message_id, f"rejected (it will reach the DLQ): {error}")

    writeback = FindingWriteBack(rt.client("securityhub"))
    for run_id, items in findings.items():
        _remediate_run(rt, run_id, items, batch, writeback)
    # Status checks, then summaries: a summary delivered with its run's last findings comes after them.
    for message_id, body in sorted(others, key=lambda other: other[1]["kind"] == "summary"):
        if batch.out_of_time():
            batch.retry(message_id, NOT_STARTED)
            continue
        try:
            if body["kind"] == "status":
                _follow_up(rt, body)
            else:
                _publish_summary(rt, body["run_id"], body.get("stage", "apply"))
        except Exception as error:
            log.exception("message %s (%s) failed", message_id, body.get("kind"))
            batch.retry(message_id, f"{type(error).__name__}: {error}")
    try:
        writeback.flush()  # reporting, not remediation: failures are logged there, never retried as work
    except Exception:
        log.exception("Security Hub write-back failed")
    return batch.response()


def _remediate_run(rt: Runtime, run_id: str, items: list[_Item], batch: _Batch,
                   writeback: FindingWriteBack) -> None:
    """One run's findings of the batch through one engine run, as the CLI runs them: accounts in parallel, and
    within an account the findings of one group (a rule's batched reads, the password policy's one combined write)
    handled together. The engine checks the remaining time before each finding or group it starts; what it did
    not start comes back unrecorded (NOT_STARTED) and its message is returned to the queue."""
    try:
        engine = rt.engine("apply", run_id, frozenset(i.finding.finding_id for i in items if i.enforce),
                           out_of_time=batch.out_of_time)
        results = engine.run([item.finding for item in items])
    except Exception as error:  # the engine settles each finding itself; this is a bug around it
        log.exception("run %s: engine failed", run_id)
        for item in items:
            batch.retry(item.message_id, f"{type(error).__name__}: {error}")
        return
    follow_ups: list[tuple[_Item, work_queue.Message]] = []
    for item, result in zip(items, results, strict=True):
        if result.outcome == "skipped" and result.reason == NOT_STARTED:
            batch.retry(item.message_id, NOT_STARTED)
            continue
        try:
            _settle(rt, engine, item, result, batch, writeback, follow_ups)
        except Exception as error:
            log.exception("finding %s: after its result", item.finding.finding_id)
            batch.retry(item.message_id, f"{type(error).__name__}: {error}")
    _send_follow_ups(rt, follow_ups, batch)


def _record_unrecorded(rt: Runtime) -> None:
    """Write the actions an earlier invocation could not record; what fails again waits for the next one."""
    if rt.ledger is None:
        return
    pending, rt.unrecorded = rt.unrecorded, []
    for result in pending:
        try:
            rt.ledger.record(result)
        except Exception as error:
            log.error("result of finding %s still not recorded: %s", result.finding_id, type(error).__name__)
            rt.unrecorded.append(result)


def _settle(rt: Runtime, engine: Engine, item: _Item, result: Result, batch: _Batch,
            writeback: FindingWriteBack, follow_ups: list[tuple[_Item, work_queue.Message]]) -> None:
    if item.finding.finding_id in engine.unrecorded:
        batch.retry(item.message_id, f"its result ({result.outcome}) was not recorded in the ledger")
        if result.outcome in ACTION_OUTCOMES:
            rt.unrecorded.append(result)
    elif failure_retried(result.outcome, result.error):
        batch.retry(item.message_id, f"transient failure: {result.reason}")
    if result.outcome == "started" and result.execution_id:
        follow_ups.append((item, work_queue.status_message(result.execution_id, item.finding, item.run_id, 1,
                                                           STATUS_FIRST_DELAY, result.pre_state)))
    elif result.reason.startswith("duplicate") and item.receive_count > 1:
        resend = _lost_follow_up(rt, item)
        if resend is not None:
            follow_ups.append((item, resend))
    if not result.reason.startswith("duplicate"):  # Security Hub keeps one note: keep the real one
        try:
            writeback.add(item.finding, result)
        except Exception:  # reporting, not remediation: logged, never retried as work (the retry is a duplicate)
            log.exception("finding %s: Security Hub write-back not queued", item.finding.finding_id)


def _lost_follow_up(rt: Runtime, item: _Item) -> work_queue.Message | None:
    """A redelivered finding whose runbook this run started: the status check may be what failed to be sent
    (the claim makes the redelivery a duplicate, so only this can send it). A second check is harmless."""
    if rt.ledger is None:
        return None
    claim = rt.ledger.get(idempotency_key(item.finding)) or {}
    started = claim.get("result") or {}
    if claim.get("status") != COMPLETED or started.get("outcome") != "started" or not started.get("execution_id"):
        return None
    return work_queue.status_message(started["execution_id"], item.finding, started.get("run_id") or item.run_id,
                                     1, STATUS_FIRST_DELAY, started.get("pre_state"))


def _send_follow_ups(rt: Runtime, follow_ups: list[tuple[_Item, work_queue.Message]], batch: _Batch) -> None:
    """The status checks of started runbooks, each its finding's own: one that cannot be sent returns its
    finding's message (the redelivery sends it: _lost_follow_up)."""
    for item, message in follow_ups:
        try:
            rt.enqueue([message])
        except Exception as error:
            log.error("finding %s: status check of %s not queued: %s", item.finding.finding_id,
                      message.body.get("execution_id"), error)
            batch.retry(item.message_id, "its runbook's status check could not be queued")


def _follow_up(rt: Runtime, body: dict[str, Any]) -> None:
    """A started runbook: look again later, or record how it ended (verified against the resource)."""
    finding = Finding.from_dict(body["finding"])
    attempt = int(body.get("attempt", 1))
    engine = rt.engine("apply", body["run_id"])
    pre_state = body.get("pre_state")
    result = engine.follow_up(finding, body["execution_id"], pre_state)
    if result is None:
        if attempt >= STATUS_MAX_ATTEMPTS:
            result = make_result(finding, "failed", f"SSM execution {body['execution_id']} still running after "
                                 f"{attempt} checks; look at it in Systems Manager", body["run_id"],
                                 pre_state=pre_state)
        else:
            delay = STATUS_FIRST_DELAY * 2 ** attempt
            rt.enqueue([work_queue.status_message(body["execution_id"], finding, body["run_id"], attempt + 1, delay,
                                                  pre_state)])
            return
    if rt.ledger is not None:
        rt.ledger.record(result)
    writeback = FindingWriteBack(rt.client("securityhub"))
    writeback.add(finding, result)
    writeback.flush()  # reporting, not remediation: failures are logged there, never retried as work


def _publish_summary(rt: Runtime, run_id: str, stage: str) -> None:
    if not rt.settings.sns_topic_arn or rt.ledger is None:
        log.info("run %s: no SNS topic or ledger configured, no summary published", run_id)
        return
    results = [result_from_row(row) for row in rt.ledger.results(run_id)]
    publish(rt.client("sns"), rt.settings.sns_topic_arn, results, run_id, stage, notify_each=False)





# -- events ---------------------------------------------------------------------------------------
def events(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Security Hub EventBridge events → the work queue. A custom action enforces the selected findings
    (unless their rule is off or notify-only); an imported finding goes through the configured modes."""
    rt = runtime()
    enforce = event.get("detail-type") == CUSTOM_ACTION
    stats = PullStats()
    ocsf = event.get("detail-type") == securityhub_v2.EVENT_DETAIL_TYPE  # Security Hub's OCSF findings
    try:
        items = list(securityhub_v2.parse_payload(event) if ocsf
                     else asff.parse_payload(event, asff.Provenance.from_env()))  # whom to believe (#12)
    except (FindingError, ValueError) as error:
        log.error("event rejected: %s", error)
        return {"enqueued": 0, "rejected": 1}
    findings = [i for i in items if isinstance(i, Finding)]
    if ocsf:  # each OCSF event carries a finding's latest state: a passed or resolved one is no work
        findings = [f for f in findings if securityhub_v2.is_open_failed(f)]
    stats.rejected = sum(isinstance(i, FindingError) for i in items)
    for item in items:
        if isinstance(item, FindingError):
            log.error("rejected finding in event: %s", item)
    summary = _enqueue_screened(rt, new_run_id(), findings, enforce=enforce)
    return {"custom_action": enforce, "findings": len(findings), "rejected": stats.rejected, **summary}


# Once per container, at the end of the cold start's imports (functions/engine/startup.py says why): what the
# imports built is frozen, and the clients the first invocation creates are not walked 700 allocations at a time.
tune_gc()
