"""The deployed path (issue #19): the pull Lambda, then the work queue drained by concurrent warm containers.

What the admin stack runs, on the bench's moto server: the resources it creates (work queue with its dead-letter
queue, DynamoDB ledger, SNS topic) and the environment it gives the functions (tools/templates/lambdas.py). The
pull handler reads the emulators' Security Hub and Netskope and enqueues one message per finding; then
QUEUE_MAX_CONCURRENCY containers drain the queue, each receiving QUEUE_BATCH_SIZE messages at a time and invoking
the remediate handler with them as Lambda's event source mapping does (demo/sqs_event_source.py: messageId, body,
attributes.ApproximateReceiveCount; the messages not listed in batchItemFailures deleted).

Each container is a process of its own (`python -m bench.deployed consume`): the handler module's one Runtime
(handlers.runtime(), a module global) is then that container's, exactly as in Lambda — its sessions, AssumeRoles,
clients, GC tuning and cold start are per container, and nothing patches the handler module to make a
per-thread Runtime. Processes also keep the containers' CPU off the bench process's GIL (with two cores, five
containers share them as five Lambdas would not: the wall time is a lower bound of what parallelism buys).

Counted per container: target-account calls as the plan phase counts them (AssumedSessions.api_calls, STS left
out), AssumeRole by account, and the admin account's own calls (ledger, queue, SNS, Security Hub write-back) by
operation. moto lacks BatchUpdateFindings: the write-back is answered in-process (demo.deployed.answer_writeback).
moto ignores GetFindings filters: the pull handler queries every catalog chunk of 20 controls, each paging through
all findings (the connector re-checks the filter, so each finding is yielded once); in AWS the chunks of rules
without findings return one empty page each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bench.emulators import Emulators
from bench.measure import Sample, measured
from bench.phases import AWS_OUTCOMES, BENCH_CONFIG, PhaseRun
from demo.moto_org import HOME, REMEDIATION_ROLE, TOKEN_SECRET

_ROOT = Path(__file__).resolve().parent.parent
DEPLOYED_DRY_RUN = "deployed dry-run"
DEPLOYED_ENFORCE = "deployed enforce"
VISIBILITY_SECONDS = 300  # longer than any bench invocation (the stack: 6 x the function timeout)
MAX_RECEIVE_COUNT = 3  # the stack's redrive policy
DRAIN_TIMEOUT_SECONDS = 900.0


def enforce_config() -> dict[str, Any]:
    """The bench's config as the apply phase uses it: every rule enforced, the circuit breaker out of the way."""
    return dict(BENCH_CONFIG)


def dry_run_config() -> dict[str, Any]:
    """The bench's config with every rule at dry-run (plan-like: the remediate handler plans, changes nothing)."""
    return {**BENCH_CONFIG, "mode": "dry-run",
            "rules": {rule: {**entry, "mode": "dry-run"} for rule, entry in BENCH_CONFIG["rules"].items()}}


@dataclass
class DeployedRun(PhaseRun):
    """A PhaseRun of the deployed path (api_calls, assume_role: summed over the containers)."""

    containers: list[dict[str, Any]] = field(default_factory=list)  # each container's report (consume())
    pull_wall: float = 0.0
    drain_wall: float = 0.0
    enqueued: int = 0
    decided_at_pull: dict[str, int] = field(default_factory=dict)
    pull_get_findings: int = 0
    assume_by_account: Counter[str] = field(default_factory=Counter)
    admin_calls: Counter[str] = field(default_factory=Counter)  # the containers' admin-account calls, by operation
    pull_calls: Counter[str] = field(default_factory=Counter)  # the pull handler's (all in the admin account)
    server_cpu_by_service: Counter[str] = field(default_factory=Counter)  # moto's CPU s by signing service
    invocations: int = 0
    messages: Counter[str] = field(default_factory=Counter)  # deliveries to the handler, by kind (finding, summary)
    returned: int = 0  # messages listed in batchItemFailures (or of an invocation that raised)
    raised: int = 0  # invocations that raised
    left_in_queue: int = 0
    dead_letters: int = 0
    results: int = 0  # results the ledger holds for the run

    @property
    def container_count(self) -> int:
        return len(self.containers)


