"""`cspm-remediate`: auto-remediation of CSPM findings on AWS. JSON to stdout; progress, logs and reports to stderr.

Every flag has an environment variable (the Lambda handlers read the same ones). AWS endpoints come from
boto3's own AWS_ENDPOINT_URL, so the same commands run against a moto server or AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import metadata
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from connectors import asff, cloudtrail, netskope, prowler, securityhub_v2
from connectors.finding import Finding, FindingError
from connectors.netskope import NetskopeError
from functions.cli import audit, preflight
from functions.cli.errors import EXIT_CODES_HELP, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, UsageError
from functions.cli.inputs import InputError, load_findings, read_json
from functions.cli.progress import Progress, clear_for_log
from functions.engine.automation import DEFAULT_AUTOMATION_ROLE_NAME, execution_status
from functions.engine.catalog import rule_rows
from functions.engine.config import Config, ConfigError
from functions.engine.engine import Engine
from functions.engine.pacing import DEFAULT_MAX_WORKERS
from functions.engine.pipeline import (
    REGIONAL_SOURCES,
    SOURCES,
    PullStats,
    pull_netskope,
    pull_prowler,
    pull_securityhub,
    pull_securityhub_v2,
)
from functions.engine.plans import Plan, PlanError, write_plan
from functions.engine.sessions import AssumedSessions
from functions.engine.settings import csv, env
from functions.engine.startup import tune_gc
from functions.model import Result, Stage
from functions.report import render_table, render_text, summarize_error

log = logging.getLogger("cspm_remediate")

# Each takes the payload (and a source's optional extra) and yields findings and per-item errors.
PARSERS: dict[str, Callable[[Any], Iterator[Finding | FindingError]]] = {
    "securityhub": asff.parse_payload, "securityhub-v2": securityhub_v2.parse_payload,
    "netskope": netskope.parse_payload, "prowler": prowler.parse_payload,
    "cloudtrail": cloudtrail.parse_payload,  # recorded API call events (normalize only)
}


# -- argument parsing ---------------------------------------------------------------------------
def _version() -> str:
    try:
        return metadata.version("cspm-remediate")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cspm-remediate", description=__doc__.splitlines()[0], epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="more logging on stderr (-v: debug; -vv: also the AWS SDK's debug log and full tracebacks)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def findings_file(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "file", nargs="?", default="-", metavar="FILE|-",
            help="findings JSON (the output of normalize or pull); - or nothing: standard input",
        )

    def engine_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=env("config"),
                       help="JSON/YAML file: per-rule modes, exclusions, limits (env CSPM_CONFIG)")
        p.add_argument("--mode", default=env("mode"),
                       help="global mode for rules without their own: off, notify, dry-run, enforce (env CSPM_MODE)")
        p.add_argument("--rules", default=env("rules"),
                       help="comma-separated rule ids to act on; the others are skipped (env CSPM_RULES)")
        role_flags(p)
        p.add_argument(
            "--automation-role-name",
            default=env("automation_role_name", DEFAULT_AUTOMATION_ROLE_NAME),
            help="role SSM Automation assumes in target accounts (env REMEDIATION_AUTOMATION_ROLE_NAME)",
        )
        p.add_argument(
            "--max-workers", type=int, default=int(env("max_workers") or DEFAULT_MAX_WORKERS),
            help="accounts processed in parallel (env CSPM_MAX_WORKERS)",
        )
        ledger_flag(p)
        audit.add_report_flag(p)

    def role_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--role-name", default=env("role_name"),
                       help="role assumed in each target account; without it, only the caller's own account is "
                            "acted on (env REMEDIATION_ROLE_NAME)")
        p.add_argument("--external-id", default=env("external_id"),
                       help="ExternalId for AssumeRole (env REMEDIATION_EXTERNAL_ID)")

    ledger_flag = audit.add_ledger_flag  # a SQLite path or dynamodb://TABLE

    def source_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source", action="append", choices=SOURCES,
            default=None, help="where findings come from (repeat for several; env CSPM_SOURCE, comma-separated)",
        )
        p.add_argument("--regions", default=env("regions"),
                       help="regions to pull from (Security Hub) and act on (every source: findings of other "
                            "regions are skipped), comma-separated (env CSPM_REGIONS; default: pull your AWS "
                            "region, act on every region)")
        p.add_argument("--region", help="one region, pulled and acted on (overrides --regions)")
        p.add_argument("--netskope-url", default=env("netskope_url"),
                       help="Netskope tenant URL or FQDN (env NETSKOPE_URL)")
        p.add_argument(
            "--netskope-token-secret", default=env("netskope_token_secret"),
            help="Secrets Manager secret holding the Netskope API token (env NETSKOPE_TOKEN_SECRET)",
        )
        p.add_argument(
            "--netskope-auth", default=env("netskope_auth"), choices=netskope.AUTH_STYLES,
            help="how the token is sent: v1-body (the v1 token field, default) or header (Netskope-Api-Token)",
        )
        p.add_argument(
            "--input", action="extend", nargs="+", default=None, metavar="FILE",
            help="Prowler output files, json-ocsf or json-asff, for --source prowler (several after one --input, "
                 "as a shell glob gives them, or --input repeated; env CSPM_PROWLER_INPUT, comma-separated)",
        )

    p = command("normalize", "raw payload files → normalized findings (JSON array on stdout)")
    p.add_argument("--source", required=True, choices=list(PARSERS), help="which product wrote the files")
    p.add_argument("--config", default=env("config"), help="config file (its netskope.rules map rule names)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="an ASFF finding, a list of them, a GetFindings response, an EventBridge event, "
                        "a Netskope response, a Prowler json-ocsf / json-asff output file, or CloudTrail events, "
                        "records or log files")

    p = command("pull", "pull open violations from a source → findings JSON on stdout")
    source_flags(p)
    p.add_argument("--rules", default=env("rules"), help="comma-separated rule ids to pull (env CSPM_RULES)")
    p.add_argument("--config", default=env("config"), help="config file (its netskope.rules map rule names)")

    p = command("plan", "dry-run: what would be done for each finding (never writes)")
    findings_file(p)
    p.add_argument("--out", metavar="PLAN",
                   help="also write the plan for review (findings, decisions, a digest): apply --plan PLAN does "
                        "exactly that")
    engine_flags(p)

    p = command("apply", "act on findings of rules in enforce mode (or all non-disruptive ones, with --enforce)")
    findings_file(p)
    p.add_argument("--plan", metavar="PLAN",
                   help="act only on what this reviewed plan (plan --out) would change, and skip a finding whose "
                        "resource changed since; instead of FILE")
    p.add_argument("--enforce", action="store_true", help="treat every non-disruptive rule as enforce")
    engine_flags(p)

    p = command("run", "pull + apply in one go, with progress on stderr")
    source_flags(p)
    engine_flags(p)
    p.add_argument("--enforce", action="store_true", help="treat every non-disruptive rule as enforce")
    p.add_argument("--plan-only", action="store_true", help="pull and plan; never write")

    p = command("rules", "the rule catalog")
    p.add_argument("--json", action="store_true", help="every field as JSON instead of a table")

    audit.add_commands(command)  # history, show, rollback (functions/cli/audit.py)

    p = command("status", "the outcome of an SSM Automation execution started by apply/run")
    p.add_argument("execution_id", help="the execution id from the result's execution_id")
    p.add_argument("--account", required=True, help="the target account the execution runs in")
    p.add_argument("--region", required=True, help="the region the execution runs in")
    role_flags(p)
    return parser


# -- commands -----------------------------------------------------------------------------------
def cmd_normalize(args: argparse.Namespace, out: TextIO) -> int:
    parse = PARSERS[args.source]
    if args.source == "netskope" and args.config:
        extra = preflight.check_config(args.config).netskope_rules
        parse = lambda payload: netskope.parse_payload(payload, extra)  # noqa: E731
    rejected = 0
    with JsonArrayWriter(out) as writer:
        for path in args.files:
            try:
                payload = _read_payload(args.source, path)
                items = list(parse(payload))
            except InputError as error:  # names the file and the position itself
                rejected += 1
                log.error("rejected: %s", error)
                continue
            except ValueError as error:  # FindingError: not a payload of this source
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


def _read_payload(source: str, path: str) -> Any:
    """The file's JSON; a Prowler file may also be JSON Lines (one finding per line, as `jq -c '.[]'` writes)."""
    try:
        return read_json(path)
    except InputError as error:
        if source != "prowler" or path == "-" or "not valid JSON" not in str(error):
            raise
    with open(path, encoding="utf-8") as handle:
        return prowler.read_output(handle.read(), path)


