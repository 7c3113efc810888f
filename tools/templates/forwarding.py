"""Real-time events (issue #16): the CloudTrail API calls of connectors/cloudtrail_events.py reach the security
account's default event bus, where a rule invokes the cloudtrail events function.

EventBridge gets CloudTrail's management events in the account and Region where the call was made, so every member
account forwards the watched calls, from every Region it uses, to the admin stack's bus. That is
event-forwarding.yaml: one rule and the role it forwards with, nothing else, so a StackSet can deploy it to many
Regions (target-account.yaml holds named IAM roles and is deployed to one). organization-stackset.yaml deploys it to
the same OUs when RealTimeEvents is enabled. IAM's calls are global and reach EventBridge in us-east-1 only: keep
us-east-1 among the Regions to watch password policy changes.

In the admin stack (RealTimeEvents, off by default): the bus policy that lets the organization's accounts put
events, the rule, and the function with its invoke permission. Both rules use the same pattern, derived from the
table: the watched eventSource/eventName pairs, successful calls only.
"""

from __future__ import annotations

import json

from connectors.cloudtrail import DETAIL_TYPE
from connectors.cloudtrail_events import watched_events
from tools.templates.cfn import Json, checked_parameters, equals, get_att, not_, org_stackset, ref, sub
from tools.templates.iam import inline_policy, service_trust, statement
from tools.templates.lambdas import rule_target
from tools.templates.parameters import ACCOUNT_ID, REGION, TEMPLATE_URL

ADMIN_BUS = "arn:${AWS::Partition}:events:${AdminRegion}:${AdminAccountId}:event-bus/default"
REAL_TIME_PARAMETER: Json = {
    "Type": "String", "Default": "disabled", "AllowedValues": ["disabled", "enabled"],
    "Description": "enabled: CloudTrail API calls that can break a rule (forwarded by event-forwarding.yaml from the "
                   "member accounts) are re-checked within seconds, through the same modes, queue and ledger",
}
MAX_EVENT_PATTERN_CHARS = 4_096


def cloudtrail_pattern() -> Json:
    """Successful calls of the watched events (the function re-checks each one; this only keeps the volume down)."""
    watched = watched_events()
    pattern: Json = {
        "source": sorted({"aws." + source.split(".", 1)[0] for source in watched}),
        "detail-type": [DETAIL_TYPE],
        "detail": {
            "eventSource": list(watched),
            "eventName": sorted({name for names in watched.values() for name in names}),
            "errorCode": [{"exists": False}],
        },
    }
    if len(json.dumps(pattern)) > MAX_EVENT_PATTERN_CHARS:
        raise ValueError("the CloudTrail event pattern would exceed EventBridge's limit: split the rule")
    return pattern


# -- admin.yaml ------------------------------------------------------------------------------------------------------
def admin_conditions() -> Json:
    return {"UsesRealTimeEvents": equals(ref("RealTimeEvents"), "enabled")}


def admin_resources() -> Json:
    condition = "UsesRealTimeEvents"
    return {
        "OrganizationEventsPolicy": {"Type": "AWS::Events::EventBusPolicy", "Condition": condition, "Properties": {
            "EventBusName": "default",
            "StatementId": "cspm-remediation-organization-forwarding",
            "Statement": {
                "Sid": "cspm-remediation-organization-forwarding", "Effect": "Allow", "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"),
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ref("OrganizationId")}},
            },
        }},
        "CloudTrailEventsRule": {"Type": "AWS::Events::Rule", "Condition": condition, "Properties": {
            "Description": "CloudTrail API calls that can break a rule (this account's and the forwarded ones)",
            "State": "ENABLED", "EventPattern": cloudtrail_pattern(),
            "Targets": [rule_target(get_att("CloudTrailEventsFunction", "Arn"), "cloudtrail-events-function")],
        }},
        "CloudTrailEventsPermission": {"Type": "AWS::Lambda::Permission", "Condition": condition, "Properties": {
            "Action": "lambda:InvokeFunction", "FunctionName": ref("CloudTrailEventsFunction"),
            "Principal": "events.amazonaws.com", "SourceArn": get_att("CloudTrailEventsRule", "Arn"),
        }},
    }