# -- the stack ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stack:
    queue_url: str
    dlq_url: str
    table: str
    topic_arn: str

    @classmethod
    def create(cls, name: str, region: str = HOME) -> Stack:
        """The admin stack's queue (+ DLQ), ledger table and topic, named `name`-…"""
        from functions.engine.ledger import create_table

        sqs = boto3.client("sqs", region_name=region)
        dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(QueueName=f"{name}-work", Attributes={
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
        })["QueueUrl"]
        table = f"{name}-ledger"
        create_table(boto3.client("dynamodb", region_name=region), table)
        topic = boto3.client("sns", region_name=region).create_topic(Name=f"{name}-alerts")["TopicArn"]
        return cls(queue, dlq, table, topic)

    def environment(self, netskope_url: str, config_path: str) -> dict[str, str]:
        """What the admin template gives every function (lambdas.function_environment), for this stack. No
        CSPM_REGIONS: pull Security Hub in the function's region (the aggregator) and act in every region."""
        return {"CSPM_SOURCE": "securityhub,netskope", "REMEDIATION_ROLE_NAME": REMEDIATION_ROLE,
                "NETSKOPE_URL": netskope_url, "NETSKOPE_TOKEN_SECRET": TOKEN_SECRET,
                "LEDGER_TABLE": self.table, "SNS_TOPIC_ARN": self.topic_arn, "WORK_QUEUE_URL": self.queue_url,
                "CSPM_CONFIG": config_path, "AWS_DEFAULT_REGION": HOME,
                # The stack delays the run summary 15 minutes behind its findings; here the event source holds it
                # until nothing else is left (SqsEventSource `last`).
                "CSPM_SUMMARY_DELAY_SECONDS": "0"}

    def depth(self, url: str) -> int:
        """Messages visible, in flight or delayed."""
        attributes = boto3.client("sqs", region_name=HOME).get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(value) for value in attributes.values())


# -- the phase ------------------------------------------------------------------------------------
def run_deployed(n: int, netskope_url: str, config: Mapping[str, Any], world: Emulators | None = None,
                 label: str = DEPLOYED_DRY_RUN, containers: int | None = None,
                 batch_size: int | None = None) -> DeployedRun:
    """One scheduled run through the handlers: the pull in this process, the drain by `containers` processes
    (default: the stack's QUEUE_MAX_CONCURRENCY) receiving `batch_size` messages (QUEUE_BATCH_SIZE). `world`: the
    emulators, for the server's CPU time and requests during the run."""
    from tools.templates.lambdas import QUEUE_BATCH_SIZE, QUEUE_MAX_CONCURRENCY

    containers = containers or QUEUE_MAX_CONCURRENCY
    batch_size = batch_size or QUEUE_BATCH_SIZE
    stack = Stack.create(f"bench-{uuid.uuid4().hex[:8]}")
    run = DeployedRun(label, n, Sample())
    before = world.server_stats() if world is not None else None
    with tempfile.TemporaryDirectory(prefix="cspm-bench-deployed-") as folder:
        config_path = Path(folder) / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        environment = stack.environment(netskope_url, str(config_path))
        with measured() as pulled:
            report = _pull(environment, run.pull_calls)
        run.pull_wall = pulled.wall
        run.enqueued, run.decided_at_pull = int(report["enqueued"]), dict(report["decided_at_pull"])
        run.pull_get_findings = sum(v for k, v in report["requests"].items() if k.startswith("securityhub"))
        run.netskope_requests = int(report["requests"].get("netskope", 0))
        clock = time.perf_counter()
        run.containers = _drain(environment, Path(folder), containers, batch_size)
        run.drain_wall = time.perf_counter() - clock
    if world is not None and before is not None:
        after = world.server_stats()
        run.server_cpu = after["cpu_s"] - before["cpu_s"]
        run.server_requests = int(after["requests"] - before["requests"])
        spent = Counter(after["cpu_by_service"])
        spent.subtract(before["cpu_by_service"])
        run.server_cpu_by_service = Counter({service: round(cpu, 2) for service, cpu in spent.most_common()})
    run.sample = Sample(wall=run.pull_wall + run.drain_wall,
                        cpu=pulled.cpu + sum(c["cpu_s"] for c in run.containers),
                        peak_mib=max((c["rss_peak_mib"] for c in run.containers), default=None))
    for container in run.containers:
        run.api_calls.update({op: c for op, c in container["api_calls"].items() if not op.startswith("sts.")})
        run.assume_by_account.update(container["assume_role"])
        run.admin_calls.update(container["admin_calls"])
        run.invocations += container["invocations"]
        run.messages.update(container["kinds"])
        run.returned += container["returned"]
        run.raised += container["raised"]
    run.assume_role = sum(run.assume_by_account.values())
    _settle(run, stack, report["run_id"])
    return run


def _pull(environment: Mapping[str, str], calls: Counter[str]) -> dict[str, Any]:
    """The pull handler, as the schedule invokes it, in this process (its Runtime dropped afterwards); its
    calls (Security Hub, Secrets Manager, SQS; the ledger's on boto3's default session) counted in `calls`."""
    from functions.aws_lambda import handlers

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.split(".", 1)[1]] += 1

    default = boto3._get_default_session()
    with _environment(environment):
        handlers.reset_runtime()
        default.events.register("before-call", count, unique_id="bench-deployed-pull")
        try:
            handlers.runtime().session.events.register("before-call", count)
            report: dict[str, Any] = handlers.pull({})
        finally:
            default.events.unregister("before-call", unique_id="bench-deployed-pull")
            handlers.reset_runtime()
    return report