def cmd_pull(args: argparse.Namespace, out: TextIO) -> int:
    pull = _pull(args)
    with JsonArrayWriter(out) as writer, Progress(None, label="findings pulled") as bar:
        for item in pull.items:
            if isinstance(item, FindingError):
                log.error("rejected: %s", item)
            else:
                writer.write(item.to_dict())
                bar.advance()
        pull.raise_if_nothing_worked()
    log.info("pulled %d finding(s), rejected %d; requests: %s", pull.stats.findings, pull.stats.rejected,
             ", ".join(f"{n} {where}" for where, n in sorted(pull.stats.requests.items())) or "none")
    return EXIT_REJECTED if pull.stats.rejected or pull.failures else EXIT_OK


def cmd_plan_apply(args: argparse.Namespace, out: TextIO, stage: Stage) -> int:
    config = _config(args)
    plan = _reviewed_plan(args) if stage == "apply" else None
    if plan is not None:
        findings, rejected = plan.findings, 0
        log.info("applying plan %s (run %s): %d finding(s) it would change", args.plan, plan.run_id, len(findings))
    else:
        findings, rejected = load_findings(args.file)
    plan_out = getattr(args, "out", None)
    audit.check_output(plan_out, "--out")
    results = _run_engine(args, config, findings, stage, precondition=plan.changed_since if plan else None)
    run_id = results[0].run_id if results else ""
    if plan_out:
        plan_digest = write_plan(plan_out, findings, results, run_id)
        log.info("plan written to %s; apply exactly it with: cspm-remediate apply --plan %s", plan_out, plan_out)
        # The page a change board approves names the file apply will use, by its digest.
        audit.write_report(args, results, f"Run {run_id} (plan)", f"plan file {plan_out}, {plan_digest}", False)
    elif plan is not None:
        audit.write_report(args, results, f"Run {run_id} (apply)", f"applying plan {args.plan}, {plan.digest}", False)
    _write_results(results, out)
    return EXIT_REJECTED if rejected or any(r.outcome == "failed" for r in results) else EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args)  # a typo in the config fails now, not after a long pull
    pull = _pull(args)
    findings: list[Finding] = []
    with Progress(None, label="findings pulled") as bar:
        for item in pull.items:
            if isinstance(item, FindingError):
                log.error("rejected: %s", item)
            else:
                findings.append(item)
                bar.advance()
    pull.raise_if_nothing_worked()
    log.info("pulled %d finding(s), rejected %d", pull.stats.findings, pull.stats.rejected)
    results = _run_engine(args, config, findings, "plan" if args.plan_only else "apply")
    _write_results(results, out)
    failed = pull.stats.rejected or pull.failures or any(r.outcome == "failed" for r in results)
    return EXIT_REJECTED if failed else EXIT_OK


