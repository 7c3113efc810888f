"""`cspm-remediate normalize --source cloudtrail FILE`: recorded CloudTrail events → findings on stdout; ignored
events are logged with their reason on stderr; a file of another shape is rejected and the others go on."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import FINDING_FIELDS, cli_json

EVENTS = Path(__file__).parent.parent / "fixtures" / "cloudtrail_events.json"


def test_normalize_cloudtrail_prints_findings_and_logs_what_it_ignored(capsys) -> None:
    code, findings = cli_json("normalize", "--source", "cloudtrail", EVENTS)
    err = capsys.readouterr().err
    assert code == 0, err
    assert all(set(f) == FINDING_FIELDS and f["source"] == "cloudtrail" for f in findings)
    assert {(f["rule_id"], f["resource_id"]) for f in findings} == {
        *((r, "sg-0a1b2c3d4e5f60718") for r in ("EC2.13", "EC2.14", "EC2.19", "EC2.53", "EC2.54")),
        ("S3.5", "app-data-123456789012"),
    }
    assert "ModifyCluster c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f ignored: made by our own role CSPMRemediationRole" in err
    assert "StopLogging f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f ignored: the call failed (AccessDenied)" in err


def test_normalize_cloudtrail_rejects_another_shape_and_goes_on(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "asff.json"
    bad.write_text(json.dumps({"detail-type": "Security Hub Findings - Imported", "detail": {"findings": []}}))
    code, findings = cli_json("normalize", "--source", "cloudtrail", bad, EVENTS)
    err = capsys.readouterr().err
    assert code == 1
    assert f"{bad}: rejected: event #0: not a CloudTrail API call event" in err
    assert len(findings) == 6
