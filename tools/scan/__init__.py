"""IaC scanners over the templates as CloudFormation would deploy them: `python -m tools.scan` (in `make lint`).

- checkov (CloudFormation framework) on the committed admin, forwarding and StackSet templates and on renderings
  with their conditions resolved (tools/templates/resolve.py: checkov skips whatever sits inside Fn::If), run
  as one subprocess on the second core;
- parliament, in-process, on every IAM policy (identity, trust and resource policies) of every rendering: the
  target template's defaults, all-enforce and all-off, each rule alone (~120, in memory), the admin stack's
  defaults and everything-on, the StackSet and the forwarding stack.

Zero findings, except those an entry of tools/scan/allowlist.yaml accepts (scanner, check, where, the actions,
and why). Modules: policies (the documents of a rendering, made concrete), iam_lint (parliament), checkov_run,
findings (Finding, the allowlist).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.scan.checkov_run import CheckovRun
from tools.scan.findings import Allowlist, Finding
from tools.scan.iam_lint import IamLinter
from tools.templates.cfn import Json

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_FOR_CHECKOV = ("admin.yaml", "event-forwarding.yaml", "organization-stackset.yaml")
RENDERED_FOR_CHECKOV = ("target-defaults.yaml", "target-all-enforce.yaml", "admin-everything.yaml")


@dataclass
class ScanResult:
    findings: list[Finding]
    unaccepted: list[Finding]
    allowlist: Allowlist
    renderings: int


def all_renderings() -> Iterator[tuple[str, Json]]:
    """Every rendering the IAM linter reads, built in memory."""
    from tools.templates import forwarding
    from tools.templates.resolve import admin_renderings, resolve, rule_alone_renderings, target_renderings
    from tools.templates.stackset import stackset_template

    yield from target_renderings().items()
    yield from admin_renderings().items()
    yield "organization-stackset.yaml", resolve(stackset_template())
    yield "event-forwarding.yaml", resolve(forwarding.forwarding_template())
    yield from rule_alone_renderings()


def checkov_files(rendered: Path, cloudformation: Path = ROOT / "cloudformation") -> list[Path]:
    files = [cloudformation / name for name in COMMITTED_FOR_CHECKOV] + [rendered / n for n in RENDERED_FOR_CHECKOV]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"missing {', '.join(missing)}: run python -m tools.templates.resolve {rendered}")
    return files


def scan(renderings: Iterable[tuple[str, Json]], files: Sequence[Path], allowlist: Allowlist) -> ScanResult:
    """checkov on `files` (in the background) and parliament on `renderings`; what the allowlist leaves."""
    checkov = CheckovRun(files).start() if files else None
    linter = IamLinter()
    findings: list[Finding] = []
    count = 0
    for name, template in renderings:
        findings += linter.lint(name, template)
        count += 1
    if checkov is not None:
        findings += checkov.findings()
    return ScanResult(findings, allowlist.unaccepted(findings), allowlist, count)
