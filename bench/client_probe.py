"""The client's own cost of one plan, in a fresh interpreter: CPU time and peak resident set — and the floor.

    python -m bench.client_probe engine SPOOL CALLS [--workers W]   plan SPOOL as the CLI does (same start-up,
                                                                    same engine); CALLS ← every AWS call made
    python -m bench.client_probe floor CALLS [--workers W]          the same calls from bare boto3

Each prints one JSON object. A fresh interpreter per run, so the peak is the run's own and the models parsed are
the run's own, as in a CLI process or a Lambda cold start; the timer starts after the imports.

The floor is what the same calls cost in the plainest boto3 script: one AssumeRole per account from one STS
client, a boto3 Session per account from its credentials, one client per (account, region, service), each
account's calls in order on one thread, as many accounts at once as the engine has workers (so both pay alike
for concurrency on a shared machine), nothing tuned — except that the sessions share one model loader (one
line; a script without it parses every model once per account: 25 s of CPU and 1.9 GiB for the bench's
1,000-finding plan, serially). It is the cost of making those calls at all: an engine at or under it spends
nothing of its own worth measuring on top of the AWS calls it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from bench.measure import measured
from bench.phases import MAX_WORKERS, bench_config, read_spool
from demo.moto_org import REMEDIATION_ROLE
from functions.engine import startup
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions, prepare_session

Call = tuple[str, str, str, str, dict[str, Any]]  # account, region, service, operation, parameters


class CallLog:
    """Every target-account call with its parameters (botocore's provide-client-params event: the caller's
    arguments, before validation), in the order each account made them."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def hook(self, session: boto3.Session, account_id: str) -> None:
        if account_id == "caller":
            return

        def record(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            call = (account_id, context["client_region"], model.service_model.service_name, model.name, params)
            with self._lock:
                self.calls.append(call)

        session.events.register("provide-client-params", record)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps([c for c in self.calls if c[2] != "sts"], default=str), encoding="utf-8")


def engine_run(spool: Path, calls_path: Path, workers: int) -> dict[str, Any]:
    log = CallLog()
    outcomes: Counter[str] = Counter()
    with measured() as sample:
        startup.tune_gc()  # what the CLI's main() does first
        sessions = AssumedSessions(role_name=REMEDIATION_ROLE, session_hook=log.hook)
        engine = Engine(bench_config(), sessions, stage="plan", max_workers=workers)
        for result in engine.stream(read_spool(spool)):
            outcomes[result.outcome] += 1
    log.dump(calls_path)
    return {"findings": sum(outcomes.values()), "outcomes": dict(outcomes), "workers": workers,
            "calls": len(log.calls), "assume_role": sessions.assume_role_calls, **_sample(sample)}


def floor_run(calls_path: Path, workers: int = MAX_WORKERS, shared_models: bool = True) -> dict[str, Any]:
    """The same calls from plain boto3: each account's calls in order on one thread, `workers` accounts at once
    (as the engine runs them, so both pay the same for concurrency on a shared machine)."""
    calls: list[Call] = [tuple(c) for c in json.loads(calls_path.read_text(encoding="utf-8"))]  # type: ignore[misc]
    by_account: dict[str, list[Call]] = {}
    for call in calls:
        by_account.setdefault(call[0], []).append(call)
    clients: Counter[str] = Counter()
    with measured() as sample:
        base = boto3.Session()
        loader = base._session.get_component("data_loader") if shared_models else None
        sts = base.client("sts")
        partition = sts.get_caller_identity()["Arn"].split(":", 2)[1]

        def account_calls(account: str) -> int:
            creds = sts.assume_role(RoleArn=f"arn:{partition}:iam::{account}:role/{REMEDIATION_ROLE}",
                                    RoleSessionName="bench-floor")["Credentials"]
            session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                    aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"])
            if loader is not None:  # one parsed copy of each model for all accounts
                session._session.register_component("data_loader", loader)
            prepare_session(session)  # the emulator's S3 Control host fix only
            mine: dict[tuple[str, str], Any] = {}
            errors = 0
            for _, region, service, operation, params in by_account[account]:
                if (region, service) not in mine:
                    mine[region, service] = session.client(service, region_name=region)  # type: ignore[call-overload]
                try:
                    getattr(mine[region, service], xform_name(operation))(**params)
                except (ClientError, BotoCoreError):
                    errors += 1  # the engine's calls fail where the resource says so (no password policy, …)
            clients[account] = len(mine)
            return errors

        with ThreadPoolExecutor(max_workers=workers) as pool:
            errors = sum(pool.map(account_calls, by_account))
    return {"calls": len(calls), "errors": errors, "accounts": len(by_account), "clients": sum(clients.values()),
            "workers": workers, **_sample(sample)}


def _sample(sample: Any) -> dict[str, Any]:
    return {"wall_s": sample.wall, "cpu_s": sample.cpu, "rss_start_mib": sample.start_mib,
            "rss_peak_mib": sample.peak_mib}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client_probe")
    sub = parser.add_subparsers(dest="what", required=True)
    engine = sub.add_parser("engine")
    engine.add_argument("spool", type=Path)
    engine.add_argument("calls", type=Path)
    engine.add_argument("--workers", type=int, default=MAX_WORKERS)
    floor = sub.add_parser("floor")
    floor.add_argument("calls", type=Path)
    floor.add_argument("--workers", type=int, default=MAX_WORKERS)
    args = parser.parse_args(argv)
    if args.what == "engine":
        data = engine_run(args.spool, args.calls, args.workers)
    else:
        data = floor_run(args.calls, args.workers)
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