def cmd_rules(args: argparse.Namespace, out: TextIO) -> int:
    rows = rule_rows()
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return EXIT_OK
    # The table fits the terminal (titles wrap); --json has every field, permissions included.
    header = ("rule_id", "mode", "disruptive", "reversible", "executor", "cis", "title")
    table = [
        (r["rule_id"], r["mode"], "yes" if r["disruptive"] else "no", "yes" if r["reversible"] else "no",
         "+".join(r["executor"]), ",".join(r["cis"]) or "-", r["title"])
        for r in rows
    ]
    width = shutil.get_terminal_size((100, 24)).columns
    lines = render_table(header, table, width=width, flex=len(header) - 1, key_width=12)
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    preflight.check_regions([args.region])
    sessions = AssumedSessions(role_name=args.role_name, external_id=args.external_id)
    preflight.check_credentials(sessions.caller_identity)
    status = execution_status(sessions.target(args.account, args.region), args.execution_id)
    json.dump(
        {"execution_id": status.execution_id, "status": status.status, "outcome": status.outcome,
         "reason": status.reason},
        out, indent=2,
    )
    out.write("\n")
    return EXIT_OK


# -- shared pieces ------------------------------------------------------------------------------
class Pull:
    """A pull in progress: findings stream from `items`; a source or region that fails is logged in one line,
    recorded in `failures`, and the others go on."""

    def __init__(self, args: argparse.Namespace, sources: list[str], regions: list[str]) -> None:
        self.args, self.sources, self.regions = args, sources, regions
        self.stats = PullStats()
        self.failures: list[str] = []
        self.inputs = args.input or csv(env("prowler_input"))
        self.items = self._items()

    def _items(self) -> Iterator[Finding | FindingError]:
        rule_ids = csv(self.args.rules) or None
        for source in self.sources:
            if source in REGIONAL_SOURCES:
                pull = pull_securityhub if source == "securityhub" else pull_securityhub_v2
                for region in self.regions:
                    yield from self._guarded(f"{source} {region}",
                                             lambda r=region, p=pull: p([r], rule_ids, stats=self.stats))
            elif source == "prowler":
                yield from pull_prowler(self.inputs, rule_ids, stats=self.stats)  # a bad file is one rejection
            else:
                yield from self._guarded("netskope", lambda: _filter_rules(
                    pull_netskope(self.args.netskope_url, self.args.netskope_token_secret, stats=self.stats,
                                  auth=self.args.netskope_auth, extra_rules=_netskope_rules(self.args)),
                    rule_ids))

    def _guarded(self, name: str, pull: Any) -> Iterator[Finding | FindingError]:
        try:
            yield from pull()
        except (ClientError, BotoCoreError, NetskopeError) as error:
            self.failures.append(name)
            log.error("%s: pull failed, its findings are missing from the output: %s", name, summarize_error(error))

    def raise_if_nothing_worked(self) -> None:
        """Every source and region failed: an environment problem, not a partial result."""
        regional = set(self.sources) & set(REGIONAL_SOURCES)
        units = len(self.regions) * len(regional) + len(set(self.sources) - regional)
        if self.failures and len(self.failures) >= units:
            raise UsageError(f"nothing could be pulled ({', '.join(self.failures)} failed; see above)")


