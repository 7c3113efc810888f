"""The custom resource behind the "Remediate now" custom action where CloudFormation has no
AWS::SecurityHub::ActionTarget. Inlined into admin.yaml (ZipFile): standard library and boto3 only, and it answers
CloudFormation itself over the pre-signed response URL (no cfnresponse module).

Create makes the action target and returns its ARN as the physical id (so Ref gives the ARN, as the native type's
does); Update renames or re-describes it, or makes a new one when its Id changed (CloudFormation then deletes the old
one); Delete removes it, and succeeds when it is already gone or was never made (a failed Create).
"""

import contextlib
import json
import urllib.request

import boto3


def handler(event, context, hub=None):
    hub = hub or boto3.client("securityhub")
    properties = event.get("ResourceProperties", {})
    physical_id = event.get("PhysicalResourceId")
    status, reason = "SUCCESS", ""
    try:
        kind = event["RequestType"]
        old_id = event.get("OldResourceProperties", {}).get("Id")
        if kind == "Create" or (kind == "Update" and old_id != properties["Id"]):
            physical_id = hub.create_action_target(
                Name=properties["Name"], Description=properties["Description"], Id=properties["Id"])["ActionTargetArn"]
        elif kind == "Update":
            hub.update_action_target(ActionTargetArn=physical_id, Name=properties["Name"],
                                     Description=properties["Description"])
        elif kind == "Delete" and physical_id and physical_id.startswith("arn:"):
            with contextlib.suppress(hub.exceptions.ResourceNotFoundException):  # already gone
                hub.delete_action_target(ActionTargetArn=physical_id)
    except Exception as error:  # every failure must reach CloudFormation, or the stack waits an hour
        status, reason = "FAILED", f"{type(error).__name__}: {error}"[:1000]
        physical_id = physical_id or context.log_stream_name
    respond(event, status, reason, physical_id)


def respond(event, status, reason, physical_id):
    body = json.dumps({
        "Status": status, "Reason": reason or status, "PhysicalResourceId": physical_id,
        "StackId": event["StackId"], "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"ActionTargetArn": physical_id},
    }).encode()
    # CloudFormation's pre-signed https URL (a local http server in the tests).
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",  # noqa: S310
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()