def _drain(environment: Mapping[str, str], folder: Path, containers: int, batch_size: int) -> list[dict[str, Any]]:
    """`containers` consumer processes at once, until the queue is empty; their reports."""
    env = {**os.environ, **environment,
           "PYTHONPATH": os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    started = []
    for number in range(containers):
        out, err = folder / f"container-{number}.json", folder / f"container-{number}.log"
        with out.open("w") as stdout, err.open("w") as stderr:  # files, not pipes: a full pipe would stall a
            # container, and the others wait for its messages
            process = subprocess.Popen(  # noqa: S603 - our own module, our own interpreter
                [sys.executable, "-m", "bench.deployed", "consume", "--container", str(number),
                 "--batch-size", str(batch_size)], cwd=_ROOT, env=env, stdout=stdout, stderr=stderr)
        started.append((process, out, err))
    reports = []
    for process, out, err in started:
        try:
            code = process.wait(timeout=DRAIN_TIMEOUT_SECONDS + 60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code:
            raise RuntimeError(f"container {out.stem} exited {code}: {err.read_text()[-800:]}")
        reports.append(json.loads(out.read_text().strip().splitlines()[-1]))
    return reports


def _settle(run: DeployedRun, stack: Stack, run_id: str) -> None:
    """What the run left: the ledger's results, and the messages still in the queue or its DLQ."""
    from functions.engine.ledger import DynamoDbLedger

    ledger = DynamoDbLedger(stack.table, client=boto3.client("dynamodb", region_name=HOME))
    touched: set[str] = set()
    for row in ledger.results(run_id):
        run.results += 1
        run.outcomes[row["outcome"]] += 1
        if row["outcome"] in AWS_OUTCOMES:
            touched.add(row["account_id"])
        if row["outcome"] == "failed" and len(run.failures) < 5:
            run.failures.append(f"{row['rule_id']} {row['resource_id']}: {row.get('reason', '')}")
    run.accounts_touched = len(touched)
    run.findings = run.enqueued
    run.left_in_queue = stack.depth(stack.queue_url)
    run.dead_letters = stack.depth(stack.dlq_url)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- one container ---------------------------------------------------------------------------------
def consume(container: int, batch_size: int) -> dict[str, Any]:
    """One warm container: its cold start (the handler module's import, its Runtime), then invocations of the
    remediate handler until the queue is drained. Everything counted is this process's."""
    cpu, clock = time.process_time(), time.perf_counter()
    admin_calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        admin_calls[event_name.split(".", 1)[1]] += 1

    # The ledger's client comes from boto3's default session: count it before the runtime creates it.
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", count)
    from demo.deployed import answer_writeback
    from demo.sqs_event_source import SqsEventSource
    from functions.aws_lambda import handlers

    rt = handlers.runtime()
    rt.session.events.register("before-call", count)
    answer_writeback(rt.session)
    assumed: Counter[str] = Counter()
    # As the deployed-path tests do (tests/e2e/test_deployed_path.py): the caller's session makes every AssumeRole.
    rt.sessions._base.events.register(
        "before-parameter-build.sts.AssumeRole",
        lambda params, **_: assumed.update([params["RoleArn"].split(":")[4]]))
    cold_start = time.perf_counter() - clock
    # The Lambda service's poller, not the function: its own session, not counted.
    sqs = boto3.Session().client("sqs", region_name=HOME)
    queue_url = rt.settings.work_queue_url or ""
    drained = SqsEventSource(sqs, queue_url, handlers.remediate, consumers=1, batch_size=batch_size,
                             last=lambda body: body.get("kind") == "summary", timeout_seconds=DRAIN_TIMEOUT_SECONDS,
                             retry_after_seconds=1).drain()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "container": container, "cold_start_s": round(cold_start, 3),
        "wall_s": round(time.perf_counter() - clock, 3), "cpu_s": round(time.process_time() - cpu, 3),
        "rss_peak_mib": round(usage.ru_maxrss / 1024, 1),
        "invocations": drained.invocations, "messages": drained.messages, "deleted": drained.deleted,
        "returned": drained.returned, "raised": drained.raised, "kinds": dict(drained.kinds),
        "api_calls": dict(rt.sessions.api_calls), "assume_role": dict(assumed),
        "admin_calls": dict(admin_calls),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deployed", description="one warm container of the "
                                     "deployed-path bench: drain the work queue through the remediate handler")
    parser.add_argument("command", choices=["consume"])
    parser.add_argument("--container", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args(argv)
    print(json.dumps(consume(args.container, args.batch_size)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
