"""organization-stackset.yaml: the StackSet that deploys target-account.yaml to the accounts of OUs."""

from __future__ import annotations

from collections.abc import Mapping

from functions.engine.catalog import CATALOG, CatalogEntry
from tools.templates import forwarding
from tools.templates.cfn import Json, checked_parameters, org_stackset, ref
from tools.templates.parameters import REGION, STACK_SET_NAME, TEMPLATE_URL
from tools.templates.target import target_template

STACKSET_PARAMETERS: Json = {
    "StackSetName": {**STACK_SET_NAME.spec(), "Default": "cspm-remediation-target-roles",
                     "Description": "Name of the StackSet"},
    "TemplateURL": {**TEMPLATE_URL.spec(), "Description": "S3 URL of the uploaded target-account.yaml"},
    "OrganizationalUnitIds": {"Type": "CommaDelimitedList",
                              "Description": "OUs (or the root r-...) whose accounts get the roles"},
    "DeploymentRegion": {**REGION.spec(), "Default": "us-east-1",
                         "Description": "The one region the roles are deployed from (IAM is global)"},
    "CallAs": {"Type": "String", "Default": "SELF", "AllowedValues": ["SELF", "DELEGATED_ADMIN"],
               "Description": "DELEGATED_ADMIN when deploying from a delegated StackSets administrator account"},
    "FailureTolerancePercentage": {"Type": "Number", "Default": 10, "MinValue": 0, "MaxValue": 100,
                                   "Description": "Accounts per region that may fail before the operation stops"},
    "MaxConcurrentPercentage": {"Type": "Number", "Default": 25, "MinValue": 1, "MaxValue": 100,
                                "Description": "Accounts deployed at the same time"},
}


def stackset_template(catalog: Mapping[str, CatalogEntry] = CATALOG) -> Json:
    target = target_template(catalog)
    passed = target["Parameters"]
    groups = [{"Label": {"default": "StackSet"}, "Parameters": list(STACKSET_PARAMETERS)},
              {"Label": {"default": "Real-time events"}, "Parameters": list(forwarding.STACKSET_PARAMETERS)},
              *target["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]]
    preferences = {
        "FailureTolerancePercentage": ref("FailureTolerancePercentage"),
        "MaxConcurrentPercentage": ref("MaxConcurrentPercentage"),
        "RegionConcurrencyType": "PARALLEL",
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "CSPM remediation: deploy target-account.yaml to every account of the given OUs "
                       "(management account or delegated StackSets administrator)",
        "Metadata": {"AWS::CloudFormation::Interface": {
            "ParameterGroups": groups,
            "ParameterLabels": target["Metadata"]["AWS::CloudFormation::Interface"]["ParameterLabels"],
        }},
        "Parameters": checked_parameters({**STACKSET_PARAMETERS, **forwarding.STACKSET_PARAMETERS, **passed}),
        "Rules": forwarding.stackset_rules(),
        "Conditions": forwarding.stackset_conditions(),
        "Resources": {"TargetRolesStackSet": {"Type": "AWS::CloudFormation::StackSet", "Properties": org_stackset(
            name=ref("StackSetName"), description="CSPM remediation roles in member accounts",
            capability="CAPABILITY_NAMED_IAM", preferences=preferences, template_url=ref("TemplateURL"),
            parameters=list(passed), regions=[ref("DeploymentRegion")],
        )}, **forwarding.stackset_resource(preferences)},
        "Outputs": {"StackSetId": {"Value": ref("TargetRolesStackSet")}},
    }
