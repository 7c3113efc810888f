"""`make bench` / `python -m bench`: pull → plan → apply on a synthetic organization in moto, against budgets.

Prints a Markdown table and the budget lines on stdout (progress on stderr), writes bench/results.json and
bench/results.md, and exits 1 when a budget is broken.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import budgets as budget_checks
from bench import report, security_groups
from bench.budgets import SG_GROUPS_PER_ACCOUNT
from bench.deployed import DEPLOYED_ENFORCE, dry_run_config, enforce_config, run_deployed
from bench.emulators import Emulators
from bench.org import KEY_AGE_DAYS, Org, create_org, enable_sources, grow_org, import_findings
from bench.phases import SG_PHASE, PhaseRun, import_time, run_client, run_engine, run_memory, run_pull
from bench.synth import BENCH_RULES, fixed_findings
from demo.moto_org import HOME, OTHER, TOKEN_SECRET, isolate_from_real_aws
from functions.engine.catalog import CATALOG
from functions.engine.pacing import DEFAULT_MAX_WORKERS

HERE = Path(__file__).resolve().parent
PHASES = ("pull", "plan", "client", "deployed", "apply", "memory", "import", "deployed-apply")
# Only when asked for: the deployed path enforced fixes the org, which the CLI's apply (and any larger N) would read.
OPT_IN_PHASES = ("deployed-apply",)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    def sizes(text: str) -> list[int]:
        return [int(part) for part in text.split(",") if part.strip()]

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50, help="member accounts (default 50)")
    parser.add_argument("--sizes", type=sizes, default=[1000, 10000], help="N findings for pull/plan (1000,10000)")
    parser.add_argument("--apply-sizes", type=sizes, default=[1000],
                        help="N (among --sizes) at which apply is measured, once, after every plan (default 1000)")
    parser.add_argument("--memory-sizes", type=sizes, default=[10000, 100000],
                        help="N for the pull+plan memory check: small,large (default 10000,100000; '' skips it)")
    parser.add_argument("--runs", type=int, default=3, help="runs of pull and plan per N; the median is reported")
    parser.add_argument("--sg-accounts", type=int, default=2,
                        help="security-group scenario: accounts with --sg-groups world-open groups each (default 2; "
                             "0 skips it)")
    parser.add_argument("--sg-groups", type=int, default=SG_GROUPS_PER_ACCOUNT,
                        help=f"security-group scenario: groups per account (default {SG_GROUPS_PER_ACCOUNT})")
    parser.add_argument("--phases", type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
                        default=[p for p in PHASES if p not in OPT_IN_PHASES],
                        help=f"what to run, of {','.join(PHASES)} (default all but {','.join(OPT_IN_PHASES)}); pull "
                        "runs once, unreported, when a later phase needs its findings; deployed-apply (the deployed "
                        "path enforced, after the dry-run) needs --deployed-size to be the largest of --sizes and no "
                        "apply phase")
    parser.add_argument("--client-size", type=int, default=1000,
                        help="N (among --sizes) of the client-cost runs in fresh processes (default 1000)")
    parser.add_argument("--latency-ms", type=float, default=50.0,
                        help="latency added to every AWS request in the client's latency runs (default 50; 0: none)")
    parser.add_argument("--latency-workers", type=sizes, default=[8, DEFAULT_MAX_WORKERS],
                        help=f"worker counts of the latency runs (default 8,{DEFAULT_MAX_WORKERS})")
    parser.add_argument("--deployed-size", type=int, default=1000,
                        help="N (among --sizes) of the deployed path: the pull handler, then the work queue drained "
                        "by the stack's concurrency of warm containers (default 1000)")
    parser.add_argument("--output", type=Path, default=HERE / "results.json", help="JSON results file")
    args = parser.parse_args(argv)
    args.sizes = sorted(set(args.sizes))
    args.apply_sizes = sorted(set(args.apply_sizes))
    if len(args.memory_sizes) not in (0, 2) or args.runs < 1:
        parser.error("--memory-sizes takes exactly two sizes (or none); --runs must be >= 1")
    if args.sg_accounts > args.accounts:
        parser.error("--sg-accounts must be at most --accounts")
    if not set(args.apply_sizes) <= set(args.sizes):
        parser.error("every --apply-sizes value must be one of --sizes")
    unknown = sorted(set(args.phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown --phases {', '.join(unknown)} (known: {', '.join(PHASES)})")
    if "client" in args.phases and args.client_size not in args.sizes:
        parser.error("--client-size must be one of --sizes")
    if {"deployed", "deployed-apply"} & set(args.phases) and args.deployed_size not in args.sizes:
        parser.error("--deployed-size must be one of --sizes")
    if "deployed-apply" in args.phases and ("apply" in args.phases or args.deployed_size != max(args.sizes)):
        parser.error("deployed-apply fixes the org: it runs without the apply phase, at the largest of --sizes")
    fixed = fixed_findings(args.accounts, 2)
    if args.sizes and args.sizes[0] < fixed:
        parser.error(f"{args.accounts} accounts x 2 regions have {fixed} account-level findings: N must be >= {fixed}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = sorted(set(BENCH_RULES) - set(CATALOG))
    if missing:
        progress(f"the bench plants findings for rules the catalog no longer has: {', '.join(missing)}")
        return 2
    started = time.perf_counter()
    isolate_from_real_aws()
    token = secrets.token_urlsafe(24)
    runs: list[PhaseRun] = []
    setups: dict[int, dict[str, float]] = {}
    with Emulators() as world, tempfile.TemporaryDirectory(prefix="cspm-bench-") as tmp:
        os.environ["AWS_ENDPOINT_URL"] = world.endpoint
        progress(f"moto server {world.endpoint} and fake Netskope in a child process")
        clock = time.perf_counter()
        org = create_org(args.accounts, (HOME, OTHER))
        enable_sources(TOKEN_SECRET, token)
        progress(f"organization: {args.accounts} member accounts x 2 regions in {time.perf_counter() - clock:.0f}s")
        spools: dict[int, Path] = {}
        phases = set(args.phases)
        needs_findings = phases & {"pull", "plan", "apply", "client", "deployed", "deployed-apply"}
        for n in args.sizes if needs_findings else []:
            netskope_url, setups[n] = _grow(world, org, n, token)
            spools[n] = Path(tmp) / f"findings-{n}.jsonl"
            rules = sorted(org.by_rule)
            for _ in range(args.runs if "pull" in phases else 1):
                pulled = run_pull(n, netskope_url, spools[n], rules)
                if "pull" in phases:
                    runs.append(pulled)
                    progress(_run_line(runs[-1]))
            for _ in range(args.runs if "plan" in phases else 0):
                runs.append(run_engine("plan", n, spools[n]))
                progress(_run_line(runs[-1]))
            if "client" in phases and n == args.client_size:  # before apply, which changes what a plan reads
                for run in run_client(n, spools[n], world, args.latency_ms, args.latency_workers,
                                      warm_up="plan" not in phases):
                    runs.append(run)
                    progress(_run_line(runs[-1]))
            if "deployed" in phases and n == args.deployed_size:  # dry-run: changes nothing later phases read
                runs.append(run_deployed(n, netskope_url, dry_run_config(), world))
                progress(_run_line(runs[-1]))
            if "deployed-apply" in phases and n == args.deployed_size:  # the largest N: nothing later reads the org
                runs.append(run_deployed(n, netskope_url, enforce_config(), world, label=DEPLOYED_ENFORCE))
                progress(_run_line(runs[-1]))
        if "plan" in phases and args.sg_accounts and args.sg_groups:
            clock = time.perf_counter()
            spool = Path(tmp) / "security-groups.jsonl"
            n = security_groups.build(org, args.sg_accounts, args.sg_groups, spool)
            progress(f"security groups: {args.sg_groups} in each of {args.sg_accounts} accounts, {n:,} findings, "
                     f"in {time.perf_counter() - clock:.0f}s")
            runs.append(run_engine("plan", n, spool, label=SG_PHASE))
            progress(_run_line(runs[-1]))
        for n in args.apply_sizes if "apply" in phases else []:  # last: apply changes the org later phases read
            runs.append(run_engine("apply", n, spools[n]))
            progress(_run_line(runs[-1]))
        for n in args.memory_sizes if "memory" in phases else []:
            url = world.serve_synthetic_netskope(n, synthetic_accounts(args.accounts), token)
            runs.append(run_memory(n, url))
            progress(_run_line(runs[-1]))
    imports = import_time() if "import" in phases else {}
    if imports:
        progress(f"import {', '.join(imports['modules'])}: {imports['import_s']:.2f}s "
                 f"({imports['import_cpu_s']:.2f}s CPU)")

    checks = report.budgets(runs, args.memory_sizes)
    wall = time.perf_counter() - started
    markdown = report.markdown(runs, checks, imports, setups, wall)
    print(markdown)
    args.output.write_text(report.to_json(runs, checks, imports, setups, wall, vars(args)), encoding="utf-8")
    args.output.with_suffix(".md").write_text(markdown + "\n", encoding="utf-8")
    progress(f"wrote {args.output} and {args.output.with_suffix('.md')} ({wall:.0f}s in all)")
    return 0 if budget_checks.all_ok(checks) else 1


def _grow(world: Emulators, org: Org, n: int, token: str) -> tuple[str, dict[str, float]]:
    """Grow the org to n findings: new resources in moto, new findings in Security Hub, all in the fake Netskope."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    growth = grow_org(org, n)
    timings["build_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    import_findings(growth.asff)
    world.age_access_keys(growth.aged_keys, days=KEY_AGE_DAYS)
    netskope_url = world.serve_netskope(org.violations, token)
    timings["import_s"] = time.perf_counter() - clock
    progress(f"N={n:,}: resources added in {timings['build_s']:.0f}s; {len(growth.asff):,} Security Hub findings "
             f"imported, {len(org.violations):,} Netskope violations served; "
             f"by rule {dict(sorted(org.by_rule.items()))}")
    return netskope_url, timings


def synthetic_accounts(count: int) -> list[str]:
    """Account ids for the memory check's synthetic violations: nobody's, never the caller's."""
    return [f"2{i:011d}" for i in range(count)]


def _run_line(run: PhaseRun) -> str:
    return (f"  {run.phase:<20} N={run.n:>7,}: {run.findings:,} findings in {run.sample.wall:.1f}s "
            f"({run.per_second:,.0f}/s, CPU {run.sample.cpu:.1f}s) {dict(run.outcomes)}")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
