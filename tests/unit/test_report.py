"""The text report shared by the CLI, the demo and the SNS summary: complete lists (or "… and N more"), one
line per circuit-breaker trip, wrapped reasons, errors in one line; and the CLI's progress bar with logging."""

from __future__ import annotations

import io
import logging

from botocore.exceptions import ClientError

from functions.aws_lambda.writeback import Unwritten, failure_causes
from functions.cli.progress import Progress
from functions.model import Result
from functions.report import first_sentence, render_table, render_text, summarize_error

HTML = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>"""


def result(outcome: str, reason: str, n: int = 0, rule_id: str = "S3.8", **extra) -> Result:
    return Result(finding_id=f"f{n}", source="securityhub", rule_id=rule_id, account_id="111111111111",
                  region="us-east-1", resource_type="AwsS3Bucket", resource_id=f"bucket-{n}", outcome=outcome,
                  reason=reason, **extra)


def test_changed_list_is_complete_or_says_how_many_more():
    done = [result("remediated", "turn on all four Block Public Access settings", n) for n in range(278)]
    text = render_text(done)
    changed = text[text.index("Changed:"):].splitlines()[1:]
    assert len(changed) == 201
    assert changed[-1] == "  … and 78 more (the JSON output has every result)"
    assert len(render_text(done[:200]).split("Changed:")[1].strip().splitlines()) == 200  # no note when complete


def test_circuit_breaker_is_one_line_per_limit_not_one_per_finding():
    reason = "circuit breaker: 25 actions for rule EC2.13 this run; planning only"
    held = [result("planned", reason, n, rule_id="EC2.13", circuit_breaker=True) for n in range(275)]
    text = render_text([*held, result("remediated", "closed port 22", 999, rule_id="EC2.13")])
    assert "circuit breaker tripped for rule EC2.13 after 25 actions; 275 finding(s) planned only" in text
    assert text.count("circuit breaker") == 1


def test_long_guidance_wraps_and_repeated_reasons_are_said_once():
    guidance = ("Sign in as the root user, open Security credentials, and assign a hardware MFA device. " * 12).strip()
    notified = [result("notified", guidance, n, rule_id="IAM.9") for n in range(5)]
    text = render_text(notified)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert text.count("Sign in as the root user") == 12  # once, wrapped, not five times
    flat = " ".join(text.split())
    assert "[IAM.9] 5 findings (111111111111 us-east-1 bucket-0, 111111111111 us-east-1 bucket-1, " in flat
    assert "bucket-2 and 2 more): Sign in as the root user" in flat


def test_an_html_error_body_is_one_line_everywhere():
    error = ClientError({"Error": {"Code": "502", "Message": HTML}, "ResponseMetadata": {"HTTPStatusCode": 502}},
                        "GetFindings")
    assert summarize_error(error) == "502 (HTTP 502): 502 Bad Gateway 502 Bad Gateway nginx"
    assert first_sentence("Access denied. You need s3:GetBucketPolicy.\nMore text") == "Access denied."
    text = render_text([result("failed", f"cannot read current state: 502: {HTML}")])
    failed = [line for line in text.splitlines() if line.lstrip().startswith("failed")]
    assert len(failed) == 1 and "<" not in text


def test_write_back_warning_says_why():
    failed = [Unwritten(f"f{n}", "arn:p", "AccessDeniedException", "User is not authorized to perform "
                        "securityhub:BatchUpdateFindings. Ask your administrator.") for n in range(10)]
    failed.append(Unwritten("g", "arn:p", "InvalidInputException", "Finding not found."))
    assert failure_causes(failed) == (
        "10 AccessDeniedException (User is not authorized to perform securityhub:BatchUpdateFindings.); "
        "1 InvalidInputException (Finding not found.)")


def test_table_wraps_the_flexible_column_to_the_width():
    lines = render_table(["id", "title"], [["a-very-long-identifier", "word " * 40]], width=40, flex=1, key_width=8)
    assert lines[2] == "a-very-long-identifier"  # an id is never cut
    assert max(len(line) for line in lines) <= 40


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_terminal():
    pipe = io.StringIO()
    with Progress(3, stream=pipe) as bar:
        for _ in range(3):
            bar.advance()
    assert pipe.getvalue() == ""


def test_progress_and_log_lines_never_share_a_line(monkeypatch):
    from functions.cli import main as cli_main

    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    cli_main._log_to_stderr(logging.INFO)
    log = logging.getLogger("cspm_remediate.test")
    with Progress(4, stream=terminal, min_interval=0) as bar:
        bar.advance()
        log.warning("something to say")
        bar.advance()
    text = terminal.getvalue()
    # The bar is erased (\r + clear line) before the record and redrawn after it.
    assert "\r\x1b[KWARNING cspm_remediate.test: something to say\n\r[" in text
    logged = [chunk for chunk in text.split("\r") if "something to say" in chunk]
    assert logged == ["\x1b[KWARNING cspm_remediate.test: something to say\n"]
    assert text.endswith("2/4 findings (" + text.rsplit("2/4 findings (", 1)[1])
