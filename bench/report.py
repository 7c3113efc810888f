"""From phase runs to budgets, the Markdown table and results.json."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import budgets as checks
from bench.budgets import Budget, RuleEconomy
from bench.deployed import DEPLOYED_DRY_RUN, DEPLOYED_ENFORCE, DeployedRun
from bench.measure import median
from bench.phases import CLIENT_FLOOR, CLIENT_PLAN, SG_PHASE, PhaseRun
from bench.synth import BENCH_RULES
from functions.engine.catalog import CATALOG


@dataclass
class Row:
    """One line of the table: the runs of one phase at one N, summarized (medians for times)."""

    phase: str
    n: int
    runs: int
    findings: int
    per_second: float
    wall: float
    cpu: float
    calls_per_finding: float | None
    assume_role: int | None
    get_findings: int | None
    netskope_requests: int | None
    peak_mib: float | None
    peak_kind: str


def rows(runs: Sequence[PhaseRun]) -> list[Row]:
    groups: dict[tuple[str, int], list[PhaseRun]] = {}
    for run in runs:
        groups.setdefault((run.phase, run.n), []).append(run)
    out = [_row(phase, n, group) for (phase, n), group in groups.items()]
    for n in dict.fromkeys(run.n for run in runs if run.phase in ("pull", "plan", "apply")):
        parts = [row for row in out if row.n == n and row.phase in ("pull", "plan", "apply")]
        wall, cpu = sum(r.wall for r in parts), sum(r.cpu for r in parts)
        stages = "+".join(r.phase for r in parts)
        out.append(Row(f"total ({stages})", n, min(r.runs for r in parts), n, n / wall if wall else 0.0, wall, cpu,
                       None, None, None, None, max((r.peak_mib or 0.0) for r in parts), "rss"))
    return out


def _row(phase: str, n: int, group: list[PhaseRun]) -> Row:
    engine = phase.startswith(("plan", "apply", "deployed"))
    pull = phase == "pull"
    peaks = [r.sample.peak_mib for r in group if r.sample.peak_mib is not None]
    return Row(
        phase=phase, n=n, runs=len(group), findings=group[0].findings,
        per_second=median([r.per_second for r in group]),
        wall=median([r.sample.wall for r in group]),
        cpu=median([r.sample.cpu for r in group]),
        calls_per_finding=group[0].calls_per_finding if engine else None,
        assume_role=max(r.assume_role for r in group) if engine else None,
        get_findings=max(r.get_findings for r in group) if pull else None,
        netskope_requests=max(r.netskope_requests for r in group) if pull or "memory" in phase else None,
        peak_mib=max(peaks) if peaks else None,
        peak_kind=group[0].sample.peak_kind,
    )


def economy(runs: Sequence[PhaseRun]) -> dict[str, RuleEconomy]:
    merged: dict[str, RuleEconomy] = {}
    for run in runs:
        for rule_id, e in run.economy.items():
            merged.setdefault(rule_id, RuleEconomy()).merge(e)
    return merged


def budgets(runs: Sequence[PhaseRun], memory_sizes: Sequence[int]) -> list[Budget]:
    out: list[Budget] = []
    for run in _worst(runs, "pull", lambda r: r.get_findings - r.get_findings_served / checks.GET_FINDINGS_PAGE):
        out.append(checks.get_findings(run.get_findings, run.get_findings_served, run.get_findings_queries,
                                       f"N={run.n:,}"))
    for run in _worst(runs, "pull", lambda r: r.netskope_requests):
        out.append(checks.netskope_requests(run.netskope_requests, run.netskope_items, run.netskope_page,
                                            f"N={run.n:,}"))
    for phase in ("plan", "apply"):
        for run in _worst(runs, phase, lambda r: r.assume_role - r.accounts_touched):
            out.append(checks.assume_role(run.assume_role, run.accounts_touched, f"{phase} N={run.n:,}"))
    for run in runs:
        if run.phase == "apply":
            failed = run.outcomes.get("failed", 0)
            out.append(Budget(f"apply N={run.n:,} fixes what it plans", failed == 0,
                              f"{failed} failed of {run.findings:,}; {dict(run.outcomes)}", "0 failed"))
    for run in runs:
        if run.phase in ("plan", "apply"):
            out.extend(checks.shared_reads(run.api_calls, run.shared, f"{run.phase} N={run.n:,}"))
    out.extend(_call_budgets(runs))
    out.extend(checks.describe_before_write(economy(runs)))
    memory = {run.n: run for run in runs if "memory" in run.phase}
    small, large = (memory.get(n) for n in memory_sizes) if len(memory_sizes) == 2 else (None, None)
    if small and large and small.sample.peak_mib and large.sample.peak_mib:
        out.append(checks.memory_growth(small.sample.peak_mib, large.sample.peak_mib, small.n, large.n))
    for run in memory.values():
        out.append(checks.netskope_requests(run.netskope_requests, run.netskope_items, run.netskope_page,
                                            f"memory N={run.n:,}"))
    out.extend(client_budgets(runs))
    out.extend(deployed_budgets(runs))
    return out


def deployed_budgets(runs: Sequence[PhaseRun]) -> list[Budget]:
    out: list[Budget] = []
    for run in runs:
        if not isinstance(run, DeployedRun):
            continue
        label = f"{run.phase} N={run.n:,}"
        out.append(checks.deployed_assume_role([c["assume_role"] for c in run.containers], run.accounts_touched,
                                               label))
        out.append(checks.deployed_settled(run.enqueued, run.results, run.outcomes, run.left_in_queue,
                                           run.dead_letters, label))
        if run.phase == DEPLOYED_DRY_RUN:
            out.append(checks.calls_per_finding(sum(run.api_calls.values()), run.findings,
                                                checks.DEPLOYED_DRY_RUN_CALLS_PER_FINDING, label))
        if run.phase == DEPLOYED_ENFORCE:
            out.append(checks.calls_per_remediation(sum(run.api_calls.values()), run.outcomes.get("remediated", 0),
                                                    checks.DEPLOYED_ENFORCE_CALLS_PER_REMEDIATED, label))
    return out


def client_budgets(runs: Sequence[PhaseRun]) -> list[Budget]:
    out: list[Budget] = []
    floors = {run.n: run for run in runs if run.phase == CLIENT_FLOOR}
    for run in runs:
        if run.phase != CLIENT_PLAN:
            continue
        if run.n in floors:
            out.append(checks.client_cpu(run.sample.cpu, floors[run.n].sample.cpu, run.n))
        if run.sample.peak_mib is not None:
            out.append(checks.client_peak(run.sample.peak_mib, run.n))
    return out


def _call_budgets(runs: Sequence[PhaseRun]) -> list[Budget]:
    """AWS calls per finding (mixed plan, security-group plan), per remediated finding (mixed apply), and the
    password policy's reads and writes per account; one line per N (the runs of a plan make the same calls)."""
    out: list[Budget] = []
    for run in _first_per_n(runs, "plan"):
        out.append(checks.calls_per_finding(sum(run.api_calls.values()), run.findings,
                                            checks.MIXED_PLAN_CALLS_PER_FINDING, f"mixed plan N={run.n:,}"))
    for run in _first_per_n(runs, SG_PHASE):
        per_account = run.findings // max(1, run.accounts_touched) // 4
        out.append(checks.calls_per_finding(
            sum(run.api_calls.values()), run.findings, checks.SG_PLAN_CALLS_PER_FINDING,
            f"security-group plan N={run.n:,}, {per_account} groups in each of {run.accounts_touched} accounts"))
        if per_account < checks.SG_GROUPS_PER_ACCOUNT:
            out.append(Budget("security-group plan size", False, f"{per_account} groups per account",
                              f">= {checks.SG_GROUPS_PER_ACCOUNT}"))
    for run in _first_per_n(runs, "apply"):
        out.append(checks.calls_per_remediation(sum(run.api_calls.values()), run.outcomes.get("remediated", 0),
                                                checks.APPLY_CALLS_PER_REMEDIATION, f"mixed apply N={run.n:,}"))
    for phase in ("plan", "apply"):
        for run in _first_per_n(runs, phase):
            if run.calls_by_rule.keys() & checks.SHARED_READS[checks.POLICY_READ]:
                out.append(checks.password_policy(run.api_calls, run.accounts_touched, phase,
                                                  f"{phase} N={run.n:,}"))
    return out


