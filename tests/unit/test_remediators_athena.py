"""Athena.4 with a botocore Stubber (moto has no UpdateWorkGroup): GetWorkGroup / UpdateWorkGroup with their
documented shapes. Only PublishCloudWatchMetricsEnabled is sent; a second assess is compliant; rollback turns it
off again."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from functions.model import Target
from functions.remediators.athena import WorkGroupMetrics, workgroup_name
from tests.factories import ACCOUNT, REGION, make_finding


def _group(enabled: bool) -> dict:
    return {"WorkGroup": {"Name": "analysts", "State": "ENABLED", "Configuration": {
        "PublishCloudWatchMetricsEnabled": enabled, "EnforceWorkGroupConfiguration": True,
        "ResultConfiguration": {"OutputLocation": "s3://athena-results/analysts/"}}}}


@pytest.mark.stubber
def test_metrics_are_published_and_rolled_back() -> None:
    client = boto3.client("athena", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: client)
    remediator = WorkGroupMetrics()
    finding = make_finding("Athena.4", "AwsAthenaWorkGroup", "analysts", tags={})
    get, arn = {"WorkGroup": "analysts"}, f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/analysts"
    with Stubber(client) as stub:
        stub.add_response("get_work_group", _group(False), get)
        stub.add_response("list_tags_for_resource", {"Tags": [{"Key": "team", "Value": "bi"}]}, {"ResourceARN": arn})
        stub.add_response("update_work_group", {}, {"WorkGroup": "analysts", "ConfigurationUpdates": {
            "PublishCloudWatchMetricsEnabled": True}})
        stub.add_response("get_work_group", _group(True), get)
        stub.add_response("get_work_group", _group(True), get)
        stub.add_response("update_work_group", {}, {"WorkGroup": "analysts", "ConfigurationUpdates": {
            "PublishCloudWatchMetricsEnabled": False}})
        before = remediator.assess(target, finding)
        assert before.changes == ["publish query metrics of Athena workgroup analysts to CloudWatch"]
        assert before.tags == {"team": "bi"}
        remediator.apply(target, finding, before)
        after = remediator.assess(target, finding)
        assert after.compliant and remediator.changed_fields(before.pre_state, after.pre_state) == {
            "PublishCloudWatchMetricsEnabled": True}
        assert remediator.restore(target, finding, before.pre_state) == [
            "set PublishCloudWatchMetricsEnabled back to False on Athena workgroup analysts"]
        stub.assert_no_pending_responses()


def test_workgroup_name_from_an_arn() -> None:
    arn = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/analysts"
    assert workgroup_name(make_finding("Athena.4", "AwsAthenaWorkGroup", arn)) == "analysts"