def _pull(args: argparse.Namespace) -> Pull:
    """Checks the flags and the environment now (a usage error must come before any output), then pulls
    lazily."""
    sources = list(dict.fromkeys(args.source or csv(env("sources"))))
    if not sources:
        raise UsageError(f"--source is required ({', '.join(SOURCES)}), or set CSPM_SOURCE")
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise UsageError(f"unknown source(s) {', '.join(unknown)} (choose from {', '.join(SOURCES)})")
    preflight.check_rule_ids(csv(args.rules))
    if "prowler" in sources and not (args.input or csv(env("prowler_input"))):
        raise UsageError("--source prowler needs --input FILE (a `prowler aws -M json-ocsf` output file), "
                         "or set CSPM_PROWLER_INPUT")
    regions: list[str] = []
    if set(sources) & set(REGIONAL_SOURCES):
        if args.region:
            regions = preflight.check_regions([args.region], "--region")
        elif csv(args.regions):
            regions = preflight.check_regions(csv(args.regions), "--regions")
        else:
            regions = [preflight.default_region("--region")]
    elif not boto3.Session().region_name and "netskope" in sources:
        preflight.default_region()  # the token secret is read from Secrets Manager in the caller's region
    if "netskope" in sources and (not args.netskope_url or not args.netskope_token_secret):
        preflight.check_netskope(args.netskope_url, args.netskope_token_secret)
    if set(sources) != {"prowler"}:  # reading a Prowler file needs no AWS credentials
        preflight.check_credentials()
    if "netskope" in sources:
        preflight.check_netskope(args.netskope_url, args.netskope_token_secret)
    return Pull(args, sources, regions)


