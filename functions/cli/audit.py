"""The audit commands of `cspm-remediate`: what happened (history, show) and undoing it (rollback).

They read the ledger at any address (`--ledger PATH | dynamodb://TABLE`, else CSPM_LEDGER_PATH, else the
deployed stack's LEDGER_TABLE), so a deployed run is inspected with read-only credentials exactly as a local
one. Registered into the CLI by functions/cli/main.py (`add_commands` and `COMMANDS`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from functions.cli import preflight
from functions.cli.errors import EXIT_OK, EXIT_REJECTED, UsageError
from functions.engine.engine import new_run_id
from functions.engine.ledger import Ledger, idempotency_key, ledger_address, run_summaries
from functions.engine.rollback import RollbackResult, ledger_result, rollback
from functions.engine.sessions import AssumedSessions
from functions.engine.settings import env
from functions.report_html import write_html


def add_ledger_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ledger", default=ledger_address(None),
        help="where results are recorded: a SQLite file, or dynamodb://TABLE (default: CSPM_LEDGER_PATH, "
             "else dynamodb://$LEDGER_TABLE)",
    )


def add_report_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report-html", metavar="FILE",
                   help="also write a self-contained HTML report: totals, rules by accounts, every finding "
                        "(filterable)")


def check_output(path: str | None, flag: str) -> None:
    """A file the command will write: its directory must exist (said before any work, not after it)."""
    if path and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"{flag} {path}: directory {Path(path).parent} does not exist")


def write_report(args: argparse.Namespace, results: Iterable[Any], title: str, subtitle: str = "",
                 announce: bool = True) -> None:
    path = getattr(args, "report_html", None)
    if path:
        write_html(path, results, title, subtitle)
        if announce:
            sys.stderr.write(f"HTML report: {path}\n")


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The subcommands of this module; `command(name, help)` makes a subparser the way the CLI does."""
    p = command("history", "the runs recorded in the ledger, newest first")
    p.add_argument("--limit", type=int, default=20, help="at most this many runs (0: all)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    add_ledger_flag(p)

    p = command("show", "what a run did, finding by finding")
    p.add_argument("--run", required=True, help="the run id (see history)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    add_ledger_flag(p)
    add_report_flag(p)

    p = command("rollback", "put back what a run changed, where it still holds what the run set (dry-run first); "
                            "recorded as a run of its own")
    p.add_argument("--run", required=True, help="the run id (printed by apply/run)")
    p.add_argument("--finding", help="only this finding id")
    p.add_argument("--apply", action="store_true", help="restore for real (default: say what would be restored)")
    p.add_argument("--force", action="store_true",
                   help="also restore fields changed since the run (default: leave them as they are)")
    # The forward role (REMEDIATION_ROLE_NAME) holds no restore actions: the rollback role's variable comes first.
    p.add_argument("--role-name", default=env("rollback_role_name") or env("role_name"),
                   help="role assumed in each target account, e.g. the target stack's rollback role "
                        "CSPMRemediationRollbackRole (env REMEDIATION_ROLLBACK_ROLE_NAME, else "
                        "REMEDIATION_ROLE_NAME; unset: the caller's own credentials)")
    p.add_argument("--external-id", default=env("external_id"),
                   help="ExternalId for AssumeRole (env REMEDIATION_EXTERNAL_ID)")
    p.add_argument("--config", default=env("config"),
                   help="the config the run used: remediator params (env CSPM_CONFIG)")
    add_ledger_flag(p)
    add_report_flag(p)


def _open(args: argparse.Namespace) -> Ledger:
    if not args.ledger:
        raise UsageError(f"{args.command} needs a ledger: --ledger PATH or dynamodb://TABLE (or CSPM_LEDGER_PATH, "
                         "LEDGER_TABLE)")
    return preflight.check_ledger(args.ledger, create=False)


def _run_rows(ledger: Ledger, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = list(ledger.results(args.run))
    if not rows:
        raise UsageError(f"run {args.run} is not in {args.ledger} (see: cspm-remediate history --ledger "
                         f"{args.ledger})")
    return rows


# -- history --------------------------------------------------------------------------------------
def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    ledger = _open(args)
    try:
        runs = run_summaries(ledger.all_results())
    finally:
        ledger.close()
    if args.limit > 0:
        runs = runs[: args.limit]
    if args.json:
        json.dump(runs, out, indent=2)
        out.write("\n")
        return EXIT_OK
    table = [
        (r["run_id"], r["started"] or "", ",".join(r["sources"]), r["stage"], str(r["results"]),
         ", ".join(f"{n} {o}" for o, n in r["counts"].items()))
        for r in runs
    ]
    write_table(out, ("run", "started", "source", "stage", "results", "outcomes"), table)
    if not runs:
        out.write(f"(no runs in {args.ledger})\n")
    return EXIT_OK


# -- show -----------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    check_output(args.report_html, "--report-html")
    ledger = _open(args)
    try:
        rows = _run_rows(ledger, args)
    finally:
        ledger.close()
    if args.report_html:
        (summary,) = run_summaries(rows)
        write_report(args, rows, f"Run {args.run} ({summary['stage']})",
                     f"{', '.join(summary['sources'])} · {summary['started']} .. {summary['finished']}")
    if args.json:
        json.dump(rows, out, indent=2, default=str)
        out.write("\n")
        return EXIT_OK
    (summary,) = run_summaries(rows)
    out.write(f"Run {summary['run_id']} ({summary['stage']}, {', '.join(summary['sources'])}) "
              f"{summary['started']} .. {summary['finished']}: "
              + ", ".join(f"{n} {o}" for o, n in summary["counts"].items()) + "\n\n")
    write_table(
        out, ("outcome", "rule", "account", "region", "resource", "reason"),
        [(r.get("outcome", ""), r.get("rule_id", ""), r.get("account_id", ""), r.get("region", ""),
          r.get("resource_id", ""), r.get("reason", "")) for r in rows],
    )
    detailed = [r for r in rows if r.get("changes") or r.get("pre_state") or r.get("post_state")]
    if detailed:
        out.write("\nChanges, pre-state and what the run set (rollback puts a field back only while it holds that):\n")
    for r in detailed:
        out.write(f"  [{r.get('rule_id')}] {r.get('account_id')} {r.get('region')} {r.get('resource_id')}\n")
        for change in r.get("changes") or []:
            out.write(f"      change:    {change}\n")
        if r.get("pre_state"):
            out.write(f"      pre-state: {json.dumps(r['pre_state'], default=str, sort_keys=True)}\n")
        if r.get("post_state"):
            out.write(f"      set:       {json.dumps(r['post_state'], default=str, sort_keys=True)}\n")
    return EXIT_OK


# -- rollback -------------------------------------------------------------------------------------
def cmd_rollback(args: argparse.Namespace, out: TextIO) -> int:
    check_output(args.report_html, "--report-html")
    config = preflight.check_config(args.config)
    ledger = _open(args)
    try:
        rows = _run_rows(ledger, args)
        preflight.default_region()
        sessions = AssumedSessions(role_name=args.role_name, external_id=args.external_id)
        preflight.check_credentials(sessions.caller_identity)
        run_id = new_run_id()
        results = []
        for row, rolled in rollback(rows, sessions, apply=args.apply, finding_id=args.finding, config=config,
                                    force=args.force):
            results.append(rolled)
            if args.apply:  # the rollback is a run of its own; a dry-run writes nothing
                _record(ledger, row, rolled, run_id)
    finally:
        ledger.close()
    out.write("[")
    for n, result in enumerate(results):
        out.write(("," if n else "") + "\n  " + json.dumps(
            {**result.to_dict(), "run_id": run_id if args.apply else None}, default=str, ensure_ascii=False))
    out.write("\n]\n" if results else "]\n")
    counts = Counter(r.outcome for r in results)
    recorded = f" (recorded as run {run_id})" if args.apply and results else ""
    sys.stderr.write(f"\nRollback of run {args.run}{'' if args.apply else ' (dry-run)'}{recorded}: "
                     + (", ".join(f"{n} {o}" for o, n in counts.items()) or "no actions to undo") + "\n")
    for r in results:
        sys.stderr.write(f"  {r.outcome:<9} [{r.rule_id}] {r.account_id} {r.region} {r.resource_id}: {r.reason}\n")
    write_report(args, [r.to_dict() for r in results],
                 f"Rollback of run {args.run}" + ("" if args.apply else " (dry-run)"), recorded.strip(" ()"))
    return EXIT_REJECTED if counts.get("failed") else EXIT_OK


def _record(ledger: Ledger, row: Mapping[str, Any], rolled: RollbackResult, run_id: str) -> None:
    """Record the rollback's result and, once the resource is no longer what the run left (put back, or changed by
    someone since), free the run's claim on the finding, so the next run reads it afresh and acts on it again
    instead of skipping it as already remediated."""
    key = row.get("key") or idempotency_key(_Observed(row))
    ledger.record(ledger_result(row, rolled, run_id), key)
    if rolled.outcome in ("restored", "unchanged", "skipped"):  # the next run reads the resource afresh
        ledger.release(key)


class _Observed:
    """A ledger row seen as an idempotency key's parts (rows older than the recorded `key`)."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.rule_id, self.account_id = row["rule_id"], row["account_id"]
        self.region, self.resource_id = row["region"], row["resource_id"]
        self.last_observed = row.get("last_observed")


# -- shared ---------------------------------------------------------------------------------------
def write_table(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last column is left ragged (reasons are long)."""
    rows = [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in [tuple(header), *rows]) for i in range(len(header) - 1)]
    for row in [tuple(header), *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] + "\n")


COMMANDS: Mapping[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "history": cmd_history,
    "show": cmd_show,
    "rollback": cmd_rollback,
}
