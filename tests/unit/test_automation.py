"""SSM Automation executor. moto does not implement Automation executions: botocore Stubber with the
documented request/response shapes stands in for StartAutomationExecution / GetAutomationExecution."""

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.automation import TERMINAL_STATUSES, client_token, execution_status, start_runbook
from functions.model import Target
from functions.remediators.cloudtrail import TrailLogFileValidation
from tests.factories import make_finding

ACCOUNT = "111111111111"
EXECUTION = "4e1c4bba-0000-4b4e-9d7e-5f0c1d2e3f40"


@pytest.fixture
def ssm():
    client = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(client) as stub:
        yield client, stub


def target_with(client, partition="aws") -> Target:
    return Target(ACCOUNT, "eu-west-1", partition, _client_for=lambda service, region: client)


def execution(status: str, failure: str | None = None) -> dict:
    body = {"AutomationExecutionId": EXECUTION, "DocumentName": "AWS-X", "AutomationExecutionStatus": status}
    if failure:
        body["FailureMessage"] = failure
    return {"AutomationExecution": body}


@pytest.mark.stubber
@pytest.mark.parametrize(
    ("status", "outcome"),
    [("Success", "remediated"), ("Failed", "failed"), ("TimedOut", "failed"), ("Cancelled", "failed"),
     ("InProgress", None), ("Pending", None), ("Waiting", None)],
)
def test_status_maps_terminal_states(ssm, status, outcome):
    client, stub = ssm
    stub.add_response("get_automation_execution", execution(status), {"AutomationExecutionId": EXECUTION})
    result = execution_status(target_with(client), EXECUTION)
    assert (result.status, result.outcome) == (status, outcome)
    assert EXECUTION in result.reason


@pytest.mark.stubber
def test_failure_message_is_in_the_reason(ssm):
    client, stub = ssm
    stub.add_response("get_automation_execution", execution("Failed", "Step fails: AccessDenied"),
                      {"AutomationExecutionId": EXECUTION})
    assert execution_status(target_with(client), EXECUTION).reason.endswith("Failed: Step fails: AccessDenied")


@pytest.mark.stubber
def test_start_passes_runbook_parameters_with_the_partitioned_automation_role(ssm):
    client, stub = ssm
    finding = make_finding("CloudTrail.4", "AwsCloudTrailTrail", "main", account_id=ACCOUNT, region="eu-west-1")
    runbook = TrailLogFileValidation.runbook
    stub.add_response(
        "start_automation_execution",
        {"AutomationExecutionId": EXECUTION},
        {
            "DocumentName": "AWSConfigRemediation-EnableCloudTrailLogFileValidation",
            "Parameters": {"TrailName": ["main"],
                           "AutomationAssumeRole": [f"arn:aws-us-gov:iam::{ACCOUNT}:role/Automation"]},
            "ClientToken": client_token("run-1", finding.finding_id),
            "Tags": [{"Key": "cspm-remediation:rule", "Value": "CloudTrail.4"}],
        },
    )
    assert start_runbook(target_with(client, "aws-us-gov"), runbook, finding, "Automation", "run-1") == EXECUTION


def test_every_terminal_status_is_a_known_outcome():
    assert set(TERMINAL_STATUSES.values()) <= {"remediated", "failed"}


def test_client_token_is_a_stable_uuid_per_run_and_finding():
    assert client_token("run-1", "f") == client_token("run-1", "f")
    assert client_token("run-1", "f") != client_token("run-2", "f")
    assert len(client_token("run-1", "f")) == 36
