"""BatchUpdateFindingsV2 write-back (OCSF findings), with botocore's Stubber (moto lacks the API; the Stubber
validates each request against botocore's model), and the dispatcher that sends ASFF findings to V1."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from botocore.stub import ANY, Stubber

from connectors import securityhub_v2 as v2
from functions.aws_lambda.writeback_v2 import FindingWriteBack, SecurityHubV2WriteBack
from functions.engine.engine import make_result
from tests.factories import make_finding

FIXTURE = Path(__file__).parent.parent / "fixtures" / "securityhub_v2_getfindings.json"


def v2_findings():
    return [f for f in v2.parse_payload(json.loads(FIXTURE.read_text())) if v2.is_open_failed(f)]


def client():
    return boto3.client("securityhub", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_outcomes_map_to_status_and_comment_like_the_asff_path():
    ssh, bucket, policy, db = v2_findings()
    hub = client()
    writeback = SecurityHubV2WriteBack(hub, sleep=lambda _: None)
    with Stubber(hub) as stub:
        stub.add_response("batch_update_findings_v2", {"ProcessedFindings": [{"MetadataUid": v2.metadata_uid(ssh)}],
                                                       "UnprocessedFindings": []},
                          {"MetadataUids": [v2.metadata_uid(ssh)], "StatusId": 4, "Comment": ANY})
        stub.add_response("batch_update_findings_v2", {"ProcessedFindings": [{"MetadataUid": v2.metadata_uid(db)}],
                                                       "UnprocessedFindings": []},
                          {"MetadataUids": [v2.metadata_uid(db)], "StatusId": 2, "Comment": ANY})
        stub.add_response("batch_update_findings_v2", {"ProcessedFindings": [], "UnprocessedFindings": []},
                          {"MetadataUids": [v2.metadata_uid(bucket), v2.metadata_uid(policy)], "Comment": ANY})
        writeback.add(ssh, make_result(ssh, "remediated", "revoked 22 from 0.0.0.0/0", "run-1",
                                       changes=["revoked tcp 22 from 0.0.0.0/0"]))
        writeback.add(db, make_result(db, "started", "SSM execution e-1", "run-1"))
        for finding in (bucket, policy):
            writeback.add(finding, make_result(finding, "planned", "dry-run: would block", "run-1"))
        report = writeback.flush()
        stub.assert_no_pending_responses()
    assert (report.requests, report.updated, report.failed) == (3, 2, [])


def test_transient_unprocessed_is_retried_and_final_errors_are_reported():
    ssh, bucket, *_ = v2_findings()
    hub = client()
    writeback = SecurityHubV2WriteBack(hub, sleep=lambda _: None)
    uids = [v2.metadata_uid(ssh), v2.metadata_uid(bucket)]
    with Stubber(hub) as stub:
        stub.add_response("batch_update_findings_v2", {"ProcessedFindings": [], "UnprocessedFindings": [
            {"MetadataUid": uids[0], "ErrorCode": "ConflictException", "ErrorMessage": "busy"},
            {"MetadataUid": uids[1], "ErrorCode": "ResourceNotFoundException", "ErrorMessage": "gone"}]},
            {"MetadataUids": uids, "Comment": ANY})
        stub.add_response("batch_update_findings_v2", {"ProcessedFindings": [{"MetadataUid": uids[0]}],
                                                       "UnprocessedFindings": []},
                          {"MetadataUids": [uids[0]], "Comment": ANY})
        for finding in (ssh, bucket):
            writeback.add(finding, make_result(finding, "planned", "dry-run", "run-1"))
        report = writeback.flush()
    assert report.updated == 1
    assert [(u.finding_id, u.error_code) for u in report.failed] == [(bucket.finding_id, "ResourceNotFoundException")]


def test_dispatcher_sends_each_source_to_its_api_and_ignores_others():
    (ssh, *_) = v2_findings()
    asff = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-1",
                        product_arn="arn:aws:securityhub:us-east-1::product/aws/securityhub")
    prowler = make_finding("EC2.13", "AwsEc2SecurityGroup", "sg-2", source="prowler")
    hub = client()
    writeback = FindingWriteBack(hub, sleep=lambda _: None)
    with Stubber(hub) as stub:
        processed = [{"Id": asff.finding_id, "ProductArn": asff.product_arn}]
        stub.add_response("batch_update_findings", {"ProcessedFindings": processed, "UnprocessedFindings": []},
                          {"FindingIdentifiers": [{"Id": asff.finding_id, "ProductArn": asff.product_arn}],
                           "Note": ANY})
        stub.add_response("batch_update_findings_v2", {"ProcessedFindings": [{"MetadataUid": "x"}],
                                                       "UnprocessedFindings": []},
                          {"MetadataUids": [v2.metadata_uid(ssh)], "Comment": ANY})
        for finding in (asff, ssh, prowler):
            writeback.add(finding, make_result(finding, "planned", "dry-run", "run-1"))
        report = writeback.flush()
        stub.assert_no_pending_responses()
    assert (report.requests, report.updated, report.ignored) == (2, 2, 1)
