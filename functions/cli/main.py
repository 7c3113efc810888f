"""`cspm-remediate`: the engine on the command line (DESIGN §5). JSON to stdout; progress and logs to stderr.

Every flag has an environment variable (the Lambda handlers read the same ones). AWS endpoints come from
boto3's own AWS_ENDPOINT_URL, so the same commands run against a moto server or AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from connectors import asff, netskope
from connectors.finding import Finding, FindingError
from connectors.netskope import NetskopeError
from functions.cli.progress import Progress
from functions.engine.automation import DEFAULT_AUTOMATION_ROLE_NAME, execution_status
from functions.engine.catalog import CATALOG, rule_rows
from functions.engine.config import Config, ConfigError, load_config
from functions.engine.engine import Engine
from functions.engine.ledger import LedgerGuard, SqliteLedger
from functions.engine.pipeline import SOURCES, PullStats, pull_netskope, pull_securityhub
from functions.engine.rollback import rollback
from functions.engine.sessions import AssumedSessions
from functions.engine.settings import csv, env
from functions.model import Result
from functions.report import render_text

log = logging.getLogger("cspm_remediate")

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
PARSERS = {"securityhub": asff.parse_payload, "netskope": netskope.parse_payload}


# -- argument parsing ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cspm-remediate", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    def engine_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=env("config"), help="JSON/YAML file: modes, exclusions, limits")
        p.add_argument("--mode", default=env("mode"), help="global mode: off, notify, dry-run, enforce")
        p.add_argument("--rules", default=env("rules"), help="comma-separated rule ids to act on")
        p.add_argument("--role-name", default=env("role_name"), help="role assumed in target accounts")
        p.add_argument("--external-id", default=env("external_id"), help="ExternalId for AssumeRole")
        p.add_argument(
            "--automation-role-name",
            default=env("automation_role_name", DEFAULT_AUTOMATION_ROLE_NAME),
            help="role SSM Automation assumes in target accounts",
        )
        p.add_argument(
            "--max-workers", type=int, default=int(env("max_workers", "8") or 8),
            help="accounts processed in parallel",
        )
        ledger_flag(p)

    def ledger_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--ledger", default=env("ledger_path"),
            help="SQLite file recording what was done (enables rollback and cross-run idempotency)",
        )

    def source_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source", action="append", choices=SOURCES,
            default=None, help="where findings come from (repeat for both); env CSPM_SOURCE (comma-separated)",
        )
        p.add_argument("--regions", default=env("regions"), help="Security Hub regions (comma-separated)")
        p.add_argument("--region", help="one Security Hub region (overrides --regions)")
        p.add_argument("--netskope-url", default=env("netskope_url"), help="Netskope tenant URL or FQDN")
        p.add_argument(
            "--netskope-token-secret", default=env("netskope_token_secret"),
            help="Secrets Manager secret holding the Netskope API token",
        )

    p = sub.add_parser("normalize", help="raw payload files → normalized findings (JSON array)")
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument("files", nargs="+", metavar="FILE")

    p = sub.add_parser("pull", help="pull open violations from a source → findings JSON")
    source_flags(p)
    p.add_argument("--rules", default=env("rules"), help="comma-separated rule ids")

    p = sub.add_parser("plan", help="dry-run: what would be done for each finding")
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    engine_flags(p)

    p = sub.add_parser("apply", help="act on findings of rules in enforce mode (or all, with --enforce)")
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    p.add_argument("--enforce", action="store_true", help="treat every non-disruptive rule as enforce")
    engine_flags(p)

    p = sub.add_parser("run", help="pull + apply in one go, with progress on stderr")
    source_flags(p)
    engine_flags(p)
    p.add_argument("--enforce", action="store_true", help="treat every non-disruptive rule as enforce")
    p.add_argument("--plan-only", action="store_true", help="pull and plan; never write")

    p = sub.add_parser("rules", help="the rule catalog")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")

    p = sub.add_parser("rollback", help="restore the recorded pre-state of a run's actions (dry-run first)")
    p.add_argument("--run", required=True, help="the run id (printed by apply/run)")
    p.add_argument("--finding", help="only this finding id")
    p.add_argument("--apply", action="store_true", help="restore for real (default: say what would be restored)")
    p.add_argument("--role-name", default=env("role_name"))
    p.add_argument("--external-id", default=env("external_id"))
    p.add_argument("--config", default=env("config"), help="the config the run used (remediator params)")
    ledger_flag(p)

    p = sub.add_parser("status", help="the outcome of an SSM Automation execution started by apply/run")
    p.add_argument("execution_id")
    p.add_argument("--account", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--role-name", default=env("role_name"))
    p.add_argument("--external-id", default=env("external_id"))
    return parser


# -- commands -----------------------------------------------------------------------------------
def cmd_normalize(args: argparse.Namespace, out: TextIO) -> int:
    parse = PARSERS[args.source]
    rejected = 0
    with JsonArrayWriter(out) as writer:
        for path in args.files:
            try:
                payload = _read_json(path)
                items = list(parse(payload))
            except (OSError, ValueError) as error:  # FindingError and JSONDecodeError are ValueErrors
                rejected += 1
                log.error("%s: rejected: %s", path, error)
                continue
            for item in items:
                if isinstance(item, FindingError):
                    rejected += 1
                    log.error("%s: rejected: %s", path, item)
                else:
                    writer.write(item.to_dict())
    return EXIT_REJECTED if rejected else EXIT_OK


def cmd_pull(args: argparse.Namespace, out: TextIO) -> int:
    stats = PullStats()
    items = _pull(args, stats)
    with JsonArrayWriter(out) as writer:
        for item in items:
            if isinstance(item, FindingError):
                log.error("rejected: %s", item)
            else:
                writer.write(item.to_dict())
    log.info("pulled %d finding(s), rejected %d; requests %s", stats.findings, stats.rejected, stats.requests)
    return EXIT_REJECTED if stats.rejected else EXIT_OK


def cmd_plan_apply(args: argparse.Namespace, out: TextIO, stage: str) -> int:
    findings, rejected = _load_findings(args.file)
    results = _run_engine(args, findings, stage, progress=False)
    _write_results(results, out)
    return EXIT_REJECTED if rejected else EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    _config(args)  # a typo in the config fails now, not after a long pull
    stats = PullStats()
    findings: list[Finding] = []
    for item in _pull(args, stats):
        if isinstance(item, FindingError):
            log.error("rejected: %s", item)
        else:
            findings.append(item)
    log.info("pulled %d finding(s), rejected %d", stats.findings, stats.rejected)
    results = _run_engine(args, findings, "plan" if args.plan_only else "apply", progress=True)
    _write_results(results, out)
    return EXIT_REJECTED if stats.rejected or any(r.outcome == "failed" for r in results) else EXIT_OK


def cmd_rules(args: argparse.Namespace, out: TextIO) -> int:
    rows = rule_rows()
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return EXIT_OK
    header = ("rule_id", "mode", "executor", "reversible", "cis", "title", "permissions")
    table = [
        (r["rule_id"], r["mode"], "+".join(r["executor"]), "yes" if r["reversible"] else "no", ",".join(r["cis"]),
         r["title"], ",".join(r["permissions"]))
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header) - 1)]
    for row in [header, *table]:
        out.write("  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] + "\n")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: TextIO) -> int:
    if not args.ledger:
        raise UsageError("rollback needs the ledger the run was recorded in: --ledger PATH (or CSPM_LEDGER_PATH)")
    ledger = SqliteLedger(args.ledger)
    try:
        rows = list(ledger.results(args.run))
    finally:
        ledger.close()
    if not rows:
        raise UsageError(f"run {args.run} is not in {args.ledger}")
    sessions = AssumedSessions(role_name=args.role_name, external_id=args.external_id)
    results = list(rollback(rows, sessions, apply=args.apply, finding_id=args.finding, config=load_config(args.config)))
    with JsonArrayWriter(out) as writer:
        for result in results:
            writer.write(result.to_dict())
    counts = Counter(r.outcome for r in results)
    sys.stderr.write(f"\nRollback of run {args.run}{'' if args.apply else ' (dry-run)'}: "
                     + (", ".join(f"{n} {o}" for o, n in counts.items()) or "no actions to undo") + "\n")
    for r in results:
        sys.stderr.write(f"  {r.outcome:<9} [{r.rule_id}] {r.account_id} {r.region} {r.resource_id}: {r.reason}\n")
    return EXIT_REJECTED if counts.get("failed") else EXIT_OK


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    sessions = AssumedSessions(role_name=args.role_name, external_id=args.external_id)
    status = execution_status(sessions.target(args.account, args.region), args.execution_id)
    json.dump(
        {"execution_id": status.execution_id, "status": status.status, "outcome": status.outcome,
         "reason": status.reason},
        out, indent=2,
    )
    out.write("\n")
    return EXIT_OK


# -- shared pieces ------------------------------------------------------------------------------
def _pull(args: argparse.Namespace, stats: PullStats) -> Iterator[Finding | FindingError]:
    """Checks the source flags now (a usage error must come before any output), then pulls lazily."""
    sources = list(dict.fromkeys(args.source or csv(env("sources"))))
    if not sources:
        raise UsageError("--source is required (securityhub, netskope), or set CSPM_SOURCE")
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise UsageError(f"unknown source(s) {', '.join(unknown)} (choose from {', '.join(SOURCES)})")
    if "netskope" in sources and (not args.netskope_url or not args.netskope_token_secret):
        raise UsageError("netskope needs --netskope-url and --netskope-token-secret (or NETSKOPE_URL, "
                         "NETSKOPE_TOKEN_SECRET)")
    return _pull_sources(args, sources, stats)


def _pull_sources(args: argparse.Namespace, sources: list[str], stats: PullStats) -> Iterator[Finding | FindingError]:
    rule_ids = csv(args.rules) or None
    for source in sources:
        if source == "securityhub":
            default_region = boto3.Session().region_name or "us-east-1"
            regions = [args.region] if args.region else csv(args.regions) or [default_region]
            yield from pull_securityhub(regions, rule_ids, stats=stats)
        else:
            yield from _filter_rules(pull_netskope(args.netskope_url, args.netskope_token_secret, stats=stats),
                                     rule_ids)


def _filter_rules(items: Iterable[Finding | FindingError], rule_ids: list[str] | None):
    for item in items:
        if rule_ids is None or isinstance(item, FindingError) or item.rule_id in rule_ids:
            yield item


def _run_engine(args: argparse.Namespace, findings: list[Finding], stage: str, progress: bool) -> list[Result]:
    config = _config(args)
    sessions = AssumedSessions(role_name=args.role_name, external_id=args.external_id)
    bar = Progress(len(findings)) if progress else None
    ledger = SqliteLedger(args.ledger) if args.ledger else None

    def on_result(result: Result) -> None:
        if ledger is not None:
            ledger.record(result)
        if bar is not None:
            bar.advance()

    engine = Engine(
        config, sessions, stage=stage, max_workers=args.max_workers,
        automation_role_name=args.automation_role_name,
        guard=LedgerGuard(ledger) if ledger is not None and stage == "apply" else None,
        on_result=on_result,
    )
    log.info("run %s: %s of %d finding(s)", engine.run_id, stage, len(findings))
    try:
        results = engine.run(findings)
    finally:
        if ledger is not None:
            ledger.close()
    if bar:
        bar.close()
    if ledger is not None:
        log.info("recorded in %s; undo with: cspm-remediate rollback --run %s --ledger %s",
                 args.ledger, engine.run_id, args.ledger)
    sys.stderr.write("\n" + render_text(results, title=f"Run {engine.run_id} ({stage})"))
    log.info("AssumeRole calls this run: %d", sessions.assume_role_calls)
    return results


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    unknown = sorted(set(config.rules) - set(CATALOG))
    if unknown:
        raise ConfigError(f"{args.config}: rules: unknown rule id(s) {', '.join(unknown)}")
    mode = "enforce" if getattr(args, "enforce", False) else args.mode
    only = frozenset(csv(args.rules)) or None
    return config.with_overrides(mode=mode, only_rules=only)


def _load_findings(path: str) -> tuple[list[Finding], int]:
    payload = _read_json(path)
    if not isinstance(payload, list):
        raise UsageError(f"{path}: expected a JSON array of findings (the output of normalize or pull)")
    findings, rejected = [], 0
    for index, item in enumerate(payload):
        try:
            findings.append(Finding.from_dict(item))
        except (FindingError, TypeError) as error:
            rejected += 1
            log.error("%s: finding #%d rejected: %s", path, index, error)
    return findings, rejected


def _write_results(results: Sequence[Result], out: TextIO) -> None:
    with JsonArrayWriter(out) as writer:
        for result in results:
            writer.write(result.to_dict())


def _read_json(path: str) -> Any:
    if path == "-":
        if sys.stdin.isatty():
            log.info("reading findings from standard input (pipe them in, or give a FILE)")
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class JsonArrayWriter:
    """Writes a JSON array one element at a time, so output memory stays flat."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0

    def __enter__(self) -> JsonArrayWriter:
        self.out.write("[")
        return self

    def write(self, item: Any) -> None:
        self.out.write(("," if self.count else "") + "\n  " + json.dumps(item, default=str, ensure_ascii=False))
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.out.write("\n]\n" if self.count else "]\n")
        self.out.flush()


