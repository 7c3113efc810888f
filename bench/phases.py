"""The measured phases: pull, plan, apply (the CLI's functions, findings streamed), the memory check, and the
Lambda handler's import time.

pull writes the findings to a JSON-lines spool as `cspm-remediate pull > findings.json` does; plan and apply
stream them back from it, one at a time, through Engine.stream(): no phase ever holds the findings or the
results in a list, so the memory measured is the pipeline's own.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bench.attribution import CallTally, Economy
from bench.budgets import RuleEconomy, SharedReads
from bench.emulators import Emulators
from bench.measure import Sample, measured, median
from connectors.finding import Finding, FindingError
from connectors.netskope import DEFAULT_PAGE_SIZE
from connectors.securityhub import FILTER_VALUES_MAX
from demo.moto_org import HOME, REMEDIATION_ROLE, TOKEN_SECRET
from functions.engine.config import Config, config_from_dict
from functions.engine.engine import Engine
from functions.engine.pacing import DEFAULT_MAX_WORKERS
from functions.engine.pipeline import PullStats, pull_netskope, pull_securityhub
from functions.engine.sessions import AssumedSessions
from functions.model import Stage

_ROOT = Path(__file__).resolve().parent.parent
MAX_WORKERS = DEFAULT_MAX_WORKERS  # the CLI's default --max-workers
AWS_OUTCOMES = frozenset({"noop", "planned", "remediated", "started", "failed"})  # reached the target account
# Every rule enforced (the disruptive ones by their own entry), and the circuit breaker out of the way: the
# defaults (25 actions per rule, 100 per account per run) would turn most of the apply phase into plans.
BENCH_CONFIG: dict[str, Any] = {
    "mode": "enforce",
    "rules": {"EC2.6": {"mode": "enforce"}, "IAM.3": {"mode": "enforce"}, "S3.1": {"mode": "enforce"}},
    "limits": {"max_actions_per_rule": 10**9, "max_actions_per_account": 10**9},
}


@dataclass
class PhaseRun:
    """One run of one phase at one N."""

    phase: str
    n: int
    sample: Sample
    findings: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    api_calls: Counter[str] = field(default_factory=Counter)  # target-account calls by "service.Operation"
    assume_role: int = 0
    accounts_touched: int = 0
    get_findings: int = 0
    get_findings_served: int = 0  # findings the GetFindings responses carried
    get_findings_queries: int = 0  # (hub, region, filter chunk) queried
    netskope_requests: int = 0
    netskope_items: int = 0
    netskope_page: int = DEFAULT_PAGE_SIZE
    economy: dict[str, RuleEconomy] = field(default_factory=dict)
    calls_by_rule: dict[str, Counter[str]] = field(default_factory=dict)  # plan/apply: every finding's calls
    findings_by_rule: Counter[str] = field(default_factory=Counter)
    shared: SharedReads = field(default_factory=SharedReads)  # plan/apply: what the shared reads may cost
    failures: list[str] = field(default_factory=list)
    # client runs (bench.client_probe): the workers, the latency added per request, and what the emulator spent
    workers: int | None = None
    latency_ms: float = 0.0
    server_cpu: float | None = None  # the emulator process's CPU time during the run
    server_requests: int | None = None

    @property
    def per_second(self) -> float:
        return self.findings / self.sample.wall if self.sample.wall else 0.0

    @property
    def calls_per_finding(self) -> float:
        return sum(self.api_calls.values()) / self.findings if self.findings else 0.0


def bench_config() -> Config:
    return config_from_dict(BENCH_CONFIG)


# -- pull -----------------------------------------------------------------------------------------
def run_pull(n: int, netskope_url: str, spool: Path, rule_ids: Sequence[str],
             regions: tuple[str, ...] = (HOME,)) -> PhaseRun:
    """Both sources into the spool, as `cspm-remediate pull --rules <the planted rules>` does: Security Hub in the
    administrator account's home region (the aggregator), Netskope for all its rules.

    The rules are named because moto ignores GetFindings filters: with the whole catalog (more than 20 rules, so
    several filter chunks) every chunk would page through, and yield, every finding again."""
    hub_stats, netskope_stats = PullStats(), PullStats()
    session = boto3.Session()
    served = Counter[str]()
    session.events.register("after-call.securityhub.GetFindings",
                            lambda parsed, **_: served.update(findings=len(parsed.get("Findings", []))))
    written = 0
    with measured() as sample, spool.open("w", encoding="utf-8") as out:
        sources = (pull_securityhub(list(regions), rule_ids, session=session, stats=hub_stats),
                   pull_netskope(netskope_url, TOKEN_SECRET, stats=netskope_stats))
        for items in sources:
            for item in items:
                if not isinstance(item, FindingError):
                    out.write(json.dumps(item.to_dict(), default=str) + "\n")
                    written += 1
    return PhaseRun(
        "pull", n, sample, findings=written,
        get_findings=sum(hub_stats.requests.values()),
        get_findings_served=served["findings"],
        get_findings_queries=len(regions) * max(1, math.ceil(len(rule_ids) / FILTER_VALUES_MAX)),
        netskope_requests=netskope_stats.requests.get("netskope", 0),
        netskope_items=netskope_stats.findings + netskope_stats.rejected,
    )


def read_spool(spool: Path) -> Iterator[Finding]:
    with spool.open(encoding="utf-8") as lines:
        for line in lines:
            yield Finding.from_dict(json.loads(line))


# -- plan / apply ---------------------------------------------------------------------------------
SG_PHASE = "plan (security groups)"


def run_engine(stage: Stage, n: int, spool: Path, label: str | None = None) -> PhaseRun:
    """The engine as the CLI runs it (same config path, same default parallelism), consumed into counters.
    `label` names the phase in the report (default: the stage)."""
    tally = CallTally()
    sessions = AssumedSessions(role_name=REMEDIATION_ROLE, session_hook=tally.hook)
    economy = Economy(tally)
    engine = Engine(bench_config(), sessions, stage=stage, max_workers=MAX_WORKERS, on_result=economy.on_result)
    run = PhaseRun(label or stage, n, Sample())
    touched: set[str] = set()
    with measured() as run.sample:
        for result in engine.stream(read_spool(spool)):
            run.findings += 1
            run.outcomes[result.outcome] += 1
            if result.outcome in AWS_OUTCOMES:
                touched.add(result.account_id)
                run.shared.observe(result.rule_id, result.account_id, result.region, result.resource_id,
                                   result.outcome)
            if result.outcome == "failed" and len(run.failures) < 5:
                run.failures.append(f"{result.rule_id} {result.resource_id}: {result.reason}")
    run.api_calls = Counter({op: c for op, c in sessions.api_calls.items() if not op.startswith("sts.")})
    run.assume_role = sessions.assume_role_calls
    run.accounts_touched = len(touched)
    run.economy = economy.by_rule
    run.calls_by_rule, run.findings_by_rule = economy.calls_by_rule, economy.findings_by_rule
    return run


# -- client cost ----------------------------------------------------------------------------------
CLIENT_PLAN = "plan, fresh process"
CLIENT_FLOOR = "bare boto3 floor"


def latency_phase(latency_ms: float, workers: int) -> str:
    return f"plan +{latency_ms:g} ms/request, {workers} workers"


def run_client(n: int, spool: Path, world: Emulators, latency_ms: float,
               latency_workers: Sequence[int], warm_up: bool = False) -> list[PhaseRun]:
    """The client's own cost of planning n findings, each run in a fresh interpreter (bench.client_probe): the
    engine as the CLI runs it; the bare boto3 floor for exactly the calls it made; and the engine again with
    `latency_ms` added to every AWS request in the server, once per worker count. `warm_up`: one unreported run
    first, when no plan has read these resources yet (moto builds each account's and region's backends on first
    use, and the first run would pay for it in wall time)."""
    calls = spool.with_suffix(".calls.json")
    if warm_up:
        _client_probe(CLIENT_PLAN, n, ["engine", str(spool), str(calls)], world)
    runs = [_client_probe(CLIENT_PLAN, n, ["engine", str(spool), str(calls)], world)]
    runs.append(_client_probe(CLIENT_FLOOR, n, ["floor", str(calls), "--workers", str(runs[0].workers)], world,
                              findings=runs[0].findings))
    if latency_ms > 0:
        world.set_latency(latency_ms / 1000)
        try:
            for workers in latency_workers:
                run = _client_probe(latency_phase(latency_ms, workers), n,
                                    ["engine", str(spool), str(calls), "--workers", str(workers)], world)
                run.latency_ms = latency_ms
                runs.append(run)
        finally:
            world.set_latency(0.0)
    return runs


def _client_probe(phase: str, n: int, argv: list[str], world: Emulators, findings: int | None = None) -> PhaseRun:
    before = world.server_stats()
    completed = subprocess.run(  # noqa: S603 - our own module, our own interpreter
        [sys.executable, "-m", "bench.client_probe", *argv],
        cwd=_ROOT, env=_child_env(), capture_output=True, text=True, check=False,
    )
    after = world.server_stats()
    if completed.returncode:
        raise RuntimeError(f"client probe {argv[0]} at N={n} failed: {completed.stderr.strip()[-800:]}")
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    sample = Sample(wall=data["wall_s"], cpu=data["cpu_s"], peak_mib=data["rss_peak_mib"],
                    start_mib=data["rss_start_mib"])
    return PhaseRun(phase, n, sample, findings=findings if findings is not None else data["findings"],
                    outcomes=Counter(data.get("outcomes", {})), api_calls=Counter({"all": data["calls"]}),
                    assume_role=data.get("assume_role", data.get("accounts", 0)), workers=data.get("workers"),
                    server_cpu=after["cpu_s"] - before["cpu_s"],
                    server_requests=int(after["requests"] - before["requests"]))


# -- memory ---------------------------------------------------------------------------------------
def run_memory(n: int, netskope_url: str) -> PhaseRun:
    """pull + plan of n findings, streamed end to end, in a fresh interpreter (bench.memory_probe)."""
    completed = subprocess.run(  # noqa: S603 - our own module, our own interpreter
        [sys.executable, "-m", "bench.memory_probe", netskope_url, str(n)],
        cwd=_ROOT, env=_child_env(), capture_output=True, text=True, check=False,
    )
    if completed.returncode:
        raise RuntimeError(f"memory probe at N={n} failed: {completed.stderr.strip()[-800:]}")
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    sample = Sample(wall=data["wall_s"], cpu=data["cpu_s"], peak_mib=data["peak_growth_mib"], peak_kind="rss growth")
    return PhaseRun("pull+plan (memory)", n, sample, findings=data["findings"], outcomes=Counter(data["outcomes"]),
                    netskope_requests=data["netskope_requests"], netskope_items=data["netskope_items"])


# -- import time ---------------------------------------------------------------------------------
def import_time(runs: int = 5) -> dict[str, Any]:
    """A fresh interpreter importing the Lambda handler module (cold start proxy), minus a bare interpreter's
    start: wall time, and the child's CPU time (steadier when the machine is busy). Medians of `runs`."""
    modules = ["functions.aws_lambda.handlers"]
    code = "import " + ", ".join(modules)
    env = _child_env()

    def timed(source: str) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with measured() as sample:
            completed = subprocess.run([sys.executable, "-c", source], cwd=_ROOT, env=env,  # noqa: S603
                                       capture_output=True, text=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if completed.returncode:
            raise RuntimeError(f"{source!r} failed: {completed.stderr.strip()[-500:]}")
        return sample.wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    bare = [timed("pass") for _ in range(runs)]
    loaded = [timed(code) for _ in range(runs)]
    wall = median([w for w, _ in loaded]) - median([w for w, _ in bare])
    cpu = median([c for _, c in loaded]) - median([c for _, c in bare])
    return {"modules": modules, "runs": runs,
            "interpreter_s": round(median([w for w, _ in bare]), 3), "import_s": round(wall, 3),
            "import_cpu_s": round(cpu, 3)}


def _child_env() -> dict[str, str]:
    """This environment (isolation from real AWS, the moto endpoint) with the repository importable."""
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}
