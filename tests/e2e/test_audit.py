"""history and show on the DynamoDB ledger the Lambda handlers write, with read-only calls only; the same
commands on a SQLite ledger; wrong ledger addresses are one-line errors that create nothing."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from functions.aws_lambda import handlers
from functions.cli import audit
from functions.cli import main as cli
from tests.e2e.test_engine import world_ssh_open
from tests.e2e.test_handlers import MEMBERS, deployed, receive_all  # noqa: F401 - the fixture
from tests.factories import make_finding

READ_ONLY = {"DescribeTable", "Scan", "Query", "GetItem"}


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def dynamodb_calls():
    """Every DynamoDB operation the CLI makes through boto3's default session (the one it uses)."""
    boto3.setup_default_session()
    seen: list[str] = []
    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", lambda model, **_: seen.append(model.name))
    yield seen
    boto3.DEFAULT_SESSION = None


def test_history_and_show_read_the_deployed_ledger(deployed, dynamodb_calls, capsys):  # noqa: F811
    report = handlers.pull({"source": "securityhub"})
    records = receive_all(deployed["sqs"], deployed["queue"])
    assert handlers.remediate({"Records": [r for r in records if '"finding"' in r["body"]]}) == {
        "batchItemFailures": []}
    run_id = report["run_id"]

    # LEDGER_TABLE (set by the stack, here by the fixture) is the default ledger of the CLI.
    code, text = run_cli("history")
    assert code == 0
    line = next(line for line in text.splitlines() if line.startswith(run_id))
    assert "securityhub" in line and "apply" in line and "2 remediated" in line

    code, text = run_cli("history", "--json", "--ledger", "dynamodb://cspm-ledger")
    (run,) = [r for r in json.loads(text) if r["run_id"] == run_id]
    assert run["counts"] == {"remediated": 2} and run["stage"] == "apply" and run["sources"] == ["securityhub"]

    code, text = run_cli("show", "--run", run_id)
    assert code == 0 and f"Run {run_id} (apply, securityhub)" in text
    rows = [line for line in text.splitlines() if line.startswith("remediated")]
    assert len(rows) == 2 and all("EC2.53" in r for r in rows)
    assert {a for a in MEMBERS if any(a in r for r in rows)} == set(MEMBERS)
    assert text.count("pre-state: {") == 2 and "change:" in text

    code, text = run_cli("show", "--run", run_id, "--json")
    shown = json.loads(text)
    assert sorted(r["account_id"] for r in shown) == MEMBERS
    assert all(r["pre_state"]["IpPermissions"] and r["outcome"] == "remediated" for r in shown)

    assert dynamodb_calls and set(dynamodb_calls) <= READ_ONLY  # read-only credentials suffice

    code, _ = run_cli("show", "--run", "20990101T000000Z-00000000")
    assert code == 2 and "is not in dynamodb://cspm-ledger" in capsys.readouterr().err


def test_rollback_of_a_deployed_run_with_the_rollback_role(deployed, capsys, monkeypatch):  # noqa: F811
    """The Lambdas remediate two member accounts; the operator rolls the run back from the DynamoDB ledger with the
    rollback role (--role-name); the rollback is a run of its own, and the next scheduled pull acts again."""
    report = handlers.pull({"source": "securityhub"})
    records = [r for r in receive_all(deployed["sqs"], deployed["queue"]) if '"finding"' in r["body"]]
    handlers.remediate({"Records": records})
    groups = deployed["groups"]
    assert not any(world_ssh_open(a, g) for a, g in groups.items())
    roles: list[str] = []
    real_init = audit.AssumedSessions.__init__

    def recording_init(self, *args, **kwargs):
        roles.append(kwargs.get("role_name"))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(audit.AssumedSessions, "__init__", recording_init)

    # The rollback role by its variable (REMEDIATION_ROLE_NAME, the forward role's, is also set), then by the flag.
    monkeypatch.setenv("REMEDIATION_ROLLBACK_ROLE_NAME", "CSPMRemediationRollbackRole")
    code, text = run_cli("rollback", "--run", report["run_id"])
    monkeypatch.delenv("REMEDIATION_ROLLBACK_ROLE_NAME")
    assert code == 0 and [r["outcome"] for r in json.loads(text)] == ["planned", "planned"]
    assert not any(world_ssh_open(a, g) for a, g in groups.items())  # dry-run
    code, text = run_cli("rollback", "--run", report["run_id"], "--role-name", "CSPMRemediationRollbackRole",
                         "--apply")
    rolled = json.loads(text)
    assert code == 0 and [r["outcome"] for r in rolled] == ["restored", "restored"]
    assert all(world_ssh_open(a, g) for a, g in groups.items())
    # The rollback's sessions use the rollback role, not REMEDIATION_ROLE_NAME's (the test's own reads use
    # OrganizationAccountAccessRole).
    assert roles.count("CSPMRemediationRollbackRole") == 2 and "CSPMRemediationRole" not in roles

    code, text = run_cli("history", "--json")
    (rollback_run,) = [r for r in json.loads(text) if r["run_id"] == rolled[0]["run_id"]]
    assert rollback_run["stage"] == "rollback" and rollback_run["counts"] == {"restored": 2}

    again = handlers.pull({"source": "securityhub"})
    records = [r for r in receive_all(deployed["sqs"], deployed["queue"]) if '"finding"' in r["body"]]
    assert len(records) == 2 and handlers.remediate({"Records": records}) == {"batchItemFailures": []}
    rows = list(deployed["rt"].ledger.results(again["run_id"]))
    assert sorted(r["outcome"] for r in rows) == ["remediated", "remediated"]
    assert not any(world_ssh_open(a, g) for a, g in groups.items())


def test_history_and_show_on_a_sqlite_ledger(moto_aws, tmp_path):
    ec2 = boto3.client("ec2")
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("EC2.7", "AwsAccount", "123456789012").to_dict()]))
    ledger = str(tmp_path / "runs.sqlite")
    code, _ = run_cli("plan", str(findings), "--ledger", ledger)
    code, _ = run_cli("apply", str(findings), "--enforce", "--ledger", ledger)
    assert code == 0 and ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]

    code, text = run_cli("history", "--json", "--ledger", ledger)
    runs = json.loads(text)
    assert [(r["stage"], r["counts"]) for r in runs] == [("apply", {"remediated": 1}), ("plan", {"planned": 1})]
    code, text = run_cli("show", "--run", runs[0]["run_id"], "--ledger", ledger)
    assert code == 0 and "remediated  EC2.7" in text and '"EbsEncryptionByDefault": false' in text
    assert 'set:       {"EbsEncryptionByDefault": true}' in text  # the post-state rollback compares with


@pytest.mark.parametrize("command", [["history"], ["show", "--run", "r"], ["rollback", "--run", "r"]])
def test_a_wrong_ledger_address_is_one_line_and_creates_nothing(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    code, _ = run_cli(*command, "--ledger", "cspm-ledger")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "use dynamodb://cspm-ledger" in err[0]
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "notes.txt").write_text("hello")
    code, _ = run_cli(*command, "--ledger", "notes.txt")
    assert code == 2 and "not a CSPM ledger" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "hello"
