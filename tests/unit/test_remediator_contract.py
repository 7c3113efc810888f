"""The remediator contract (functions/remediators/base.py): permissions per stage, params schemas checked at config
load, service roles named from params, runbooks declaring only their own calls."""

from __future__ import annotations

import pytest

from functions.engine.catalog import CATALOG, REMEDIATORS
from functions.engine.config import ConfigError, config_from_dict
from functions.remediators.base import AUTOMATION_CALLS, STAGES, NotifyOnlyRemediator, Param, Remediator
from functions.remediators.ec2 import VpcFlowLogs
from functions.remediators.kms import KeyRotation


def test_stages_are_declared_apart_and_permissions_is_their_union():
    reads = ("kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "tag:GetResources")
    assert KeyRotation.permissions_for("read") == reads
    assert KeyRotation.permissions_for("write") == ("kms:EnableKeyRotation",)
    assert KeyRotation.permissions_for("restore") == ("kms:DisableKeyRotation",)
    for cls in REMEDIATORS:
        union = {a for stage in STAGES for a in cls.permissions_for(stage)}
        assert set(cls.permissions) == union, cls.__name__
    with pytest.raises(ValueError, match="stage"):
        KeyRotation.permissions_for("delete")  # type: ignore[arg-type]


def test_reads_are_reads():
    """What dry-run is granted never changes anything: no Create/Put/Delete/Modify... among the reads."""
    writes = ("Create", "Put", "Delete", "Modify", "Update", "Attach", "Detach", "Revoke", "Authorize", "Enable",
              "Disable", "Set", "Add", "Remove", "Start", "Stop", "Restore", "Copy", "Pass")
    for cls in REMEDIATORS:
        for action in cls.permissions_for("read"):
            assert not action.split(":")[1].startswith(writes), f"{cls.__name__} reads with {action}"


def test_every_acting_remediator_writes_and_every_reversible_one_restores():
    for cls in REMEDIATORS:
        if issubclass(cls, NotifyOnlyRemediator):
            assert not cls.permissions_for("write") and not cls.permissions_for("restore")
            continue
        assert cls.permissions_for("read") and cls.permissions_for("write"), cls.__name__
        assert bool(cls.permissions_for("restore")) == cls.reversible, cls.__name__


def test_runbooks_declare_their_own_calls_and_get_the_automation_calls_centrally():
    runbooks = [cls.runbook for cls in REMEDIATORS if cls.runbook]
    assert runbooks
    for runbook in runbooks:
        assert not set(AUTOMATION_CALLS) & set(runbook.permissions), runbook.document
        assert set(AUTOMATION_CALLS) <= set(runbook.role_permissions), runbook.document
        assert set(runbook.permissions) <= set(runbook.role_permissions)


def test_pass_role_comes_from_a_declared_service_role_named_by_params():
    assert "iam:PassRole" in VpcFlowLogs.permissions_for("write")
    assert VpcFlowLogs.passed_roles() == (("CSPMRemediationFlowLogsDelivery", "vpc-flow-logs.amazonaws.com"),)
    assert VpcFlowLogs.passed_roles({"delivery_role_name": "MyDelivery"}) == (
        ("MyDelivery", "vpc-flow-logs.amazonaws.com"),)
    with pytest.raises(TypeError, match="service_roles"):
        class _PassesByHand(Remediator):
            rules = ()
            resource_types = ("AwsAccount",)
            write_permissions = ("iam:PassRole",)
            reversible = False


def test_permissions_and_default_params_are_derived_not_declared():
    with pytest.raises(TypeError, match="derived"):
        class _Legacy(Remediator):
            rules = ()
            resource_types = ("AwsAccount",)
            permissions = ("ec2:DescribeVpcs",)
            reversible = False


def test_every_default_satisfies_its_schema():
    for cls in REMEDIATORS:
        for name, param in cls.params_schema.items():
            assert param.problem(param.default) is None, f"{cls.__name__}.{name}"
        cls()  # and the construction checks


@pytest.mark.parametrize(("param", "value", "message"), [
    (Param(1, int), True, "must be an integer, got True"),
    (Param(1, int), "1", "must be an integer"),
    (Param(False, bool), "yes", "must be true/false"),
    (Param("a", str, allowed=("a", "b")), "c", "must be one of a, b"),
    (Param(5, int, minimum=1), 0, "must be ≥ 1"),
    (Param(None, str, pattern=r"[a-z]+"), "A", "must match"),
    (Param("x", str), None, "must not be null"),
])
def test_param_problems(param: Param, value: object, message: str):
    assert message in (param.problem(value) or "")


def test_param_accepts_its_kind_and_null_when_the_default_is_null():
    assert Param(None, str).problem(None) is None
    assert Param(1.5, float).problem(2) is None
    assert Param(1, int, allowed=(1, 2)).problem(2) is None


@pytest.mark.parametrize(("params", "message"), [
    ({"retension_days": 7}, "rules.EC2.6.params: unknown parameter(s) retension_days (known: "),
    ({"retention_days": "7"}, "rules.EC2.6.params: retention_days must be an integer, got '7'"),
    ({"retention_days": 8}, "rules.EC2.6.params: retention_days must be one of "),
    ({"traffic_type": "SOME"}, "rules.EC2.6.params: traffic_type must be one of REJECT, ALL"),
    ({"destination_type": "s3"}, "rules.EC2.6.params: destination_type s3 needs s3_bucket_arn"),  # cross-field
])
def test_bad_params_are_refused_at_config_load_with_one_line(params: dict, message: str):
    with pytest.raises(ConfigError) as error:
        config_from_dict({"rules": {"EC2.6": {"params": params}}})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_good_params_load():
    config = config_from_dict({"rules": {"EC2.6": {"params": {"retention_days": 30, "traffic_type": "ALL"}},
                                         "IAM.15": {"params": {"min_length": 16}}}})
    assert config.rule("EC2.6").params == {"retention_days": 30, "traffic_type": "ALL"}
    assert "EC2.6" in CATALOG
