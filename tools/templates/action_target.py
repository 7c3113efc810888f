"""The "Remediate now" Security Hub custom action, in every Region.

CloudFormation's AWS::SecurityHub::ActionTarget exists in a few Regions only: cfn-lint's Region data (its copy of
each Region's CloudFormation resource schemas) lists it in NATIVE_REGIONS, not in eu-west-1, ap-northeast-1, ... —
while Security Hub's CreateActionTarget API works wherever Security Hub does. So the stack uses the native type
where it exists and elsewhere a small custom resource (action_target_handler.py, inlined), as AWS's Automated
Security Response does. Both give the action target's ARN as their Ref. tests/unit/test_action_target.py fails when
cfn-lint's data gains or loses a Region, so NATIVE_REGIONS follows it.
"""

from __future__ import annotations

from pathlib import Path

from tools.templates.cfn import Json, equals, get_att, if_, not_, ref, sub
from tools.templates.defaults import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME
from tools.templates.iam import inline_policy, service_trust, statement
from tools.templates.lambdas import UNDELIVERED, use_key

NATIVE_REGIONS = ("ap-south-1", "eu-central-1", "eusc-de-east-1", "us-east-1", "us-west-2")
HANDLER_SOURCE = Path(__file__).with_name("action_target_handler.py")
ACTION = {"Name": "Remediate now", "Id": "RemediateNow",
          "Description": "Send the selected findings to CSPM remediation"}
HUB = sub("arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:hub/default")


def action_target_conditions() -> Json:
    return {
        "ActionTargetTypeInRegion": {"Fn::Or": [equals(ref("AWS::Region"), region) for region in NATIVE_REGIONS]},
        "NativeActionTarget": {"Fn::And": [{"Condition": "UsesSecurityHub"},
                                           {"Condition": "ActionTargetTypeInRegion"}]},
        "CustomActionTarget": {"Fn::And": [{"Condition": "UsesSecurityHub"},
                                           not_({"Condition": "ActionTargetTypeInRegion"})]},
    }


def action_target_arn() -> Json:
    """The custom action's ARN, whichever resource made it (under UsesSecurityHub)."""
    return if_("NativeActionTarget", ref("RemediateNowAction"), ref("RemediateNowActionCustom"))


def action_target_resources() -> Json:
    custom = "CustomActionTarget"
    return {
        "RemediateNowAction": {"Type": "AWS::SecurityHub::ActionTarget", "Condition": "NativeActionTarget",
                               "Properties": dict(ACTION)},
        "RemediateNowActionCustom": {"Type": "Custom::SecurityHubActionTarget", "Condition": custom, "Properties": {
            "ServiceToken": get_att("ActionTargetFunction", "Arn"), **ACTION}},
        "ActionTargetRole": {"Type": "AWS::IAM::Role", "Condition": custom, "Properties": {
            "Description": "CSPM remediation: makes the Security Hub custom action (custom resource)",
            "AssumeRolePolicyDocument": service_trust("lambda.amazonaws.com"),
            "Policies": [inline_policy("action-target", [
                statement("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                          get_att("ActionTargetLogGroup", "Arn")),
                # Security Hub authorizes the action-target calls on the hub (Service Authorization Reference).
                statement("ManageActionTarget", ["securityhub:CreateActionTarget", "securityhub:DeleteActionTarget",
                                                 "securityhub:UpdateActionTarget"], HUB),
                statement("SendUndeliveredEvents", ["sqs:SendMessage"], UNDELIVERED), use_key("sqs"),
            ])],
        }},
        "ActionTargetLogGroup": {"Type": "AWS::Logs::LogGroup", "Condition": custom, "DeletionPolicy": "Retain",
                                 "UpdateReplacePolicy": "Retain", "Properties": {
            "RetentionInDays": ref("LogRetentionDays"), "KmsKeyId": get_att("LogsKey", "Arn")}},
        # Invoked (asynchronously) by CloudFormation only, which waits for its answer: an invocation that failed
        # every attempt is kept with the other undelivered events, its ResponseURL in it.
        "ActionTargetFunction": {"Type": "AWS::Lambda::Function", "Condition": custom, "Properties": {
            "Description": "Security Hub custom action where CloudFormation lacks AWS::SecurityHub::ActionTarget",
            "Runtime": LAMBDA_RUNTIME, "Architectures": [LAMBDA_ARCHITECTURE], "Handler": "index.handler",
            "Code": {"ZipFile": HANDLER_SOURCE.read_text(encoding="utf-8")},
            "Role": get_att("ActionTargetRole", "Arn"), "Timeout": 60, "MemorySize": 128,
            "LoggingConfig": {"LogGroup": ref("ActionTargetLogGroup"), "LogFormat": "Text"},
            "DeadLetterConfig": {"TargetArn": UNDELIVERED},
        }},
    }
