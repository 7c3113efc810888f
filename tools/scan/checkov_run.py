"""checkov (CloudFormation framework) over template files, as one subprocess whose JSON report becomes Findings.

Started with `start()` so it runs on the second core while the IAM linter works in-process. Offline by
construction: --skip-download and BC_SKIP_MAPPING keep it from fetching guidelines or policies, and the
version check is off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.scan.findings import Finding

CHECKOV = Path(sys.executable).with_name("checkov")
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_SKIP_VERSION_CHECK": "TRUE", "SKIP_VERSION_CHECK": "TRUE",
               "LOG_LEVEL": "ERROR"}


class CheckovRun:
    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> CheckovRun:
        command = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--quiet", "--compact",
                   "--output", "json", *(arg for path in self.files for arg in ("--file", str(path)))]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,  # noqa: S603
                                         env={**os.environ, **OFFLINE_ENV})
        return self

    def findings(self) -> list[Finding]:
        if self._process is None:
            self.start()
        assert self._process is not None
        out, err = self._process.communicate()
        # checkov exits 1 when a check fails: that is a result; no JSON at all is a crash.
        try:
            report = json.loads(out)
        except json.JSONDecodeError as error:
            raise RuntimeError(f"checkov produced no report (exit {self._process.returncode}): "
                               f"{err.strip()[-500:]}") from error
        return parse_report(report)


def parse_report(report: object) -> list[Finding]:
    """checkov's JSON (one object per framework, or a list; {"passed": 0, ...} summary-only when nothing was
    scanned) → Findings, one per failed check and resource; parsing errors are findings too."""
    reports = report if isinstance(report, list) else [report]
    findings = []
    for item in reports:
        if not isinstance(item, dict) or "results" not in item:
            continue
        for failed in item["results"].get("failed_checks", []):
            rendering = Path(failed["file_path"]).name
            resource = str(failed["resource"]).rsplit(".", 1)[-1]
            findings.append(Finding("checkov", failed["check_id"], rendering, resource, detail=failed["check_name"]))
        for path in item["results"].get("parsing_errors", []):
            findings.append(Finding("checkov", "PARSING_ERROR", Path(path).name, "-"))
    return findings
