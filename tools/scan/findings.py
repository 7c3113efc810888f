"""A scanner's finding, and the allowlist that accepts the justified ones (tools/scan/allowlist.yaml).

An allowlist entry names the scanner, the check id, where it applies (a glob over `<rendering>:<resource>/<policy>`)
and, for findings about actions, the actions it accepts: a finding passes only when every action it names is
listed, so the same check on a new action fails again. Every entry carries a one-line `why`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALLOWLIST = Path(__file__).with_name("allowlist.yaml")


@dataclass(frozen=True)
class Finding:
    scanner: str  # "checkov" | "parliament"
    check: str  # CKV_AWS_111, PRIVILEGE_ESCALATION...
    rendering: str  # target-all-enforce.yaml, target-only-RuleIAMx18, admin.yaml...
    where: str  # <resource>/<policy> (parliament) or <resource> (checkov)
    actions: frozenset[str] = frozenset()  # lower-case, when the check is about actions
    detail: str = ""

    @property
    def location(self) -> str:
        return f"{self.rendering}:{self.where}"

    def line(self) -> str:
        actions = f" [{', '.join(sorted(self.actions))}]" if self.actions else ""
        return f"{self.scanner} {self.check} {self.location}{actions}{' ' + self.detail if self.detail else ''}"


@dataclass(frozen=True)
class Entry:
    scanner: str
    check: str
    where: tuple[str, ...]
    why: str
    actions: frozenset[str] | None = None  # None: any (checks without actions)

    def covers(self, finding: Finding) -> bool:
        return (self.scanner == finding.scanner and self.check == finding.check
                and any(fnmatch.fnmatchcase(finding.location, pattern) for pattern in self.where)
                and (self.actions is None or finding.actions <= self.actions))


@dataclass
class Allowlist:
    entries: Sequence[Entry]
    used: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path = ALLOWLIST) -> Allowlist:
        import yaml

        return cls.parse(yaml.safe_load(path.read_text(encoding="utf-8")) or [])

    @classmethod
    def parse(cls, data: Iterable[dict[str, Any]]) -> Allowlist:
        entries = []
        for number, item in enumerate(data, start=1):
            unknown = set(item) - {"scanner", "check", "where", "why", "actions"}
            if unknown or not all(item.get(key) for key in ("scanner", "check", "where", "why")):
                raise ValueError(f"allowlist entry {number}: needs scanner, check, where and why (got {sorted(item)})")
            where = item["where"]
            actions = item.get("actions")
            entries.append(Entry(item["scanner"], item["check"], tuple([where] if isinstance(where, str) else where),
                                 " ".join(item["why"].split()),
                                 None if actions is None else frozenset(a.lower() for a in actions)))
        return cls(entries)

    def unaccepted(self, findings: Iterable[Finding]) -> list[Finding]:
        """The findings no entry covers (marking the entries that did cover one as used)."""
        left = []
        for finding in findings:
            covering = [number for number, entry in enumerate(self.entries) if entry.covers(finding)]
            self.used.update(covering)
            if not covering:
                left.append(finding)
        return left

    def unused(self) -> list[Entry]:
        return [entry for number, entry in enumerate(self.entries) if number not in self.used]