# -- event-forwarding.yaml -------------------------------------------------------------------------------------------
FORWARDING_PARAMETERS: Json = {
    "AdminAccountId": {**ACCOUNT_ID.spec(), "Description": "The delegated security account where admin.yaml runs"},
    "AdminRegion": {**REGION.spec(),
                    "Description": "The Region of the admin stack (its default event bus receives the events)"},
}


def forwarding_template() -> Json:
    condition = "NotTheAdminBus"  # the admin account's own calls in the admin Region are already on its bus
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "CSPM remediation: forward the CloudTrail API calls that can break a rule to the security "
                       "account's event bus (deploy with StackSets to every account and Region watched)",
        "Parameters": checked_parameters(FORWARDING_PARAMETERS),
        "Conditions": {condition: not_({"Fn::And": [equals(ref("AWS::AccountId"), ref("AdminAccountId")),
                                                    equals(ref("AWS::Region"), ref("AdminRegion"))]})},
        "Resources": {
            # No RoleName: one stack per Region, and IAM names are account-wide.
            "ForwardingRole": {"Type": "AWS::IAM::Role", "Condition": condition, "Properties": {
                "Description": "EventBridge forwards CSPM remediation events to the security account",
                "AssumeRolePolicyDocument": service_trust("events.amazonaws.com"),
                "Policies": [inline_policy("forward", [statement("PutOnTheAdminBus", ["events:PutEvents"],
                                                                 sub(ADMIN_BUS))])],
            }},
            "ForwardingRule": {"Type": "AWS::Events::Rule", "Condition": condition, "Properties": {
                "Description": "CloudTrail API calls that can break a CSPM remediation rule, to the security account",
                "State": "ENABLED", "EventPattern": cloudtrail_pattern(),
                "Targets": [{"Arn": sub(ADMIN_BUS), "Id": "security-account-bus",
                             "RoleArn": get_att("ForwardingRole", "Arn")}],
            }},
        },
        "Outputs": {"ForwardingRuleArn": {"Condition": condition, "Value": get_att("ForwardingRule", "Arn")}},
    }


# -- organization-stackset.yaml --------------------------------------------------------------------------------------
STACKSET_PARAMETERS: Json = {
    "RealTimeEvents": REAL_TIME_PARAMETER,
    "ForwardingTemplateURL": {**TEMPLATE_URL.optional().spec(), "Default": "",
                              "Description": "S3 URL of the uploaded event-forwarding.yaml (RealTimeEvents enabled)"},
    "EventRegions": {"Type": "CommaDelimitedList", "Default": "us-east-1",
                     "Description": "Regions whose CloudTrail events are forwarded (include us-east-1 for IAM)"},
    "AdminRegion": FORWARDING_PARAMETERS["AdminRegion"] | {"Default": "us-east-1"},
}


def stackset_conditions() -> Json:
    return {"UsesRealTimeEvents": equals(ref("RealTimeEvents"), "enabled")}


def stackset_rules() -> Json:
    return {"ForwardingNeedsTemplate": {
        "RuleCondition": equals(ref("RealTimeEvents"), "enabled"),
        "Assertions": [{"Assert": not_(equals(ref("ForwardingTemplateURL"), "")),
                        "AssertDescription": "RealTimeEvents enabled: ForwardingTemplateURL names "
                                             "event-forwarding.yaml"}],
    }}


def stackset_resource(operation_preferences: Json) -> Json:
    return {"EventForwardingStackSet": {"Type": "AWS::CloudFormation::StackSet", "Condition": "UsesRealTimeEvents",
                                        # ForwardingTemplateURL's default is empty; the Rule above refuses it
                                        # whenever this StackSet exists.
                                        "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W1030"]}}},
                                        "Properties": org_stackset(
        name=sub("${StackSetName}-event-forwarding"),
        description="CSPM remediation: forward CloudTrail events to the security account",
        capability="CAPABILITY_IAM", preferences=operation_preferences, template_url=ref("ForwardingTemplateURL"),
        parameters=list(FORWARDING_PARAMETERS), regions=ref("EventRegions"),
    )}}
