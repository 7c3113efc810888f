"""The "Remediate now" custom action in every Region: the native type where CloudFormation has it, elsewhere the
inline custom resource, whose handler is run here against a Stubber'd Security Hub (moto has no action-target
APIs) and answers a local HTTP server standing in for CloudFormation's response URL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tools.templates import action_target, admin_template
from tools.templates import action_target_handler as handler_module

ADMIN = admin_template()
RESOURCES = ADMIN["Resources"]
ARN = "arn:aws:securityhub:eu-west-1:123456789012:action/custom/RemediateNow"
PROPERTIES = {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:f", **action_target.ACTION}
CONTEXT = SimpleNamespace(log_stream_name="2026/12/02/[$LATEST]abcdef")


class Responses:
    """What was PUT to the response URL."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []


@pytest.fixture
def response_url() -> Iterator[tuple[str, Responses]]:
    responses = Responses()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            responses.bodies.append(json.loads(self.rfile.read(length)))
            responses.headers.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/presigned?X-Amz-Signature=abc", responses
    finally:
        server.shutdown()
        server.server_close()


def event(kind: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"RequestType": kind, "ResponseURL": url, "RequestId": "req-1",
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1",
            "LogicalResourceId": "RemediateNowActionCustom", "ResourceType": "Custom::SecurityHubActionTarget",
            "ResourceProperties": PROPERTIES, **extra}


