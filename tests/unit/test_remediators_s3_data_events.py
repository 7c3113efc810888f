"""S3.22 / S3.23 S3DataEvents against moto: which selectors log S3 object-level events for all buckets, adding one
next to the existing selectors (classic or advanced), choosing the trail, and putting the old selectors back."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.cloudtrail import DEFAULT_EVENT_SELECTOR, S3DataEvents
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import (
    create_trail,
    event_selectors,
    iam_actions,
    make_trail_bucket,
    record_calls,
    recorded_pre_state,
    trail_arn,
)

OTHER_REGION = "us-west-2"
BUCKET = "cspm-data-events-logs"
WRITE_SELECTOR = {
    "ReadWriteType": "WriteOnly",
    "IncludeManagementEvents": False,
    "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
}
READ_SELECTOR = {**WRITE_SELECTOR, "ReadWriteType": "ReadOnly"}
ONE_BUCKET = {
    "ReadWriteType": "All",
    "IncludeManagementEvents": True,
    "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}],
    "ExcludeManagementEventSources": [],
}
ADVANCED_MANAGEMENT = {"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}


def advanced_s3(read_only: str | None = None, **extra: list[str]) -> dict[str, Any]:
    fields = [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
    ]
    if read_only:
        fields.append({"Field": "readOnly", "Equals": [read_only]})
    fields += [{"Field": "resources.ARN", **extra}] if extra else []
    return {"Name": "s3", "FieldSelectors": fields}


def data_finding(rule_id: str = "S3.22", **overrides: Any):
    return make_finding(rule_id, "AwsAccount", ACCOUNT, **overrides)


@pytest.fixture
def cloudtrail(moto_aws):
    return boto3.client("cloudtrail", region_name=REGION)


@pytest.fixture
def trail(cloudtrail) -> str:
    """A logging multi-Region trail with the selector AWS gives every new trail (moto reports none)."""
    create_trail("audit", make_trail_bucket(BUCKET), IsMultiRegionTrail=True, logging=True)
    cloudtrail.put_event_selectors(TrailName="audit", EventSelectors=[DEFAULT_EVENT_SELECTOR])
    return "audit"


def test_write_events_are_added_next_to_the_management_selector(
    target: Target, sessions: AssumedSessions, trail: str
) -> None:
    remediator, finding = S3DataEvents(), data_finding("S3.22")

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.changes == [
        f"add an event selector logging S3 object-level write events of all buckets to trail {trail_arn(trail)} "
        "(billed per event)"
    ]
    assert before.pre_state == {
        "TrailARN": trail_arn(trail),
        "HomeRegion": REGION,
        "EventSelectors": [DEFAULT_EVENT_SELECTOR],
        "AdvancedEventSelectors": [],
    }

    remediator.apply(target, finding, before)

    assert event_selectors(trail) == {
        "EventSelectors": [DEFAULT_EVENT_SELECTOR, WRITE_SELECTOR],
        "AdvancedEventSelectors": [],
    }
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []  # rerun: noop
    assert not remediator.assess(target, data_finding("S3.23")).compliant  # write events say nothing of reads
    assert iam_actions(sessions.api_calls) == set(S3DataEvents.permissions)


def test_read_then_write_events_keep_each_other(target: Target, trail: str) -> None:
    remediator = S3DataEvents()
    for rule_id in ("S3.23", "S3.22"):
        finding = data_finding(rule_id)
        remediator.apply(target, finding, remediator.assess(target, finding))

    assert event_selectors(trail)["EventSelectors"] == [DEFAULT_EVENT_SELECTOR, READ_SELECTOR, WRITE_SELECTOR]
    assert all(remediator.assess(target, data_finding(rule)).compliant for rule in ("S3.22", "S3.23"))


def test_existing_classic_selectors_survive(target: Target, cloudtrail, trail: str) -> None:
    cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=[ONE_BUCKET])
    remediator, finding = S3DataEvents(), data_finding("S3.22")

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert event_selectors(trail)["EventSelectors"] == [ONE_BUCKET, WRITE_SELECTOR]


def test_existing_advanced_selectors_survive(target: Target, cloudtrail, trail: str) -> None:
    cloudtrail.put_event_selectors(TrailName=trail, AdvancedEventSelectors=[ADVANCED_MANAGEMENT])
    remediator, finding = S3DataEvents(), data_finding("S3.23")

    remediator.apply(target, finding, remediator.assess(target, finding))

    selectors = event_selectors(trail)
    assert selectors["EventSelectors"] == []
    assert selectors["AdvancedEventSelectors"][0] == ADVANCED_MANAGEMENT
    assert selectors["AdvancedEventSelectors"][1]["FieldSelectors"] == advanced_s3("true")["FieldSelectors"]
    assert remediator.assess(target, finding).compliant


def test_a_trail_without_selectors_keeps_its_management_events(target: Target, cloudtrail) -> None:
    """moto reports no selectors for a new trail where AWS reports the default one: both mean the default."""
    create_trail("fresh", make_trail_bucket(BUCKET), IsMultiRegionTrail=True, logging=True)
    remediator, finding = S3DataEvents(), data_finding("S3.22")

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert event_selectors("fresh")["EventSelectors"] == [DEFAULT_EVENT_SELECTOR, WRITE_SELECTOR]


COVERAGE: dict[str, tuple[dict[str, Any], bool, bool]] = {
    # selectors, logs writes (S3.22), logs reads (S3.23)
    "classic all, arn:aws:s3": (
        {"EventSelectors": [{**ONE_BUCKET, "DataResources": WRITE_SELECTOR["DataResources"]}]},
        True,
        True,
    ),
    "classic all, arn:aws:s3:::": (
        {
            "EventSelectors": [
                {**ONE_BUCKET, "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::"]}]}
            ]
        },
        True,
        True,
    ),
    "classic write only": ({"EventSelectors": [WRITE_SELECTOR]}, True, False),
    "classic one bucket": ({"EventSelectors": [ONE_BUCKET]}, False, False),
    "advanced, no readOnly": ({"AdvancedEventSelectors": [advanced_s3()]}, True, True),
    "advanced readOnly false": ({"AdvancedEventSelectors": [advanced_s3("false")]}, True, False),
    "advanced readOnly true": ({"AdvancedEventSelectors": [advanced_s3("true")]}, False, True),
    "advanced, some buckets": (
        {"AdvancedEventSelectors": [advanced_s3(StartsWith=["arn:aws:s3:::payroll/"])]},
        False,
        False,
    ),
    "management only": ({"EventSelectors": [DEFAULT_EVENT_SELECTOR]}, False, False),
}


@pytest.mark.parametrize("case", COVERAGE)
def test_which_selectors_log_s3_object_events(target: Target, cloudtrail, trail: str, case: str) -> None:
    selectors, writes, reads = COVERAGE[case]
    cloudtrail.put_event_selectors(TrailName=trail, **selectors)

    assert S3DataEvents().assess(target, data_finding("S3.22")).compliant is writes
    assert S3DataEvents().assess(target, data_finding("S3.23")).compliant is reads


def test_assess_alone_changes_nothing(target: Target, trail: str) -> None:
    calls = record_calls(target.client("cloudtrail"))
    snapshot = event_selectors(trail)

    S3DataEvents().assess(target, data_finding("S3.22"))

    assert calls == ["DescribeTrails", "GetTrailStatus", "GetEventSelectors", "ListTags"]
    assert event_selectors(trail) == snapshot


@pytest.mark.parametrize(
    "selectors",
    [{"EventSelectors": [DEFAULT_EVENT_SELECTOR, ONE_BUCKET]}, {"AdvancedEventSelectors": [ADVANCED_MANAGEMENT]}],
    ids=["classic", "advanced"],
)
def test_restore_puts_the_previous_selectors_back(
    target: Target, sessions: AssumedSessions, cloudtrail, trail: str, selectors: dict[str, Any]
) -> None:
    cloudtrail.put_event_selectors(TrailName=trail, **selectors)
    original = event_selectors(trail)
    remediator, finding = S3DataEvents(), data_finding("S3.22")
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)
    assert event_selectors(trail) != original

    for _ in range(2):  # restoring twice is harmless
        lines = remediator.restore(target, finding, recorded_pre_state(assessment))
        assert event_selectors(trail) == original
    assert lines == [f"put back the previous event selectors of trail {trail_arn(trail)}"]
    assert iam_actions(sessions.api_calls) <= set(S3DataEvents.permissions)


def test_restore_without_recorded_selectors_is_refused(target: Target, trail: str) -> None:
    with pytest.raises(RemediationError, match="no previous event selectors recorded"):
        S3DataEvents().restore(target, data_finding(), {})


def test_a_trail_homed_in_another_region_is_changed_there(target: Target, cloudtrail) -> None:
    create_trail("west", make_trail_bucket(BUCKET, OTHER_REGION), region=OTHER_REGION, IsMultiRegionTrail=True,
                 logging=True)
    remediator, finding = S3DataEvents(), data_finding("S3.22")

    assessment = remediator.assess(target, finding)
    assert assessment.pre_state["HomeRegion"] == OTHER_REGION
    remediator.apply(target, finding, assessment)

    assert WRITE_SELECTOR in event_selectors("west", OTHER_REGION)["EventSelectors"]


def test_trail_name_chooses_the_trail(target: Target, trail: str) -> None:
    create_trail("second", BUCKET, IsMultiRegionTrail=True, logging=True)
    remediator, finding = S3DataEvents({"trail_name": "second"}), data_finding("S3.22")

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert WRITE_SELECTOR in event_selectors("second")["EventSelectors"]
    assert WRITE_SELECTOR not in event_selectors(trail)["EventSelectors"]


@pytest.mark.parametrize(
    ("params", "match"),
    [({}, "has no logging multi-Region trail to log"),
     ({"trail_name": "missing"}, "has no logging multi-Region trail missing")],
)
def test_without_a_multi_region_trail_there_is_nothing_to_add_to(
    target: Target, moto_aws, params: dict[str, str], match: str
) -> None:
    create_trail("local-only", make_trail_bucket(BUCKET))  # single-Region: does not count

    with pytest.raises(RemediationError, match=match):
        S3DataEvents(params).assess(target, data_finding("S3.22"))


@pytest.mark.parametrize("rule_id", ["S3.22", "S3.23"])
def test_a_stopped_trail_neither_passes_nor_is_changed(target: Target, cloudtrail, trail: str, rule_id: str) -> None:
    """The Config rules count an enabled trail only: a stopped trail that logs S3 data events does not pass, and a
    stopped trail gets no selector (starting it is CloudTrail.1's business) — a logging one does."""
    selector = WRITE_SELECTOR if rule_id == "S3.22" else READ_SELECTOR
    create_trail("stopped", BUCKET, IsMultiRegionTrail=True)
    cloudtrail.put_event_selectors(TrailName="stopped", EventSelectors=[DEFAULT_EVENT_SELECTOR, selector])
    stopped_before = event_selectors("stopped")

    assessment = S3DataEvents().assess(target, data_finding(rule_id))

    assert not assessment.compliant
    assert assessment.context["TrailARN"] == trail_arn("audit")
    cloudtrail.stop_logging(Name="audit")
    with pytest.raises(RemediationError, match="no logging multi-Region trail"):
        S3DataEvents().assess(target, data_finding(rule_id))
    with pytest.raises(RemediationError, match="no logging multi-Region trail stopped"):
        S3DataEvents({"trail_name": "stopped"}).assess(target, data_finding(rule_id))
    assert event_selectors("stopped") == stopped_before


def test_five_classic_selectors_are_the_limit(target: Target, cloudtrail, trail: str) -> None:
    full = [
        {**ONE_BUCKET, "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::b{n}/"]}]}
        for n in range(5)
    ]
    cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=full)

    with pytest.raises(RemediationError, match="already has 5 event selectors"):
        S3DataEvents().assess(target, data_finding("S3.22"))


def test_declarations() -> None:
    rules = {rule.rule_id: rule for rule in S3DataEvents.rules}
    assert {rule_id: (r.cis, r.disruptive) for rule_id, r in rules.items()} == {
        "S3.22": (("3.8",), True),
        "S3.23": (("3.9",), True),
    }
    assert S3DataEvents.resource_types == ("AwsAccount",)
    assert S3DataEvents.reversible
    assert S3DataEvents.executors() == ("boto3",)
