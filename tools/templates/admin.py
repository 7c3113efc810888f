"""admin.yaml: the delegated security account (Lambdas, queue, ledger, schedules, events, alarms)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from functions.engine.automation import DEFAULT_AUTOMATION_ROLE_NAME
from functions.engine.catalog import CATALOG, CatalogEntry
from tools.templates import forwarding
from tools.templates.action_target import action_target_arn, action_target_conditions, action_target_resources
from tools.templates.cfn import Json, checked_parameters, define_any, equals, get_att, not_, pruned, ref
from tools.templates.defaults import (
    CODE_ZIP_NAME,
    DEFAULT_REMEDIATE_FUNCTION_ROLE_NAME,
    DEFAULT_REMEDIATION_ROLE_NAME,
    DEFAULT_SCHEDULE,
    LOG_RETENTION_DAYS,
    SOURCES,
)
from tools.templates.lambdas import (
    LAMBDAS,
    event_resources,
    function_resources,
    location_kind,
    queue_resources,
    schedule_resources,
)
from tools.templates.parameters import (
    BUCKET,
    EMAIL,
    EXTERNAL_ID,
    NETSKOPE_URL,
    ORGANIZATION_ID,
    REGIONS,
    ROLE_NAME,
    S3_KEY,
    SCHEDULE,
    Constraint,
)
from tools.templates.rules import (
    active_condition,
    active_conditions,
    catalog_entries,
    control_entries,
    toggle_groups,
    toggle_labels,
    toggle_parameters,
)
from tools.templates.storage import storage_resources, undelivered_events_policy

# A CloudFormation parameter value holds 4,096 characters, as does a standard-tier SSM parameter.
CONFIG_DOCUMENT_MAX = 4_096
CONFIG_LOCATION = Constraint(r"^ssm:/[a-zA-Z0-9_.\-/]{1,1000}$|^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/\S{1,1024}$",
                             1_100, "ssm:/name of a parameter or s3://bucket/key of an object").optional()
NETSKOPE_TOKEN = Constraint(r'^[^"\\]*$', 1_024, "a Netskope API token without quotes or backslashes")
ADMIN_PARAMETERS: Json = {
    "Source": {
        "Type": "String", "Default": "securityhub", "AllowedValues": list(SOURCES),
        "Description": "Where findings come from: securityhub (ASFF), securityhub-v2 (Security Hub's OCSF "
                       "findings), netskope, prowler (a scan's output in S3), or both (securityhub and netskope)",
    },
    "ProwlerBucket": {
        **BUCKET.optional().spec(), "Default": "",
        "Description": "Bucket of the Prowler json-ocsf output the pull function reads (when Source is prowler)",
    },
    "ProwlerKey": {
        **S3_KEY.optional().spec(), "Default": "",
        "Description": "Key of that output (when Source is prowler); the scan overwrites it, each pull reads it",
    },
    "NetskopeUrl": {
        **NETSKOPE_URL.optional().spec(), "Default": "",
        "Description": "Netskope tenant URL or FQDN (when Source includes netskope)",
    },
    "NetskopeToken": {
        **NETSKOPE_TOKEN.spec(), "Default": "", "NoEcho": True,
        "Description": "Netskope REST API v1 token, stored in Secrets Manager as {\"token\": ...} (when Source "
                       "includes netskope; no quotes or backslashes)",
    },
    "ScheduleExpression": {
        **SCHEDULE.spec(), "Default": DEFAULT_SCHEDULE,
        "Description": "How often each source is pulled (EventBridge Scheduler rate() or cron())",
    },
    "Regions": {
        **REGIONS.optional().spec(), "Default": "",
        "Description": "Regions acted on, comma-separated, for every source (findings of other regions are "
                       "skipped); Security Hub is pulled in each. Empty: pull this stack's region (with a Security "
                       "Hub aggregation region, every linked region's findings) and act on every region",
    },
    "ConfigDocument": {
        "Type": "String", "Default": "", "MaxLength": CONFIG_DOCUMENT_MAX,
        "Description": "The config file the CLI reads (--config), as JSON: modes, exclusions, limits, params, "
                       "executor, netskope.rules. Stored in an SSM parameter the stack creates. A rule's mode is the "
                       "more cautious of its toggle and this document's. Empty: toggles and DefaultMode only",
    },
    "ConfigLocation": {
        **CONFIG_LOCATION.spec(), "Default": "",
        "Description": "Instead of ConfigDocument (over 4 KB, or changed without a stack update): ssm:/name of a "
                       "String parameter of this account and region, or s3://bucket/key of an object (SSE-S3)",
    },
    "DefaultMode": {
        "Type": "String", "Default": "dry-run", "AllowedValues": ["dry-run", "enforce"],
        "Description": "Mode of rules without a toggle here (newer code than this stack); each toggle below is "
                       "its rule's own mode. Disruptive rules never follow it",
    },
    "OrganizationId": {
        **ORGANIZATION_ID.spec(),
        "Description": "AWS Organizations id (o-...): the only organization whose roles may be assumed",
    },
    "RemediationRoleName": {
        **ROLE_NAME.spec(),
        "Default": DEFAULT_REMEDIATION_ROLE_NAME,
        "Description": "Role assumed in each target account (target-account.yaml RemediationRoleName)",
    },
    "AutomationRoleName": {
        **ROLE_NAME.spec(),
        "Default": DEFAULT_AUTOMATION_ROLE_NAME,
        "Description": "Role SSM Automation runbooks run with in target accounts",
    },
    "ExternalId": {
        **EXTERNAL_ID.optional().spec(), "Default": "", "NoEcho": True,
        "Description": "Optional sts:ExternalId required by the target roles",
    },
    "RemediateFunctionRoleName": {
        **ROLE_NAME.spec(),
        "Default": DEFAULT_REMEDIATE_FUNCTION_ROLE_NAME,
        "Description": "Name of the remediate Lambda's role, trusted by target-account.yaml AdminRemediateRoleName",
    },
    "NotificationEmail": {
        **EMAIL.optional().spec(), "Default": "",
        "Description": "Optional address subscribed to summaries and alarms",
    },
    "CodeS3Bucket": {**BUCKET.spec(), "Description": "Bucket holding the Lambda zip (`make package`)"},
    "CodeS3Key": {**S3_KEY.spec(), "Default": CODE_ZIP_NAME, "Description": "Key of the Lambda zip"},
    "LogRetentionDays": {
        "Type": "Number", "Default": 90, "AllowedValues": list(LOG_RETENTION_DAYS),
        "Description": "Retention of the functions' logs",
    },
    "MaxReceiveCount": {
        "Type": "Number", "Default": 3, "MinValue": 1, "MaxValue": 100,
        "Description": "Deliveries of a work item before it goes to the dead-letter queue",
    },
    "RealTimeEvents": forwarding.REAL_TIME_PARAMETER,
}

ADMIN_GROUPS = (
    ("Sources", ["Source", "NetskopeUrl", "NetskopeToken", "ProwlerBucket", "ProwlerKey", "ScheduleExpression",
                 "Regions", "RealTimeEvents"]),
    ("Configuration", ["ConfigDocument", "ConfigLocation"]),
    ("Remediation", ["DefaultMode", "OrganizationId", "RemediationRoleName", "AutomationRoleName", "ExternalId",
                     "RemediateFunctionRoleName"]),
    ("Operations", ["NotificationEmail", "CodeS3Bucket", "CodeS3Key", "LogRetentionDays", "MaxReceiveCount"]),
)


def admin_conditions(entries: Sequence[CatalogEntry]) -> Json:
    conditions: Json = {
        # Security Hub's ASFF API (GetFindings, the custom action) and its OCSF API (GetFindingsV2) are separate
        # sources: a stack pulls one of them.
        "UsesSecurityHub": {"Fn::Or": [equals(ref("Source"), "securityhub"), equals(ref("Source"), "both")]},
        "UsesSecurityHubV2": equals(ref("Source"), "securityhub-v2"),
        "UsesProwler": equals(ref("Source"), "prowler"),
        "UsesNetskope": {"Fn::Or": [equals(ref("Source"), "netskope"), equals(ref("Source"), "both")]},
        "UsesBothSources": equals(ref("Source"), "both"),
        "HasNotificationEmail": not_(equals(ref("NotificationEmail"), "")),
        "HasExternalId": not_(equals(ref("ExternalId"), "")),
        "HasConfigDocument": not_(equals(ref("ConfigDocument"), "")),
        "ConfigInSsm": equals(location_kind(), "ssm"),
        "ConfigInS3": equals(location_kind(), "s3"),
    }
    conditions.update(forwarding.admin_conditions())
    conditions.update(action_target_conditions())
    conditions.update(active_conditions(entries))
    controls = define_any(conditions, "AnyControlActive",
                          [active_condition(e.rule_id) for e in control_entries(entries)])
    if controls:
        conditions["WatchImportedFindings"] = {"Fn::And": [{"Condition": "UsesSecurityHub"}, {"Condition": controls}]}
        conditions["WatchImportedFindingsV2"] = {"Fn::And": [{"Condition": "UsesSecurityHubV2"},
                                                             {"Condition": controls}]}
    return conditions


def admin_rules() -> Json:
    """Parameter checks CloudFormation runs before creating anything."""
    def required(name: str) -> Json:
        return {"Assert": not_(equals(ref(name), "")), "AssertDescription": f"{name} is required for Netskope"}

    return {
        "ProwlerSettings": {
            "RuleCondition": equals(ref("Source"), "prowler"),
            "Assertions": [{"Assert": not_(equals(ref(name), "")), "AssertDescription": f"{name} is required for "
                            "Prowler"} for name in ("ProwlerBucket", "ProwlerKey")],
        },
        "NetskopeSettings": {
            "RuleCondition": {"Fn::Or": [equals(ref("Source"), "netskope"), equals(ref("Source"), "both")]},
            "Assertions": [required("NetskopeUrl"), required("NetskopeToken")],
        },
        "OneConfig": {"Assertions": [{
            "Assert": {"Fn::Or": [equals(ref("ConfigDocument"), ""), equals(ref("ConfigLocation"), "")]},
            "AssertDescription": "Give ConfigDocument or ConfigLocation, not both",
        }]},
    }



def admin_outputs() -> Json:
    return {
        "RemediateFunctionRoleArn": {"Description": "Trusted by the target accounts' remediation role",
                                     "Value": get_att("RemediateRole", "Arn")},
        "WorkQueueUrl": {"Value": ref("WorkQueue")},
        "DeadLetterQueueUrl": {"Value": ref("DeadLetterQueue")},
        "UndeliveredEventsQueueUrl": {"Description": "Schedules and events the functions never processed",
                                      "Value": ref("UndeliveredEventsQueue")},
        "LedgerTableName": {"Value": ref("LedgerTable")},
        "NotificationTopicArn": {"Value": ref("NotificationTopic")},
        "RemediateNowActionArn": {"Condition": "UsesSecurityHub", "Value": action_target_arn()},
    }


def admin_template(catalog: Mapping[str, CatalogEntry] = CATALOG) -> Json:
    entries = catalog_entries(catalog)
    conditions = admin_conditions(entries)
    resources: Json = storage_resources()
    for function in LAMBDAS:
        resources.update(function_resources(function, entries))
    resources.update(queue_resources())
    resources.update(schedule_resources())
    resources.update(action_target_resources())
    resources.update(event_resources(entries, conditions, action_target_arn()))
    resources.update(forwarding.admin_resources())
    rules = {name: r["Condition"] for name, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    resources["UndeliveredEventsQueuePolicy"] = undelivered_events_policy(
        rules, define_any(conditions, "HasEventRules", sorted(set(rules.values()))))
    return pruned({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "CSPM remediation: pull, queue, remediate and record findings (delegated security account)",
        "Metadata": {"AWS::CloudFormation::Interface": {
            "ParameterGroups": [{"Label": {"default": label}, "Parameters": names} for label, names in ADMIN_GROUPS]
            + toggle_groups(entries),
            "ParameterLabels": toggle_labels(entries),
        }},
        "Parameters": checked_parameters({**ADMIN_PARAMETERS, **toggle_parameters(entries)}),
        "Rules": admin_rules(),
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": admin_outputs(),
    })