class UsageError(Exception):
    pass


_HANDLER: logging.Handler | None = None


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (a test harness may swap and close it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _log_to_stderr(level: int) -> None:
    """Log to the current sys.stderr. Replaces the handler a previous main() call installed, and leaves every
    other root handler alone (basicConfig(force=True) would close the host's, e.g. pytest's caplog)."""
    global _HANDLER
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
    _HANDLER = _CurrentStderrHandler()
    _HANDLER.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(_HANDLER)
    root.setLevel(level)


COMMANDS = {
    "normalize": cmd_normalize,
    "pull": cmd_pull,
    "plan": lambda a, o: cmd_plan_apply(a, o, "plan"),
    "apply": lambda a, o: cmd_plan_apply(a, o, "apply"),
    "run": cmd_run,
    "rules": cmd_rules,
    "rollback": cmd_rollback,
    "status": cmd_status,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Default INFO for our own loggers; -v adds our DEBUG; -vv also the AWS SDK's and urllib3's DEBUG.
    _log_to_stderr(logging.DEBUG if args.verbose else logging.INFO)
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose >= 2 else logging.WARNING)
    try:
        return COMMANDS[args.command](args, out or sys.stdout)
    except (UsageError, ConfigError) as error:
        log.error("%s", error)
        return EXIT_USAGE
    except NetskopeError as error:  # messages name the HTTP status, never the token
        log.error("%s", error)
        return EXIT_REJECTED
    except (ClientError, BotoCoreError) as error:  # e.g. no credentials, AccessDenied on GetFindings
        log.error("AWS: %s", error)
        return EXIT_REJECTED
    except (OSError, ValueError) as error:
        log.error("%s: %s", type(error).__name__, error)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
