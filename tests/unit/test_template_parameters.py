"""Name-like parameters of every template are constrained (pattern, length, a sentence saying what is expected),
and the constraints accept the defaults and the values the documentation and the tests use."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tools.package import code_key
from tools.templates import admin_template, parameters, stackset_template, target_template
from tools.templates.forwarding import forwarding_template

TEMPLATES = {"admin": admin_template(), "target": target_template(), "stackset": stackset_template(),
             "event-forwarding": forwarding_template()}
FREE_TEXT = {("admin", "ConfigDocument")}  # a JSON document, bounded by MaxLength and validated at cold start


def accepts(parameter: dict[str, Any], value: str) -> bool:
    """As CloudFormation checks a String parameter: the whole value matches, within MaxLength."""
    return bool(re.fullmatch(parameter["AllowedPattern"], value)) and len(value) <= parameter["MaxLength"]


def constrained() -> list[tuple[str, str, dict[str, Any]]]:
    return [(template, name, p) for template, t in TEMPLATES.items() for name, p in t["Parameters"].items()
            if p["Type"] == "String" and "AllowedValues" not in p and (template, name) not in FREE_TEXT]


@pytest.mark.parametrize(("template", "name", "parameter"), constrained(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_free_string_parameter_is_constrained_and_accepts_its_default(template, name, parameter):
    assert parameter["AllowedPattern"].startswith("^") and parameter["MaxLength"] > 0
    assert parameter["ConstraintDescription"].startswith("must be ")
    if "Default" in parameter:
        assert accepts(parameter, str(parameter["Default"])), (template, name, parameter["Default"])


def test_role_names_follow_iam():
    role_names = [(t, n, p) for t, n, p in constrained() if n.endswith("RoleName") and n != "SupportRoleRoleName"]
    assert len(role_names) >= 10
    for _, _, parameter in role_names:
        assert parameter["MaxLength"] == 64
        assert accepts(parameter, "a" * 64) and accepts(parameter, "Team+Role=x,y.z@corp_1-2")
        assert not accepts(parameter, "a" * 65) and not accepts(parameter, "has space")
        assert not accepts(parameter, "") and not accepts(parameter, "path/Role")


def test_external_id_is_empty_or_2_to_1224_allowed_characters():
    for template in ("admin", "target", "stackset"):
        parameter = TEMPLATES[template]["Parameters"]["ExternalId"]
        assert parameter["NoEcho"] is True and parameter["MaxLength"] == 1224
        for value in ("", "ext-123", "a:b/c=d,e.f@g+h_i-j", "x" * 1224):
            assert accepts(parameter, value), value
        for value in ("x", "x" * 1225, "with space", "quote'"):
            assert not accepts(parameter, value), value


ADMIN_VALUES = {  # DEPLOY.md's examples and tests/e2e/test_cloudformation_moto.py's stacks
    "OrganizationId": ["o-abcdefghij"], "CodeS3Bucket": ["cspm-code", "my-bucket.example"],
    "CodeS3Key": ["cspm-remediation.zip", code_key("0123456789abcdef")],
    "Regions": ["", "eu-west-1", "us-east-1,eu-west-1", "eusc-de-east-1"],
    "NetskopeUrl": ["", "tenant.goskope.com", "https://tenant.goskope.com", "https://tenant.goskope.com/api/v1",
                    "http://127.0.0.1:8080"],
    "NetskopeToken": ["token-value", "0123456789abcdef0123456789abcdef"],
    "ScheduleExpression": ["rate(1 hour)", "rate(15 minutes)", "rate(1 day)", "cron(0 6 * * ? *)"],
    "ConfigLocation": ["", "s3://cspm-config-bucket/prod/config.json", "ssm:/team/cspm/config"],
    "ProwlerBucket": ["", "prowler-output"], "ProwlerKey": ["", "output/json-ocsf/prowler-output.ocsf.json"],
    "NotificationEmail": ["", "secops@example.com"],
}
ADMIN_REFUSED = {
    "CodeS3Bucket": ["", "Upper", "ab", "a" * 64], "Regions": ["us-east-1, eu-west-1", "EU-WEST-1", ","],
    "NetskopeUrl": ["tenant goskope.com"], "NetskopeToken": ['with"quote'],
    "ScheduleExpression": ["every hour", "rate(1 week)", "at(2026-01-01T00:00:00)"],
    "ConfigLocation": ["file:///etc/config.json"], "NotificationEmail": ["nobody"], "OrganizationId": ["o-short"],
}


@pytest.mark.parametrize("name", sorted(ADMIN_VALUES))
def test_admin_constraints_accept_the_documented_values_and_refuse_typos(name):
    parameter = TEMPLATES["admin"]["Parameters"][name]
    for value in ADMIN_VALUES[name]:
        assert accepts(parameter, value), value
    for value in ADMIN_REFUSED.get(name, []):
        assert not accepts(parameter, value), value


def test_stackset_and_forwarding_constraints():
    stackset = TEMPLATES["stackset"]["Parameters"]
    url = "https://bucket.s3.eu-west-1.amazonaws.com/templates/target-account.yaml"
    assert accepts(stackset["TemplateURL"], url) and not accepts(stackset["TemplateURL"], "http://x/y.yaml")
    assert accepts(stackset["ForwardingTemplateURL"], "") and accepts(stackset["ForwardingTemplateURL"], url)
    assert accepts(stackset["DeploymentRegion"], "eu-west-1") and not accepts(stackset["DeploymentRegion"], "eu")
    # Its event-forwarding StackSet is named "<StackSetName>-event-forwarding": 128 characters at most.
    assert stackset["StackSetName"]["MaxLength"] + len("-event-forwarding") <= 128
    assert not accepts(stackset["StackSetName"], "1starts-with-a-digit")
    forwarding = TEMPLATES["event-forwarding"]["Parameters"]
    assert accepts(forwarding["AdminAccountId"], "111111111111") and not accepts(forwarding["AdminAccountId"], "1")


def test_optional_means_empty_or_the_constraint():
    bucket = parameters.BUCKET.optional().spec()
    assert accepts(bucket, "") and accepts(bucket, "abc") and not accepts(bucket, "AB")
    assert bucket["ConstraintDescription"] == "must be empty, or " + parameters.BUCKET.description
