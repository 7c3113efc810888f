"""The undeclared-permissions check fails a run whatever the run's shape: one process, or xdist workers whose
records the controller merges. Each case runs a small pytest session in a subprocess (pytester) on moto, in which
a remediator's real assess calls sqs:GetQueueAttributes that its class does not declare (and, for contrast, the
declared remediator's, which is not reported)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INNER = '''
import boto3
from moto import mock_aws

from functions.engine.sessions import AssumedSessions
from functions.remediators.sqs import QueuePolicyNotPublic
from tests.factories import make_finding


class Leaky(QueuePolicyNotPublic):
    """The real SQS.3 assess, with GetQueueAttributes left out of the declaration."""

    read_permissions = tuple(a for a in QueuePolicyNotPublic.read_permissions if a != "sqs:GetQueueAttributes")


def assess(remediator):
    with mock_aws():
        url = boto3.client("sqs").create_queue(QueueName="q")["QueueUrl"]
        target = AssumedSessions().target("123456789012", "us-east-1")
        return remediator.assess(target, make_finding("SQS.3", "AwsSqsQueue", url, account_id="123456789012"))


def test_leaky_assess():
    assert assess(Leaky()).compliant


def test_declared_assess():
    assert assess(QueuePolicyNotPublic()).compliant
'''


@pytest.fixture
def run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_inner=INNER)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "tests.permission_recorder", "-p", "no:cacheprovider", *args)

    return run


@pytest.mark.parametrize("shape", [("-p", "no:xdist"), ("-n", "2")], ids=["one process", "two xdist workers"])
def test_an_undeclared_call_fails_the_run(run_inner, shape: tuple[str, ...]) -> None:
    result = run_inner(*shape)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*Leaky.assess: sqs:GetQueueAttributes",
                                 "FAILED tests/permission_recorder.py::every_called_action_is_declared_for_its_stage*"])
    # the trailing * because the summary line adds " - <message>" when the terminal is wide enough
    assert "QueuePolicyNotPublic" not in result.stdout.str()  # the declared one, also run, is not reported

