"""SNS: one summary per run, one message per notify-only finding (its reason is the human guidance), and one
alert per run and circuit-breaker limit reached.

Messages are written for email: a subject SNS accepts (ASCII, one line, under 100 characters), a plain-text
body that leads with what needs a person (failures, circuit-breaker trips), then the per rule/account report
of functions/report.py. Bodies are cut to SNS's 256 KB limit with a note saying so.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Sequence
from typing import Any

from functions.model import Result
from functions.report import circuit_breaker_lines, first_sentence, limited, outcome_counts, render_text, wrap

SUBJECT_PREFIX = "[cspm-remediation]"
SUBJECT_MAX_CHARS = 99  # SNS: "must be less than 100 characters long"
MESSAGE_MAX_BYTES = 256 * 1024
GUIDANCE_WIDTH = 100  # e-mail clients show plain text as is: a 1,000-character line scrolls off
MAX_LISTED = 100  # per attention list, so the report table always fits
_SUBJECT_ORDER = ("failed", "remediated", "started", "planned", "notified", "noop", "excluded", "skipped")


def summary_message(results: Sequence[Result], run_id: str, stage: str) -> tuple[str, str]:
    """(subject, body) of the run summary."""
    counts = outcome_counts(results)
    tally = ", ".join(f"{counts[o]} {o}" for o in _SUBJECT_ORDER if counts[o]) or "no findings"
    subject = _subject(f"{SUBJECT_PREFIX} {stage} {run_id}: {tally}")
    title = f"CSPM remediation {stage}, run {run_id}"
    body = "\n".join([title, "", *_attention(results), render_text(results, title="Report")])
    note = f"\n[truncated to fit SNS's 256 KB limit; the ledger holds every result of run {run_id}]\n"
    return subject, _fit(body, MESSAGE_MAX_BYTES - len(subject), note)


def notify_message(result: Result) -> tuple[str, str]:
    """(subject, body) for a notify-only finding: nothing was changed, a person has to act."""
    subject = _subject(f"{SUBJECT_PREFIX} action needed: {result.rule_id} in {result.account_id} {result.region}")
    body = "\n".join([
        f"{result.rule_id} needs a person: the rule is notify-only, so nothing was changed.",
        "",
        "What to do:",
        *_paragraph(result.reason),
        "",
        f"Account:   {result.account_id}",
        f"Region:    {result.region}",
        f"Resource:  {result.resource_type} {result.resource_id}",
        f"Finding:   {result.finding_id} ({result.source})",
        f"Run:       {result.run_id}",
        "",
    ])
    return subject, _fit(body, MESSAGE_MAX_BYTES - len(subject), "\n[truncated]\n")


def trip_message(held: Result) -> tuple[str, str]:
    """(subject, body) of the alert sent the first time a run reaches a circuit-breaker limit."""
    limit = first_sentence(held.reason, 200).removeprefix("circuit breaker: ").split(" this run")[0]
    subject = _subject(f"{SUBJECT_PREFIX} circuit breaker tripped: {limit}")  # the run id is in the body: room
    body = "\n".join([
        f"Run {held.run_id} reached a circuit-breaker limit: {limit}.",
        "",
        "Findings past the limit are planned, not changed, for the rest of this run; this alert is sent once.",
        "The run summary counts them. The next run starts with fresh counters and acts on what is left,",
        "up to the limits again. To act on more per run, raise limits.max_actions_per_rule /",
        "limits.max_actions_per_account in the configuration (defaults: 25 per rule, 100 per account).",
        "",
        f"First held finding: [{held.rule_id}] {held.account_id} {held.region} {held.resource_id}",
        f"Finding id:         {held.finding_id}",
        "",
    ])
    return subject, _fit(body, MESSAGE_MAX_BYTES - len(subject), "\n[truncated]\n")


def publish_one(sns_client: Any, topic_arn: str, message: tuple[str, str]) -> str:
    """Publish one (subject, body); the message id. Throttling and transient errors are retried by the client
    (CLIENT_CONFIG)."""
    subject, body = message
    message_id: str = sns_client.publish(TopicArn=topic_arn, Subject=subject, Message=body)["MessageId"]
    return message_id


def publish(
    sns_client: Any,
    topic_arn: str,
    results: Sequence[Result],
    run_id: str,
    stage: str,
    notify_each: bool = True,
) -> list[str]:
    """Publish the run summary, then (``notify_each``) one message per notified result; the message ids.
    Throttling and transient errors are retried by the client (CLIENT_CONFIG); anything else raises."""
    messages = [summary_message(results, run_id, stage)]
    if notify_each:
        messages += [notify_message(r) for r in results if r.outcome == "notified"]
    return [publish_one(sns_client, topic_arn, message) for message in messages]


def _attention(results: Sequence[Result]) -> list[str]:
    """Failures one by one, circuit-breaker trips once per limit hit; empty when nothing needs a person."""
    failed = [r for r in results if r.outcome == "failed"]
    trips = circuit_breaker_lines(results)
    lines: list[str] = []
    if failed:
        lines += [f"Failed ({len(failed)}):"]
        lines += limited([wrap(f"[{r.rule_id}] {r.account_id} {r.region} {r.resource_id}: "
                               f"{first_sentence(r.reason, 300)}") for r in failed], MAX_LISTED)
        lines.append("")
    if trips:
        held = sum(1 for r in results if r.circuit_breaker)
        lines += [f"Circuit breaker tripped ({held} finding(s) planned, not changed):"]
        lines += limited([f"  {line}" for line in trips], MAX_LISTED)
        lines.append("")
    return lines


def _paragraph(text: str, width: int = GUIDANCE_WIDTH) -> list[str]:
    """Guidance for e-mail: lines of at most `width`, indented; a command or ARN longer than that stays whole."""
    return textwrap.wrap(" ".join(text.split()), width, initial_indent="  ", subsequent_indent="  ",
                         break_long_words=False, break_on_hyphens=False) or ["  "]


def _subject(text: str) -> str:
    """ASCII, one line, within SNS's limit (accents folded, anything else dropped)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    line = " ".join("".join(c if c.isprintable() else " " for c in ascii_text).split())
    return line if len(line) <= SUBJECT_MAX_CHARS else line[: SUBJECT_MAX_CHARS - 3].rstrip() + "..."


def _fit(text: str, max_bytes: int, note: str) -> str:
    """Cut text to max_bytes of UTF-8 (never inside a character), ending with note when cut."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    room = max_bytes - len(note.encode())
    return data[:room].decode("utf-8", "ignore") + note
