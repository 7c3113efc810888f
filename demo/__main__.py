"""`make demo`: the whole pipeline on an embedded AWS (moto server) and a local fake Netskope, no cloud account.

1. start a moto server and a fake Netskope API, both on 127.0.0.1;
2. build a misconfigured organization (security account + prod, dev, sandbox);
3. import Security Hub findings into the administrator account; serve Netskope violations, whose API token
   lives in Secrets Manager; write a Prowler json-ocsf scan file of the sandbox account; serve Security Hub's
   OCSF findings of the dev account from a fake of GetFindingsV2 / BatchUpdateFindingsV2 (moto lacks them);
4. the CLI's path: pull the four sources → plan (dry-run): nothing changes;
5. the deployed path: the pull handler enqueues into SQS, four concurrent pollers feed the remediate handler
   (DynamoDB ledger, SNS), exactly as the stack runs it; the Prowler file's findings are applied the CLI's way
   (`run --source prowler`: a scan file is a local input, not a deployed source) → verify every resource
   independently → the CLI's apply again (must change nothing) → print a readable report and the summary the
   SNS topic received.
Exit status 0 only when every check holds.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections import Counter

import boto3

from connectors.finding import Finding, FindingError
from demo.deployed import DeployedRun, run_deployed
from demo.fake_netskope import FakeNetskope
from demo.fake_securityhub_v2 import FakeSecurityHubV2
from demo.moto_org import HOME, REMEDIATION_ROLE, TOKEN_SECRET, isolate_from_real_aws
from demo.org import Org, build_org
from demo.realtime import replay
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.pipeline import PullStats, pull_netskope, pull_prowler, pull_securityhub, pull_securityhub_v2
from functions.engine.sessions import AssumedSessions
from functions.model import Result
from functions.report import render_text


def main() -> int:
    started = time.monotonic()
    isolate_from_real_aws()
    from moto.server import ThreadedMotoServer  # imported late: heavy, and only the demo needs it

    from demo.moto_serial import serialize_dynamodb_and_sqs
    from demo.moto_tagging import list_cloudtrail_trails

    serialize_dynamodb_and_sqs()  # the deployed half runs concurrent consumers against one ledger table
    list_cloudtrail_trails()  # moto's GetResources leaves trails out, AWS's does not (the batched tag read)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # port 0: the kernel picks a free one as it binds (no probe-then-bind race with other runs)
    port = server.get_host_and_port()[1]
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    try:
        return _run(started, port)
    finally:
        server.stop()


def _run(started: float, port: int) -> int:
    say(f"moto server on http://127.0.0.1:{port}")
    org = build_org()
    say("organization: " + ", ".join(f"{name} {account}" for name, account in org.accounts.items()))
    say(f"planted {len(org.planted)} misconfigurations; {len(org.asff)} Security Hub findings, "
        f"{len(org.violations)} Netskope violations, {len(org.prowler)} Prowler findings, "
        f"{len(org.ocsf)} Security Hub OCSF findings")

    hub = boto3.client("securityhub", region_name=HOME)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=org.asff)
    token = secrets.token_urlsafe(24)
    boto3.client("secretsmanager", region_name=HOME).create_secret(
        Name=TOKEN_SECRET, SecretString=f'{{"token": "{token}"}}'
    )

    netskope = FakeNetskope(org.violations, token=token)
    ocsf_hub = FakeSecurityHubV2(org.ocsf)  # moto lacks GetFindingsV2 / BatchUpdateFindingsV2
    with netskope, ocsf_hub.installed(), tempfile.TemporaryDirectory() as scans:
        say(f"fake Netskope API on {netskope.url}")
        prowler_file = os.path.join(scans, f"prowler-output-{org.accounts['sandbox']}.ocsf.json")
        with open(prowler_file, "w", encoding="utf-8") as handle:
            json.dump(org.prowler, handle, indent=4)  # what `prowler aws -M json-ocsf` writes
        return _plan_and_apply(org, netskope.url, prowler_file, started, ocsf_hub)


def _plan_and_apply(org: Org, netskope_url: str, prowler_file: str, started: float,
                    ocsf_hub: FakeSecurityHubV2) -> int:
    findings, pull_report = _pull(netskope_url, prowler_file)
    say(pull_report)

    config_document = {
        "mode": "enforce",
        # Disruptive rules (flow logs, GuardDuty and Macie cost money; deactivating a key can cut access; an SNS
        # topic's new key can drop what a service publishes; ELB health checks replace unhealthy instances) need
        # their own opt-in. Account.1 sets the security
        # contact the organization chose.
        "rules": {"EC2.6": {"mode": "enforce"}, "IAM.3": {"mode": "enforce"}, "Redshift.1": {"mode": "enforce"},
                  "S3.1": {"mode": "enforce"}, "SNS.1": {"mode": "enforce"}, "SSM.4": {"mode": "enforce"},
                  "GuardDuty.1": {"mode": "enforce"}, "Macie.1": {"mode": "enforce"},
                  "AutoScaling.1": {"mode": "enforce"},
                  "Account.1": {"params": {"name": "Security Operations", "email": "security@example.com",
                                           "phone": "+1 555 0100"}}},
        "exclude": {"rules_per_account": {org.accounts["sandbox"]: ["S3.1"]}},
    }
    config = config_from_dict(config_document)

    plan = _engine(config, "plan").run(findings)
    section("1. plan (dry-run): nothing is changed", render_text(plan, "Plan"))
    if not _all_still_broken(org):
        return fail("the dry-run changed state")

    deployed = run_deployed(HOME, {
        "CSPM_SOURCE": "securityhub,securityhub-v2,netskope", "REMEDIATION_ROLE_NAME": REMEDIATION_ROLE,
        "NETSKOPE_URL": netskope_url, "NETSKOPE_TOKEN_SECRET": TOKEN_SECRET, "CSPM_MAX_WORKERS": "4",
    }, config_document)
    applied = deployed.results
    section("2. apply, as deployed: pull handler → SQS → 4 concurrent remediate pollers → ledger, SNS",
            _deployed_text(deployed) + "\n\n" + render_text(applied, "Apply (read back from the DynamoDB ledger)"))
    scanned = [f for f in findings if f.source == "prowler"]
    from_scan = _engine(config, "apply").run(scanned)
    section("2b. apply the Prowler scan's findings, the CLI's way (run --source prowler --input FILE)",
            render_text(from_scan, "Apply (Prowler file)"))
    verified, verify_text = _verify(org)
    resolved = sum(f.get("status_id") == 4 for f in ocsf_hub.findings)
    verify_text += (f"\n  Security Hub OCSF findings marked Resolved through BatchUpdateFindingsV2: {resolved} of "
                    f"{len(ocsf_hub.findings)}")
    verified &= resolved == len(ocsf_hub.findings)
    section("3. verify: every resource read back from the moto server", verify_text)

    again = _engine(config, "apply").run(findings)
    changed_again = [r for r in again if r.outcome in ("remediated", "started")]
    section("4. second run: idempotent",
            f"{len(again)} findings → {_counts(Counter(r.outcome for r in again))}; changes made: {len(changed_again)}")

    section("5. what the SNS topic delivered (the operator's inbox)", _emails_text(deployed))
    prod = org.accounts["prod"]
    realtime = replay(HOME, prod, f"prod-data-{prod}", {"REMEDIATION_ROLE_NAME": REMEDIATION_ROLE}, config_document)
    section("6. real time: CloudTrail events replayed (EventBridge → cloudtrail events handler → SQS → remediate)",
            realtime.text())
    section("figures", _figures(applied, deployed.api_calls, time.monotonic() - started))
    ok = (verified and realtime.ok and not changed_again
          and not any(r.outcome == "failed" for r in [*applied, *from_scan])
          and len(applied) == deployed.pull["pulled"] and deployed.dead_letters == 0
          and any(e["subject"].startswith("[cspm-remediation] apply") for e in deployed.emails))
    say("\nRESULT: " + ("PASS — every planted misconfiguration is fixed or deliberately left alone, as expected"
                        if ok else "FAIL — see above"))
    return 0 if ok else 1


def _pull(netskope_url: str, prowler_file: str) -> tuple[list[Finding], str]:
    stats = {"securityhub": PullStats(), "securityhub-v2": PullStats(), "netskope": PullStats(),
             "prowler": PullStats()}
    findings: list[Finding] = []
    rejected: list[str] = []
    sources = (
        ("securityhub", pull_securityhub([HOME], stats=stats["securityhub"])),
        ("netskope", pull_netskope(netskope_url, TOKEN_SECRET, stats=stats["netskope"])),
        ("prowler", pull_prowler([prowler_file], stats=stats["prowler"])),
        ("securityhub-v2", pull_securityhub_v2([HOME], stats=stats["securityhub-v2"])),
    )
    for source, items in sources:
        for item in items:
            if isinstance(item, FindingError):
                rejected.append(f"  rejected ({source}): {item}")
            else:
                findings.append(item)
    lines = [
        f"pulled Security Hub: {stats['securityhub'].findings} findings in "
        f"{sum(stats['securityhub'].requests.values())} GetFindings call(s); "
        f"Netskope: {stats['netskope'].findings} violations in {stats['netskope'].requests['netskope']} request(s); "
        f"Prowler: {stats['prowler'].findings} open findings from its json-ocsf file; "
        f"Security Hub OCSF: {stats['securityhub-v2'].findings} findings in "
        f"{sum(stats['securityhub-v2'].requests.values())} GetFindingsV2 call(s)",
        *rejected,
    ]
    return findings, "\n".join(lines)


def _engine(config, stage: str) -> Engine:
    return Engine(config, AssumedSessions(role_name=REMEDIATION_ROLE), stage=stage, max_workers=4)


def _all_still_broken(org: Org) -> bool:
    return not any(p.check() for p in org.planted)


def _verify(org: Org) -> tuple[bool, str]:
    names = {account: name for name, account in org.accounts.items()}
    lines, ok = [], True
    for planted in org.planted:
        compliant = planted.check()
        good = compliant if planted.expect == "fixed" else not compliant
        ok &= good
        state = "compliant" if compliant else "unchanged (still non-compliant)"
        lines.append(f"  {'✔' if good else '✘'} {names[planted.account]:<8} {planted.rule_id:<13} "
                     f"{planted.label}: {state}{'' if planted.expect == 'fixed' else ' — expected: left alone'}")
    fixed = sum(p.expect == "fixed" for p in org.planted)
    lines.append(f"  {fixed} expected fixed, {len(org.planted) - fixed} expected left alone: "
                 + ("all as expected" if ok else "MISMATCH"))
    return ok, "\n".join(lines)


def _counts(counts: Counter[str]) -> str:
    """`44 noop, 14 notified` — counts as a person reads them, most frequent first (never a Python dict)."""
    return ", ".join(f"{n} {name}" for name, n in counts.most_common()) or "none"


def _deployed_text(run: DeployedRun) -> str:
    decided = ", ".join(f"{n} {o}" for o, n in sorted(run.pull["decided_at_pull"].items())) or "none"
    drained = run.drain
    return "\n".join([
        f"  run {run.run_id}: pulled {run.pull['pulled']} findings ({run.pull['rejected']} rejected); "
        f"{run.pull['enqueued']} enqueued, decided at pull without AWS calls: {decided}",
        f"  remediate: {drained.invocations} invocations over {drained.messages} messages "
        f"({_counts(drained.kinds)}); {drained.deleted} deleted, {drained.returned} returned for retry, "
        f"{run.dead_letters} in the dead-letter queue",
        f"  ledger: {len(run.results)} results for the run; Security Hub write-back: "
        + (", ".join(f"{n} → {s}" for s, n in sorted(run.writeback.items())) or "nothing"),
    ])


def _emails_text(run: DeployedRun) -> str:
    if not run.emails:
        return "  (nothing)"
    lines = []
    for email in run.emails:
        lines += [f"  Subject: {email['subject']}", *("  | " + line for line in email["body"].splitlines()), ""]
    return "\n".join(lines)


def _figures(results: list[Result], api_calls: Counter[str], wall: float) -> str:
    acted = [r for r in results if r.outcome in ("remediated", "noop", "planned", "failed")]
    calls = Counter(api_calls)
    assume = calls.pop("sts.AssumeRole", 0)
    accounts = {r.account_id for r in acted}
    per = sum(calls.values()) / max(len(acted), 1)
    top = ", ".join(f"{op} {n}" for op, n in calls.most_common(8))
    return (
        f"  wall time (whole demo): {wall:.1f} s\n"
        f"  AssumeRole calls in the deployed apply run: {assume} for {len(accounts)} member accounts "
        f"(one per account; the pollers share one warm container)\n"
        f"  AWS API calls in target accounts: {sum(calls.values())} for {len(acted)} findings checked "
        f"= {per:.2f} per finding\n  by operation: {top}"
    )


def say(text: str) -> None:
    print(text, flush=True)


def section(title: str, body: str) -> None:
    say(f"\n── {title} " + "─" * max(0, 70 - len(title)))
    say(body.rstrip())


def fail(why: str) -> int:
    say(f"\nRESULT: FAIL — {why}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