def _netskope_rules(args: argparse.Namespace) -> dict[str, str] | None:
    """The config file's `netskope.rules` (rule name → rule id), when a config is given."""
    return dict(preflight.check_config(args.config).netskope_rules) if getattr(args, "config", None) else None


def _filter_rules(items: Iterable[Finding | FindingError], rule_ids: list[str] | None
                  ) -> Iterator[Finding | FindingError]:
    for item in items:
        if rule_ids is None or isinstance(item, FindingError) or item.rule_id in rule_ids:
            yield item


def _reviewed_plan(args: argparse.Namespace) -> Plan | None:
    """apply --plan: the plan file, refused as a whole when it is not one or was altered (digest)."""
    if not args.plan:
        return None
    if args.file != "-":
        raise UsageError(f"apply: give the findings FILE or --plan {args.plan}, not both")
    try:
        return Plan(read_json(args.plan), args.plan)
    except PlanError as error:
        raise UsageError(str(error)) from None


def _run_engine(args: argparse.Namespace, config: Config, findings: list[Finding], stage: Stage,
                precondition: Any = None) -> list[Result]:
    preflight.default_region()
    ledger = preflight.check_ledger(args.ledger) if args.ledger else None
    try:
        sessions = AssumedSessions(role_name=args.role_name, external_id=args.external_id)
        preflight.check_credentials(sessions.caller_identity)
        return _engine_run(args, config, sessions, ledger, findings, stage, precondition)
    finally:
        if ledger is not None:
            ledger.close()


def _engine_run(args: argparse.Namespace, config: Config, sessions: AssumedSessions, ledger: Any,
                findings: list[Finding], stage: Stage, precondition: Any = None) -> list[Result]:
    with Progress(len(findings)) as bar:

        def on_result(_result: Result) -> None:
            bar.advance()

        engine = Engine(
            config, sessions, stage=stage, max_workers=args.max_workers,
            automation_role_name=args.automation_role_name,
            ledger=ledger,  # records each result once, claims actions, keeps the circuit breaker's counters
            on_result=on_result, precondition=precondition,
        )
        log.info("run %s: %s of %d finding(s)", engine.run_id, stage, len(findings))
        results = engine.run(findings)
    if ledger is not None:
        log.info("recorded in %s; undo with: cspm-remediate rollback --run %s --ledger %s",
                 args.ledger, engine.run_id, args.ledger)
    sys.stderr.write("\n" + render_text(results, title=f"Run {engine.run_id} ({stage})"))
    audit.write_report(args, results, f"Run {engine.run_id} ({stage})",
                       "dry-run: nothing was changed" if stage == "plan" else "")
    log.info("AssumeRole calls this run: %d", sessions.assume_role_calls)
    return results


def _config(args: argparse.Namespace) -> Config:
    audit.check_output(getattr(args, "report_html", None), "--report-html")  # before any pull or AWS call
    config = preflight.check_config(args.config)
    preflight.check_rule_ids(csv(args.rules))
    mode = "enforce" if getattr(args, "enforce", False) else args.mode
    only = frozenset(csv(args.rules)) or None
    # `run` acts only on the regions it was told (--region / --regions / CSPM_REGIONS), whatever the source.
    regions = [args.region] if getattr(args, "region", None) else csv(getattr(args, "regions", None))
    if regions:
        preflight.check_regions(regions, "--region" if getattr(args, "region", None) else "--regions")
    return config.with_overrides(mode=mode, only_rules=only, regions=frozenset(regions) or None)


def _write_results(results: Sequence[Result], out: TextIO) -> None:
    with JsonArrayWriter(out) as writer:
        for result in results:
            writer.write(result.to_dict())


