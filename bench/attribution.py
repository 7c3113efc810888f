"""Which AWS calls were made for which finding: per-rule read/write economy of remediations.

The engine handles one account's findings in order on one worker thread and calls `on_result` on that same
thread right after each finding. So: count every call on the thread that makes it (AssumedSessions'
session_hook puts a counter on every session), and hand the thread's tally to the finding whose result comes
next. Nothing in the engine is patched. A group the engine handles together (a batched describe, a combined
password-policy write) is charged to its first result: per rule the sums are right, per finding the first of a
group carries the shared calls.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import boto3

from bench.budgets import RuleEconomy
from functions.model import Result


class CallTally:
    """Counts each AWS call on the thread that makes it. Pass `hook` as AssumedSessions' session_hook."""

    def __init__(self) -> None:
        self._local = threading.local()

    def hook(self, session: boto3.Session, account_id: str) -> None:
        session.events.register("before-call", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        calls = getattr(self._local, "calls", None)
        if calls is None:
            calls = self._local.calls = Counter()
        calls[event_name.split(".", 1)[1]] += 1  # "before-call.ec2.DescribeSecurityGroups"

    def take(self) -> Counter[str]:
        """The calls made on this thread since the last take."""
        calls = getattr(self._local, "calls", None) or Counter()
        self._local.calls = Counter()
        return calls


def minimal_writes(result: Result) -> int:
    """The fewest writes that can fix this finding: one, except
    IAM.3 — one UpdateAccessKey per stale key; EC2.6 — CreateFlowLogs, plus CreateLogGroup and PutRetentionPolicy
    when this remediation had to create the log group."""
    pre_state = result.pre_state or {}
    if result.rule_id == "IAM.3":
        return max(1, len(pre_state.get("deactivated", [])))
    if result.rule_id == "EC2.6" and (pre_state.get("created") or {}).get("LogGroupName"):
        return 3
    return 1


class Economy:
    """`on_result` for the engine: per-rule RuleEconomy of remediated findings (STS calls left out: assuming the
    account's role is the session's cost, not the finding's)."""

    def __init__(self, tally: CallTally) -> None:
        self.tally = tally
        self.by_rule: dict[str, RuleEconomy] = {}
        self.calls_by_rule: dict[str, Counter[str]] = {}  # every result's calls, whatever its outcome
        self.findings_by_rule: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_result(self, result: Result) -> None:
        calls = Counter({op: n for op, n in self.tally.take().items() if not op.startswith("sts.")})
        with self._lock:
            self.calls_by_rule.setdefault(result.rule_id, Counter()).update(calls)
            self.findings_by_rule[result.rule_id] += 1
            if result.outcome == "remediated":
                self.by_rule.setdefault(result.rule_id, RuleEconomy()).add(calls, minimal_writes(result))
