"""Secrets hygiene end to end: a recognizable Netskope token goes through a whole `run` at DEBUG log level
(ours, botocore's and urllib3's) and must appear in no log record, output, report, ledger row or URL; and the
secret is read through the cache, not once per call."""

from __future__ import annotations

import io
import json
import logging
import sqlite3

import boto3
import pytest

from connectors import netskope
from demo.fake_netskope import FakeNetskope
from functions.cli import main as cli

TOKEN = "NSKTOKEN-5f0c-hygiene-canary-9d1e"
ACCOUNT = "123456789012"


@pytest.fixture
def tenant(moto_aws, monkeypatch):
    """A Netskope tenant with one violation on a real (moto) bucket, its token in Secrets Manager."""
    boto3.client("s3").create_bucket(Bucket="hygiene-bucket")
    secret = boto3.client("secretsmanager").create_secret(
        Name="netskope/hygiene", SecretString=json.dumps({"token": TOKEN})
    )["ARN"]
    violation = {
        "account_id": ACCOUNT, "cloud_provider": "aws", "region_name": "US East(N. Virginia)",
        "resource_id": "hygiene-bucket", "resource_name": "hygiene-bucket", "status": "Failed", "muted": "No",
        "rule_name": "Ensure S3 Bucket is not publicly accessible.", "severity": "High",
    }
    monkeypatch.setattr(netskope, "_SECRET_CACHES", {})  # a cold start: nothing cached yet
    with FakeNetskope([violation] * 3, token=TOKEN) as fake:
        yield fake, secret


@pytest.mark.parametrize("auth", ["v1-body", "header"])
def test_the_token_is_nowhere_but_the_request_body_or_its_header(auth, tenant, tmp_path, caplog, capsys,
                                                                 monkeypatch):
    """NETSKOPE_AUTH=v1-body (default) puts the token in the `token` form field, =header in `Netskope-Api-Token`;
    in neither style may it reach a URL, a log, the output, the report or the ledger."""
    fake, secret = tenant
    if auth == "header":
        monkeypatch.setenv("NETSKOPE_AUTH", "header")  # the variable, as the Lambda reads it
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "urllib3", "cspm_remediate", "connectors", "functions"):
        caplog.set_level(logging.DEBUG, logger=name)
    ledger = tmp_path / "ledger.sqlite"
    out = io.StringIO()
    code = cli.main(["-vv", "run", "--source", "netskope", "--netskope-url", fake.url,
                     "--netskope-token-secret", secret, "--enforce", "--ledger", str(ledger)], out=out)
    assert code == 0  # FakeNetskope answers 400 to a token in the query string: a clean exit means clean URLs
    results = json.loads(out.getvalue())
    assert [r["outcome"] for r in results] == ["remediated", "skipped", "skipped"]  # 2 duplicates of the first
    assert any(r.name.startswith("urllib3") for r in caplog.records), "urllib3 debug logging must be on"
    assert any(r.name.startswith("botocore") for r in caplog.records), "botocore debug logging must be on"

    captured = capsys.readouterr()
    rows = "\n".join(str(row) for table in ("claims", "results")
                     for row in sqlite3.connect(ledger).execute(f"SELECT * FROM {table}"))  # noqa: S608
    places = {
        "log records": caplog.text + "\n".join(str(r.args) for r in caplog.records),
        "stdout (results)": out.getvalue(),
        "stderr (report)": captured.err + captured.out,
        "ledger rows": rows,
        "request URLs": "\n".join(json.dumps(r) for r in fake.requests),
    }
    assert rows and fake.requests  # each place really was looked at
    assert set(fake.auth_seen) == {"header" if auth == "header" else "body"}
    leaked = [place for place, text in places.items() if TOKEN in text]
    assert not leaked, f"token found in: {leaked}"


def test_the_secret_is_read_once_per_refresh_interval_not_per_call(tenant):
    _, secret = tenant
    calls: list[str] = []
    client = boto3.client("secretsmanager")
    client.meta.events.register("before-call.secrets-manager.GetSecretValue",
                                lambda **kwargs: calls.append("GetSecretValue"))
    provider = netskope.secret_token_provider(secret, client=client)
    assert all(provider() == TOKEN for _ in range(50))
    assert calls == ["GetSecretValue"]  # the default refresh interval is an hour
