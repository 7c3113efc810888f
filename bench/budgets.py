"""The budgets `make bench` enforces (DESIGN §7), as pure functions of measured numbers.

Each check returns a Budget: its name, whether it holds, what was measured and what was allowed. The bench
fails (non-zero exit) when any does not hold.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

GET_FINDINGS_PAGE = 100  # Security Hub GetFindings MaxResults
READ_PREFIXES = ("Describe", "Get", "List")
MAX_READS_PER_REMEDIATION = 2  # one read to assess, one to verify
MEMORY_GROWTH_LIMIT = 1.5


@dataclass(frozen=True)
class Budget:
    name: str
    ok: bool
    measured: str
    limit: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.measured} (budget {self.limit})"


def is_read(operation: str) -> bool:
    """`ec2.DescribeSecurityGroups` → True. Describe/Get/List are reads; everything else writes."""
    return operation.rsplit(".", 1)[-1].startswith(READ_PREFIXES)


@dataclass
class RuleEconomy:
    """AWS calls made for one rule's remediated findings (assess + apply + verify), summed and worst case."""

    remediated: int = 0
    reads: int = 0
    writes: int = 0
    max_reads: int = 0
    max_extra_writes: int = 0  # worst (writes - minimal writes) over the rule's remediated findings
    operations: Counter[str] = field(default_factory=Counter)

    def add(self, calls: Mapping[str, int], minimal_writes: int) -> None:
        """One remediated finding's calls by "service.Operation" (STS excluded by the caller)."""
        reads = sum(n for op, n in calls.items() if is_read(op))
        writes = sum(n for op, n in calls.items() if not is_read(op))
        self.remediated += 1
        self.reads += reads
        self.writes += writes
        self.max_reads = max(self.max_reads, reads)
        self.max_extra_writes = max(self.max_extra_writes, writes - minimal_writes)
        self.operations.update(calls)

    def merge(self, other: RuleEconomy) -> None:
        self.remediated += other.remediated
        self.reads += other.reads
        self.writes += other.writes
        self.max_reads = max(self.max_reads, other.max_reads)
        self.max_extra_writes = max(self.max_extra_writes, other.max_extra_writes)
        self.operations.update(other.operations)


def assume_role(calls: int, accounts_touched: int, label: str) -> Budget:
    return Budget(f"AssumeRole per run ({label})", calls <= accounts_touched,
                  f"{calls} calls", f"<= {accounts_touched} accounts touched")


def get_findings(calls: int, findings: int, queries: int, label: str) -> Budget:
    """One page per 100 findings, plus one (possibly short or empty) last page per (hub, region) queried."""
    limit = math.ceil(findings / GET_FINDINGS_PAGE) + queries
    return Budget(f"GetFindings ({label})", calls <= limit,
                  f"{calls} calls for {findings} findings",
                  f"<= ceil({findings}/{GET_FINDINGS_PAGE}) + {queries} = {limit}")


def netskope_requests(requests: int, items: int, page_size: int, label: str) -> Budget:
    """Full pages, then one empty page: a short page is not proof of the end (a tenant may cap pages below the
    size asked), so paging stops only at an empty one — and never costs more than that one request."""
    limit = math.ceil(items / page_size) + 1
    return Budget(f"Netskope requests ({label})", requests <= limit,
                  f"{requests} requests for {items} items",
                  f"<= ceil({items}/{page_size}) + 1 = {limit}")


def describe_before_write(economy: Mapping[str, RuleEconomy]) -> list[Budget]:
    """Per rule: at most 2 reads and no write beyond the minimum, for every remediated finding."""
    budgets = []
    for rule_id in sorted(economy):
        e = economy[rule_id]
        if not e.remediated:
            continue
        ok = e.max_reads <= MAX_READS_PER_REMEDIATION and e.max_extra_writes <= 0
        budgets.append(Budget(
            f"describe-before-write {rule_id}", ok,
            f"{e.remediated} remediated, reads/finding {e.reads / e.remediated:.2f} (max {e.max_reads}), "
            f"writes/finding {e.writes / e.remediated:.2f} (max {e.max_extra_writes:+d} over minimum)",
            f"reads <= {MAX_READS_PER_REMEDIATION}, writes <= minimum",
        ))
    return budgets


def memory_growth(peak_small: float, peak_large: float, n_small: int, n_large: int,
                  factor: float = MEMORY_GROWTH_LIMIT) -> Budget:
    ratio = peak_large / peak_small if peak_small > 0 else math.inf
    return Budget(f"peak memory pull+plan {n_large:,} vs {n_small:,} findings", ratio <= factor,
                  f"{peak_large:.1f} MiB vs {peak_small:.1f} MiB = {ratio:.2f}x", f"<= {factor}x")


def all_ok(budgets: Iterable[Budget]) -> bool:
    return all(b.ok for b in budgets)
