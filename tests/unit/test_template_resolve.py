"""tools/templates/resolve.py: the renderings `make lint` checks are what CloudFormation would deploy."""

from __future__ import annotations

import json

import pytest

from tools.templates.resolve import ResolveError, resolve, target_renderings

SMALL = {
    "Parameters": {"Mode": {"Type": "String", "Default": "dry-run"}, "Extra": {"Type": "String", "Default": ""}},
    "Conditions": {
        "Enforced": {"Fn::Equals": [{"Ref": "Mode"}, "enforce"]},
        "HasExtra": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Extra"}, ""]}]},
        "Either": {"Fn::Or": [{"Condition": "Enforced"}, {"Condition": "HasExtra"}]},
        "Both": {"Fn::And": [{"Condition": "Enforced"}, {"Condition": "HasExtra"}]},
    },
    "Resources": {
        "Always": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"Statement": [
            {"Fn::If": ["Enforced", {"Action": "write"}, {"Ref": "AWS::NoValue"}]},
            {"Action": "read"},
        ], "Name": {"Fn::If": ["HasExtra", {"Ref": "Extra"}, "plain"]}}},
        "OnlyEither": {"Type": "AWS::SNS::Topic", "Condition": "Either", "Properties": {}},
        "OnlyBoth": {"Type": "AWS::SNS::Topic", "Condition": "Both", "Properties": {}},
    },
    "Outputs": {"Both": {"Condition": "Both", "Value": "x"}},
}


def test_defaults_drop_false_branches_resources_and_outputs():
    out = resolve(SMALL)
    assert "Conditions" not in out
    assert out["Resources"]["Always"]["Properties"] == {"Statement": [{"Action": "read"}], "Name": "plain"}
    assert set(out["Resources"]) == {"Always"} and out["Outputs"] == {}


def test_values_pick_the_true_branches_and_the_condition_key_goes():
    out = resolve(SMALL, {"Mode": "enforce", "Extra": "x"})
    assert out["Resources"]["Always"]["Properties"]["Statement"] == [{"Action": "write"}, {"Action": "read"}]
    assert out["Resources"]["Always"]["Properties"]["Name"] == {"Ref": "Extra"}
    assert set(out["Resources"]) == {"Always", "OnlyEither", "OnlyBoth"}
    assert "Condition" not in out["Resources"]["OnlyBoth"] and out["Outputs"] == {"Both": {"Value": "x"}}


def test_unknown_parameters_and_functions_are_refused():
    with pytest.raises(ResolveError, match="no such parameter"):
        resolve(SMALL, {"Nope": "x"})
    broken = {**SMALL, "Conditions": {**SMALL["Conditions"], "Enforced": {"Fn::Contains": ["a", "b"]}}}
    with pytest.raises(ResolveError, match="unsupported condition function"):
        resolve(broken)


def test_target_renderings_hold_no_conditions_and_differ_as_the_toggles_say():
    renderings = target_renderings()
    for name, template in renderings.items():
        text = json.dumps(template)
        assert "Fn::If" not in text and "AWS::NoValue" not in text and "Conditions" not in template, name
        assert not any("Condition" in body for body in template["Resources"].values()), name
    enforce, defaults, off = (json.dumps(renderings[f"target-{n}.yaml"])
                              for n in ("all-enforce", "defaults", "all-off"))
    # A write the defaults (dry-run) never grant appears once every rule is enforced.
    assert "ec2:RevokeSecurityGroupIngress" in enforce and "ec2:RevokeSecurityGroupIngress" not in defaults
    assert "RollbackRole" in renderings["target-all-enforce.yaml"]["Resources"]
    assert len(off) < len(defaults) < len(enforce)