def _worst(runs: Sequence[PhaseRun], phase: str, key: Any) -> list[PhaseRun]:
    """Per N, the run of this phase furthest over (or closest to) its budget."""
    by_n: dict[int, PhaseRun] = {}
    for run in runs:
        if run.phase == phase and (run.n not in by_n or key(run) > key(by_n[run.n])):
            by_n[run.n] = run
    return list(by_n.values())


# -- Markdown -------------------------------------------------------------------------------------
HEADER = ("phase", "N", "runs", "findings/s", "wall s", "CPU s", "API calls/finding", "AssumeRole", "GetFindings",
          "Netskope req", "peak MiB")


def markdown(runs: Sequence[PhaseRun], results: Sequence[Budget], imports: dict[str, Any],
             setups: dict[int, dict[str, float]], wall: float) -> str:
    lines = [
        f"## cspm-remediate bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_machine_line()}",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADER))) + "|",
    ]
    for row in rows(runs):
        peak = "" if row.peak_mib is None else f"{row.peak_mib:,.1f}" + ("" if row.peak_kind == "rss"
                                                                          else f" ({row.peak_kind})")
        cells = (row.phase, f"{row.n:,}", str(row.runs), f"{row.per_second:,.0f}", f"{row.wall:.1f}",
                 f"{row.cpu:.1f}", _opt(row.calls_per_finding, "{:.2f}"), _opt(row.assume_role),
                 _opt(row.get_findings), _opt(row.netskope_requests), peak)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Medians of the runs. peak MiB: the phase's peak resident set (the bench process only: moto and the",
              "fake Netskope run in a child process); for the memory check, the peak's growth over the resident set",
              "at the start, in a fresh interpreter per size.", ""]
    if imports:
        lines.append(f"Import of {', '.join(imports['modules'])} (cold start proxy): {imports['import_s']:.2f} s "
                     f"wall, {imports['import_cpu_s']:.2f} s CPU, over a bare interpreter start of "
                     f"{imports['interpreter_s']:.2f} s (median of {imports['runs']} fresh interpreters)")
    lines.append("Org setup (not a measured phase): " + "; ".join(
        f"grown to N={n:,} in {t['build_s']:.0f} s (+{t['import_s']:.1f} s to import the findings)"
        for n, t in setups.items()
    ))
    unexercised = sorted(set(CATALOG) - set(BENCH_RULES))
    lines.append(f"Rules exercised: {len(BENCH_RULES)} of the catalog's {len(CATALOG)}"
                 + (f" (not exercised: {', '.join(unexercised)})" if unexercised else ""))
    lines += client_lines(runs)
    lines += deployed_lines(runs)
    lines += ["", "### API calls by operation (target accounts, per finding)", ""]
    for row_phase in ("plan", SG_PHASE, DEPLOYED_DRY_RUN, "apply", DEPLOYED_ENFORCE):
        for run in _first_per_n(runs, row_phase):
            ops = ", ".join(f"{op} {count / run.findings:.3f}" for op, count in run.api_calls.most_common())
            lines.append(f"* {row_phase} N={run.n:,}: {ops or 'none'}")
    lines += _by_rule_table(runs)
    lines += ["", "### Reads and writes per remediated finding, by rule (apply)", "",
              "| rule | remediated | reads/finding | max reads | writes/finding | max writes over minimum | calls |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for rule_id, e in sorted(economy(runs).items()):
        ops = ", ".join(f"{op.split('.', 1)[1]} {count}" for op, count in sorted(e.operations.items()))
        lines.append(f"| {rule_id} | {e.remediated} | {e.reads / e.remediated:.2f} | {e.max_reads} | "
                     f"{e.writes / e.remediated:.2f} | {e.max_extra_writes:+d} | {ops} |")
    lines += ["", "### Budgets", ""]
    lines += [f"    {b.line()}" for b in results]
    verdict = "PASS" if checks.all_ok(results) else "FAIL"
    held = sum(b.ok for b in results)
    lines += ["", f"**{verdict}** — {held}/{len(results)} budgets hold; bench wall time {wall:.0f} s"]
    return "\n".join(lines)


def _by_rule_table(runs: Sequence[PhaseRun]) -> list[str]:
    """AWS calls per finding for each rule, by phase (a group's shared calls are charged to its rule)."""
    columns = [run for phase in ("plan", SG_PHASE, "apply") for run in _first_per_n(runs, phase)]
    if not columns:
        return []
    rules = sorted({rule for run in columns for rule in run.findings_by_rule})
    lines = ["", "### AWS calls per finding, by rule and phase", "",
             "| rule | " + " | ".join(f"{run.phase} N={run.n:,}" for run in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for rule in rules:
        cells = []
        for run in columns:
            findings = run.findings_by_rule.get(rule, 0)
            calls = sum(run.calls_by_rule.get(rule, {}).values())
            cells.append(f"{calls / findings:.3f} ({findings:,})" if findings else "")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("calls per finding (findings of the rule); STS and Security Hub are left out.")
    shared = [f"{run.phase} N={run.n:,}: {tag_reads}" for run in columns if (tag_reads := sum(
        calls.get(BATCHED_TAG_READ, 0) for calls in run.calls_by_rule.values()))]
    if shared:  # one call per account and region for every rule's findings: charged to the account's first one
        lines.append(f"Batched tag reads ({BATCHED_TAG_READ}, for all the rules of an account and region; in the "
                     f"row of its first finding): {', '.join(shared)}.")
    return lines


BATCHED_TAG_READ = "resource-groups-tagging-api.GetResources"


def client_lines(runs: Sequence[PhaseRun]) -> list[str]:
    """The client runs (bench.client_probe), each in a fresh interpreter: what the plan costs our process, what
    the same calls cost a bare boto3 loop, and the plan with latency added per request."""
    client = [run for run in runs if run.server_cpu is not None]
    if not client:
        return []
    lines = ["", "### Client cost: one plan in a fresh process (CPU and peak memory are the client's alone)", "",
             "| run | N | workers | wall s | client CPU s | peak MiB | AWS calls | server CPU s | wall ÷ server CPU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in client:
        server = run.server_cpu or 0.0
        ratio = "" if run.latency_ms or not server else f"{run.sample.wall / server:.2f}"
        lines.append(f"| {run.phase} | {run.n:,} | {_opt(run.workers)} | {run.sample.wall:.1f} | "
                     f"{run.sample.cpu:.2f} | {_opt(run.sample.peak_mib, '{:,.1f}')} | "
                     f"{sum(run.api_calls.values()):,} | {server:.2f} | {ratio} |")
    lines += ["", "The floor makes exactly the calls the plan made (same parameters, same order per account) from "
              "plain boto3: one AssumeRole per account, a Session per account (models shared), one client per "
              "(account, region, service), each account's calls in order on one thread, as many accounts at once as "
              "the plan's workers, default GC. Server CPU is the emulator process's (moto); with latency added the "
              "server mostly sleeps, so no ratio is given."]
    return lines


def deployed_lines(runs: Sequence[PhaseRun]) -> list[str]:
    """The deployed path (bench.deployed): the pull handler, then the queue drained by warm containers."""
    deployed = [run for run in runs if isinstance(run, DeployedRun)]
    if not deployed:
        return []
    lines = ["", "### Deployed path: pull handler → SQS → remediate handler in concurrent warm containers", "",
             "| run | N | containers | invocations | findings/s | wall s (pull + drain) | CPU s (pull + containers) "
             "| server CPU s | AWS calls/finding | AssumeRole (per account; per container) | admin calls/finding "
             "| returned |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in deployed:
        per_account = run.assume_by_account.values()
        per_container = [sum(c["assume_role"].values()) for c in run.containers]
        containers_cpu = sum(c["cpu_s"] for c in run.containers)
        admin = sum(run.admin_calls.values()) + sum(run.pull_calls.values())
        lines.append(
            f"| {run.phase} | {run.n:,} | {run.container_count} | {run.invocations:,} | {run.per_second:,.1f} | "
            f"{run.sample.wall:.1f} ({run.pull_wall:.1f} + {run.drain_wall:.1f}) | "
            f"{run.sample.cpu:.1f} ({run.sample.cpu - containers_cpu:.1f} + {containers_cpu:.1f}) | "
            f"{_opt(run.server_cpu, '{:.1f}')} | {run.calls_per_finding:.3f} | "
            f"{run.assume_role} ({min(per_account, default=0)}-{max(per_account, default=0)}; "
            f"{min(per_container, default=0)}-{max(per_container, default=0)}) | "
            f"{admin / run.findings if run.findings else 0:.2f} | {run.returned} |")
    lines += ["", "Each container is a process of its own (one Runtime per warm container, as in Lambda), receiving "
              "batches from the work queue and invoking the remediate handler as the event source mapping does. "
              "AWS calls: target accounts, as the plan phase counts them; admin calls: the functions' own (ledger, "
              "queue, SNS, Security Hub pages and write-back), the pull's included. Server CPU: the emulator "
              "process's (moto serves every container, its DynamoDB and SQS one request at a time)."]
    for run in deployed:
        pull = ", ".join(f"{op} {count}" for op, count in run.pull_calls.most_common())
        drain = ", ".join(f"{op} {count}" for op, count in run.admin_calls.most_common())
        cold = [c["cold_start_s"] for c in run.containers]
        server = ", ".join(f"{service} {cpu:.1f}" for service, cpu in run.server_cpu_by_service.most_common(6))
        remediated = run.outcomes.get("remediated", 0)
        per_fix = (f"{sum(run.api_calls.values()) / remediated:.3f} AWS calls per remediated finding; "
                   if remediated else "")
        lines.append(f"* {run.phase} N={run.n:,}: {run.enqueued:,} enqueued ({run.pull_get_findings} GetFindings "
                     f"pages: moto ignores the filters of the catalog's chunks), messages {dict(run.messages)}; "
                     f"outcomes {dict(run.outcomes)}; {per_fix}container cold start {min(cold, default=0):.2f}-"
                     f"{max(cold, default=0):.2f} s; admin calls: pull {pull or 'none'}; containers {drain or 'none'}; "
                     f"server CPU s by service: {server or 'not measured'}")
    return lines


def _first_per_n(runs: Sequence[PhaseRun], phase: str) -> list[PhaseRun]:
    seen: dict[int, PhaseRun] = {}
    for run in runs:
        if run.phase == phase:
            seen.setdefault(run.n, run)
    return list(seen.values())


def _opt(value: float | int | None, fmt: str = "{:,}") -> str:
    return "" if value is None else fmt.format(value)


# -- JSON -----------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "python": sys.version.split()[0],
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "machine": platform.machine(), "processor": _cpu_model()}


def _machine_line() -> str:
    info = machine()
    return f"{info['nproc']} CPU ({info['processor']}), Python {info['python']}, {info['platform']}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def to_json(runs: Sequence[PhaseRun], results: Sequence[Budget], imports: dict[str, Any],
            setups: dict[int, dict[str, float]], wall: float, args: dict[str, Any]) -> str:
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "arguments": {k: str(v) if k == "output" else v for k, v in args.items()},
        "wall_s": round(wall, 1),
        "passed": checks.all_ok(results),
        "budgets": [{"name": b.name, "ok": b.ok, "measured": b.measured, "limit": b.limit} for b in results],
        "summary": [row.__dict__ for row in rows(runs)],
        "runs": [_run_json(run) for run in runs],
        "economy": {rule: {**{k: v for k, v in e.__dict__.items() if k != "operations"},
                           "operations": dict(e.operations)} for rule, e in sorted(economy(runs).items())},
        "import_time": imports,
        "setup": {str(n): t for n, t in setups.items()},
    }
    return json.dumps(document, indent=2, default=str) + "\n"


def _run_json(run: PhaseRun) -> dict[str, Any]:
    data = {k: v for k, v in run.__dict__.items() if k not in ("economy", "sample", "shared", "calls_by_rule")}
    data["calls_by_rule"] = {rule: dict(calls) for rule, calls in sorted(run.calls_by_rule.items())}
    data["shared_reads"] = {op: {"findings": run.shared.findings[op], "expected_calls": run.shared.expected[op]}
                            for op in run.shared.findings}
    data.update(wall_s=run.sample.wall, cpu_s=run.sample.cpu, peak_mib=run.sample.peak_mib,
                peak_kind=run.sample.peak_kind, findings_per_s=run.per_second, calls_per_finding=run.calls_per_finding)
    return data

