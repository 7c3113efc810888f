"""The HTML report of `--report-html`, rendered by a real browser: headless Chromium (Debian's `chromium`, which
.ci/run installs) loads the page from a file, runs its script, and the test reads the rendered DOM: the totals,
the matrix of rules by accounts, the filter (from the address), escaping, and that nothing outside the file is
loaded. Skipped when Chromium is missing, unless CSPM_REQUIRE_CHROMIUM is set (as in .ci/run)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from functions.cli import main as cli
from tests.factories import make_finding

HOSTILE = '<img src=x onerror="document.title=1">'
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium(tmp_path: Path, *args: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CSPM_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per run
    done = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],  # noqa: S603 - fixed flags
                          capture_output=True, text=True, timeout=180, check=True)
    return done.stdout


@pytest.fixture
def report(moto_aws, tmp_path):
    """apply --report-html on a mix: 3 buckets remediated, 1 already compliant, 1 failed (a hostile name), 1 of
    another account skipped (no role)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    for name in ("open-a", "open-b", "open-c", "closed"):
        s3.create_bucket(Bucket=name)
    s3.put_public_access_block(Bucket="closed", PublicAccessBlockConfiguration={
        k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")})
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps(
        [make_finding("S3.8", "AwsS3Bucket", n, region="us-east-1").to_dict()
         for n in ("open-a", "open-b", "open-c", "closed")]
        + [make_finding("S3.8", "AwsS3Bucket", HOSTILE, region="us-east-1").to_dict(),
           make_finding("S3.8", "AwsS3Bucket", "open-x", region="us-east-1", account_id="210987654321").to_dict()]
    ))
    page = tmp_path / "report.html"
    code = cli.main(["apply", str(findings), "--enforce", "--report-html", str(page)], out=io.StringIO())
    assert code == 1  # the hostile one failed; the others went on
    return page


def test_the_report_is_self_contained_and_escaped(report):
    text = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing from elsewhere
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert HOSTILE not in text and html_escaped(HOSTILE) in text


def test_chromium_renders_the_totals_matrix_and_filter(report, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert 'data-ready="true"' in dom  # the page's script ran in the browser
    totals = dict((o, int(n)) for n, o in re.findall(
        r'<button[^>]*class="total"[^>]*><b>(\d+)</b><span>(\w+)</span>', dom))
    assert totals == {"remediated": 3, "noop": 1, "skipped": 1, "failed": 1}
    assert "6 of 6 findings shown" in dom
    matrix = dom[dom.index('class="matrix"'):dom.index("</table>", dom.index('class="matrix"'))]
    assert "<th>123456789012</th>" in matrix and "<th>210987654321</th>" in matrix and "3 remediated" in matrix
    assert "<img" not in dom  # the hostile resource id is text, not an element

    # Filtered from the address, as a matrix link does: only the failed finding is shown.
    dom = chromium(tmp_path, "--dump-dom", report.as_uri() + "#outcome=failed")
    assert "1 of 6 findings shown" in dom
    rows = re.findall(r"<tr ([^>]*data-outcome=[^>]*)>", dom)
    visible = [r for r in rows if "hidden" not in r]
    assert len(rows) == 6 and len(visible) == 1 and 'data-outcome="failed"' in visible[0]

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars", report.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def html_escaped(text: str) -> str:
    import html
    return html.escape(text)


def test_show_rollback_and_plan_write_the_report(moto_aws, tmp_path):
    """The same page from the ledger (show), from a rollback, and from a plan (what a change board approves)."""
    boto3.client("iam").update_account_password_policy(MinimumPasswordLength=8)
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("IAM.15", "AwsAccount", "123456789012").to_dict()]))
    ledger = str(tmp_path / "ledger.sqlite")

    def page(*argv: str) -> str:
        out = io.StringIO()
        assert cli.main([*argv, "--report-html", str(tmp_path / "page.html")], out=out) == 0
        return (tmp_path / "page.html").read_text()

    plan = page("plan", str(findings), "--out", str(tmp_path / "plan.json"))
    assert '<b>1</b><span>planned</span>' in plan and "MinimumPasswordLength to 14 (now 8)" in plan
    digest = json.loads((tmp_path / "plan.json").read_text())["digest"]
    assert f"plan file {tmp_path / 'plan.json'}, {digest}" in plan  # the page approved names the file applied
    out = io.StringIO()
    cli.main(["apply", str(findings), "--enforce", "--ledger", ledger], out=out)
    run_id = json.loads(out.getvalue())[0]["run_id"]
    shown = page("show", "--run", run_id, "--ledger", ledger)
    assert f"Run {run_id} (apply)" in shown and '<b>1</b><span>remediated</span>' in shown
    assert "&quot;MinimumPasswordLength&quot;: 14" in shown  # what the run set
    rolled = page("rollback", "--run", run_id, "--ledger", ledger, "--apply")
    assert '<b>1</b><span>restored</span>' in rolled and "MinimumPasswordLength: 14 -&gt; 8" in rolled


def test_an_unwritable_report_path_is_one_line_before_any_work(moto_aws, tmp_path, capsys):
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("EC2.7", "AwsAccount", "123456789012").to_dict()]))
    code = cli.main(["apply", str(findings), "--enforce", "--report-html", str(tmp_path / "no" / "r.html")],
                    out=io.StringIO())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--report-html" in err[0] and "does not exist" in err[0]
    assert not boto3.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
