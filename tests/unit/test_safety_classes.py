"""The written safety classification: every disruptive rule names its class and why, the declarations follow it,
the plan prints a rule's disruption and side effects, and the README's generated rules table carries them."""

from __future__ import annotations

import pytest

from functions.engine.catalog import CATALOG
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.remediators.awslambda import FunctionPolicyNotPublic
from functions.remediators.base import DISRUPTIONS, Rule
from functions.remediators.iam import UnusedCredentials
from tests.factories import make_finding
from tools.docs import README, catalog_markdown


def test_a_disruptive_rule_must_say_which_class_and_why() -> None:
    with pytest.raises(ValueError, match="names its disruption"):
        Rule("X.1", "t", disruptive=True)
    with pytest.raises(ValueError, match="names its disruption"):
        Rule("X.1", "t", disruptive=True, disruption="noise", because="loud")
    with pytest.raises(ValueError, match="only for a disruptive rule"):
        Rule("X.1", "t", because="no reason")


def test_declarations_follow_the_classification() -> None:
    classes = {rule_id: entry.rule.disruption for rule_id, entry in CATALOG.items() if entry.rule.disruptive}
    assert set(classes.values()) <= set(DISRUPTIONS)
    # Account-wide Block Public Access removes live public access from every bucket: access, like the rest.
    assert classes["S3.1"] == "access"
    assert classes["IAM.26"] == "data" and classes["EC2.6"] == "cost" and classes["RDS.2"] == "traffic"
    # Reversible, but not all of it: said, not hidden.
    assert UnusedCredentials.reversible and "console password" in UnusedCredentials.not_restorable
    assert FunctionPolicyNotPublic.reversible and "AddPermission" in FunctionPolicyNotPublic.not_restorable
    # What else changes for people is declared where AWS documents it.
    assert "kms:Decrypt" in CATALOG["CloudTrail.2"].remediator.side_effects
    assert "encrypted" in CATALOG["EC2.7"].remediator.side_effects


def test_the_plan_prints_the_side_effects(moto_aws: None) -> None:
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="reports")
    finding = make_finding("S3.5", "AwsS3Bucket", "reports")

    (result,) = Engine(config_from_dict({}), AssumedSessions(), stage="plan").run([finding])

    assert result.outcome == "planned"
    assert result.reason.endswith("[side effects: clients still using plain HTTP get AccessDenied]")


def test_the_plan_of_a_disruptive_rule_says_why(moto_aws: None) -> None:
    finding = make_finding("S3.1", "AwsAccount", "123456789012")

    (result,) = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply").run([finding])

    assert result.outcome == "planned"  # a global enforce does not reach a disruptive rule
    assert "[disruptive (access): every bucket of the account loses the public access" in result.reason


def test_the_readme_table_has_the_safety_columns() -> None:
    table = catalog_markdown()
    assert "| disruptive | side effects |" in table
    (access,) = [line for line in table.splitlines() if line.startswith("* **access**: ")]
    assert access.startswith("* **access**: remove access that people or workloads rely on — ")
    assert {"EC2.8", "IAM.3", "IAM.22", "S3.1"} <= set(access.split(" — ", 1)[1].split(", "))
    assert "| IAM.22 |" in table and "partly: not a removed console password" in table
    assert table in README.read_text(encoding="utf-8")
