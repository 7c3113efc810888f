"""GuardDuty.1 against moto: an account without a detector gets one, a suspended detector is enabled again (its
settings kept, no second detector), read back; a second assess is compliant; rollback suspends, never deletes."""

from __future__ import annotations

import boto3
import pytest

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.guardduty import GuardDutyEnabled
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls, recorded_pre_state


@pytest.fixture
def guardduty(moto_aws):
    return boto3.client("guardduty", region_name=REGION)


def finding():
    return make_finding("GuardDuty.1", "AwsAccount", f"AWS::::Account:{ACCOUNT}")


def detectors(guardduty) -> list[tuple[str, str]]:
    return [(d, guardduty.get_detector(DetectorId=d)["Status"]) for d in guardduty.list_detectors()["DetectorIds"]]


def test_account_without_a_detector_gets_one(target: Target, sessions: AssumedSessions, guardduty) -> None:
    remediator = GuardDutyEnabled()
    calls = record_calls(target.client("guardduty"))

    before = remediator.assess(target, finding())
    assert not before.compliant and before.pre_state == {"DetectorId": None, "Status": "NONE"}
    assert before.changes[0].startswith(f"create a GuardDuty detector in account {ACCOUNT} ({REGION})")
    assert detectors(guardduty) == []

    remediator.apply(target, finding(), before)

    (detector_id, status), = detectors(guardduty)
    assert status == "ENABLED"
    assert guardduty.get_detector(DetectorId=detector_id)["FindingPublishingFrequency"] == "SIX_HOURS"
    after = remediator.assess(target, finding())
    assert after.compliant and after.changes == []
    assert calls == ["ListDetectors", "CreateDetector", "ListDetectors", "GetDetector"]

    lines = remediator.restore(target, finding(), recorded_pre_state(before))
    assert lines[0].startswith(f"suspended GuardDuty detector {detector_id} (findings kept")
    assert detectors(guardduty) == [(detector_id, "DISABLED")]  # suspended, not deleted
    assert remediator.restore(target, finding(), recorded_pre_state(before)) == [
        f"GuardDuty detector {detector_id} is already suspended"]
    # iam:CreateServiceLinkedRole is made by GuardDuty on the caller's behalf, not by this code.
    assert iam_actions(sessions.api_calls) == set(GuardDutyEnabled.permissions) - {"iam:CreateServiceLinkedRole"}


def test_suspended_detector_is_enabled_with_its_settings(target: Target, guardduty) -> None:
    detector_id = guardduty.create_detector(Enable=False, FindingPublishingFrequency="FIFTEEN_MINUTES")["DetectorId"]
    remediator = GuardDutyEnabled()

    before = remediator.assess(target, finding())
    assert before.changes == [f"enable the suspended GuardDuty detector {detector_id} in account {ACCOUNT} "
                              f"({REGION})"]
    remediator.apply(target, finding(), before)

    assert detectors(guardduty) == [(detector_id, "ENABLED")]
    assert guardduty.get_detector(DetectorId=detector_id)["FindingPublishingFrequency"] == "FIFTEEN_MINUTES"
    assert remediator.assess(target, finding()).compliant


def test_enabled_detector_is_compliant(target: Target, guardduty) -> None:
    guardduty.create_detector(Enable=True)

    assert GuardDutyEnabled().assess(target, finding()).compliant


def test_restore_without_a_detector_is_refused(target: Target, guardduty) -> None:
    with pytest.raises(RemediationError, match="nothing to suspend"):
        GuardDutyEnabled().restore(target, finding(), {"DetectorId": None, "Status": "NONE"})


def test_rule_is_disruptive_because_it_costs_money() -> None:
    assert CATALOG["GuardDuty.1"].rule.disruptive