class JsonArrayWriter:
    """Writes a JSON array one element at a time, so output memory stays flat.

    Nothing is written before the first element: when a command fails before producing anything, stdout stays
    empty (an empty `[]` would read as "no findings" to the next command in a pipe)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0

    def __enter__(self) -> JsonArrayWriter:
        return self

    def write(self, item: Any) -> None:
        self.out.write(("," if self.count else "[") + "\n  " + json.dumps(item, default=str, ensure_ascii=False))
        self.count += 1

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and not self.count:
            return
        self.out.write("\n]\n" if self.count else "[]\n")
        self.out.flush()


_HANDLER: logging.Handler | None = None


class _CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time of the record (a test harness may swap and close it), and
    clears a progress bar being drawn on the terminal first, so log lines and the bar never share a line."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        with clear_for_log():
            super().emit(record)


class _RepeatFilter(logging.Filter):
    """A warning that differs only by finding id (the circuit breaker's, one per held-back finding) is shown
    once; the report's circuit-breaker section counts them all."""

    _FINDING = re.compile(r"\s*\(finding [^)]*\)")

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        key = (record.name, self._FINDING.sub("", record.getMessage()))
        if key in self.seen:
            self.suppressed += 1
            return False
        self.seen.add(key)
        return True


class _OneLineFormatter(logging.Formatter):
    """Tracebacks are for developers: below -vv a record's exception is one line (its type and first line)."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks or not record.exc_info:
            return super().format(record)
        error = record.exc_info[1]
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.exc_text = saved
        return f"{line} ({one_line(error)}; -vv for the traceback)" if error is not None else line


def one_line(error: BaseException) -> str:
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0]}" if first else type(error).__name__


def _log_to_stderr(level: int, tracebacks: bool = False) -> None:
    """Log to the current sys.stderr. Replaces the handler a previous main() call installed, and leaves every
    other root handler alone (basicConfig(force=True) would close the host's, e.g. pytest's caplog)."""
    global _HANDLER
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
    _HANDLER = _CurrentStderrHandler()
    _HANDLER.setFormatter(_OneLineFormatter(tracebacks))
    _HANDLER.addFilter(_RepeatFilter())
    root.addHandler(_HANDLER)
    root.setLevel(level)


COMMANDS = {
    "normalize": cmd_normalize,
    "pull": cmd_pull,
    "plan": lambda a, o: cmd_plan_apply(a, o, "plan"),
    "apply": lambda a, o: cmd_plan_apply(a, o, "apply"),
    "run": cmd_run,
    "rules": cmd_rules,
    **audit.COMMANDS,
    "status": cmd_status,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    tune_gc()  # once, after the imports: functions/engine/startup.py says why
    args = build_parser().parse_args(argv)
    # Default INFO for our own loggers; -v adds our DEBUG; -vv also the AWS SDK's and urllib3's DEBUG.
    _log_to_stderr(logging.DEBUG if args.verbose else logging.INFO, tracebacks=args.verbose >= 2)
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose >= 2 else logging.WARNING)
    try:
        code = COMMANDS[args.command](args, out or sys.stdout)
        repeats = next((f for f in (_HANDLER.filters if _HANDLER else []) if isinstance(f, _RepeatFilter)), None)
        if repeats is not None and repeats.suppressed:
            log.info("%d repeated warning(s) not shown (they differ only by finding; the report counts them)",
                     repeats.suppressed)
        return code
    except (UsageError, ConfigError) as error:
        log.error("%s", error)
        return EXIT_USAGE
    except NetskopeError as error:  # messages name the HTTP status, never the token
        log.error("%s", error)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as error:  # e.g. AccessDenied on a call preflight cannot foresee
        log.error("AWS: %s", summarize_error(error))
        return EXIT_USAGE
    except (OSError, ValueError) as error:
        log.error("%s", one_line(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as error:  # a bug: one line for the user, the traceback with -vv
        log.error("unexpected error: %s", one_line(error), exc_info=error)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
