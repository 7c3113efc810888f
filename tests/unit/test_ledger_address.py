"""Ledger addresses: a SQLite path or dynamodb://TABLE, the same for every command; a wrong address is one clear
error and never a new empty file."""

from __future__ import annotations

import sqlite3

import boto3
import pytest

from functions.engine.ledger import (
    DynamoDbLedger,
    LedgerError,
    SqliteLedger,
    create_table,
    ledger_address,
    open_ledger,
)


def test_a_missing_file_is_refused_for_reading_and_not_created(tmp_path):
    path = tmp_path / "cspm-ledger"
    with pytest.raises(LedgerError, match=r"no ledger there .*dynamodb://"):
        open_ledger(str(path))
    assert not path.exists()


def test_a_missing_file_starts_a_new_ledger_when_writing(tmp_path):
    path = tmp_path / "runs.sqlite"
    open_ledger(str(path), create=True).close()
    ledger = open_ledger(str(path))  # now a ledger: readable
    assert isinstance(ledger, SqliteLedger)
    ledger.close()


@pytest.mark.parametrize("create", [False, True])
def test_a_file_that_is_not_a_ledger_is_refused_and_left_alone(tmp_path, create):
    text = tmp_path / "findings.json"
    text.write_text("[]")
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = other.read_bytes()
    for path in (text, other):
        with pytest.raises(LedgerError, match="not a CSPM ledger"):
            open_ledger(str(path), create=create)
    assert text.read_text() == "[]" and other.read_bytes() == before
    with pytest.raises(LedgerError, match="directory"):
        open_ledger(str(tmp_path), create=create)


def test_dynamodb_addresses(moto_aws):
    client = boto3.client("dynamodb", region_name="us-east-1")
    with pytest.raises(LedgerError, match="no DynamoDB table cspm-ledger"):
        open_ledger("dynamodb://cspm-ledger", client=client)
    create_table(client, "cspm-ledger")
    client.create_table(TableName="other", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    ledger = open_ledger("dynamodb://cspm-ledger", client=client)
    assert isinstance(ledger, DynamoDbLedger) and ledger.table_name == "cspm-ledger"
    with pytest.raises(LedgerError, match="not a CSPM ledger"):
        open_ledger("dynamodb://other", client=client)
    with pytest.raises(LedgerError, match="name the table"):
        open_ledger("dynamodb://", client=client)


def test_address_precedence():
    assert ledger_address(None, {}) is None
    assert ledger_address(None, {"LEDGER_TABLE": "cspm-ledger"}) == "dynamodb://cspm-ledger"
    assert ledger_address(None, {"LEDGER_TABLE": "t", "CSPM_LEDGER_PATH": "runs.db"}) == "runs.db"
    assert ledger_address("dynamodb://x", {"CSPM_LEDGER_PATH": "runs.db"}) == "dynamodb://x"
