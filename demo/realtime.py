"""The demo's real-time step (issue #16): CloudTrail events replayed through the deployed path.

After the scheduled run has fixed everything, someone opens SSH to the world on a new security group in prod. The
EventBridge event CloudTrail delivers for that call (demo/cloudtrail_records.py, CloudTrail's record shape) goes to
the cloudtrail events handler, which queues the rules it can break; two pollers feed the remediate handler, which
closes the port (keeping 443) and records it in the ledger. Three more events show what is never acted on: the same
call made by the remediation role itself, a failed StopLogging, and a call that left its bucket compliant (`noop`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3

from demo import cloudtrail_records as ct
from demo.deployed import TABLE, _config_file, _environment
from demo.moto_org import ADMIN_ROLE
from demo.sqs_event_source import SqsEventSource
from functions.aws_lambda import cloudtrail_events, handlers
from functions.engine.ledger import result_from_row
from functions.engine.sessions import AssumedSessions
from functions.model import Result

QUEUE = "cspm-realtime-work"
WORLD = "0.0.0.0/0"


@dataclass
class RealTimeReport:
    handled: list[tuple[str, dict[str, Any]]]  # (what the event was, the handler's answer)
    results: list[Result]
    open_before: list[int]
    open_after: list[int]

    @property
    def ok(self) -> bool:
        outcomes = Counter(r.outcome for r in self.results)
        ignored = [answer for _, answer in self.handled if answer.get("ignored")]
        return (self.open_before == [22, 443] and self.open_after == [443] and outcomes["remediated"] >= 1
                and outcomes["noop"] >= 1 and not outcomes["failed"] and len(ignored) == 2)

    def text(self) -> str:
        lines = [f"  {what}: " + (f"ignored ({answer['ignored']})" if answer.get("ignored")
                                  else f"{answer['findings']} findings, {answer['enqueued']} enqueued")
                 for what, answer in self.handled]
        lines += [f"  {r.outcome:<10} {r.rule_id:<8} {r.resource_id} ({r.account_id}): {r.reason}"
                  for r in sorted(self.results, key=lambda r: (r.outcome, r.rule_id))]
        lines.append(f"  ports open to {WORLD}: before {self.open_before}, after {self.open_after}")
        return "\n".join(lines)


def replay(region: str, account: str, bucket: str, environment: dict[str, str],
           config: dict[str, Any]) -> RealTimeReport:
    """`account`: where the change is made; `bucket`: a bucket there that the scheduled run already fixed."""
    ec2 = AssumedSessions(role_name=ADMIN_ROLE).target(account, region).client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web-realtime", Description="opened after the scan",
                                      VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": WORLD}]} for port in (22, 443)])
    before = _open(ec2, group)
    role = environment["REMEDIATION_ROLE_NAME"]
    events = [
        ("AuthorizeSecurityGroupIngress by alice (22 from anywhere)",
         ct.authorize_security_group_ingress(group, 22, WORLD, account=account, region=region)),
        (f"AuthorizeSecurityGroupIngress by {role}",
         ct.authorize_security_group_ingress(group, 22, WORLD, account=account, region=region, role=role)),
        ("StopLogging refused (AccessDenied)",
         ct.stop_logging("prod-trail", account=account, region=region, error="AccessDenied")),
        ("PutBucketPublicAccessBlock, all four settings on",
         ct.bucket_public_access_block(bucket, "PutBucketPublicAccessBlock", account=account, region=region)),
    ]
    sqs = boto3.client("sqs", region_name=region)
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    with _config_file(config) as config_path, _environment({
        **environment, "WORK_QUEUE_URL": queue_url, "LEDGER_TABLE": TABLE, "CSPM_CONFIG": config_path,
    }):
        handlers.reset_runtime()
        runtime = handlers.runtime()
        handled = [(what, cloudtrail_events.handler(ct.event(body))) for what, body in events]
        SqsEventSource(sqs, queue_url, handlers.remediate, consumers=2).drain()
        assert runtime.ledger is not None
        runs = {answer["run_id"] for _, answer in handled if "run_id" in answer}
        results = [result_from_row(row) for run in sorted(runs) for row in runtime.ledger.results(run)
                   if row.get("source") == "cloudtrail"]
        handlers.reset_runtime()
    return RealTimeReport(handled, [r for r in results if r.outcome != "skipped" or "off" not in r.reason],
                          before, _open(ec2, group))


def _open(ec2: Any, group: str) -> list[int]:
    permissions = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    return sorted(p["FromPort"] for p in permissions if any(r["CidrIp"] == WORLD for r in p.get("IpRanges", [])))