@pytest.fixture
def hub() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("securityhub", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def run(kind: str, url: str, client: Any, **extra: Any) -> None:
    handler_module.handler(event(kind, url, **extra), CONTEXT, hub=client)


# -- the handler -----------------------------------------------------------------------------------------------------
def test_create_makes_the_action_target_and_answers_its_arn(response_url, hub):
    url, responses = response_url
    client, stubber = hub
    stubber.add_response("create_action_target", {"ActionTargetArn": ARN},
                         {"Name": "Remediate now", "Id": "RemediateNow",
                          "Description": "Send the selected findings to CSPM remediation"})
    run("Create", url, client)
    (body,) = responses.bodies
    assert body == {"Status": "SUCCESS", "Reason": "SUCCESS", "PhysicalResourceId": ARN,
                    "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1", "RequestId": "req-1",
                    "LogicalResourceId": "RemediateNowActionCustom", "Data": {"ActionTargetArn": ARN}}
    assert responses.headers[0]["Content-Type"] == ""  # the pre-signed URL is signed without one


def test_update_renames_in_place_or_makes_a_new_one_for_a_new_id(response_url, hub):
    url, responses = response_url
    client, stubber = hub
    stubber.add_response("update_action_target", {}, {"ActionTargetArn": ARN, "Name": "Remediate now",
                                                      "Description": PROPERTIES["Description"]})
    run("Update", url, client, PhysicalResourceId=ARN, OldResourceProperties={**PROPERTIES, "Name": "Old name"})
    new_arn = ARN.replace("RemediateNow", "Other")
    stubber.add_response("create_action_target", {"ActionTargetArn": new_arn},
                         {"Name": "Remediate now", "Id": "RemediateNow", "Description": PROPERTIES["Description"]})
    run("Update", url, client, PhysicalResourceId=ARN, OldResourceProperties={**PROPERTIES, "Id": "Old"})
    assert [(b["Status"], b["PhysicalResourceId"]) for b in responses.bodies] == [("SUCCESS", ARN),
                                                                                  ("SUCCESS", new_arn)]


def test_delete_removes_it_and_succeeds_when_it_is_gone_or_never_made(response_url, hub):
    url, responses = response_url
    client, stubber = hub
    stubber.add_response("delete_action_target", {"ActionTargetArn": ARN}, {"ActionTargetArn": ARN})
    run("Delete", url, client, PhysicalResourceId=ARN)
    stubber.add_client_error("delete_action_target", "ResourceNotFoundException", expected_params={
        "ActionTargetArn": ARN})
    run("Delete", url, client, PhysicalResourceId=ARN)
    run("Delete", url, client, PhysicalResourceId=CONTEXT.log_stream_name)  # after a failed Create: no call
    assert [b["Status"] for b in responses.bodies] == ["SUCCESS"] * 3


def test_a_failure_is_answered_with_its_reason_so_the_stack_does_not_wait(response_url, hub):
    url, responses = response_url
    client, stubber = hub
    stubber.add_client_error("create_action_target", "ResourceConflictException", "the action target exists")
    run("Create", url, client)
    stubber.add_client_error("delete_action_target", "AccessDeniedException", "not allowed")
    run("Delete", url, client, PhysicalResourceId=ARN)
    failed_create, failed_delete = responses.bodies
    assert failed_create["Status"] == "FAILED" and "ResourceConflictException" in failed_create["Reason"]
    assert failed_create["PhysicalResourceId"] == CONTEXT.log_stream_name  # CloudFormation requires one
    assert failed_delete["Status"] == "FAILED" and failed_delete["PhysicalResourceId"] == ARN


# -- the template ----------------------------------------------------------------------------------------------------
def region_has_native_type(region: str) -> bool:
    """ActionTargetTypeInRegion evaluated as CloudFormation would in `region`."""
    return any(operand["Fn::Equals"] == [{"Ref": "AWS::Region"}, region]
               for operand in ADMIN["Conditions"]["ActionTargetTypeInRegion"]["Fn::Or"])


def cfn_lint_regions() -> set[str]:
    """The Regions whose CloudFormation schemas in cfn-lint's data hold AWS::SecurityHub::ActionTarget (isolated
    partitions left out)."""
    import cfnlint

    providers = Path(cfnlint.__file__).parent / "data" / "schemas" / "providers"
    return {path.stem for path in providers.glob("*-*-*.json") if "-iso" not in path.stem
            and "AWS::SecurityHub::ActionTarget" in json.loads(path.read_text())}


def test_native_regions_are_those_where_cloudformation_has_the_type():
    assert set(action_target.NATIVE_REGIONS) == cfn_lint_regions()
    assert region_has_native_type("us-east-1") and not region_has_native_type("eu-west-1")


def test_each_region_gets_exactly_one_of_the_two_under_uses_security_hub():
    conditions = ADMIN["Conditions"]
    assert RESOURCES["RemediateNowAction"]["Condition"] == "NativeActionTarget"
    assert RESOURCES["RemediateNowActionCustom"]["Condition"] == "CustomActionTarget"
    assert conditions["NativeActionTarget"] == {"Fn::And": [{"Condition": "UsesSecurityHub"},
                                                            {"Condition": "ActionTargetTypeInRegion"}]}
    assert conditions["CustomActionTarget"] == {"Fn::And": [{"Condition": "UsesSecurityHub"}, {
        "Fn::Not": [{"Condition": "ActionTargetTypeInRegion"}]}]}
    either = {"Fn::If": ["NativeActionTarget", {"Ref": "RemediateNowAction"}, {"Ref": "RemediateNowActionCustom"}]}
    assert RESOURCES["CustomActionRule"]["Properties"]["EventPattern"]["resources"] == [either]
    assert ADMIN["Outputs"]["RemediateNowActionArn"]["Value"] == either
    native = RESOURCES["RemediateNowAction"]["Properties"]
    custom = RESOURCES["RemediateNowActionCustom"]["Properties"]
    assert custom == {"ServiceToken": {"Fn::GetAtt": ["ActionTargetFunction", "Arn"]}, **native}


def test_the_custom_resource_runs_the_handler_with_only_the_action_target_calls():
    function = RESOURCES["ActionTargetFunction"]
    assert function["Condition"] == "CustomActionTarget"
    assert function["Properties"]["Code"]["ZipFile"] == Path(handler_module.__file__).read_text()
    assert function["Properties"]["Handler"] == "index.handler"
    assert len(function["Properties"]["Code"]["ZipFile"]) <= 4096  # CloudFormation's inline-code limit
    statements = RESOURCES["ActionTargetRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    manage = next(s for s in statements if s["Sid"] == "ManageActionTarget")
    assert manage["Action"] == ["securityhub:CreateActionTarget", "securityhub:DeleteActionTarget",
                                "securityhub:UpdateActionTarget"]
    assert manage["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:"
                                             "hub/default"}
    assert all(r.get("Condition") == "CustomActionTarget" for name, r in RESOURCES.items()
               if name.startswith("ActionTarget"))
